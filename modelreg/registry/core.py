"""The registry's unit of work: the one place where actor, action, permission, transaction and audit event
meet.

Every state change of modelreg, whoever makes it (the registry's own lifecycle methods, governance's
evaluations and signed records, the MLflow projection's repair, the audit checkpoint), is written as::

    with registry.change("waive", model=name, version=version) as tx:
        ...                              # tx.user: the acting User (permission already checked)
        ...                              # tx.target: the version as read in this transaction (VersionState)
        store_fn(tx.session, ...)        # row writes go through ``modelreg.store`` with tx.session
        tx.event("waiver.granted", payload={...})   # the audit event, in the same transaction
        tx.project("suspend", version)   # optional: mirror to MLflow just before commit

``change`` does, in this order: check the schema; open the write transaction (on SQLite ``BEGIN IMMEDIATE``,
on PostgreSQL the audit state row is locked by the first event); check that ``action`` has a declared
permission and that the actor holds it (deny by default, ``modelreg.domain.roles``); check that the rows the
change relies on (the users, the target model's versions, signed records and evaluations) are what the audit
log proves and that its newest event carries the registry's signature (``guard``: refuse with
``StateDiverges`` instead of acting on forged state); load the target version
if one is named; run the body; refuse to commit a change that recorded no audit event (a programming error,
raised as ``RuntimeError`` and rolled back); run the queued projections inside the transaction, so a refused
projection rolls the registry back too; commit. Any exception rolls everything back: the registry, its audit
log and its projections never disagree.

``registry.reading(action, model=..., version=...)`` is the read-side twin: the same permission check on a
read-only snapshot, no event. A REST service and an audit replay are built on these two calls: each request
is one ``change`` or one ``reading``, and each audit event names the actor, the action's event and its
payload, so a replay can re-apply events through the same path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from modelreg.audit import log as audit_log
from modelreg.audit.event_signing import KEY_EVENTS, SIGNING_KEY_EVENT, EventSigner
from modelreg.domain.entities import AuditEvent, ModelVersion, User
from modelreg.domain.records import VersionState
from modelreg.domain.roles import PERMISSIONS, Role, allowed
from modelreg.errors import BadInput, PermissionDenied
from modelreg.registry.gates import BASIC_REQUIREMENTS, Requirement
from modelreg.settings import Settings
from modelreg.store import repo
from modelreg.store.engine import make_engine, read_session, write_session
from modelreg.store.schema import check_schema

# Hooks run inside the write transaction just before commit (e.g. mirroring the stage to MLflow). If a hook
# raises, the registry change is rolled back too, so the two never disagree because of a failed projection.
Projection = Callable[[str, ModelVersion, dict], None]


def clean(value: str | None, what: str, *, required: bool = True, limit: int = 500) -> str | None:
    """Validate a free-text field at the boundary: present, bounded, no control characters."""
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


@dataclass
class Reading:
    """A permission-checked read-only snapshot (``Registry.reading``)."""

    registry: RegistryCore
    session: Session
    action: str
    user: User | None
    target: VersionState | None = None

    @property
    def actor(self) -> str:
        return self.registry.actor


@dataclass
class Change(Reading):
    """One state change in progress (``Registry.change``): its transaction, its actor and its audit events."""

    events: list[AuditEvent] = field(default_factory=list)
    projections: list[tuple[str, ModelVersion, dict]] = field(default_factory=list)

    def event(
        self,
        name: str,
        *,
        model: str | None = None,
        version: str | None = None,
        payload: dict | None = None,
    ) -> AuditEvent:
        """Append the change's audit event in this transaction. Model and version default to the target."""
        if self.target is not None:
            model = model or self.target.version.model
            version = version or self.target.version.version
        ev = self.registry.append_signed(self.session, name, model=model, version=version, payload=payload)
        self.events.append(ev)
        return ev

    def require_proven(self, model: str | None = None, version: str | None = None) -> None:
        """Refuse unless the rows of ``model`` (``version``) are what the audit log proves: for a change whose
        targets are only known inside the transaction (e.g. ``sync`` repairing several models)."""
        from modelreg.audit.replay import guard

        guard(self.session, model=model, version=None if version is None else str(version))

    def project(self, action: str, version: ModelVersion, extra: dict | None = None) -> None:
        """Queue the MLflow projection of ``version``; it runs inside the transaction just before commit."""
        self.projections.append((action, version, dict(extra or {})))


class RegistryCore:
    """Plumbing shared by the registry's parts: the engine, the acting user, schema checks, units of work."""

    def __init__(self, settings: Settings, *, actor: str | None = None, engine: Engine | None = None) -> None:
        self.settings = settings
        self.actor = actor or settings.user
        # Named with --as / MODELREG_USER / as_user(): a name nobody registered is refused even for reads
        # (a typo must not silently act as nobody). The OS-user fallback may read without being registered.
        self.actor_explicit = bool(actor)
        self._actor_known = False
        self.engine = engine or make_engine(settings.database_url)
        self.requirements: dict[str, list[Requirement]] = {g: list(r) for g, r in BASIC_REQUIREMENTS.items()}
        self.projections: list[Projection] = []
        # Called inside the evaluation's write transaction (e.g. log it as an MLflow run); may return a run id.
        self.evaluation_projections: list[Callable[..., str | None]] = []
        self.extensions: dict[str, Any] = {}  # per-registry caches of plug-ins (e.g. the MLflow gateway)
        # Called after a change that queued outbox work committed, and once when a registry first touches the
        # database (the next command after a crash): applies pending MLflow projections from committed state.
        self.outbox_drainers: list[Callable[[Any], None]] = []
        self._outbox_checked = False
        # Run inside every write transaction once its target is loaded (the service's If-Match check): a
        # precondition read under the write lock cannot be overtaken by another writer before the commit.
        self.change_checks: list[Callable[[Change], None]] = []
        self._schema_checked = False
        self._db_role: str | bool | None = False
        self._event_signer: EventSigner | None = None
        self._key_introduced = False

    def as_user(self, name: str) -> Any:
        other = type(self)(self.settings, actor=name, engine=self.engine)
        other.requirements = self.requirements
        other.projections = self.projections
        other.evaluation_projections = self.evaluation_projections
        other.extensions = self.extensions
        other.outbox_drainers = self.outbox_drainers
        other._outbox_checked = self._outbox_checked
        other._schema_checked = self._schema_checked
        other._event_signer = self._event_signer
        other._key_introduced = self._key_introduced
        return other

    # -- the audit events' signatures ------------------------------------------------------------------
    def event_signer(self, suite: str | None = None, session: Session | None = None) -> EventSigner:
        """The registry's event key (kept outside the database, like the checkpoint key: the same file), of the
        signing suite recorded at init (``suite``: the one ``init`` is recording; ``session``: read the recorded
        suite in that transaction rather than on a connection of its own)."""
        if self._event_signer is None or suite is not None:
            from modelreg import signing

            if suite is None:
                _, suite = audit_log.crypto_settings(session if session is not None else self.engine)
            self._event_signer = EventSigner.from_private_key(
                signing.ensure_key(self.settings.audit_key_path, suite=suite)
            )
        return self._event_signer

    def registry_key(self, path: str | Path) -> Any:
        """The registry's own key at ``path`` (audit or evidence), created in the suite recorded at init; a key
        file of another suite is refused, so checkpoints and packs of one registry never mix suites."""
        from modelreg import signing

        self.ensure_schema()
        _, suite = audit_log.crypto_settings(self.engine)
        return signing.ensure_key(path, suite=suite)

    def append_signed(
        self,
        session: Session,
        name: str,
        *,
        model: str | None = None,
        version: str | None = None,
        payload: dict | None = None,
    ) -> AuditEvent:
        """Append an event signed with the event key; a log from before signed events first gets the event that
        introduces the key (its first signed event must introduce the key it is signed with)."""
        signer = self.event_signer(session=session)
        if not self._key_introduced and name not in KEY_EVENTS:
            if not audit_log.signing_enabled(session):
                audit_log.append_event(
                    session,
                    SIGNING_KEY_EVENT,
                    actor=self.actor,
                    payload=signer.key_event_payload(),
                    db_role=self.db_role(session),
                    signer=signer,
                )
            self._key_introduced = True
        return audit_log.append_event(
            session,
            name,
            actor=self.actor,
            model=model,
            version=version,
            payload=payload or {},
            db_role=self.db_role(session),
            signer=signer,
        )

    def guard(self, session: Session, model: str | None = None, version: str | None = None) -> None:
        """Refuse to act on rows the audit log does not prove (``modelreg.audit.replay``), or on a log whose
        newest event the registry did not sign (a well-formed event appended by someone without the key)."""
        from modelreg.audit.replay import guard

        size, _ = audit_log.state(session)
        if size:
            audit_log.check_custody(session, size - 1, self.event_signer(session=session))
        guard(session, model=model, version=None if version is None else str(version))

    def ensure_schema(self) -> None:
        """Refuse with "run modelreg init" (or the database's own one-line error) before touching tables."""
        if self._schema_checked:
            return
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

    def authorize(self, session: Session, action: str) -> User | None:
        """The acting user if they may attempt ``action`` (None for an unregistered reader of an open action)."""
        if action not in PERMISSIONS:
            raise PermissionDenied(f"action {action!r} has no declared permission: refused")
        rule = PERMISSIONS[action]
        user = repo.get_user(session, self.actor)
        if rule == "anyone" and (user is not None or not self.actor_explicit):
            return user
        if user is None:
            raise PermissionDenied(self.unknown_user_message())
        if not allowed(action, frozenset(user.roles)):
            need = " or ".join(sorted(rule))  # type: ignore[arg-type]
            raise PermissionDenied(
                f"{action} needs the role {need}; user {self.actor!r} has {', '.join(user.roles) or 'no roles'}"
            )
        return user

    @contextmanager
    def reading(
        self, action: str | None = None, *, model: str | None = None, version: str | None = None
    ) -> Iterator[Reading]:
        """A read-only snapshot; with ``action``, only for a user who may attempt it (deny by default)."""
        self.ensure_schema()
        self._drain_left_over()
        with read_session(self.engine) as session:
            if self.actor_explicit and not self._actor_known:
                if repo.get_user(session, self.actor) is not None:
                    self._actor_known = True
                elif repo.count_users(session) > 0:  # an empty registry is being bootstrapped
                    raise PermissionDenied(self.unknown_user_message())
            user = self.authorize(session, action) if action is not None else None
            target = (
                repo.find_version(session, model, str(version)) if model and version is not None else None
            )
            yield Reading(self, session, action or "", user, target)

    @contextmanager
    def change(
        self,
        action: str,
        *,
        model: str | None = None,
        version: str | None = None,
        authorize: bool = True,
    ) -> Iterator[Change]:
        """One state change: permission, transaction, target version, audit event(s), projections; all or nothing.

        ``authorize=False`` only for the bootstrap steps that precede any user (``init``, the first admin)."""
        from modelreg.store import outbox

        self.ensure_schema()
        self._drain_left_over()
        with write_session(self.engine) as session:
            user = self.authorize(session, action) if authorize else None
            if authorize:
                # Guarded: the rows this change relies on must be what the log proves (bootstrap has none yet).
                self.guard(session, model, version)
            target = (
                repo.find_version(session, model, str(version)) if model and version is not None else None
            )
            tx = Change(self, session, action, user, target)
            for check in self.change_checks:
                check(tx)
            yield tx
            if not tx.events:
                raise RuntimeError(f"{action}: a state change must record its audit event (tx.event)")
            session.flush()
            for act, mv, extra in tx.projections:
                # MLflow follows from the outbox after commit; a version not linked to MLflow has nothing to
                # mirror. Other plug-ins' projections still run inside the transaction.
                replaced = extra.get("replaced")
                outbox.enqueue(
                    session, [(v.model, v.version) for v in (mv, replaced) if v is not None and v.model_uri]
                )
                for projection in self.projections:
                    projection(act, mv, extra)
            queued = session.info.pop(outbox.SESSION_FLAG, False)
        if queued:  # committed: only now may MLflow follow
            self.drain_outbox()

    def unknown_user_message(self) -> str:
        return (
            f"unknown user {self.actor!r}: user {self.actor!r} is not registered; an admin adds users with "
            "`modelreg user add NAME --role ROLE` (`modelreg user list` shows who is)"
        )

    def check_actor(self) -> None:
        """Refuse an unregistered acting user before anything else is looked at (e.g. their key file)."""
        with self.reading() as rd:
            if repo.get_user(rd.session, self.actor) is None:  # also when not named explicitly
                raise PermissionDenied(self.unknown_user_message())

    def is_admin(self, user: User | None) -> bool:
        return user is not None and Role.ADMIN.value in user.roles
