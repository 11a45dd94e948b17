"""YAML policy packs → typed ``PolicyPack``, validated once, with ``file:line`` in every message.

The YAML is composed into nodes (so every value keeps its position), turned into position-carrying
dicts and lists, merged with a base pack when the file ``extends`` one, and then validated as a whole.
``lint`` returns every message; ``load_pack`` raises ``PolicyError`` with the first error.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from modelreg.errors import PolicyError
from modelreg.policy.model import (
    ANY,
    ATTESTATION_GRANTS,
    BASIS_CONVENTION,
    BASIS_INSTITUTION,
    COMPARATORS,
    GATE_MONITOR,
    GATES,
    KNOWN_METRICS,
    LEVEL_ERROR,
    LEVEL_WARNING,
    ON_BREACH_ACTIONS,
    ON_BREACH_SUSPEND,
    OVERDUE_ACTIONS,
    REQUIREMENT_IDS,
    REVIEW_ANCHORS,
    ROLES,
    SEVERITIES,
    SEVERITY_BLOCKING,
    SPECIAL_AUDIT_TRIGGERS,
    THRESHOLD_BASES,
    Attestation,
    BaseRef,
    Check,
    Clause,
    Control,
    FindingsPolicy,
    Interval,
    LintMessage,
    OutOfScope,
    PackSummary,
    PolicyPack,
    Requirement,
    ReviewCalendar,
    ReviewKind,
    Source,
    SpecialAudit,
    Threshold,
    Tier,
    VendorPolicy,
)

DEFAULT_PACK_ID = "cn-fin-algo-risk"

_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
# PyYAML follows YAML 1.1, which reads ``1e-3`` (no dot) as a string; accept it as the number it means.
_EXP_FLOAT_RE = re.compile(r"^[-+]?(\d+(\.\d*)?|\.\d+)[eE][-+]?\d+$")
_RELEVANCES = ("core", "supporting", "analogous", "context")


# -- position-carrying YAML ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Pos:
    file: str
    line: int
    col: int


class LMap(dict):
    """A YAML mapping that remembers where it, each key and each value were written."""

    def __init__(self, pos: Pos) -> None:
        super().__init__()
        self.pos = pos
        self.key_pos: dict[str, Pos] = {}
        self.val_pos: dict[str, Pos] = {}

    def kpos(self, key: str) -> Pos:
        return self.key_pos.get(key, self.pos)

    def vpos(self, key: str) -> Pos:
        return self.val_pos.get(key, self.key_pos.get(key, self.pos))

    def put(self, key: str, value: Any, kpos: Pos, vpos: Pos) -> None:
        self[key] = value
        self.key_pos[key] = kpos
        self.val_pos[key] = vpos


class LSeq(list):
    def __init__(self, pos: Pos) -> None:
        super().__init__()
        self.pos = pos
        self.item_pos: list[Pos] = []

    def ipos(self, index: int) -> Pos:
        return self.item_pos[index] if index < len(self.item_pos) else self.pos


def _pos(node: yaml.Node, file: str) -> Pos:
    mark = node.start_mark
    return Pos(file, mark.line + 1, mark.column + 1)


class _Reader:
    def __init__(self, file: str, messages: list[LintMessage]) -> None:
        self.file = file
        self.messages = messages
        self.constructor = yaml.constructor.SafeConstructor()

    def walk(self, node: yaml.Node) -> Any:
        if isinstance(node, yaml.MappingNode):
            self.constructor.flatten_mapping(node)  # resolves YAML merge keys (<<)
            out = LMap(_pos(node, self.file))
            for knode, vnode in node.value:
                kpos = _pos(knode, self.file)
                if not isinstance(knode, yaml.ScalarNode):
                    self._error(kpos, "a mapping key must be a plain string")
                    continue
                key = self.constructor.construct_object(knode)
                if not isinstance(key, str):
                    key = str(key)
                if key in out:
                    self._error(kpos, f"duplicate key {key!r} (first written on line {out.kpos(key).line})")
                    continue
                out.put(key, self.walk(vnode), kpos, _pos(vnode, self.file))
            return out
        if isinstance(node, yaml.SequenceNode):
            seq = LSeq(_pos(node, self.file))
            for item in node.value:
                seq.append(self.walk(item))
                seq.item_pos.append(_pos(item, self.file))
            return seq
        value = self.constructor.construct_object(node)
        if isinstance(value, str) and _EXP_FLOAT_RE.match(value.strip()):
            return float(value)
        return value

    def _error(self, pos: Pos, message: str) -> None:
        self.messages.append(LintMessage(pos.file, pos.line, pos.col, LEVEL_ERROR, message))


def _read_tree(path: Path, messages: list[LintMessage]) -> LMap:
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyError(f"{file}:0: no such policy file") from None
    except UnicodeDecodeError as exc:
        raise PolicyError(f"{file}:1: the file is not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise PolicyError(f"{file}:0: cannot read the policy file ({exc.strerror})") from None
    try:
        node = yaml.compose(text, Loader=_YAML_LOADER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        problem = (exc.problem or exc.context or "invalid YAML").strip()
        raise PolicyError(f"{file}:{line}: YAML syntax error: {problem}") from None
    except yaml.YAMLError as exc:
        raise PolicyError(f"{file}:1: YAML error: {str(exc).splitlines()[0]}") from None
    if node is None:
        raise PolicyError(
            f"{file}:1: the file is empty; expected a policy pack (a mapping with a 'pack' header)"
        )
    tree = _Reader(file, messages).walk(node)
    if not isinstance(tree, LMap):
        raise PolicyError(f"{file}:1: a policy pack must be a mapping. Got a {_tname(tree)} instead.")
    return tree


def _copy(value: Any) -> Any:
    """Deep copy that keeps positions (merging must not change the base pack's tree)."""
    if isinstance(value, LMap):
        out = LMap(value.pos)
        for k, v in value.items():
            out.put(k, _copy(v), value.kpos(k), value.vpos(k))
        return out
    if isinstance(value, LSeq):
        seq = LSeq(value.pos)
        seq.extend(_copy(v) for v in value)
        seq.item_pos = list(value.item_pos)
        return seq
    return value


def _tname(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "mapping"
    if isinstance(value, list):
        return "list"
    return type(value).__name__


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# -- validation ----------------------------------------------------------------------------------------


class _Checker:
    """Collects messages; every validator writes here rather than raising, so lint shows them all."""

    def __init__(self, messages: list[LintMessage], top_file: str | None = None) -> None:
        self.messages = messages
        self.top_file = top_file

    def prefer(self, *positions: Pos) -> Pos:
        """Of several places a problem involves, the one in the file being checked (a bank's override
        rather than the base pack it merged into)."""
        for pos in positions:
            if pos.file == self.top_file:
                return pos
        return positions[0]

    def error(self, pos: Pos, message: str) -> None:
        self.messages.append(LintMessage(pos.file, pos.line, pos.col, LEVEL_ERROR, message))

    def warning(self, pos: Pos, message: str) -> None:
        self.messages.append(LintMessage(pos.file, pos.line, pos.col, LEVEL_WARNING, message))

    @property
    def failed(self) -> bool:
        return any(m.level == LEVEL_ERROR for m in self.messages)

    # generic shape checks ------------------------------------------------------------------------
    def mapping(self, parent: LMap | LSeq, key: Any, value: Any, what: str) -> LMap | None:
        if isinstance(value, LMap):
            return value
        pos = parent.vpos(key) if isinstance(parent, LMap) else parent.ipos(key)
        self.error(pos, f"{what} must be a mapping. Got a {_tname(value)} instead.")
        return None

    def keys(self, m: LMap, what: str, required: Sequence[str], optional: Sequence[str]) -> bool:
        ok = True
        allowed = list(required) + list(optional)
        for key in m:
            if key not in allowed:
                self.error(m.kpos(key), f"unknown key {key!r} in {what}; expected one of {allowed}")
                ok = False
        for key in required:
            if key not in m:
                self.error(m.pos, f"{what} is missing the required key {key!r}")
                ok = False
        return ok

    def text(self, m: LMap, key: str, what: str, *, required: bool = True) -> str:
        """A non-empty string (dates and numbers that YAML typed are read back as text)."""
        if key not in m or m[key] is None:
            if required:
                self.error(
                    m.pos,
                    f"{what} is missing {key!r}; write it in both Chinese (_zh) and English (_en)"
                    if key.endswith(("_zh", "_en"))
                    else f"{what} is missing {key!r}",
                )
            return ""
        value = m[key]
        if isinstance(value, (LMap, LSeq, bool)):
            self.error(m.vpos(key), f"{what}: {key} must be a string. Got a {_tname(value)} instead.")
            return ""
        text = str(value).strip()
        if required and not text:
            self.error(m.vpos(key), f"{what}: {key} must not be empty")
        return text

    def string(self, m: LMap, key: str, what: str) -> str | None:
        """A value that must be a YAML string (ids, versions): numbers are refused, not converted."""
        value = m.get(key)
        if not isinstance(value, str) or not value.strip():
            hint = " (quote it)" if _is_number(value) else ""
            self.error(m.vpos(key), f"{what}: {key} must be a non-empty string{hint}. Got {value!r} instead.")
            return None
        return value.strip()

    def string_list(self, m: LMap, key: str, what: str) -> list[tuple[str, Pos]] | None:
        value = m.get(key)
        if not isinstance(value, LSeq):
            self.error(
                m.vpos(key), f"{what}: {key} must be a list of strings. Got a {_tname(value)} instead."
            )
            return None
        out = []
        for i, item in enumerate(value):
            if not isinstance(item, str):
                self.error(value.ipos(i), f"{what}: {key} must contain strings. Got {item!r} instead.")
                continue
            out.append((item, value.ipos(i)))
        return out

    def choice(self, m: LMap, key: str, what: str, allowed: Sequence[str]) -> str | None:
        value = m.get(key)
        if value not in allowed:
            self.error(m.vpos(key), f"{what}: {key} must be one of {list(allowed)}. Got {value!r} instead.")
            return None
        return value


# -- pack building ------------------------------------------------------------------------------------

_PACK_KEYS_BASE = ("pack", "tiers", "sources", "clauses", "controls", "out_of_scope")
# Model risk operations sections (optional; a bank's file that names one replaces the base's section whole).
_OPERATIONS_SECTIONS = ("review_calendar", "findings", "vendor_models")
_PACK_KEYS_BASE = (*_PACK_KEYS_BASE, *_OPERATIONS_SECTIONS)
_PACK_KEYS_EXT = ("extends", "overrides", *_PACK_KEYS_BASE)
_CONTROL_KEYS = (
    "id",
    "title_zh",
    "title_en",
    "catalog_check",
    "clauses",
    "secondary_clauses",
    "gates",
    "severity",
    "tiers",
    "on_breach",
    "check",
    "attestation",
    "requirement",
    "disabled",
)
_CHECK_KEYS = (
    "monitor",
    "metric",
    "feature",
    "group",
    "comparator",
    "thresholds",
    "params",
    "basis",
    "note_zh",
    "note_en",
)
_OVERRIDE_CONTROL_KEYS = (
    "title_zh",
    "title_en",
    "thresholds",
    "params",
    "basis",
    "note_zh",
    "note_en",
    "severity",
    "on_breach",
    "tiers",
    "gates",
    "disabled",
)


def _build(tree: LMap, ck: _Checker, *, base: BaseRef | None, path: Path) -> PolicyPack | None:
    # Unknown top-level keys are reported and the rest is still checked, so lint shows everything at once.
    required = ["pack", "tiers", "clauses", "controls"]
    ck.keys(tree, "the policy pack", required, [k for k in _PACK_KEYS_EXT if k not in required])

    # header
    header = ck.mapping(tree, "pack", tree.get("pack"), "pack") if "pack" in tree else None
    pack_id = version = title_zh = title_en = ""
    catalog_version = None
    if header is not None:
        ck.keys(header, "the pack header", ["id", "version", "title_zh", "title_en"], ["catalog_version"])
        pack_id = ck.string(header, "id", "pack") or ""
        if pack_id and not _ID_RE.match(pack_id):
            ck.error(
                header.vpos("id"),
                f"pack: id must be letters, digits, '.', '_' or '-'. Got {pack_id!r} instead.",
            )
        version = ck.string(header, "version", "pack") or ""
        title_zh = ck.text(header, "title_zh", "the pack header")
        title_en = ck.text(header, "title_en", "the pack header")
        if "catalog_version" in header:
            catalog_version = ck.string(header, "catalog_version", "pack")

    tiers = _build_tiers(tree, ck)
    tier_ids = [t.id for t in tiers]
    sources = _build_sources(tree, ck)
    clauses = _build_clauses(tree, ck, sources)
    clause_ids = {c.id for c in clauses}
    controls = _build_controls(tree, ck, tier_ids, clause_ids)
    out_of_scope = _build_out_of_scope(tree, ck, clause_ids)
    _cross_checks(tree, ck, clauses, controls, out_of_scope, tier_ids)
    calendar = _build_review_calendar(tree, ck, tier_ids, clause_ids, {c.id for c in controls})
    findings_policy = _build_findings_policy(tree, ck, clause_ids)
    vendor = _build_vendor_models(tree, ck, tier_ids, clause_ids, {c.id for c in controls})

    if ck.failed:
        return None
    return PolicyPack(
        id=pack_id,
        version=version,
        title_zh=title_zh,
        title_en=title_en,
        tiers=tuple(tiers),
        clauses=tuple(clauses),
        controls=tuple(controls),
        out_of_scope=out_of_scope,
        sources=sources,
        catalog_version=catalog_version,
        extends=base,
        review_calendar=calendar,
        findings_policy=findings_policy,
        vendor_models=vendor,
        path=path,
    )


def _build_tiers(tree: LMap, ck: _Checker) -> list[Tier]:
    raw = tree.get("tiers")
    if "tiers" not in tree:
        return []
    m = ck.mapping(tree, "tiers", raw, "tiers")
    if m is None:
        return []
    if not m:
        ck.error(m.pos, "tiers must name at least one risk tier")
    out = []
    for tid, body in m.items():
        what = f"tier {tid}"
        if not _ID_RE.match(tid):
            ck.error(m.kpos(tid), f"tier id must be letters, digits, '.', '_' or '-'. Got {tid!r} instead.")
        t = ck.mapping(m, tid, body, what)
        if t is None:
            continue
        ck.keys(t, what, ["title_zh", "title_en", "approvals"], ["description_zh", "description_en"])
        approvals: dict[str, int] = {}
        a = ck.mapping(t, "approvals", t.get("approvals"), f"{what}: approvals") if "approvals" in t else None
        if a is not None:
            for role, count in a.items():
                if role not in ROLES:
                    ck.error(
                        a.kpos(role),
                        f"{what}: approval role must be one of {list(ROLES)}. Got {role!r} instead.",
                    )
                elif not isinstance(count, int) or isinstance(count, bool) or count < 0:
                    ck.error(
                        a.vpos(role),
                        f"{what}: approvals.{role} must be a whole number >= 0. Got {count!r} instead.",
                    )
                else:
                    approvals[role] = count
        out.append(
            Tier(
                id=tid,
                title_zh=ck.text(t, "title_zh", what),
                title_en=ck.text(t, "title_en", what),
                approvals=approvals,
                description_zh=ck.text(t, "description_zh", what, required=False),
                description_en=ck.text(t, "description_en", what, required=False),
            )
        )
    return out


def _build_sources(tree: LMap, ck: _Checker) -> dict[str, Source]:
    if "sources" not in tree:
        return {}
    m = ck.mapping(tree, "sources", tree["sources"], "sources")
    if m is None:
        return {}
    out = {}
    for key, body in m.items():
        what = f"source {key}"
        s = ck.mapping(m, key, body, what)
        if s is None:
            continue
        ck.keys(
            s,
            what,
            ["title_zh", "title_en"],
            ["issuer_zh", "issuer_en", "date", "doc_no", "note_zh", "note_en"],
        )
        out[key] = Source(
            key=key,
            title_zh=ck.text(s, "title_zh", what),
            title_en=ck.text(s, "title_en", what),
            issuer_zh=ck.text(s, "issuer_zh", what, required=False),
            issuer_en=ck.text(s, "issuer_en", what, required=False),
            date=ck.text(s, "date", what, required=False),
            doc_no=ck.text(s, "doc_no", what, required=False),
            note_zh=ck.text(s, "note_zh", what, required=False),
            note_en=ck.text(s, "note_en", what, required=False),
        )
    return out


def _build_clauses(tree: LMap, ck: _Checker, sources: Mapping[str, Source]) -> list[Clause]:
    raw = tree.get("clauses")
    if "clauses" not in tree:
        return []
    if not isinstance(raw, LSeq):
        ck.error(tree.vpos("clauses"), f"clauses must be a list. Got a {_tname(raw)} instead.")
        return []
    out: list[Clause] = []
    first_seen: dict[str, Pos] = {}
    for i, body in enumerate(raw):
        c = ck.mapping(raw, i, body, f"clauses[{i}]")
        if c is None:
            continue
        cid = ck.string(c, "id", f"clauses[{i}]") if "id" in c else None
        what = f"clause {cid}" if cid else f"clauses[{i}]"
        ck.keys(
            c,
            what,
            ["id", "source", "item", "title_zh", "title_en", "text_zh", "text_en"],
            ["gist", "relevance", "force", "item_as_in_seed"],
        )
        if cid is None:
            continue
        if cid in first_seen:
            ck.error(
                c.vpos("id"), f"duplicate clause id {cid!r} (first defined on line {first_seen[cid].line})"
            )
            continue
        first_seen[cid] = c.vpos("id")
        source = ck.text(c, "source", what)
        if source and sources and source not in sources:
            ck.error(
                c.vpos("source"), f"{what}: source must be one of {sorted(sources)}. Got {source!r} instead."
            )
        relevance = ck.text(c, "relevance", what, required=False)
        if relevance and relevance not in _RELEVANCES:
            ck.error(
                c.vpos("relevance"),
                f"{what}: relevance must be one of {list(_RELEVANCES)}. Got {relevance!r} instead.",
            )
        out.append(
            Clause(
                id=cid,
                source=source,
                item=ck.text(c, "item", what),
                title_zh=ck.text(c, "title_zh", what),
                title_en=ck.text(c, "title_en", what),
                text_zh=ck.text(c, "text_zh", what),
                text_en=ck.text(c, "text_en", what),
                gist=ck.text(c, "gist", what, required=False),
                relevance=relevance,
                force=ck.text(c, "force", what, required=False),
                item_as_in_seed=ck.text(c, "item_as_in_seed", what, required=False),
            )
        )
    return out


def _build_controls(tree: LMap, ck: _Checker, tier_ids: list[str], clause_ids: set[str]) -> list[Control]:
    raw = tree.get("controls")
    if "controls" not in tree:
        return []
    if not isinstance(raw, LSeq):
        ck.error(tree.vpos("controls"), f"controls must be a list. Got a {_tname(raw)} instead.")
        return []
    out: list[Control] = []
    first_seen: dict[str, Pos] = {}
    for i, body in enumerate(raw):
        c = ck.mapping(raw, i, body, f"controls[{i}]")
        if c is None:
            continue
        cid = ck.string(c, "id", f"controls[{i}]") if "id" in c else None
        what = f"control {cid}" if cid else f"controls[{i}]"
        ck.keys(
            c,
            what,
            ["id", "title_zh", "title_en", "gates", "severity"],
            [k for k in _CONTROL_KEYS if k not in ("id", "title_zh", "title_en", "gates", "severity")],
        )
        if cid is None:
            continue
        if cid in first_seen:
            ck.error(
                c.vpos("id"), f"duplicate control id {cid!r} (first defined on line {first_seen[cid].line})"
            )
            continue
        first_seen[cid] = c.vpos("id")
        control = _build_control(c, ck, what, cid, tier_ids, clause_ids)
        if control is not None:
            out.append(control)
    return out


def _clause_refs(c: LMap, key: str, ck: _Checker, what: str, clause_ids: set[str]) -> tuple[str, ...]:
    if key not in c:
        return ()
    refs = ck.string_list(c, key, what) or []
    seen: list[str] = []
    for ref, pos in refs:
        if ref not in clause_ids:
            ck.error(
                pos,
                f"{what}: unknown clause id {ref!r} in {key}; every clause a control cites must be defined in clauses",
            )
        elif ref in seen:
            ck.error(pos, f"{what}: clause {ref!r} is listed twice in {key}")
        else:
            seen.append(ref)
    return tuple(seen)


def _build_control(
    c: LMap, ck: _Checker, what: str, cid: str, tier_ids: list[str], clause_ids: set[str]
) -> Control | None:
    before = len([m for m in ck.messages if m.level == LEVEL_ERROR])
    title_zh = ck.text(c, "title_zh", what)
    title_en = ck.text(c, "title_en", what)
    clauses = _clause_refs(c, "clauses", ck, what, clause_ids)
    secondary = _clause_refs(c, "secondary_clauses", ck, what, clause_ids)
    if not clauses and not secondary and "clauses" in c:
        ck.error(c.vpos("clauses"), f"{what}: a control must cite at least one clause")
    elif "clauses" not in c and not secondary:
        ck.error(c.pos, f"{what} is missing 'clauses' (the clause ids it implements)")
    for ref in set(clauses) & set(secondary):
        ck.error(
            c.vpos("secondary_clauses"), f"{what}: clause {ref!r} is both in clauses and secondary_clauses"
        )

    gates: list[str] = []
    if "gates" in c:
        for gate, pos in ck.string_list(c, "gates", what) or []:
            if gate not in GATES:
                ck.error(pos, f"{what}: gate must be one of {list(GATES)}. Got {gate!r} instead.")
            elif gate in gates:
                ck.error(pos, f"{what}: gate {gate!r} is listed twice")
            else:
                gates.append(gate)
        if not gates and isinstance(c.get("gates"), LSeq) and not c["gates"]:
            ck.error(c.vpos("gates"), f"{what}: gates must name at least one of {list(GATES)}")
    severity = ck.choice(c, "severity", what, SEVERITIES) if "severity" in c else None

    tiers: list[str] = list(tier_ids)
    if "tiers" in c:
        tiers = []
        for tier, pos in ck.string_list(c, "tiers", what) or []:
            if tier not in tier_ids:
                ck.error(pos, f"{what}: tier must be one of {tier_ids}. Got {tier!r} instead.")
            elif tier not in tiers:
                tiers.append(tier)
        if isinstance(c.get("tiers"), LSeq) and not c["tiers"]:
            ck.error(
                c.vpos("tiers"), f"{what}: tiers must name at least one tier (leave it out to mean all tiers)"
            )

    catalog_check = ck.string(c, "catalog_check", what) if "catalog_check" in c else None

    kinds = [k for k in ("check", "attestation", "requirement") if k in c]
    if len(kinds) != 1:
        ck.error(
            c.pos,
            f"{what} must have exactly one of 'check', 'attestation' or 'requirement'. Got {kinds or 'none'} instead.",
        )
        return None
    check = attestation = requirement = None
    if kinds[0] == "check":
        check = _build_check(c, ck, what, tiers, tier_ids)
    elif kinds[0] == "attestation":
        a = ck.mapping(c, "attestation", c["attestation"], f"{what}: attestation")
        if a is not None:
            ck.keys(a, f"{what}: attestation", ["role", "statement_zh", "statement_en"], ["grants"])
            attestation = Attestation(
                role=ck.choice(a, "role", f"{what}: attestation", ROLES) or "",
                statement_zh=ck.text(a, "statement_zh", f"{what}: attestation"),
                statement_en=ck.text(a, "statement_en", f"{what}: attestation"),
                grants=ck.choice(a, "grants", f"{what}: attestation", ATTESTATION_GRANTS)
                if "grants" in a
                else None,
            )
    else:
        requirement = _build_requirement(c, ck, what)

    on_breach: dict[str, str] = {}
    if "on_breach" in c:
        raw = c["on_breach"]
        if isinstance(raw, str):
            pairs = [(t, raw, c.vpos("on_breach")) for t in tiers]
        elif isinstance(raw, LMap):
            pairs = [(t, v, raw.vpos(t)) for t, v in raw.items()]
            for t in raw:
                if t not in tiers:
                    ck.error(
                        raw.kpos(t),
                        f"{what}: on_breach names tier {t!r}, which the control does not apply to ({tiers})",
                    )
        else:
            pairs = []
            ck.error(
                c.vpos("on_breach"),
                f"{what}: on_breach must be one of {list(ON_BREACH_ACTIONS)} or a mapping tier -> action. Got a {_tname(raw)} instead.",
            )
        for tier, action, pos in pairs:
            if action not in ON_BREACH_ACTIONS:
                ck.error(
                    pos,
                    f"{what}: on_breach must be one of {list(ON_BREACH_ACTIONS)}. Got {action!r} instead.",
                )
            elif action == ON_BREACH_SUSPEND and (check is None or GATE_MONITOR not in gates):
                ck.error(
                    pos,
                    f"{what}: on_breach: suspend is allowed only for a check at the {GATE_MONITOR!r} gate",
                )
            else:
                on_breach[tier] = action

    disabled = False
    reason_zh = reason_en = ""
    # ``disabled: null`` (a bank's override) enables a control the base pack ships disabled.
    if c.get("disabled") is not None:
        d = ck.mapping(c, "disabled", c["disabled"], f"{what}: disabled")
        if d is not None:
            ck.keys(d, f"{what}: disabled", ["reason_zh", "reason_en"], [])
            disabled = True
            reason_zh = ck.text(d, "reason_zh", f"{what}: disabled")
            reason_en = ck.text(d, "reason_en", f"{what}: disabled")

    if len([m for m in ck.messages if m.level == LEVEL_ERROR]) > before or severity is None or not gates:
        return None
    return Control(
        id=cid,
        title_zh=title_zh,
        title_en=title_en,
        clauses=clauses,
        secondary_clauses=secondary,
        gates=tuple(g for g in GATES if g in gates),
        severity=severity,
        tiers=tuple(tiers),
        check=check,
        attestation=attestation,
        requirement=requirement,
        on_breach=on_breach,
        catalog_check=catalog_check,
        disabled=disabled,
        disabled_reason_zh=reason_zh,
        disabled_reason_en=reason_en,
    )


def _build_requirement(c: LMap, ck: _Checker, what: str) -> Requirement | None:
    raw = c["requirement"]
    if isinstance(raw, str):
        rid, params, pos = raw, {}, c.vpos("requirement")
    elif isinstance(raw, LMap):
        ck.keys(raw, f"{what}: requirement", ["id"], ["params"])
        rid, pos = raw.get("id"), raw.vpos("id")
        params = raw.get("params") or {}
        if not isinstance(params, dict):
            ck.error(
                raw.vpos("params"),
                f"{what}: requirement params must be a mapping. Got a {_tname(params)} instead.",
            )
            params = {}
    else:
        ck.error(
            c.vpos("requirement"),
            f"{what}: requirement must be an id or a mapping {{id, params}}. Got a {_tname(raw)} instead.",
        )
        return None
    if rid not in REQUIREMENT_IDS:
        ck.error(pos, f"{what}: requirement id must be one of {list(REQUIREMENT_IDS)}. Got {rid!r} instead.")
        return None
    return Requirement(id=rid, params=_plain(params))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _build_check(c: LMap, ck: _Checker, what: str, tiers: list[str], tier_ids: list[str]) -> Check | None:
    m = ck.mapping(c, "check", c["check"], f"{what}: check")
    if m is None:
        return None
    w = f"{what}: check"
    ck.keys(
        m,
        w,
        ["monitor", "metric", "comparator", "thresholds", "basis", "note_zh", "note_en"],
        ["feature", "group", "params"],
    )
    from monitors.base import MonitorPluginError

    try:
        declared = dict(KNOWN_METRICS)
    except MonitorPluginError as exc:
        # A broken monitor plug-in makes every check's metric unknowable: say so where checks start.
        ck.error(m.vpos("monitor") if "monitor" in m else c.vpos("check"), f"{w}: {exc}")
        return None
    monitor = ck.choice(m, "monitor", w, tuple(declared)) if "monitor" in m else None
    metric = m.get("metric")
    if "metric" in m and monitor is not None and metric not in declared[monitor]:
        ck.error(
            m.vpos("metric"),
            f"{w}: metric must be a known {monitor} metric, one of {sorted(declared[monitor])}. Got {metric!r} instead.",
        )
    selectors: dict[str, str | None] = {}
    for key in ("feature", "group"):
        value = m.get(key)
        if value is not None and not isinstance(value, str):
            ck.error(
                m.vpos(key),
                f"{w}: {key} must be a name, {ANY!r} (every one: the worst decides) or null. Got {value!r} instead.",
            )
        selectors[key] = value
    comparator = ck.choice(m, "comparator", w, COMPARATORS) if "comparator" in m else None
    basis = ck.choice(m, "basis", w, THRESHOLD_BASES) if "basis" in m else None
    note_zh = ck.text(m, "note_zh", w)
    note_en = ck.text(m, "note_en", w)

    params: dict[str, Any] = {}
    if "params" in m and m["params"] is not None:
        p = ck.mapping(m, "params", m["params"], f"{w}: params")
        if p is not None:
            for key, value in p.items():
                if isinstance(value, LMap):
                    ck.error(
                        p.vpos(key),
                        f"{w}: params.{key} must be a number, string, boolean or list. Got a mapping instead.",
                    )
                params[key] = _plain(value)

    thresholds: dict[str, Threshold] = {}
    t = ck.mapping(m, "thresholds", m.get("thresholds"), f"{w}: thresholds") if "thresholds" in m else None
    if t is not None:
        for tier, body in t.items():
            if tier not in tier_ids:
                ck.error(t.kpos(tier), f"{w}: thresholds name tier {tier!r}; tiers are {tier_ids}")
                continue
            if tier not in tiers:
                ck.warning(
                    t.kpos(tier),
                    f"{w}: thresholds for tier {tier!r}, which the control does not apply to, are ignored",
                )
            th = _build_threshold(t, tier, body, ck, w, comparator)
            if th is not None:
                thresholds[tier] = th
        for tier in tiers:
            if tier not in t:
                ck.error(
                    t.pos, f"{w}: thresholds are missing for tier {tier!r} (the control applies to {tiers})"
                )
    if monitor is None or comparator is None or basis is None or t is None:
        return None
    return Check(
        monitor=monitor,
        metric=metric,
        feature=selectors["feature"],
        group=selectors["group"],
        comparator=comparator,
        thresholds=thresholds,
        params=params,
        basis=basis,
        note_zh=note_zh,
        note_en=note_en,
    )


def _build_threshold(
    t: LMap, tier: str, body: Any, ck: _Checker, w: str, comparator: str | None
) -> Threshold | None:
    b = ck.mapping(t, tier, body, f"{w}: thresholds.{tier}")
    if b is None:
        return None
    ck.keys(b, f"{w}: thresholds.{tier}", ["fail"], ["warn"])
    values: dict[str, float | None] = {"warn": None, "fail": None}
    for key in ("warn", "fail"):
        if key in b and b[key] is not None:
            if not _is_number(b[key]):
                ck.error(
                    b.vpos(key), f"{w}: thresholds.{tier}.{key} must be a number. Got {b[key]!r} instead."
                )
            elif b[key] != b[key] or b[key] in (float("inf"), float("-inf")):
                ck.error(
                    b.vpos(key),
                    f"{w}: thresholds.{tier}.{key} must be a finite number. Got {b[key]!r} instead.",
                )
            else:
                values[key] = float(b[key])
    warn, fail = values["warn"], values["fail"]
    if fail is None:
        if "fail" in b and b["fail"] is None:
            ck.error(b.vpos("fail"), f"{w}: thresholds.{tier}.fail must be a number. Got null instead.")
        return None
    if warn is not None and comparator is not None:
        looser_ok = warn >= fail if comparator in ("lt", "le") else warn <= fail
        if not looser_ok:
            side = "at or above" if comparator in ("lt", "le") else "at or below"
            ck.error(
                ck.prefer(b.vpos("warn"), b.vpos("fail")),
                f"{w}: thresholds.{tier}: with comparator {comparator} the warn threshold must be {side} the fail "
                f"threshold (a warning comes before a failure). Got warn {warn:g}, fail {fail:g} instead.",
            )
    return Threshold(fail=fail, warn=warn)


def _build_out_of_scope(tree: LMap, ck: _Checker, clause_ids: set[str]) -> dict[str, OutOfScope]:
    if "out_of_scope" not in tree:
        return {}
    m = ck.mapping(tree, "out_of_scope", tree["out_of_scope"], "out_of_scope")
    if m is None:
        return {}
    out = {}
    for cid, body in m.items():
        what = f"out_of_scope {cid}"
        if cid not in clause_ids:
            ck.error(m.kpos(cid), f"{what}: unknown clause id {cid!r}; it must be defined in clauses")
        b = ck.mapping(m, cid, body, what)
        if b is None:
            continue
        ck.keys(b, what, ["reason_zh", "reason_en"], [])
        out[cid] = OutOfScope(cid, ck.text(b, "reason_zh", what), ck.text(b, "reason_en", what))
    return out


# -- model risk operations sections -------------------------------------------------------------------

_CALENDAR_KEYS = (
    "reviews",
    "due_soon_days",
    "due_soon_basis",
    "overdue_at_monitor_gate",
    "overdue_control",
    "special_audit",
)
_REVIEW_KEYS = (
    "title_zh",
    "title_en",
    "anchor",
    "clauses",
    "secondary_clauses",
    "intervals",
    "by_model_type",
)
_INTERVAL_KEYS = ("days", "basis", "note_zh", "note_en")
_SPECIAL_AUDIT_KEYS = ("title_zh", "title_en", "trigger", "clauses", "secondary_clauses", *_INTERVAL_KEYS)
_FINDINGS_KEYS = ("remediation_days", "acceptance_role", "blocking_severities", "clauses")
_VENDOR_KEYS = (
    "title_zh",
    "title_en",
    "clauses",
    "note_zh",
    "note_en",
    "not_applicable",
    "outcome_analysis",
    "attestations",
)


def _days(m: LMap, key: str, ck: _Checker, what: str) -> int | None:
    value = m.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        ck.error(
            m.vpos(key) if key in m else m.pos,
            f"{what}: {key} must be a whole number of days >= 0. Got {value!r} instead.",
        )
        return None
    return value


def _build_interval(parent: LMap, key: str, ck: _Checker, what: str) -> Interval | None:
    m = ck.mapping(parent, key, parent.get(key), what)
    if m is None:
        return None
    ck.keys(m, what, ["days", "basis"], ["note_zh", "note_en"])
    days = _days(m, "days", ck, what)
    basis = ck.choice(m, "basis", what, THRESHOLD_BASES)
    if days is None or basis is None:
        return None
    return Interval(
        days, basis, ck.text(m, "note_zh", what, required=False), ck.text(m, "note_en", what, required=False)
    )


def _tier_intervals(
    parent: LMap, key: str, ck: _Checker, what: str, tier_ids: list[str]
) -> dict[str, Interval]:
    m = ck.mapping(parent, key, parent.get(key), f"{what}: {key}")
    out: dict[str, Interval] = {}
    if m is None:
        return out
    for tier in m:
        if tier not in tier_ids:
            ck.error(m.kpos(tier), f"{what}: {key}: tier must be one of {tier_ids}. Got {tier!r} instead.")
            continue
        interval = _build_interval(m, tier, ck, f"{what}: {key}.{tier}")
        if interval is not None:
            out[tier] = interval
    return out


def _build_review_calendar(
    tree: LMap, ck: _Checker, tier_ids: list[str], clause_ids: set[str], control_ids: set[str]
) -> ReviewCalendar | None:
    if "review_calendar" not in tree:
        return None
    what = "review_calendar"
    m = ck.mapping(tree, "review_calendar", tree["review_calendar"], what)
    if m is None:
        return None
    ck.keys(
        m,
        what,
        ["reviews", "due_soon_days"],
        [k for k in _CALENDAR_KEYS if k not in ("reviews", "due_soon_days")],
    )
    due_soon = _days(m, "due_soon_days", ck, what)
    basis = (
        ck.choice(m, "due_soon_basis", what, THRESHOLD_BASES) if "due_soon_basis" in m else BASIS_CONVENTION
    )
    reviews: list[ReviewKind] = []
    rm = ck.mapping(m, "reviews", m.get("reviews"), f"{what}: reviews")
    for rid, body in (rm or {}).items():
        w = f"{what}: review {rid}"
        r = ck.mapping(rm, rid, body, w)
        if r is None:
            continue
        ck.keys(
            r,
            w,
            ["title_zh", "title_en", "anchor", "clauses", "intervals"],
            ["secondary_clauses", "by_model_type"],
        )
        anchor = r.get("anchor")
        ok_anchor = anchor in REVIEW_ANCHORS or (
            isinstance(anchor, str)
            and anchor.startswith("attestation:")
            and anchor.split(":", 1)[1] in control_ids
        )
        if not ok_anchor:
            ck.error(
                r.vpos("anchor") if "anchor" in r else r.pos,
                f"{w}: anchor must be one of {list(REVIEW_ANCHORS)} or attestation:<control id of the pack>. Got {anchor!r} instead.",
            )
        intervals = _tier_intervals(r, "intervals", ck, w, tier_ids)
        missing = [t for t in tier_ids if t not in intervals]
        if "intervals" in r and missing and isinstance(r.get("intervals"), LMap):
            ck.error(r.vpos("intervals"), f"{w}: intervals must give every tier; missing {missing}")
        by_type: dict[str, dict[str, Interval]] = {}
        if "by_model_type" in r:
            bt = ck.mapping(r, "by_model_type", r["by_model_type"], f"{w}: by_model_type")
            for mt in bt or {}:
                by_type[str(mt)] = _tier_intervals(bt, mt, ck, f"{w}: by_model_type", tier_ids)
        reviews.append(
            ReviewKind(
                id=str(rid),
                title_zh=ck.text(r, "title_zh", w),
                title_en=ck.text(r, "title_en", w),
                anchor=str(anchor),
                clauses=_clause_refs(r, "clauses", ck, w, clause_ids),
                secondary_clauses=_clause_refs(r, "secondary_clauses", ck, w, clause_ids),
                intervals=intervals,
                by_model_type=by_type,
            )
        )
    if rm is not None and "revalidation" not in rm:
        ck.error(
            rm.pos, f"{what}: reviews must define 'revalidation' (the due date of every deployed version)"
        )
    overdue: dict[str, str] = {}
    if "overdue_at_monitor_gate" in m:
        om = ck.mapping(
            m, "overdue_at_monitor_gate", m["overdue_at_monitor_gate"], f"{what}: overdue_at_monitor_gate"
        )
        for tier in om or {}:
            if tier not in tier_ids:
                ck.error(
                    om.kpos(tier),
                    f"{what}: overdue_at_monitor_gate: tier must be one of {tier_ids}. Got {tier!r} instead.",
                )
                continue
            action = ck.choice(om, tier, f"{what}: overdue_at_monitor_gate", OVERDUE_ACTIONS)
            if action:
                overdue[tier] = action
    control = None
    if "overdue_control" in m:
        control = ck.string(m, "overdue_control", what)
        if control and control not in control_ids:
            ck.error(
                m.vpos("overdue_control"), f"{what}: overdue_control {control!r} is not a control of the pack"
            )
    special = None
    if "special_audit" in m:
        w = f"{what}: special_audit"
        sa = ck.mapping(m, "special_audit", m["special_audit"], w)
        if sa is not None:
            ck.keys(
                sa,
                w,
                ["title_zh", "title_en", "trigger", "days", "basis", "clauses"],
                ["secondary_clauses", "note_zh", "note_en"],
            )
            trigger = ck.choice(sa, "trigger", w, SPECIAL_AUDIT_TRIGGERS)
            days = _days(sa, "days", ck, w)
            sb = ck.choice(sa, "basis", w, THRESHOLD_BASES)
            if trigger and days is not None and sb:
                special = SpecialAudit(
                    title_zh=ck.text(sa, "title_zh", w),
                    title_en=ck.text(sa, "title_en", w),
                    trigger=trigger,
                    interval=Interval(
                        days,
                        sb,
                        ck.text(sa, "note_zh", w, required=False),
                        ck.text(sa, "note_en", w, required=False),
                    ),
                    clauses=_clause_refs(sa, "clauses", ck, w, clause_ids),
                    secondary_clauses=_clause_refs(sa, "secondary_clauses", ck, w, clause_ids),
                )
    if due_soon is None or (basis is None):
        return None
    return ReviewCalendar(
        due_soon=Interval(due_soon, basis),
        reviews=tuple(reviews),
        overdue_at_monitor_gate=overdue,
        overdue_control=control,
        special_audit=special,
    )


def _build_findings_policy(tree: LMap, ck: _Checker, clause_ids: set[str]) -> FindingsPolicy | None:
    if "findings" not in tree:
        return None
    what = "findings"
    m = ck.mapping(tree, "findings", tree["findings"], what)
    if m is None:
        return None
    ck.keys(m, what, ["remediation_days", "acceptance_role"], ["blocking_severities", "clauses"])
    remediation: dict[str, Interval] = {}
    rd = ck.mapping(m, "remediation_days", m.get("remediation_days"), f"{what}: remediation_days")
    for sev in rd or {}:
        if sev not in SEVERITIES:
            ck.error(
                rd.kpos(sev),
                f"{what}: remediation_days: severity must be one of {list(SEVERITIES)}. Got {sev!r} instead.",
            )
            continue
        interval = _build_interval(rd, sev, ck, f"{what}: remediation_days.{sev}")
        if interval is not None:
            remediation[sev] = interval
    if rd is not None and [s for s in SEVERITIES if s not in remediation] and not ck.failed:
        ck.error(rd.pos, f"{what}: remediation_days must give every severity {list(SEVERITIES)}")
    role = ck.choice(m, "acceptance_role", what, ROLES)
    blocking: list[str] = [SEVERITY_BLOCKING]
    if "blocking_severities" in m:
        blocking = []
        for sev, pos in ck.string_list(m, "blocking_severities", what) or []:
            if sev not in SEVERITIES:
                ck.error(
                    pos,
                    f"{what}: blocking_severities must name severities {list(SEVERITIES)}. Got {sev!r} instead.",
                )
            else:
                blocking.append(sev)
    if role is None:
        return None
    return FindingsPolicy(
        remediation, role, tuple(blocking), _clause_refs(m, "clauses", ck, what, clause_ids)
    )


def _build_vendor_models(
    tree: LMap, ck: _Checker, tier_ids: list[str], clause_ids: set[str], control_ids: set[str]
) -> VendorPolicy | None:
    if "vendor_models" not in tree:
        return None
    what = "vendor_models"
    m = ck.mapping(tree, "vendor_models", tree["vendor_models"], what)
    if m is None:
        return None
    ck.keys(
        m,
        what,
        ["title_zh", "title_en", "clauses", "note_zh", "note_en"],
        ["not_applicable", "outcome_analysis", "attestations"],
    )
    not_applicable: dict[str, OutOfScope] = {}
    if "not_applicable" in m:
        na = ck.mapping(m, "not_applicable", m["not_applicable"], f"{what}: not_applicable")
        for cid, body in (na or {}).items():
            w = f"{what}: not_applicable {cid}"
            if cid not in control_ids:
                ck.error(na.kpos(cid), f"{w}: {cid!r} is not a control of the pack")
            b = ck.mapping(na, cid, body, w)
            if b is None:
                continue
            ck.keys(b, w, ["reason_zh", "reason_en"], [])
            not_applicable[cid] = OutOfScope(cid, ck.text(b, "reason_zh", w), ck.text(b, "reason_en", w))
    outcome: list[str] = []
    if "outcome_analysis" in m:
        for cid, pos in ck.string_list(m, "outcome_analysis", what) or []:
            if cid not in control_ids:
                ck.error(pos, f"{what}: outcome_analysis names {cid!r}, which is not a control of the pack")
            elif cid in not_applicable:
                ck.error(pos, f"{what}: {cid} is both not_applicable and outcome_analysis")
            else:
                outcome.append(cid)
    attestations: list[Control] = []
    if "attestations" in m:
        raw = m["attestations"]
        if not isinstance(raw, LSeq):
            ck.error(
                m.vpos("attestations"), f"{what}: attestations must be a list. Got a {_tname(raw)} instead."
            )
        else:
            for i, body in enumerate(raw):
                c = ck.mapping(raw, i, body, f"{what}: attestations[{i}]")
                if c is None:
                    continue
                cid = ck.string(c, "id", f"{what}: attestations[{i}]")
                if cid is None:
                    continue
                w = f"{what}: control {cid}"
                if cid in control_ids or any(a.id == cid for a in attestations):
                    ck.error(c.vpos("id"), f"{w}: duplicate control id {cid!r}")
                    continue
                if "attestation" not in c:
                    ck.error(c.pos, f"{w}: a vendor control must be an attestation")
                    continue
                ck.keys(
                    c,
                    w,
                    ["id", "title_zh", "title_en", "gates", "severity", "attestation", "clauses"],
                    ["secondary_clauses", "tiers"],
                )
                control = _build_control(c, ck, w, cid, tier_ids, clause_ids)
                if control is not None:
                    attestations.append(control)
    return VendorPolicy(
        title_zh=ck.text(m, "title_zh", what),
        title_en=ck.text(m, "title_en", what),
        clauses=_clause_refs(m, "clauses", ck, what, clause_ids),
        note_zh=ck.text(m, "note_zh", what),
        note_en=ck.text(m, "note_en", what),
        not_applicable=not_applicable,
        outcome_analysis=tuple(outcome),
        attestations=tuple(attestations),
    )


def _cross_checks(
    tree: LMap,
    ck: _Checker,
    clauses: list[Clause],
    controls: list[Control],
    out_of_scope: Mapping[str, OutOfScope],
    tier_ids: list[str],
) -> None:
    positions = _control_positions(tree)
    implemented = {cid for c in controls if not c.disabled for cid in c.clauses}
    oos_map = tree.get("out_of_scope") if isinstance(tree.get("out_of_scope"), LMap) else None
    for cid in out_of_scope:
        if cid in implemented and oos_map is not None:
            ck.warning(
                oos_map.kpos(cid), f"clause {cid} is marked out of scope but an enabled control implements it"
            )
    clause_list = tree.get("clauses")
    # With errors, some controls were not built, and coverage warnings would only echo those errors.
    for i, clause in enumerate(clauses if not ck.failed else ()):
        if clause.id not in implemented and clause.id not in out_of_scope:
            pos = clause_list.ipos(i) if isinstance(clause_list, LSeq) else tree.pos
            ck.warning(
                pos,
                f"clause {clause.id} is neither implemented by an enabled control nor marked out of scope",
            )

    # Two checks that run one monitor at one gate and tier must not ask for different parameter values.
    for tier in tier_ids:
        for gate in GATES:
            seen: dict[tuple[str, str], tuple[Any, str]] = {}
            for c in controls:
                if c.check is None or not c.applies(gate, tier):
                    continue
                for key, value in c.check.params.items():
                    prev = seen.get((c.check.monitor, key))
                    if prev is None:
                        seen[(c.check.monitor, key)] = (value, c.id)
                    elif prev[0] != value:
                        ck.error(
                            positions.get(c.id, tree.pos),
                            f"control {c.id}: {c.check.monitor} parameter {key}={value!r} conflicts with {key}={prev[0]!r} "
                            f"of control {prev[1]} (same monitor, gate {gate}, tier {tier}); the monitor runs once with one value",
                        )
                        return


def _control_positions(tree: LMap) -> dict[str, Pos]:
    out: dict[str, Pos] = {}
    controls = tree.get("controls")
    if isinstance(controls, LSeq):
        for i, c in enumerate(controls):
            if isinstance(c, LMap) and isinstance(c.get("id"), str):
                out.setdefault(c["id"], controls.ipos(i))
    return out


# -- extends and overrides -------------------------------------------------------------------------------


def _apply_extension(base_tree: LMap, ext: LMap, ck: _Checker) -> LMap:
    """The bank's file on top of a copy of the base pack's tree."""
    merged = _copy(base_tree)
    ck.keys(
        ext,
        "the policy file",
        ["extends", "pack"],
        [k for k in _PACK_KEYS_EXT if k not in ("extends", "pack")],
    )
    merged.put("pack", ext.get("pack"), ext.kpos("pack"), ext.vpos("pack"))

    for section in ("tiers", "sources", "out_of_scope"):
        if section not in ext:
            continue
        add = ck.mapping(ext, section, ext[section], section)
        target = merged.get(section)
        if add is None:
            continue
        if not isinstance(target, LMap):
            merged.put(section, _copy(add), ext.kpos(section), ext.vpos(section))
            continue
        for key, value in add.items():
            if key in target:
                ck.error(
                    add.kpos(key),
                    f"{section}: {key!r} is already defined by the base pack; change it under overrides instead",
                )
                continue
            target.put(key, _copy(value), add.kpos(key), add.vpos(key))
    for section in ("clauses", "controls"):
        if section not in ext:
            continue
        add = ext[section]
        if not isinstance(add, LSeq):
            ck.error(ext.vpos(section), f"{section} must be a list. Got a {_tname(add)} instead.")
            continue
        target = merged.get(section)
        if not isinstance(target, LSeq):
            merged.put(section, _copy(add), ext.kpos(section), ext.vpos(section))
            continue
        for i, item in enumerate(add):
            target.append(_copy(item))
            target.item_pos.append(add.ipos(i))

    for section in _OPERATIONS_SECTIONS:
        if section in ext:
            merged.put(section, _copy(ext[section]), ext.kpos(section), ext.vpos(section))

    if "overrides" in ext:
        ov = ck.mapping(ext, "overrides", ext["overrides"], "overrides")
        if ov is not None:
            ck.keys(ov, "overrides", [], ["tiers", "controls"])
            _override_tiers(merged, ov, ck)
            _override_controls(merged, ov, ck)
    return merged


def _override_tiers(merged: LMap, ov: LMap, ck: _Checker) -> None:
    if "tiers" not in ov:
        return
    tiers = ck.mapping(ov, "tiers", ov["tiers"], "overrides: tiers")
    target = merged.get("tiers")
    if tiers is None or not isinstance(target, LMap):
        return
    for tid, body in tiers.items():
        if tid not in target:
            ck.error(
                tiers.kpos(tid), f"overrides: tiers: unknown tier {tid!r}; the base pack has {list(target)}"
            )
            continue
        b = ck.mapping(tiers, tid, body, f"overrides: tiers.{tid}")
        if b is None:
            continue
        ck.keys(
            b,
            f"overrides: tiers.{tid}",
            [],
            ["title_zh", "title_en", "approvals", "description_zh", "description_en"],
        )
        tier = target[tid]
        if not isinstance(tier, LMap):
            continue
        for key, value in b.items():
            if key == "approvals" and isinstance(value, LMap) and isinstance(tier.get("approvals"), LMap):
                for role, count in value.items():
                    tier["approvals"].put(role, count, value.kpos(role), value.vpos(role))
            else:
                tier.put(key, _copy(value), b.kpos(key), b.vpos(key))


def _override_controls(merged: LMap, ov: LMap, ck: _Checker) -> None:
    if "controls" not in ov:
        return
    changes = ck.mapping(ov, "controls", ov["controls"], "overrides: controls")
    controls = merged.get("controls")
    if changes is None or not isinstance(controls, LSeq):
        return
    index = {c.get("id"): c for c in controls if isinstance(c, LMap)}
    for cid, body in changes.items():
        what = f"overrides: control {cid}"
        target = index.get(cid)
        if target is None:
            ck.error(
                changes.kpos(cid),
                f"{what}: unknown control id {cid!r}; overrides can only change controls of the base pack",
            )
            continue
        b = ck.mapping(changes, cid, body, what)
        if b is None:
            continue
        ck.keys(b, what, [], _OVERRIDE_CONTROL_KEYS)
        check = target.get("check")
        for key, value in b.items():
            if key == "disabled" and value in (False, None):
                # A control the shipped pack keeps off (an opt-in such as CHK-ROB-04.exec) is switched on here.
                target.pop("disabled", None)
                continue
            if key in ("thresholds", "params", "basis", "note_zh", "note_en"):
                if not isinstance(check, LMap):
                    ck.error(
                        b.kpos(key),
                        f"{what}: {key} can only be overridden on a check; this control is not a machine check",
                    )
                    continue
                if key in ("thresholds", "params"):
                    _merge_mapping(check, key, value, b, ck, what, depth=2 if key == "thresholds" else 1)
                else:
                    check.put(key, _copy(value), b.kpos(key), b.vpos(key))
            else:
                target.put(key, _copy(value), b.kpos(key), b.vpos(key))
        # A bank's own number is its own calibration, not the shipped convention, unless it says otherwise.
        if "thresholds" in b and "basis" not in b and isinstance(check, LMap):
            check.put("basis", BASIS_INSTITUTION, b.kpos("thresholds"), b.vpos("thresholds"))


def _merge_mapping(
    target: LMap, key: str, value: Any, owner: LMap, ck: _Checker, what: str, depth: int
) -> None:
    if not isinstance(value, LMap):
        ck.error(owner.vpos(key), f"{what}: {key} must be a mapping. Got a {_tname(value)} instead.")
        return
    current = target.get(key)
    if not isinstance(current, LMap):
        target.put(key, _copy(value), owner.kpos(key), owner.vpos(key))
        return
    for k, v in value.items():
        if depth > 1 and isinstance(v, LMap) and isinstance(current.get(k), LMap):
            inner = current[k]
            for k2, v2 in v.items():
                inner.put(k2, _copy(v2), v.kpos(k2), v.vpos(k2))
        else:
            current.put(k, _copy(v), value.kpos(k), value.vpos(k))


# -- discovery ---------------------------------------------------------------------------------------------


def _is_path_like(ref: str | Path) -> bool:
    if isinstance(ref, Path):
        return True
    return os.sep in ref or "/" in ref or ref.endswith((".yaml", ".yml")) or Path(ref).is_file()


def _split_ref(ref: str) -> tuple[str, str | None]:
    pack_id, _, version = ref.partition("@")
    return pack_id.strip(), (version.strip() or None)


_header_cache: dict[Path, tuple[tuple[int, int], dict]] = {}


def _header(path: Path) -> dict | None:
    """The ``pack`` header and ``extends`` of a file, read fast (no positions); None if it is not a pack."""
    try:
        st = path.stat()
    except OSError:
        return None
    key = (st.st_mtime_ns, st.st_size)
    hit = _header_cache.get(path)
    if hit is not None and hit[0] == key:
        return hit[1]
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_YAML_LOADER)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("pack"), dict):
        return None
    head = dict(data["pack"])
    head["_extends"] = data.get("extends")
    _header_cache[path] = (key, head)
    return head


def _candidates(search_paths: Iterable[str | Path]) -> list[tuple[Path, str]]:
    from policies import PACK_SUFFIXES, shipped_pack_files

    out: list[tuple[Path, str]] = []
    for folder in search_paths:
        folder = Path(folder)
        if folder.is_dir():
            out.extend(
                (p, "search_path")
                for p in sorted(folder.iterdir())
                if p.is_file() and p.suffix in PACK_SUFFIXES
            )
    out.extend((p, "shipped") for p in shipped_pack_files())
    return out


def list_packs(search_paths: Iterable[str | Path] = ()) -> list[PackSummary]:
    """Every pack found in ``search_paths`` (first) and among the shipped ones. Unreadable files are skipped;
    ``lint`` them to see why."""
    out = []
    for path, origin in _candidates(search_paths):
        head = _header(path)
        if head is None:
            continue
        out.append(
            PackSummary(
                id=str(head.get("id", "")),
                version=str(head.get("version", "")),
                title_zh=str(head.get("title_zh", "")),
                title_en=str(head.get("title_en", "")),
                path=path,
                origin=origin,
                extends=None if head.get("_extends") is None else str(head["_extends"]),
            )
        )
    return out


def find_pack_file(ref: str, search_paths: Iterable[str | Path] = ()) -> Path:
    """The file of pack ``id`` or ``id@version``: search paths first, then the shipped packs."""
    pack_id, version = _split_ref(ref)
    found = [s for s in list_packs(search_paths) if s.id == pack_id]
    if not found:
        known = sorted({f"{s.id}@{s.version}" for s in list_packs(search_paths)})
        raise PolicyError(f"no policy pack with id {pack_id!r}. Known packs: {known}; or give a file path.")
    if version is None:
        return found[0].path
    for s in found:
        if s.version == version:
            return s.path
    raise PolicyError(
        f"policy pack {pack_id!r} version {version!r} was not found. Found versions: {[s.version for s in found]}."
    )


# -- public entry points ---------------------------------------------------------------------------------


_pack_cache: dict[tuple[Path, tuple[str, ...]], tuple[tuple[tuple[Path, int, int], ...], PolicyPack]] = {}


def _stamp(paths: Iterable[Path]) -> tuple[tuple[Path, int, int], ...]:
    out = []
    for p in paths:
        try:
            st = p.stat()
            out.append((p, st.st_mtime_ns, st.st_size))
        except OSError:
            out.append((p, -1, -1))
    return tuple(out)


def _load_tree(
    path: Path, search_paths: tuple[str, ...], ck: _Checker, chain: tuple[Path, ...]
) -> tuple[LMap, BaseRef | None, tuple[Path, ...]]:
    """The merged raw tree of ``path`` (following ``extends``), the base it extends, and the files read."""
    path = path.resolve()
    if path in chain:
        raise PolicyError(f"{path}:1: extends forms a cycle: {' -> '.join(str(p) for p in (*chain, path))}")
    tree = _read_tree(path, ck.messages)
    if "extends" not in tree:
        return tree, None, (path,)
    ref = tree["extends"]
    pos = tree.vpos("extends")
    if not isinstance(ref, str) or not ref.strip():
        raise PolicyError(
            f"{pos.file}:{pos.line}: extends must be a pack id (optionally id@version) or a file path. Got {ref!r} instead."
        )
    ref = ref.strip()
    try:
        if _is_path_like(ref):
            base_path = (path.parent / ref).resolve()
            wanted_version = None
        else:
            base_path = find_pack_file(ref, (str(path.parent), *search_paths))
            wanted_version = _split_ref(ref)[1]
    except PolicyError as exc:
        raise PolicyError(f"{pos.file}:{pos.line}: extends {ref!r}: {exc.message}") from None
    base_ck = _Checker([])
    base_tree, _, base_files = _load_tree(base_path, search_paths, base_ck, (*chain, path))
    base_pack = _build(base_tree, base_ck, base=None, path=base_path) if not base_ck.failed else None
    if base_pack is None:
        first = next(m for m in base_ck.messages if m.level == LEVEL_ERROR)
        raise PolicyError(f"{pos.file}:{pos.line}: extends {ref!r}, which does not load: {first}")
    if wanted_version is not None and base_pack.version != wanted_version:
        raise PolicyError(
            f"{pos.file}:{pos.line}: extends {ref!r} but {base_path} is version {base_pack.version}"
        )
    merged = _apply_extension(base_tree, tree, ck)
    # The merged pack's own record of its base is that base's merged identity.
    base_ref = BaseRef(id=base_pack.id, version=base_pack.version, digest=base_pack.digest)
    return merged, base_ref, (path, *base_files)


def _lint_and_build(
    path: Path, search_paths: tuple[str, ...]
) -> tuple[list[LintMessage], PolicyPack | None, tuple[Path, ...]]:
    ck = _Checker([], top_file=str(path.resolve()))
    try:
        tree, base, files = _load_tree(path, search_paths, ck, ())
    except PolicyError as exc:
        file, line, text = _split_location(exc.message, str(path))
        return [LintMessage(file, line, 0, LEVEL_ERROR, text)], None, (path,)
    if ck.failed:
        return ck.messages, None, files
    pack = _build(tree, ck, base=base, path=path.resolve())
    return ck.messages, pack, files


def _split_location(message: str, default_file: str) -> tuple[str, int, str]:
    m = re.match(r"^(.*?):(\d+): (.*)$", message, re.DOTALL)
    if m:
        return m.group(1), int(m.group(2)), m.group(3)
    return default_file, 0, message


def lint(path: str | Path, *, search_paths: Iterable[str | Path] = ()) -> list[LintMessage]:
    """Every problem in the pack file (and the base it extends), errors and warnings, in file order."""
    messages, _, _ = _lint_and_build(Path(path), tuple(str(p) for p in search_paths))
    return _ordered(messages)


def _ordered(messages: list[LintMessage]) -> list[LintMessage]:
    seen = set()
    out = []
    for m in sorted(messages, key=lambda m: (m.file, m.line, m.column)):
        key = (m.file, m.line, m.column, m.level, m.message)
        if key not in seen:
            seen.add(key)
            out.append(m)
    return out


def load_pack(id_or_path: str | Path, *, search_paths: Iterable[str | Path] = ()) -> PolicyPack:
    """A validated pack: a shipped or search-path pack by ``id`` / ``id@version``, or a file path.

    Raises ``PolicyError`` whose message is one line starting ``file:line:``.
    """
    sp = tuple(str(p) for p in search_paths)
    path = Path(id_or_path) if _is_path_like(id_or_path) else find_pack_file(str(id_or_path), sp)
    key = (path.resolve(), sp)
    hit = _pack_cache.get(key)
    if hit is not None and _stamp(p for p, _, _ in hit[0]) == hit[0]:
        return hit[1]
    messages, pack, files = _lint_and_build(path, sp)
    # The file the user named comes first: a broken override can make the base pack's own references
    # fail too (a control that did not merge), and those follow-on errors are not what to fix.
    own = str(path.resolve())
    errors = sorted((m for m in _ordered(messages) if m.level == LEVEL_ERROR), key=lambda m: m.file != own)
    if errors or pack is None:
        first = errors[0] if errors else LintMessage(str(path), 0, 0, LEVEL_ERROR, "the pack did not load")
        more = f" (and {len(errors) - 1} more; run `modelreg policy lint {path}`)" if len(errors) > 1 else ""
        raise PolicyError(f"{first.file}:{first.line}: {first.message}{more}")
    _pack_cache[key] = (_stamp(files), pack)
    return pack
