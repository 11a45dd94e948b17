"""Reusable MLflow fixtures: a temporary local store, a real ``mlflow server`` on loopback, a logged model.

Use it as a plugin from a test module (fixtures by name, helpers by import)::

    from .mlflow_fixtures import LocalMlflow, log_and_register_model

    pytest_plugins = [f"{__package__}.mlflow_fixtures"]

Everything is hermetic: HOME and the working folder point into ``tmp_path`` (MLflow falls back to
``./mlruns`` / ``./mlflow.db`` of the current folder), telemetry is off, and the fluent API's global
tracking/registry URIs are restored after each use.

(PYTEST_DONT_REWRITE: this module has no asserts and is imported before pytest registers it as a plugin.)
"""

from __future__ import annotations

import os

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

import contextlib
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelreg.integrations.mlflow import MlflowGateway

_MLFLOW_URI_VARS = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
SERVER_START_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class LocalMlflow:
    """A throwaway MLflow store: SQLite tracking/registry plus a local artifact folder."""

    root: Path
    tracking_uri: str
    artifact_root: Path
    experiment_id: str  # an experiment whose artifacts land under artifact_root (not ./mlruns)

    @property
    def registry_uri(self) -> str:
        return self.tracking_uri

    def gateway(self, **kwargs) -> MlflowGateway:
        return MlflowGateway(self.tracking_uri, self.registry_uri, artifact_root=self.artifact_root, **kwargs)


@dataclass(frozen=True)
class MlflowServer:
    """A real ``mlflow server`` subprocess on 127.0.0.1 with its own SQLite backend and artifact folder."""

    url: str
    root: Path
    backend_uri: str
    artifacts_dir: Path
    log_path: Path
    process: subprocess.Popen

    @property
    def tracking_uri(self) -> str:
        return self.url

    @property
    def registry_uri(self) -> str:
        return self.url

    def gateway(self, **kwargs) -> MlflowGateway:
        return MlflowGateway(self.url, self.url, **kwargs)

    def new_experiment(self, name: str) -> str:
        return self.gateway().ensure_experiment(name)


@dataclass(frozen=True)
class LoggedModel:
    """What :func:`log_and_register_model` produced."""

    run_id: str
    model_id: str
    name: str | None
    version: str | None
    artifact_name: str
    estimator: object
    X: pd.DataFrame
    y: pd.Series
    params: dict[str, str]
    metrics: dict[str, float]
    datasets: list[dict]  # name, digest, context of what was logged with mlflow.log_input


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def closed_port_url() -> str:
    """An http URL on loopback where nothing listens (bound then released)."""
    return f"http://127.0.0.1:{free_port()}"


@contextlib.contextmanager
def fluent_mlflow(tracking_uri: str, registry_uri: str | None = None) -> Iterator[None]:
    """Point MLflow's fluent API (mlflow.start_run, log_model) at a store, then restore everything.

    ``mlflow.set_tracking_uri`` also writes MLFLOW_TRACKING_URI into os.environ, so both the module
    globals and the environment are saved and put back.
    """
    import mlflow
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    saved_env = {key: os.environ.get(key) for key in _MLFLOW_URI_VARS}
    saved_globals = (tracking_utils._tracking_uri, registry_utils._registry_uri)
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(registry_uri or tracking_uri)
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            if mlflow.active_run() is not None:
                mlflow.end_run("FAILED")
        tracking_utils._tracking_uri, registry_utils._registry_uri = saved_globals
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def training_data(seed: int = 0, n: int = 200) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "income": rng.normal(5.0, 1.5, n),
            "debt_ratio": rng.uniform(0.0, 1.0, n),
            "age": rng.uniform(20.0, 70.0, n),
        }
    )
    logit = 0.8 * (X["income"] - 5.0) - 2.0 * (X["debt_ratio"] - 0.5)
    y = pd.Series((rng.uniform(size=n) < 1.0 / (1.0 + np.exp(-logit))).astype("int64"), name="default")
    return X, y


def log_and_register_model(
    tracking_uri: str,
    *,
    experiment_id: str,
    name: str | None = "credit_scoring",
    artifact_name: str = "model",
    registry_uri: str | None = None,
    with_datasets: bool = True,
    seed: int = 0,
) -> LoggedModel:
    """Train a tiny LogisticRegression, log it like a data scientist would, register it when ``name``.

    ``pip_requirements`` is passed explicitly: inferring it costs ~3 s per model.
    """
    import mlflow
    import mlflow.sklearn
    import sklearn
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    X, y = training_data(seed)
    params = {"C": "0.5", "solver": "lbfgs"}
    estimator = LogisticRegression(C=0.5, solver="lbfgs").fit(X, y)
    proba = estimator.predict_proba(X)[:, 1]
    metrics = {"train_accuracy": float(estimator.score(X, y)), "train_positive_rate": float(y.mean())}
    datasets: list[dict] = []
    with fluent_mlflow(tracking_uri, registry_uri), mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_params(params)
        mlflow.log_metrics(metrics)
        if with_datasets:
            for context, frame in (("training", X.iloc[:150]), ("validation", X.iloc[150:])):
                # float label: MLflow warns about integer columns in a dataset schema
                data = frame.assign(default=y.loc[frame.index].astype("float64"))
                ds = mlflow.data.from_pandas(
                    data,
                    source=f"s3://bank-data/credit/{context}.parquet",
                    name=f"credit_{context}",
                    targets="default",
                )
                mlflow.log_input(ds, context=context)
                datasets.append({"name": ds.name, "digest": ds.digest, "context": context})
        info = mlflow.sklearn.log_model(
            estimator,
            name=artifact_name,
            signature=infer_signature(X, proba),
            input_example=None,
            pip_requirements=[f"scikit-learn=={sklearn.__version__}", f"numpy=={np.__version__}"],
            registered_model_name=name,
        )
    version = str(info.registered_model_version) if name else None
    return LoggedModel(
        run_id=run.info.run_id,
        model_id=info.model_id,
        name=name,
        version=version,
        artifact_name=artifact_name,
        estimator=estimator,
        X=X,
        y=y,
        params=params,
        metrics=metrics,
        datasets=datasets,
    )


@pytest.fixture
def mlflow_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Hermetic process environment for MLflow: HOME and cwd in tmp_path, no inherited MLflow URIs."""
    home = tmp_path / "home"
    work = tmp_path / "cwd"
    home.mkdir()
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    for key in (
        *_MLFLOW_URI_VARS,
        "MLFLOW_ARTIFACT_ROOT",
        "MLFLOW_EXPERIMENT_ID",
        "MLFLOW_EXPERIMENT_NAME",
        "MODELREG_CONFIG",
    ):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(work)
    return tmp_path


@pytest.fixture(scope="session")
def mlflow_db_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty, fully migrated MLflow SQLite database, built once per session.

    Creating MLflow's schema runs ~50 Alembic migrations (5-10 s on a busy machine); copying the
    finished file is instant. MLflow's default experiment (id 0) in it points at
    ``<session tmp>/template/cwd/mlruns``: tests use their own experiments, never that one.
    """
    root = tmp_path_factory.mktemp("mlflow-template")
    (root / "cwd").mkdir()
    db = root / "mlflow.db"
    previous = Path.cwd()
    os.chdir(root / "cwd")  # MLflow records ./mlruns of the current folder for experiment 0
    try:
        MlflowGateway(f"sqlite:///{db}").ping()
    finally:
        os.chdir(previous)
    return db


@pytest.fixture
def local_mlflow(mlflow_env: Path, mlflow_db_template: Path) -> LocalMlflow:
    root = mlflow_env / "mlflow"
    root.mkdir()
    artifact_root = root / "artifacts"
    shutil.copyfile(mlflow_db_template, root / "mlflow.db")
    tracking_uri = f"sqlite:///{root / 'mlflow.db'}"
    gateway = MlflowGateway(tracking_uri, artifact_root=artifact_root)
    experiment_id = gateway.ensure_experiment("development")
    return LocalMlflow(
        root=root, tracking_uri=tracking_uri, artifact_root=artifact_root, experiment_id=experiment_id
    )


def _wait_healthy(url: str, process: subprocess.Popen, log_path: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"mlflow server exited with {process.returncode}:\n{_tail(log_path)}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.25)
    raise RuntimeError(f"mlflow server not healthy after {timeout_s:.0f} s:\n{_tail(log_path)}")


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _stop(process: subprocess.Popen) -> None:
    """Terminate the server's process group (uvicorn and MLflow's job runner are its children), then kill."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """One server for the session (tests name their models uniquely)."""
    with running_mlflow_server(tmp_path_factory.mktemp("mlflow-server")) as server:
        yield server


@contextlib.contextmanager
def running_mlflow_server(root: Path) -> Iterator[MlflowServer]:
    """A real ``mlflow server`` with its stores under ``root``, stopped on exit: for a test that needs a
    server of its own (fixed model names, e.g. the README tours)."""
    home = root / "home"
    home.mkdir(parents=True)
    artifacts = root / "artifacts"
    backend_uri = f"sqlite:///{root / 'backend.db'}"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    # No GenAI job runner: one process less on a shared CI machine.
    env.update(
        HOME=str(home),
        MLFLOW_DISABLE_TELEMETRY="true",
        MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false",
        PYTHONUNBUFFERED="1",
    )
    log_path = root / "server.log"
    cmd = [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", backend_uri,
        "--artifacts-destination", str(artifacts),
        "--host", "127.0.0.1",
        "--port", str(port),
        "--workers", "1",
    ]  # fmt: skip
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        _wait_healthy(url, process, log_path, SERVER_START_TIMEOUT_S)
        yield MlflowServer(
            url=url,
            root=root,
            backend_uri=backend_uri,
            artifacts_dir=artifacts,
            log_path=log_path,
            process=process,
        )
    finally:
        _stop(process)
