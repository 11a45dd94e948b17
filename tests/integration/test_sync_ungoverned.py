"""Issue 18 item 3: ``sync --check`` reports what lives in MLflow outside governance, against a real
``mlflow server`` on loopback: a version created with plain ``mlflow.register_model`` and a registered model
modelreg has never heard of. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest

from tests.integration.mlflow_fixtures import MlflowServer, fluent_mlflow, log_and_register_model

pytest_plugins = ["tests.integration.mlflow_fixtures"]
pytestmark = pytest.mark.timeout(600)


@pytest.fixture
def cli(env_for, db_url, mlflow_server: MlflowServer, mlflow_env: Path, monkeypatch, capsys):
    env = env_for(db_url, MLFLOW_TRACKING_URI=mlflow_server.url, MLFLOW_REGISTRY_URI=mlflow_server.url)
    for key in [k for k in list(os.environ) if k.startswith(("MODELREG_", "MLFLOW_"))]:
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        if key.startswith(("MODELREG_", "MLFLOW_")):
            monkeypatch.setenv(key, value)
    from modelreg.cli.main import main

    def run(*args: str, expect: int = 0) -> str:
        capsys.readouterr()  # MLflow's own "View run ..." lines from the in-process logging above
        code = main(list(args))
        out = capsys.readouterr()
        assert code == expect, (
            f"modelreg {' '.join(args)} exited {code}\n{out.out[-2000:]}\n{out.err[-2000:]}"
        )
        assert "Traceback" not in out.err
        return out.out

    return run


def _mine(items: list[dict], names: set[str]) -> list[tuple[str, str, str | None]]:
    # the server is shared by the session: other tests' models are there too
    return sorted((d["kind"], d["model"], d["version"]) for d in items if d["model"] in names)


def test_sync_check_reports_ungoverned_versions_and_models(cli, mlflow_server: MlflowServer):
    import mlflow

    tag = uuid.uuid4().hex[:8]
    governed, loose = f"gov_{tag}", f"loose_{tag}"
    experiment = mlflow_server.new_experiment(f"ungoverned-{tag}")
    logged = log_and_register_model(mlflow_server.url, experiment_id=experiment, name=governed)
    cli("init")
    cli("--as", "boss", "user", "add", "boss", "--role", "admin")
    cli("--as", "boss", "user", "add", "dev", "--role", "developer")
    register = ["--as", "dev", "register", governed]
    opts = ["--owner", "dev", "--risk-tier", "medium", "--purpose", "PD"]
    cli(*register, logged.version, *opts)

    # a data scientist registers a second version with plain MLflow, and logs another model altogether
    with fluent_mlflow(mlflow_server.url):
        extra = mlflow.register_model(f"models:/{logged.model_id}", governed)
    log_and_register_model(mlflow_server.url, experiment_id=experiment, name=loose, with_datasets=False)

    report = json.loads(cli("sync", "--check", "--json"))  # exit 0: no alias/tag divergence
    assert report["divergences"] == []
    assert _mine(report["ungoverned"], {governed, loose}) == [
        ("ungoverned_model", loose, None),
        ("ungoverned_version", governed, str(extra.version)),
    ]
    text = cli("sync", "--check")
    assert f"ungoverned: {loose}: registered in MLflow (1 version(s)) but unknown to modelreg" in text
    assert f"ungoverned: {governed}: version {extra.version} exists in MLflow only" in text

    # once registered with modelreg the version is governed; the other model still is not
    cli(*register, str(extra.version), *opts)
    report = json.loads(cli("sync", "--check", "--json"))
    assert _mine(report["ungoverned"], {governed, loose}) == [("ungoverned_model", loose, None)]
    # a repair never touches them (registering is a developer's decision), and says so
    cli("--as", "boss", "user", "add", "ops", "--role", "operator")
    repaired = json.loads(cli("--as", "ops", "sync", "--json"))
    assert _mine(repaired["ungoverned"], {governed, loose}) == [("ungoverned_model", loose, None)]
    assert loose not in cli("list")
