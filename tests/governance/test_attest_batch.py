"""Attestations in a batch from a file (issue 18.1): each entry signed on its own with the signer's key, exactly
like ``modelreg attest``; the whole batch recorded in one unit of work or not at all, a bad entry named by its
index and line (exit 2, one line, no traceback). On SQLite and PostgreSQL, through the API and the real CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from modelreg.errors import BadInput, GateRefused
from tests.conftest import REPO_ROOT
from tests.governance.conftest import CARD, MLFLOW_INFO

NAME = "credit_scoring"


def _register(client, german, version: str = "1") -> None:
    dev = client.as_user("dev")
    dev.registry.register(
        NAME,
        version,
        owner="dev",
        risk_tier="high",
        purpose="PD scoring for consumer loans",
        mlflow_info=MLFLOW_INFO,
        model_card=CARD,
    )
    s = german["split"]
    dev.attach_data(NAME, version, role="training", data=s.train, name_hint="german-train")
    dev.attach_data(NAME, version, role="holdout", data=s.holdout, name_hint="german-holdout")


def _developer_controls(client, gate: str = "submit") -> list[str]:
    from modelreg.governance.service import load_policy

    pack = load_policy(client.registry)
    return [
        c.id
        for c in pack.controls_for(gate, "high")
        if c.attestation is not None and c.attestation.role == "developer"
    ]


def _yaml(entries: list[dict]) -> str:
    """One entry per line (``- {…}``) after a header line, so entry i starts on line i + 1."""
    lines = ["attestations:"]
    for e in entries:
        lines.append("  - " + json.dumps(e, ensure_ascii=False))
    return "\n".join(lines) + "\n"


def _counts(client) -> tuple[int, int]:
    from modelreg.governance.service import signed

    records = len(signed(client.registry, NAME, "1"))
    return records, len(client.audit_log())


def test_a_batch_of_the_developer_attestations_lets_the_submit_gate_pass(governed, german, tmp_path):
    client = governed
    _register(client, german)
    dev = client.as_user("dev")
    controls = _developer_controls(client)
    assert len(controls) >= 2
    with pytest.raises(GateRefused) as refused:
        dev.submit(NAME, "1")
    assert set(controls) <= {u["control_id"] for u in refused.value.unmet}

    batch = tmp_path / "attest.yaml"
    batch.write_text(
        _yaml(
            [
                {"model": NAME, "version": "1", "control": c, "comment": f"file MD-{i}"}
                for i, c in enumerate(controls)
            ]
        ),
        encoding="utf-8",
    )
    events_before = len(client.audit_log())
    done = dev.attest_batch(batch)
    assert [d["entry"] for d in done] == list(range(1, len(controls) + 1))
    assert [d["payload"]["control_id"] for d in done] == controls
    assert done[0]["payload"]["comment"] == "file MD-0"

    # one attestation.signed event per entry, naming its record, as the single command writes
    new = client.audit_log()[events_before:]
    assert [e.event for e in new] == ["attestation.signed"] * len(controls)
    assert [e.payload["record_id"] for e in new] == [d["record_id"] for d in done]
    assert client.gate_check(NAME, "1", "submit") == []
    assert dev.submit(NAME, "1").version.stage.value == "validate"
    assert client.audit_verify().ok  # the log replays: every batch event re-applies on its own


BAD = {
    "unknown control": ({"control": "CHK-NOPE-99"}, "not_found", "'CHK-NOPE-99' is not in policy pack"),
    "switched off": ({"control": "CHK-ROB-04.exec"}, "bad_input", "is switched off"),
    "wrong role": ({"control": "CHK-HI-01"}, "permission_denied", "must be attested by a approver"),
    "bad version": ({"version": "99"}, "not_found", "99"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_one_bad_entry_records_nothing_and_names_the_entry(governed, german, tmp_path, case):
    client = governed
    _register(client, german)
    dev = client.as_user("dev")
    controls = _developer_controls(client)
    entries = [{"model": NAME, "version": "1", "control": c} for c in controls]
    override, reason, fragment = BAD[case]
    entries.insert(2, {**entries[0], **override})  # the third entry is the bad one
    if "control" not in override:
        entries[2]["control"] = controls[-1]
    batch = tmp_path / "attest.yaml"
    batch.write_text(_yaml(entries), encoding="utf-8")

    before = _counts(client)
    with pytest.raises(BadInput) as info:
        dev.attest_batch(batch)
    assert _counts(client) == before  # no record and no audit event: not even the good entries before it
    err = info.value
    assert err.exit_status == 2
    assert f"{batch} entry 3 (line 4): " in err.message and fragment in err.message, err.message
    assert err.details == {"entry": 3, "line": 4, "reason": reason}
    assert "\n" not in err.message


def test_a_batch_attestation_verifies_on_its_own_like_a_single_one(governed, german, tmp_path):
    from modelreg import signing
    from modelreg.governance.service import signed

    client = governed
    _register(client, german)
    _register(client, german, version="2")  # one batch spans versions: one transaction still
    dev = client.as_user("dev")
    first, second = _developer_controls(client)[:2]
    single = dev.attest(NAME, "1", control=first, comment="same words")
    batch = tmp_path / "attest.json"
    batch.write_text(
        json.dumps(
            {
                "attestations": [
                    {"model": NAME, "version": "1", "control": second, "comment": "same words"},
                    {"model": NAME, "version": 2, "control": first, "comment": "same words"},
                ]
            },
            indent=2,
        ),
        encoding="utf-8",
    )
    done = dev.attest_batch(batch)
    assert [(d["payload"]["version"], d["payload"]["control_id"]) for d in done] == [
        ("1", second),
        ("2", first),
    ]

    # the same payload shape as a single attestation (only control, version and time differ)
    assert set(done[0]["payload"]) == set(single["payload"])
    assert {k: v for k, v in done[1]["payload"].items() if k not in ("version", "at")} == {
        k: v for k, v in single["payload"].items() if k not in ("version", "at")
    }
    # each stored record verifies alone with the signer's public key file, outside the registry
    public = signing.load_public_key(
        signing.public_key_path_for(client.settings.signing_key_for("dev")).read_bytes()
    )
    for version, record_id in (
        ("1", single["record_id"]),
        ("1", done[0]["record_id"]),
        ("2", done[1]["record_id"]),
    ):
        (rec,) = [r for r in signed(client.registry, NAME, version, "attestation") if r.id == record_id]
        assert rec.counts
        assert signing.verify(public, rec.payload_bytes, signing.Signature.from_dict(rec.signature))
        tampered = bytes(rec.payload_bytes).replace(b"same words", b"other words")
        assert not signing.verify(public, tampered, signing.Signature.from_dict(rec.signature))

    # and in an evidence pack, verified offline, each record of the batch is checked on its own
    from modelreg.evidence import build_pack
    from modelreg.evidence.verify import verify_pack

    out = tmp_path / "pack.zip"
    build_pack(client.registry.as_user("aud"), NAME, "1", out)
    key = client.settings.evidence_key_path
    result = verify_pack(out, trusted_keys=[key.with_name(key.name + ".pub")])
    assert result.ok, result.problems
    dev_key = single["signature"]["key_id"]
    for record_id in (single["record_id"], done[0]["record_id"]):
        assert result.signer_key_ids[f"signed/{record_id}-attestation.json"] == dev_key


def _cli(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "modelreg", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_cli_batch_records_all_or_names_the_bad_entry(governed, german, tmp_path, db_url, env_for):
    client = governed
    _register(client, german)
    env = env_for(db_url)
    controls = _developer_controls(client)
    good = [{"model": NAME, "version": "1", "control": c} for c in controls]
    bad = tmp_path / "bad.yaml"
    bad.write_text(_yaml([*good[:1], {**good[0], "control": "CHK-ROB-04.exec"}]), encoding="utf-8")
    before = _counts(client)

    done = _cli(env, "--as", "dev", "attest", "--batch", str(bad))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip() == (
        f"error: {bad} entry 2 (line 3): control CHK-ROB-04.exec is switched off in policy pack "
        + done.stderr.split("policy pack ", 1)[1].strip()
    )
    assert len(done.stderr.strip().splitlines()) == 1 and "nothing was recorded" in done.stderr
    assert _counts(client) == before

    both = _cli(env, "--as", "dev", "attest", "NAME", "--batch", str(bad))
    assert both.returncode == 2 and "give no NAME VERSION" in both.stderr

    ok = tmp_path / "ok.yaml"
    ok.write_text(_yaml(good), encoding="utf-8")
    done = _cli(env, "--as", "dev", "attest", "--batch", str(ok), "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)["attestations"]
    assert [a["payload"]["control_id"] for a in out] == controls
    assert all(a["signature"]["algorithm"] == "ed25519" for a in out)
    assert _counts(client) == (before[0] + len(controls), before[1] + len(controls))
    assert client.gate_check(NAME, "1", "submit") == []


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_refused_deploy_and_a_refused_batch_under_json(governed, german, tmp_path, db_url, env_for):
    """Issue 18.2: under --json a refusal is one JSON object (stderr; stdout stays empty): ok false, the stable
    code, the message, the exit status and, for a gate, every unmet requirement with its control id."""
    from tests.governance.conftest import prepare_for_validation

    client = governed
    prepare_for_validation(
        client, german
    )  # in validate: no validation run, no approvals, no attestations yet
    env = env_for(db_url)
    events = len(client.audit_log())

    done = _cli(env, "--as", "app1", "deploy", NAME, "1", "--json")
    assert done.returncode == 1 and done.stdout == "", done.stderr
    (line,) = done.stderr.strip().splitlines()
    out = json.loads(line)
    assert out["ok"] is False
    error = out["error"]
    assert error["code"] == "gate_refused" and error["exit"] == 1
    unmet = error["details"]["unmet"]
    assert error["message"] == f"deploy {NAME} 1 refused: {len(unmet)} requirement(s) unmet"
    ids = {u["control_id"] for u in unmet}
    assert {"CHK-LC-02.approvals", "CHK-HI-01"} <= ids
    assert all(u["requirement"] and u["message_en"] and u["message_zh"] for u in unmet)
    assert any(u["clause_ids"] for u in unmet)
    assert len(client.audit_log()) == events
    assert client.registry.show(NAME, "1").stage.value == "validate"

    bad = tmp_path / "bad.yaml"
    bad.write_text(_yaml([{"model": NAME, "version": "7", "control": "CHK-HI-01"}]), encoding="utf-8")
    done = _cli(env, "--as", "app1", "attest", "--batch", str(bad), "--json")
    assert done.returncode == 2 and done.stdout == "", done.stderr
    (line,) = done.stderr.strip().splitlines()
    out = json.loads(line)
    assert out["ok"] is False and out["error"]["code"] == "bad_input" and out["error"]["exit"] == 2
    assert out["error"]["details"] == {"entry": 1, "line": 2, "reason": "not_found"}
    assert len(client.audit_log()) == events
