"""Data checks at monitoring as at validation (issue 19), on SQLite and PostgreSQL with the real monitors on
German credit: the validation stores the training ranges (data_quality profile) and the spec; monitoring a
month with 1e300 amounts is a blocking finding although PSI barely moves; a month whose numeric column holds
text is bad input with nothing written; the positive class named at validation is kept."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest
from sqlalchemy import func, select

from modelreg.errors import BadInput
from tests.governance.conftest import prepare_for_validation, sign_attestations
from tests.governance.german import FEATURES

UNTIL = (date.today() + timedelta(days=180)).isoformat()


def _audit_size(client) -> dict[str, int]:
    from modelreg.store.tables import AuditEventRow, EvaluationRow, FindingRow, MonitorResultRow

    with client.registry.engine.connect() as conn:
        return {
            t.__tablename__: conn.execute(select(func.count()).select_from(t)).scalar_one()
            for t in (AuditEventRow, EvaluationRow, FindingRow, MonitorResultRow)
        }


def _deployed(client, german):
    s = german["split"]
    prepare_for_validation(client, german)
    train, hold = (
        s.train.assign(outcome=np.where(s.train["default"] == 1, "bad", "good")),
        s.holdout.assign(outcome=np.where(s.holdout["default"] == 1, "bad", "good")),
    )
    ev = client.as_user("val").validate(
        "credit_scoring",
        "1",
        data=hold.drop(columns=["default"]),
        reference=train.drop(columns=["default"]),
        target="outcome",
        positive_label="bad",
        model=german["clean"],
        sensitive=["sex"],
    )
    assert ev.data["spec"]["positive_label"] == "bad"
    assert "data_quality" in ev.data["profiles"]
    for f in ev.findings:
        if f.status in ("fail", "error"):
            client.as_user("app1").waive(
                "credit_scoring", "1", control=f.control_id, until=UNTIL, reason="test"
            )
    sign_attestations(client, "credit_scoring", "1", "deploy")
    client.as_user("val").approve("credit_scoring", "1", role="validator")
    client.as_user("app1").approve("credit_scoring", "1", role="approver")
    client.as_user("app2").approve("credit_scoring", "1", role="approver")
    client.as_user("app1").deploy("credit_scoring", "1")
    return hold.drop(columns=["default"])


def test_monitoring_judges_data_by_what_was_validated(governed, german):
    client = governed
    hold = _deployed(client, german)
    ops = client.as_user("ops")
    train = german["split"].train

    # text in a numeric feature: bad input at monitoring too (the validation baseline's spec), nothing stored
    dirty = hold.astype({"credit_amount": object})
    dirty.loc[dirty.index[:5], "credit_amount"] = "N/A"
    before = _audit_size(client)
    with pytest.raises(
        BadInput, match=r"the validation baseline's spec\): numeric feature\(s\) credit_amount has 5"
    ):
        ops.monitor(
            "credit_scoring", "1", data=dirty, target="outcome", model=german["clean"], sensitive=["sex"]
        )
    assert _audit_size(client) == before

    # 1e300 in a few rows: PSI puts them in the top bin like any large amount; the range check does not
    month = hold.copy()
    month.loc[month.index[:4], "credit_amount"] = 1e300
    mon = ops.monitor(
        "credit_scoring", "1", data=month, target="outcome", model=german["clean"], sensitive=["sex"]
    )
    by_id = {f.control_id: f for f in mon.findings}
    implausible = by_id["CHK-DRIFT-03.implausible"]
    assert implausible.status == "fail" and implausible.detail["feature"] == "credit_amount"
    assert implausible.detail["value"] == pytest.approx(4 / len(month))
    assert list(implausible.clause_ids) == ["NFRA-2025-19.2", "NFRA-2025-25.2"]
    # the range came from the profile stored at validation: the training data's own max
    assert any(
        f"range {train['credit_amount'].min():.6g} … {train['credit_amount'].max():.6g}" in n
        for n in mon.data["notes"]
    )
    from modelreg.governance import records

    with client.registry.reading() as rd:
        drift = records.monitor_results(rd.session, mon.id)["drift"]
    psi = next(m for m in drift["metrics"] if m["name"] == "psi" and m["feature"] == "credit_amount")
    assert psi["value"] < 0.1, "PSI alone would not have flagged the 1e300 values"
    # the positive class named at validation is the one monitoring uses (AUC defined, not all-negative)
    assert mon.data["spec"]["positive_label"] == "bad"
    assert next(f for f in mon.findings if f.control_id == "CHK-PERF-04").detail["value"] is not None
    assert [f["name"] for f in mon.data["spec"]["features"]] == FEATURES
