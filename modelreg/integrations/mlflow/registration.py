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
