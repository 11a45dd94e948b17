"""国密 suites: the audit log's tree hash and the registry's signing suite, recorded once; each user key's suite.

Revision ID: 0002_gm_suites
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_gm_suites"
down_revision = "0002_signed_events"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN (SQLite supports it natively): batch mode would copy audit_state into a new table and
    # drop the triggers that keep it forward-only. Registries made before this revision are SHA-256/Ed25519.
    op.add_column(
        "audit_state", sa.Column("tree_hash", sa.String(length=16), nullable=False, server_default="sha256")
    )
    op.add_column(
        "audit_state",
        sa.Column("signing_suite", sa.String(length=16), nullable=False, server_default="ed25519"),
    )
    op.add_column("users", sa.Column("key_suite", sa.String(length=16), nullable=True))
    users = sa.table("users", sa.column("key_id", sa.String), sa.column("key_suite", sa.String))
    op.execute(users.update().where(users.c.key_id.is_not(None)).values(key_suite="ed25519"))


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("key_suite")
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        # SQLite >= 3.35 drops a column in place, keeping audit_state's triggers (batch mode would not).
        op.execute("ALTER TABLE audit_state DROP COLUMN signing_suite")
        op.execute("ALTER TABLE audit_state DROP COLUMN tree_hash")
    else:
        op.drop_column("audit_state", "signing_suite")
        op.drop_column("audit_state", "tree_hash")
