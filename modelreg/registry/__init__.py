"""The registry: the only write path of modelreg.

``Registry`` is assembled from its parts, one module each: ``core`` (the unit of work ``change`` and its read
twin ``reading``: read its docstring first), ``users``, ``versions``, ``lifecycle`` (the transition table
applied), ``audit`` and ``gates`` (the requirement mechanism gates plug into).
"""

from __future__ import annotations

from modelreg.registry.audit import AuditMixin, require_ok
from modelreg.registry.core import Change, Reading, RegistryCore
from modelreg.registry.gates import GateContext, Requirement, Unmet
from modelreg.registry.lifecycle import LifecycleMixin, TransitionResult
from modelreg.registry.users import ROLE_NAMES, UsersMixin
from modelreg.registry.versions import TIER_NAMES, VersionsMixin

__all__ = [
    "ROLE_NAMES",
    "TIER_NAMES",
    "Change",
    "GateContext",
    "Reading",
    "Registry",
    "Requirement",
    "TransitionResult",
    "Unmet",
    "require_ok",
    "unmet_lines",
]


class Registry(UsersMixin, VersionsMixin, LifecycleMixin, AuditMixin, RegistryCore):
    """The registry on one database. ``actor`` is the acting user for state changes."""


def unmet_lines(unmet: list[dict]) -> list[str]:
    return [Unmet(**{k: (tuple(v) if k == "clause_ids" else v) for k, v in u.items()}).line() for u in unmet]
