"""Every notebook runs top to bottom (nbclient, a real Jupyter kernel) against this test's own registry and
MLflow store, set through the environment exactly as a user would (``MODELREG_*``, ``MLFLOW_*``). Any error in
any cell fails the test; afterwards the registry and MLflow are checked for what the notebooks claim to do."""

from __future__ import annotations

import os

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.timeout(900)  # a hung kernel or subprocess must not stall CI
NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))
CELL_TIMEOUT_S = 300


def _execute(path: Path, cwd: Path) -> None:
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=CELL_TIMEOUT_S, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}
    )
    try:
        client.execute()
    except CellExecutionError as exc:
        pytest.fail(f"{path.name} failed:\n{str(exc)[-3000:]}")


@pytest.fixture
def notebook_env(tmp_path, env_for, monkeypatch):
    """The kernel inherits this process's environment: point it at the test's stores only."""
    env = env_for(f"sqlite:///{tmp_path / 'registry.db'}")
    for key in [k for k in os.environ if k.startswith(("MODELREG_", "MLFLOW_"))]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        if key.startswith(("MODELREG_", "MLFLOW_")):
            monkeypatch.setenv(key, value)
    return env


def test_the_notebooks_are_found():
    assert [p.name for p in NOTEBOOKS] == ["01_train_and_register.ipynb", "02_respond_to_findings.ipynb"]


def test_notebooks_run_in_order_and_do_what_they_say(tmp_path, notebook_env):
    for path in NOTEBOOKS:
        _execute(path, tmp_path)

    from mlflow import MlflowClient

    from modelreg.client import open_registry
    from modelreg.governance.service import latest
    from modelreg.settings import load

    settings = load(environ=notebook_env)
    reg = open_registry(settings, actor="audrey")
    try:
        versions = {v.version: v for v in reg.list() if v.model == "credit_scoring"}
        assert sorted(versions) == ["1", "2"]
        # 01 registered and submitted the model with the vendor score; 02's validator sent it back.
        assert versions["1"].stage.value == "develop"
        assert [h.action for h in reg.history("credit_scoring", "1")] == ["submit", "send_back"]
        (validation,) = latest(reg, "credit_scoring", "1", "validation")
        assert {f.control_id for f in validation.findings if f.status == "fail"} >= {
            "CHK-FAIR-01",
            "CHK-FAIR-02",
        }
        # 02 registered the retrained version, whose pre-check passes the fairness controls, and submitted it.
        assert versions["2"].stage.value == "validate"
        (precheck,) = latest(reg, "credit_scoring", "2", "precheck")
        fair = {f.control_id: f.status for f in precheck.findings if f.control_id.startswith("CHK-FAIR")}
        assert fair and all(s in ("pass", "warn") for s in fair.values())
        assert "lifestyle_score" not in reg.show("credit_scoring", "2").model_card["features"]
        roles = sorted(d.role for d in reg.datasets("credit_scoring", "2"))
        assert roles == ["holdout", "training"]
        assert reg.audit_verify().ok

        client = MlflowClient(
            tracking_uri=settings.mlflow_tracking_uri, registry_uri=settings.mlflow_registry_uri
        )
        for version in ("1", "2"):
            mv = client.get_model_version("credit_scoring", version)
            run = client.get_run(mv.run_id)
            assert sorted(d.dataset.name for d in run.inputs.dataset_inputs) == [
                "german-credit-holdout",
                "german-credit-train",
            ]
            assert reg.show("credit_scoring", version).mlflow_run_id == mv.run_id
        # Plain mlflow calls in the notebooks hit the configured store, artifacts under the configured root.
        assert not (tmp_path / "mlruns").exists()
        assert any(settings.mlflow_artifact_root.rglob("MLmodel"))
    finally:
        reg.engine.dispose()
