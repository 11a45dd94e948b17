"""The lifecycle as one explicit transition table, and the enums persisted as stable strings.

develop → validate → deploy → retire, with "sent back" validate → develop and retirement from any earlier stage.
Each move names the action that performs it (which is also its permission id in ``modelreg.domain.roles``),
the gate whose requirements must hold, the audit event it writes and whether it needs a reason. Suspension is
not a stage: it is a flag on a deployed version (emergency human intervention, NFRA 2025 item 24 人工干预机制),
changed by the two flag moves below. Deploying over a deployed version replaces it, as one of
``REPLACEMENTS``. Which evaluation a gate reads, and which gate, permission and stage an evaluation of each
purpose needs, are here too, so the registry and governance read one table.

The enums are ``str``-valued: what is persisted and what the CLI accepts are the enum values, unchanged.
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


class DataRole(str, enum.Enum):
    TRAINING = "training"
    VALIDATION = "validation"
    HOLDOUT = "holdout"
    REFERENCE = "reference"
    MONITORING = "monitoring"


def values(enum_cls: type[enum.Enum]) -> tuple[str, ...]:
    """The persisted strings of an enum, in declaration order (for messages and click.Choice)."""
    return tuple(str(m.value) for m in enum_cls)


@dataclass(frozen=True)
class Transition:
    action: str  # stable id of the command that performs it; also its permission id
    source: Stage
    target: Stage
    gate: str | None  # the policy gate whose requirements apply ("submit", "deploy", "retire") or None
    needs_reason: bool
    label_en: str
    label_zh: str
    event: str = ""  # the audit event the move writes


TRANSITIONS: tuple[Transition, ...] = (
    Transition(
        "submit",
        Stage.DEVELOP,
        Stage.VALIDATE,
        "submit",
        False,
        "submitted for validation",
        "提交验证",
        "version.submitted",
    ),
    Transition(
        "send_back",
        Stage.VALIDATE,
        Stage.DEVELOP,
        None,
        True,
        "sent back to development",
        "退回开发",
        "version.sent_back",
    ),
    Transition(
        "deploy", Stage.VALIDATE, Stage.DEPLOY, "deploy", False, "deployed", "部署上线", "version.deployed"
    ),
    Transition("retire", Stage.DEPLOY, Stage.RETIRE, "retire", True, "retired", "退出", "version.retired"),
    Transition("retire", Stage.DEVELOP, Stage.RETIRE, "retire", True, "retired", "退出", "version.retired"),
    Transition("retire", Stage.VALIDATE, Stage.RETIRE, "retire", True, "retired", "退出", "version.retired"),
)


@dataclass(frozen=True)
class FlagMove:
    """Suspend or resume: the version stays in ``stage``; its suspended flag goes to ``suspended``."""

    action: str
    stage: Stage
    suspended: bool
    event: str
    label_en: str
    label_zh: str


FLAG_MOVES: dict[str, FlagMove] = {
    "suspend": FlagMove("suspend", Stage.DEPLOY, True, "version.suspended", "suspended", "暂停"),
    "resume": FlagMove("resume", Stage.DEPLOY, False, "version.resumed", "resumed", "恢复运行"),
}


@dataclass(frozen=True)
class Replacement:
    """What happens to the deployed version when another one is deployed over it."""

    option: str  # the value of --replace
    target: Stage
    gate: str | None  # the gate the replaced version must pass (retiring it is a retirement too)
    action: str  # recorded in the replaced version's history


REPLACEMENTS: dict[str, Replacement] = {
    "retire": Replacement("retire", Stage.RETIRE, "retire", "replace.retire"),
    "demote": Replacement("demote", Stage.VALIDATE, None, "replace.demote"),
}


@dataclass(frozen=True)
class EvaluationPurpose:
    """An evaluation run of one purpose: the gate whose controls it runs, its permission, the stage it needs."""

    purpose: str
    gate: str
    permission: str
    stage: Stage


EVALUATION_PURPOSES: dict[str, EvaluationPurpose] = {
    "precheck": EvaluationPurpose("precheck", "submit", "precheck", Stage.DEVELOP),
    "validation": EvaluationPurpose("validation", "deploy", "validate", Stage.VALIDATE),
    "monitoring": EvaluationPurpose("monitoring", "monitor", "monitor", Stage.DEPLOY),
}

# The evaluation whose findings a gate's machine controls are judged by.
GATE_EVALUATION: dict[str, str] = {"submit": "precheck", "deploy": "validation"}

GATES: tuple[str, ...] = ("submit", "deploy", "retire")


def find_transition(action: str, source: Stage) -> Transition | None:
    for t in TRANSITIONS:
        if t.action == action and t.source == source:
            return t
    return None


def allowed_actions(source: Stage) -> list[str]:
    return [t.action for t in TRANSITIONS if t.source == source]


def gate_of(action: str) -> str | None:
    """The gate an action passes (``gate_check``'s default), whatever the source stage."""
    return next((t.gate for t in TRANSITIONS if t.action == action), None)
