"""Queries that map rows to domain objects. Rows never leave this module."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from modelreg import clock
from modelreg.domain.entities import Dataset, Model, ModelVersion, TransitionRecord, User
from modelreg.domain.stages import Stage
from modelreg.errors import NotFound
from modelreg.store.tables import DatasetRow, ModelRow, TransitionRow, UserRow, VersionRow


def to_user(row: UserRow) -> User:
    return User(
        name=row.name,
        roles=tuple(row.roles),
        key_id=row.key_id,
        public_key_pem=row.public_key_pem,
        created_at=clock.to_utc(row.created_at),
    )


def to_model(row: ModelRow) -> Model:
    return Model(
        name=row.name,
        owner=row.owner,
        purpose=row.purpose,
        risk_tier=row.risk_tier,
        business_line=row.business_line,
        created_by=row.created_by,
        created_at=clock.to_utc(row.created_at),
    )


def to_version(row: VersionRow, model: ModelRow) -> ModelVersion:
    return ModelVersion(
        model=model.name,
        version=row.version,
        stage=Stage(row.stage),
        suspended=row.suspended,
        registered_by=row.registered_by,
        created_at=clock.to_utc(row.created_at),
        updated_at=clock.to_utc(row.updated_at),
        owner=model.owner,
        risk_tier=model.risk_tier,
        purpose=model.purpose,
        business_line=model.business_line,
        mlflow_run_id=row.mlflow_run_id,
        model_uri=row.model_uri,
        artifact_digest=row.artifact_digest,
        mlflow=dict(row.mlflow_info or {}),
        model_card=dict(row.model_card or {}),
    )


def user_row(session: Session, name: str) -> UserRow | None:
    return session.execute(select(UserRow).where(UserRow.name == name)).scalar_one_or_none()


def count_users(session: Session) -> int:
    return session.execute(select(func.count()).select_from(UserRow)).scalar_one()


def model_row(session: Session, name: str) -> ModelRow | None:
    return session.execute(select(ModelRow).where(ModelRow.name == name)).scalar_one_or_none()


def version_rows(session: Session, name: str, version: str) -> tuple[ModelRow, VersionRow]:
    found = session.execute(
        select(ModelRow, VersionRow)
        .join(VersionRow, VersionRow.model_id == ModelRow.id)
        .where(ModelRow.name == name, VersionRow.version == str(version))
    ).first()
    if found is None:
        if model_row(session, name) is None:
            raise NotFound(f"model {name!r} is not registered: run `modelreg list` to see registered models")
        raise NotFound(
            f"model {name!r} has no registered version {version!r}: run `modelreg list` to see its versions"
        )
    return found[0], found[1]


def list_versions(session: Session, stage: str | None = None, model: str | None = None) -> list[ModelVersion]:
    """A summary of every version (no MLflow metadata or model card: ``show`` has those). Plain columns, not
    ORM entities: building 10,000 mapped objects cost more than the rest of ``modelreg list``."""
    q = select(
        ModelRow.name,
        VersionRow.version,
        VersionRow.stage,
        VersionRow.suspended,
        VersionRow.registered_by,
        VersionRow.created_at,
        VersionRow.updated_at,
        ModelRow.owner,
        ModelRow.risk_tier,
        ModelRow.purpose,
        ModelRow.business_line,
        VersionRow.mlflow_run_id,
        VersionRow.model_uri,
        VersionRow.artifact_digest,
    ).join(VersionRow, VersionRow.model_id == ModelRow.id)
    if stage:
        q = q.where(VersionRow.stage == stage)
    if model:
        q = q.where(ModelRow.name == model)
    q = q.order_by(ModelRow.name, VersionRow.id)
    to_utc = clock.to_utc
    return [
        ModelVersion(
            model=r[0],
            version=r[1],
            stage=Stage(r[2]),
            suspended=bool(r[3]),
            registered_by=r[4],
            created_at=to_utc(r[5]),
            updated_at=to_utc(r[6]),
            owner=r[7],
            risk_tier=r[8],
            purpose=r[9],
            business_line=r[10],
            mlflow_run_id=r[11],
            model_uri=r[12],
            artifact_digest=r[13],
        )
        for r in session.execute(q)
    ]


def deployed_version(session: Session, model_id: int) -> VersionRow | None:
    return session.execute(
        select(VersionRow).where(VersionRow.model_id == model_id, VersionRow.stage == Stage.DEPLOY.value)
    ).scalar_one_or_none()


def transitions(session: Session, version_row: VersionRow, model_name: str) -> list[TransitionRecord]:
    rows = session.execute(
        select(TransitionRow).where(TransitionRow.version_id == version_row.id).order_by(TransitionRow.id)
    ).scalars()
    return [
        TransitionRecord(
            model_name,
            version_row.version,
            r.action,
            r.source,
            r.target,
            r.actor,
            r.reason,
            clock.to_utc(r.at),
        )
        for r in rows
    ]


def datasets(session: Session, version_row: VersionRow, model_name: str) -> list[Dataset]:
    rows = session.execute(
        select(DatasetRow).where(DatasetRow.version_id == version_row.id).order_by(DatasetRow.id)
    ).scalars()
    return [
        Dataset(
            model_name,
            version_row.version,
            r.role,
            r.name,
            r.digest,
            r.rows,
            list(r.columns),
            r.source,
            r.owner,
            r.attached_by,
            clock.to_utc(r.at),
        )
        for r in rows
    ]
