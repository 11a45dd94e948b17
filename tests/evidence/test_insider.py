"""Whoever holds the registry's evidence signing key can rewrite any file and re-sign the manifest. The audit
events under a checkpoint signed with another key are what they cannot rewrite: verify compares every signed
record and evaluation file with those events, so each insider edit below fails verification with the
cross-check's code, even though the manifest signature is valid."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from tests.evidence.conftest import NAME, VERSION, members
from tests.evidence.test_tamper import _resign


@pytest.fixture(scope="module")
def anchored(german, tmp_path_factory) -> tuple[Path, Path, list]:
    """A pack built after a checkpoint signed with the registry's audit key, and the keys to trust."""
    from modelreg.evidence import build_pack

    root = tmp_path_factory.mktemp("insider")
    cp_file = root / "cp.json"
    issued = german.auditor.audit_checkpoint(cp_file)
    out = root / "pack.zip"
    build_pack(german.auditor, NAME, VERSION, out)
    return out, cp_file, [german.evidence_pub, issued["public_key"]]


def _verify(anchored, path, **kw):
    from modelreg.evidence import verify_pack

    _, cp_file, keys = anchored
    return verify_pack(path, trusted_keys=keys, checkpoint=cp_file, **kw)


def _signer_pubs(german) -> list[Path]:
    from modelreg import signing

    return [
        signing.public_key_path_for(german.settings.signing_key_for(u))
        for u in ("dev", "val", "app1", "app2")
    ]


def _codes(result) -> set[str]:
    return {p.rsplit("[", 1)[1].rstrip("]") for p in result.problems if p.endswith("]")}


def _waiver_file(files: dict[str, bytes], control: str) -> str:
    for name in sorted(files):
        is_waiver = name.startswith("signed/") and name.endswith("-waiver.json")
        if is_waiver and json.loads(files[name])["record"]["control_id"] == control:
            return name
    raise AssertionError(f"no waiver of {control} in the pack")


def test_the_untampered_pack_passes_every_cross_check(german, anchored):
    pack = anchored[0]
    result = _verify(anchored, pack, trusted_signers=_signer_pubs(german))
    assert result.ok, result.problems
    assert "signed records and evaluations agree with the proven audit events" in result.checks
    assert len(result.signer_key_ids) >= 8  # approvals, attestations and two waivers were all compared


def test_a_waiver_forged_with_a_new_key_fails(german, anchored, tmp_path):
    """The insider rewrites app1's waiver (longer, broader reason) and signs it with a key they made,
    shipping that key in the pack as app1's."""
    from modelreg import signing
    from modelreg.audit.canonical import canonical_json

    pack = anchored[0]
    files = members(pack)
    name = _waiver_file(files, "CHK-PERF-02")
    rec = json.loads(files[name])
    rogue = signing.generate_private_key()
    payload = dict(rec["payload"], reason="approved by the committee without conditions")
    data = canonical_json(payload)
    rec["payload"], rec["payload_b64"] = payload, base64.b64encode(data).decode()
    rec["signature"] = signing.sign(rogue, data).to_dict()
    key_file = f"keys/signers/{signing.key_id(rogue).replace(':', '-')}.pem"
    rec["signer_key_file"] = key_file
    replace = {name: json.dumps(rec).encode(), key_file: signing.public_key_to_pem(rogue)}
    forged = _resign_with_new_files(german, pack, tmp_path / "forged.zip", replace)

    result = _verify(anchored, forged)
    assert not result.ok
    assert result.manifest_key_id in result.checks[1]  # the manifest signature itself is valid
    key_problem = [p for p in result.problems if p.startswith(name) and "XC-RECORD-KEY" in p]
    assert len(key_problem) == 1 and signing.key_id(rogue) in key_problem[0]
    assert any(p.startswith(f"{name}: reason is ") and "XC-RECORD-FIELD" in p for p in result.problems)

    # With the approvers' keys obtained independently, the rogue key is named as untrusted as well.
    strict = _verify(anchored, forged, trusted_signers=_signer_pubs(german))
    assert {"XC-RECORD-KEY", "XC-SIGNER-UNTRUSTED"} <= _codes(strict)


def test_a_waiver_invented_for_a_failing_control_fails(german, anchored, tmp_path):
    """A brand-new waiver record (new record id) signed with the insider's own key: no event recorded it."""
    from modelreg import signing
    from modelreg.audit.canonical import canonical_json

    pack = anchored[0]
    files = members(pack)
    template = json.loads(files[_waiver_file(files, "CHK-PERF-02")])
    rogue = signing.generate_private_key()
    payload = dict(template["payload"], control_id="CHK-FAIR-01", reason="not material")
    data = canonical_json(payload)
    new_id = 99_999
    rec = dict(
        template,
        record=dict(template["record"], id=new_id, control_id="CHK-FAIR-01"),
        payload=payload,
        payload_b64=base64.b64encode(data).decode(),
        signature=signing.sign(rogue, data).to_dict(),
        signer_key_file=f"keys/signers/{signing.key_id(rogue).replace(':', '-')}.pem",
    )
    name = f"signed/{new_id}-waiver.json"
    forged = _resign_with_new_files(
        german,
        pack,
        tmp_path / "invented.zip",
        {name: json.dumps(rec).encode(), rec["signer_key_file"]: signing.public_key_to_pem(rogue)},
    )
    result = _verify(anchored, forged)
    assert [p for p in result.problems if "XC-RECORD-NO-EVENT" in p] == [
        f"{name}: no audit event records signed record #{new_id}: the record was not made through the "
        "registry (forged or inserted) [XC-RECORD-NO-EVENT]"
    ]


def test_a_deleted_waiver_fails(german, anchored, tmp_path):
    pack = anchored[0]
    files = members(pack)
    name = _waiver_file(files, "CHK-ROB-02")
    rid = json.loads(files[name])["record"]["id"]
    out = _resign_with_new_files(german, pack, tmp_path / "deleted.zip", {}, drop={name})
    result = _verify(anchored, out)
    missing = [p for p in result.problems if "XC-RECORD-MISSING" in p]
    assert len(missing) == 1
    assert f"waiver.granted by app2 recorded signed record #{rid}, which is not in the pack" in missing[0]
    # The evaluation still shows CHK-ROB-02 as waived: that claim has nothing behind it now.
    assert "XC-WAIVER-UNBACKED" in _codes(result)


def test_an_evaluation_flipped_from_fail_to_pass_fails(german, anchored, tmp_path):
    pack = anchored[0]
    files = members(pack)
    ev_id = german.validation.id
    name = f"evaluations/{ev_id}.json"
    doc = json.loads(files[name])
    failing = [f for f in doc["findings"] if f["raw_status"] in ("fail", "error")]
    assert failing, "the fixture's validation has failing controls"
    for f in doc["findings"]:
        if f["raw_status"] in ("fail", "error", "warn"):
            f["status"] = f["raw_status"] = "pass"
            f["waiver"] = None
    doc["status"] = "pass"
    doc["counts"] = {"pass": len(doc["findings"])}
    out = _resign(german, pack, tmp_path / "flipped.zip", {name: json.dumps(doc).encode()})
    result = _verify(anchored, out)
    assert not result.ok
    mismatches = [p for p in result.problems if p.startswith(name) and "XC-EVAL-MISMATCH" in p]
    fields = {p.split(": ", 1)[1].split(" is ", 1)[0] for p in mismatches}
    assert {"status", "status counts", "failing controls"} <= fields
    assert any(f"status is 'pass' in the file, '{german.validation.status}'" in p for p in mismatches)


def test_a_dropped_evaluation_fails(german, anchored, tmp_path):
    pack = anchored[0]
    ev_id = german.monitoring.id
    drop = {n for n in members(pack) if n == f"evaluations/{ev_id}.json"}
    result = _verify(anchored, _resign_with_new_files(german, pack, tmp_path / "d.zip", {}, drop=drop))
    assert [p for p in result.problems if "XC-EVAL-MISSING" in p] and result.ok is False


def test_records_newer_than_the_checkpoint_are_not_anchored(german, anchored, tmp_path):
    """A checkpoint older than a signed record does not vouch for it: named, not silently accepted."""
    from modelreg.audit.checkpoint import Checkpoint
    from modelreg.evidence import verify_pack

    pack, cp_file, keys = anchored
    events = [json.loads(line) for line in members(pack)["audit/events.jsonl"].decode().splitlines()]
    waiver_seq = min(e["seq"] for e in events if e["event"]["event"] == "waiver.granted")
    from modelreg import signing
    from modelreg.audit import merkle
    from modelreg.audit.checkpoint import sign_checkpoint

    leaves_data = members(pack)["audit/leaves.bin"]
    leaves = [leaves_data[i : i + 32] for i in range(0, waiver_seq * 32, 32)]
    old = sign_checkpoint(
        waiver_seq,
        merkle.root_from_leaf_hashes(leaves),
        signing.load_private_key(german.settings.audit_key_path),
        time=Checkpoint.load(cp_file).time,
    )
    old_file = tmp_path / "old.json"
    old.save(old_file)
    result = verify_pack(pack, trusted_keys=keys, checkpoint=old_file)
    assert not result.ok and "XC-NOT-ANCHORED" in _codes(result)


def test_cli_trusted_signer(german, anchored, cli_env, tmp_path, capsys):
    from tests.evidence.conftest import run_cli

    pack, cp_file, keys = anchored
    base = ["evidence", "verify", str(pack), "--checkpoint", str(cp_file)]
    for k in keys:
        base += ["--trusted-key", str(k)]
    signers = [a for p in _signer_pubs(german) for a in ("--trusted-signer", str(p))]
    assert run_cli(*base, *signers) == 0
    capsys.readouterr()
    # Trusting only the developer's key: every validator/approver record is named.
    only_dev = ["--trusted-signer", str(_signer_pubs(german)[0])]
    assert run_cli(*base, *only_dev, "--json") == 1
    report = json.loads(capsys.readouterr().out)
    untrusted = [p for p in report["problems"] if "XC-SIGNER-UNTRUSTED" in p]
    assert untrusted and all("'dev'" not in p for p in untrusted)
    assert run_cli(*base, "--trusted-signer", str(tmp_path / "missing.pem")) == 2


def _resign_with_new_files(german, pack, dest, replace: dict[str, bytes], drop: set[str] = frozenset()):
    """_resign, but able to add files (a new key) and drop some: the manifest's file list is rebuilt."""
    import hashlib

    from modelreg import signing
    from modelreg.evidence.pack import json_bytes, write_zip
    from modelreg.evidence.verify import PAYLOAD_TYPE, media_type, pae

    files = {k: v for k, v in members(pack).items() if k not in drop}
    files.update(replace)
    manifest = json.loads(files["manifest.json"])
    manifest["files"] = [
        {"path": p, "sha256": hashlib.sha256(d).hexdigest(), "size": len(d), "media_type": media_type(p)}
        for p, d in sorted(files.items())
        if p not in ("manifest.json", "manifest.sig.json")
    ]
    files["manifest.json"] = json_bytes(manifest)
    key = signing.load_private_key(german.settings.evidence_key_path)
    envelope = json.loads(files["manifest.sig.json"])
    envelope["signature"] = signing.sign(key, pae(PAYLOAD_TYPE, files["manifest.json"])).to_dict()
    files["manifest.sig.json"] = json_bytes(envelope)
    write_zip(dest, files)
    return dest
