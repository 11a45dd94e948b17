"""PostgreSQL least privilege for the outcome tables: the application role appends decisions, outcomes and
batches and can neither change nor remove them; the guard function belongs to the owner role."""

from __future__ import annotations

from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from tests.isolation.test_pg_roles import roles

__all__ = ["roles"]


def test_app_role_appends_outcomes_and_never_changes_them(roles):
    admin = create_engine(roles.admin_url, poolclass=NullPool)
    try:
        with admin.connect() as conn:

            def has(role: str, table: str, priv: str) -> bool:
                return conn.execute(
                    text("SELECT has_table_privilege(:r, :t, :p)"), {"r": role, "t": table, "p": priv}
                ).scalar_one()

            for table in ("decisions", "outcomes", "outcome_batches"):
                for priv, want in (
                    ("SELECT", True),
                    ("INSERT", True),
                    ("UPDATE", False),
                    ("DELETE", False),
                    ("TRUNCATE", False),
                    ("TRIGGER", False),
                ):
                    assert has(roles.app, table, priv) is want, (table, priv)
                    assert has(roles.auditor, table, priv) is (priv == "SELECT"), (table, priv)
            owner = conn.execute(
                text("SELECT pg_get_userbyid(proowner) FROM pg_proc WHERE proname = 'modelreg_append_only'")
            ).scalar_one()
            assert owner == roles.owner
            enabled = dict(
                conn.execute(
                    text(
                        "SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid IN "
                        "('decisions'::regclass, 'outcomes'::regclass, 'outcome_batches'::regclass) "
                        "AND NOT tgisinternal"
                    )
                ).all()
            )
            assert len(enabled) == 6 and set(enabled.values()) == {"A"}  # ENABLE ALWAYS
    finally:
        admin.dispose()
