"""SQLAlchemy 2.x typed tables. Rows never leave ``modelreg.store``: they map to domain objects in repo.py."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# A naming convention makes constraint names stable across SQLite and PostgreSQL, so migrations can refer to them.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

UTCDateTime = DateTime(timezone=True)
Id = BigInteger().with_variant(Integer, "sqlite")  # SQLite only auto-increments INTEGER PRIMARY KEY


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class UserRow(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    roles: Mapped[list] = mapped_column(JSON)
    public_key_pem: Mapped[str | None] = mapped_column(Text)
    key_id: Mapped[str | None] = mapped_column(String(100))
    key_suite: Mapped[str | None] = mapped_column(String(16))  # ed25519 | sm2-sm3
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(200))


class ModelRow(Base):
    __tablename__ = "models"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(500), unique=True)
    owner: Mapped[str] = mapped_column(String(200))
    purpose: Mapped[str] = mapped_column(Text)
    business_line: Mapped[str | None] = mapped_column(String(200))
    risk_tier: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(200))


class VersionRow(Base):
    __tablename__ = "model_versions"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), index=True)
    version: Mapped[str] = mapped_column(String(100))
    stage: Mapped[str] = mapped_column(String(20), index=True)
    suspended: Mapped[bool] = mapped_column(Boolean, default=False)
    # Compare-and-set counter: every state change bumps it, so a concurrent writer's stale view loses.
    row_version: Mapped[int] = mapped_column(Integer, default=1)
    registered_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    mlflow_run_id: Mapped[str | None] = mapped_column(String(100))
    model_uri: Mapped[str | None] = mapped_column(Text)
    artifact_digest: Mapped[str | None] = mapped_column(String(100))
    mlflow_info: Mapped[dict] = mapped_column(JSON, default=dict)
    model_card: Mapped[dict] = mapped_column(JSON, default=dict)
    __table_args__ = (
        UniqueConstraint("model_id", "version", name="uq_model_versions_model_version"),
        # At most one deployed version per model, enforced by the database itself.
        Index(
            "uq_model_versions_one_deployed",
            "model_id",
            unique=True,
            sqlite_where=text("stage = 'deploy'"),
            postgresql_where=text("stage = 'deploy'"),
        ),
    )


class TransitionRow(Base):
    __tablename__ = "transitions"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), index=True)
    action: Mapped[str] = mapped_column(String(50))
    source: Mapped[str] = mapped_column(String(20))
    target: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    audit_seq: Mapped[int] = mapped_column(BigInteger)


class DatasetRow(Base):
    __tablename__ = "datasets"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), index=True)
    role: Mapped[str] = mapped_column(String(30))
    name: Mapped[str] = mapped_column(String(500))
    digest: Mapped[str] = mapped_column(String(100))
    rows: Mapped[int] = mapped_column(BigInteger)
    columns: Mapped[list] = mapped_column(JSON)
    source: Mapped[str | None] = mapped_column(Text)
    owner: Mapped[str | None] = mapped_column(String(200))
    attached_by: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class AuditEventRow(Base):
    """Append-only: triggers refuse UPDATE, DELETE and TRUNCATE. ``seq`` is the Merkle leaf index."""

    __tablename__ = "audit_events"
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    event: Mapped[str] = mapped_column(String(100), index=True)
    actor: Mapped[str] = mapped_column(String(200))
    db_role: Mapped[str | None] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    model: Mapped[str | None] = mapped_column(String(500), index=True)
    version: Mapped[str | None] = mapped_column(String(100))
    # The event itself: its canonical bytes (RFC 8785) are what is hashed and what is shown. The columns above
    # are copies for querying; verification checks them against these bytes.
    canonical: Mapped[bytes] = mapped_column(LargeBinary)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary)
    # Root of the tree of size seq+1, as computed at append time.
    root_hash: Mapped[bytes] = mapped_column(LargeBinary)
    # The writer's signature over (seq, leaf_hash, root_hash) as JSON; NULL for events of format v1.
    signature: Mapped[str | None] = mapped_column(Text, index=False)


class AuditStateRow(Base):
    """One row: the Merkle frontier after the last append. Locking it serialises appends on PostgreSQL."""

    __tablename__ = "audit_state"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    frontier: Mapped[list] = mapped_column(JSON)  # hex subtree roots, largest first
    root_hash: Mapped[bytes] = mapped_column(LargeBinary)
    # Chosen once at init (modelreg init --hash / --suite), never changed: one log never mixes hashes.
    tree_hash: Mapped[str] = mapped_column(String(16), server_default="sha256")
    signing_suite: Mapped[str] = mapped_column(String(16), server_default="ed25519")


class EvaluationRow(Base):
    __tablename__ = "evaluations"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(20))  # validation | monitoring | precheck
    gate: Mapped[str] = mapped_column(String(20))
    tier: Mapped[str] = mapped_column(String(20))
    policy_id: Mapped[str] = mapped_column(String(200))
    policy_version: Mapped[str] = mapped_column(String(50))
    policy_digest: Mapped[str] = mapped_column(String(100))
    model_artifact_digest: Mapped[str | None] = mapped_column(String(100))
    data: Mapped[dict] = mapped_column(JSON)  # fingerprints, column spec, parameters
    status: Mapped[str] = mapped_column(String(20))
    digest: Mapped[str] = mapped_column(String(100))
    mlflow_run_id: Mapped[str | None] = mapped_column(String(100))
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class MonitorResultRow(Base):
    __tablename__ = "monitor_results"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    evaluation_id: Mapped[int] = mapped_column(ForeignKey("evaluations.id"), index=True)
    kind: Mapped[str] = mapped_column(String(50))
    result: Mapped[dict] = mapped_column(JSON)
    digest: Mapped[str] = mapped_column(String(100))


class FindingRow(Base):
    __tablename__ = "findings"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    evaluation_id: Mapped[int] = mapped_column(ForeignKey("evaluations.id"), index=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), index=True)
    control_id: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20))
    severity: Mapped[str] = mapped_column(String(20))
    clause_ids: Mapped[list] = mapped_column(JSON)
    detail: Mapped[dict] = mapped_column(JSON)


class SignedRecordRow(Base):
    """Approvals, rejections, attestations and waivers: a canonical payload and its signature."""

    __tablename__ = "signed_records"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # approval | rejection | attestation | waiver
    role: Mapped[str | None] = mapped_column(String(30))
    control_id: Mapped[str | None] = mapped_column(String(100))
    actor: Mapped[str] = mapped_column(String(200))
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    signature: Mapped[dict] = mapped_column(JSON)
    until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class ArtifactRow(Base):
    """Content-addressed store: files live under <home>/artifacts/<sha[:2]>/<sha>; the row says what it is."""

    __tablename__ = "artifacts"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    media_type: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class EvaluationArtifactRow(Base):
    __tablename__ = "evaluation_artifacts"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    evaluation_id: Mapped[int] = mapped_column(ForeignKey("evaluations.id"), index=True)
    monitor_kind: Mapped[str] = mapped_column(String(50))
    name: Mapped[str] = mapped_column(String(500))
    sha256: Mapped[str] = mapped_column(ForeignKey("artifacts.sha256"))


class CheckpointRow(Base):
    __tablename__ = "audit_checkpoints"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    size: Mapped[int] = mapped_column(BigInteger)
    body: Mapped[dict] = mapped_column(JSON)
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class TrackedFindingRow(Base):
    """A failed control tracked until remediated (model risk operations): opened or updated by a validation or
    monitoring run, closed by a later passing run of the same control or by a signed acceptance."""

    __tablename__ = "tracked_findings"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), index=True)
    control_id: Mapped[str] = mapped_column(String(100))
    purpose: Mapped[str] = mapped_column(String(20))  # validation | monitoring
    status: Mapped[str] = mapped_column(String(30))  # open | remediation_proposed | closed
    severity: Mapped[str] = mapped_column(String(20))
    clause_ids: Mapped[list] = mapped_column(JSON)
    title_zh: Mapped[str] = mapped_column(Text)
    title_en: Mapped[str] = mapped_column(Text)
    owner: Mapped[str] = mapped_column(String(200))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    opened_evaluation_id: Mapped[int] = mapped_column(ForeignKey("evaluations.id"))
    last_evaluation_id: Mapped[int] = mapped_column(BigInteger)
    occurrences: Mapped[int] = mapped_column(Integer, default=1)
    last_result: Mapped[dict] = mapped_column(JSON)  # status, value, threshold, reason of the latest failure
    remediation: Mapped[str | None] = mapped_column(Text)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_by: Mapped[str | None] = mapped_column(String(200))
    closure: Mapped[dict | None] = mapped_column(JSON)  # {"kind": "passed"|"accepted", evidence ids/digests}
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    __table_args__ = (
        # At most one unclosed finding per control and kind of run of a version: a repeat failure updates it.
        Index(
            "uq_tracked_findings_one_open",
            "version_id",
            "control_id",
            "purpose",
            unique=True,
            sqlite_where=text("status != 'closed'"),
            postgresql_where=text("status != 'closed'"),
        ),
    )


class OutboxRow(Base):
    """MLflow projection work, written in the transaction of the audit event that caused it and applied only
    after that transaction committed (so MLflow can lag the registry, never lead it)."""

    __tablename__ = "mlflow_outbox"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    audit_seq: Mapped[int] = mapped_column(BigInteger)
    model: Mapped[str] = mapped_column(String(500))
    version: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    applied_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=False)

    __table_args__ = (Index("ix_mlflow_outbox_pending", "applied_at"),)


class ServiceNonceRow(Base):
    """A request signature's nonce the service accepted (``modelreg.service``): unique per key, so a captured
    request replayed within the signature window fails on the database's own constraint."""

    __tablename__ = "service_nonces"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    key_id: Mapped[str] = mapped_column(String(100))
    nonce: Mapped[str] = mapped_column(String(200))
    created: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("key_id", "nonce", name="uq_service_nonces_key_id_nonce"),
        Index("ix_service_nonces_expires_at", "expires_at"),
    )


class SecurityEventRow(Base):
    """An authentication failure or a refused action seen by the service: a security log, not the audit chain."""

    __tablename__ = "security_events"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(50))  # authentication | authorization | precondition | ...
    code: Mapped[str] = mapped_column(String(50))
    client: Mapped[str | None] = mapped_column(String(100))
    subject: Mapped[str | None] = mapped_column(String(200))
    method: Mapped[str | None] = mapped_column(String(10))
    path: Mapped[str | None] = mapped_column(String(1000))
    detail: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_security_events_at", "at"),)


class WebSessionRow(Base):
    """A signed-in session of the auditor's web view when the registry service serves it: kept in the database
    so every worker and process of the service knows it, and a logout ends it everywhere. The cookie carries a
    random id; only its SHA-256 is stored."""

    __tablename__ = "web_sessions"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    sid_sha256: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(200))
    roles: Mapped[list] = mapped_column(JSON)
    csrf: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("sid_sha256", name="uq_web_sessions_sid_sha256"),
        Index("ix_web_sessions_expires_at", "expires_at"),
    )


class DecisionRow(Base):
    """A scored decision of a monitoring run's scoring log (append-only: triggers refuse UPDATE and DELETE).
    Written with core bulk inserts (``modelreg.store.outcomes``), never as ORM objects."""

    __tablename__ = "decisions"
    # No foreign keys on the two bulk tables (see migration 0005_outcomes): the registry writes the ids.
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    version_id: Mapped[int] = mapped_column(Id)  # model_versions.id
    decision_id: Mapped[str] = mapped_column(String(200))
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime)
    score: Mapped[float | None] = mapped_column(Float)
    evaluation_id: Mapped[int] = mapped_column(Id)  # evaluations.id

    __table_args__ = (UniqueConstraint("version_id", "decision_id", name="uq_decisions_version_decision"),)


class OutcomeBatchRow(Base):
    """One ``outcomes add``: the file's digest, its counts (rows, matched, unknown, ...), who and when."""

    __tablename__ = "outcome_batches"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    source: Mapped[str] = mapped_column(String(500))
    digest: Mapped[str] = mapped_column(String(100))
    counts: Mapped[dict] = mapped_column(JSON)
    added_by: Mapped[str] = mapped_column(String(200))
    added_at: Mapped[datetime] = mapped_column(UTCDateTime)


class OutcomeRow(Base):
    """A decision's observed outcome (1 = the positive class, e.g. default), unique per version and decision
    id; who recorded it and when are on its batch. Append-only like ``decisions``."""

    __tablename__ = "outcomes"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    version_id: Mapped[int] = mapped_column(Id)  # model_versions.id
    decision_id: Mapped[str] = mapped_column(String(200))
    outcome: Mapped[int] = mapped_column(Integer)
    observed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    batch_id: Mapped[int] = mapped_column(Id)  # outcome_batches.id

    __table_args__ = (UniqueConstraint("version_id", "decision_id", name="uq_outcomes_version_decision"),)


# Monitoring thresholds per metric may need floats in findings' detail JSON only; Float kept importable.
__all__ = [name for name in dir() if name.endswith("Row")] + ["Base", "Float"]
