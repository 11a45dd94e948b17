"""Issue 18 item 4: notebook 01 against a shared ``mlflow server`` on loopback keeps the model in the server's
artifact store (``mlflow-artifacts:``), not in a ``file://`` folder of the data scientist's machine, so a
validator elsewhere loads it through the server."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.integration.mlflow_fixtures import MlflowServer
from tests.notebooks.test_notebooks import _execute

pytest_plugins = ["tests.integration.mlflow_fixtures"]
pytestmark = pytest.mark.timeout(900)


def test_notebook_01_uses_the_servers_artifact_store(
    tmp_path, env_for, mlflow_server: MlflowServer, monkeypatch
):
    env = env_for(
        f"sqlite:///{tmp_path / 'registry.db'}",
        MLFLOW_TRACKING_URI=mlflow_server.url,
        MLFLOW_REGISTRY_URI=mlflow_server.url,
    )
    for key in [k for k in os.environ if k.startswith(("MODELREG_", "MLFLOW_"))]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        if key.startswith(("MODELREG_", "MLFLOW_")):
            monkeypatch.setenv(key, value)
    work = tmp_path / "work"
    work.mkdir()
    _execute(REPO_ROOT / "notebooks" / "01_train_and_register.ipynb", work)

    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_server.url, registry_uri=mlflow_server.url)
    experiment = client.get_experiment_by_name("credit-scoring")
    assert experiment is not None and not experiment.artifact_location.startswith("file:")
    versions = client.search_model_versions("name = 'credit_scoring'")
    assert versions and all(v.source.startswith(("models:/", "mlflow-artifacts:")) for v in versions)
    mv = versions[0]
    run = client.get_run(mv.run_id)
    assert run.info.artifact_uri.startswith("mlflow-artifacts:")
    # the bytes are on the server's side, none in the notebook's folder or under the local artifact root
    assert any(Path(mlflow_server.artifacts_dir).rglob("MLmodel"))
    assert not any(work.rglob("MLmodel")) and not (work / "mlruns").exists()
    assert not Path(env["MLFLOW_ARTIFACT_ROOT"]).exists() or not any(
        Path(env["MLFLOW_ARTIFACT_ROOT"]).rglob("MLmodel")
    )
