"""model risk operations: findings tracked until remediated

Revision ID: 0002_operations
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_operations"
down_revision = "0002_gm_suites"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "tracked_findings",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("version_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("control_id", sa.String(length=100), nullable=False),
        sa.Column("purpose", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=30), nullable=False),
        sa.Column("severity", sa.String(length=20), nullable=False),
        sa.Column("clause_ids", sa.JSON(), nullable=False),
        sa.Column("title_zh", sa.Text(), nullable=False),
        sa.Column("title_en", sa.Text(), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "opened_evaluation_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("last_evaluation_id", sa.BigInteger(), nullable=False),
        sa.Column("occurrences", sa.Integer(), nullable=False),
        sa.Column("last_result", sa.JSON(), nullable=False),
        sa.Column("remediation", sa.Text(), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_by", sa.String(length=200), nullable=True),
        sa.Column("closure", sa.JSON(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["version_id"], ["model_versions.id"], name=op.f("fk_tracked_findings_version_id_model_versions")
        ),
        sa.ForeignKeyConstraint(
            ["opened_evaluation_id"],
            ["evaluations.id"],
            name=op.f("fk_tracked_findings_opened_evaluation_id_evaluations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tracked_findings")),
    )
    with op.batch_alter_table("tracked_findings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tracked_findings_version_id"), ["version_id"], unique=False)
        batch_op.create_index(
            "uq_tracked_findings_one_open",
            ["version_id", "control_id", "purpose"],
            unique=True,
            sqlite_where=sa.text("status != 'closed'"),
            postgresql_where=sa.text("status != 'closed'"),
        )


def downgrade() -> None:
    with op.batch_alter_table("tracked_findings", schema=None) as batch_op:
        batch_op.drop_index("uq_tracked_findings_one_open")
        batch_op.drop_index(batch_op.f("ix_tracked_findings_version_id"))
    op.drop_table("tracked_findings")
