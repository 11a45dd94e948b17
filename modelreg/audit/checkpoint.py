"""Signed checkpoints of the audit log: "the log had ``size`` entries and root ``root_hash`` at ``time``".

The signature covers ``canonical_json`` of every field except ``signature`` itself, so changing any field
(size, root, time, key id, algorithm, origin) invalidates it. An auditor who kept an old checkpoint can
later ask for a consistency proof to the current one and detect any rewrite of history.

On disk a checkpoint is its canonical JSON (all fields, signature included) plus a newline. A checkpoint of
an SM3 log carries ``"tree_hash": "sm3"`` (signed like every other field); a SHA-256 one leaves the field
out, so checkpoints made before SM3 existed still load and verify byte for byte.

One of the sources of the standalone pack verifier: names, never modules, imported from modelreg.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any

from modelreg.audit.canonical import canonical_json
from modelreg.audit.merkle import verify_consistency
from modelreg.clock import isoformat, parse
from modelreg.errors import BadInput
from modelreg.suites import (
    SUITE_ED25519,
    TREE_HASHES,
    Signature,
    key_id_of,
    suite_of_key,
    suite_sign,
    suite_verify,
)

__all__ = ["Checkpoint", "checkpoints_consistent", "sign_checkpoint", "verify_checkpoint_signature"]

DEFAULT_ORIGIN = "modelreg"
_HEX_ROOT = re.compile(r"[0-9a-f]{64}")

MSG_NOT_JSON = "checkpoint {source} is not valid JSON: {reason}"
MSG_NOT_OBJECT = "checkpoint {source} must be a JSON object. Got {got} instead."
MSG_FIELDS = "checkpoint {source} must have exactly the fields {want}. Missing {missing}, unexpected {extra}."
MSG_FIELD = "checkpoint {source}: {field} must be {expected}. Got {got!r} instead."


@dataclass(frozen=True)
class Checkpoint:
    size: int
    root_hash: str  # lower-case hex of the 32-byte Merkle root
    time: str  # ISO 8601 UTC, as written by modelreg.clock.isoformat
    key_id: str
    algorithm: str = SUITE_ED25519  # the signature suite: ed25519 | sm2-sm3
    signature: str = ""  # base64; empty means unsigned (never verifies)
    origin: str = DEFAULT_ORIGIN
    tree_hash: str = "sha256"  # the log's Merkle hash; written (and signed) only when it is not SHA-256

    # -- the signed bytes -----------------------------------------------------------------------------

    def _present_fields(self) -> list[str]:
        return [f.name for f in fields(self) if f.name != "tree_hash" or self.tree_hash != "sha256"]

    def signed_fields(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._present_fields() if name != "signature"}

    def payload(self) -> bytes:
        """The exact bytes the signature is over."""
        return canonical_json(self.signed_fields())

    @property
    def root(self) -> bytes:
        """``root_hash`` as bytes (raises BadInput if it is not 64 hex digits)."""
        if not isinstance(self.root_hash, str) or not _HEX_ROOT.fullmatch(self.root_hash):
            raise BadInput(
                f"checkpoint root_hash must be 64 lower-case hex digits. Got {self.root_hash!r} instead."
            )
        return bytes.fromhex(self.root_hash)

    # -- serialisation --------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return {name: d[name] for name in self._present_fields()}

    def to_json(self) -> str:
        return canonical_json(self.to_dict()).decode("utf-8")

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "data") -> Checkpoint:
        """Validate and build; every problem is a one-line ``BadInput``."""
        if not isinstance(data, dict):
            raise BadInput(MSG_NOT_OBJECT.format(source=source, got=type(data).__name__))
        want = [f.name for f in fields(cls) if f.name != "tree_hash"]
        missing = sorted(set(want) - set(data))
        extra = sorted(set(data) - set(want) - {"tree_hash"})
        if missing or extra:
            raise BadInput(
                MSG_FIELDS.format(
                    source=source, want=", ".join(want), missing=missing or "none", extra=extra or "none"
                )
            )

        def bad(field: str, expected: str) -> BadInput:
            return BadInput(MSG_FIELD.format(source=source, field=field, expected=expected, got=data[field]))

        size = data["size"]
        if type(size) is not int or size < 0:
            raise bad("size", "a non-negative integer")
        if not isinstance(data["root_hash"], str) or not _HEX_ROOT.fullmatch(data["root_hash"]):
            raise bad("root_hash", "64 lower-case hex digits")
        for name in ("time", "key_id", "algorithm", "signature", "origin"):
            if not isinstance(data[name], str):
                raise bad(name, "a string")
        try:
            parse(data["time"])
        except ValueError:
            raise bad("time", "an ISO 8601 UTC timestamp") from None
        if "tree_hash" in data and data["tree_hash"] not in TREE_HASHES:
            raise bad("tree_hash", "sha256 or sm3")
        return cls(**{name: data[name] for name in want}, tree_hash=data.get("tree_hash", "sha256"))

    @classmethod
    def from_json(cls, text: str | bytes, *, source: str = "data") -> Checkpoint:
        import json

        try:
            data = json.loads(text)
        except (ValueError, TypeError, RecursionError) as exc:
            reason = (str(exc).splitlines() or [type(exc).__name__])[0]
            raise BadInput(MSG_NOT_JSON.format(source=source, reason=reason)) from None
        return cls.from_dict(data, source=source)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write atomically (temp file + rename), so a reader never sees half a checkpoint."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(self.to_json() + "\n", encoding="utf-8")
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Checkpoint:
        path = Path(path)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise BadInput(f"checkpoint file not found: {path}") from None
        except OSError as exc:
            raise BadInput(f"cannot read checkpoint file {path}: {exc.strerror or exc}") from None
        return cls.from_json(raw, source=f"file {path}")


def _time_text(time: datetime | str) -> str:
    if isinstance(time, datetime):
        if time.tzinfo is None:
            raise BadInput("checkpoint time must be timezone-aware (use modelreg.clock.now()).")
        return isoformat(time)
    if isinstance(time, str):
        try:
            return isoformat(parse(time))
        except ValueError:
            raise BadInput(f"checkpoint time must be an ISO 8601 timestamp. Got {time!r} instead.") from None
    raise BadInput(f"checkpoint time must be a datetime or ISO string. Got {type(time).__name__} instead.")


def sign_checkpoint(
    size: int,
    root_hash: bytes,
    private_key: Any,  # Ed25519 or SM2
    *,
    time: datetime | str,
    origin: str = DEFAULT_ORIGIN,
    tree_hash: str = "sha256",
) -> Checkpoint:
    """Sign (size, root) with ``private_key`` in its suite. ``time`` is normalised to ``clock.isoformat``
    form; ``tree_hash`` names the hash the root was computed with."""
    if type(size) is not int or size < 0:
        raise BadInput(f"checkpoint size must be a non-negative integer. Got {size!r} instead.")
    if not isinstance(root_hash, bytes | bytearray) or len(root_hash) != 32:
        raise BadInput(f"checkpoint root must be 32 bytes. Got {root_hash!r} instead.")
    if not isinstance(origin, str) or not origin:
        raise BadInput(f"checkpoint origin must be a non-empty string. Got {origin!r} instead.")
    if tree_hash not in TREE_HASHES:
        raise BadInput(f"checkpoint tree hash must be sha256 or sm3. Got {tree_hash!r} instead.")
    unsigned = Checkpoint(
        size=size,
        root_hash=bytes(root_hash).hex(),
        time=_time_text(time),
        key_id=key_id_of(private_key),
        algorithm=suite_of_key(private_key),
        origin=origin,
        tree_hash=tree_hash,
    )
    sig = suite_sign(private_key, unsigned.payload())
    return Checkpoint(**{**unsigned.to_dict(), "signature": sig.value})


def verify_checkpoint_signature(cp: Checkpoint, public_key: Any) -> bool:
    """True iff ``cp`` was signed, unchanged, by ``public_key``. Never raises."""
    try:
        if not isinstance(cp, Checkpoint):
            return False
        payload = cp.payload()
        sig = Signature(algorithm=cp.algorithm, key_id=cp.key_id, value=cp.signature)
    except Exception:
        return False  # e.g. a field replaced by a value canonical JSON cannot encode
    return suite_verify(public_key, payload, sig)


def checkpoints_consistent(old: Checkpoint, new: Checkpoint, proof: list[bytes]) -> bool:
    """True iff ``proof`` shows the log of ``old`` is a prefix of the log of ``new`` (same origin).

    Only the (size, root) claims are checked here; check each signature with
    ``verify_checkpoint_signature`` as well. Never raises.
    """
    try:
        if not isinstance(old, Checkpoint) or not isinstance(new, Checkpoint) or old.origin != new.origin:
            return False
        if old.tree_hash != new.tree_hash:
            return False  # two logs with different hashes are never one log
        return verify_consistency(old.size, new.size, old.root, new.root, proof, old.tree_hash)
    except Exception:
        return False
