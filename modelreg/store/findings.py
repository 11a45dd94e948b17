"""Rows of tracked findings (model risk operations): inserts, updates and queries, mapped to
``modelreg.domain.findings.TrackedFinding``. Rows never leave this module.

Writers are called only from inside a registry unit of work (``Registry.change``), which holds the
transaction and records the audit event."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from modelreg import clock
from modelreg.domain.findings import CLOSED, TrackedFinding
from modelreg.store.tables import EvaluationRow, FindingRow, ModelRow, TrackedFindingRow, VersionRow


def _finding(row: TrackedFindingRow, model: str, version: str) -> TrackedFinding:
    return TrackedFinding(
        id=row.id,
        model=model,
        version=version,
        control_id=row.control_id,
        purpose=row.purpose,
        status=row.status,
        severity=row.severity,
        clause_ids=tuple(row.clause_ids or ()),
        title_zh=row.title_zh,
        title_en=row.title_en,
        owner=row.owner,
        due_at=clock.to_utc(row.due_at),
        opened_at=clock.to_utc(row.opened_at),
        opened_evaluation_id=row.opened_evaluation_id,
        last_evaluation_id=row.last_evaluation_id,
        occurrences=row.occurrences,
        last_result=dict(row.last_result or {}),
        remediation=row.remediation,
        closed_at=clock.to_utc(row.closed_at) if row.closed_at else None,
        closed_by=row.closed_by,
        closure=dict(row.closure) if row.closure else None,
        updated_at=clock.to_utc(row.updated_at),
    )


def _query(session: Session, *conditions: Any, lock: bool = False) -> list[TrackedFinding]:
    q = (
        select(TrackedFindingRow, ModelRow.name, VersionRow.version)
        .join(VersionRow, VersionRow.id == TrackedFindingRow.version_id)
        .join(ModelRow, ModelRow.id == VersionRow.model_id)
        .where(*conditions)
        .order_by(TrackedFindingRow.id)
    )
    if lock:
        # Two people changing one finding at once: the second waits and then sees the first's change.
        q = q.with_for_update(of=TrackedFindingRow)
    return [_finding(r, m, v) for r, m, v in session.execute(q)]


def _row(session: Session, finding_id: int) -> tuple[TrackedFindingRow, str, str]:
    found = session.execute(
        select(TrackedFindingRow, ModelRow.name, VersionRow.version)
        .join(VersionRow, VersionRow.id == TrackedFindingRow.version_id)
        .join(ModelRow, ModelRow.id == VersionRow.model_id)
        .where(TrackedFindingRow.id == int(finding_id))
    ).one()
    return found[0], found[1], found[2]


# -- queries ------------------------------------------------------------------------------------------


def find(
    session: Session,
    *,
    version_id: int | None = None,
    model_id: int | None = None,
    status: str | None = None,
    owner: str | None = None,
) -> list[TrackedFinding]:
    """Tracked findings, oldest first. ``status``: a status, ``unclosed`` (not closed) or None for all."""
    conditions: list[Any] = []
    if version_id is not None:
        conditions.append(TrackedFindingRow.version_id == version_id)
    if model_id is not None:
        conditions.append(ModelRow.id == model_id)
    if status == "unclosed":
        conditions.append(TrackedFindingRow.status != CLOSED)
    elif status is not None:
        conditions.append(TrackedFindingRow.status == status)
    if owner is not None:
        conditions.append(TrackedFindingRow.owner == owner)
    return _query(session, *conditions)


def get(session: Session, finding_id: int, *, lock: bool = False) -> TrackedFinding | None:
    """One finding (``lock``: its row locked for the rest of the transaction, where the database can)."""
    found = _query(session, TrackedFindingRow.id == int(finding_id), lock=lock)
    return found[0] if found else None


def unclosed(session: Session, version_id: int, purpose: str | None = None) -> list[TrackedFinding]:
    conditions = [TrackedFindingRow.version_id == version_id, TrackedFindingRow.status != CLOSED]
    if purpose is not None:
        conditions.append(TrackedFindingRow.purpose == purpose)
    return _query(session, *conditions)


def open_counts(session: Session, version_id: int) -> dict[str, int]:
    """Unclosed findings of a version by severity."""
    out: dict[str, int] = {}
    for r in session.execute(
        select(TrackedFindingRow.severity).where(
            TrackedFindingRow.version_id == version_id, TrackedFindingRow.status != CLOSED
        )
    ).scalars():
        out[r] = out.get(r, 0) + 1
    return out


def later_pass(
    session: Session,
    *,
    version_id: int,
    purpose: str,
    control_id: str,
    after_evaluation_id: int,
    passed: Iterable[str],
) -> dict | None:
    """The newest run of ``purpose`` after ``after_evaluation_id`` in which ``control_id`` passed."""
    hit = session.execute(
        select(EvaluationRow.id, EvaluationRow.digest)
        .join(FindingRow, FindingRow.evaluation_id == EvaluationRow.id)
        .where(
            EvaluationRow.version_id == version_id,
            EvaluationRow.purpose == purpose,
            EvaluationRow.id > after_evaluation_id,
            FindingRow.control_id == control_id,
            FindingRow.status.in_(list(passed)),
        )
        .order_by(EvaluationRow.id.desc())
        .limit(1)
    ).first()
    return None if hit is None else {"evaluation_id": hit[0], "evaluation_digest": hit[1]}


# -- writers (inside a unit of work) -------------------------------------------------------------------


def add(
    session: Session,
    *,
    version_id: int,
    control_id: str,
    purpose: str,
    status: str,
    severity: str,
    clause_ids: list[str],
    title_zh: str,
    title_en: str,
    owner: str,
    due_at: datetime,
    opened_at: datetime,
    evaluation_id: int,
    last_result: dict,
) -> TrackedFinding:
    row = TrackedFindingRow(
        version_id=version_id,
        control_id=control_id,
        purpose=purpose,
        status=status,
        severity=severity,
        clause_ids=list(clause_ids),
        title_zh=title_zh,
        title_en=title_en,
        owner=owner,
        due_at=due_at,
        opened_at=opened_at,
        opened_evaluation_id=evaluation_id,
        last_evaluation_id=evaluation_id,
        occurrences=1,
        last_result=last_result,
        updated_at=opened_at,
    )
    session.add(row)
    session.flush()
    return _finding(*_row(session, row.id))


def _update(session: Session, finding_id: int, **values: Any) -> TrackedFinding:
    row, model, version = _row(session, finding_id)
    for k, v in values.items():
        setattr(row, k, v)
    session.flush()
    return _finding(row, model, version)


def record_repeat(
    session: Session, finding_id: int, *, evaluation_id: int, last_result: dict, at: datetime
) -> TrackedFinding:
    """The control failed again in a later run: one more occurrence."""
    row, _, _ = _row(session, finding_id)
    return _update(
        session,
        finding_id,
        occurrences=row.occurrences + 1,
        last_evaluation_id=evaluation_id,
        last_result=last_result,
        updated_at=at,
    )


def set_closed(
    session: Session, finding_id: int, *, closed_by: str, closure: dict, at: datetime
) -> TrackedFinding:
    return _update(
        session, finding_id, status=CLOSED, closed_at=at, closed_by=closed_by, closure=closure, updated_at=at
    )


def set_assignment(
    session: Session, finding_id: int, *, owner: str | None, due_at: datetime | None, at: datetime
) -> TrackedFinding:
    values: dict[str, Any] = {"updated_at": at}
    if owner is not None:
        values["owner"] = owner
    if due_at is not None:
        values["due_at"] = due_at
    return _update(session, finding_id, **values)


def set_proposed(
    session: Session, finding_id: int, *, status: str, remediation: str, at: datetime
) -> TrackedFinding:
    return _update(session, finding_id, status=status, remediation=remediation, updated_at=at)
