"""outcomes: scored decisions (id, time, score, the evaluation that scored them) and their later outcomes

Revision ID: 0005_outcomes
Revises: 0004_web_sessions

Three append-only tables. ``decisions`` is written by a monitoring run on a scoring log that carries the model
card's ``decision_id_column`` and ``decision_time_column``; ``outcome_batches`` is one row per ``modelreg
outcomes add`` (the file's digest and its counts); ``outcomes`` one row per recorded outcome, unique per
(version, decision id). Like the audit tables, the database refuses UPDATE and DELETE on them (SQLite
``RAISE(ABORT)`` triggers; PostgreSQL row triggers and a TRUNCATE trigger, ``ENABLE ALWAYS``); the
least-privilege application role gets SELECT and INSERT only (``modelreg.store.pg_roles``). There is no
BEFORE INSERT guard as on ``audit_events``: the registry's SQLite connections run with ``recursive_triggers``
on, so ``INSERT OR REPLACE`` fires the DELETE guard, and a per-row lookup trigger would cost seconds on a
million-row batch. For the same reason the two bulk tables have no foreign keys (PostgreSQL checks each
with a per-row trigger, which triples a million-row insert: measured 3.4 s against 1.0 s for 200,000 rows):
their ``version_id``, ``evaluation_id`` and ``batch_id`` are written only by the registry, in the transaction
that holds the rows they name, and versions, evaluations and batches are never deleted.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_outcomes"
down_revision = "0004_web_sessions"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer, "sqlite")
TABLES = ("decisions", "outcome_batches", "outcomes")


def upgrade() -> None:
    op.create_table(
        "decisions",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("version_id", Id, nullable=False),
        sa.Column("decision_id", sa.String(length=200), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("evaluation_id", Id, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decisions")),
        sa.UniqueConstraint("version_id", "decision_id", name="uq_decisions_version_decision"),
    )
    op.create_table(
        "outcome_batches",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("version_id", Id, nullable=False),
        sa.Column("source", sa.String(length=500), nullable=False),
        sa.Column("digest", sa.String(length=100), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("added_by", sa.String(length=200), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["version_id"], ["model_versions.id"], name=op.f("fk_outcome_batches_version_id_model_versions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outcome_batches")),
    )
    op.create_table(
        "outcomes",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("version_id", Id, nullable=False),
        sa.Column("decision_id", sa.String(length=200), nullable=False),
        sa.Column("outcome", sa.Integer(), nullable=False),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("batch_id", Id, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outcomes")),
        sa.UniqueConstraint("version_id", "decision_id", name="uq_outcomes_version_decision"),
    )
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for table in TABLES:
            for verb in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: {verb} refused'); END"
                )
    elif bind.dialect.name == "postgresql":
        op.execute(
            """
            CREATE OR REPLACE FUNCTION modelreg_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP;
            END $$;
            """
        )
        for table in TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_no_change BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION modelreg_append_only()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION modelreg_append_only()"
            )
            op.execute(f"ALTER TABLE {table} ENABLE ALWAYS TRIGGER {table}_no_change")
            op.execute(f"ALTER TABLE {table} ENABLE ALWAYS TRIGGER {table}_no_truncate")


def downgrade() -> None:
    bind = op.get_bind()
    for table in reversed(TABLES):
        if bind.dialect.name == "sqlite":
            for verb in ("update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{verb}")
        elif bind.dialect.name == "postgresql":
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_change ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        op.drop_table(table)
    if bind.dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS modelreg_append_only()")
