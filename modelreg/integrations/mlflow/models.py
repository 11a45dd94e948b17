"""Loading a model to run it, and logging a trained model the way a data scientist does: the only places in
modelreg where model code meets MLflow. Monitors take loaded model objects; modelreg loads URIs here."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from modelreg.errors import BadInput

if TYPE_CHECKING:
    import pandas as pd

    from modelreg.settings import Settings


def load_model(uri: str, grant: Any = None) -> tuple[Any, str]:
    """Load a model to run it (validate/monitor/recompute), with a note of how it was loaded: formats that
    cannot execute code load in this process; executable ones are refused, or with an execution grant run only
    in the isolated worker (``worker.py``)."""
    from modelreg.integrations.mlflow.worker import load_for_evaluation

    return load_for_evaluation(uri, grant=grant)


def load_model_in_process(uri: str) -> tuple[Any, str]:
    """Load a model the caller itself logged (the demo, a notebook), with a note of how it was loaded.

    A scikit-learn flavour is loaded natively, so ``predict_proba`` gives scores and SHAP can use a fast
    explainer; pyfunc's ``predict`` would give hard 0/1 labels for a classifier logged the default way,
    silently wrong as scores. Anything else goes through MLflow's pyfunc. Either way it runs in this process.
    """
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    try:
        import mlflow.sklearn

        try:
            return mlflow.sklearn.load_model(
                uri
            ), f"loaded {uri} with mlflow.sklearn in the validator's own process"
        except Exception:
            import mlflow.pyfunc

            return mlflow.pyfunc.load_model(
                uri
            ), f"loaded {uri} with mlflow.pyfunc in the validator's own process"
    except Exception as exc:
        first = str(exc).strip().splitlines()
        raise BadInput(f"cannot load model {uri}: {first[0] if first else type(exc).__name__}") from None


def use_stores(settings: Settings) -> None:
    """Point plain ``mlflow`` calls of this process at the configured tracking and registry stores (what a
    notebook user or the demo does before logging runs)."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import mlflow

    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    mlflow.set_registry_uri(settings.mlflow_registry_uri)


def ensure_experiment(artifact_root: str, name: str) -> str:
    """The experiment ``name``. On a local store it is created with its artifacts under
    ``artifact_root``/experiments/``name`` (MLflow would otherwise write ./mlruns wherever the process happens
    to run); on a tracking server the server decides (its artifact store, which every user of the server can
    read: a local folder there would hold the models where only this machine sees them)."""
    from pathlib import Path

    import mlflow

    from modelreg.integrations.mlflow.gateway import _LOCAL_STORE_SCHEMES, _scheme

    existing = mlflow.get_experiment_by_name(name)
    if existing is not None:
        return str(existing.experiment_id)
    location = None
    if _scheme(mlflow.get_tracking_uri()) in _LOCAL_STORE_SCHEMES:
        location = (Path(artifact_root) / "experiments" / name).resolve().as_uri()
    return str(mlflow.create_experiment(name, artifact_location=location))


def log_sklearn_run(
    model: Any,
    *,
    run_name: str,
    experiment_id: str | None,
    tags: dict[str, str],
    params: dict[str, Any],
    metrics: dict[str, float],
    inputs: list[tuple[pd.DataFrame, str, str, str]],
    signature_input: pd.DataFrame,
    signature_output: Any,
    pip_requirements: list[str],
    skops_trusted_types: list[str],
    registered_model_name: str | None,
    pyfunc_predict_fn: str = "predict_proba",
) -> tuple[str, str, str | None]:
    """One MLflow run: parameters, metrics, data sets as inputs (frame, target column, name, context) and the
    model in the safe ``skops`` format with its signature; optionally registered. Returns (run id, model
    URI, registered version or None)."""
    import mlflow
    import mlflow.sklearn
    from mlflow.models import infer_signature

    with mlflow.start_run(run_name=run_name, experiment_id=experiment_id, tags=tags) as run:
        mlflow.log_params(params)
        mlflow.log_metrics(metrics)
        for frame, target, name, context in inputs:
            mlflow.log_input(mlflow.data.from_pandas(frame, targets=target, name=name), context=context)
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=infer_signature(signature_input, signature_output),
            pip_requirements=pip_requirements,
            serialization_format="skops",
            skops_trusted_types=skops_trusted_types,
            pyfunc_predict_fn=pyfunc_predict_fn,
            registered_model_name=registered_model_name,
        )
    version = getattr(info, "registered_model_version", None)
    return run.info.run_id, info.model_uri, str(version) if version is not None else None
