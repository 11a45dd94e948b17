"""Vendor (third-party) models: registered as vendor-supplied without training data, the policy's vendor view
replaces the controls that need model internals or training data by outcome analysis and vendor attestations;
validation runs only what applies, the deploy gate asks for the vendor attestations, and the evidence pack says
so (operations.json, and the pack's policy is the vendor view the evaluation ran with)."""

from __future__ import annotations

import json
import zipfile

from tests.governance.conftest import CARD, MLFLOW_INFO, sign_attestations

VENDOR = "Acme Scores Ltd"


def test_vendor_model_gets_outcome_analysis_and_attestations(governed, german, tmp_path):
    from modelreg.governance.service import load_policy
    from modelreg.operations import effective_pack, vendor_of

    client = governed
    dev = client.as_user("dev")
    s = german["split"]
    for name, card in (("bureau_score", {**CARD, "vendor": VENDOR}), ("inhouse", dict(CARD))):
        dev.registry.register(
            name,
            "1",
            owner="dev",
            risk_tier="high",
            purpose="PD scoring",
            mlflow_info=MLFLOW_INFO,
            model_card=card,
        )
        dev.attach_data(name, "1", role="holdout", data=s.holdout, name_hint="german-holdout")
        sign_attestations(client, name, "1", "submit")
    # without training data an in-house model cannot be submitted; the vendor's can
    inhouse = {u.control_id for u in client.registry.gate_check("inhouse", "1", "submit", "submit")}
    assert "CHK-DQ-01" in inhouse
    vendor_unmet = {u.control_id for u in client.registry.gate_check("bureau_score", "1", "submit", "submit")}
    assert "CHK-DQ-01" not in vendor_unmet
    dev.submit("bureau_score", "1")

    mv = client.registry.show("bureau_score", "1")
    assert vendor_of(mv) == VENDOR
    pack = effective_pack(load_policy(client.registry), mv)
    na = set(pack.vendor_models.not_applicable)
    assert {"CHK-XAI-03", "CHK-ROB-02", "CHK-DQ-01"} <= na

    # validation without reference data or model internals: only the outcome analysis and the other checks run
    ev = client.as_user("val").validate(
        "bureau_score", "1", data=s.holdout, target="default", model=german["clean"], sensitive=["sex"]
    )
    ran = {f.control_id for f in ev.findings}
    assert set(pack.vendor_models.outcome_analysis) <= ran
    assert not (ran & na)
    assert ev.policy_digest == pack.digest != load_policy(client.registry).digest
    assert {"explainability", "robustness", "drift"}.isdisjoint(ev.data["params"])

    unmet = {u.control_id for u in client.registry.gate_check("bureau_score", "1", "deploy", "deploy")}
    assert {"CHK-TP-05", "CHK-TP-06"} <= unmet
    assert not (unmet & na)
    client.as_user("app1").attest("bureau_score", "1", control="CHK-TP-05", comment="vendor pack reviewed")
    client.as_user("val").attest("bureau_score", "1", control="CHK-TP-06", comment="vendor tests reviewed")
    unmet = {u.control_id for u in client.registry.gate_check("bureau_score", "1", "deploy", "deploy")}
    assert not ({"CHK-TP-05", "CHK-TP-06"} & unmet)

    from modelreg.evidence.pack import build_pack

    out = tmp_path / "vendor.zip"
    build_pack(client.as_user("aud").registry, "bureau_score", "1", out)
    with zipfile.ZipFile(out) as zf:
        ops = json.loads(zf.read("operations.json"))
        manifest = json.loads(zf.read("manifest.json"))
    assert ops["supplier"] == VENDOR
    view = ops["vendor_view"]
    assert view["not_applicable"]["CHK-XAI-03"]["reason_en"] == "needs the model internals (SHAP)"
    assert view["vendor_attestations"] == ["CHK-TP-05", "CHK-TP-06"]
    assert view["effective_policy_digest"] == ev.policy_digest == manifest["policy"]["digest"]
