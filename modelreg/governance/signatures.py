"""Signed records: approvals, rejections, attestations, waivers.

Each binds a canonical payload (RFC 8785 JSON) — model, version, the model artifact digest, the evaluation
digest, the policy version, the decision and the time — to a person's key (Ed25519 or SM2; the suite is in
the signature). The registry verifies the signature against the signer's registered public key both when the
record is made and every time a gate counts it, so a row inserted by SQL without a valid signature, or one whose digests no longer match the
version's current evaluation and artifact, never counts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from modelreg import clock, signing
from modelreg.audit.canonical import canonical_json
from modelreg.errors import BadInput, SignatureError

PAYLOAD_TYPE = "modelreg.signed-record/v1"


@dataclass(frozen=True)
class SignedRecord:
    id: int
    kind: str  # approval | rejection | attestation | waiver
    role: str | None
    control_id: str | None
    actor: str
    payload: dict
    payload_bytes: bytes
    signature: dict
    until: datetime | None
    at: datetime
    valid_signature: bool = False
    problems: tuple[str, ...] = ()

    @property
    def counts(self) -> bool:
        return self.valid_signature and not self.problems

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "kind": self.kind,
            "role": self.role,
            "control_id": self.control_id,
            "actor": self.actor,
            "payload": self.payload,
            "signature": self.signature,
            "until": clock.isoformat(self.until) if self.until else None,
            "at": clock.isoformat(self.at),
            "signature_valid": self.valid_signature,
            "counts": self.counts,
            "problems": list(self.problems),
        }


def build_payload(kind: str, **fields: Any) -> dict:
    return {"type": PAYLOAD_TYPE, "kind": kind, **fields}


def load_signing_key(path: Path, user: str):
    if not Path(path).exists():
        raise BadInput(
            f"no private key for {user} at {path}: create one with `modelreg keys generate -o {path}` and register the .pub "
            "with `modelreg keys register`, or pass --key"
        )
    return signing.load_private_key(Path(path))


def sign_payload(
    payload: dict, private_key, registered_public_pem: str | None, user: str
) -> tuple[bytes, signing.Signature]:
    if not registered_public_pem:
        raise SignatureError(
            f"user {user!r} has no registered public key: run `modelreg keys register FILE.pub` first"
        )
    registered = signing.load_public_key(registered_public_pem.encode())
    if signing.key_id(private_key) != signing.key_id(registered):
        raise SignatureError(
            f"the private key given ({signing.key_id(private_key)}) is not the one registered for {user!r} ({signing.key_id(registered)})"
        )
    data = canonical_json(payload)
    return data, signing.sign(private_key, data)


def verify_presigned(
    payload: dict, signature: dict, registered_public_pem: str | None, user: str
) -> tuple[bytes, signing.Signature]:
    """A signature the signer made on their own machine over ``payload``: it must verify with their registered
    key (the registry service holds no private keys)."""
    if not registered_public_pem:
        raise SignatureError(
            f"user {user!r} has no registered public key: run `modelreg keys register FILE.pub` first"
        )
    data = canonical_json(payload)
    try:
        sig = signing.Signature.from_dict(signature)
    except Exception:
        raise BadInput("the signature object is malformed") from None
    registered = signing.load_public_key(registered_public_pem.encode())
    if sig.key_id != signing.key_id(registered) or not signing.verify(registered, data, sig):
        raise SignatureError(f"the record's signature does not verify with the key registered for {user!r}")
    return data, sig


def verify_record(payload_bytes: bytes, signature: dict, public_pem: str | None) -> bool:
    if not public_pem:
        return False
    try:
        sig = signing.Signature.from_dict(signature)
        public = signing.load_public_key(public_pem.encode())
    except Exception:
        return False
    return signing.verify(public, bytes(payload_bytes), sig)


def decode_payload(payload_bytes: bytes) -> dict:
    try:
        value = json.loads(bytes(payload_bytes))
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
