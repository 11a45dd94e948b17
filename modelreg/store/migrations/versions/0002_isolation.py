"""isolation: the MLflow outbox, and SQLite guards against INSERT OR REPLACE / upserts on the audit tables

Revision ID: 0002_isolation
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_isolation"
down_revision = "0002_operations"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer, "sqlite")

# SQLite resolves a conflict clause (OR REPLACE, ON CONFLICT DO UPDATE, ...) only after BEFORE INSERT triggers
# have run, and OR REPLACE deletes the old row without firing DELETE triggers (unless recursive_triggers is
# on). A BEFORE INSERT guard that refuses any existing key therefore covers every conflict clause.
_SQLITE_GUARDS = (
    (
        "audit_events_no_replace",
        "CREATE TRIGGER audit_events_no_replace BEFORE INSERT ON audit_events "
        "WHEN EXISTS (SELECT 1 FROM audit_events WHERE seq = NEW.seq) "
        "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only: INSERT over an existing seq refused'); END",
    ),
    (
        "audit_state_no_replace",
        "CREATE TRIGGER audit_state_no_replace BEFORE INSERT ON audit_state "
        "WHEN EXISTS (SELECT 1 FROM audit_state) "
        "BEGIN SELECT RAISE(ABORT, 'audit_state cannot be replaced'); END",
    ),
)


def upgrade() -> None:
    op.create_table(
        "mlflow_outbox",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("audit_seq", sa.BigInteger(), nullable=False),
        sa.Column("model", sa.String(length=500), nullable=False),
        sa.Column("version", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mlflow_outbox")),
    )
    with op.batch_alter_table("mlflow_outbox", schema=None) as batch_op:
        batch_op.create_index("ix_mlflow_outbox_pending", ["applied_at"], unique=False)
    if op.get_bind().dialect.name == "sqlite":
        for _name, sql in _SQLITE_GUARDS:
            op.execute(sql)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name, _sql in _SQLITE_GUARDS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    with op.batch_alter_table("mlflow_outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_mlflow_outbox_pending")
    op.drop_table("mlflow_outbox")
