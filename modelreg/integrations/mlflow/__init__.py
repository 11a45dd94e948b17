"""The MLflow integration: the only package of modelreg that imports mlflow (lazily, inside functions)."""

from __future__ import annotations

from modelreg.integrations.mlflow.gateway import (
    DOWNLOAD_NOTE_FILE,
    STAGE_TAG,
    MlflowGateway,
    MlflowVersionInfo,
    artifact_digest,
    sanitize_key,
)
from modelreg.integrations.mlflow.registration import log_and_register

__all__ = [
    "DOWNLOAD_NOTE_FILE",
    "STAGE_TAG",
    "MlflowGateway",
    "MlflowVersionInfo",
    "artifact_digest",
    "log_and_register",
    "sanitize_key",
]
