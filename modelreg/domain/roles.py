"""Who may do what, declared in one place. Deny by default: an action with no entry here is refused.

Segregation of duties that depends on the model (the developer cannot validate or approve their own model)
lives in ``modelreg.domain.duties``; this table only says which roles may attempt an action at all.
"""

from __future__ import annotations

import enum


class Role(str, enum.Enum):
    DEVELOPER = "developer"
    VALIDATOR = "validator"
    APPROVER = "approver"
    OPERATOR = "operator"
    AUDITOR = "auditor"
    ADMIN = "admin"


ANYONE = "anyone"  # read-only actions: the answer is the same whoever asks, and nothing is written

# action id -> roles allowed (any one suffices), or ANYONE for reads.
PERMISSIONS: dict[str, frozenset[str] | str] = {
    # setup and identity
    "init": frozenset({Role.ADMIN.value}),  # a fresh database (no users yet) may be initialised by anybody
    "user.add": frozenset({Role.ADMIN.value}),  # the very first user is the bootstrap admin
    "user.roles": frozenset({Role.ADMIN.value}),
    "audit.rotate_key": frozenset({Role.ADMIN.value}),
    "user.list": ANYONE,
    "keys.register": frozenset(r.value for r in Role),  # a user registers their own public key
    # lifecycle
    "register": frozenset({Role.DEVELOPER.value}),
    "attach_data": frozenset({Role.DEVELOPER.value, Role.VALIDATOR.value}),
    "update_card": frozenset({Role.DEVELOPER.value}),
    "submit": frozenset({Role.DEVELOPER.value}),
    "send_back": frozenset({Role.VALIDATOR.value, Role.APPROVER.value}),
    "deploy": frozenset({Role.APPROVER.value, Role.OPERATOR.value}),
    "suspend": frozenset({Role.APPROVER.value, Role.VALIDATOR.value, Role.OPERATOR.value, Role.ADMIN.value}),
    "resume": frozenset({Role.APPROVER.value}),
    "retire": frozenset({Role.APPROVER.value, Role.ADMIN.value}),
    # governance (gates issue)
    "validate": frozenset({Role.VALIDATOR.value}),
    "monitor": frozenset({Role.OPERATOR.value, Role.VALIDATOR.value}),
    "precheck": frozenset({Role.DEVELOPER.value, Role.VALIDATOR.value}),
    "approve": frozenset({Role.VALIDATOR.value, Role.APPROVER.value}),
    "reject": frozenset({Role.VALIDATOR.value, Role.APPROVER.value}),
    "attest": frozenset(r.value for r in Role if r is not Role.AUDITOR),
    "waive": frozenset({Role.APPROVER.value}),
    "sync": frozenset({Role.ADMIN.value, Role.OPERATOR.value}),
    # recording what `sync --check` found (a read for anyone) is a write: the scheduler's or an admin's
    "sync.record_check": frozenset({Role.ADMIN.value, Role.OPERATOR.value}),
    # late outcomes: who feeds monitoring feeds the outcomes too (never the model's developer role)
    "outcomes.add": frozenset({Role.OPERATOR.value, Role.VALIDATOR.value}),
    # model risk operations: findings tracked until remediated (acceptance also needs the policy's role)
    "finding.assign": frozenset({Role.VALIDATOR.value, Role.APPROVER.value, Role.ADMIN.value}),
    "finding.propose": frozenset({Role.DEVELOPER.value, Role.VALIDATOR.value, Role.APPROVER.value}),
    "finding.close": frozenset({Role.VALIDATOR.value, Role.APPROVER.value, Role.ADMIN.value}),
    # audit and evidence
    "audit.checkpoint": frozenset({Role.AUDITOR.value, Role.ADMIN.value}),
    "evidence.pack": frozenset(
        {Role.AUDITOR.value, Role.ADMIN.value, Role.APPROVER.value, Role.VALIDATOR.value}
    ),
    # reads
    "list": ANYONE,
    "show": ANYONE,
    "findings": ANYONE,
    "audit.log": ANYONE,
    "audit.verify": ANYONE,
    "audit.proof": ANYONE,
    "evidence.verify": ANYONE,
    "policy.read": ANYONE,
    "sync.check": ANYONE,
    "outcomes.report": ANYONE,
}


def allowed(action: str, roles: frozenset[str] | set[str]) -> bool:
    rule = PERMISSIONS.get(action)
    if rule is None:
        return False
    if rule == ANYONE:
        return True
    return bool(set(roles) & rule)  # type: ignore[operator]
