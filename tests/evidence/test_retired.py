"""A retired version's pack: the retire gate is assessed with the reason the retire transition recorded, so
CHK-LC-06 (退出需说明原因) is met, not a false blocking "unmet"; before retirement the gate is not assessed."""

from __future__ import annotations

import json

from tests.evidence.conftest import members


def _control(matrix: dict, control_id: str) -> dict:
    for row in matrix["rows"]:
        for ctl in row["controls"]:
            if ctl["control_id"] == control_id:
                return ctl
    raise AssertionError(f"{control_id} not in the matrix")


def test_retired_pack_has_no_false_unmet(retired, german):
    from modelreg.evidence import verify_pack

    files = members(retired.pack)
    version = json.loads(files["model/version.json"])
    assert version["version"]["stage"] == "retire"
    assert version["history"][-1]["action"] == "retire" and version["history"][-1]["reason"] == retired.reason
    retire_unmet = version["gate_requirements_unmet"]["retire"]
    assert [u for u in retire_unmet if u.get("control_id") == "CHK-LC-06"] == []
    matrix = json.loads(files["policy/matrix.json"])
    row = _control(matrix, "CHK-LC-06")
    assert row["result"] == "met", row
    assert "unmet" not in json.dumps([u for u in retire_unmet if u.get("requirement") == "CHK-LC-06"])
    key = retired.registry.settings.evidence_key_path
    result = verify_pack(retired.pack, trusted_keys=[key.with_name(key.name + ".pub")])
    assert result.ok, result.problems


def test_retire_requirement_still_refuses_without_a_reason(retired):
    """The predicate reads the recorded reason only for a retired version: a deployed one with no reason
    given is still unmet (the gate's job at the retire command)."""
    from modelreg.domain.stages import Stage
    from modelreg.governance.requirements import PREDICATES
    from modelreg.governance.service import load_policy
    from modelreg.registry.gates import GateContext

    reg = retired.registry
    pack = load_policy(reg)
    control = pack.control("CHK-LC-06")
    with reg.reading(model="credit_scoring", version="1") as rd:
        session, mv, vid = rd.session, rd.target.version, rd.target.id
        ctx = GateContext("retire", "retire", "app1", mv, vid, [], session, {})
        assert PREDICATES["retirement_reason_recorded"](ctx, control, {}) == []
        from dataclasses import replace

        deployed = GateContext(
            "retire", "retire", "app1", replace(mv, stage=Stage.DEPLOY), vid, [], session, {}
        )
        unmet = PREDICATES["retirement_reason_recorded"](deployed, control, {})
        assert [u.message_zh for u in unmet] == ["退出需说明原因"]


def test_a_deployed_versions_pack_does_not_assess_the_retire_gate(pack_path):
    files = members(pack_path)
    version = json.loads(files["model/version.json"])
    assert "retire" not in version["gate_requirements_unmet"]
    assert _control(json.loads(files["policy/matrix.json"]), "CHK-LC-06")["result"] == "not_assessed"
