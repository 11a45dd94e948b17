"""Rows of governance (evaluations, monitor results, findings, artifacts links, signed records): inserts and
queries, mapped to ``modelreg.domain.records`` values. Rows never leave this module.

Writers are called only from inside a registry unit of work (``Registry.change``), which holds the
transaction and records the audit event."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from modelreg import clock
from modelreg.domain.records import StoredArtifactLink, StoredEvaluation, StoredFinding, StoredSignedRecord
from modelreg.store.tables import (
    ArtifactRow,
    EvaluationArtifactRow,
    EvaluationRow,
    FindingRow,
    MonitorResultRow,
    SignedRecordRow,
    UserRow,
)


def _evaluation(row: EvaluationRow) -> StoredEvaluation:
    return StoredEvaluation(
        id=row.id,
        version_id=row.version_id,
        purpose=row.purpose,
        gate=row.gate,
        tier=row.tier,
        policy_id=row.policy_id,
        policy_version=row.policy_version,
        policy_digest=row.policy_digest,
        model_artifact_digest=row.model_artifact_digest,
        data=dict(row.data or {}),
        status=row.status,
        digest=row.digest,
        mlflow_run_id=row.mlflow_run_id,
        created_by=row.created_by,
        created_at=clock.to_utc(row.created_at),
    )


def _finding(row: FindingRow) -> StoredFinding:
    return StoredFinding(
        id=row.id,
        evaluation_id=row.evaluation_id,
        version_id=row.version_id,
        control_id=row.control_id,
        status=row.status,
        severity=row.severity,
        clause_ids=tuple(row.clause_ids or ()),
        detail=dict(row.detail or {}),
    )


# -- queries ------------------------------------------------------------------------------------------


def latest_evaluation(session: Session, version_id: int, purpose: str) -> StoredEvaluation | None:
    row = session.execute(
        select(EvaluationRow)
        .where(EvaluationRow.version_id == version_id, EvaluationRow.purpose == purpose)
        .order_by(EvaluationRow.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    return _evaluation(row) if row is not None else None


def evaluations(session: Session, version_id: int) -> list[StoredEvaluation]:
    return [
        _evaluation(r)
        for r in session.execute(
            select(EvaluationRow).where(EvaluationRow.version_id == version_id).order_by(EvaluationRow.id)
        ).scalars()
    ]


def evaluation(session: Session, evaluation_id: int) -> StoredEvaluation:
    # populate_existing: the run id may have been set by an UPDATE the identity map did not see
    return _evaluation(session.get_one(EvaluationRow, evaluation_id, populate_existing=True))


def findings(session: Session, evaluation_id: int) -> list[StoredFinding]:
    return [
        _finding(r)
        for r in session.execute(
            select(FindingRow).where(FindingRow.evaluation_id == evaluation_id).order_by(FindingRow.id)
        ).scalars()
    ]


def findings_by_evaluation(
    session: Session, version_id: int, evaluation_ids: list[int]
) -> dict[int, list[StoredFinding]]:
    """The findings of many evaluations of one version in one query (findings carry version_id, indexed)."""
    out: dict[int, list[StoredFinding]] = {i: [] for i in evaluation_ids}
    for r in session.execute(
        select(FindingRow).where(FindingRow.version_id == version_id).order_by(FindingRow.id)
    ).scalars():
        if r.evaluation_id in out:
            out[r.evaluation_id].append(_finding(r))
    return out


def monitor_results(session: Session, evaluation_id: int) -> dict[str, dict]:
    rows = session.execute(
        select(MonitorResultRow).where(MonitorResultRow.evaluation_id == evaluation_id)
    ).scalars()
    return {r.kind: dict(r.result) for r in rows}


def monitor_results_by_evaluation(
    session: Session, version_id: int, evaluation_ids: list[int]
) -> dict[int, dict[str, dict]]:
    out: dict[int, dict[str, dict]] = {i: {} for i in evaluation_ids}
    q = (
        select(MonitorResultRow)
        .join(EvaluationRow, EvaluationRow.id == MonitorResultRow.evaluation_id)
        .where(EvaluationRow.version_id == version_id)
    )
    for r in session.execute(q).scalars():
        if r.evaluation_id in out:
            out[r.evaluation_id][r.kind] = dict(r.result)
    return out


def signed_records(session: Session, version_id: int, kind: str | None = None) -> list[StoredSignedRecord]:
    q = (
        select(SignedRecordRow, UserRow.public_key_pem)
        .outerjoin(UserRow, UserRow.name == SignedRecordRow.actor)
        .where(SignedRecordRow.version_id == version_id)
    )
    if kind is not None:
        q = q.where(SignedRecordRow.kind == kind)
    return [
        StoredSignedRecord(
            id=row.id,
            version_id=row.version_id,
            kind=row.kind,
            role=row.role,
            control_id=row.control_id,
            actor=row.actor,
            payload=bytes(row.payload),
            signature=dict(row.signature),
            until=clock.to_utc(row.until) if row.until else None,
            at=clock.to_utc(row.at),
            signer_public_key_pem=pem,
        )
        for row, pem in session.execute(q.order_by(SignedRecordRow.id))
    ]


def artifact_links(session: Session, evaluation_ids: list[int]) -> list[StoredArtifactLink]:
    if not evaluation_ids:
        return []
    q = (
        select(EvaluationArtifactRow, ArtifactRow.media_type)
        .join(ArtifactRow, ArtifactRow.sha256 == EvaluationArtifactRow.sha256)
        .where(EvaluationArtifactRow.evaluation_id.in_(evaluation_ids))
        .order_by(
            EvaluationArtifactRow.evaluation_id,
            EvaluationArtifactRow.monitor_kind,
            EvaluationArtifactRow.name,
        )
    )
    return [
        StoredArtifactLink(link.evaluation_id, link.monitor_kind, link.name, link.sha256, media)
        for link, media in session.execute(q)
    ]


# -- writes (inside a registry unit of work) ----------------------------------------------------------


def add_evaluation(
    session: Session,
    *,
    version_id: int,
    purpose: str,
    gate: str,
    tier: str,
    policy_id: str,
    policy_version: str,
    policy_digest: str,
    model_artifact_digest: str | None,
    data: dict,
    status: str,
    digest: str,
    created_by: str,
    created_at: datetime,
) -> int:
    row = EvaluationRow(
        version_id=version_id,
        purpose=purpose,
        gate=gate,
        tier=tier,
        policy_id=policy_id,
        policy_version=policy_version,
        policy_digest=policy_digest,
        model_artifact_digest=model_artifact_digest,
        data=data,
        status=status,
        digest=digest,
        mlflow_run_id=None,
        created_by=created_by,
        created_at=created_at,
    )
    session.add(row)
    session.flush()
    return row.id


def add_monitor_result(session: Session, evaluation_id: int, kind: str, result: dict, digest: str) -> None:
    session.add(MonitorResultRow(evaluation_id=evaluation_id, kind=kind, result=result, digest=digest))


def link_artifact(session: Session, evaluation_id: int, kind: str, name: str, sha256: str) -> None:
    session.add(
        EvaluationArtifactRow(evaluation_id=evaluation_id, monitor_kind=kind, name=name, sha256=sha256)
    )


def add_finding(
    session: Session,
    *,
    evaluation_id: int,
    version_id: int,
    control_id: str,
    status: str,
    severity: str,
    clause_ids: list[str],
    detail: dict,
) -> None:
    session.add(
        FindingRow(
            evaluation_id=evaluation_id,
            version_id=version_id,
            control_id=control_id,
            status=status,
            severity=severity,
            clause_ids=clause_ids,
            detail=detail,
        )
    )


def set_evaluation_run(session: Session, evaluation_id: int, run_id: str) -> None:
    session.execute(
        update(EvaluationRow)
        .where(EvaluationRow.id == evaluation_id)
        .values(mlflow_run_id=run_id)
        .execution_options(synchronize_session=False)
    )


def add_signed_record(
    session: Session,
    *,
    version_id: int,
    kind: str,
    role: str | None,
    control_id: str | None,
    actor: str,
    payload: bytes,
    signature: dict,
    until: datetime | None,
    at: datetime,
) -> int:
    row = SignedRecordRow(
        version_id=version_id,
        kind=kind,
        role=role,
        control_id=control_id,
        actor=actor,
        payload=payload,
        signature=signature,
        until=until,
        at=at,
    )
    session.add(row)
    session.flush()
    return row.id
