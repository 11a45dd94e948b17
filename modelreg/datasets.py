"""Reading data as banks export it, and data set fingerprints attached to a model version.

Core-system exports in China are often GBK/GB18030 CSV files, or UTF-8 with a byte-order mark written by
Excel. ``read_table`` reads them with a declared ``encoding`` (or UTF-8, honouring a BOM) and turns every
decoding problem into one ``BadInput`` line naming the options, never a codec traceback."""

from __future__ import annotations

import codecs
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelreg.errors import BadInput

if TYPE_CHECKING:  # the CLI reads ENCODINGS for its help text without importing SQLAlchemy
    from modelreg.domain.entities import Dataset
    from modelreg.registry import Registry

#: The encodings ``--encoding`` accepts: what Chinese core systems and Excel write.
ENCODINGS: tuple[str, ...] = ("utf-8", "utf-8-sig", "gbk", "gb18030")
ENCODING_HELP = (
    "CSV text encoding: " + ", ".join(ENCODINGS) + " (default: utf-8, or utf-8-sig when the file has a BOM)."
)

_OTHER_BOMS = {
    codecs.BOM_UTF32_LE: "UTF-32",
    codecs.BOM_UTF32_BE: "UTF-32",
    codecs.BOM_UTF16_LE: "UTF-16",
    codecs.BOM_UTF16_BE: "UTF-16",
}


def check_encoding(encoding: str | None) -> str | None:
    """The canonical spelling of ``encoding`` (None stays None), or BadInput naming the options."""
    if encoding is None:
        return None
    canonical = encoding.strip().lower().replace("_", "-")
    canonical = {"utf8": "utf-8", "utf8-sig": "utf-8-sig", "cp936": "gbk", "gb2312": "gbk"}.get(
        canonical, canonical
    )
    if canonical not in ENCODINGS:
        raise BadInput(f"--encoding must be one of {', '.join(ENCODINGS)}. Got {encoding!r} instead.")
    return canonical


def sniff_encoding(path: Path, encoding: str | None) -> str:
    """The encoding to read ``path`` with: a UTF-8 byte-order mark means utf-8-sig whatever was declared (one
    --encoding covers --data and --reference, and Excel adds the mark to one of them); UTF-16/32 is refused."""
    with path.open("rb") as fh:
        head = fh.read(4)
    if head.startswith(codecs.BOM_UTF8):
        # EF BB BF would be the GBK text "锘" followed by half a character: no real export starts so.
        return "utf-8-sig"
    for bom, name in _OTHER_BOMS.items():
        if head.startswith(bom):
            raise BadInput(
                f"{path.name} is {name}-encoded (byte-order mark); save it as UTF-8 or GB18030 "
                f"(--encoding must be one of {', '.join(ENCODINGS)})"
            )
    return encoding or "utf-8"


def read_table(path: str | Path, *, encoding: str | None = None, what: str = "data"):
    """A CSV or Parquet file as a DataFrame. CSV text is decoded with ``encoding`` (see ``sniff_encoding``);
    Parquet is UTF-8 by definition and ignores it. Every reading problem is one ``BadInput`` line."""
    import pandas as pd

    from monitors.base import DataInputError, load_frame

    encoding = check_encoding(encoding)
    path = Path(path)
    suffix = path.suffix.lower()
    if not path.exists():
        raise BadInput(f"{what}: data file {path} does not exist")
    if path.is_dir() or suffix not in (".csv", ".txt"):
        try:
            return load_frame(path)
        except DataInputError as exc:
            raise BadInput(f"{what}: {exc}") from None
    used = sniff_encoding(path, encoding)
    try:
        return pd.read_csv(path, encoding=used)
    except UnicodeDecodeError as exc:
        hint = "gbk or gb18030" if used.startswith("utf-8") else "utf-8 or gb18030"
        raise BadInput(
            f"{what}: {path.name} is not valid {used} text (byte 0x{exc.object[exc.start]:02x} at offset "
            f"{exc.start}); pass --encoding {hint} (one of {', '.join(ENCODINGS)})"
        ) from None
    except (ValueError, OSError) as exc:  # pandas' ParserError is a ValueError
        first = str(exc).strip().splitlines()
        raise BadInput(
            f"{what}: cannot read {path.name}: {first[0] if first else type(exc).__name__}"
        ) from None


def fingerprint_file(path: str | Path, role: str = "data", *, encoding: str | None = None):
    from monitors.base import fingerprint

    frame = read_table(path, encoding=encoding, what=f"{role} data")
    if frame.empty:
        raise BadInput(f"data file {path} has no rows")
    return frame, fingerprint(frame, role)


def attach_frame(
    registry: Registry,
    name: str,
    version: str,
    *,
    role: str,
    frame: Any,
    dataset_name: str,
    source: str | None = None,
    owner: str | None = None,
) -> Dataset:
    from monitors.base import fingerprint

    if frame is None or len(frame) == 0:
        raise BadInput(f"data set {dataset_name!r} has no rows")
    fp = fingerprint(frame, role)
    return registry.attach_data(
        name,
        version,
        role=role,
        dataset_name=dataset_name,
        digest=fp.digest,
        rows=fp.rows,
        columns=[list(c) for c in fp.columns],
        source=source,
        owner=owner,
    )


def attach_file(
    registry: Registry,
    name: str,
    version: str,
    *,
    role: str,
    path: str | Path,
    owner: str | None = None,
    encoding: str | None = None,
) -> Dataset:
    if getattr(registry, "remote", False):  # MODELREG_URL: uploaded, fingerprinted by the service
        return registry.attach_file(name, version, role=role, path=path, owner=owner, encoding=encoding)
    path = Path(path)
    _frame, fp = fingerprint_file(path, role, encoding=encoding)
    return registry.attach_data(
        name,
        version,
        role=role,
        dataset_name=path.name,
        digest=fp.digest,
        rows=fp.rows,
        columns=[list(c) for c in fp.columns],
        source=str(path.resolve()),
        owner=owner,
    )
