"""Three models that run code when they are loaded (issue 16), logged to a real MLflow store.

Each one, once armed (a file the test creates after logging, because MLflow runs models-from-code while
logging it), writes a marker file outside any scratch folder and opens a TCP connection to a listener on
127.0.0.1. The loaded model still works, so a run in the isolated worker gives real scores:
the scikit-learn pickle gives 0.5 (a prior DummyClassifier), the pyfunc cloudpickle 0.25, models-from-code 0.75.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path

from sklearn.dummy import DummyClassifier


def side_effects(arm: Path, marker: Path, port: int) -> str:
    return f"""
import os, socket
if os.path.exists({str(arm)!r}):
    try:
        open({str(marker)!r}, "w").write("pwned")
    except Exception:
        pass
    try:
        socket.create_connection(("127.0.0.1", {port}), 2).close()
    except Exception:
        pass
"""


class Listener:
    """Counts TCP connections to 127.0.0.1:port (a model 'phoning home')."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self.sock.close()


@dataclass
class Attack:
    name: str  # registered model name
    uri: str
    marker: Path
    expected_score: float


@dataclass
class Attacks:
    arm: Path
    listener: Listener
    models: list[Attack] = field(default_factory=list)


def _trojan_class(code: str):
    class TrojanClassifier(DummyClassifier):
        def __reduce__(self):
            model = "__import__('sklearn.dummy', fromlist=['x']).DummyClassifier(strategy='prior').fit([[0.0, 0.0], [1.0, 1.0]], [0, 1])"
            return (eval, (f"(exec({code!r}, {{}}), {model})[1]",))

    return TrojanClassifier


def _evil_pyfunc(code: str):
    import mlflow.pyfunc

    class EvilPythonModel(mlflow.pyfunc.PythonModel):
        def predict(self, model_input, params=None):
            return [0.25] * len(model_input)

        def __reduce__(self):
            model = (
                "type('Constant', (__import__('mlflow.pyfunc', fromlist=['x']).PythonModel,), "
                "{'predict': lambda self, model_input, params=None: [0.25] * len(model_input)})()"
            )
            return (eval, (f"(exec({code!r}, {{}}), {model})[1]",))

    return EvilPythonModel()


def log_attacks(tmp_path: Path, tracking_uri: str, X, y) -> Attacks:
    import mlflow
    import mlflow.pyfunc
    import mlflow.sklearn

    arm = tmp_path / "ARMED"
    listener = Listener()
    attacks = Attacks(arm, listener)
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    # A SQLite tracking store's default artifact root is ./mlruns in the working folder: keep them in tmp_path.
    experiment = mlflow.create_experiment(
        f"attacks-{tmp_path.name}", artifact_location=(tmp_path / "mlartifacts").resolve().as_uri()
    )
    with mlflow.start_run(experiment_id=experiment):
        marker = tmp_path / "pwned-sklearn-pickle"
        trojan = _trojan_class(side_effects(arm, marker, listener.port))(strategy="prior").fit(X, y)
        info = mlflow.sklearn.log_model(
            trojan, name="trojan", serialization_format="pickle", registered_model_name="evil_pickle"
        )
        attacks.models.append(Attack("evil_pickle", info.model_uri, marker, 0.5))

        marker = tmp_path / "pwned-pyfunc-cloudpickle"
        info = mlflow.pyfunc.log_model(
            name="pyfunc",
            python_model=_evil_pyfunc(side_effects(arm, marker, listener.port)),
            registered_model_name="evil_cloudpickle",
        )
        attacks.models.append(Attack("evil_cloudpickle", info.model_uri, marker, 0.25))

        marker = tmp_path / "pwned-models-from-code"
        code = tmp_path / "evil_model.py"
        code.write_text(
            side_effects(arm, marker, listener.port)
            + """
from mlflow.models import set_model
from mlflow.pyfunc import PythonModel


class Constant(PythonModel):
    def predict(self, model_input, params=None):
        return [0.75] * len(model_input)


set_model(Constant())
"""
        )
        info = mlflow.pyfunc.log_model(name="code", python_model=str(code), registered_model_name="evil_code")
        attacks.models.append(Attack("evil_code", info.model_uri, marker, 0.75))
    arm.write_text("armed")
    return attacks
