"""The deploy gate end to end on SQLite and PostgreSQL with real monitors on German credit: a biased model is
refused citing NFRA-2025-25.6, waivers show as waived and let it through, segregation of duties, forged and
stale approvals, the tier's approver count, and suspension on a monitoring breach."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import text

from modelreg.domain.stages import Stage
from modelreg.errors import GateRefused, PermissionDenied, SegregationOfDuties
from tests.governance.conftest import prepare_for_validation, sign_attestations

UNTIL = (date.today() + timedelta(days=180)).isoformat()


def _validate(client, german, model_key, *, who="val", version="1"):
    s = german["split"]
    return client.as_user(who).validate(
        "credit_scoring",
        version,
        data=s.holdout,
        reference=s.train,
        target="default",
        model=german[model_key],
        sensitive=["sex"],
    )


def _unmet_ids(exc: GateRefused) -> set[str]:
    return {u["control_id"] or u["requirement"] for u in exc.unmet}


def test_biased_model_refused_then_waived_approved_and_deployed(governed, german):
    client = governed
    prepare_for_validation(client, german)
    ev = _validate(client, german, "biased")
    fair = {f.control_id: f for f in ev.findings if f.control_id.startswith("CHK-FAIR")}
    assert fair["CHK-FAIR-01"].status == "fail"
    assert "NFRA-2025-25.6" in fair["CHK-FAIR-01"].clause_ids
    dpr = fair["CHK-FAIR-01"].detail["value"]
    # the number is the monitor's demographic parity ratio by sex, recomputed here from the predictions
    s = german["split"]
    scores = german["biased"].predict_proba(s.holdout[german["biased"].feature_name_])[:, 1]
    pred = scores >= 0.5
    rates = [pred[(s.holdout["sex"] == g).to_numpy()].mean() for g in ("female", "male")]
    assert dpr == pytest.approx(min(rates) / max(rates), rel=1e-9)

    app = client.as_user("app1")
    events_before = len(client.audit_log())
    with pytest.raises(GateRefused) as info:
        app.deploy("credit_scoring", "1")
    unmet = info.value.unmet
    fair_unmet = [u for u in unmet if u["control_id"] == "CHK-FAIR-01"]
    assert fair_unmet and "NFRA-2025-25.6" in fair_unmet[0]["clause_ids"] and fair_unmet[0]["message_zh"]
    # every unmet requirement is listed, not just the first: approvals and attestations too
    ids = _unmet_ids(info.value)
    assert {"CHK-LC-02.approvals", "CHK-HI-01"} <= ids
    assert len(client.audit_log()) == events_before
    assert client.registry.show("credit_scoring", "1").stage is Stage.VALIDATE

    # waive every failing check; a waived finding shows as waived, never as pass
    failing = [f.control_id for f in ev.findings if f.status in ("fail", "error")]
    for cid in failing:
        app.waive(
            "credit_scoring", "1", control=cid, until=UNTIL, reason="remediation plan MRC-2026-17 accepted"
        )
    findings = client.findings("credit_scoring", "1")[0]
    statuses = {f.control_id: f.status for f in findings.findings}
    assert statuses["CHK-FAIR-01"] == "waived"
    assert all(statuses[c] == "waived" for c in failing)
    assert statuses["CHK-FAIR-01"] != "pass"

    sign_attestations(client, "credit_scoring", "1", "deploy")
    client.as_user("val").approve("credit_scoring", "1", role="validator", comment="independent validation")
    client.as_user("app1").approve("credit_scoring", "1", role="approver")
    with pytest.raises(GateRefused) as info:  # high risk: two distinct approvers
        app.deploy("credit_scoring", "1")
    assert [u["requirement"] for u in info.value.unmet] == ["approvals_approver"]
    assert "1 present" in info.value.unmet[0]["message_en"]
    client.as_user("app2").approve("credit_scoring", "1", role="approver")
    result = app.deploy("credit_scoring", "1")
    assert result.version.stage is Stage.DEPLOY
    assert client.audit_verify().ok


def test_segregation_of_duties(governed, german):
    client = governed
    prepare_for_validation(client, german, owner="dv")
    dv = client.as_user("dv")
    with pytest.raises(SegregationOfDuties, match="cannot validate"):
        _validate(client, german, "clean", who="dv")
    _validate(client, german, "clean")
    with pytest.raises(SegregationOfDuties):
        dv.approve("credit_scoring", "1", role="approver")
    client.registry.add_user("val2", ["validator", "approver"])
    client.generate_key("val2")
    _validate(client, german, "clean", who="val2")
    with pytest.raises(SegregationOfDuties, match="validated"):  # whoever validated may not also approve
        client.as_user("val2").approve("credit_scoring", "1", role="approver")
    with pytest.raises(PermissionDenied):
        client.as_user("dev").approve("credit_scoring", "1", role="approver")


def test_forged_and_stale_approvals_do_not_count(governed, german, tmp_path):
    client = governed
    prepare_for_validation(client, german)
    _validate(client, german, "clean")
    client.as_user("val").approve("credit_scoring", "1", role="validator")
    client.as_user("app1").approve("credit_scoring", "1", role="approver")
    # a forged approval: a copy of app1's payload, re-signed as app2 with a key that is not app2's
    from modelreg import signing
    from modelreg.audit.canonical import canonical_json
    from modelreg.governance.service import signed

    genuine = next(r for r in signed(client.registry, "credit_scoring", "1") if r.actor == "app1")
    forged_payload = {**genuine.payload, "signer": "app2"}
    rogue = signing.generate_private_key()
    data = canonical_json(forged_payload)
    sig = signing.sign(rogue, data).to_dict()
    with client.registry.engine.begin() as conn:
        vid = conn.execute(text("SELECT id FROM model_versions WHERE version = '1'")).scalar()
        conn.execute(
            text(
                "INSERT INTO signed_records (version_id, kind, role, control_id, actor, payload, signature, until, at) VALUES (:v, 'approval', 'approver', NULL, 'app2', :p, :s, NULL, :at)"
            ),
            {"v": vid, "p": data, "s": __import__("json").dumps(sig), "at": genuine.at},
        )
    recs = {r.actor: r for r in signed(client.registry, "credit_scoring", "1", "approval")}
    assert recs["app2"].valid_signature is False and recs["app1"].valid_signature is True
    gate = client.gate_check("credit_scoring", "1")
    assert any(u.requirement == "approvals_approver" and "1 present" in u.message_en for u in gate)
    # and the inserted row has no audit event behind it: the next signing command refuses to act at all
    from modelreg.errors import StateDiverges

    with pytest.raises(StateDiverges, match=r"signed_records #\d+: row has no audit event behind it"):
        client.as_user("app2").approve("credit_scoring", "1", role="approver")
    with client.registry.engine.begin() as conn:  # the attacker's row removed, the registry works again
        conn.execute(text("DELETE FROM signed_records WHERE actor = 'app2'"))

    # a re-validation makes the earlier approvals stale: they were bound to the old evaluation's digest
    client.as_user("app2").approve("credit_scoring", "1", role="approver")
    assert not [u for u in client.gate_check("credit_scoring", "1") if u.requirement.startswith("approvals_")]
    _validate(client, german, "clean")
    stale = [u for u in client.gate_check("credit_scoring", "1") if u.requirement.startswith("approvals_")]
    assert {u.requirement for u in stale} == {"approvals_validator", "approvals_approver"}


def test_monitoring_breach_suspends_high_risk_model(governed, german):
    client = governed
    prepare_for_validation(client, german)
    ev = _validate(client, german, "clean")
    for f in ev.findings:
        if f.status in ("fail", "error"):
            client.as_user("app1").waive(
                "credit_scoring", "1", control=f.control_id, until=UNTIL, reason="accepted for the test"
            )
    sign_attestations(client, "credit_scoring", "1", "deploy")
    client.as_user("val").approve("credit_scoring", "1", role="validator")
    client.as_user("app1").approve("credit_scoring", "1", role="approver")
    client.as_user("app2").approve("credit_scoring", "1", role="approver")
    client.as_user("app1").deploy("credit_scoring", "1")

    # a waiver granted for deployment does not cover monitoring: it must not hide the breach below
    client.as_user("app2").waive(
        "credit_scoring", "1", control="CHK-PERF-04", until=UNTIL, reason="deploy-time only", gate="deploy"
    )

    # a month where the model no longer ranks: outcomes unrelated to the features
    month = german["split"].holdout.copy()
    month["default"] = month["default"].sample(frac=1.0, random_state=3).to_numpy()
    mon = client.as_user("ops").monitor(
        "credit_scoring", "1", data=month, target="default", model=german["clean"], sensitive=["sex"]
    )
    drop = next(f for f in mon.findings if f.control_id == "CHK-PERF-04")
    assert drop.raw_status == "fail" and drop.status == "fail"
    assert mon.suspended
    mv = client.registry.show("credit_scoring", "1")
    assert mv.stage is Stage.DEPLOY and mv.suspended
    last = client.audit_log("credit_scoring", "1")[-1]
    assert (
        last.event == "version.suspended"
        and last.payload["automatic"] is True
        and "CHK-PERF-04" in last.payload["controls"]
    )
    with pytest.raises(PermissionDenied):  # only a person in the approver role resumes
        client.as_user("ops").resume("credit_scoring", "1", reason="auto")
    client.as_user("app1").resume("credit_scoring", "1", reason="investigated: label feed error")
    assert not client.registry.show("credit_scoring", "1").suspended
