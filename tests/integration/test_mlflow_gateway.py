"""MlflowGateway against a real local MLflow store (SQLite + artifact folder) and a real ``mlflow server``."""

from __future__ import annotations

import os

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

import hashlib
import json
import math
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from modelreg.errors import BadInput, MlflowError, NotFound
from modelreg.integrations.mlflow import STAGE_TAG, MlflowGateway, artifact_digest, sanitize_key

from .mlflow_fixtures import (
    LocalMlflow,
    MlflowServer,
    closed_port_url,
    fluent_mlflow,
    log_and_register_model,
)

# The fixtures (local_mlflow, mlflow_server, mlflow_env, ...) come from this plugin module.
pytest_plugins = [f"{__package__}.mlflow_fixtures"]


def one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text and "Traceback" not in text, text
    return text


def shell_digest(folder: Path) -> str:
    """The documented coreutils recipe, run by the shell: independent of the Python implementation."""
    out = subprocess.run(
        "find . -type f ! -path ./registered_model_meta -printf '%P\\n' | LC_ALL=C sort "
        "| xargs -d '\\n' sha256sum | sha256sum",
        shell=True,
        cwd=folder,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return out.split()[0]


def download(tracking_uri: str, artifact_uri: str, dst: Path) -> Path:
    """Download with MLflow's own client (the way an auditor would)."""
    import mlflow

    with fluent_mlflow(tracking_uri):
        return Path(mlflow.artifacts.download_artifacts(artifact_uri=artifact_uri, dst_path=str(dst)))


# ------------------------------------------------------------------------------------- pure helpers


def test_artifact_digest_matches_sha256sum_recipe(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x.bin").write_bytes(bytes(range(256)))
    (tmp_path / "a.txt").write_text("hello\n", encoding="utf-8")
    (tmp_path / "收入.txt").write_text("unicode name\n", encoding="utf-8")
    assert artifact_digest(tmp_path) == shell_digest(tmp_path)
    (tmp_path / "registered_model_meta").write_text("model_name: x\n", encoding="utf-8")
    assert artifact_digest(tmp_path) == shell_digest(tmp_path)  # MLflow's download note is left out
    before = artifact_digest(tmp_path)
    (tmp_path / "a.txt").write_text("hellp\n", encoding="utf-8")
    assert artifact_digest(tmp_path) != before


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("auc", "auc"),
        ("psi/收入", "psi/收入"),
        ("selection_rate[sex=F]", "selection_rate_sex_F_"),
        ("a//b/", "a/b"),
        ("/abs", "abs"),
        ("../up", "__/up"),
        ("", "_"),
    ],
)
def test_sanitize_key(key: str, expected: str) -> None:
    assert sanitize_key(key) == expected


def test_sanitize_key_long_keys_stay_distinct() -> None:
    a, b = "x" * 300 + "a", "x" * 300 + "b"
    assert len(sanitize_key(a)) == 250
    assert sanitize_key(a) != sanitize_key(b)


# ------------------------------------------------------------------------------------- local store


def test_version_info_captures_what_an_auditor_needs(local_mlflow: LocalMlflow, tmp_path: Path) -> None:
    logged = log_and_register_model(local_mlflow.tracking_uri, experiment_id=local_mlflow.experiment_id)
    info = local_mlflow.gateway().version_info("credit_scoring", logged.version)

    assert (info.name, info.version, info.model_uri) == ("credit_scoring", "1", "models:/credit_scoring/1")
    assert info.run_id == logged.run_id
    assert info.experiment_id == local_mlflow.experiment_id
    assert info.model_id == logged.model_id
    assert info.source == f"models:/{logged.model_id}"
    assert info.params == logged.params
    assert info.metrics == pytest.approx(logged.metrics)
    assert "mlflow.log-model.history" not in info.tags
    assert info.tags["mlflow.user"]

    assert info.flavors == ["python_function", "sklearn"]
    assert [c["name"] for c in info.signature["inputs"]] == ["income", "debt_ratio", "age"]
    assert info.signature["outputs"][0]["type"] == "tensor"
    import sklearn

    assert f"scikit-learn=={sklearn.__version__}" in info.pip_requirements
    assert f"numpy=={np.__version__}" in info.pip_requirements

    got = {(d["name"], d["digest"], d["context"]) for d in info.datasets}
    assert got == {(d["name"], d["digest"], d["context"]) for d in logged.datasets}
    training = next(d for d in info.datasets if d["context"] == "training")
    assert training["source_type"] == "s3"
    assert json.loads(training["source"])["uri"] == "s3://bank-data/credit/training.parquet"
    assert training["profile"]["num_rows"] == 150

    # The digest equals an independent walk of the artifacts as MLflow itself downloads them:
    # through the registry (MLflow adds its registered_model_meta note, left out by the recipe) ...
    folder = download(local_mlflow.tracking_uri, "models:/credit_scoring/1", tmp_path / "dl")
    assert (folder / "MLmodel").is_file() and (folder / "registered_model_meta").is_file()
    assert info.artifact_digest == shell_digest(folder)
    # ... and straight from the artifact store, hashed file by file here.
    raw = download(local_mlflow.tracking_uri, info.storage_location, tmp_path / "raw")
    assert not (raw / "registered_model_meta").exists()
    pairs = sorted(
        (p.relative_to(raw).as_posix(), hashlib.sha256(p.read_bytes()).hexdigest())
        for p in raw.rglob("*")
        if p.is_file()
    )
    assert [rel for rel, _ in pairs] == [
        "MLmodel",
        "conda.yaml",
        "model.skops",
        "python_env.yaml",
        "requirements.txt",
    ]
    listing = "".join(f"{h}  {rel}\n" for rel, h in pairs)
    assert info.artifact_digest == hashlib.sha256(listing.encode()).hexdigest()

    assert info.created_at is not None and info.created_at.endswith("Z")
    assert json.loads(json.dumps(info.to_dict()))["artifact_digest"] == info.artifact_digest

    quick = local_mlflow.gateway().version_info("credit_scoring", "1", with_artifacts=False)
    assert quick.artifact_digest is None and quick.run_id == logged.run_id


def test_nothing_written_outside_the_temporary_store(local_mlflow: LocalMlflow, tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[2]
    before = {p.name for p in repo.iterdir()}
    logged = log_and_register_model(local_mlflow.tracking_uri, experiment_id=local_mlflow.experiment_id)
    gw = local_mlflow.gateway()
    gw.version_info("credit_scoring", logged.version)
    gw.log_evaluation(
        "credit_scoring",
        "1",
        run_name="e",
        metrics={"auc": 0.7},
        params={},
        tags={},
        artifacts_dir=_evaluation_artifacts(tmp_path),
    )
    assert list((tmp_path / "cwd").iterdir()) == []  # no ./mlruns, no ./mlflow.db
    assert not any((tmp_path / "home").iterdir())
    assert {p.name for p in repo.iterdir()} - before == set()
    # Both experiments (the data scientist's and modelreg's evaluations) keep artifacts under the root.
    experiments = local_mlflow.artifact_root / "experiments"
    assert {p.name for p in local_mlflow.artifact_root.iterdir()} == {"experiments"}
    assert {p.name for p in experiments.iterdir()} == {"development", "modelreg-evaluations"}


def test_register_from_run_creates_the_model_and_a_version(local_mlflow: LocalMlflow) -> None:
    logged = log_and_register_model(
        local_mlflow.tracking_uri, experiment_id=local_mlflow.experiment_id, name=None
    )
    gw = local_mlflow.gateway()
    with pytest.raises(NotFound):
        gw.version_info("scorecard", "1")

    first = gw.register_from_run("scorecard", logged.run_id)
    assert (first.name, first.version, first.run_id) == ("scorecard", "1", logged.run_id)
    assert first.model_id == logged.model_id
    assert first.source == first.storage_location and first.source.startswith("file://")
    assert first.source.endswith(f"/models/{logged.model_id}/artifacts")
    assert first.flavors == ["python_function", "sklearn"]
    assert first.artifact_digest is not None

    second = gw.register_from_run("scorecard", logged.run_id, artifact_path="./model")
    assert second.version == "2"
    assert second.artifact_digest == first.artifact_digest  # same artifacts, same digest

    from mlflow import MlflowClient

    client = MlflowClient(local_mlflow.tracking_uri, local_mlflow.registry_uri)
    assert sorted(int(v.version) for v in client.search_model_versions("name = 'scorecard'")) == [1, 2]


def test_register_from_run_unknown_run_is_not_found(local_mlflow: LocalMlflow) -> None:
    with pytest.raises(NotFound) as err:
        local_mlflow.gateway().register_from_run("scorecard", "0123456789abcdef0123456789abcdef")
    assert "has no run '0123456789abcdef0123456789abcdef'" in one_line(err.value)


@pytest.mark.parametrize(
    "path", ["../x", "model/../../x", "/etc", "/tmp/model", "C:\\model", "s3://b/model", "", "."]
)
def test_register_from_run_rejects_paths_outside_the_run(mlflow_env: Path, path: str) -> None:
    db = mlflow_env / "never" / "mlflow.db"
    with pytest.raises(BadInput) as err:
        MlflowGateway(f"sqlite:///{db}").register_from_run(
            "scorecard", "0123456789abcdef0123456789abcdef", path
        )
    assert "artifact path must" in one_line(err.value)
    assert not db.parent.exists()  # refused before MLflow was touched


def test_register_from_run_missing_artifact_path_is_bad_input(local_mlflow: LocalMlflow) -> None:
    logged = log_and_register_model(
        local_mlflow.tracking_uri, experiment_id=local_mlflow.experiment_id, name=None
    )
    with pytest.raises(BadInput) as err:
        local_mlflow.gateway().register_from_run("scorecard", logged.run_id, artifact_path="classifier")
    msg = one_line(err.value)
    assert "no MLflow model at artifact path 'classifier'" in msg and "'model'" in msg
    from mlflow import MlflowClient

    client = MlflowClient(local_mlflow.tracking_uri)
    assert client.search_registered_models(filter_string="name = 'scorecard'") == []


def test_unknown_model_and_version_are_not_found_one_liners(local_mlflow: LocalMlflow) -> None:
    gw = local_mlflow.gateway()
    with pytest.raises(NotFound) as err:
        gw.version_info("nope", "1")
    assert "has no registered model 'nope'" in one_line(err.value)
    log_and_register_model(local_mlflow.tracking_uri, experiment_id=local_mlflow.experiment_id)
    with pytest.raises(NotFound) as err:
        gw.version_info("credit_scoring", "3")
    msg = one_line(err.value)
    assert "has no registered model 'credit_scoring' version 3" in msg and "latest version is 1" in msg
    for bad in ("abc", "0", "-1", "1.5", None):
        with pytest.raises(BadInput):
            gw.version_info("credit_scoring", bad)  # type: ignore[arg-type]
    with pytest.raises(NotFound):
        gw.set_alias("credit_scoring", "production", "7")
    with pytest.raises(NotFound):
        gw.get_alias("nope", "production")
    with pytest.raises(NotFound):
        gw.stage_tags("nope")


def test_aliases_and_stage_tags(local_mlflow: LocalMlflow) -> None:
    log_and_register_model(local_mlflow.tracking_uri, experiment_id=local_mlflow.experiment_id)
    gw = local_mlflow.gateway()
    gw.register_from_run("credit_scoring", gw.version_info("credit_scoring", "1").run_id)

    assert gw.get_alias("credit_scoring", "production") is None
    gw.set_alias("credit_scoring", "production", "1")
    assert gw.get_alias("credit_scoring", "production") == "1"
    gw.set_alias("credit_scoring", "production", "2")
    assert gw.get_alias("credit_scoring", "production") == "2"
    from mlflow import MlflowClient

    client = MlflowClient(local_mlflow.tracking_uri)
    assert str(client.get_model_version_by_alias("credit_scoring", "production").version) == "2"
    gw.delete_alias("credit_scoring", "production")
    assert gw.get_alias("credit_scoring", "production") is None
    gw.delete_alias("credit_scoring", "production")  # absent: no error
    with pytest.raises(BadInput) as err:
        gw.set_alias("credit_scoring", "v1", "1")  # MLflow reserves v<number>
    assert "reserved" in one_line(err.value)

    assert gw.stage_tags("credit_scoring") == {"1": None, "2": None}
    gw.set_stage_tag("credit_scoring", "1", "deploy")
    gw.set_stage_tag("credit_scoring", "2", "validate")
    gw.set_tags("credit_scoring", "2", {"modelreg.owner": "risk-team"})
    assert gw.stage_tags("credit_scoring") == {"1": "deploy", "2": "validate"}
    assert client.get_model_version("credit_scoring", "2").tags == {
        STAGE_TAG: "validate",
        "modelreg.owner": "risk-team",
    }
    assert gw.version_info("credit_scoring", "2", with_artifacts=False).version_tags[STAGE_TAG] == "validate"
    gw.set_stage_tag("credit_scoring", "2", "deploy")
    assert gw.stage_tags("credit_scoring")["2"] == "deploy"
    with pytest.raises(BadInput):
        gw.set_tags("credit_scoring", "2", {"k": 3})  # type: ignore[dict-item]


def _check_evaluation_run(client, run_id: str, artifacts_expected: set[str]) -> None:
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "validation-2026-11"
    assert run.data.metrics["auc"] == pytest.approx(0.81)
    assert run.data.metrics["psi/收入"] == pytest.approx(0.12)
    assert run.data.metrics["selection_rate_sex_F_"] == pytest.approx(0.4)
    assert math.isnan(run.data.metrics["gini_unavailable"])
    assert run.data.params == {"policy": "nfra-2025@1.0", "n_rows": "5000"}
    tags = run.data.tags
    assert tags["modelreg.model"] == "credit_scoring"
    assert tags["modelreg.version"] == "1"
    assert tags["modelreg.model_uri"] == "models:/credit_scoring/1"
    assert tags["modelreg.evaluation_id"] == "ev-42"
    assert tags["mlflow.runName"] == "validation-2026-11"
    files = (
        {f.path for f in client.list_artifacts(run_id)}
        | {f.path for f in client.list_artifacts(run_id, "modelreg")}
        | {f.path for f in client.list_artifacts(run_id, "reports")}
    )
    assert artifacts_expected <= files


EVAL_METRICS = {"auc": 0.81, "psi/收入": 0.12, "selection_rate[sex=F]": 0.4, "gini_unavailable": float("nan")}


def _evaluation_artifacts(tmp_path: Path) -> Path:
    folder = tmp_path / "evidence"
    (folder / "reports").mkdir(parents=True)
    (folder / "findings.json").write_text('{"findings": []}', encoding="utf-8")
    (folder / "reports" / "drift.html").write_text("<html>drift</html>", encoding="utf-8")
    return folder


def test_log_evaluation_creates_a_linked_run_with_metrics_tags_and_artifacts(
    local_mlflow: LocalMlflow, tmp_path: Path
) -> None:
    logged = log_and_register_model(local_mlflow.tracking_uri, experiment_id=local_mlflow.experiment_id)
    gw = local_mlflow.gateway()
    run_id = gw.log_evaluation(
        "credit_scoring",
        "1",
        run_name="validation-2026-11",
        metrics=EVAL_METRICS,
        params={"policy": "nfra-2025@1.0", "n_rows": "5000"},
        tags={"modelreg.evaluation_id": "ev-42"},
        artifacts_dir=_evaluation_artifacts(tmp_path),
    )
    from mlflow import MlflowClient

    client = MlflowClient(local_mlflow.tracking_uri)
    _check_evaluation_run(client, run_id, {"findings.json", "reports/drift.html", "modelreg/key_map.json"})
    run = client.get_run(run_id)
    assert run.data.tags["modelreg.source_run_id"] == logged.run_id
    assert [m.model_id for m in run.inputs.model_inputs] == [logged.model_id]
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.name == "modelreg-evaluations"
    assert Path(experiment.artifact_location.removeprefix("file://")).is_relative_to(
        local_mlflow.artifact_root
    )
    key_map = json.loads(
        Path(client.download_artifacts(run_id, "modelreg/key_map.json", str(tmp_path))).read_text(
            encoding="utf-8"
        )
    )
    assert key_map["metrics"] == {"selection_rate[sex=F]": "selection_rate_sex_F_"}

    # A second evaluation reuses the experiment.
    again = gw.log_evaluation(
        "credit_scoring", "1", run_name="m", metrics={"auc": 0.8}, params={}, tags={}, artifacts_dir=None
    )
    assert client.get_run(again).info.experiment_id == run.info.experiment_id


def test_log_evaluation_refuses_bad_input_before_creating_a_run(
    local_mlflow: LocalMlflow, tmp_path: Path
) -> None:
    gw = local_mlflow.gateway()
    kwargs = dict(run_name="r", params={}, tags={}, artifacts_dir=None)
    with pytest.raises(NotFound):
        gw.log_evaluation("credit_scoring", "1", metrics={"auc": 0.8}, **kwargs)
    log_and_register_model(local_mlflow.tracking_uri, experiment_id=local_mlflow.experiment_id)
    with pytest.raises(BadInput):
        gw.log_evaluation("credit_scoring", "1", metrics={"auc": "high"}, **kwargs)
    with pytest.raises(BadInput):
        gw.log_evaluation("credit_scoring", "1", metrics={"auc": True}, **kwargs)
    with pytest.raises(BadInput):
        gw.log_evaluation(
            "credit_scoring",
            "1",
            metrics={},
            run_name="r",
            params={},
            tags={},
            artifacts_dir=tmp_path / "missing",
        )
    from mlflow import MlflowClient

    client = MlflowClient(local_mlflow.tracking_uri)
    assert client.get_experiment_by_name("modelreg-evaluations") is None


def test_load_pyfunc_predicts_like_the_trained_estimator(local_mlflow: LocalMlflow) -> None:
    logged = log_and_register_model(local_mlflow.tracking_uri, experiment_id=local_mlflow.experiment_id)
    gw = local_mlflow.gateway()
    gw.set_alias("credit_scoring", "production", "1")
    expected = logged.estimator.predict(logged.X)
    for uri in (
        "models:/credit_scoring/1",
        "models:/credit_scoring@production",
        f"models:/{logged.model_id}",
        f"runs:/{logged.run_id}/model",
    ):
        model = gw.load_pyfunc(uri)
        np.testing.assert_array_equal(np.asarray(model.predict(logged.X)), expected)

    with pytest.raises(NotFound):
        gw.load_pyfunc("models:/credit_scoring/9")
    with pytest.raises(NotFound):
        gw.load_pyfunc("models:/credit_scoring@champion")
    with pytest.raises(BadInput) as err:
        gw.load_pyfunc("models:/credit_scoring/Production")
    assert "stages are not supported" in one_line(err.value)


def test_load_pyfunc_failure_is_one_line(local_mlflow: LocalMlflow) -> None:
    logged = log_and_register_model(local_mlflow.tracking_uri, experiment_id=local_mlflow.experiment_id)
    gw = local_mlflow.gateway()
    location = gw.version_info("credit_scoring", logged.version).storage_location
    folder = Path(location.removeprefix("file://"))
    model_file = next(p for p in folder.iterdir() if p.name.startswith("model."))
    model_file.write_bytes(b"not a model")
    with pytest.raises(MlflowError) as err:
        gw.load_pyfunc("models:/credit_scoring/1")
    assert "Could not load models:/credit_scoring/1" in one_line(err.value)
    # The digest notices the tampering.
    assert gw.version_info("credit_scoring", "1").artifact_digest == artifact_digest(folder)


def test_gateways_do_not_leak_into_each_other(local_mlflow: LocalMlflow, tmp_path: Path) -> None:
    import mlflow

    from modelreg import settings

    log_and_register_model(local_mlflow.tracking_uri, experiment_id=local_mlflow.experiment_id)
    # A second gateway on a fresh checkout's embedded default (mlflow.env, folders not created yet).
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    (checkout / "mlflow.env").write_text(
        "MLFLOW_TRACKING_URI=sqlite:///.modelreg/mlflow.db\nMLFLOW_ARTIFACT_ROOT=.modelreg/mlartifacts\n",
        encoding="utf-8",
    )
    other = MlflowGateway.from_settings(settings.load(start=checkout, environ={}))
    assert other.tracking_uri == f"sqlite:///{checkout / '.modelreg' / 'mlflow.db'}"
    tracking_before = mlflow.get_tracking_uri()

    assert local_mlflow.gateway().version_info("credit_scoring", "1").name == "credit_scoring"
    with pytest.raises(NotFound):
        other.version_info("credit_scoring", "1")
    experiment_id = other.ensure_experiment("development")
    from mlflow import MlflowClient

    location = MlflowClient(other.tracking_uri).get_experiment(experiment_id).artifact_location
    assert location == (checkout / ".modelreg" / "mlartifacts" / "experiments" / "development").as_uri()
    assert local_mlflow.gateway().version_info("credit_scoring", "1", with_artifacts=False).version == "1"
    assert MlflowClient(local_mlflow.tracking_uri).get_experiment_by_name("development").experiment_id == (
        local_mlflow.experiment_id
    )
    assert mlflow.get_tracking_uri() == tracking_before
    assert "MLFLOW_TRACKING_URI" not in os.environ


def test_register_from_run_with_a_model_folder_in_the_run_artifacts(
    local_mlflow: LocalMlflow, tmp_path: Path
) -> None:
    """MLflow 2 style: the model folder saved with save_model and logged as plain run artifacts."""
    import mlflow.sklearn
    import sklearn
    from mlflow import MlflowClient
    from sklearn.linear_model import LogisticRegression

    from .mlflow_fixtures import training_data

    X, y = training_data(1)
    folder = tmp_path / "saved"
    mlflow.sklearn.save_model(
        LogisticRegression().fit(X, y), str(folder), pip_requirements=[f"scikit-learn=={sklearn.__version__}"]
    )
    client = MlflowClient(local_mlflow.tracking_uri)
    run_id = client.create_run(local_mlflow.experiment_id).info.run_id
    client.log_artifacts(run_id, str(folder), "legacy/model")
    client.set_terminated(run_id)

    info = local_mlflow.gateway().register_from_run("legacy_scorecard", run_id, "legacy/model")
    assert info.source == f"{client.get_run(run_id).info.artifact_uri}/legacy/model"
    assert info.model_id is None
    assert info.artifact_digest == artifact_digest(folder)
    assert info.pip_requirements == (folder / "requirements.txt").read_text(encoding="utf-8").split()
    assert f"scikit-learn=={sklearn.__version__}" in info.pip_requirements
    with pytest.raises(BadInput) as err:
        local_mlflow.gateway().register_from_run("legacy_scorecard", run_id, "legacy")
    assert "found: 'legacy'" in one_line(err.value)


# ------------------------------------------------------------------------------------- server down


def test_tracking_server_down_fails_fast(mlflow_env: Path) -> None:
    url = closed_port_url()
    gw = MlflowGateway(url, timeout_s=3)
    start = time.monotonic()
    with pytest.raises(MlflowError) as err:
        gw.ping()
    assert f"MLflow tracking server at {url} is unreachable" in one_line(err.value)
    assert "Connection refused" in str(err.value)
    for call in (
        lambda: gw.version_info("credit_scoring", "1"),
        lambda: gw.register_from_run("credit_scoring", "0123456789abcdef0123456789abcdef"),
        lambda: gw.get_alias("credit_scoring", "production"),
    ):
        with pytest.raises(MlflowError) as err:
            call()
        assert "is unreachable" in one_line(err.value)
    assert time.monotonic() - start < 10
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ
    assert "MLFLOW_HTTP_REQUEST_TIMEOUT" not in os.environ


def test_http_limits_are_scoped_and_credentials_stay_out_of_messages(
    mlflow_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "5")
    port = closed_port_url().rsplit(":", 1)[1]
    gw = MlflowGateway(f"http://alice:s3cret@127.0.0.1:{port}", timeout_s=2)
    start = time.monotonic()
    with pytest.raises(MlflowError) as err:
        gw.stage_tags("credit_scoring")
    assert time.monotonic() - start < 5  # the gateway's 0 retries applied, not the caller's 5
    assert "s3cret" not in str(err.value) and "alice:***@127.0.0.1" in one_line(err.value)
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "5"  # restored
    assert "MLFLOW_HTTP_REQUEST_TIMEOUT" not in os.environ


def test_importing_the_module_does_not_import_mlflow() -> None:
    code = "import sys, modelreg.integrations.mlflow; sys.exit('mlflow' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_server_that_never_answers_times_out(mlflow_env: Path) -> None:
    # A socket that accepts connections (kernel backlog) but never answers: only the timeout ends a call.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as black_hole:
        black_hole.bind(("127.0.0.1", 0))
        black_hole.listen(8)
        url = f"http://127.0.0.1:{black_hole.getsockname()[1]}"
        gw = MlflowGateway(url, timeout_s=1)
        for call in (gw.ping, lambda: gw.get_alias("credit_scoring", "production")):
            start = time.monotonic()
            with pytest.raises(MlflowError) as err:
                call()
            assert f"MLflow tracking server at {url} is unreachable" in one_line(err.value)
            assert "timed out" in str(err.value)
            assert 0.9 < time.monotonic() - start < 6


# ------------------------------------------------------------------------------------- real server


@pytest.fixture
def server(mlflow_server: MlflowServer, mlflow_env: Path) -> MlflowServer:
    return mlflow_server


def test_server_end_to_end(server: MlflowServer, tmp_path: Path) -> None:
    gw = server.gateway()
    gw.ping()
    experiment_id = server.new_experiment("development-http")
    logged = log_and_register_model(server.url, experiment_id=experiment_id, name="http_credit")

    info = gw.version_info("http_credit", logged.version)
    assert info.run_id == logged.run_id and info.params == logged.params
    assert info.storage_location.startswith("mlflow-artifacts:")
    assert info.flavors == ["python_function", "sklearn"]
    assert [c["name"] for c in info.signature["inputs"]] == ["income", "debt_ratio", "age"]
    assert {d["context"] for d in info.datasets} == {"training", "validation"}
    folder = download(server.url, f"models:/{logged.model_id}", tmp_path / "dl")
    assert info.artifact_digest == shell_digest(folder)
    # Same bytes on the server's disk as through HTTP.
    on_disk = next(server.artifacts_dir.rglob(f"{logged.model_id}/artifacts"))
    assert artifact_digest(on_disk) == info.artifact_digest

    second = gw.register_from_run("http_credit", logged.run_id)
    assert second.version == str(int(logged.version) + 1)
    assert second.artifact_digest == info.artifact_digest
    with pytest.raises(NotFound) as err:
        gw.register_from_run("http_credit", "0123456789abcdef0123456789abcdef")
    assert "has no run" in one_line(err.value)
    with pytest.raises(BadInput):
        gw.register_from_run("http_credit", logged.run_id, artifact_path="nope")
    with pytest.raises(NotFound) as err:
        gw.version_info("http_credit", "99")
    assert "version 99" in one_line(err.value)
    with pytest.raises(NotFound):
        gw.version_info("http_missing", "1")

    gw.set_alias("http_credit", "production", second.version)
    assert gw.get_alias("http_credit", "production") == second.version
    gw.delete_alias("http_credit", "production")
    gw.delete_alias("http_credit", "production")
    assert gw.get_alias("http_credit", "production") is None
    gw.set_stage_tag("http_credit", logged.version, "deploy")
    assert gw.stage_tags("http_credit") == {logged.version: "deploy", second.version: None}

    run_id = gw.log_evaluation(
        "http_credit",
        logged.version,
        run_name="validation-2026-11",
        metrics=EVAL_METRICS,
        params={"policy": "nfra-2025@1.0", "n_rows": "5000"},
        tags={"modelreg.evaluation_id": "ev-42"},
        artifacts_dir=_evaluation_artifacts(tmp_path),
    )
    from mlflow import MlflowClient

    client = MlflowClient(server.url)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["modelreg.version"] == logged.version
    assert run.data.metrics["psi/收入"] == pytest.approx(0.12)
    assert math.isnan(run.data.metrics["gini_unavailable"])
    assert {f.path for f in client.list_artifacts(run_id, "reports")} == {"reports/drift.html"}
    assert run.info.artifact_uri.startswith("mlflow-artifacts:")

    model = gw.load_pyfunc(f"models:/http_credit/{logged.version}")
    np.testing.assert_array_equal(np.asarray(model.predict(logged.X)), logged.estimator.predict(logged.X))
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ
