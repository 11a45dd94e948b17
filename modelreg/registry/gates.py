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
from modelreg.domain.stages import RiskTier, values

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
TIER_CLAUSES = ("NFRA-2025-24.1",)

# The basic lifecycle rules, in one place: the registry applies them at the submit gate whatever the policy
# says, and the policy pack's requirement predicates of the same ids (``modelreg.governance.requirements``)
# are these functions bound to the pack's control (its clauses and control id).


def _unmet(requirement: str, en: str, zh: str, clauses: tuple[str, ...], control: Any) -> Unmet:
    if control is not None:
        return Unmet(control.id, en, zh, tuple(control.clauses), control_id=control.id)
    return Unmet(requirement, en, zh, clauses)


def owner_assigned(ctx: GateContext, control: Any = None) -> list[Unmet]:
    if ctx.version.owner.strip():
        return []
    return [
        _unmet("owner_assigned", "the model has no owner", "模型未指定负责人", LIFECYCLE_CLAUSES, control)
    ]


def purpose_stated(ctx: GateContext, control: Any = None) -> list[Unmet]:
    if ctx.version.purpose.strip():
        return []
    return [
        _unmet(
            "purpose_stated",
            "the model's purpose is not stated",
            "未说明模型用途",
            LIFECYCLE_CLAUSES,
            control,
        )
    ]


def risk_tier_assigned(ctx: GateContext, control: Any = None) -> list[Unmet]:
    if ctx.version.risk_tier in values(RiskTier):
        return []
    en = "the model has no risk tier (high/medium/low)" if control is None else "the model has no risk tier"
    return [_unmet("risk_tier_assigned", en, "未确定模型风险等级", TIER_CLAUSES, control)]


BASIC_REQUIREMENTS: dict[str, list[Requirement]] = {
    "submit": [owner_assigned, purpose_stated, risk_tier_assigned],
    "deploy": [],
    "retire": [],
}
