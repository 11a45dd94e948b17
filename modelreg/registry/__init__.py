"""The registry: the only write path of modelreg."""

from __future__ import annotations

from modelreg.registry.core import Registry, TransitionResult, require_ok, unmet_lines

__all__ = ["Registry", "TransitionResult", "require_ok", "unmet_lines"]
