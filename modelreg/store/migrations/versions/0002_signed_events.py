"""signed audit events: a signature column on audit_events, and an index on the event name

The signature is kept beside the event, not inside its canonical bytes: it signs (seq, leaf hash, root after the
append), so it cannot be part of the bytes that make the leaf. Events written before this revision stay as they
are (format v1, unsigned) and still verify.

Revision ID: 0002_signed_events
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_signed_events"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # ADD COLUMN needs no table rebuild on SQLite, so the append-only triggers stay exactly as they are.
    op.add_column("audit_events", sa.Column("signature", sa.Text(), nullable=True))
    op.create_index("ix_audit_events_event", "audit_events", ["event"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_audit_events_event", table_name="audit_events")
    with op.batch_alter_table("audit_events") as batch_op:
        batch_op.drop_column("signature")
