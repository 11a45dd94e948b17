"""Tampering with the audit log, on SQLite and PostgreSQL.

First the database's own guard: UPDATE, DELETE (and TRUNCATE on PostgreSQL) of audit events are refused by
triggers. Then an attacker who owns the tables removes the guard and edits, deletes, inserts, reorders,
truncates or rewrites events directly; ``modelreg audit verify`` must exit 1 and name the first bad entry
wherever the design can name it. A consistent rewrite of the whole log (every hash recomputed) is only
detectable against a signed checkpoint kept outside the database, and the test shows exactly that.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from modelreg.audit.log import event_bytes, frontier_push, frontier_root
from modelreg.audit.merkle import root_from_leaf_hashes
from modelreg.clock import parse
from tests.conftest import REPO_ROOT
from tests.core._workers import register, seeded_core_registry


@dataclass
class Log:
    reg: object
    env: dict[str, str]
    checkpoint: Path
    checkpoint_size: int
    size: int  # events after the checkpoint was recorded
    # Who tampers. None: the registry's own connection. tests/isolation runs this suite with the registry on
    # the least-privilege application role and the tampering done by a superuser.
    owner_engine: object = None

    @property
    def pg(self) -> bool:
        return self.reg.engine.dialect.name == "postgresql"

    @property
    def owner(self):
        return self.owner_engine if self.owner_engine is not None else self.reg.engine


@pytest.fixture
def log(db_url, env_for, tmp_path) -> Iterator[Log]:
    """A registry with a few dozen events, and a signed checkpoint of it kept outside the database."""
    env = env_for(db_url)
    reg = seeded_core_registry(env)
    for v in ("1", "2", "3"):
        register(reg, "credit_scoring", v)
        reg.as_user("dev").submit("credit_scoring", v)
    reg.as_user("app1").deploy("credit_scoring", "1")
    reg.as_user("app1").deploy("credit_scoring", "2", replace="retire")
    reg.as_user("ops").suspend("credit_scoring", "2", reason="PSI breach")
    reg.as_user("app1").resume("credit_scoring", "2", reason="investigated")
    checkpoint = tmp_path / "kept" / "checkpoint.json"
    cp = reg.as_user("aud").audit_checkpoint(checkpoint)["checkpoint"]
    register(reg, "fraud_rules", "1", tier="high")
    reg.as_user("dev").submit("fraud_rules", "1")
    report = reg.audit_verify(checkpoint)
    assert report.ok, report.problem
    yield Log(reg, env, checkpoint, cp["size"], report.size)
    reg.engine.dispose()


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "modelreg", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_cli_fails_naming(log: Log, seq: int | None, *extra: str) -> None:
    """``modelreg audit verify`` exits 1 with one line naming entry #seq (or, when the design cannot name
    one, just the failure)."""
    done = cli(log.env, "audit", "verify", *extra)
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    assert "FAILED" in done.stdout
    named = re.findall(r"first bad entry: #(\d+)", done.stdout)
    assert named == ([str(seq)] if seq is not None else []), done.stdout


def rows(conn: Connection) -> list[tuple]:
    return [
        tuple(r)
        for r in conn.execute(
            text("SELECT seq, canonical, leaf_hash, root_hash FROM audit_events ORDER BY seq")
        )
    ]


@contextmanager
def as_table_owner(log: Log, *, state_too: bool = False) -> Iterator[Connection]:
    """A transaction with the append-only triggers out of the way, as the tables' owner could do it."""
    with log.owner.begin() as conn:
        if log.pg:
            conn.execute(text("ALTER TABLE audit_events DISABLE TRIGGER ALL"))
            if state_too:
                conn.execute(text("ALTER TABLE audit_state DISABLE TRIGGER ALL"))
        else:
            conn.execute(text("DROP TRIGGER IF EXISTS audit_events_no_update"))
            conn.execute(text("DROP TRIGGER IF EXISTS audit_events_no_delete"))
            if state_too:
                conn.execute(text("DROP TRIGGER IF EXISTS audit_state_forward_only"))
        yield conn


def leaf(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def first_registered_seq(conn: Connection, after: int = 0) -> int:
    return conn.execute(
        text("SELECT min(seq) FROM audit_events WHERE event = 'version.registered' AND seq > :s"),
        {"s": after},
    ).scalar_one()


def rehash_from(conn: Connection, start: int) -> None:
    """Recompute every stored root from ``start`` on and the registry's recorded state, as a careful forger
    would after changing events."""
    all_rows = rows(conn)
    frontier: list[bytes] = []
    for i, (seq, _canonical, leaf_hash, root_hash) in enumerate(all_rows):
        frontier = frontier_push(frontier, i, bytes(leaf_hash))
        root = frontier_root(frontier)
        if seq >= start and root != bytes(root_hash):
            conn.execute(text("UPDATE audit_events SET root_hash = :r WHERE seq = :s"), {"r": root, "s": seq})
    conn.execute(
        text("UPDATE audit_state SET size = :n, root_hash = :r, frontier = :f WHERE id = 1"),
        {"n": len(all_rows), "r": frontier_root(frontier), "f": json.dumps([h.hex() for h in frontier])},
    )


# -- the database's own guard ---------------------------------------------------------------------------------
REFUSED = [
    ("UPDATE audit_events SET actor = 'mallory' WHERE seq = 3", "UPDATE"),
    ("UPDATE audit_events SET canonical = canonical WHERE seq = 0", "UPDATE"),
    ("DELETE FROM audit_events WHERE seq = 3", "DELETE"),
    ("DELETE FROM audit_events", "DELETE"),
    ("TRUNCATE audit_events", "TRUNCATE"),  # PostgreSQL only: SQLite has no TRUNCATE
]


def test_database_refuses_changing_audit_events_and_rewinding_state(log):
    for sql, verb in REFUSED:
        if verb == "TRUNCATE" and not log.pg:
            continue
        with pytest.raises(DBAPIError) as info, log.reg.engine.begin() as conn:
            conn.execute(text(sql))
        assert f"audit_events is append-only: {verb} refused" in str(info.value), sql
    for sql in (
        "UPDATE audit_state SET size = size - 1",
        "UPDATE audit_state SET size = 0",
        "DELETE FROM audit_state",
    ):
        with pytest.raises(DBAPIError) as info, log.reg.engine.begin() as conn:
            conn.execute(text(sql))
        expected = "audit_state only moves forward" if log.pg else "audit_state cannot (shrink|be deleted)"
        assert re.search(expected, str(info.value)), sql
    if log.pg:
        with (
            pytest.raises(DBAPIError, match="audit_state only moves forward"),
            log.reg.engine.begin() as conn,
        ):
            conn.execute(text("TRUNCATE audit_state"))
    report = log.reg.audit_verify(log.checkpoint)
    assert report.ok and report.size == log.size


# -- bypassing the guard: each edit is detected ---------------------------------------------------------------
def test_edited_canonical_bytes_are_detected(log):
    with as_table_owner(log) as conn:
        k = first_registered_seq(conn, after=5)
        canonical = bytes(
            conn.execute(text("SELECT canonical FROM audit_events WHERE seq = :k"), {"k": k}).scalar_one()
        )
        forged = canonical.replace(b"PD scoring", b"PD scorinG")
        assert forged != canonical
        conn.execute(text("UPDATE audit_events SET canonical = :c WHERE seq = :k"), {"c": forged, "k": k})
    report = log.reg.audit_verify()
    assert not report.ok and report.first_bad_seq == k
    assert "does not match its leaf hash" in report.problem
    assert_cli_fails_naming(log, k)


def test_edited_event_with_its_leaf_rehashed_is_detected_by_the_stored_roots(log):
    with as_table_owner(log) as conn:
        k = first_registered_seq(conn, after=5)
        canonical = bytes(
            conn.execute(text("SELECT canonical FROM audit_events WHERE seq = :k"), {"k": k}).scalar_one()
        )
        forged = canonical.replace(b'"risk_tier":"medium"', b'"risk_tier":"low"')
        assert forged != canonical
        conn.execute(
            text("UPDATE audit_events SET canonical = :c, leaf_hash = :l WHERE seq = :k"),
            {"c": forged, "l": leaf(forged), "k": k},
        )
    report = log.reg.audit_verify()
    assert not report.ok and report.first_bad_seq == k
    assert "stored tree root differs" in report.problem
    assert_cli_fails_naming(log, k)


def test_edited_copied_columns_are_detected(log):
    """The columns are copies for querying; a query by an edited column would mislead, so verify names it."""
    for column, value in (("model", "other_model"), ("event", "version.retired"), ("version", "99")):
        with as_table_owner(log) as conn:
            k = first_registered_seq(conn, after=5)
            original = conn.execute(
                text(f"SELECT {column} FROM audit_events WHERE seq = :k"), {"k": k}
            ).scalar_one()
            conn.execute(text(f"UPDATE audit_events SET {column} = :v WHERE seq = :k"), {"v": value, "k": k})
        report = log.reg.audit_verify()
        assert not report.ok and report.first_bad_seq == k, column
        assert "row columns disagree" in report.problem
        assert_cli_fails_naming(log, k)
        with log.owner.begin() as conn:  # put it back (the trigger is gone) before the next column
            conn.execute(
                text(f"UPDATE audit_events SET {column} = :v WHERE seq = :k"), {"v": original, "k": k}
            )
        assert log.reg.audit_verify().ok


def test_deleted_event_in_the_middle_is_detected(log):
    k = log.size // 2
    with as_table_owner(log) as conn:
        conn.execute(text("DELETE FROM audit_events WHERE seq = :k"), {"k": k})
    report = log.reg.audit_verify()
    assert not report.ok and report.first_bad_seq == k
    assert f"expected event #{k} but found #{k + 1}" in report.problem
    assert_cli_fails_naming(log, k)


def test_forged_event_inserted_in_the_middle_is_detected(log):
    """The forger shifts later events up by one and inserts a well-formed event (correct leaf and prefix
    root) at #k. That entry is self-consistent, so the first entry that no longer fits is the genuine one
    pushed to #k+1: its content still says it is event #k."""
    k = log.size // 2
    with as_table_owner(log) as conn:
        for seq in range(log.size - 1, k - 1, -1):  # one row at a time: the primary key forbids overlaps
            conn.execute(text("UPDATE audit_events SET seq = :n WHERE seq = :s"), {"n": seq + 1, "s": seq})
        at = parse("2026-01-01T00:00:00Z")
        forged = event_bytes(
            seq=k,
            event="version.deployed",
            actor="app1",
            at=at,
            model="credit_scoring",
            version="3",
            payload={"from": "validate", "to": "deploy"},
            db_role=None,
        )
        prefix = [bytes(r[2]) for r in rows(conn) if r[0] < k] + [leaf(forged)]
        conn.execute(
            text(
                "INSERT INTO audit_events (seq, event, actor, db_role, at, model, version, canonical, leaf_hash, root_hash) "
                "VALUES (:seq, 'version.deployed', 'app1', NULL, :at, 'credit_scoring', '3', :c, :l, :r)"
            ),
            {"seq": k, "at": at, "c": forged, "l": leaf(forged), "r": root_from_leaf_hashes(prefix)},
        )
    report = log.reg.audit_verify()
    assert not report.ok and report.first_bad_seq == k + 1
    assert "row columns disagree" in report.problem
    assert_cli_fails_naming(log, k + 1)


def test_forged_event_appended_past_the_recorded_size_is_named(log):
    """INSERT needs no trigger bypass (the log is append-only, not insert-proof). A well-formed event added
    behind the registry's back, without moving audit_state, is the first bad entry: #size."""
    n = log.size
    with log.reg.engine.begin() as conn:
        all_rows = rows(conn)
        at = parse("2026-01-01T00:00:00Z")
        forged = event_bytes(
            seq=n,
            event="user.added",
            actor="admin",
            at=at,
            model=None,
            version=None,
            payload={"user": "mallory", "roles": ["admin"], "key_id": None},
            db_role=None,
        )
        root = root_from_leaf_hashes([bytes(r[2]) for r in all_rows] + [leaf(forged)])
        conn.execute(
            text(
                "INSERT INTO audit_events (seq, event, actor, db_role, at, model, version, canonical, leaf_hash, root_hash) "
                "VALUES (:seq, 'user.added', 'admin', NULL, :at, NULL, NULL, :c, :l, :r)"
            ),
            {"seq": n, "at": at, "c": forged, "l": leaf(forged), "r": root},
        )
    report = log.reg.audit_verify()
    assert not report.ok
    assert report.first_bad_seq == n, report  # the forged event, not one past it
    assert "removed" not in report.problem  # nothing was removed: an event was added outside the registry
    assert_cli_fails_naming(log, n)


def test_swapped_events_are_detected(log):
    k = log.size // 2
    with as_table_owner(log) as conn:
        conn.execute(text("UPDATE audit_events SET seq = -1 WHERE seq = :k"), {"k": k})
        conn.execute(text("UPDATE audit_events SET seq = :k WHERE seq = :n"), {"k": k, "n": k + 1})
        conn.execute(text("UPDATE audit_events SET seq = :n WHERE seq = -1"), {"n": k + 1})
    report = log.reg.audit_verify()
    assert not report.ok and report.first_bad_seq == k
    assert_cli_fails_naming(log, k)


def test_truncated_tail_is_detected_against_state_then_against_the_checkpoint(log):
    cut = log.checkpoint_size - 2  # events #cut.. removed, some of them inside the checkpointed prefix
    with as_table_owner(log) as conn:
        conn.execute(text("DELETE FROM audit_events WHERE seq >= :c"), {"c": cut})
    report = log.reg.audit_verify()
    assert not report.ok and report.first_bad_seq == cut
    assert "events were removed from the end" in report.problem
    assert_cli_fails_naming(log, cut)

    # the owner also rewinds audit_state to the truncated log: now the log agrees with itself (every remaining
    # event's signature covers its own prefix, so signatures cannot see a cut tail) ...
    with as_table_owner(log, state_too=True) as conn:
        rehash_from(conn, cut)
    alone = log.reg.audit_verify(tables=False)
    assert alone.ok and alone.size == cut
    # ... but the tables still hold what the removed events did: the replay finds rows with no event behind them
    replayed = log.reg.audit_verify()
    assert not replayed.ok and "has no audit event behind it" in replayed.problem, replayed.problem
    done = cli(log.env, "audit", "verify")
    assert done.returncode == 1 and "registry state diverges from the audit log" in done.stdout, done.stdout

    # ... and only the checkpoint kept outside shows what is missing, naming the first removed event
    report = log.reg.audit_verify(log.checkpoint)
    assert not report.ok and report.first_bad_seq == cut
    assert f"the checkpoint saw {log.checkpoint_size}" in report.problem
    assert_cli_fails_naming(log, cut, "--checkpoint", str(log.checkpoint))


def test_consistent_rewrite_is_detected_by_the_event_signatures(log):
    """Edit an old event and recompute every leaf hash, every stored root and audit_state: the database is
    self-consistent, and before signed events only a kept checkpoint could tell (without naming the event).
    Now the events' signatures cover the roots the registry computed: the newest one no longer covers the
    rewritten log, and the first event whose own signature fails is the edited one."""
    with as_table_owner(log, state_too=True) as conn:
        k = first_registered_seq(conn, after=5)
        assert k < log.checkpoint_size
        canonical = bytes(
            conn.execute(text("SELECT canonical FROM audit_events WHERE seq = :k"), {"k": k}).scalar_one()
        )
        body = json.loads(canonical)
        body["payload"]["risk_tier"] = "low"
        forged = event_bytes(
            seq=body["seq"],
            event=body["event"],
            actor=body["actor"],
            at=parse(body["at"]),
            model=body["model"],
            version=body["version"],
            payload=body["payload"],
            db_role=body["db_role"],
        )
        conn.execute(
            text("UPDATE audit_events SET canonical = :c, leaf_hash = :l WHERE seq = :k"),
            {"c": forged, "l": leaf(forged), "k": k},
        )
        rehash_from(conn, k)
    alone = log.reg.audit_verify(tables=False)
    assert not alone.ok and alone.first_bad_seq == k, alone
    assert f"event #{k} is not signed by the registry's event key" in alone.problem
    assert_cli_fails_naming(log, k)

    report = log.reg.audit_verify(log.checkpoint)
    assert not report.ok and report.first_bad_seq == k
    assert_cli_fails_naming(log, k, "--checkpoint", str(log.checkpoint))


def test_untouched_log_passes_on_the_cli_with_and_without_checkpoint(log):
    plain = cli(log.env, "audit", "verify")
    assert plain.returncode == 0 and f"{log.size} events" in plain.stdout
    kept = cli(log.env, "audit", "verify", "--checkpoint", str(log.checkpoint), "--json")
    assert kept.returncode == 0, kept.stdout + kept.stderr
    body = json.loads(kept.stdout)
    assert body["ok"] is True and body["checkpoint"]["size"] == log.checkpoint_size
