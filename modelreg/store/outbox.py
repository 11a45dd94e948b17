"""The MLflow outbox: projection work recorded in the same transaction as the audit event that caused it.

A state change of a version linked to MLflow (deploy, suspend, resume, retire, ...) adds one row here beside
its audit event. Nothing is written to MLflow inside the registry transaction any more: a drainer applies the
rows after commit, and the next command (or ``sync``) drains whatever a crash left behind. The drainer holds
the registry's write lock while it reads the committed state and writes MLflow, so what it projects is always
a state the registry committed: MLflow can be behind the registry, never ahead of it.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from modelreg import clock
from modelreg.store.tables import AuditStateRow, OutboxRow

SESSION_FLAG = "modelreg_outbox_pending"


def enqueue(session: Session, targets: Iterable[tuple[str, str]]) -> int:
    """Record (model, version) pairs to project, tied to the event just appended in this transaction."""
    state = session.get(AuditStateRow, 1)
    seq = int(state.size) - 1 if state is not None else -1
    now = clock.now()
    n = 0
    for model, version in targets:
        session.add(OutboxRow(audit_seq=seq, model=model, version=version, created_at=now))
        n += 1
    if n:
        session.info[SESSION_FLAG] = True
    return n


def pending(session: Session, limit: int = 1000) -> list[OutboxRow]:
    return list(
        session.execute(
            select(OutboxRow).where(OutboxRow.applied_at.is_(None)).order_by(OutboxRow.id).limit(limit)
        ).scalars()
    )


def pending_count(session: Session) -> int:
    return int(
        session.execute(
            select(func.count()).select_from(OutboxRow).where(OutboxRow.applied_at.is_(None))
        ).scalar_one()
    )


def mark_applied(session: Session, ids: list[int]) -> None:
    if ids:
        session.execute(
            update(OutboxRow)
            .where(OutboxRow.id.in_(ids))
            .values(applied_at=clock.now())
            .execution_options(synchronize_session=False)
        )
