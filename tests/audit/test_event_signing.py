"""Signed audit events (format v2): every registry event is signed with the registry's event key; the key is
introduced in the log and rotations are endorsed by the previous key; unsigned or forged events fail; logs from
before signing (format v1) still verify, their events counted as unsigned, and an upgrade introduces the key."""

from __future__ import annotations

import hashlib
import json

import pytest
from sqlalchemy import text

from modelreg import clock, signing
from modelreg.audit import log as audit_log
from modelreg.audit.event_signing import EventSigner, rotation_message, signed_message
from modelreg.errors import StateDiverges
from tests.conftest import register_version


def _rows(reg) -> list[tuple]:
    return list(audit_log.iter_rows(reg.engine))


def test_every_registry_event_is_signed_over_seq_leaf_and_root(registry):
    register_version(registry)
    registry.as_user("dev").submit("credit_scoring", "1")
    public = signing.load_public_key(signing.public_key_path_for(registry.settings.audit_key_path))
    rows = _rows(registry)
    assert rows and all(json.loads(bytes(r[1]))["v"] == 2 for r in rows)
    for seq, _canonical, leaf, root, *_rest, sig in rows:
        # independently: Ed25519 over the canonical JSON of (purpose, seq, leaf, root)
        message = json.dumps(
            {
                "leaf": bytes(leaf).hex(),
                "purpose": "modelreg.audit.event/v2",
                "root": bytes(root).hex(),
                "seq": seq,
            },
            separators=(",", ":"),
            sort_keys=True,
        ).encode()
        assert message == signed_message(seq, bytes(leaf), bytes(root))
        assert signing.verify(public, message, json.loads(sig))
    first = json.loads(bytes(rows[0][1]))
    assert first["event"] == "registry.initialized"
    assert first["payload"]["event_key"]["key_id"] == signing.key_id(public)
    report = registry.audit_verify()
    assert report.ok and report.signatures == {
        "signed_from": 0,
        "unsigned_events": 0,
        "event_keys": [signing.key_id(public)],
    }


def test_rotation_is_endorsed_and_old_key_no_longer_writes(registry):
    register_version(registry)
    old_kid = registry.event_signer().key_id
    result = registry.rotate_event_key()
    assert result["previous_key_id"] == old_kid and result["key_id"] != old_kid
    registry.as_user("dev").submit("credit_scoring", "1")
    report = registry.audit_verify()
    assert report.ok, report.problem
    assert report.signatures["event_keys"] == [old_kid, result["key_id"]]
    # the rotation event carries the old key's endorsement of the new public key
    event = registry.audit_log()[result["seq"]]
    retired = signing.load_private_key(result["retired_key"])
    assert signing.verify(
        retired.public_key(),
        rotation_message(event.payload["key_id"], event.payload["public_key_pem"]),
        event.payload["endorsement"],
    )
    # a process still holding the old key refuses to write after the rotation
    from modelreg.registry import Registry

    stale = Registry(registry.settings, actor="dev", engine=registry.engine)
    stale._event_signer = EventSigner.from_private_key(retired)
    register_version(registry, version="2")
    with pytest.raises(StateDiverges, match="not signed by the registry's event key"):
        stale.submit("credit_scoring", "2")


def test_unendorsed_key_introduction_fails_verification(registry):
    """Someone without the key introduces their own key (a well-formed audit.signing_key event, self-signed)
    and signs events with it: the rotation has no endorsement by the previous key."""
    register_version(registry)
    mallory = EventSigner.from_private_key(signing.generate_private_key())
    with registry.engine.begin() as conn:
        from sqlalchemy.orm import Session

        with Session(bind=conn) as session:
            audit_log.append_event(
                session,
                "audit.signing_key",
                actor="admin",
                payload=mallory.key_event_payload(),  # no endorsement
                signer=mallory,
            )
            session.commit()
    report = registry.audit_verify()
    assert not report.ok
    assert "is not endorsed by the previous event key" in report.problem


def test_unsigned_event_after_signed_ones_fails_and_blocks_writes(registry):
    register_version(registry)
    size = registry.audit_verify().size
    with registry.engine.begin() as conn:
        from sqlalchemy.orm import Session

        with Session(bind=conn) as session:
            audit_log.append_event(
                session, "user.added", actor="admin", payload={"user": "m", "roles": ["admin"]}
            )
            session.commit()
    report = registry.audit_verify()
    assert not report.ok and report.first_bad_seq == size
    assert f"event #{size} is unsigned, but the log's events are signed since #0" in report.problem
    with pytest.raises(StateDiverges, match=rf"at #{size}: an unsigned event after signing was enabled"):
        registry.as_user("dev").submit("credit_scoring", "1")


def test_log_from_before_signing_still_verifies_and_upgrade_introduces_the_key(db_url, settings_for):
    """A registry of schema 0001 (events v1, unsigned): verify counts them as unsigned; `init` upgrades and
    introduces the event key; later events are signed."""
    from alembic import command

    from modelreg.registry import Registry
    from modelreg.store import schema

    settings = settings_for(db_url)
    reg = Registry(settings, actor="admin")
    # build an old registry: schema 0001 and unsigned (v1) events, rows as modelreg before signed events wrote them
    with reg.engine.begin() as conn:
        command.upgrade(schema._alembic_config(conn), "0001")
    frontier: list[bytes] = []
    at = clock.parse("2026-11-01T00:00:00Z")
    with reg.engine.begin() as conn:
        for seq, (event, payload) in enumerate(
            [
                ("registry.initialized", {"schema_revision": "0001"}),
                ("user.added", {"user": "admin", "roles": ["admin"]}),
            ]
        ):
            data = audit_log.event_bytes(
                seq=seq,
                event=event,
                actor="admin",
                at=at,
                model=None,
                version=None,
                payload=payload,
                db_role=None,
                v=1,
            )
            leaf = hashlib.sha256(b"\x00" + data).digest()
            frontier = audit_log.frontier_push(frontier, seq, leaf)
            conn.execute(
                text(
                    "INSERT INTO audit_events (seq, event, actor, db_role, at, model, version, canonical, leaf_hash, root_hash) "
                    "VALUES (:s, :e, 'admin', NULL, :at, NULL, NULL, :c, :l, :r)"
                ),
                {
                    "s": seq,
                    "e": event,
                    "at": at,
                    "c": data,
                    "l": leaf,
                    "r": audit_log.frontier_root(frontier),
                },
            )
        conn.execute(
            text("UPDATE audit_state SET size = 2, root_hash = :r, frontier = :f WHERE id = 1"),
            {"r": audit_log.frontier_root(frontier), "f": json.dumps([h.hex() for h in frontier])},
        )
        conn.execute(
            text(
                "INSERT INTO users (name, roles, created_at, created_by) VALUES ('admin', :r, :at, 'admin')"
            ),
            {"r": json.dumps(["admin"]), "at": at},
        )
    upgraded = reg.init()
    assert upgraded["before"] == "0001" and upgraded["upgraded"]
    assert reg.init()["before"] == schema.HEAD_REVISION  # a second init changes nothing
    report = reg.audit_verify()
    assert report.ok, report.problem
    assert report.signatures["signed_from"] == 2 and report.signatures["unsigned_events"] == 2
    assert [e.event for e in reg.audit_log()] == ["registry.initialized", "user.added", "audit.signing_key"]
    reg.add_user("dev", ["developer"])
    assert reg.audit_verify().ok
