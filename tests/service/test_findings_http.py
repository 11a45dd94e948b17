"""Findings over the service: a validation run over HTTP (data sent as a DataFrame, uploaded as Parquet) opens
tracked findings; they are listed, assigned, given a remediation and accepted over HTTP, the acceptance signed
on the signer's machine; an acceptance altered after signing is refused and nothing is recorded."""

from __future__ import annotations

import pytest

from tests.governance.conftest import german, prepare_for_validation  # noqa: F401 (fixture)
from tests.service.conftest import audit_size, remote

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def test_findings_are_tracked_and_accepted_over_http(service, german):  # noqa: F811
    from modelreg import signing
    from modelreg.audit.canonical import canonical_json
    from modelreg.errors import PermissionDenied, SignatureError
    from modelreg.operations.findings import list_findings

    client = service.registry
    prepare_for_validation(client, german, "scorecard", "1", tier="low")
    s = german["split"]
    model = german["biased"]
    holdout = s.holdout.copy()
    holdout["score"] = model.predict_proba(holdout[list(model.feature_names_in_)])[:, 1]
    reference = s.train.copy()
    reference["score"] = model.predict_proba(reference[list(model.feature_names_in_)])[:, 1]

    val = remote(service, "val")
    ev = val.validate(
        "scorecard",
        "1",
        data=holdout,
        reference=reference,
        target="default",
        score="score",
        sensitive=["sex"],
    )
    failed = {f.control_id for f in ev.findings if f.raw_status in ("fail", "error")}
    assert ev.created_by == "val" and failed, [(f.control_id, f.status) for f in ev.findings]
    local = list_findings(client.registry, model="scorecard")
    over_http = remote(service, "aud").finding_list(model="scorecard")
    assert [f.to_dict() for f in over_http] == [f.to_dict() for f in local]
    assert {f.control_id for f in local} == failed and all(f.status == "open" for f in local)
    first = local[0]

    proposed = remote(service, "dev").finding_propose(first.id, remediation="retrain without the proxy")
    assert (proposed.status, proposed.remediation) == ("remediation_proposed", "retrain without the proxy")
    moved = val.finding_assign(first.id, owner="dev", due="2027-01-31", reason="data arrives in January")
    assert moved.due_at.date().isoformat() == "2027-01-31"

    # an acceptance altered after signing: refused, nothing recorded; a developer may not close at all
    app1 = remote(service, "app1")
    path = f"/api/v1/findings/{first.id}"
    size = audit_size(service.settings)
    draft = app1.request("POST", f"{path}/acceptance/draft", json={"reason": "within appetite"}).json()
    assert (draft["kind"], draft["signer"], draft["finding_id"]) == ("acceptance", "app1", first.id)
    sig = signing.sign(app1._signing_key(), canonical_json(draft)).to_dict()
    forged = {**draft, "reason": "accepted without conditions"}
    with pytest.raises(SignatureError):
        app1.request("POST", f"{path}/close", json={"accept": True, "reason": "accepted without conditions",
                     "payload": forged, "signature": sig})  # fmt: skip
    with pytest.raises(PermissionDenied):
        remote(service, "dev").finding_close(first.id, accept=True, reason="fine")
    assert audit_size(service.settings) == size

    done = app1.finding_close(first.id, accept=True, reason="within appetite")
    assert done.status == "closed" and done.closed_by == "app1"
    assert done.closure["kind"] == "accepted" and done.closure["key_id"] == signing.key_id(
        app1._signing_key()
    )
    events = [
        (e.event, e.actor) for e in client.audit_log("scorecard", "1") if e.event.startswith("finding.")
    ]
    assert events[-3:] == [
        ("finding.remediation_proposed", "dev"),
        ("finding.assigned", "val"),
        ("finding.closed", "app1"),
    ]
    assert audit_size(service.settings) == size + 1
