"""The main job with ``--suite sm2`` (国密): ``modelreg demo --suite sm2`` end to end in a temporary folder,
then its registry read back (every key, signature and checkpoint SM2; the audit log SM3) and its evidence
pack verified by the pack's own ``verify_pack.py`` in a clean virtual environment without modelreg."""

from __future__ import annotations

import os

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

import hashlib
import json
import shutil
import sqlite3
import subprocess
import sys
import zipfile

import pytest
from cryptography.hazmat.primitives import hashes

from tests.conftest import REPO_ROOT
from tests.evidence._standalone import clean_venv, run_standalone  # noqa: F401  (fixture)

pytestmark = [pytest.mark.timeout(1200)]
pytest.importorskip("tongsuopy", reason="the gm extra (tongsuopy) is needed for --suite sm2")


def _sm3(data: bytes) -> bytes:
    h = hashes.Hash(hashes.SM3())
    h.update(data)
    return h.finalize()


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELREG_", "MLFLOW_"))}
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    return env


def _modelreg(folder, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "modelreg", *args],
        cwd=folder,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


@pytest.fixture(scope="module")
def sm2_demo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo-sm2")
    shutil.copy(REPO_ROOT / "mlflow.env", folder / "mlflow.env")
    proc = _modelreg(folder, "demo", "--suite", "sm2", "--json")
    assert proc.returncode == 0, f"stdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}"
    return folder, json.loads(proc.stdout)


def test_sm2_demo_meets_every_expectation_with_sm2_keys_signatures_and_an_sm3_log(sm2_demo):
    folder, report = sm2_demo
    assert report["ok"] is True and report["failed"] == []
    home = folder / ".modelreg"
    db = sqlite3.connect(home / "registry.db")
    try:
        users = db.execute("SELECT name, key_id, key_suite FROM users").fetchall()
        assert len(users) == 7 and all(k.startswith("sm2:") and s == "sm2-sm3" for _, k, s in users)
        assert db.execute("SELECT tree_hash, signing_suite FROM audit_state").fetchall() == [
            ("sm3", "sm2-sm3")
        ]
        signatures = [json.loads(s) for (s,) in db.execute("SELECT signature FROM signed_records")]
        assert len(signatures) > 10 and {s["algorithm"] for s in signatures} == {"sm2-sm3"}
        events = db.execute("SELECT canonical, leaf_hash FROM audit_events ORDER BY seq").fetchall()
        # Every leaf is SM3(0x00 ‖ canonical bytes), recomputed with an independent SM3.
        assert events and all(bytes(leaf) == _sm3(b"\x00" + bytes(c)) for c, leaf in events)
    finally:
        db.close()
    checkpoint = json.loads((home / "demo" / "audit-checkpoint.json").read_text())
    assert checkpoint["algorithm"] == "sm2-sm3" and checkpoint["tree_hash"] == "sm3"
    assert checkpoint["key_id"].startswith("sm2:")


def test_sm2_pack_verifies_with_its_own_verifier_in_a_clean_venv(sm2_demo, clean_venv, tmp_path):  # noqa: F811
    folder, _ = sm2_demo
    home = folder / ".modelreg"
    pack = home / "demo" / "evidence-credit_scoring-v2.zip"
    with zipfile.ZipFile(pack) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        envelope = json.loads(zf.read("manifest.sig.json"))
        script = tmp_path / "verify_pack.py"
        script.write_bytes(zf.read("verify_pack.py"))
    assert manifest["audit"]["tree_hash"] == "sm3" and manifest["evidence_key"]["algorithm"] == "sm2-sm3"
    with zipfile.ZipFile(pack) as zf:  # every file is named by SM3 too, recomputed independently here
        assert all(f["sm3"] == _sm3(zf.read(f["path"])).hex() for f in manifest["files"])
    assert envelope["signature"]["algorithm"] == "sm2-sm3"
    trust = [
        "--trusted-key",
        str(home / "keys" / "registry-evidence.key.pub"),
        "--trusted-key",
        str(home / "demo" / "audit-checkpoint.json.pub"),
        "--checkpoint",
        str(home / "demo" / "audit-checkpoint.json"),
    ]
    proc = run_standalone(clean_venv, script, str(pack), *trust, "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(proc.stdout)
    assert result["ok"] is True and result["problems"] == [] and result["tree_hash"] == "sm3"
    assert result["manifest_key_id"].startswith("sm2:") and len(result["signer_key_ids"]) > 10
    assert any("extends the checkpoint" in c for c in result["checks"])

    # The same verdict, word for word, from `modelreg evidence verify`.
    cli = _modelreg(folder, "evidence", "verify", str(pack), *trust, "--json")
    assert cli.returncode == 0 and json.loads(cli.stdout) == result

    # Without the SM2 library the standalone file says so, in one line, and exits 2 (it cannot check).
    blocked = run_standalone(clean_venv, script, str(pack), *trust, block_sm2=True)
    assert blocked.returncode == 2 and blocked.stdout == ""
    assert blocked.stderr.strip().splitlines() == [
        "error: this pack holds SM2 keys or signatures and tongsuopy is not installed: pip install tongsuopy"
    ]

    # An SM2 signature relabelled as Ed25519 is refused, not checked with the wrong algorithm.
    relabelled = tmp_path / "relabelled.zip"
    with zipfile.ZipFile(pack) as zin, zipfile.ZipFile(relabelled, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == "manifest.sig.json":
                env = json.loads(data)
                env["signature"]["algorithm"] = "ed25519"
                data = json.dumps(env).encode()
            zout.writestr(info.filename, data)
    bad = run_standalone(clean_venv, script, str(relabelled), *trust, "--json")
    assert bad.returncode == 1
    assert any("does not verify with trusted key" in p for p in json.loads(bad.stdout)["problems"])

    # A file whose SHA-256 is re-matched but whose SM3 is not (a manifest edited with SHA-256 only in mind) is
    # still caught: the SM3 digest is checked as well, and the edited manifest breaks the SM2 signature.
    edited = tmp_path / "edited.zip"
    target = "model_card.md"
    with zipfile.ZipFile(pack) as zin, zipfile.ZipFile(edited, "w") as zout:
        new_card = zin.read(target) + b"\nedited\n"
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == target:
                data = new_card
            elif info.filename == "manifest.json":
                m = json.loads(data)
                for f in m["files"]:
                    if f["path"] == target:
                        f["sha256"], f["size"] = hashlib.sha256(new_card).hexdigest(), len(new_card)
                data = json.dumps(m).encode()
            zout.writestr(info.filename, data)
    got = json.loads(run_standalone(clean_venv, script, str(edited), *trust, "--json").stdout)
    assert f"{target}: SM3 " in " ".join(got["problems"]) and "(modified)" in " ".join(got["problems"])


def test_mixing_suites_on_the_sm2_registry_is_refused(sm2_demo):
    folder, _ = sm2_demo
    proc = _modelreg(folder, "init", "--hash", "sha256")
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "error: this registry's audit log uses sm3 (chosen at init); a log never mixes hashes, so --hash sha256 "
        "is refused. Start a new registry for sha256."
    )
    proc = _modelreg(folder, "init", "--suite", "ed25519")
    assert proc.returncode == 2 and "signs its checkpoints and packs with sm2-sm3" in proc.stderr
