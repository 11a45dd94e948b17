"""Gate requirements: pluggable functions that say what is unmet before a transition.

A requirement takes a ``GateContext`` and returns the list of ``Unmet`` items (empty when satisfied). The
registry evaluates every requirement registered for the gate and refuses with the complete list. The basic
requirements live here; the policy pack's controls, approvals and attestations register into the same table
(``modelreg.governance``), so there is one mechanism, not two paths.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from modelreg.domain.entities import Dataset, ModelVersion

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


@dataclass(frozen=True)
class Unmet:
    requirement: str  # stable id, e.g. "owner_assigned" or a control id
    message_en: str
    message_zh: str
    clause_ids: tuple[str, ...] = ()
    control_id: str | None = None

    def to_dict(self) -> dict:
        return {
            "requirement": self.requirement,
            "control_id": self.control_id,
            "message_en": self.message_en,
            "message_zh": self.message_zh,
            "clause_ids": list(self.clause_ids),
        }

    def line(self) -> str:
        clauses = f" [{', '.join(self.clause_ids)}]" if self.clause_ids else ""
        return f"{self.requirement}: {self.message_en} / {self.message_zh}{clauses}"


@dataclass
class GateContext:
    gate: str
    action: str
    actor: str
    version: ModelVersion
    version_id: int
    datasets: list[Dataset]
    session: Session
    options: dict[str, Any] = field(default_factory=dict)


Requirement = Callable[[GateContext], list[Unmet]]

LIFECYCLE_CLAUSES = ("NFRA-2025-25.1", "CBIRC-2022-13.1")


def owner_assigned(ctx: GateContext) -> list[Unmet]:
    if ctx.version.owner.strip():
        return []
    return [Unmet("owner_assigned", "the model has no owner", "模型未指定负责人", LIFECYCLE_CLAUSES)]


def purpose_stated(ctx: GateContext) -> list[Unmet]:
    if ctx.version.purpose.strip():
        return []
    return [Unmet("purpose_stated", "the model's purpose is not stated", "未说明模型用途", LIFECYCLE_CLAUSES)]


def risk_tier_assigned(ctx: GateContext) -> list[Unmet]:
    if ctx.version.risk_tier in ("high", "medium", "low"):
        return []
    return [
        Unmet(
            "risk_tier_assigned",
            "the model has no risk tier (high/medium/low)",
            "未确定模型风险等级",
            ("NFRA-2025-24.1",),
        )
    ]


BASIC_REQUIREMENTS: dict[str, list[Requirement]] = {
    "submit": [owner_assigned, purpose_stated, risk_tier_assigned],
    "deploy": [],
    "retire": [],
}
