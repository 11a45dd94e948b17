"""The lifecycle as one explicit transition table.

develop → validate → deploy → retire, with "sent back" validate → develop and retirement from any earlier stage.
Each move names the action that performs it and the gate whose requirements must hold. Suspension is not a
stage: it is a flag on a deployed version (emergency human intervention, NFRA 2025 item 24 人工干预机制).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Stage(str, enum.Enum):
    DEVELOP = "develop"
    VALIDATE = "validate"
    DEPLOY = "deploy"
    RETIRE = "retire"


class RiskTier(str, enum.Enum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


@dataclass(frozen=True)
class Transition:
    action: str  # stable id of the command that performs it
    source: Stage
    target: Stage
    gate: str | None  # the policy gate whose requirements apply ("submit", "deploy", "retire") or None
    needs_reason: bool
    label_en: str
    label_zh: str


TRANSITIONS: tuple[Transition, ...] = (
    Transition(
        "submit", Stage.DEVELOP, Stage.VALIDATE, "submit", False, "submitted for validation", "提交验证"
    ),
    Transition(
        "send_back", Stage.VALIDATE, Stage.DEVELOP, None, True, "sent back to development", "退回开发"
    ),
    Transition("deploy", Stage.VALIDATE, Stage.DEPLOY, "deploy", False, "deployed", "部署上线"),
    Transition("retire", Stage.DEPLOY, Stage.RETIRE, "retire", True, "retired", "退出"),
    Transition("retire", Stage.DEVELOP, Stage.RETIRE, "retire", True, "retired", "退出"),
    Transition("retire", Stage.VALIDATE, Stage.RETIRE, "retire", True, "retired", "退出"),
)


def find_transition(action: str, source: Stage) -> Transition | None:
    for t in TRANSITIONS:
        if t.action == action and t.source == source:
            return t
    return None


def allowed_actions(source: Stage) -> list[str]:
    return [t.action for t in TRANSITIONS if t.source == source]
