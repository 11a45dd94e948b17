"""Building and verifying the German credit pack end to end, checked against the registry itself."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from tests.evidence.conftest import FEATURES, NAME, VERSION, members, run_cli


def test_german_pack_verifies_end_to_end(german, pack_path):
    from modelreg.evidence import verify_pack

    result = verify_pack(pack_path, trusted_keys=[german.evidence_pub])
    assert result.ok, result.problems
    assert (result.model, result.version) == (NAME, VERSION)
    files = members(pack_path)
    manifest = json.loads(files["manifest.json"])
    # Every member except the manifest and its signature is listed, with its real digest, size and type.
    listed = {f["path"]: f for f in manifest["files"]}
    assert set(listed) == set(files) - {"manifest.json", "manifest.sig.json"}
    for path, entry in listed.items():
        assert entry["sha256"] == hashlib.sha256(files[path]).hexdigest()
        assert entry["size"] == len(files[path])
    assert listed["index.html"]["media_type"] == "text/html"
    assert manifest["model"] == {
        "name": NAME,
        "version": VERSION,
        "stage": "deploy",
        "suspended": False,
        "risk_tier": "high",
        "owner": "dev",
    }
    assert manifest["registry"]["schema_revision"] and manifest["registry"]["modelreg_version"]
    assert manifest["policy"]["id"] == german.validation.policy_id
    assert manifest["policy"]["digest"] == german.validation.policy_digest
    assert manifest["evidence_key"]["key_id"] == result.manifest_key_id
    for required in (
        "index.html",
        "model_card.md",
        "model_card.html",
        "disclosure.md",
        "disclosure.html",
        "provenance.json",
        "policy/matrix.json",
        "audit/events.jsonl",
        "audit/leaves.bin",
    ):
        assert required in files


def test_pack_holds_every_stored_artifact_and_result(german, pack_path):
    from modelreg.governance.service import all_evaluations

    files = members(pack_path)
    evaluations = all_evaluations(german.registry, NAME, VERSION)
    assert [e.id for e in evaluations] == [german.precheck.id, german.validation.id, german.monitoring.id]
    stored = german.validation.extra["artifacts"]
    assert {a["monitor"] for a in stored} >= {
        "drift",
        "fairness",
        "explainability",
        "performance",
        "robustness",
    }
    for a in stored:
        data = files[f"monitors/{german.validation.id}/{a['monitor']}/{a['name']}"]
        assert hashlib.sha256(data).hexdigest() == a["sha256"]
    assert files[f"monitors/{german.validation.id}/fairness/fairness_groups.png"].startswith(b"\x89PNG")
    assert files[f"monitors/{german.validation.id}/explainability/shap_importance.png"].startswith(b"\x89PNG")
    for kind in ("drift", "fairness", "explainability", "performance", "robustness"):
        result = json.loads(files[f"monitors/{german.validation.id}/{kind}.json"])
        assert result["kind"] == kind and result["metrics"]
    ev = json.loads(files[f"evaluations/{german.validation.id}.json"])
    assert ev["digest"] == german.validation.digest
    waived = [f for f in ev["findings"] if f["control_id"] == "CHK-PERF-02"]
    assert waived and waived[0]["status"] == "waived" and waived[0]["raw_status"] == "fail"


def test_performance_numbers_match_an_independent_computation(german, pack_path):
    """The AUC and KS in the pack are those sklearn/scipy give for the same model on the same hold-out."""
    import pandas as pd
    from scipy.stats import ks_2samp
    from sklearn.metrics import roc_auc_score

    files = members(pack_path)
    perf = json.loads(files[f"monitors/{german.validation.id}/performance.json"])
    value = {m["name"]: m["value"] for m in perf["metrics"] if m["feature"] is None and m["group"] is None}
    holdout = pd.read_parquet(german.holdout_path)
    scores = german.model.predict_proba(holdout[list(FEATURES)])[:, 1]
    y = holdout["default"].to_numpy()
    assert value["auc"] == pytest.approx(roc_auc_score(y, scores), abs=1e-12)
    assert value["gini"] == pytest.approx(2 * roc_auc_score(y, scores) - 1, abs=1e-12)
    assert value["ks_statistic"] == pytest.approx(
        ks_2samp(scores[y == 1], scores[y == 0]).statistic, abs=1e-12
    )


def test_audit_extract_matches_the_registry_log(german, pack_path):
    from modelreg.audit import log as audit_log
    from modelreg.audit.merkle import root_from_leaf_hashes, verify_inclusion

    files = members(pack_path)
    manifest = json.loads(files["manifest.json"])
    size = manifest["audit"]["tree_size"]
    leaves = audit_log.leaf_hashes(german.registry.engine)[:size]
    assert files["audit/leaves.bin"] == b"".join(leaves)
    assert manifest["audit"]["root_hash"] == root_from_leaf_hashes(leaves).hex()
    events = [json.loads(line) for line in files["audit/events.jsonl"].decode().splitlines()]
    mine = [e.seq for e in german.registry.audit_log(NAME, VERSION) if e.seq < size]
    assert [e["seq"] for e in events] == mine
    kinds = {e["event"]["event"] for e in events}
    assert {
        "version.registered",
        "version.submitted",
        "evaluation.recorded",
        "approval.signed",
        "waiver.granted",
        "attestation.signed",
    } <= kinds
    for e in events:
        canonical = base64.b64decode(e["canonical_b64"])
        leaf = hashlib.sha256(b"\x00" + canonical).digest()
        assert leaf == leaves[e["seq"]]
        proof = [bytes.fromhex(h) for h in e["inclusion_proof"]]
        assert verify_inclusion(leaf, e["seq"], size, proof, bytes.fromhex(manifest["audit"]["root_hash"]))


def test_signed_records_and_their_keys(german, pack_path):
    from modelreg.evidence import verify_pack
    from modelreg.governance.service import signed

    records = signed(german.registry, NAME, VERSION)
    result = verify_pack(pack_path, trusted_keys=[german.evidence_pub])
    assert len(result.signer_key_ids) == len(records)
    by_user = {u: german.registry.user(u).key_id for u in ("dev", "val", "app1", "app2")}
    files = members(pack_path)
    for rec in records:
        name = f"signed/{rec.id}-{rec.kind}.json"
        assert result.signer_key_ids[name] == by_user[rec.actor]
        body = json.loads(files[name])
        assert base64.b64decode(body["payload_b64"]) == rec.payload_bytes
    kinds = sorted({r.kind for r in records})
    assert kinds == ["approval", "attestation", "waiver"]


def test_policy_matrix_coverage_is_counted_from_the_pack(german, pack_path):
    from modelreg.governance.service import load_policy

    pack = load_policy(german.registry)
    files = members(pack_path)
    matrix = json.loads(files["policy/matrix.json"])
    cited = {
        cid for ctl in pack.controls if not ctl.disabled for cid in (*ctl.clauses, *ctl.secondary_clauses)
    }
    out = set(pack.out_of_scope)
    s = matrix["summary"]
    assert s["clauses_total"] == len(pack.clauses)
    assert s["clauses_out_of_scope"] == len({c.id for c in pack.clauses} & out)
    assert s["clauses_covered"] == len({c.id for c in pack.clauses if c.id in cited and c.id not in out})
    rows = {r["clause_id"]: r for r in matrix["rows"]}
    # A check shows its latest result with its evidence files; a signed attestation shows as attested.
    perf = next(c for r in rows.values() for c in r["controls"] if c["control_id"] == "CHK-PERF-02")
    # The result is that of the latest evaluation that ran the check (waivers applied as the registry
    # applies them: a deploy-gate waiver may not cover a monitoring breach).
    latest = json.loads(files[f"evaluations/{german.monitoring.id}.json"])
    assert perf["result"] == next(f["status"] for f in latest["findings"] if f["control_id"] == "CHK-PERF-02")
    rob = next(c for r in rows.values() for c in r["controls"] if c["control_id"] == "CHK-ROB-02")
    assert rob["result"] == "waived" and "waived by app2" in rob["detail"]
    # The latest evaluation that ran the check is the evidence (here the monitoring run after deployment).
    assert perf["evidence"] == [
        f"evaluations/{german.monitoring.id}.json",
        f"monitors/{german.monitoring.id}/performance.json",
    ]
    att = next(c for r in rows.values() for c in r["controls"] if c["control_id"] == "CHK-DP-01")
    assert att["result"] == "attested" and att["evidence"][0].startswith("signed/")
    for r in matrix["rows"]:
        for c in r["controls"]:
            for path in c["evidence"]:
                assert path in files, path


def test_model_card_flags_personal_information(pack_path):
    files = members(pack_path)
    card = files["model_card.md"].decode()
    lines = {
        line.split("|")[1].strip(): line
        for line in card.splitlines()
        if line.startswith("| ") and line.count("|") > 6
    }
    assert "个人信息 PI" in lines["age"] and "非个人信息" not in lines["age"]
    assert "敏感个人信息 sensitive PI" in lines["sex"]
    assert "非个人信息 not PI" in lines["duration"]
    for text in ("预期用途", "Intended use", "排除用途", "Excluded uses", "局限性", "Limitations", "SHA-256"):
        assert text in card


def test_disclosure_directions_agree_with_the_model_coefficients(german, pack_path):
    """Direction of each main factor in the disclosure = sign of the logistic coefficient (scaled inputs)."""
    files = members(pack_path)
    text = files["disclosure.md"].decode()
    coef = dict(zip(FEATURES, german.model[-1].coef_[0], strict=True))
    checked = 0
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) != 3 or cells[0].split("（")[0] not in coef:
            continue
        feat = cells[0].split("（")[0]
        if "raise the score" in cells[2]:
            assert coef[feat] > 0, feat
            checked += 1
        elif "lower the score" in cells[2]:
            assert coef[feat] < 0, feat
            checked += 1
    assert checked >= 3
    assert "人工复核" in text and "human review" in text


def test_two_builds_differ_only_in_generation_time_and_signature(german, tmp_path):
    from modelreg.evidence import build_pack

    a, b = tmp_path / "a.zip", tmp_path / "b.zip"
    build_pack(german.auditor, NAME, VERSION, a)
    build_pack(german.auditor, NAME, VERSION, b)
    ma, mb = members(a), members(b)
    assert set(ma) == set(mb)
    differ = sorted(n for n in ma if ma[n] != mb[n])
    assert set(differ) <= {"manifest.json", "manifest.sig.json"}
    ja, jb = json.loads(ma["manifest.json"]), json.loads(mb["manifest.json"])
    ja.pop("generated_at"), jb.pop("generated_at")
    assert ja == jb
    import zipfile

    with zipfile.ZipFile(a) as za:
        infos = za.infolist()
    assert [i.filename for i in infos] == sorted(i.filename for i in infos)
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}


def test_verify_without_a_trusted_key_names_the_key(german, pack_path):
    from modelreg.evidence import verify_pack

    result = verify_pack(pack_path)
    assert not result.ok
    assert len(result.problems) == 1
    assert (
        f"signature valid for key {result.manifest_key_id}, which was not given as trusted"
        in result.problems[0]
    )


def test_verify_with_another_trusted_key_fails(german, pack_path, tmp_path):
    from modelreg import signing
    from modelreg.evidence import verify_pack

    other = tmp_path / "other.key"
    signing.write_key_pair(other, signing.public_key_path_for(other))
    result = verify_pack(pack_path, trusted_keys=[signing.public_key_path_for(other)])
    assert not result.ok and "not given as trusted" in result.problems[0]


def test_pack_needs_the_evidence_permission(german, tmp_path):
    from modelreg.errors import PermissionDenied
    from modelreg.evidence import build_pack

    with pytest.raises(PermissionDenied, match=r"evidence\.pack"):
        build_pack(german.registry.as_user("dev"), NAME, VERSION, tmp_path / "x.zip")
    assert not (tmp_path / "x.zip").exists()


def test_as_of_packs_the_state_at_that_time(german, tmp_path):
    from modelreg import clock
    from modelreg.evidence import build_pack, verify_pack

    cut = german.after_precheck
    out = tmp_path / "asof.zip"
    summary = build_pack(german.auditor, NAME, VERSION, out, as_of=clock.isoformat(cut))
    everything = german.registry.audit_log()
    assert summary.tree_size == sum(1 for e in everything if e.at <= cut)
    assert summary.evaluations == 1 and summary.stage == "develop"
    assert all(e.at <= cut for e in german.registry.audit_log(NAME, VERSION)[: summary.audit_events])
    files = members(out)
    assert f"evaluations/{german.precheck.id}.json" in files
    assert f"evaluations/{german.validation.id}.json" not in files
    assert not any(n.endswith("-approval.json") for n in files)
    manifest = json.loads(files["manifest.json"])
    assert manifest["as_of"] == clock.isoformat(cut)
    assert verify_pack(out, trusted_keys=[german.evidence_pub]).ok


def test_as_of_before_registration_is_bad_input(german, tmp_path):
    from modelreg.errors import BadInput
    from modelreg.evidence import build_pack

    with pytest.raises(BadInput, match="after --as-of"):
        build_pack(german.auditor, NAME, VERSION, tmp_path / "x.zip", as_of="2000-01-01")
    with pytest.raises(BadInput, match="--as-of must be"):
        build_pack(german.auditor, NAME, VERSION, tmp_path / "x.zip", as_of="yesterday")


def test_checkpoint_consistency(german, tmp_path):
    """A checkpoint taken before the pack: consistent. A forged root: the rewrite is named. A checkpoint
    newer than an as-of pack: refused with the reason. An untrusted audit key: named."""
    from modelreg import clock, signing
    from modelreg.audit.checkpoint import sign_checkpoint
    from modelreg.evidence import build_pack, verify_pack

    reg = german.auditor
    cp_file = tmp_path / "cp.json"
    issued = reg.audit_checkpoint(cp_file)
    audit_pub = issued["public_key"]
    out = tmp_path / "after.zip"
    build_pack(reg, NAME, VERSION, out)
    keys = [german.evidence_pub, audit_pub]
    ok = verify_pack(out, trusted_keys=keys, checkpoint=cp_file)
    assert ok.ok, ok.problems
    assert any("extends the checkpoint" in c for c in ok.checks)

    audit_key = signing.load_private_key(german.settings.audit_key_path)
    forged = sign_checkpoint(issued["checkpoint"]["size"], b"\x11" * 32, audit_key, time=clock.now())
    forged_file = tmp_path / "forged.json"
    forged.save(forged_file)
    bad = verify_pack(out, trusted_keys=keys, checkpoint=forged_file)
    assert not bad.ok and any("the log was rewritten after the checkpoint" in p for p in bad.problems)

    early = tmp_path / "early.zip"
    build_pack(reg, NAME, VERSION, early, as_of=clock.isoformat(german.after_precheck))
    newer = verify_pack(early, trusted_keys=keys, checkpoint=cp_file)
    assert not newer.ok and any("ask for a pack made after the checkpoint" in p for p in newer.problems)

    untrusted = verify_pack(out, trusted_keys=[german.evidence_pub], checkpoint=cp_file)
    assert not untrusted.ok and any(
        p.startswith("checkpoint: signed by key") and "not given as trusted" in p for p in untrusted.problems
    )


def test_cli_pack_and_verify(german, cli_env, tmp_path, capsys):
    out = tmp_path / "cli.zip"
    assert run_cli("--as", "aud", "evidence", "pack", NAME, VERSION, "-o", str(out), "--json") == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["model"] == NAME and summary["files"] == len(members(out))
    assert run_cli("evidence", "verify", str(out), "--trusted-key", str(german.evidence_pub), "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True and report["problems"] == []
    assert run_cli("evidence", "verify", str(out)) == 1
    captured = capsys.readouterr()
    assert "not given as trusted" in captured.out
    # Bad input: one line on stderr, exit 2.
    assert run_cli("evidence", "verify", str(tmp_path / "missing.zip")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: evidence pack not found: {tmp_path / 'missing.zip'}"]
    (tmp_path / "notzip.zip").write_text("hello")
    assert run_cli("evidence", "verify", str(tmp_path / "notzip.zip")) == 2
    assert "is not a zip file" in capsys.readouterr().err
    assert run_cli("--as", "dev", "evidence", "pack", NAME, VERSION, "-o", str(tmp_path / "dev.zip")) == 1
    assert "evidence.pack needs the role" in capsys.readouterr().err
    assert run_cli("--as", "aud", "evidence", "pack", NAME, "99", "-o", str(tmp_path / "x.zip")) == 2
    assert capsys.readouterr().err.startswith("error: ")


# The pack's layout, with ids normalised: a change here is a change of the auditors' format.
GOLDEN_LAYOUT = {
    "audit/events.jsonl",
    "audit/leaves.bin",
    "audit/replay.json",
    "audit/tree.json",
    "decision_summary.json",
    "disclosure.html",
    "disclosure.md",
    "evaluations/N.json",
    "findings/attestation_contradictions.json",
    "index.html",
    "keys/evidence.pub.pem",
    "keys/signers/ed25519-H.pem",
    "manifest.json",
    "manifest.sig.json",
    "model/version.json",
    "model_card.html",
    "model_card.md",
    "monitors/N/data_quality.json",  # issue 19: hold-out completeness, plausibility, constant features
    "monitors/N/data_quality/data_quality.csv",
    "monitors/N/data_quality/reference_profile.json",
    "monitors/N/drift.json",
    "monitors/N/drift/drift_bins.csv",
    "monitors/N/drift/drift_evidently.html",
    "monitors/N/drift/drift_features.csv",
    "monitors/N/drift/drift_summary.json",
    "monitors/N/drift/reference_profile.json",
    # the label-free estimate's reference: score-bin aggregates of the validation hold-out
    "monitors/N/estimated_performance/reference_profile.json",
    "monitors/N/explainability.json",
    "monitors/N/explainability/reason_codes.csv",
    "monitors/N/explainability/shap_importance.csv",
    "monitors/N/explainability/shap_importance.png",
    "monitors/N/fairness.json",
    "monitors/N/fairness/fairness_groups.csv",
    "monitors/N/fairness/fairness_groups.png",
    "monitors/N/performance.json",
    "monitors/N/performance/calibration.csv",
    "monitors/N/performance/performance_summary.json",
    "monitors/N/robustness.json",
    "monitors/N/robustness/boundary_cases.csv",
    "monitors/N/robustness/stress_scenarios.csv",
    "operations.json",
    "policy/matrix.json",
    "policy/pack.json",
    "provenance.json",
    "signed/N-approval.json",
    "signed/N-attestation.json",
    "signed/N-waiver.json",
    "verify_pack.py",
}
GOLDEN_MANIFEST_KEYS = [
    "as_of",
    "audit",
    "coverage",
    "evidence_key",
    "files",
    "format",
    "generated_at",
    "model",
    "policy",
    "policy_file",
    "registry",
]


def test_layout_and_manifest_shape_match_the_golden_form(pack_path):
    import re

    files = members(pack_path)
    normalised = {
        re.sub(r"ed25519-[0-9a-f]{16}", "ed25519-H", re.sub(r"(?<=/)\d+(?=[/.-])", "N", n)) for n in files
    }
    assert normalised == GOLDEN_LAYOUT
    manifest = json.loads(files["manifest.json"])
    assert sorted(manifest) == GOLDEN_MANIFEST_KEYS
    assert sorted(manifest["audit"]) == ["events", "leaves_file", "root_hash", "tree_size"]
    assert sorted(manifest["files"][0]) == ["media_type", "path", "sha256", "size"]
    envelope = json.loads(files["manifest.sig.json"])
    assert envelope["payload_type"] == "application/vnd.modelreg.evidence-manifest.v1+json"
    assert envelope["manifest_sha256"] == hashlib.sha256(files["manifest.json"]).hexdigest()
