"""Content-addressed artifact store: <home>/artifacts/<sha[:2]>/<sha>. Callers never choose paths, so an
artifact cannot overwrite another, and a file's name is its proof of integrity."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from sqlalchemy.orm import Session

from modelreg import clock
from modelreg.errors import NotFound


def path_for(root: Path, sha256: str) -> Path:
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise NotFound(f"not an artifact id: {sha256!r}")
    return root / sha256[:2] / sha256


def put_file(root: Path, source: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with open(source, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
            size += len(chunk)
    digest = h.hexdigest()
    target = path_for(root, digest)
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        os.close(fd)
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)  # atomic: a reader never sees half a file under its final name
    return digest, size


def put_bytes(root: Path, data: bytes) -> tuple[str, int]:
    digest = hashlib.sha256(data).hexdigest()
    target = path_for(root, digest)
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, target)
    return digest, len(data)


def record(session: Session, sha256: str, size: int, media_type: str) -> None:
    from modelreg.store.tables import ArtifactRow

    if session.get(ArtifactRow, sha256) is None:
        session.add(ArtifactRow(sha256=sha256, size=size, media_type=media_type, created_at=clock.now()))


def read_bytes(root: Path, sha256: str) -> bytes:
    path = path_for(root, sha256)
    if not path.exists():
        raise NotFound(f"artifact {sha256} is missing from the store at {root}")
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != sha256:
        from modelreg.errors import VerificationFailed

        raise VerificationFailed(
            f"artifact {sha256} in the store does not match its digest (modified on disk)"
        )
    return data
