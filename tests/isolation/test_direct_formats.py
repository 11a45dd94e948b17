"""Issue 16: ONNX graphs and XGBoost JSON/UBJSON dumps cannot execute code when loaded, so the registry loads
them directly in the validator's process (no worker, no grant), with their own parsers and never MLflow's
flavour loaders. Their scores must equal the trained model's own (computed by the library that trained it).
The opt-in attestation CHK-ROB-04.exec ships switched off, and when a bank switches it on it is a permission,
never a gate requirement."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import REPO_ROOT
from tests.integration.mlflow_fixtures import fluent_mlflow


def _data(n: int = 200, seed: int = 5) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.uniform(size=n)})
    y = pd.Series((X["a"] - 0.5 * X["b"] + rng.normal(scale=0.7, size=n) > 0).astype(int), name="y")
    return X, y


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "modelreg", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def logged(tmp_path, env_for):
    """An XGBoost classifier and two ONNX classifiers (a probability tensor, and skl2onnx's ZipMap),
    logged and registered with plain MLflow calls, with the trained objects to compare against."""
    import mlflow
    import mlflow.onnx
    import mlflow.xgboost
    import xgboost
    from mlflow.models import infer_signature
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    env = env_for(f"sqlite:///{tmp_path / 'registry.db'}")
    X, y = _data()
    xgb = xgboost.XGBClassifier(n_estimators=20, max_depth=3, random_state=0).fit(X, y)
    lr = LogisticRegression().fit(X, y)
    onnx_tensor = to_onnx(lr, X.to_numpy(np.float32), options={"zipmap": False})
    onnx_zipmap = to_onnx(lr, X.to_numpy(np.float32))
    with fluent_mlflow(env["MLFLOW_TRACKING_URI"], env["MLFLOW_REGISTRY_URI"]):
        experiment = mlflow.create_experiment(
            f"formats-{tmp_path.name}", artifact_location=(tmp_path / "mlartifacts").resolve().as_uri()
        )
        with mlflow.start_run(experiment_id=experiment):
            uris = {
                "xgb_credit": mlflow.xgboost.log_model(
                    xgb, name="xgb", input_example=X.head(3), registered_model_name="xgb_credit"
                ).model_uri,
                "onnx_credit": mlflow.onnx.log_model(
                    onnx_tensor,
                    name="onnx",
                    signature=infer_signature(X.astype("float32")),
                    registered_model_name="onnx_credit",
                ).model_uri,
                "onnx_zipmap": mlflow.onnx.log_model(
                    onnx_zipmap, name="onnx_zipmap", signature=infer_signature(X.astype("float32"))
                ).model_uri,
            }
    return env, X, y, uris, {"xgb_credit": xgb, "onnx_credit": lr, "onnx_zipmap": lr}


def test_onnx_and_xgboost_load_in_process_and_score_like_the_trained_model(logged, tmp_path):
    from modelreg.integrations.mlflow.worker import WorkerModel, classify, load_for_evaluation

    env, X, _, uris, trained = logged
    with fluent_mlflow(env["MLFLOW_TRACKING_URI"], env["MLFLOW_REGISTRY_URI"]):
        for name, uri in uris.items():
            model, note = load_for_evaluation(uri)
            assert not isinstance(model, WorkerModel), name
            assert "cannot execute code" in note and "in this process" in note, note
            assert list(model.feature_names_in_) == ["a", "b", "c"], name
            expected = trained[name].predict_proba(X)[:, 1]
            got = np.asarray(model.predict_proba(X))[:, 1]
            if name.startswith("onnx"):  # the adapter feeds the graph by column name, not position
                shuffled = np.asarray(model.predict_proba(X[["c", "a", "b"]]))[:, 1]
                np.testing.assert_array_equal(shuffled, got)
            tol = 1e-6 if name.startswith("xgb") else 1e-5  # ONNX computes in float32
            np.testing.assert_allclose(got, expected, atol=tol, err_msg=name)
            np.testing.assert_array_equal(np.asarray(model.predict(X)).astype(int), trained[name].predict(X))
    from mlflow.artifacts import download_artifacts

    with fluent_mlflow(env["MLFLOW_TRACKING_URI"], env["MLFLOW_REGISTRY_URI"]):
        folder = Path(download_artifacts(artifact_uri=uris["xgb_credit"], dst_path=str(tmp_path / "dl")))
    fmt = classify(folder)
    assert (fmt.flavor, fmt.executable) == ("xgboost", False)


def _onnx_folder(tmp_path: Path, location: str) -> Path:
    """An MLflow ONNX model folder whose one initializer is stored as external data at ``location``."""
    import onnx
    from onnx import TensorProto, helper

    folder = tmp_path / "crafted"
    folder.mkdir()
    weight = helper.make_tensor("W", TensorProto.FLOAT, [3, 1], [1.0, 2.0, 3.0])
    weight.ClearField("float_data")
    weight.data_location = TensorProto.EXTERNAL
    entry = weight.external_data.add()
    entry.key, entry.value = "location", location
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["X", "W"], ["variable"])],
        "crafted",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 3])],
        [helper.make_tensor_value_info("variable", TensorProto.FLOAT, [None, 1])],
        [weight],
    )
    onnx.save(helper.make_model(graph), str(folder / "model.onnx"))
    signature = json.dumps([{"type": "float", "name": n} for n in "abc"])
    (folder / "MLmodel").write_text(
        f"flavors:\n  onnx:\n    data: model.onnx\nsignature:\n  inputs: '{signature}'\n", encoding="utf-8"
    )
    return folder


def test_an_onnx_file_that_reads_data_outside_its_folder_is_refused(tmp_path):
    from modelreg.integrations.mlflow.worker import ModelRefused, _load_direct, classify

    folder = _onnx_folder(tmp_path, "../../../../../../etc/hostname")
    fmt = classify(folder)
    assert (fmt.flavor, fmt.executable) == ("onnx", False)
    with pytest.raises(ModelRefused, match="outside the model folder"):
        _load_direct(fmt, folder)


def test_a_legacy_binary_xgboost_model_is_treated_as_executable(tmp_path):
    from modelreg.integrations.mlflow.worker import classify

    (tmp_path / "MLmodel").write_text(
        "flavors:\n  xgboost:\n    data: model.xgb\n    model_format: xgb\n", encoding="utf-8"
    )
    assert classify(tmp_path).executable  # fail closed: no direct loader vouches for it


def _registry(env: dict[str, str], *registered: str) -> None:
    home = Path(env["MODELREG_HOME"])
    steps = [
        ("init",),
        ("--as", "admin", "user", "add", "admin", "--role", "admin"),
        ("--as", "admin", "user", "add", "dev", "--role", "developer"),
        ("--as", "admin", "user", "add", "val", "--role", "validator"),
        ("keys", "generate", "-o", str(home / "keys" / "val.key")),
        ("--as", "val", "keys", "register", str(home / "keys" / "val.key.pub")),
    ]
    steps += [
        ("--as", "dev", "register", name, "1", "--owner", "dev", "--risk-tier", "low", "--purpose", "scoring")
        for name in registered
    ]
    for step in steps:
        done = _cli(env, *step)
        assert done.returncode == 0, (step, done.stderr)


def test_precheck_loads_the_xgboost_model_without_a_grant_and_records_how(logged, tmp_path):
    from sqlalchemy import create_engine, text

    env, X, y, _, _ = logged
    _registry(env, "xgb_credit", "onnx_credit")
    data = tmp_path / "holdout.csv"
    X.assign(y=y).to_csv(data, index=False)
    for name, label in (("xgb_credit", "xgboost/ubj"), ("onnx_credit", "onnx/onnx")):
        done = _cli(env, "--as", "dev", "precheck", name, "1", "--data", str(data), "--target", "y", "--json")
        assert done.returncode in (0, 1), done.stderr  # 1: a control may fail; the model was loaded and ran
        assert "refused" not in done.stderr, done.stderr
        engine = create_engine(env["MODELREG_DATABASE_URL"])
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT e.data FROM evaluations e JOIN model_versions v ON v.id = e.version_id "
                    "JOIN models m ON m.id = v.model_id "
                    "WHERE m.name = :m"
                ),
                {"m": name},
            ).scalars()
            stored = [json.loads(d) if isinstance(d, str) else d for d in rows]
        engine.dispose()
        assert len(stored) == 1, name
        assert f"({label}, cannot execute code) in this process" in stored[0]["model_loading"], stored[0]


def test_the_shipped_pack_keeps_model_execution_switched_off(logged):
    from modelreg.policy import load_pack

    control = load_pack("cn-fin-algo-risk").control("CHK-ROB-04.exec")
    assert control.disabled and control.attestation.grants == "model_execution"
    assert "skops" in control.disabled_reason_en and "skops" in control.disabled_reason_zh
    env = logged[0]
    _registry(env, "xgb_credit")
    done = _cli(env, "--as", "val", "attest", "xgb_credit", "1", "--control", "CHK-ROB-04.exec")
    assert done.returncode == 2, done.stderr
    assert "switched off" in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


BANK_PACK = """\
extends: cn-fin-algo-risk@1.0.0
pack:
  id: exec-bank
  version: "1"
  title_zh: 接受可执行模型格式的银行政策
  title_en: A bank policy that accepts executable model formats
overrides:
  controls:
    CHK-ROB-04.exec:
      disabled: false
"""


def test_switched_on_it_is_a_permission_not_a_gate_requirement(logged):
    from modelreg.policy import load_pack

    env = {**logged[0], "MODELREG_POLICY": "exec-bank"}
    home = Path(env["MODELREG_HOME"])
    (home / "policies").mkdir(parents=True)
    (home / "policies" / "exec-bank.yaml").write_text(BANK_PACK, encoding="utf-8")
    pack = load_pack(home / "policies" / "exec-bank.yaml")
    assert not pack.control("CHK-ROB-04.exec").disabled
    assert pack.digest != load_pack("cn-fin-algo-risk").digest  # switching it on is a recorded policy change
    _registry(env, "xgb_credit")
    # The deploy gate's unmet list names every attestation still missing; the permission is not among them
    # (it would be, were it required).
    script = (
        "import json\n"
        "from modelreg.client import open_registry\n"
        "from modelreg import settings\n"
        "reg = open_registry(settings.load(), actor='dev')\n"
        "print(json.dumps([u.control_id for u in reg.gate_check('xgb_credit', '1', 'deploy', 'deploy')]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    unmet = json.loads(done.stdout.strip().splitlines()[-1])
    assert "CHK-ROB-07" in unmet  # another deploy-gate attestation, still unsigned
    assert "CHK-ROB-04.exec" not in unmet
    attested = _cli(env, "--as", "val", "attest", "xgb_credit", "1", "--control", "CHK-ROB-04.exec")
    assert attested.returncode == 0, attested.stderr
