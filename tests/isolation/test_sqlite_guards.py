"""No INSERT can replace an existing audit event, whatever conflict clause it carries.

SQLite's ``INSERT OR REPLACE`` deletes the conflicting row without firing DELETE triggers (unless
``recursive_triggers`` is on), so before migration 0002 a forger could rewrite the whole log consistently
with every trigger in place. The BEFORE INSERT guard refuses any existing seq; ``recursive_triggers`` is a
second layer (the DELETE guard fires for the replaced row even if the INSERT guard is gone)."""

from __future__ import annotations

import hashlib
import json

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tests.core._workers import register, seeded_core_registry

COLUMNS = "seq, event, actor, db_role, at, model, version, canonical, leaf_hash, root_hash"
VALUES = ":seq, 'user.added', 'mallory', NULL, :at, NULL, NULL, :c, :l, :r"
FREE_VALUES = ":seq, :e, :a, NULL, :at, NULL, NULL, :c, :l, :r"

SQLITE_FORMS = [
    f"INSERT OR ROLLBACK INTO audit_events ({COLUMNS}) VALUES ({VALUES})",
    f"INSERT OR ABORT INTO audit_events ({COLUMNS}) VALUES ({VALUES})",
    f"INSERT OR FAIL INTO audit_events ({COLUMNS}) VALUES ({VALUES})",
    f"INSERT OR IGNORE INTO audit_events ({COLUMNS}) VALUES ({VALUES})",
    f"INSERT OR REPLACE INTO audit_events ({COLUMNS}) VALUES ({VALUES})",
    f"REPLACE INTO audit_events ({COLUMNS}) VALUES ({VALUES})",
    f"INSERT INTO audit_events ({COLUMNS}) VALUES ({VALUES}) ON CONFLICT (seq) DO UPDATE SET canonical = excluded.canonical",
    f"INSERT INTO audit_events ({COLUMNS}) VALUES ({VALUES}) ON CONFLICT DO NOTHING",
]
PG_FORMS = [
    f"INSERT INTO audit_events ({COLUMNS}) VALUES ({VALUES}) ON CONFLICT (seq) DO UPDATE SET canonical = excluded.canonical",
    f"INSERT INTO audit_events ({COLUMNS}) VALUES ({VALUES}) ON CONFLICT (seq) DO UPDATE SET actor = 'mallory'",
]


@pytest.fixture
def reg(db_url, env_for):
    reg = seeded_core_registry(env_for(db_url))
    register(reg, "credit_scoring", "1")
    reg.as_user("dev").submit("credit_scoring", "1")
    yield reg
    reg.engine.dispose()


def _snapshot(reg) -> list[tuple]:
    with reg.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(f"SELECT {COLUMNS} FROM audit_events ORDER BY seq"))]


def _params(reg, seq: int) -> dict:
    with reg.engine.connect() as conn:
        at = conn.execute(text("SELECT at FROM audit_events WHERE seq = 0")).scalar_one()
    return {"seq": seq, "at": at, "c": b'{"forged":1}', "l": b"\x00" * 32, "r": b"\x01" * 32}


def test_every_conflict_clause_is_refused_over_an_existing_seq(reg):
    pg = reg.engine.dialect.name == "postgresql"
    before = _snapshot(reg)
    for form in PG_FORMS if pg else SQLITE_FORMS:
        for seq in (0, 3, len(before) - 1):
            with pytest.raises(DBAPIError) as info, reg.engine.begin() as conn:
                conn.execute(text(form), _params(reg, seq))
            message = str(info.value)
            assert "audit_events is append-only" in message, (form, message)
            assert _snapshot(reg) == before, form
    if not pg:
        with reg.engine.connect() as conn:
            assert conn.execute(text("PRAGMA recursive_triggers")).scalar_one() == 1
    report = reg.audit_verify()
    assert report.ok and report.size == len(before)


def test_audit_state_cannot_be_replaced_to_rewind_it(reg):
    if reg.engine.dialect.name == "postgresql":
        sql = (
            "INSERT INTO audit_state (id, size, frontier, root_hash) VALUES (1, 0, '[]', '\\x00') "
            "ON CONFLICT (id) DO UPDATE SET size = 0"
        )
        expected = "audit_state only moves forward"
    else:
        sql = "INSERT OR REPLACE INTO audit_state (id, size, frontier, root_hash) VALUES (1, 0, '[]', x'00')"
        expected = "audit_state cannot be replaced"
    with pytest.raises(DBAPIError, match=expected), reg.engine.begin() as conn:
        conn.execute(text(sql))
    assert reg.audit_verify().ok


def test_recursive_triggers_fire_the_delete_guard_when_the_insert_guard_is_gone(tmp_path, env_for):
    reg = seeded_core_registry(env_for(f"sqlite:///{tmp_path / 'registry.db'}"))  # SQLite's OR REPLACE only
    before = _snapshot(reg)
    with reg.engine.begin() as conn:
        conn.execute(text("DROP TRIGGER audit_events_no_replace"))
    with (
        pytest.raises(DBAPIError, match="audit_events is append-only: DELETE refused"),
        reg.engine.begin() as conn,
    ):
        conn.execute(
            text(f"INSERT OR REPLACE INTO audit_events ({COLUMNS}) VALUES ({VALUES})"), _params(reg, 1)
        )
    assert _snapshot(reg) == before
    reg.engine.dispose()


def test_the_issue_attack_a_consistent_or_replace_rewrite_is_refused(reg):
    """The forger recomputes one event and every later root, then writes the rows back with OR REPLACE (SQLite)
    or an upsert (PostgreSQL): the first statement is refused and nothing changes."""
    from modelreg.audit.log import event_bytes
    from modelreg.clock import parse

    pg = reg.engine.dialect.name == "postgresql"
    before = _snapshot(reg)
    body = json.loads(bytes(before[2][7]))
    forged = event_bytes(
        seq=body["seq"],
        event=body["event"],
        actor="mallory",
        at=parse(body["at"]),
        model=body["model"],
        version=body["version"],
        payload=body["payload"],
        db_role=body["db_role"],
    )
    verb = (
        f"INSERT INTO audit_events ({COLUMNS}) VALUES ({FREE_VALUES}) "
        "ON CONFLICT (seq) DO UPDATE SET canonical = excluded.canonical, actor = excluded.actor"
        if pg
        else f"INSERT OR REPLACE INTO audit_events ({COLUMNS}) VALUES ({FREE_VALUES})"
    )

    params = {
        **_params(reg, 2),
        "c": forged,
        "l": hashlib.sha256(b"\x00" + forged).digest(),
        "e": body["event"],
        "a": "mallory",
    }
    with pytest.raises(DBAPIError, match="audit_events is append-only"), reg.engine.begin() as conn:
        conn.execute(text(verb), params)
    assert _snapshot(reg) == before
