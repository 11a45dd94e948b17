"""Issue 18: the MLflow-native way to register. ``log_and_register`` logs a model with its MLflow flavor and
registers that version with modelreg, against a real ``mlflow server`` on loopback: the version is governed
from the start (``sync --check`` lists nothing ungoverned for it) and what the plain MLflow call would have
made is all there (run, flavor, digest of the served artifact)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.integration.mlflow_fixtures import MlflowServer, training_data

pytest_plugins = ["tests.integration.mlflow_fixtures"]
pytestmark = pytest.mark.timeout(600)


@pytest.fixture
def client(env_for, db_url, mlflow_server: MlflowServer, mlflow_env: Path, monkeypatch):
    from modelreg import settings as settings_mod
    from modelreg.client import Client, open_registry

    for key in [k for k in list(os.environ) if k.startswith(("MODELREG_", "MLFLOW_"))]:
        monkeypatch.delenv(key, raising=False)
    env = env_for(db_url, MLFLOW_TRACKING_URI=mlflow_server.url, MLFLOW_REGISTRY_URI=mlflow_server.url)
    settings = settings_mod.load(environ=env)
    admin = Client(open_registry(settings, actor="admin"))
    admin.init()
    admin.add_user("admin", ["admin"])
    admin.add_user("dev", ["developer"])
    return Client(open_registry(settings, actor="dev"))


def test_log_and_register_creates_a_governed_version(client, mlflow_server: MlflowServer):
    import uuid

    import mlflow
    import sklearn
    from sklearn.linear_model import LogisticRegression

    from modelreg.errors import BadInput
    from modelreg.integrations.mlflow import projection

    name = f"native_{uuid.uuid4().hex[:8]}"
    X, y = training_data(0)
    model = LogisticRegression().fit(X, y)
    kw = dict(
        owner="dev",
        risk_tier="medium",
        purpose="PD",
        pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
    )
    before = os.environ.get("MLFLOW_TRACKING_URI")
    mv = client.log_and_register(model, name=name, **kw)
    assert os.environ.get("MLFLOW_TRACKING_URI") == before  # the registry's MLflow scope is put back
    assert (mv.model, mv.version, mv.stage.value) == (name, "1", "develop")
    assert mv.mlflow_run_id and mv.artifact_digest
    gw = projection._gateway(client.registry)
    info = gw.version_info(name, "1")
    assert info.run_id == mv.mlflow_run_id and "sklearn" in info.flavors
    assert info.storage_location.startswith("mlflow-artifacts:")  # the server's artifact store
    assert gw.stage_tags(name) == {"1": "develop"}
    assert [d for d in projection.ungoverned(client.registry) if d.model == name] == []

    # inside the caller's own run: the model is logged there
    with client.registry.settings.mlflow_scope(), mlflow.start_run() as run:
        second = client.log_and_register(model, name=name, **kw)
    assert (second.version, second.mlflow_run_id) == ("2", run.info.run_id)

    # refused before MLflow is touched
    with pytest.raises(BadInput):
        client.log_and_register(model, name=name, **{**kw, "risk_tier": "extreme"})
    assert set(gw.stage_tags(name)) == {"1", "2"}
