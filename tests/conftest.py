"""Shared fixtures. Every registry test runs on SQLite and on PostgreSQL (127.0.0.1:5432, trust auth, user
postgres, database test). PostgreSQL being unreachable is a failure, not a skip: CI must run that leg."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# An in-process MLflow call outside a test's own configured scope goes to a throw-away store, never ./mlruns in
# the checkout (subprocesses get explicit stores from env_for).
os.environ.setdefault(
    "MLFLOW_TRACKING_URI", Path(tempfile.mkdtemp(prefix="modelreg-test-mlruns-")).resolve().as_uri()
)

PG_ADMIN_URL = os.environ.get("MODELREG_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REPO_ROOT = Path(__file__).resolve().parent.parent


def _pg_admin_engine():
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    return create_engine(
        PG_ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=NullPool, connect_args={"connect_timeout": 5}
    )


@pytest.fixture(scope="session")
def pg_available() -> bool:
    from sqlalchemy import text

    try:
        with _pg_admin_engine().connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # fail loudly: the PostgreSQL leg is part of the contract
        pytest.fail(
            f"PostgreSQL at {PG_ADMIN_URL} is unreachable ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}). "
            "Start it (pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start)."
        )
    return True


@pytest.fixture
def pg_url(pg_available) -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    from sqlalchemy import text

    name = f"modelreg_t_{uuid.uuid4().hex[:12]}"
    admin = _pg_admin_engine()
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(
                text(
                    f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()"
                )
            )
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'registry.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def env_for(tmp_path) -> callable:
    """Environment variables that point modelreg (and MLflow) at this test's own stores only."""

    def make(db: str, **extra: str) -> dict[str, str]:
        home = tmp_path / "home"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELREG_", "MLFLOW_"))}
        env.update(
            {
                "MODELREG_CONFIG": str(REPO_ROOT / "mlflow.env"),
                "MODELREG_HOME": str(home),
                "MODELREG_DATABASE_URL": db,
                "MODELREG_AUDIT_KEY": str(home / "keys" / "audit.key"),
                "MODELREG_EVIDENCE_KEY": str(home / "keys" / "evidence.key"),
                "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
                "MLFLOW_REGISTRY_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
                "MLFLOW_ARTIFACT_ROOT": str(tmp_path / "mlartifacts"),
                "MLFLOW_DISABLE_TELEMETRY": "true",
                **extra,
            }
        )
        return env

    return make


@pytest.fixture
def settings_for(tmp_path, env_for):
    def make(db: str):
        from modelreg import settings

        return settings.load(environ=env_for(db))

    return make


CAST = {
    "admin": ["admin"],
    "dev": ["developer"],
    "val": ["validator"],
    "app1": ["approver"],
    "app2": ["approver"],
    "ops": ["operator"],
    "aud": ["auditor"],
}


@pytest.fixture
def registry(db_url, settings_for):
    """The registry core (basic gate requirements only, no policy pack plugged in), initialised, with the
    usual cast: an admin, a developer, a validator, two approvers, an operator and an auditor."""
    from modelreg.registry import Registry

    reg = Registry(settings_for(db_url), actor="admin")
    reg.init()
    reg.add_user("admin", ["admin"])
    reg.add_user("dev", ["developer"])
    reg.add_user("val", ["validator"])
    reg.add_user("app1", ["approver"])
    reg.add_user("app2", ["approver"])
    reg.add_user("ops", ["operator"])
    reg.add_user("aud", ["auditor"])
    yield reg
    reg.engine.dispose()


def register_version(reg, name: str = "credit_scoring", version: str = "1", *, tier: str = "medium"):
    """Register without MLflow (the MLflow path is covered in tests/integration)."""
    return reg.as_user("dev").register(
        name, version, owner="dev", risk_tier=tier, purpose="PD scoring for consumer loans"
    )


# What a test run must not leave in the checkout: stores and scratch folders that MLflow, Spark or a test
# would create in the current folder when nobody routes them elsewhere (issue 17.7).
STRAY_IN_CHECKOUT = (
    "spark-warehouse",
    "metastore_db",
    "derby.log",
    "test-artifacts",
    "mlflow.db",
    "mlruns",
    "mlartifacts",
)


def _strays() -> set[str]:
    return {name for name in STRAY_IN_CHECKOUT if (REPO_ROOT / name).exists()}


def pytest_sessionstart(session) -> None:
    session.config.stash[_STRAYS_BEFORE] = _strays()


def pytest_sessionfinish(session, exitstatus) -> None:
    new = sorted(_strays() - session.config.stash.get(_STRAYS_BEFORE, set()))
    if new:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        message = (
            f"the test run left {', '.join(new)} in the checkout {REPO_ROOT}: route it to a temporary folder"
        )
        if reporter is not None:
            reporter.write_line(f"FAILED checkout hygiene: {message}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


_STRAYS_BEFORE = pytest.StashKey[set]()
