"""Evidence packs: a zip an auditor verifies offline (manifest with SHA-256 of every file, Ed25519 signature,
bilingual HTML index, model card, algorithm disclosure, policy matrix, monitor reports, audit-trail extract
with inclusion proofs).

``verify`` and ``recompute`` load without SQLAlchemy, MLflow or the registry (``recompute`` imports the
monitors only when called); ``build_pack`` needs the registry and is imported on first use.
"""

from __future__ import annotations

from typing import Any

# Imported eagerly so that the name ``recompute`` is the function, not the submodule of the same name.
from modelreg.evidence.recompute import RecomputeResult, recompute
from modelreg.evidence.verify import VerifyResult, verify_pack

__all__ = ["PackSummary", "RecomputeResult", "VerifyResult", "build_pack", "recompute", "verify_pack"]


def __getattr__(name: str) -> Any:
    if name in ("build_pack", "PackSummary"):
        from modelreg.evidence import pack

        return getattr(pack, name)
    raise AttributeError(name)
