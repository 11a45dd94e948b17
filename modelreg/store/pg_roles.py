"""Least privilege on PostgreSQL: ``modelreg init --pg-roles``.

Three roles (``<prefix>`` defaults to ``modelreg``):

* ``<prefix>_owner`` (NOLOGIN): owns every registry table, the audit trigger functions and the schema's
  objects. Only an administrator uses it, for ``modelreg init`` upgrades (``SET ROLE``); the application never
  connects as it. Whoever owns a table can disable its triggers or replace their functions, so the owner is
  kept away from the running application.
* ``<prefix>_app`` (LOGIN): what ``MODELREG_DATABASE_URL`` names in production. SELECT and INSERT on
  ``audit_events`` (no UPDATE, DELETE, TRUNCATE, TRIGGER); SELECT and UPDATE on ``audit_state`` (its trigger
  lets it only move forward); read/write on the registry's other tables; no DDL (it owns nothing and has no
  CREATE on the schema).
* ``<prefix>_auditor`` (LOGIN): SELECT on every registry table, nothing else.

Passwords are not set here (``ALTER ROLE … PASSWORD`` or your pg_hba/IAM setup does that).
"""

from __future__ import annotations

import re

from sqlalchemy import Engine, text

from modelreg.errors import BadInput, PermissionDenied
from modelreg.store.schema import VERSION_TABLE

APPEND_ONLY = {
    "audit_events": "SELECT, INSERT",
    "audit_state": "SELECT, UPDATE",
    "audit_checkpoints": "SELECT, INSERT",
    # scored decisions and their outcomes: append-only like the audit log (0005_outcomes)
    "decisions": "SELECT, INSERT",
    "outcome_batches": "SELECT, INSERT",
    "outcomes": "SELECT, INSERT",
}
TRIGGER_FUNCTIONS = (
    "modelreg_audit_append_only()",
    "modelreg_audit_state_forward()",
    "modelreg_append_only()",
)


def role_names(prefix: str) -> dict[str, str]:
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,40}", prefix):
        raise BadInput(
            f"--role-prefix must be lower-case letters, digits and underscores (at most 41). Got {prefix!r} instead."
        )
    return {"owner": f"{prefix}_owner", "app": f"{prefix}_app", "auditor": f"{prefix}_auditor"}


def registry_tables() -> list[str]:
    from modelreg.store.tables import Base

    return sorted([*Base.metadata.tables, VERSION_TABLE])


def app_grant(table: str) -> str:
    if table == VERSION_TABLE:
        return "SELECT"  # schema upgrades are the owner's job
    return APPEND_ONLY.get(table, "SELECT, INSERT, UPDATE, DELETE")


def setup_roles(engine: Engine, prefix: str = "modelreg") -> dict:
    """Create (or re-apply) the three roles and their grants. Idempotent; needs a superuser connection."""
    if engine.dialect.name != "postgresql":
        raise BadInput("--pg-roles needs a PostgreSQL registry (MODELREG_DATABASE_URL=postgresql://…)")
    roles = role_names(prefix)
    tables = registry_tables()
    with engine.begin() as conn:
        me, superuser = conn.execute(
            text("SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user")
        ).one()
        if not superuser:
            raise PermissionDenied(
                f"--pg-roles creates roles and hands the tables to the owner role: connect as a superuser (connected as {me!r})"
            )
        for kind, name in roles.items():
            exists = conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :n"), {"n": name}).first()
            if not exists:
                conn.execute(text(f'CREATE ROLE "{name}" {"NOLOGIN" if kind == "owner" else "LOGIN"}'))
            # Never superuser, never able to create roles or databases, never bypassing row security.
            conn.execute(
                text(f'ALTER ROLE "{name}" NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS')
            )
        owner, app, auditor = roles["owner"], roles["app"], roles["auditor"]
        database = conn.execute(text("SELECT current_database()")).scalar_one()
        conn.execute(text(f'REVOKE CREATE, TEMPORARY ON DATABASE "{database}" FROM PUBLIC'))
        conn.execute(text(f'GRANT CONNECT ON DATABASE "{database}" TO "{app}", "{auditor}"'))
        conn.execute(text("REVOKE CREATE ON SCHEMA public FROM PUBLIC"))
        conn.execute(text(f'GRANT USAGE ON SCHEMA public TO "{app}", "{auditor}"'))
        present = set(
            conn.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename = ANY(:t)"),
                {"t": tables},
            ).scalars()
        )
        missing = [t for t in tables if t not in present]
        if missing:
            raise BadInput(
                f"the registry schema is incomplete (missing {', '.join(missing)}): run `modelreg init` first"
            )
        for table in tables:
            conn.execute(text(f'ALTER TABLE "{table}" OWNER TO "{owner}"'))  # owned sequences follow
            conn.execute(text(f'REVOKE ALL ON "{table}" FROM PUBLIC, "{app}", "{auditor}"'))
            conn.execute(text(f'GRANT SELECT ON "{table}" TO "{auditor}"'))
            conn.execute(text(f'GRANT {app_grant(table)} ON "{table}" TO "{app}"'))
        for function in TRIGGER_FUNCTIONS:
            conn.execute(text(f'ALTER FUNCTION {function} OWNER TO "{owner}"'))
            conn.execute(text(f"REVOKE ALL ON FUNCTION {function} FROM PUBLIC"))
        conn.execute(text(f'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO "{app}"'))
    return {
        "roles": roles,
        "database": database,
        "grants": {
            roles["app"]: {t: app_grant(t) for t in tables},
            roles["auditor"]: {t: "SELECT" for t in tables},
        },
    }


def privileged_connection(conn) -> str | None:
    """Why this connection is too powerful for production (superuser, or member of the tables' owner), or
    None when it is a least-privilege role."""
    row = conn.execute(
        text(
            "SELECT r.rolname, r.rolsuper, c.relowner IS NOT NULL AND pg_has_role(current_user, c.relowner, 'MEMBER') "
            "FROM pg_roles r LEFT JOIN pg_class c ON c.relname = 'audit_events' "
            "AND c.relnamespace = 'public'::regnamespace WHERE r.rolname = current_user"
        )
    ).one()
    name, superuser, owner = row
    if superuser:
        return f"connected as {name!r}, a PostgreSQL superuser"
    if owner:
        return f"connected as {name!r}, which owns (or is a member of the owner of) the audit tables"
    return None
