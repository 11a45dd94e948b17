"""Loading a developer's model for evaluation without running the developer's code in the validator's or
auditor's process.

What is trusted (the README's "What runs where" says the same):

* **Formats that cannot execute code load here, in-process** (``safe_loaders.py``): the scikit-learn
  flavour in ``skops`` format, where every type the file needs beyond skops's own defaults must be a *class*
  from a module on ``TRUSTED_MODULES`` (the registry's list: the allow-list the developer wrote into MLmodel
  is ignored), LightGBM native text models (``model.lgb``), XGBoost JSON/UBJSON dumps and ONNX graphs (on
  onnxruntime's CPU provider). MLflow's own deserialisers are not used for them.
* **Formats that can execute code when loaded** (pickle, cloudpickle, a pyfunc ``python_model``, MLflow
  models-from-code, any flavour not listed above) are refused, unless the caller holds an ``ExecutionGrant``
  (the policy pack defines the attestation control ``EXEC_CONTROL_ID`` and a validator signed it for that
  version). Even then they are loaded only in a separate worker process: no registry credentials or keys in
  its environment, the registry's home and key folders hidden, every file system read-only except a scratch
  folder, no network, no capabilities, resource limits and a wall-clock timeout. Only data (Arrow IPC) and
  scores (NumPy ``.npy``, read with ``allow_pickle=False``) cross the pipe.

``MLFLOW_ALLOW_PICKLE_DESERIALIZATION`` is forced to ``false`` in every registry and auditor process
(MLflow 3.17 defaults it to true); only the worker sets it, for the one model it was started for.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelreg.errors import BadInput, ModelregError
from modelreg.integrations.mlflow import safe_loaders
from modelreg.integrations.mlflow.safe_loaders import TRUSTED_MODULES, ModelRefused

__all__ = [
    "TRUSTED_MODULES",
    "ExecutionGrant",
    "ModelRefused",
    "WorkerModel",
    "classify",
    "load_for_evaluation",
]

PICKLE_FLAG = "MLFLOW_ALLOW_PICKLE_DESERIALIZATION"
EXEC_CONTROL_ID = "CHK-ROB-04.exec"
# Worker limits: generous for a credit model, small enough that a hostile one cannot take the machine.
LIMITS = {"address_space_bytes": 4 << 30, "cpu_seconds": 300, "open_files": 256, "file_size_bytes": 256 << 20}
TIMEOUT_SECONDS = 120.0


@dataclass(frozen=True)
class ModelFormat:
    flavor: str
    serialization: str
    executable: bool
    path: Path | None = None

    @property
    def label(self) -> str:
        return f"{self.flavor}/{self.serialization}"


@dataclass(frozen=True)
class ExecutionGrant:
    """Why this process may run an executable model in the worker (policy control and attestation)."""

    control_id: str
    attested_by: str
    version: str

    def describe(self) -> str:
        return f"{self.control_id} attested by {self.attested_by} for version {self.version}"


def force_no_pickle() -> None:
    """Every registry/auditor path: MLflow must never unpickle in this process."""
    os.environ[PICKLE_FLAG] = "false"


@contextlib.contextmanager
def no_pickle() -> Iterator[None]:
    """Forced false while the registry loads a model; a notebook's own setting comes back afterwards."""
    # The download's progress bars would break the CLI's one-line stderr contract.
    from modelreg.settings import environ_overrides

    with environ_overrides({PICKLE_FLAG: "false", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}):
        yield


# -- what is it ------------------------------------------------------------------------------------------------
def classify(model_dir: Path) -> ModelFormat:
    import yaml

    mlmodel = model_dir / "MLmodel"
    if not mlmodel.is_file():
        raise BadInput(f"{model_dir} is not an MLflow model (no MLmodel file)")
    spec = yaml.safe_load(mlmodel.read_text(encoding="utf-8")) or {}
    flavors = spec.get("flavors") or {}
    pyfunc = flavors.get("python_function") or {}
    if pyfunc.get("model_code_path") or spec.get("model_code_path"):
        return ModelFormat("python_function", "models-from-code", True)
    if "sklearn" in flavors:
        conf = flavors["sklearn"] or {}
        fmt = str(conf.get("serialization_format") or "pickle")
        path = model_dir / str(conf.get("pickled_model") or "model.pkl")
        return ModelFormat("sklearn", fmt, fmt != "skops", path)
    if "lightgbm" in flavors:
        data = str((flavors["lightgbm"] or {}).get("data") or "")
        native = data.endswith(".lgb")
        return ModelFormat("lightgbm", "native-text" if native else "pickle", not native, model_dir / data)
    if "xgboost" in flavors:
        conf = flavors["xgboost"] or {}
        data = str(conf.get("data") or "")
        native = safe_loaders.xgboost_data_is_native(data)
        return ModelFormat(
            "xgboost", data.rsplit(".", 1)[-1] if native else "legacy-binary", not native, model_dir / data
        )
    if "onnx" in flavors:
        data = str((flavors["onnx"] or {}).get("data") or "model.onnx")
        return ModelFormat("onnx", "onnx", False, model_dir / data)
    if pyfunc.get("python_model") or pyfunc.get("cloudpickle_version"):
        return ModelFormat("python_function", "cloudpickle", True)
    first = next(iter(flavors), "unknown")
    return ModelFormat(str(first), "unknown", True)  # fail closed: what we cannot vouch for may execute


def _download(uri: str) -> Path:
    import mlflow.artifacts

    target = Path(tempfile.mkdtemp(prefix="modelreg-model-"))
    try:
        return Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(target)))
    except Exception as exc:
        shutil.rmtree(target, ignore_errors=True)
        first = str(exc).strip().splitlines()
        raise BadInput(f"cannot download model {uri}: {first[0] if first else type(exc).__name__}") from None


def load_for_evaluation(
    uri: str, *, grant: ExecutionGrant | None = None, hide: tuple[Path, ...] = ()
) -> tuple[Any, str]:
    """(model, note). Safe formats load here; executable ones only in the worker, and only with a grant."""
    with no_pickle():
        return _load(uri, grant, hide)


def _load(uri: str, grant: ExecutionGrant | None, hide: tuple[Path, ...]) -> tuple[Any, str]:
    folder = _download(uri)
    fmt = classify(folder)
    if not fmt.executable:
        try:
            model = _load_direct(fmt, folder)
        except ModelRefused:
            raise
        except Exception as exc:
            first = str(exc).strip().splitlines()
            raise BadInput(
                f"cannot load model {uri} ({fmt.label}): {first[0] if first else type(exc).__name__}"
            ) from None
        return model, f"loaded {uri} ({fmt.label}, cannot execute code) in this process"
    if grant is None:
        raise ModelRefused(
            f"refused to load {uri}: its format ({fmt.label}) runs code when loaded. Log it as skops (scikit-learn), "
            f"LightGBM native text, XGBoost JSON/UBJSON or ONNX, or have a validator attest {EXEC_CONTROL_ID} under a policy pack that "
            "switches it on, to run it in the isolated worker"
        )
    model = WorkerModel.start(folder, hide=hide)
    return (
        model,
        f"loaded {uri} ({fmt.label}, can execute code) only in the isolated worker ({'; '.join(model.isolation)}); allowed by {grant.describe()}",
    )


def _load_direct(fmt: ModelFormat, folder: Path) -> Any:
    path = fmt.path
    assert path is not None
    if fmt.flavor == "sklearn":
        return safe_loaders.load_skops(path)
    if fmt.flavor == "lightgbm":
        return safe_loaders.load_lightgbm(path)
    if fmt.flavor == "xgboost":
        import yaml

        spec = yaml.safe_load((folder / "MLmodel").read_text(encoding="utf-8")) or {}
        return safe_loaders.load_xgboost(
            path, ((spec.get("flavors") or {}).get("xgboost") or {}).get("model_class")
        )
    if fmt.flavor == "onnx":
        return safe_loaders.load_onnx(path, safe_loaders.signature_inputs(folder))
    raise ModelRefused(f"no direct loader for {fmt.label}")  # classify() marks every other format executable


# -- the worker ------------------------------------------------------------------------------------------------
def _frame(data: bytes) -> bytes:
    return struct.pack(">Q", len(data)) + data


def read_frame(stream, timeout: float | None = None) -> bytes:
    if timeout is not None:
        ready, _, _ = select.select([stream], [], [], timeout)
        if not ready:
            raise TimeoutError
    head = _read_exact(stream, 8)
    (n,) = struct.unpack(">Q", head)
    if n > 1 << 31:
        raise ValueError("frame too large")
    return _read_exact(stream, n)


def _read_exact(stream, n: int) -> bytes:
    out = bytearray()
    while len(out) < n:
        chunk = stream.read(n - len(out))
        if not chunk:
            raise EOFError("the worker closed the pipe")
        out += chunk
    return bytes(out)


def write_frame(stream, data: bytes) -> None:
    stream.write(_frame(data))
    stream.flush()


def _network_isolation() -> list[str]:
    """``unshare`` needs root (or user namespaces); without it the worker still runs, and says so."""
    if os.geteuid() == 0 and shutil.which("unshare"):
        return ["unshare", "--net", "--mount", "--fork", "--kill-child"]
    return []


def _limit_resources() -> None:  # runs in the child between fork and exec
    import resource

    os.setsid()
    resource.setrlimit(resource.RLIMIT_AS, (LIMITS["address_space_bytes"],) * 2)
    resource.setrlimit(resource.RLIMIT_CPU, (LIMITS["cpu_seconds"],) * 2)
    resource.setrlimit(resource.RLIMIT_NOFILE, (LIMITS["open_files"],) * 2)
    resource.setrlimit(resource.RLIMIT_FSIZE, (LIMITS["file_size_bytes"],) * 2)


def _secret_paths() -> tuple[Path, ...]:
    from modelreg import settings

    try:
        s = settings.load()
    except ModelregError:
        return ()
    paths = {s.home, s.audit_key_path.parent, s.evidence_key_path.parent}
    if s.signing_key is not None:
        paths.add(s.signing_key.parent)
    return tuple(sorted(p for p in paths if p.exists()))


class WorkerModel:
    """A model living in the worker process: ``predict``/``predict_proba`` send the frame over the pipe."""

    def __init__(
        self, proc: subprocess.Popen, scratch: Path, hello: dict, isolation: list[str], timeout: float
    ) -> None:
        self._proc = proc
        self.scratch = scratch
        self.isolation = isolation
        self.timeout = timeout
        self.methods = tuple(hello.get("methods") or ())
        features = hello.get("features")
        if features:
            import numpy as np

            self.feature_names_in_ = np.asarray([str(f) for f in features])
        weakref.finalize(self, WorkerModel._stop, proc, str(scratch))

    @classmethod
    def start(
        cls, model_dir: Path, *, hide: tuple[Path, ...] = (), timeout: float = TIMEOUT_SECONDS
    ) -> WorkerModel:
        scratch = Path(tempfile.mkdtemp(prefix="modelreg-worker-"))
        shutil.copytree(model_dir, scratch / "model")
        prefix = _network_isolation()
        hidden = tuple(dict.fromkeys([*_secret_paths(), *hide]))
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": str(scratch),
            "TMPDIR": str(scratch),
            "LANG": "C.UTF-8",
            "MLFLOW_DISABLE_TELEMETRY": "true",
            # Whatever the model's code logs while it loads (models-from-code calls MLflow) stays in scratch.
            "MLFLOW_TRACKING_URI": (scratch / "mlruns").resolve().as_uri(),
            "PYTHONDONTWRITEBYTECODE": "1",
            "MODELREG_WORKER_SANDBOX": "1" if prefix else "0",
        }
        cmd = [
            *prefix,
            sys.executable,
            "-I",
            "-m",
            "modelreg.integrations.mlflow.worker_entry",
            str(scratch / "model"),
            str(scratch),
            json.dumps([str(p) for p in hidden]),
        ]
        log = (scratch / "worker.log").open("wb")
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            cwd=scratch,
            env=env,
            preexec_fn=_limit_resources,
            close_fds=True,
            bufsize=0,  # unbuffered: select() on the pipe must see every byte the worker sent
        )
        log.close()
        try:
            hello = json.loads(read_frame(proc.stdout, timeout))
        except (TimeoutError, EOFError, ValueError):
            cls._stop(proc, None)
            tail = (scratch / "worker.log").read_text(errors="replace").strip().splitlines()[-1:]
            shutil.rmtree(scratch, ignore_errors=True)
            raise BadInput(
                f"the isolated worker could not load the model: {tail[0] if tail else 'no answer'}"
            ) from None
        if not hello.get("ok"):
            cls._stop(proc, str(scratch))
            raise BadInput(f"the isolated worker could not load the model: {hello.get('error')}")
        isolation = list(hello.get("isolation") or [])
        kind = WorkerProbaModel if "predict_proba" in (hello.get("methods") or ()) else WorkerModel
        return kind(proc, scratch, hello, isolation, timeout)

    def _call(self, method: str, X) -> Any:
        import numpy as np
        import pandas as pd
        import pyarrow as pa

        frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(X)
        sink = io.BytesIO()
        table = pa.Table.from_pandas(frame, preserve_index=False)
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        try:
            write_frame(self._proc.stdin, json.dumps({"method": method}).encode())
            write_frame(self._proc.stdin, sink.getvalue())
            head = json.loads(read_frame(self._proc.stdout, self.timeout))
            if not head.get("ok"):
                raise ValueError(f"the model failed in the worker: {head.get('error')}")
            out = np.load(io.BytesIO(read_frame(self._proc.stdout, self.timeout)), allow_pickle=False)
        except TimeoutError:
            self._stop(self._proc, None)
            raise ValueError(
                f"the model did not answer within {self.timeout:.0f} s: the worker was stopped"
            ) from None
        except (EOFError, BrokenPipeError) as exc:
            raise ValueError(f"the worker died ({exc}); see {self.scratch / 'worker.log'}") from None
        if out.dtype.kind not in "biuf":
            raise ValueError(f"the worker returned {out.dtype} values, expected numbers")
        return out

    def predict(self, X) -> Any:
        return self._call("predict", X)

    def close(self) -> None:
        self._stop(self._proc, str(self.scratch))

    @staticmethod
    def _stop(proc: subprocess.Popen, scratch: str | None) -> None:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                proc.kill()
            proc.wait(timeout=30)
        for stream in (proc.stdin, proc.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)


class WorkerProbaModel(WorkerModel):
    """A worker model that gives class probabilities (the score monitors want)."""

    def predict_proba(self, X) -> Any:
        return self._call("predict_proba", X)
