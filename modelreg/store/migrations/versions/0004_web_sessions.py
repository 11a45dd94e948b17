"""web sessions: the auditor's web view's sign-ins, kept in the database when the registry service serves it

Revision ID: 0004_web_sessions
Revises: 0003_service
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_web_sessions"
down_revision = "0003_service"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    # Shared by every worker and process of the service (a process-local dict would log a user out, or keep
    # them in, depending on which worker answers). Only the SHA-256 of the cookie's random id is stored.
    op.create_table(
        "web_sessions",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("sid_sha256", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("csrf", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_sessions")),
        sa.UniqueConstraint("sid_sha256", name="uq_web_sessions_sid_sha256"),
    )
    with op.batch_alter_table("web_sessions", schema=None) as batch_op:
        batch_op.create_index("ix_web_sessions_expires_at", ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("web_sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_web_sessions_expires_at")
    op.drop_table("web_sessions")
