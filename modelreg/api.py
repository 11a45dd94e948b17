"""Assembling a Registry with its plug-ins. The CLI and the Python API both come through here."""

from __future__ import annotations

from modelreg.registry import Registry
from modelreg.settings import Settings


def open_registry(settings: Settings, *, actor: str | None = None) -> Registry:
    registry = Registry(settings, actor=actor)
    _install_plugins(registry)
    return registry


def _install_plugins(registry: Registry) -> None:
    """Governance gate requirements (policy controls, approvals, attestations) and the MLflow projection plug
    into the registry's one gate mechanism; each is optional so the core works on its own."""
    from modelreg import governance
    from modelreg.integrations.mlflow import projection as mlflow_sync

    governance.install(registry)
    mlflow_sync.install(registry)
