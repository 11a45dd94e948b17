"""The state the audit log proves, on SQLite and PostgreSQL: an attacker with write access to the registry's
tables (plain SQL, the audit table untouched) edits a stage, grants a role, revives a retired version, copies an
approval to another version, extends a waiver, or appends a well-formed event with ``audit_state`` advanced.
Every one is reported by ``audit verify`` (naming table, key and event) and makes the next command that depends
on it refuse, with nothing written. A legitimate history replays clean.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import date, timedelta

import pytest
from sqlalchemy import text

from modelreg.audit.log import event_bytes, frontier_push, frontier_root
from modelreg.clock import parse
from modelreg.errors import StateDiverges
from tests.governance.conftest import prepare_for_validation, sign_attestations

UNTIL = (date.today() + timedelta(days=60)).isoformat()


def _validate(client, german, version):
    s = german["split"]
    return client.as_user("val").validate(
        "credit_scoring",
        version,
        data=s.holdout,
        reference=s.train,
        target="default",
        model=german["clean"],
        sensitive=["sex"],
    )


@pytest.fixture
def history(governed, german):
    """v1 validated, waived, attested and approved (ready to deploy); v2 validated; v3 retired; v4 in develop."""
    client = governed
    for v in ("1", "2"):
        prepare_for_validation(client, german, version=v)
        ev = _validate(client, german, v)
    ev = client.findings("credit_scoring", "1")[0]
    for cid in [f.control_id for f in ev.findings if f.status in ("fail", "error", "warn")] or [
        "CHK-PERF-02"
    ]:
        client.as_user("app1").waive(
            "credit_scoring", "1", control=cid, until=UNTIL, reason="remediation plan"
        )
    sign_attestations(client, "credit_scoring", "1", "deploy")
    client.as_user("val").approve("credit_scoring", "1", role="validator")
    client.as_user("app1").approve("credit_scoring", "1", role="approver")
    client.as_user("app2").approve("credit_scoring", "1", role="approver")
    dev = client.as_user("dev").registry
    for v in ("3", "4"):
        dev.register(
            "credit_scoring", v, owner="dev", risk_tier="high", purpose="PD scoring for consumer loans"
        )
    # retired through the core registry (no policy gate: the retire gate's attestations are not the point here)
    from modelreg.registry import Registry

    core = Registry(client.registry.settings, actor="app1", engine=client.registry.engine)
    core.retire("credit_scoring", "3", reason="superseded before validation")
    return client


def sql(client, statement: str, **params) -> None:
    with client.registry.engine.begin() as conn:
        conn.execute(text(statement), params)


def version_id(client, version: str) -> int:
    with client.registry.engine.connect() as conn:
        return conn.execute(
            text("SELECT id FROM model_versions WHERE version = :v"), {"v": version}
        ).scalar_one()


def events(client) -> int:
    with client.registry.engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM audit_events")).scalar_one()


def assert_detected(client, *fragments: str) -> None:
    report = client.registry.audit_verify()
    assert not report.ok, "audit verify missed the forged state"
    for fragment in fragments:
        assert re.search(fragment, report.problem), (fragment, report.problem)
    assert report.replay is None or not report.replay["ok"]


def assert_refused(client, action, *fragments: str) -> None:
    before = events(client)
    with pytest.raises(StateDiverges) as info:
        action()
    message = str(info.value)
    assert message.startswith("registry state diverges from the audit log at "), message
    for fragment in fragments:
        assert re.search(fragment, message), (fragment, message)
    assert events(client) == before  # nothing written


def test_legitimate_history_replays_clean(history):
    report = history.registry.audit_verify()
    assert report.ok, report.problem
    assert report.replay["ok"] and report.replay["events"] == events(history)
    assert report.signatures["signed_from"] == 0 and report.signatures["unsigned_events"] == 0
    scoped = history.registry.replay("credit_scoring", "1")
    assert scoped.ok and scoped.scope == {"model": "credit_scoring", "version": "1"}
    # the scoped replay read only this model's events and the registry-level ones
    assert scoped.events < report.replay["events"] + 1


def test_every_forged_row_is_detected_and_refused(history):
    client = history
    app1 = client.as_user("app1").registry

    # 1. a stage edited: develop -> deploy
    sql(client, "UPDATE model_versions SET stage = 'deploy' WHERE version = '4'")
    assert_detected(client, r"model_versions credit_scoring 4: stage is deploy, the log says develop")
    assert_refused(client, lambda: app1.retire("credit_scoring", "4", reason="x"), "credit_scoring 4")
    sql(client, "UPDATE model_versions SET stage = 'develop' WHERE version = '4'")
    assert client.registry.audit_verify().ok

    # 2. a role granted: the developer becomes an approver
    sql(client, "UPDATE users SET roles = :r WHERE name = 'dev'", r=json.dumps(["developer", "approver"]))
    assert_detected(
        client, r"users dev: roles are \['approver', 'developer'\], the log granted \['developer'\]"
    )
    assert_refused(client, lambda: client.as_user("dev").registry.submit("credit_scoring", "4"), "users dev")
    sql(client, "UPDATE users SET roles = :r WHERE name = 'dev'", r=json.dumps(["developer"]))

    # 3. a retired version revived into validate; deploy through the normal command must not follow
    sql(client, "UPDATE model_versions SET stage = 'validate' WHERE version = '3'")
    assert_detected(client, r"model_versions credit_scoring 3: stage is validate, the log says retire")
    assert_refused(client, lambda: app1.deploy("credit_scoring", "3"), "credit_scoring 3")
    sql(client, "UPDATE model_versions SET stage = 'retire' WHERE version = '3'")

    # 4. an approval row copied to another version
    sql(
        client,
        "INSERT INTO signed_records (version_id, kind, role, control_id, actor, payload, signature, until, at) "
        "SELECT :v2, kind, role, control_id, actor, payload, signature, until, at FROM signed_records "
        "WHERE version_id = :v1 AND kind = 'approval' AND actor = 'app1'",
        v1=version_id(client, "1"),
        v2=version_id(client, "2"),
    )
    assert_detected(client, r"signed_records #\d+: row has no audit event behind it")
    assert_refused(
        client,
        lambda: client.as_user("app2").approve("credit_scoring", "2", role="approver"),
        r"signed_records #\d+",
    )
    sql(client, "DELETE FROM signed_records WHERE id = (SELECT max(id) FROM signed_records)")

    # 5. a waiver's expiry extended
    with client.registry.engine.connect() as conn:
        rid, until = conn.execute(
            text("SELECT id, until FROM signed_records WHERE kind = 'waiver' ORDER BY id LIMIT 1")
        ).one()
    longer = (parse(until) if isinstance(until, str) else until) + timedelta(days=365)
    sql(client, "UPDATE signed_records SET until = :u WHERE id = :i", u=longer, i=rid)
    assert_detected(client, rf"signed_records #{rid}: expires .*, the log recorded ")
    assert_refused(client, lambda: app1.deploy("credit_scoring", "1"), rf"signed_records #{rid}")
    sql(client, "UPDATE signed_records SET until = :u WHERE id = :i", u=until, i=rid)

    # every edit undone: verify and the commands work again, and the history still replays clean
    report = client.registry.audit_verify()
    assert report.ok, report.problem
    assert app1.deploy("credit_scoring", "1").version.stage.value == "deploy"


def test_forged_well_formed_event_with_state_advanced_is_caught(history):
    """The attacker writes a correct event (leaf hash, stored root, audit_state advanced) and the row it
    claims, so the tables agree with the log: only the missing signature gives it away, and the registry
    refuses to write after it (it would otherwise vouch for the forged event with its next signature)."""
    client = history
    engine = client.registry.engine
    with engine.begin() as conn:
        size, frontier_json = conn.execute(text("SELECT size, frontier FROM audit_state WHERE id = 1")).one()
        hexes = json.loads(frontier_json) if isinstance(frontier_json, str) else frontier_json
        frontier = [bytes.fromhex(h) for h in hexes]
        at = parse("2026-12-01T00:00:00Z")
        payload = {"from": "develop", "to": "validate"}
        forged = event_bytes(
            seq=size,
            event="version.submitted",
            actor="dev",
            at=at,
            model="credit_scoring",
            version="4",
            payload=payload,
            db_role=None,
        )
        leaf = hashlib.sha256(b"\x00" + forged).digest()
        new_frontier = frontier_push(frontier, size, leaf)
        root = frontier_root(new_frontier)
        # dressed as a signed (v2) event, with the previous event's signature value copied onto it
        stolen = conn.execute(
            text("SELECT signature FROM audit_events WHERE seq = :s"), {"s": size - 1}
        ).scalar_one()
        conn.execute(
            text(
                "INSERT INTO audit_events (seq, event, actor, db_role, at, model, version, canonical, leaf_hash, "
                "root_hash, signature) VALUES (:seq, 'version.submitted', 'dev', NULL, :at, 'credit_scoring', '4', "
                ":c, :l, :r, :sig)"
            ),
            {"seq": size, "at": at, "c": forged, "l": leaf, "r": root, "sig": stolen},
        )
        conn.execute(
            text("UPDATE audit_state SET size = :n, root_hash = :r, frontier = :f WHERE id = 1"),
            {"n": size + 1, "r": root, "f": json.dumps([h.hex() for h in new_frontier])},
        )
        vid = conn.execute(text("SELECT id FROM model_versions WHERE version = '4'")).scalar_one()
        conn.execute(text("UPDATE model_versions SET stage = 'validate' WHERE id = :i"), {"i": vid})
        conn.execute(
            text(
                "INSERT INTO transitions (version_id, action, source, target, actor, reason, at, audit_seq) "
                "VALUES (:i, 'submit', 'develop', 'validate', 'dev', NULL, :at, :s)"
            ),
            {"i": vid, "at": at, "s": size},
        )
    # the tables agree with the (forged) log: replay alone would pass; the signature does not
    assert client.registry.replay().ok
    report = client.registry.audit_verify()
    assert not report.ok and report.first_bad_seq == size, report
    assert f"event #{size} is not signed by the registry's event key" in report.problem
    # and every command that would write refuses, naming the forged event
    before = events(client)
    with pytest.raises(
        StateDiverges, match=rf"at #{size}: the event is not signed by the registry's event key"
    ):
        client.as_user("app1").registry.retire("credit_scoring", "4", reason="x")
    with pytest.raises(StateDiverges, match=rf"at #{size}"):
        client.registry.add_user("mallory", ["admin"])
    assert events(client) == before
