"""`evidence verify` needs nothing but the zip and the keys: no registry, no database driver, no MLflow and
no network. Run in a fresh process inside an empty network namespace (no interface up), with sockets also
refused at the Python level."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

from tests.evidence.conftest import REPO_ROOT

SCRIPT = r"""
import json, socket, sys
def _no_network(*a, **k):
    raise OSError("network disabled for this test")
socket.socket = _no_network
socket.create_connection = _no_network
from modelreg.evidence import verify_pack
result = verify_pack(sys.argv[1], trusted_keys=[sys.argv[2]])
heavy = sorted({m.split(".")[0] for m in sys.modules} & {"sqlalchemy", "mlflow", "pandas", "numpy", "alembic", "psycopg"})
registry = [m for m in sys.modules if m in ("modelreg.registry", "modelreg.store", "modelreg.governance")]
print(json.dumps({"ok": result.ok, "problems": result.problems, "heavy": heavy, "registry": registry}))
"""


def _isolated() -> list[str]:
    """``unshare -n`` (an empty network namespace) when the kernel lets us; the socket stub always applies."""
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-n", "true"], capture_output=True, check=False).returncode == 0:
        return [unshare, "-n"]
    return []


def test_verify_runs_offline_without_registry_imports(german, pack_path, tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(REPO_ROOT)}
    cmd = [*_isolated(), sys.executable, "-c", SCRIPT, str(pack_path), str(german.evidence_pub)]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out == {"ok": True, "problems": [], "heavy": [], "registry": []}


def test_cli_verify_in_a_fresh_process_offline(german, pack_path, tmp_path):
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PYTHONPATH": str(REPO_ROOT),
        "MODELREG_DATABASE_URL": "postgresql+psycopg://nobody@203.0.113.1:1/none",
    }
    cmd = [
        *_isolated(),
        sys.executable,
        "-m",
        "modelreg",
        "evidence",
        "verify",
        str(pack_path),
        "--trusted-key",
        str(german.evidence_pub),
    ]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("OK: ")
