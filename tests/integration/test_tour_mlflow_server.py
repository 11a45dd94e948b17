"""Issue 18.5: the README's data scientist and validator tours against a real, shared-style ``mlflow server`` on
loopback, configured by ``mlflow.env`` alone (the newcomer's shell has no MODELREG_/MLFLOW_ variables). The
demo, the tours' plain-MLflow calls and modelreg's own projections must all reach the server, and nothing may
fall back to a local store."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT
from tests.core.test_tours import BIN, clean_env, commands, tour_blocks
from tests.integration.mlflow_fixtures import running_mlflow_server

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


def _env_file(url: str) -> str:
    """The shipped mlflow.env with the server as MLflow's tracking and registry store."""
    out = []
    for line in (REPO_ROOT / "mlflow.env").read_text(encoding="utf-8").splitlines():
        key = line.split("=", 1)[0].strip()
        out.append(f"{key}={url}" if key in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI") else line)
    return "\n".join(out) + "\n"


def _modelreg(folder, env, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "modelreg"), *args], cwd=folder, env=env, capture_output=True, text=True, timeout=900
    )


def test_validator_tour_runs_against_a_real_mlflow_server(tmp_path):
    import lightgbm  # noqa: F401  (the .[all] install guarantees it: a broken install fails here)
    from mlflow import MlflowClient

    blocks = tour_blocks()
    data_scientist, validator = blocks[0], blocks[1]
    assert data_scientist.lang == "python" and validator.lang == "bash"
    assert "validate credit_scoring 3" in validator.code

    with running_mlflow_server(tmp_path / "server") as server:
        folder = tmp_path / "checkout"
        folder.mkdir()
        (folder / "mlflow.env").write_text(_env_file(server.url), encoding="utf-8")
        env = clean_env()
        assert not any(k.startswith(("MODELREG_", "MLFLOW_")) for k in env if k != "MLFLOW_DISABLE_TELEMETRY")

        done = _modelreg(folder, env, "demo", "--json")
        assert done.returncode == 0, f"demo failed\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
        assert json.loads(done.stdout)["ok"] is True

        script = tmp_path / "data_scientist.py"
        script.write_text(data_scientist.code, encoding="utf-8")
        done = subprocess.run(
            [sys.executable, str(script)], cwd=folder, env=env, capture_output=True, text=True, timeout=900
        )
        assert done.returncode == 0, (
            f"README line {data_scientist.line}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
        )

        tour_env = dict(env)
        for command, expected in commands(validator.code):
            if command.startswith("export "):
                key, _, value = command[len("export ") :].partition("=")
                tour_env[key] = shlex.split(value)[0] if value else ""
                continue
            done = subprocess.run(
                ["bash", "-c", f"set -o pipefail; {command}"],
                cwd=folder,
                env=tour_env,
                capture_output=True,
                text=True,
                timeout=900,
            )
            where = f"README line {validator.line}: `{command}` exited {done.returncode}, expected {expected}"
            assert done.returncode == expected, f"{where}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
            assert "Traceback" not in done.stderr, f"{where}\n{done.stderr[-2000:]}"

        # Everything went to the server: versions, stage tags, the validation's own run; MLflow agrees.
        gw = server.gateway()
        assert gw.stage_tags("credit_scoring") == {"1": "develop", "2": "retire", "3": "validate"}
        findings = json.loads(_modelreg(folder, env, "findings", "credit_scoring", "3", "--json").stdout)
        (validation,) = [e for e in findings["evaluations"] if e["purpose"] == "validation"]
        run = MlflowClient(tracking_uri=server.url).get_run(validation["mlflow_run_id"])
        assert run.info.status == "FINISHED"
        check = _modelreg(folder, env, "sync", "--check", "--json")
        assert check.returncode == 0, check.stderr
        assert json.loads(check.stdout)["divergences"] == []

    # ... and nothing fell back to a local MLflow store in the checkout
    for stray in ("mlflow.db", "mlruns", ".modelreg/mlflow.db", ".modelreg/mlartifacts"):
        assert not (folder / stray).exists(), stray
