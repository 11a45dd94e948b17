"""service: the registry service's replay guard (seen request-signature nonces) and its security log

Revision ID: 0003_service
Revises: 0002_isolation
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_service"
down_revision = "0002_isolation"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    # One row per accepted signed request: the unique key makes a replay fail inside the database, so it is
    # refused across service restarts and across workers (a process-local cache would not be).
    op.create_table(
        "service_nonces",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("key_id", sa.String(length=100), nullable=False),
        sa.Column("nonce", sa.String(length=200), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_nonces")),
        sa.UniqueConstraint("key_id", "nonce", name="uq_service_nonces_key_id_nonce"),
    )
    with op.batch_alter_table("service_nonces", schema=None) as batch_op:
        batch_op.create_index("ix_service_nonces_expires_at", ["expires_at"], unique=False)
    # Refused requests and authentication failures: kept out of the audit chain so a flood cannot bloat it.
    op.create_table(
        "security_events",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=50), nullable=False),
        sa.Column("code", sa.String(length=50), nullable=False),
        sa.Column("client", sa.String(length=100), nullable=True),
        sa.Column("subject", sa.String(length=200), nullable=True),
        sa.Column("method", sa.String(length=10), nullable=True),
        sa.Column("path", sa.String(length=1000), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_security_events")),
    )
    with op.batch_alter_table("security_events", schema=None) as batch_op:
        batch_op.create_index("ix_security_events_at", ["at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("security_events", schema=None) as batch_op:
        batch_op.drop_index("ix_security_events_at")
    op.drop_table("security_events")
    with op.batch_alter_table("service_nonces", schema=None) as batch_op:
        batch_op.drop_index("ix_service_nonces_expires_at")
    op.drop_table("service_nonces")
