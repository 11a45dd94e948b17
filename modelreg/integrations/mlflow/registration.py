"""Registration from MLflow: the model version must exist in the configured MLflow registry (or is created
from a run), and what an auditor will want is captured from it (run, parameters, metrics, signature, pip
requirements, artifact digest, logged data sets)."""

from __future__ import annotations

from modelreg.domain.entities import ModelVersion
from modelreg.errors import NotFound
from modelreg.registry import Registry


def gateway(registry: Registry):
    from modelreg.integrations.mlflow.gateway import MlflowGateway

    return MlflowGateway.from_settings(registry.settings)


def register_from_mlflow(
    registry: Registry,
    name: str,
    version: str | None,
    *,
    run_id: str | None = None,
    artifact_path: str = "model",
    owner: str,
    risk_tier: str,
    purpose: str,
    business_line: str | None = None,
    model_card: dict | None = None,
) -> ModelVersion:
    if getattr(registry, "remote", False):  # MODELREG_URL: the service reads MLflow and registers
        return registry.register_from_mlflow(
            name,
            version,
            run_id=run_id,
            artifact_path=artifact_path,
            owner=owner,
            risk_tier=risk_tier,
            purpose=purpose,
            business_line=business_line,
            model_card=model_card,
        )
    registry.preflight_register(name, owner=owner, risk_tier=risk_tier)
    gw = gateway(registry)
    if run_id is not None:
        info = gw.register_from_run(name, run_id, artifact_path)
    else:
        if version is None:
            raise NotFound("a model version is required")
        info = gw.version_info(name, str(version))
    return registry.register(
        name,
        info.version,
        owner=owner,
        risk_tier=risk_tier,
        purpose=purpose,
        business_line=business_line,
        mlflow_info=info.to_dict(),
        model_card=model_card,
    )  # the stage tag is mirrored to MLflow by the registry's projection, inside the same transaction


def log_and_register(
    registry: Registry,
    model: object,
    *,
    name: str,
    owner: str,
    risk_tier: str,
    purpose: str,
    flavor: str = "sklearn",
    artifact_name: str = "model",
    business_line: str | None = None,
    model_card: dict | None = None,
    **log_model_kwargs: object,
) -> ModelVersion:
    """The MLflow-native way to register: ``mlflow.<flavor>.log_model(model, registered_model_name=name)``
    into the active run (or a new one) in this registry's MLflow stores, then that very version registered
    with modelreg, so no version is ever left ungoverned (``sync --check`` would list it). The registration is
    refused before MLflow is touched when the owner or tier is wrong. Other keyword arguments go to
    ``log_model`` (``signature``, ``pip_requirements``, ``input_example``...)."""
    import contextlib
    import importlib

    import mlflow

    registry.preflight_register(name, owner=owner, risk_tier=risk_tier)
    try:
        flavor_module = importlib.import_module(f"mlflow.{flavor}")
    except ImportError:
        from modelreg.errors import BadInput

        raise BadInput(f"MLflow has no model flavor {flavor!r} (mlflow.{flavor})") from None
    with registry.settings.mlflow_scope():
        active = mlflow.active_run()
        with contextlib.nullcontext(active) if active is not None else mlflow.start_run():
            info = flavor_module.log_model(
                model, name=artifact_name, registered_model_name=name, **log_model_kwargs
            )
    return register_from_mlflow(
        registry,
        name,
        str(info.registered_model_version),
        owner=owner,
        risk_tier=risk_tier,
        purpose=purpose,
        business_line=business_line,
        model_card=model_card,
    )
