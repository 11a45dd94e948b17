"""Users, models, versions, transitions and data sets: queries and inserts that map rows to domain objects.
Rows never leave this module; writers are called only from inside a registry unit of work."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from modelreg import clock
from modelreg.domain.entities import Dataset, Model, ModelVersion, TransitionRecord, User
from modelreg.domain.records import VersionState
from modelreg.domain.stages import Stage
from modelreg.errors import ConcurrentModification, InvalidTransition, NotFound
from modelreg.store.tables import CheckpointRow, DatasetRow, ModelRow, TransitionRow, UserRow, VersionRow


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


def _user_row(session: Session, name: str) -> UserRow | None:
    return session.execute(select(UserRow).where(UserRow.name == name)).scalar_one_or_none()


def get_user(session: Session, name: str) -> User | None:
    row = _user_row(session, name)
    return to_user(row) if row is not None else None


def all_users(session: Session) -> list[User]:
    return [to_user(r) for r in session.execute(select(UserRow).order_by(UserRow.name)).scalars()]


def user_keys(session: Session, names: list[str]) -> dict[str, str]:
    """Registered public keys (PEM) of the named users that have one."""
    if not names:
        return {}
    q = select(UserRow.name, UserRow.public_key_pem).where(UserRow.name.in_(names))
    return {name: pem for name, pem in session.execute(q) if pem}


def count_users(session: Session) -> int:
    return session.execute(select(func.count()).select_from(UserRow)).scalar_one()


def add_user(
    session: Session,
    *,
    name: str,
    roles: list[str],
    public_key_pem: str | None,
    key_id: str | None,
    created_at: datetime,
    created_by: str,
    key_suite: str | None = None,
) -> User:
    row = UserRow(
        name=name,
        roles=roles,
        public_key_pem=public_key_pem,
        key_id=key_id,
        key_suite=key_suite,
        created_at=created_at,
        created_by=created_by,
    )
    session.add(row)
    session.flush()
    return to_user(row)


def set_user_key(session: Session, name: str, public_key_pem: str, key_id: str) -> User:
    row = _user_row(session, name)
    if row is None:
        raise NotFound(f"user {name!r} is not registered")
    row.public_key_pem = public_key_pem
    row.key_id = key_id
    from modelreg import signing

    row.key_suite = signing.suite_of_key_id(key_id)
    session.flush()
    return to_user(row)


def set_user_roles(session: Session, name: str, roles: list[str]) -> User:
    row = _user_row(session, name)
    if row is None:
        raise NotFound(f"user {name!r} is not registered")
    row.roles = list(roles)
    session.flush()
    return to_user(row)


def _model_row(session: Session, name: str) -> ModelRow | None:
    return session.execute(select(ModelRow).where(ModelRow.name == name)).scalar_one_or_none()


def get_model(session: Session, name: str) -> Model | None:
    row = _model_row(session, name)
    return to_model(row) if row is not None else None


def model_id(session: Session, name: str) -> int | None:
    return session.execute(select(ModelRow.id).where(ModelRow.name == name)).scalar_one_or_none()


def add_model(
    session: Session,
    *,
    name: str,
    owner: str,
    purpose: str,
    business_line: str | None,
    risk_tier: str,
    created_at: datetime,
    created_by: str,
) -> int:
    row = ModelRow(
        name=name,
        owner=owner,
        purpose=purpose,
        business_line=business_line,
        risk_tier=risk_tier,
        created_at=created_at,
        created_by=created_by,
    )
    session.add(row)
    session.flush()
    return row.id


def _state(row: VersionRow, model: ModelRow) -> VersionState:
    return VersionState(row.id, model.id, row.row_version, to_version(row, model))


def _version_rows(session: Session, name: str, version: str) -> tuple[ModelRow, VersionRow]:
    found = session.execute(
        select(ModelRow, VersionRow)
        .join(VersionRow, VersionRow.model_id == ModelRow.id)
        .where(ModelRow.name == name, VersionRow.version == str(version))
    ).first()
    if found is None:
        if _model_row(session, name) is None:
            raise NotFound(f"model {name!r} is not registered: run `modelreg list` to see registered models")
        raise NotFound(
            f"model {name!r} has no registered version {version!r}: run `modelreg list` to see its versions"
        )
    return found[0], found[1]


def find_version(session: Session, name: str, version: str) -> VersionState:
    """The version with its surrogate ids and row version; NotFound names what is missing."""
    model, row = _version_rows(session, name, version)
    return _state(row, model)


def version_exists(session: Session, model_id: int, version: str) -> bool:
    q = select(VersionRow.id).where(VersionRow.model_id == model_id, VersionRow.version == version)
    return session.execute(q).first() is not None


def add_version(
    session: Session,
    *,
    model_id: int,
    version: str,
    registered_by: str,
    at: datetime,
    mlflow_info: dict,
    model_card: dict,
) -> VersionState:
    row = VersionRow(
        model_id=model_id,
        version=version,
        stage=Stage.DEVELOP.value,
        suspended=False,
        row_version=1,
        registered_by=registered_by,
        created_at=at,
        updated_at=at,
        mlflow_run_id=mlflow_info.get("run_id"),
        model_uri=mlflow_info.get("model_uri"),
        artifact_digest=mlflow_info.get("artifact_digest"),
        mlflow_info=mlflow_info,
        model_card=model_card,
    )
    session.add(row)
    session.flush()
    return _state(row, session.get_one(ModelRow, model_id))


def _compare_and_set(
    session: Session, state: VersionState, values: dict[str, Any], *, stage_too: bool
) -> None:
    """Write only if nobody changed this version since ``state`` was read: else ConcurrentModification."""
    where = [VersionRow.id == state.id, VersionRow.row_version == state.row_version]
    if stage_too:
        where.append(VersionRow.stage == state.stage)
    try:
        result = session.execute(
            update(VersionRow)
            .where(*where)
            .values(row_version=state.row_version + 1, updated_at=clock.now(), **values)
            .execution_options(synchronize_session=False)
        )
    except IntegrityError:
        # the partial unique index on (model, stage=deploy): somebody else deployed a version meanwhile
        raise InvalidTransition(
            f"another version of {state.version.model} is already deployed: pass --replace retire|demote to replace it"
        ) from None
    if result.rowcount != 1:
        raise ConcurrentModification(
            f"{state.version.model} {state.version.version} was changed by someone else meanwhile: nothing was written; retry"
        )


def reload(session: Session, state: VersionState) -> VersionState:
    row = session.get_one(VersionRow, state.id, populate_existing=True)
    return _state(row, session.get_one(ModelRow, state.model_id))


def set_stage(session: Session, state: VersionState, target: Stage) -> VersionState:
    values: dict[str, Any] = {"stage": target.value}
    if target is not Stage.DEPLOY:
        values["suspended"] = False
    _compare_and_set(session, state, values, stage_too=True)
    return reload(session, state)


def set_suspended(session: Session, state: VersionState, suspended: bool) -> VersionState:
    _compare_and_set(session, state, {"suspended": suspended}, stage_too=False)
    return reload(session, state)


def update_card(session: Session, state: VersionState, fields: dict[str, Any]) -> VersionState:
    card = {**state.version.model_card, **fields}
    _compare_and_set(session, state, {"model_card": card}, stage_too=False)
    return reload(session, state)


def add_transition(
    session: Session,
    *,
    version_id: int,
    action: str,
    source: str,
    target: str,
    actor: str,
    reason: str | None,
    at: datetime,
    audit_seq: int,
) -> None:
    session.add(
        TransitionRow(
            version_id=version_id,
            action=action,
            source=source,
            target=target,
            actor=actor,
            reason=reason,
            at=at,
            audit_seq=audit_seq,
        )
    )


def add_dataset(session: Session, state: VersionState, **values: Any) -> Dataset:
    row = DatasetRow(version_id=state.id, **values)
    session.add(row)
    session.flush()
    return _dataset(row, state.version.model, state.version.version)


def add_checkpoint(session: Session, size: int, body: dict, at: datetime) -> None:
    session.add(CheckpointRow(size=size, body=body, at=at))


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


def version_states(session: Session, stage: str | None = None) -> list[VersionState]:
    """Every version (or those in ``stage``) with its model card and MLflow metadata, by model name then
    registration order."""
    q = select(VersionRow, ModelRow).join(ModelRow, ModelRow.id == VersionRow.model_id)
    if stage:
        q = q.where(VersionRow.stage == stage)
    q = q.order_by(ModelRow.name, VersionRow.id)
    return [_state(row, model) for row, model in session.execute(q)]


def last_transition_at(session: Session, version_id: int, action: str) -> datetime | None:
    """When the version's latest ``action`` transition happened (None if it never did)."""
    value = session.execute(
        select(TransitionRow.at)
        .where(TransitionRow.version_id == version_id, TransitionRow.action == action)
        .order_by(TransitionRow.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    return clock.to_utc(value) if value is not None else None


def deployed_version(session: Session, model_id: int) -> VersionState | None:
    row = session.execute(
        select(VersionRow).where(VersionRow.model_id == model_id, VersionRow.stage == Stage.DEPLOY.value)
    ).scalar_one_or_none()
    return _state(row, session.get_one(ModelRow, model_id)) if row is not None else None


def transitions(session: Session, state: VersionState) -> list[TransitionRecord]:
    rows = session.execute(
        select(TransitionRow).where(TransitionRow.version_id == state.id).order_by(TransitionRow.id)
    ).scalars()
    v = state.version
    return [
        TransitionRecord(
            v.model, v.version, r.action, r.source, r.target, r.actor, r.reason, clock.to_utc(r.at)
        )
        for r in rows
    ]


def _dataset(r: DatasetRow, model: str, version: str) -> Dataset:
    return Dataset(
        model,
        version,
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


def datasets(session: Session, state: VersionState) -> list[Dataset]:
    rows = session.execute(
        select(DatasetRow).where(DatasetRow.version_id == state.id).order_by(DatasetRow.id)
    ).scalars()
    return [_dataset(r, state.version.model, state.version.version) for r in rows]


def retire_reason(session: Session, version_id: int) -> str | None:
    """The reason the version's retire transition recorded (None if it was never retired)."""
    return session.execute(
        select(TransitionRow.reason)
        .where(TransitionRow.version_id == version_id, TransitionRow.action == "retire")
        .order_by(TransitionRow.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def set_crypto_settings(session: Session, tree_hash: str, signing_suite: str) -> None:
    """Record the log's hash and the registry's signing suite, once, before the first event."""
    from modelreg.store.tables import AuditStateRow
    from modelreg.suites import hash_constructor

    state = session.get(AuditStateRow, 1, with_for_update=True)
    state.tree_hash = tree_hash
    state.signing_suite = signing_suite
    # The empty tree's root is the chosen hash of the empty string; set before leaf #0 exists.
    state.root_hash = hash_constructor(tree_hash)(b"").digest()
    session.flush()


def latest_checkpoint(session: Session) -> dict | None:
    """The body of the most recently issued signed checkpoint (the web view verifies the log against it)."""
    row = session.execute(select(CheckpointRow.body).order_by(CheckpointRow.id.desc()).limit(1)).first()
    return dict(row[0]) if row else None
