"""The lifecycle state machine on SQLite and PostgreSQL: legal moves, refusals that write nothing, the
one-deployed-version rule, suspension, retirement."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from modelreg.domain.stages import TRANSITIONS, Stage
from modelreg.errors import BadInput, InvalidTransition, NotFound, PermissionDenied, StateDiverges
from tests.conftest import register_version


def audit_size(reg) -> int:
    return len(reg.audit_log())


def test_full_lifecycle_records_every_move(registry):
    register_version(registry)
    dev, app, val = registry.as_user("dev"), registry.as_user("app1"), registry.as_user("val")
    assert dev.submit("credit_scoring", "1").version.stage is Stage.VALIDATE
    assert app.deploy("credit_scoring", "1").version.stage is Stage.DEPLOY
    assert val.suspend("credit_scoring", "1", reason="PSI breach").version.suspended is True
    assert app.resume("credit_scoring", "1", reason="investigated").version.suspended is False
    final = app.retire("credit_scoring", "1", reason="replaced by v2").version
    assert final.stage is Stage.RETIRE and not final.suspended
    history = registry.history("credit_scoring", "1")
    assert [(h.action, h.source, h.target, h.actor) for h in history] == [
        ("submit", "develop", "validate", "dev"),
        ("deploy", "validate", "deploy", "app1"),
        ("suspend", "deploy", "deploy", "val"),
        ("resume", "deploy", "deploy", "app1"),
        ("retire", "deploy", "retire", "app1"),
    ]
    events = [e.event for e in registry.audit_log("credit_scoring", "1")]
    assert events == [
        "version.registered",
        "version.submitted",
        "version.deployed",
        "version.suspended",
        "version.resumed",
        "version.retired",
    ]
    assert registry.audit_verify().ok


def test_transition_table_is_the_documented_one():
    moves = {(t.action, t.source.value, t.target.value) for t in TRANSITIONS}
    assert moves == {
        ("submit", "develop", "validate"),
        ("send_back", "validate", "develop"),
        ("deploy", "validate", "deploy"),
        ("retire", "deploy", "retire"),
        ("retire", "develop", "retire"),
        ("retire", "validate", "retire"),
    }


@pytest.mark.parametrize(
    "setup, action",
    [
        ([], "deploy"),  # develop → deploy skips validation
        ([], "send_back"),
        (["submit"], "submit"),
        (["submit", "deploy"], "submit"),
        (["submit", "deploy"], "send_back"),
        (["submit", "deploy", "retire"], "deploy"),
        (["submit", "deploy", "retire"], "retire"),
    ],
)
def test_illegal_transitions_are_refused_and_write_nothing(registry, setup, action):
    register_version(registry)
    users = {"submit": "dev", "deploy": "app1", "retire": "app1", "send_back": "val"}
    for step in setup:
        kwargs = {"reason": "r"} if step in ("retire", "send_back") else {}
        getattr(registry.as_user(users[step]), step)("credit_scoring", "1", **kwargs)
    before_stage = registry.show("credit_scoring", "1").stage
    before_events = audit_size(registry)
    kwargs = {"reason": "r"} if action in ("retire", "send_back") else {}
    with pytest.raises(InvalidTransition) as info:
        getattr(registry.as_user(users[action]), action)("credit_scoring", "1", **kwargs)
    assert before_stage.value in info.value.message
    assert registry.show("credit_scoring", "1").stage is before_stage
    assert audit_size(registry) == before_events


def test_send_back_and_retire_need_a_reason(registry):
    register_version(registry)
    registry.as_user("dev").submit("credit_scoring", "1")
    with pytest.raises(BadInput, match="--reason"):
        registry.as_user("val").send_back("credit_scoring", "1", reason="  ")
    back = registry.as_user("val").send_back("credit_scoring", "1", reason="missing calibration table")
    assert back.version.stage is Stage.DEVELOP
    assert registry.audit_log("credit_scoring", "1")[-1].payload["reason"] == "missing calibration table"
    assert (
        registry.as_user("app1").retire("credit_scoring", "1", reason="abandoned").version.stage
        is Stage.RETIRE
    )


def test_one_deployed_version_per_model_and_replace(registry):
    register_version(registry, version="1")
    register_version(registry, version="2")
    register_version(registry, version="3")
    dev, app = registry.as_user("dev"), registry.as_user("app1")
    for v in ("1", "2", "3"):
        dev.submit("credit_scoring", v)
    app.deploy("credit_scoring", "1")
    before = audit_size(registry)
    with pytest.raises(InvalidTransition, match="--replace"):
        app.deploy("credit_scoring", "2")
    assert audit_size(registry) == before
    assert registry.show("credit_scoring", "2").stage is Stage.VALIDATE
    result = app.deploy("credit_scoring", "2", replace="demote")
    assert result.replaced.version == "1" and result.replaced.stage is Stage.VALIDATE
    result = app.deploy("credit_scoring", "3", replace="retire")
    assert result.replaced.version == "2" and result.replaced.stage is Stage.RETIRE
    assert [v.version for v in registry.list(stage="deploy")] == ["3"]
    # one event per state change, even when two versions moved
    assert audit_size(registry) == before + 2
    assert registry.audit_log("credit_scoring", "3")[-1].payload["replaced"] == {
        "version": "2",
        "to": "retire",
    }


def test_database_itself_refuses_two_deployed_versions(registry):
    register_version(registry, version="1")
    register_version(registry, version="2")
    registry.as_user("dev").submit("credit_scoring", "1")
    registry.as_user("app1").deploy("credit_scoring", "1")
    with pytest.raises(IntegrityError), registry.engine.begin() as conn:
        conn.execute(text("UPDATE model_versions SET stage = 'deploy' WHERE version = '2'"))


def test_suspend_only_deployed_and_not_twice(registry):
    register_version(registry)
    with pytest.raises(InvalidTransition, match="only a deployed version"):
        registry.as_user("val").suspend("credit_scoring", "1", reason="x")
    registry.as_user("dev").submit("credit_scoring", "1")
    registry.as_user("app1").deploy("credit_scoring", "1")
    registry.as_user("ops").suspend("credit_scoring", "1", reason="emergency stop")
    with pytest.raises(InvalidTransition, match="already suspended"):
        registry.as_user("val").suspend("credit_scoring", "1", reason="again")
    with pytest.raises(PermissionDenied, match="approver"):
        registry.as_user("ops").resume("credit_scoring", "1", reason="operators cannot resume")
    assert registry.show("credit_scoring", "1").suspended


def test_submit_gate_lists_every_unmet_basic_requirement(registry):
    reg = registry.as_user("dev")
    register_version(registry)
    # blank the attributes behind the registry's back to exercise the gate (the API refuses blanks)
    with registry.engine.begin() as conn:
        conn.execute(text("UPDATE models SET purpose = '', risk_tier = 'unknown'"))
    before = audit_size(registry)
    # the move itself refuses first: the edited row is not what the audit log proves
    with pytest.raises(StateDiverges, match=r"models credit_scoring: (purpose|risk_tier)"):
        reg.submit("credit_scoring", "1")
    # the gate (what `gate_check` reports, and the defence behind the guard) lists every unmet requirement
    unmet = reg.gate_check("credit_scoring", "1", "submit", "submit")
    ids = [u.requirement for u in unmet]
    assert ids == ["purpose_stated", "risk_tier_assigned"]
    assert all(u.message_zh and u.clause_ids for u in unmet)
    assert audit_size(registry) == before
    assert registry.show("credit_scoring", "1").stage is Stage.DEVELOP


def test_unknown_names_and_users(registry):
    with pytest.raises(NotFound, match="not registered"):
        registry.show("nope", "1")
    register_version(registry)
    with pytest.raises(NotFound, match="no registered version '9'"):
        registry.as_user("dev").submit("credit_scoring", "9")
    with pytest.raises(PermissionDenied, match="not registered"):
        registry.as_user("mallory").submit("credit_scoring", "1")
    with pytest.raises(NotFound, match="owner 'ghost'"):
        registry.as_user("dev").register("m2", "1", owner="ghost", risk_tier="low", purpose="p")
    with pytest.raises(BadInput, match="risk-tier"):
        registry.as_user("dev").register("m2", "1", owner="dev", risk_tier="extreme", purpose="p")
    assert registry.list(model="m2") == []


def test_role_checks_are_deny_by_default(registry):
    register_version(registry)
    with pytest.raises(PermissionDenied, match="developer"):
        registry.as_user("val").submit("credit_scoring", "1")
    registry.as_user("dev").submit("credit_scoring", "1")
    with pytest.raises(PermissionDenied):
        registry.as_user("dev").deploy("credit_scoring", "1")
    with pytest.raises(PermissionDenied):
        registry.as_user("aud").retire("credit_scoring", "1", reason="r")


def test_first_user_must_be_admin(db_url, settings_for):
    from modelreg.client import open_registry

    reg = open_registry(settings_for(db_url), actor="someone")
    reg.init()
    with pytest.raises(BadInput, match="first user"):
        reg.add_user("someone", ["developer"])
    reg.add_user("boss", ["admin"])
    with pytest.raises(PermissionDenied):
        reg.as_user("someone").add_user("x", ["developer"])
    reg.engine.dispose()


def test_times_are_aware_utc(registry):
    mv = register_version(registry)
    assert mv.created_at.tzinfo is not None and mv.created_at.utcoffset().total_seconds() == 0
    again = registry.show("credit_scoring", "1")
    assert again.created_at == mv.created_at
