"""Data set fingerprints attached to a model version (rows, schema, content digest)."""

from __future__ import annotations

from pathlib import Path

from modelreg.domain.entities import Dataset
from modelreg.errors import BadInput
from modelreg.registry import Registry


def fingerprint_file(path: str | Path, role: str = "data"):
    from monitors.base import DataInputError, fingerprint, load_frame

    try:
        frame = load_frame(Path(path))
    except DataInputError as exc:
        raise BadInput(str(exc)) from None
    if frame.empty:
        raise BadInput(f"data file {path} has no rows")
    return frame, fingerprint(frame, role)


def attach_frame(
    registry: Registry,
    name: str,
    version: str,
    *,
    role: str,
    frame,
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
    registry: Registry, name: str, version: str, *, role: str, path: str | Path, owner: str | None = None
) -> Dataset:
    path = Path(path)
    _frame, fp = fingerprint_file(path, role)
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
