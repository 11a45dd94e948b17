"""Engines and transactions for SQLite (embedded default) and PostgreSQL (production).

SQLite: WAL, synchronous=FULL, foreign keys, a busy timeout, and write transactions opened with
``BEGIN IMMEDIATE``. pysqlite's default transaction handling starts transactions lazily and as DEFERRED, so two
writers can both read a row, then both write, and one update is lost; taking the write lock up front makes
every read-modify-write in a transaction serial.

PostgreSQL: each write transaction first locks the single ``audit_state`` row (``FOR UPDATE``). Every state
change appends an audit event, so this serialises writers in one order and the Merkle log can never fork.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from modelreg.errors import BadInput, DatabaseUnavailable, MissingExtra

SQLITE_BUSY_TIMEOUT_MS = 30_000


def _describe(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url


def make_engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise BadInput(
            f"MODELREG_DATABASE_URL must be a database URL such as sqlite:///path/registry.db or "
            f"postgresql://user@host/db. Got {url!r} instead."
        ) from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(parsed)
    if backend in ("postgresql", "postgres"):
        if parsed.drivername in ("postgresql", "postgres"):
            parsed = parsed.set(drivername="postgresql+psycopg")
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise MissingExtra("psycopg", "postgres") from None
        try:
            return create_engine(parsed, poolclass=NullPool, connect_args={"connect_timeout": 5})
        except NoSuchModuleError as exc:
            raise BadInput(f"unsupported database driver in {_describe(url)}: {exc}") from None
    raise BadInput(f"MODELREG_DATABASE_URL must use sqlite or postgresql. Got {parsed.drivername!r} instead.")


def _sqlite_engine(parsed) -> Engine:
    engine = create_engine(
        parsed, poolclass=NullPool, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:
        # Hand transaction control to SQLAlchemy's "begin" event below instead of pysqlite's implicit BEGIN.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA synchronous = FULL")
        cur.execute("PRAGMA foreign_keys = ON")
        # OR REPLACE deletes conflicting rows; with recursive triggers that delete fires the DELETE guards too.
        cur.execute("PRAGMA recursive_triggers = ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:
        write = conn.get_execution_options().get("modelreg_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def sqlite_path(engine: Engine) -> Path | None:
    if engine.dialect.name != "sqlite":
        return None
    db = engine.url.database
    return Path(db) if db and db != ":memory:" else None


def translate_db_error(exc: Exception, url: str) -> DatabaseUnavailable:
    first = str(getattr(exc, "orig", exc)).strip().splitlines()
    return DatabaseUnavailable(
        f"cannot reach the registry database {_describe(url)}: {first[0] if first else type(exc).__name__}"
    )


@contextlib.contextmanager
def read_session(engine: Engine) -> Iterator[Session]:
    try:
        with engine.connect() as conn, Session(bind=conn, expire_on_commit=False) as session:
            yield session
            session.rollback()
    except OperationalError as exc:
        if _is_connect_error(exc):
            raise translate_db_error(exc, str(engine.url)) from None
        raise


@contextlib.contextmanager
def write_session(engine: Engine) -> Iterator[Session]:
    """One write transaction: all of its effects, audit event included, or none of them."""
    from modelreg.store.tables import AuditStateRow

    try:
        with engine.connect() as raw:
            conn = raw.execution_options(modelreg_write=True)
            with Session(bind=conn, expire_on_commit=False, autoflush=True) as session:
                try:
                    if engine.dialect.name == "postgresql":
                        session.execute(
                            select(AuditStateRow.id).where(AuditStateRow.id == 1).with_for_update()
                        )
                    yield session
                    session.commit()
                except BaseException:
                    session.rollback()
                    raise
    except OperationalError as exc:
        if _is_connect_error(exc):
            raise translate_db_error(exc, str(engine.url)) from None
        raise


def _is_connect_error(exc: DBAPIError) -> bool:
    text = str(getattr(exc, "orig", exc)).lower()
    return exc.connection_invalidated or any(
        s in text
        for s in (
            "connection refused",
            "could not connect",
            "unable to open database",
            "connection failed",
            "timeout expired",
            "name or service not known",
            "no such host",
        )
    )
