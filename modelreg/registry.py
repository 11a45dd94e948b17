"""The write API. Every state change goes through here: permission check, rule check, the change itself and
its one audit event, all in one transaction — or nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from modelreg import clock
from modelreg.audit import log as audit_log
from modelreg.domain.entities import AuditEvent, Dataset, ModelVersion, TransitionRecord, User, VerifyReport
from modelreg.domain.roles import PERMISSIONS, Role, allowed
from modelreg.domain.stages import RiskTier, Stage, Transition, allowed_actions, find_transition
from modelreg.errors import (
    AlreadyExists,
    BadInput,
    ConcurrentModification,
    GateRefused,
    InvalidTransition,
    NotFound,
    PermissionDenied,
    VerificationFailed,
)
from modelreg.gates import BASIC_REQUIREMENTS, GateContext, Requirement, Unmet
from modelreg.settings import Settings
from modelreg.store import repo
from modelreg.store.engine import make_engine, read_session, write_session
from modelreg.store.schema import check_schema, init_schema
from modelreg.store.tables import DatasetRow, ModelRow, TransitionRow, UserRow, VersionRow

ROLE_NAMES = tuple(r.value for r in Role)
TIER_NAMES = tuple(t.value for t in RiskTier)

# Kept for plug-ins that still want a call inside the write transaction; the MLflow mirror no longer uses it
# (it drains the outbox after commit, see modelreg/store/outbox.py).
Projection = Callable[[str, ModelVersion, dict], None]
# Called after a write transaction that queued outbox work committed, and once when a registry first touches
# the database (the next command after a crash): applies pending projections from the committed state.
OutboxDrainer = Callable[["Registry"], None]


@dataclass(frozen=True)
class TransitionResult:
    version: ModelVersion
    event: AuditEvent
    replaced: ModelVersion | None = None

    def to_dict(self) -> dict:
        return {
            "version": self.version.to_dict(),
            "event": self.event.to_dict(),
            "replaced": self.replaced.to_dict() if self.replaced else None,
        }


def _clean(value: str | None, what: str, *, required: bool = True, limit: int = 500) -> str | None:
    if value is None:
        if required:
            raise BadInput(f"{what} is required")
        return None
    value = str(value).strip()
    if required and not value:
        raise BadInput(f"{what} must not be empty")
    if len(value) > limit:
        raise BadInput(f"{what} must be at most {limit} characters. Got {len(value)} instead.")
    if any(ord(c) < 32 and c not in "\t\n" for c in value):
        raise BadInput(f"{what} must not contain control characters")
    return value


class Registry:
    """The registry on one database. ``actor`` is the acting user for state changes."""

    def __init__(self, settings: Settings, *, actor: str | None = None, engine: Engine | None = None) -> None:
        self.settings = settings
        self.actor = actor or settings.user
        self.engine = engine or make_engine(settings.database_url)
        self.requirements: dict[str, list[Requirement]] = {g: list(r) for g, r in BASIC_REQUIREMENTS.items()}
        self.projections: list[Projection] = []
        # Called inside the evaluation's write transaction (e.g. log it as an MLflow run); may return a run id.
        self.evaluation_projections: list[Callable[..., str | None]] = []
        self.outbox_drainers: list[OutboxDrainer] = []
        self._outbox_checked = False
        self._schema_checked = False
        self._db_role: str | bool | None = False

    # -- plumbing -----------------------------------------------------------------------------------
    def as_user(self, name: str) -> Registry:
        other = Registry(self.settings, actor=name, engine=self.engine)
        other.requirements = self.requirements
        other.projections = self.projections
        other.evaluation_projections = self.evaluation_projections
        other.outbox_drainers = self.outbox_drainers
        other._outbox_checked = self._outbox_checked
        other._schema_checked = self._schema_checked
        return other

    def _check_schema(self) -> None:
        if not self._schema_checked:
            path = self.engine.url.database if self.engine.dialect.name == "sqlite" else None
            if path and path != ":memory:" and not Path(path).exists():
                from modelreg.errors import SchemaError

                raise SchemaError(f"no registry database at {path}: run `modelreg init` first")
            try:
                check_schema(self.engine)
                self._check_privileges()
            except Exception as exc:
                from sqlalchemy.exc import OperationalError

                if isinstance(exc, OperationalError):
                    from modelreg.store.engine import translate_db_error

                    raise translate_db_error(exc, str(self.engine.url)) from None
                raise
            self._schema_checked = True

    def _check_privileges(self) -> None:
        """Production mode refuses a PostgreSQL connection that could switch off the audit log's guards."""
        if self.settings.mode != "production" or self.engine.dialect.name != "postgresql":
            return
        from modelreg.errors import ConfigError
        from modelreg.store.pg_roles import privileged_connection

        with self.engine.connect() as conn:
            why = privileged_connection(conn)
        if why is not None:
            raise ConfigError(
                f"MODELREG_MODE=production: {why}; connect as the application role that `modelreg init --pg-roles` creates"
            )

    def setup_pg_roles(self, prefix: str = "modelreg") -> dict:
        """Create the least-privilege roles (see modelreg/store/pg_roles.py), audited."""
        from modelreg.store.pg_roles import setup_roles

        check_schema(self.engine)  # not _check_schema: this is the administrator's (superuser's) command
        result = setup_roles(self.engine, prefix)
        with write_session(self.engine) as session:
            self._event(session, "registry.roles_configured", payload={"roles": result["roles"]})
        return result

    @contextmanager
    def _read(self) -> Iterator[Session]:
        self._check_schema()
        self._drain_left_over()
        with read_session(self.engine) as session:
            yield session

    @contextmanager
    def _write(self) -> Iterator[Session]:
        from modelreg.store import outbox

        self._check_schema()
        self._drain_left_over()
        with write_session(self.engine) as session:
            yield session
            queued = session.info.pop(outbox.SESSION_FLAG, False)
        if queued:  # committed: only now may MLflow follow
            self.drain_outbox()

    def drain_outbox(self) -> None:
        for drainer in self.outbox_drainers:
            drainer(self)

    def _drain_left_over(self) -> None:
        """The first command after a crash applies what the crashed one committed but did not project."""
        if self._outbox_checked or not self.outbox_drainers:
            return
        self._outbox_checked = True
        self.drain_outbox()

    def db_role(self, session: Session) -> str | None:
        """On PostgreSQL, the authenticated database role is recorded beside the claimed user."""
        if self._db_role is False:
            self._db_role = (
                session.execute(text("SELECT current_user")).scalar()
                if self.engine.dialect.name == "postgresql"
                else None
            )
        return self._db_role  # type: ignore[return-value]

    def _authorize(self, session: Session, action: str) -> User | None:
        if action not in PERMISSIONS:
            raise PermissionDenied(f"action {action!r} has no declared permission: refused")
        rule = PERMISSIONS[action]
        row = repo.user_row(session, self.actor)
        if rule == "anyone":
            return repo.to_user(row) if row else None
        if row is None:
            raise PermissionDenied(
                f"user {self.actor!r} is not registered: an admin adds users with `modelreg user add NAME --role ROLE`"
            )
        user = repo.to_user(row)
        if not allowed(action, frozenset(user.roles)):
            need = " or ".join(sorted(rule))  # type: ignore[arg-type]
            raise PermissionDenied(
                f"{action} needs the role {need}; user {self.actor!r} has {', '.join(user.roles) or 'no roles'}"
            )
        return user

    def _event(
        self,
        session: Session,
        event: str,
        *,
        model: str | None = None,
        version: str | None = None,
        payload: dict | None = None,
    ) -> AuditEvent:
        return audit_log.append_event(
            session,
            event,
            actor=self.actor,
            model=model,
            version=version,
            payload=payload or {},
            db_role=self.db_role(session),
        )

    # -- schema and users ---------------------------------------------------------------------------
    def init(self) -> dict:
        from sqlalchemy.exc import OperationalError

        from modelreg.store.engine import translate_db_error

        path = self.engine.url.database if self.engine.dialect.name == "sqlite" else None
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)  # only init creates files
        try:
            before, after = init_schema(self.engine)
        except OperationalError as exc:
            raise translate_db_error(exc, str(self.engine.url)) from None
        self._schema_checked = True
        if before is None:
            with write_session(self.engine) as session:
                self._event(session, "registry.initialized", payload={"schema_revision": after})
        return {
            "before": before,
            "after": after,
            "created": before is None,
            "upgraded": before is not None and before != after,
        }

    def add_user(
        self, name: str, roles: list[str] | tuple[str, ...], *, public_key_pem: str | None = None
    ) -> User:
        name = _clean(name, "user name", limit=200)  # type: ignore[assignment]
        roles = tuple(dict.fromkeys(roles))
        if not roles:
            raise BadInput("a user needs at least one --role")
        bad = [r for r in roles if r not in ROLE_NAMES]
        if bad:
            raise BadInput(f"role must be one of {', '.join(ROLE_NAMES)}. Got {', '.join(bad)} instead.")
        key_id = None
        if public_key_pem is not None:
            from modelreg import signing

            key_id = signing.key_id(signing.load_public_key(public_key_pem.encode()))
        with self._write() as session:
            if repo.count_users(session) == 0:
                # Bootstrap: the first user is created by whoever holds the database and must be an admin.
                if Role.ADMIN.value not in roles:
                    raise BadInput(
                        "the first user must have the admin role (modelreg user add NAME --role admin)"
                    )
            else:
                self._authorize(session, "user.add")
            if repo.user_row(session, name) is not None:
                raise AlreadyExists(f"user {name!r} already exists")
            now = clock.now()
            row = UserRow(
                name=name,
                roles=list(roles),
                public_key_pem=public_key_pem,
                key_id=key_id,
                created_at=now,
                created_by=self.actor,
            )
            session.add(row)
            self._event(session, "user.added", payload={"user": name, "roles": list(roles), "key_id": key_id})
            session.flush()
            return repo.to_user(row)

    def register_key(self, public_key_pem: str, *, user: str | None = None) -> User:
        from modelreg import signing

        target = user or self.actor
        kid = signing.key_id(signing.load_public_key(public_key_pem.encode()))
        with self._write() as session:
            me = self._authorize(session, "keys.register")
            if target != self.actor and (me is None or Role.ADMIN.value not in me.roles):
                raise PermissionDenied("only an admin may register a key for another user")
            row = repo.user_row(session, target)
            if row is None:
                raise NotFound(f"user {target!r} is not registered")
            row.public_key_pem = public_key_pem
            row.key_id = kid
            self._event(session, "user.key_registered", payload={"user": target, "key_id": kid})
            session.flush()
            return repo.to_user(row)

    def users(self) -> list[User]:
        from sqlalchemy import select

        with self._read() as session:
            return [
                repo.to_user(r) for r in session.execute(select(UserRow).order_by(UserRow.name)).scalars()
            ]

    def user(self, name: str) -> User:
        with self._read() as session:
            row = repo.user_row(session, name)
            if row is None:
                raise NotFound(f"user {name!r} is not registered")
            return repo.to_user(row)

    # -- registration -------------------------------------------------------------------------------
    def register(
        self,
        name: str,
        version: str,
        *,
        owner: str,
        risk_tier: str,
        purpose: str,
        business_line: str | None = None,
        mlflow_info: dict | None = None,
        model_card: dict | None = None,
    ) -> ModelVersion:
        """Record an MLflow model version in the registry, stage ``develop``.

        The model's owner, purpose and tier belong to the registered model (the first registration sets them;
        a later version must agree or the caller must change them deliberately)."""
        name = _clean(name, "model name")  # type: ignore[assignment]
        version = _clean(str(version), "model version", limit=100)  # type: ignore[assignment]
        owner = _clean(owner, "--owner", limit=200)  # type: ignore[assignment]
        purpose = _clean(purpose, "--purpose", limit=4000)  # type: ignore[assignment]
        business_line = _clean(business_line, "--business-line", required=False, limit=200)
        if risk_tier not in TIER_NAMES:
            raise BadInput(f"--risk-tier must be one of {', '.join(TIER_NAMES)}. Got {risk_tier!r} instead.")
        info = dict(mlflow_info or {})
        with self._write() as session:
            self._authorize(session, "register")
            if repo.user_row(session, owner) is None:
                raise NotFound(
                    f"owner {owner!r} is not a registered user: add them first with `modelreg user add`"
                )
            now = clock.now()
            model = repo.model_row(session, name)
            if model is None:
                model = ModelRow(
                    name=name,
                    owner=owner,
                    purpose=purpose,
                    business_line=business_line,
                    risk_tier=risk_tier,
                    created_at=now,
                    created_by=self.actor,
                )
                session.add(model)
                session.flush()
            else:
                changed = {
                    k: (getattr(model, k), v)
                    for k, v in (("owner", owner), ("risk_tier", risk_tier))
                    if getattr(model, k) != v
                }
                if changed:
                    what = ", ".join(f"{k} {old!r} → {new!r}" for k, (old, new) in changed.items())
                    raise BadInput(
                        f"model {name!r} is registered with different attributes ({what}); a version inherits them"
                    )
            existing = session.execute(
                VersionRow.__table__.select().where(
                    VersionRow.model_id == model.id, VersionRow.version == version
                )
            ).first()
            if existing is not None:
                raise AlreadyExists(f"model {name!r} version {version!r} is already registered")
            row = VersionRow(
                model_id=model.id,
                version=version,
                stage=Stage.DEVELOP.value,
                suspended=False,
                row_version=1,
                registered_by=self.actor,
                created_at=now,
                updated_at=now,
                mlflow_run_id=info.get("run_id"),
                model_uri=info.get("model_uri"),
                artifact_digest=info.get("artifact_digest"),
                mlflow_info=info,
                model_card=dict(model_card or {}),
            )
            session.add(row)
            session.flush()
            result = repo.to_version(row, model)
            self._event(
                session,
                "version.registered",
                model=name,
                version=version,
                payload={
                    "owner": owner,
                    "risk_tier": risk_tier,
                    "purpose": purpose,
                    "business_line": business_line,
                    "mlflow_run_id": info.get("run_id"),
                    "model_uri": info.get("model_uri"),
                    "artifact_digest": info.get("artifact_digest"),
                },
            )
            self._project(session, "register", result, {})
            return result

    def preflight_register(self, name: str, *, owner: str, risk_tier: str) -> None:
        """Refuse early (before anything is created in MLflow) what ``register`` would refuse."""
        _clean(name, "model name")
        if risk_tier not in TIER_NAMES:
            raise BadInput(f"--risk-tier must be one of {', '.join(TIER_NAMES)}. Got {risk_tier!r} instead.")
        with self._read() as session:
            self._authorize(session, "register")
            if repo.user_row(session, owner) is None:
                raise NotFound(
                    f"owner {owner!r} is not a registered user: add them first with `modelreg user add`"
                )
            model = repo.model_row(session, name)
            if model is not None and (model.owner != owner or model.risk_tier != risk_tier):
                raise BadInput(
                    f"model {name!r} is registered with owner {model.owner!r} and tier {model.risk_tier!r}; a version inherits them"
                )

    def update_card(self, name: str, version: str, fields: dict[str, Any]) -> ModelVersion:
        if not isinstance(fields, dict) or not fields:
            raise BadInput("model card fields must be a non-empty mapping")
        with self._write() as session:
            self._authorize(session, "update_card")
            model, row = repo.version_rows(session, name, version)
            if row.stage not in (Stage.DEVELOP.value,):
                raise InvalidTransition(
                    f"the model card can only change in develop; {name} {version} is in {row.stage}"
                )
            row.model_card = {**(row.model_card or {}), **fields}
            row.updated_at = clock.now()
            row.row_version += 1
            self._event(
                session,
                "version.card_updated",
                model=name,
                version=str(version),
                payload={"fields": sorted(fields)},
            )
            session.flush()
            return repo.to_version(row, model)

    def attach_data(
        self,
        name: str,
        version: str,
        *,
        role: str,
        dataset_name: str,
        digest: str,
        rows: int,
        columns: list,
        source: str | None = None,
        owner: str | None = None,
    ) -> Dataset:
        roles = ("training", "validation", "holdout", "reference", "monitoring")
        if role not in roles:
            raise BadInput(f"data role must be one of {', '.join(roles)}. Got {role!r} instead.")
        if rows <= 0:
            raise BadInput(f"data set {dataset_name!r} is empty: {rows} rows")
        with self._write() as session:
            self._authorize(session, "attach_data")
            _model, row = repo.version_rows(session, name, version)
            if row.stage == Stage.RETIRE.value:
                raise InvalidTransition(f"{name} {version} is retired: no data can be attached")
            now = clock.now()
            ds = DatasetRow(
                version_id=row.id,
                role=role,
                name=dataset_name,
                digest=digest,
                rows=int(rows),
                columns=list(columns),
                source=source,
                owner=owner,
                attached_by=self.actor,
                at=now,
            )
            session.add(ds)
            self._event(
                session,
                "version.data_attached",
                model=name,
                version=str(version),
                payload={
                    "role": role,
                    "name": dataset_name,
                    "digest": digest,
                    "rows": int(rows),
                    "source": source,
                    "owner": owner,
                },
            )
            session.flush()
            return Dataset(
                name,
                str(version),
                role,
                dataset_name,
                digest,
                int(rows),
                list(columns),
                source,
                owner,
                self.actor,
                now,
            )

    # -- reads --------------------------------------------------------------------------------------
    def list(self, stage: str | None = None, model: str | None = None) -> list[ModelVersion]:
        if stage is not None and stage not in [s.value for s in Stage]:
            raise BadInput(
                f"--stage must be one of {', '.join(s.value for s in Stage)}. Got {stage!r} instead."
            )
        with self._read() as session:
            return repo.list_versions(session, stage, model)

    def show(self, name: str, version: str) -> ModelVersion:
        with self._read() as session:
            model, row = repo.version_rows(session, name, version)
            return repo.to_version(row, model)

    def history(self, name: str, version: str) -> list[TransitionRecord]:
        with self._read() as session:
            model, row = repo.version_rows(session, name, version)
            return repo.transitions(session, row, model.name)

    def datasets(self, name: str, version: str) -> list[Dataset]:
        with self._read() as session:
            model, row = repo.version_rows(session, name, version)
            return repo.datasets(session, row, model.name)

    # -- lifecycle ----------------------------------------------------------------------------------
    def submit(self, name: str, version: str) -> TransitionResult:
        return self._transition("submit", name, version, reason=None)

    def send_back(self, name: str, version: str, *, reason: str) -> TransitionResult:
        return self._transition("send_back", name, version, reason=reason)

    def deploy(self, name: str, version: str, *, replace: str | None = None) -> TransitionResult:
        if replace not in (None, "retire", "demote"):
            raise BadInput(f"--replace must be retire or demote. Got {replace!r} instead.")
        return self._transition("deploy", name, version, reason=None, replace=replace)

    def retire(self, name: str, version: str, *, reason: str) -> TransitionResult:
        return self._transition("retire", name, version, reason=reason)

    def gate_check(self, name: str, version: str, gate: str, action: str) -> list[Unmet]:
        """What would be unmet if ``action`` were attempted now (nothing is written)."""
        with self._read() as session:
            model, row = repo.version_rows(session, name, version)
            return self._unmet(session, gate, action, model, row, {})

    def _unmet(
        self, session: Session, gate: str | None, action: str, model: ModelRow, row: VersionRow, options: dict
    ) -> list[Unmet]:
        if gate is None:
            return []
        ctx = GateContext(
            gate=gate,
            action=action,
            actor=self.actor,
            version=repo.to_version(row, model),
            version_id=row.id,
            datasets=repo.datasets(session, row, model.name),
            session=session,
            options=options,
        )
        unmet: list[Unmet] = []
        for requirement in self.requirements.get(gate, []):
            unmet.extend(requirement(ctx))
        return unmet

    def _transition(
        self, action: str, name: str, version: str, *, reason: str | None, replace: str | None = None
    ) -> TransitionResult:
        version = str(version)
        reason = _clean(reason, "--reason", required=False, limit=4000)
        with self._write() as session:
            self._authorize(session, action)
            model, row = repo.version_rows(session, name, version)
            source = Stage(row.stage)
            transition: Transition | None = find_transition(action, source)
            if transition is None:
                can = allowed_actions(source)
                raise InvalidTransition(
                    f"cannot {action.replace('_', '-')} {name} {version}: it is in {source.value}"
                    + (
                        f" (allowed from there: {', '.join(a.replace('_', '-') for a in can)})"
                        if can
                        else " (no further moves)"
                    )
                )
            if transition.needs_reason and not reason:
                raise BadInput(f"{action.replace('_', '-')} needs --reason")
            unmet = self._unmet(
                session, transition.gate, action, model, row, {"replace": replace, "reason": reason}
            )
            if transition.target is Stage.DEPLOY and replace == "retire":
                # Retiring the version being replaced is a retirement too: it passes the retire gate.
                current = repo.deployed_version(session, model.id)
                if current is not None and current.id != row.id:
                    reason_text = f"replaced by version {version}"
                    for u in self._unmet(
                        session, "retire", "retire", model, current, {"reason": reason_text}
                    ):
                        unmet.append(
                            Unmet(
                                u.requirement,
                                f"retiring version {current.version}: {u.message_en}",
                                f"退出版本 {current.version}：{u.message_zh}",
                                u.clause_ids,
                                u.control_id,
                            )
                        )
            if unmet:
                raise GateRefused(
                    f"{action.replace('_', '-')} {name} {version} refused: {len(unmet)} requirement(s) unmet",
                    unmet=[u.to_dict() for u in unmet],
                )
            moves: list[tuple[VersionRow, str, Stage, str | None, str]] = []
            replaced = None
            if transition.target is Stage.DEPLOY:
                current = repo.deployed_version(session, model.id)
                if current is not None and current.id != row.id:
                    if replace is None:
                        raise InvalidTransition(
                            f"{name} version {current.version} is deployed: pass --replace retire|demote to replace it"
                        )
                    target = Stage.RETIRE if replace == "retire" else Stage.VALIDATE
                    note = f"replaced by version {version}"
                    moves.append((current, current.stage, target, note, f"replace.{replace}"))
                    replaced = self._move(session, model, current, target)
            moves.append((row, row.stage, transition.target, reason, action))
            updated = self._move(session, model, row, transition.target)
            payload: dict[str, Any] = {"from": source.value, "to": transition.target.value}
            if reason:
                payload["reason"] = reason
            if replaced is not None:
                payload["replaced"] = {"version": replaced.version, "to": replaced.stage.value}
            event_name = {
                "submit": "version.submitted",
                "send_back": "version.sent_back",
                "deploy": "version.deployed",
                "retire": "version.retired",
            }[action]
            event = self._event(session, event_name, model=name, version=version, payload=payload)
            now = event.at
            for moved, src, target, why, act in moves:
                session.add(
                    TransitionRow(
                        version_id=moved.id,
                        action=act,
                        source=src,
                        target=target.value,
                        actor=self.actor,
                        reason=why,
                        at=now,
                        audit_seq=event.seq,
                    )
                )
            session.flush()
            self._project(session, action, updated, {"replaced": replaced})
            return TransitionResult(updated, event, replaced)

    def _move(self, session: Session, model: ModelRow, row: VersionRow, target: Stage) -> ModelVersion:
        """Compare-and-set the stage: only if nobody moved this version since we read it."""
        values: dict[str, Any] = {
            "stage": target.value,
            "row_version": row.row_version + 1,
            "updated_at": clock.now(),
        }
        if target is not Stage.DEPLOY:
            values["suspended"] = False
        try:
            result = session.execute(
                update(VersionRow)
                .where(
                    VersionRow.id == row.id,
                    VersionRow.stage == row.stage,
                    VersionRow.row_version == row.row_version,
                )
                .values(**values)
                .execution_options(synchronize_session=False)
            )
        except IntegrityError:
            raise InvalidTransition(
                f"another version of {model.name} is already deployed: pass --replace retire|demote to replace it"
            ) from None
        if result.rowcount != 1:
            raise ConcurrentModification(
                f"{model.name} {row.version} was changed by someone else meanwhile: nothing was written; retry"
            )
        session.refresh(row)
        return repo.to_version(row, model)

    def suspend(
        self, name: str, version: str, *, reason: str, actor_note: dict | None = None
    ) -> TransitionResult:
        return self._flag(name, version, suspend=True, reason=reason, extra=actor_note)

    def resume(self, name: str, version: str, *, reason: str) -> TransitionResult:
        return self._flag(name, version, suspend=False, reason=reason)

    def _flag(
        self, name: str, version: str, *, suspend: bool, reason: str, extra: dict | None = None
    ) -> TransitionResult:
        version = str(version)
        reason = _clean(reason, "--reason", limit=4000)  # type: ignore[assignment]
        action = "suspend" if suspend else "resume"
        with self._write() as session:
            self._authorize(session, action)
            model, row = repo.version_rows(session, name, version)
            if row.stage != Stage.DEPLOY.value:
                raise InvalidTransition(
                    f"cannot {action} {name} {version}: only a deployed version can be {action}ed; it is in {row.stage}"
                )
            if row.suspended == suspend:
                raise InvalidTransition(
                    f"{name} {version} is already {'suspended' if suspend else 'running (not suspended)'}"
                )
            now = clock.now()
            result = session.execute(
                update(VersionRow)
                .where(VersionRow.id == row.id, VersionRow.row_version == row.row_version)
                .values(suspended=suspend, row_version=row.row_version + 1, updated_at=now)
                .execution_options(synchronize_session=False)
            )
            if result.rowcount != 1:
                raise ConcurrentModification(
                    f"{name} {version} was changed by someone else meanwhile: nothing was written; retry"
                )
            payload: dict[str, Any] = {"reason": reason, **(extra or {})}
            event = self._event(
                session,
                "version.suspended" if suspend else "version.resumed",
                model=name,
                version=version,
                payload=payload,
            )
            session.add(
                TransitionRow(
                    version_id=row.id,
                    action=action,
                    source=row.stage,
                    target=row.stage,
                    actor=self.actor,
                    reason=reason,
                    at=now,
                    audit_seq=event.seq,
                )
            )
            session.flush()
            session.refresh(row)
            updated = repo.to_version(row, model)
            self._project(session, action, updated, {})
            return TransitionResult(updated, event)

    def _project(self, session: Session, action: str, version: ModelVersion, extra: dict) -> None:
        from modelreg.store import outbox

        # MLflow follows from the outbox after commit; a version not linked to MLflow has nothing to mirror.
        targets = [
            (v.model, v.version) for v in (version, extra.get("replaced")) if v is not None and v.model_uri
        ]
        outbox.enqueue(session, targets)
        for projection in self.projections:
            projection(action, version, extra)

    # -- audit --------------------------------------------------------------------------------------
    def audit_log(
        self, name: str | None = None, version: str | None = None, *, limit: int | None = None
    ) -> list[AuditEvent]:
        with self._read() as session:
            if name is not None:
                if version is not None:
                    repo.version_rows(session, name, version)
                elif repo.model_row(session, name) is None:
                    raise NotFound(f"model {name!r} is not registered")
            return audit_log.list_events(session, name, version, limit=limit)

    def audit_verify(
        self, checkpoint_path: str | Path | None = None, *, trusted_key: str | Path | None = None
    ) -> VerifyReport:
        """Recompute the whole log. With a checkpoint: check its signature and that today's log extends it."""
        from sqlalchemy.exc import DBAPIError

        from modelreg.audit import checkpoint as cp_mod

        checkpoint = cp_mod.Checkpoint.load(checkpoint_path) if checkpoint_path else None
        self._check_schema()
        try:
            report = audit_log.verify_snapshot(self.engine)
        except (DBAPIError, self.engine.dialect.dbapi.Error, audit_log.AuditStateMissing) as exc:  # type: ignore[union-attr]
            # A dropped audit table is a verification result (the log is gone), not an internal error.
            first = str(getattr(exc, "orig", exc)).strip().splitlines()
            return VerifyReport(
                False,
                0,
                "",
                problem=f"the audit log cannot be read (audit table missing or damaged): {first[0] if first else type(exc).__name__}",
            )
        if checkpoint is None or not report.ok:
            return report
        return _check_against_checkpoint(self, report, checkpoint, trusted_key)

    def audit_checkpoint(self, out: str | Path) -> dict:
        from modelreg import signing
        from modelreg.audit import checkpoint as cp_mod

        out = Path(out)
        if out.exists() and out.is_dir():
            raise BadInput(f"-o {out} is a folder; give a file name")
        key = signing.ensure_key(self.settings.audit_key_path)
        with self._write() as session:
            self._authorize(session, "audit.checkpoint")
            size, root = audit_log.state(session)
            cp = cp_mod.sign_checkpoint(size, root, key, time=clock.isoformat(clock.now()))
            # The checkpoint is issued first and then recorded: the record is itself event #size, outside it.
            self._event(
                session,
                "audit.checkpoint",
                payload={"size": size, "root_hash": root.hex(), "key_id": cp.key_id},
            )
            from modelreg.store.tables import CheckpointRow

            session.add(CheckpointRow(size=size, body=json_loads(cp.to_json()), at=clock.now()))
        out.parent.mkdir(parents=True, exist_ok=True)
        cp.save(out)
        pub = signing.public_key_to_pem(key.public_key())
        pub_path = out.with_suffix(out.suffix + ".pub")
        pub_path.write_bytes(pub)
        return {"checkpoint": json_loads(cp.to_json()), "file": str(out), "public_key": str(pub_path)}

    def audit_public_key_pem(self) -> bytes:
        from modelreg import signing

        return signing.public_key_to_pem(signing.ensure_key(self.settings.audit_key_path).public_key())


def json_loads(text_: str) -> dict:
    import json

    return json.loads(text_)


def _check_against_checkpoint(reg: Registry, report: VerifyReport, checkpoint, trusted_key) -> VerifyReport:
    from modelreg import signing
    from modelreg.audit import merkle

    if trusted_key is not None:
        public = signing.load_public_key(Path(trusted_key))
    else:
        # Read-only: use the registry's audit key if it exists, never create one (a fresh key could not have
        # signed the checkpoint anyway, and a verifying command must write nothing).
        private_path = Path(reg.settings.audit_key_path)
        pub_path = signing.public_key_path_for(private_path)
        if pub_path.exists():
            public = signing.load_public_key(pub_path)
        elif private_path.exists():
            public = signing.load_private_key(private_path).public_key()
        else:
            return VerifyReport(
                False,
                report.size,
                report.root_hash,
                problem=f"no audit key at {private_path} to check the checkpoint's signature with: pass --trusted-key (the checkpoint's .pub file)",
                checkpoint=json_loads(checkpoint.to_json()),
            )
    cp_dict = json_loads(checkpoint.to_json())
    if not _verify_cp(checkpoint, public):
        return VerifyReport(
            False,
            report.size,
            report.root_hash,
            problem="the checkpoint's signature does not verify with the registry's audit key",
            checkpoint=cp_dict,
        )
    if checkpoint.size > report.size:
        return VerifyReport(
            False,
            report.size,
            report.root_hash,
            first_bad_seq=report.size,
            problem=(
                f"the log holds {report.size} events but the checkpoint saw {checkpoint.size}: events after #{report.size - 1} were removed"
                if report.size
                else f"the log is empty but the checkpoint saw {checkpoint.size} events: every event was removed"
            ),
            checkpoint=cp_dict,
        )
    leaves = audit_log.leaf_hashes(reg.engine)[: report.size]  # the verified prefix, not later appends
    tree = merkle.MerkleTree.from_leaf_hashes(leaves)
    proof = tree.consistency_proof(checkpoint.size, len(leaves)) if checkpoint.size else []
    old_root = bytes.fromhex(checkpoint.root_hash)
    ok = (
        merkle.verify_consistency(checkpoint.size, len(leaves), old_root, tree.root(), proof)
        if checkpoint.size
        else old_root == merkle.EMPTY_ROOT
    )
    if not ok:
        # Name the first event whose prefix root no longer matches what the checkpoint signed over.
        return VerifyReport(
            False,
            report.size,
            report.root_hash,
            first_bad_seq=None,
            problem=f"the log is not an extension of the checkpoint (size {checkpoint.size}): an event before #{checkpoint.size} was changed and the log rewritten",
            checkpoint=cp_dict,
        )
    return VerifyReport(
        True, report.size, report.root_hash, checkpoint=cp_dict, events_per_second=report.events_per_second
    )


def _verify_cp(checkpoint, public) -> bool:
    from modelreg.audit import checkpoint as cp_mod

    return cp_mod.verify_checkpoint_signature(checkpoint, public)


def require_ok(report: VerifyReport) -> VerifyReport:
    if not report.ok:
        raise VerificationFailed(report.problem or "verification failed")
    return report


def unmet_lines(unmet: list[dict]) -> list[str]:
    return [Unmet(**{k: (tuple(v) if k == "clause_ids" else v) for k, v in u.items()}).line() for u in unmet]
