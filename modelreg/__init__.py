"""modelreg: model and algorithm risk registry (模型与算法风险登记库).

The public Python API: ``connect()`` gives a ``Client`` on the configured registry (mlflow.env and the
environment, exactly like the CLI). Nothing heavy is imported here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from modelreg.client import Client
    from modelreg.registry import Registry

__all__ = ["Client", "Registry", "connect"]


def connect(*, user: str | None = None, database_url: str | None = None) -> Client:
    """A client on the registry that ``mlflow.env`` / the environment configure; also points plain
    ``mlflow`` calls in this process at the same tracking store."""
    from modelreg import settings as settings_mod
    from modelreg.client import Client, open_registry

    settings = settings_mod.load()
    if database_url:
        settings = settings.with_overrides(database_url=database_url, url=None)
    if settings.url:  # MODELREG_URL: the shared registry service, requests signed with the user's key
        from modelreg.service.client import RemoteRegistry

        return Client(RemoteRegistry(settings, actor=user))  # type: ignore[arg-type]
    settings.apply_mlflow_environ()
    return Client(open_registry(settings, actor=user))


def __getattr__(name: str):
    if name == "Client":
        from modelreg.client import Client

        return Client
    if name == "Registry":
        from modelreg.registry import Registry

        return Registry
    raise AttributeError(name)
