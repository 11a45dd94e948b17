"""Approvals over the service: the signer's machine signs the payload the registry would record; the service
verifies it with the registered key and records it like a local approval (it counts at the gate)."""

from __future__ import annotations

import pytest

from tests.governance.conftest import german, prepare_for_validation  # noqa: F401 (fixture)
from tests.service.conftest import remote

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def test_a_remote_approval_is_signed_by_the_signer_and_counts(service, german):  # noqa: F811
    from modelreg.errors import PermissionDenied, SignatureError

    client = service.registry
    prepare_for_validation(client, german, "scorecard", "1", tier="low")
    s = german["split"]
    client.as_user("val").validate(
        "scorecard",
        "1",
        data=s.holdout,
        reference=s.train,
        target="default",
        model=german["clean"],
        sensitive=["sex"],
    )
    size = client.audit_verify().size
    # a role the session does not hold is refused before anything is drafted; so is the developer
    with pytest.raises(PermissionDenied):
        remote(service, "val").approve("scorecard", "1", role="approver")
    with pytest.raises(PermissionDenied):
        remote(service, "ops").approve("scorecard", "1", role="approver")
    # a payload altered after signing is refused and nothing is recorded
    r = remote(service, "app1")
    from modelreg import signing
    from modelreg.audit.canonical import canonical_json

    path = r._vpath("scorecard", "1")
    _, etag = r._show("scorecard", "1", fresh=True)
    payload = r.request("POST", f"{path}/approvals/draft", json={"role": "approver"}).json()
    sig = signing.sign(r._signing_key(), canonical_json(payload)).to_dict()
    forged = {**payload, "comment": "approved without conditions"}
    with pytest.raises(SignatureError):
        r.request("POST", f"{path}/approvals", json={"role": "approver", "comment": "approved without conditions",
                  "payload": forged, "signature": sig}, headers={"If-Match": etag})  # fmt: skip
    assert client.audit_verify().size == size

    remote(service, "val").approve("scorecard", "1", role="validator", comment="validated")
    size += 1
    result = remote(service, "app1").approve("scorecard", "1", role="approver", comment="fine")
    assert result["payload"]["signer"] == "app1" and result["payload"]["comment"] == "fine"
    from modelreg.governance.service import signed

    records = signed(client.registry, "scorecard", "1", "approval")
    assert [(x.actor, x.role, x.counts) for x in records] == [
        ("val", "validator", True),
        ("app1", "approver", True),
    ]
    assert client.audit_verify().size == size + 1
    assert records[1].signature["key_id"] == signing.key_id(
        signing.load_private_key(service.settings.signing_key_for("app1"))
    )
    last = client.audit_log("scorecard", "1")[-1]
    assert (last.event, last.actor, last.payload["key_id"]) == (
        "approval.signed",
        "app1",
        records[1].signature["key_id"],
    )
