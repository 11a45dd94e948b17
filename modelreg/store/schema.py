"""Create, upgrade and check the registry schema (Alembic, shipped inside the package).

Commands other than ``init`` only read the version table and compare it with ``HEAD_REVISION``, so they do not
import Alembic on the CLI's start-up path.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from modelreg.errors import SchemaError

if TYPE_CHECKING:  # SQLAlchemy is imported by the functions that use it: `list` checks revisions without it
    from sqlalchemy import Engine

VERSION_TABLE = "modelreg_alembic_version"
HEAD_REVISION = "0005_outcomes"
KNOWN_REVISIONS = (
    "0001",
    "0002_signed_events",
    "0002_gm_suites",
    "0002_operations",
    "0002_isolation",
    "0003_service",
    "0004_web_sessions",
    "0005_outcomes",
)
MIGRATIONS = Path(__file__).parent / "migrations"


def _alembic_config(connection):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def current_revision(engine: Engine) -> str | None:
    from sqlalchemy import inspect, text

    with engine.connect() as conn:
        if not inspect(conn).has_table(VERSION_TABLE):
            return None
        row = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).first()
        return row[0] if row else None


def check_schema(engine: Engine) -> None:
    check_revision(current_revision(engine))


def check_revision(revision: str | None) -> None:
    """Refuse, with what to do, a schema revision this modelreg cannot work on (None: not initialised)."""
    if revision == HEAD_REVISION:
        return
    if revision is None:
        raise SchemaError("the registry database is not initialised: run `modelreg init` first")
    if revision in KNOWN_REVISIONS:
        raise SchemaError(
            f"the registry schema is at revision {revision}, this modelreg needs {HEAD_REVISION}: run `modelreg init` to upgrade"
        )
    raise SchemaError(
        f"the registry schema is at revision {revision!r}, which this modelreg does not know (written by a newer version?): "
        "upgrade modelreg; nothing was changed"
    )


def init_schema(engine: Engine) -> tuple[str | None, str]:
    """Create or upgrade to head; idempotent. Returns (revision before, revision after)."""
    from alembic import command
    from sqlalchemy import inspect

    before = current_revision(engine)
    if before is not None and before not in KNOWN_REVISIONS:
        raise SchemaError(
            f"the registry schema is at revision {before!r}, which this modelreg does not know (written by a newer version?): "
            "refusing to touch it"
        )
    if before is None:
        with engine.connect() as conn:
            existing = set(inspect(conn).get_table_names())
        if {"models", "audit_events"} & existing:
            raise SchemaError(
                "the database has registry tables but no modelreg version table: refusing to touch it"
            )
    if before != HEAD_REVISION:
        with engine.begin() as conn:
            command.upgrade(_alembic_config(conn), "head")
    return before, HEAD_REVISION
