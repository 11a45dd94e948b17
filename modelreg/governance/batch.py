"""The attestation batch file: many ``modelreg attest`` calls in one YAML or JSON file, read once at the boundary.

The file is a list of entries, or a mapping whose ``attestations`` key holds that list::

    attestations:
      - {model: credit_scoring, version: "3", control: CHK-LC-05, comment: "validation file VR-2026-031"}
      - {model: credit_scoring, version: "3", control: CHK-VAL-02}

Each entry takes what the single command takes: ``model``, ``version``, ``control`` (or ``control_id``) and an
optional ``comment``. Every entry keeps its index (1-based) and, from YAML (JSON is YAML here), its line, so a
refusal names the entry to fix.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from modelreg.errors import BadInput, ModelregError

FIELDS = ("model", "version", "control", "control_id", "comment")
MAX_ENTRIES = 1000

_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class BatchEntry:
    index: int  # 1-based position in the file
    line: int | None  # where the entry starts in the file, when read from one
    source: str  # the file (or "batch") for messages
    model: str
    version: str
    control_id: str
    comment: str | None

    @property
    def where(self) -> str:
        return f"{self.source} entry {self.index}" + (f" (line {self.line})" if self.line else "")


def entry_error(entry: BatchEntry, exc: ModelregError) -> BadInput:
    """One entry the batch cannot record: the whole batch is refused as input to fix (exit 2), naming the
    entry, its line and the underlying condition's code."""
    return BadInput(
        f"{entry.where}: {exc.message}; nothing was recorded",
        details={"entry": entry.index, "line": entry.line, "reason": exc.code},
    )


def _lines(text: str) -> list[int] | None:
    """The line of each item of the top-level list (or of the ``attestations`` list), when YAML can say."""
    try:
        node = yaml.compose(text, Loader=_YAML_LOADER)
    except yaml.YAMLError:
        return None
    if isinstance(node, yaml.MappingNode):
        node = next(
            (v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == "attestations"), None
        )
    if not isinstance(node, yaml.SequenceNode):
        return None
    return [item.start_mark.line + 1 for item in node.value]


def _parse(path: Path) -> tuple[Any, list[int] | None]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise BadInput(f"{path}: no such batch file") from None
    except UnicodeDecodeError as exc:
        raise BadInput(f"{path}: the batch file is not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise BadInput(f"{path}: cannot read the batch file ({exc.strerror})") from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BadInput(f"{path}:{exc.lineno}: JSON syntax error: {exc.msg}") from None
    else:
        try:
            data = yaml.load(text, Loader=_YAML_LOADER)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark is not None else 1
            problem = (exc.problem or exc.context or "invalid YAML").strip()
            raise BadInput(f"{path}:{line}: YAML syntax error: {problem}") from None
        except yaml.YAMLError as exc:
            raise BadInput(f"{path}:1: YAML error: {str(exc).splitlines()[0]}") from None
    return data, _lines(text)


def _text(value: Any, what: str, where: str, *, required: bool = True) -> str | None:
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        shown = "nothing" if value is None else f"{type(value).__name__} {value!r}"
        raise BadInput(f"{where}: {what} must be a string. Got {shown} instead.")
    text = str(value).strip()
    if required and not text:
        raise BadInput(f"{where}: {what} must not be empty")
    return text


def read_entries(
    source: str | Path | list, *, name: str | None = None, lines: list[int | None] | None = None
) -> list[BatchEntry]:
    """The batch's entries, each checked for shape (not yet against the policy or the registry). A list
    ``source`` may carry the ``name`` and ``lines`` of the file it was read from (``to_wire``), so the
    registry service names an entry as the local command would."""
    if isinstance(source, list):
        data, name = source, name or "batch"
    else:
        path = Path(source)
        data, lines = _parse(path)
        name = str(path)
    if isinstance(data, dict) and set(data) == {"attestations"}:
        data = data["attestations"]
    if not isinstance(data, list):
        got = "an empty file" if data is None else f"a {type(data).__name__}"
        raise BadInput(
            f"{name}: an attestation batch must be a list of entries (or a mapping with an 'attestations' "
            f"list). Got {got} instead."
        )
    if not data:
        raise BadInput(f"{name}: the batch has no entries; nothing was recorded")
    if len(data) > MAX_ENTRIES:
        raise BadInput(f"{name}: a batch may hold at most {MAX_ENTRIES} entries. Got {len(data)} instead.")
    entries: list[BatchEntry] = []
    seen: dict[tuple[str, str, str], int] = {}
    for i, raw in enumerate(data, start=1):
        line = lines[i - 1] if lines and len(lines) == len(data) and isinstance(lines[i - 1], int) else None
        where = f"{name} entry {i}" + (f" (line {line})" if line else "")
        if not isinstance(raw, dict):
            raise BadInput(
                f"{where}: an entry must be a mapping (model, version, control, comment). "
                f"Got {type(raw).__name__} instead."
            )
        unknown = sorted(str(k) for k in raw if k not in FIELDS)
        if unknown:
            raise BadInput(
                f"{where}: unknown field(s) {', '.join(unknown)}; an entry takes model, version, control, comment"
            )
        if "control" in raw and "control_id" in raw:
            raise BadInput(f"{where}: give control or control_id, not both")
        model = _text(raw.get("model"), "model", where)
        version = _text(raw.get("version"), "version", where)
        control = _text(raw.get("control", raw.get("control_id")), "control", where)
        comment = _text(raw.get("comment"), "comment", where, required=False)
        assert model is not None and version is not None and control is not None
        key = (model, version, control)
        if key in seen:
            raise BadInput(
                f"{where}: {control} for {model} {version} is already entry {seen[key]}; each attestation once"
            )
        seen[key] = i
        entries.append(BatchEntry(i, line, name, model, version, control, comment or None))
    return entries


def to_wire(entries: list[BatchEntry]) -> dict:
    """The entries as the registry service reads them back with ``read_entries`` (same names and lines)."""
    return {
        "source": entries[0].source if entries else "batch",
        "entries": [
            {"model": e.model, "version": e.version, "control": e.control_id}
            | ({"comment": e.comment} if e.comment is not None else {})
            for e in entries
        ],
        "lines": [e.line for e in entries],
    }
