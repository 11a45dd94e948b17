"""Signed audit events: every event of format v2 carries the writer's signature.

Why a signature at all: the Merkle log proves that nothing *before* a kept checkpoint changed, but anyone who can
write to the database can append a well-formed event (correct leaf hash, ``audit_state`` advanced) and the log
still verifies. A signature by the registry's event key, which lives outside the database (a key file held by
the embedded registry or the service), makes such an event fail verification.

What is signed: ``canonical_json({"purpose": "modelreg.audit.event/v2", "seq", "leaf", "root"})`` where ``leaf``
is the event's leaf hash and ``root`` the tree root right after it was appended. Signing the root rather than
only the event's bytes means the *last* signature vouches for the whole log (its root commits to every leaf), so
``audit verify`` checks one signature per key in the common case instead of one per event; a guarded command
checks the few events it relies on, each against its own signature.

The key itself is introduced and rotated by ``audit.signing_key`` events. The first one (at ``init``, or at the
first write after an upgrade) is self-signed; a rotation carries an endorsement: the previous key's signature
over the new public key, so the chain of keys is anchored at whichever key an auditor trusts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from modelreg.audit.canonical import canonical_json

EVENT_PURPOSE = "modelreg.audit.event/v2"
ROTATION_PURPOSE = "modelreg.audit.key_rotation/v1"
SIGNING_KEY_EVENT = "audit.signing_key"
# A fresh registry introduces its key in its first event; an upgraded one (or a rotation) in audit.signing_key.
KEY_EVENTS = frozenset({SIGNING_KEY_EVENT, "registry.initialized"})


def key_payload(event: str, payload: dict) -> dict | None:
    """The key-introduction part of a key event's payload (None when the event introduces no key)."""
    if event == SIGNING_KEY_EVENT:
        return payload
    found = payload.get("event_key")
    return found if isinstance(found, dict) else None


def signed_message(seq: int, leaf: bytes, root: bytes) -> bytes:
    return canonical_json({"purpose": EVENT_PURPOSE, "seq": int(seq), "leaf": leaf.hex(), "root": root.hex()})


def rotation_message(key_id: str, public_key_pem: str) -> bytes:
    return canonical_json({"purpose": ROTATION_PURPOSE, "key_id": key_id, "public_key_pem": public_key_pem})


@dataclass(frozen=True)
class EventSigner:
    """The registry's event key, loaded once per process."""

    private_key: Any
    key_id: str
    public_key_pem: str

    @classmethod
    def from_private_key(cls, key: Any) -> EventSigner:
        from modelreg import signing

        return cls(key, signing.key_id(key), signing.public_key_to_pem(key.public_key()).decode("ascii"))

    def sign(self, seq: int, leaf: bytes, root: bytes) -> str:
        from modelreg import signing

        return json.dumps(signing.sign(self.private_key, signed_message(seq, leaf, root)).to_dict())

    def endorse(self, key_id: str, public_key_pem: str) -> dict:
        from modelreg import signing

        return signing.sign(self.private_key, rotation_message(key_id, public_key_pem)).to_dict()

    def key_event_payload(self, previous: EventSigner | None = None) -> dict:
        return {
            "key_id": self.key_id,
            "public_key_pem": self.public_key_pem,
            "algorithm": _suite_of(self.private_key),
            "previous_key_id": previous.key_id if previous else None,
            "endorsement": previous.endorse(self.key_id, self.public_key_pem) if previous else None,
        }


def _suite_of(key: Any) -> str:
    from modelreg import suites

    return suites.suite_of_key(key)


def verify_event(public_key: Any, seq: int, leaf: bytes, root: bytes, signature: str | None) -> bool:
    if not signature:
        return False
    from modelreg import signing

    try:
        sig = json.loads(signature)
    except (TypeError, ValueError):
        return False
    return signing.verify(public_key, signed_message(seq, leaf, root), sig)


@dataclass
class KeyChain:
    """The event keys a log introduced, in order, each checked against the one before it."""

    keys: list[tuple[int, str, Any]]  # (seq of its audit.signing_key event, key id, public key)
    problem: str | None = None
    problem_seq: int | None = None

    def current(self) -> tuple[int, str, Any] | None:
        return self.keys[-1] if self.keys else None

    def add(self, seq: int, payload: dict) -> str | None:
        """Take the key an ``audit.signing_key`` event introduces: the first one as it is, each later one only
        if the key before it endorsed it. Returns the problem, or None."""
        from modelreg import signing

        try:
            pem = payload["public_key_pem"]
            public = signing.load_public_key(pem.encode())
            kid = signing.key_id(public)
        except Exception:
            return f"event #{seq}: the signing key it introduces is unreadable"
        if kid != payload.get("key_id"):
            return f"event #{seq}: the introduced key's id is {kid}, not {payload.get('key_id')!r}"
        previous = self.current()
        if previous is not None and (
            payload.get("previous_key_id") != previous[1]
            or not signing.verify(previous[2], rotation_message(kid, pem), payload.get("endorsement") or {})
        ):
            return (
                f"event #{seq}: key rotation to {kid} is not endorsed by the previous event key {previous[1]}"
                " (a key introduced by someone who does not hold the registry's key)"
            )
        self.keys.append((seq, kid, public))
        return None

    def key_at(self, seq: int) -> tuple[int, str, Any] | None:
        """The key in force for event ``seq``: the newest one introduced at or before it."""
        found = None
        for entry in self.keys:
            if entry[0] <= seq:
                found = entry
        return found


def key_chain(key_events: list[tuple[int, dict]]) -> KeyChain:
    chain = KeyChain([])
    for seq, payload in key_events:
        problem = chain.add(seq, payload)
        if problem:
            chain.problem, chain.problem_seq = problem, seq
            break
    return chain
