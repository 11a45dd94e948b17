"""``modelreg list`` without SQLAlchemy: the version summary of an SQLite registry read through the standard
library's ``sqlite3`` driver, read-only.

Importing SQLAlchemy and declaring the ORM tables cost more CPU than the rest of ``modelreg list`` on 10,000
versions, so the CLI's most frequent read goes straight to the driver for the embedded default. The query, the
schema-revision check and the objects returned are those of ``Registry.list`` (``store.repo.list_versions``);
a test compares the two on SQLite. Any other database (PostgreSQL) is read through the registry as usual.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from modelreg.domain.entities import ModelVersion
from modelreg.domain.stages import Stage, values
from modelreg.errors import BadInput, DatabaseUnavailable, SchemaError

if TYPE_CHECKING:
    from modelreg.settings import Settings

_SQL = """
SELECT m.name, v.version, v.stage, v.suspended, v.registered_by, v.created_at, v.updated_at,
       m.owner, m.risk_tier, m.purpose, m.business_line, v.mlflow_run_id, v.model_uri, v.artifact_digest
FROM models AS m JOIN model_versions AS v ON v.model_id = m.id
"""


def sqlite_file(url: str) -> Path | None:
    """The database file of a plain ``sqlite:///path`` URL (None for anything else, in-memory included)."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or "?" in url:
        return None
    rest = url[len(prefix) :]
    return Path(rest) if rest and rest != ":memory:" else None


def _utc(text: str) -> datetime:
    # SQLAlchemy stores SQLite datetimes as naive "YYYY-MM-DD HH:MM:SS.ffffff" in UTC
    value = datetime.fromisoformat(text)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def list_versions(
    settings: Settings, stage: str | None = None, model: str | None = None, *, actor: str | None = None
) -> list[ModelVersion]:
    """Every version's summary (no MLflow metadata or model card: ``show`` has those), as ``Registry.list``.
    ``actor``: a user named explicitly (``--as``/``MODELREG_USER``) must be registered, as for every read."""
    if stage is not None and stage not in values(Stage):
        raise BadInput(f"--stage must be one of {', '.join(values(Stage))}. Got {stage!r} instead.")
    path = sqlite_file(settings.database_url)
    if path is None:
        from modelreg.registry import Registry

        return Registry(settings, actor=actor).list(stage, model)
    return _sqlite_list(path, stage, model, actor)


def _sqlite_list(
    path: Path, stage: str | None, model: str | None, actor: str | None = None
) -> list[ModelVersion]:
    from modelreg.store.schema import VERSION_TABLE, check_revision

    if not path.exists():
        raise SchemaError(f"no registry database at {path}: run `modelreg init` first")
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    except sqlite3.Error as exc:
        raise DatabaseUnavailable(f"cannot reach the registry database {path}: {exc}") from None
    try:
        try:
            row = conn.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchone()
        except sqlite3.OperationalError as exc:
            if "no such table" not in str(exc):
                raise DatabaseUnavailable(f"cannot reach the registry database {path}: {exc}") from None
            row = None
        check_revision(row[0] if row else None)
        unknown = (
            actor is not None
            and conn.execute("SELECT count(*) FROM users").fetchone()[0] > 0
            and conn.execute("SELECT 1 FROM users WHERE name = ?", (actor,)).fetchone() is None
        )
        if unknown:
            from modelreg.errors import PermissionDenied

            raise PermissionDenied(
                f"unknown user {actor!r}: user {actor!r} is not registered; an admin adds users with "
                "`modelreg user add NAME --role ROLE` (`modelreg user list` shows who is)"
            )
        where, params = [], []
        if stage:
            where.append("v.stage = ?")
            params.append(stage)
        if model:
            where.append("m.name = ?")
            params.append(model)
        sql = _SQL + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY m.name, v.id"
        stages = {s.value: s for s in Stage}
        return [
            ModelVersion(
                model=r[0],
                version=r[1],
                stage=stages[r[2]],
                suspended=bool(r[3]),
                registered_by=r[4],
                created_at=_utc(r[5]),
                updated_at=_utc(r[6]),
                owner=r[7],
                risk_tier=r[8],
                purpose=r[9],
                business_line=r[10],
                mlflow_run_id=r[11],
                model_uri=r[12],
                artifact_digest=r[13],
            )
            for r in conn.execute(sql, params)
        ]
    finally:
        conn.close()
