"""PostgreSQL least privilege: ``modelreg init --pg-roles`` and production mode.

The application role can run the whole registry, but cannot change or remove audit events, switch off their
triggers or replace the trigger functions (the attack from issue 16: triggers still shown ENABLE ALWAYS but
refusing nothing). Production mode refuses a superuser or owner connection."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from tests.core._workers import register, seeded_core_registry
from tests.core.test_tamper import cli


@dataclass
class Roles:
    admin_url: str  # superuser on the test database
    prefix: str
    owner: str
    app: str
    auditor: str

    def url_as(self, role: str) -> str:
        head, db = self.admin_url.rsplit("/", 1)
        scheme, rest = head.split("://", 1)
        return f"{scheme}://{role}@{rest.split('@', 1)[1]}/{db}"


@pytest.fixture
def roles(pg_url, env_for) -> Iterator[Roles]:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    env = env_for(pg_url)
    done = cli(env, "init", "--pg-roles", "--role-prefix", prefix, "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    body = json.loads(done.stdout)
    r = body["pg_roles"]["roles"]
    assert r == {"owner": f"{prefix}_owner", "app": f"{prefix}_app", "auditor": f"{prefix}_auditor"}
    yield Roles(pg_url, prefix, r["owner"], r["app"], r["auditor"])
    admin = create_engine(pg_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
        for role in (r["app"], r["auditor"], r["owner"]):
            conn.execute(text(f'DROP OWNED BY "{role}" CASCADE'))
            conn.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
    admin.dispose()


def _engine(url: str):
    return create_engine(url, poolclass=NullPool)


def test_roles_have_exactly_the_documented_privileges(roles):
    admin = _engine(roles.admin_url)
    with admin.connect() as conn:

        def has(role: str, table: str, priv: str) -> bool:
            return conn.execute(
                text("SELECT has_table_privilege(:r, :t, :p)"), {"r": role, "t": table, "p": priv}
            ).scalar_one()

        for priv, want in (
            ("SELECT", True),
            ("INSERT", True),
            ("UPDATE", False),
            ("DELETE", False),
            ("TRUNCATE", False),
            ("TRIGGER", False),
            ("REFERENCES", False),
        ):
            assert has(roles.app, "audit_events", priv) is want, priv
            assert has(roles.auditor, "audit_events", priv) is (priv == "SELECT"), priv
        assert has(roles.app, "audit_state", "UPDATE") and not has(roles.app, "audit_state", "DELETE")
        assert not has(roles.app, "modelreg_alembic_version", "UPDATE")
        assert has(roles.app, "model_versions", "UPDATE")
        assert not has(roles.auditor, "model_versions", "INSERT")
        owners = set(
            conn.execute(
                text(
                    "SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'S', 'i')"
                )
            ).scalars()
        )
        assert owners == {roles.owner}
        functions = set(
            conn.execute(
                text("SELECT pg_get_userbyid(proowner) FROM pg_proc WHERE proname LIKE 'modelreg_audit_%'")
            ).scalars()
        )
        assert functions == {roles.owner}
        login = dict(
            conn.execute(
                text("SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname LIKE :p"),
                {"p": roles.prefix + "_%"},
            ).all()
        )
        assert login == {roles.owner: False, roles.app: True, roles.auditor: True}
    admin.dispose()


ATTACKS = [
    ("UPDATE audit_events SET actor = 'mallory' WHERE seq = 1", "permission denied"),
    ("DELETE FROM audit_events WHERE seq = 1", "permission denied"),
    ("TRUNCATE audit_events", "permission denied"),
    ("ALTER TABLE audit_events DISABLE TRIGGER ALL", "must be owner"),
    ("DROP TRIGGER audit_events_no_change ON audit_events", "must be owner"),
    (
        "CREATE OR REPLACE FUNCTION modelreg_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RETURN COALESCE(NEW, OLD); END $$",
        "must be owner|permission denied for schema",
    ),
    ("SET session_replication_role = replica", "permission denied"),
    (
        "INSERT INTO audit_events (seq, event, actor, at, canonical, leaf_hash, root_hash) "
        "VALUES (1, 'x', 'mallory', now(), 'x', 'x', 'x') ON CONFLICT (seq) DO UPDATE SET actor = 'mallory'",
        "permission denied",
    ),
    ("CREATE TABLE shadow (x int)", "permission denied"),
    ("ALTER TABLE audit_events OWNER TO CURRENT_USER", "must be owner"),
    ("UPDATE audit_state SET size = 0", "permission denied|only moves forward"),
    ("DELETE FROM audit_state", "permission denied"),
]


def test_the_application_role_runs_the_registry_but_cannot_touch_the_guards(roles, env_for):
    env = env_for(roles.url_as(roles.app))
    reg = seeded_core_registry(env)  # init at head is a no-op for the app role: it only reads the version
    register(reg, "credit_scoring", "1")
    reg.as_user("dev").submit("credit_scoring", "1")
    reg.as_user("app1").deploy("credit_scoring", "1")
    reg.as_user("ops").suspend("credit_scoring", "1", reason="drill")
    assert reg.audit_verify().ok
    events = reg.audit_log()
    assert {e.to_dict().get("db_role") for e in events[-3:]} == {roles.app}
    for sql, expected in ATTACKS:
        with pytest.raises(DBAPIError) as info, reg.engine.begin() as conn:
            conn.execute(text(sql))
        import re

        assert re.search(expected, str(info.value)), (sql, str(info.value).splitlines()[0])
    # the trigger function is unchanged and the log still verifies
    with reg.engine.connect() as conn:
        body = conn.execute(
            text("SELECT prosrc FROM pg_proc WHERE proname = 'modelreg_audit_append_only'")
        ).scalar_one()
    assert "append-only" in body
    assert reg.audit_verify().ok
    auditor = _engine(roles.url_as(roles.auditor))
    with pytest.raises(DBAPIError, match="permission denied"), auditor.begin() as conn:
        conn.execute(text("INSERT INTO audit_checkpoints (size, body, at) VALUES (0, '{}', now())"))
    with auditor.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit_events")).scalar_one() == len(events)
    auditor.dispose()
    reg.engine.dispose()


def test_production_mode_refuses_superuser_and_owner_connections(roles, env_for):
    as_super = cli(env_for(roles.admin_url, MODELREG_MODE="production"), "list")
    assert as_super.returncode == 2, as_super.stdout + as_super.stderr
    assert "superuser" in as_super.stderr and "init --pg-roles" in as_super.stderr
    assert len(as_super.stderr.strip().splitlines()) == 1 and "Traceback" not in as_super.stderr

    admin = _engine(roles.admin_url)
    with admin.begin() as conn:  # an administrator lets the owner log in: production still refuses it
        conn.execute(text(f'ALTER ROLE "{roles.owner}" LOGIN'))
    as_owner = cli(env_for(roles.url_as(roles.owner), MODELREG_MODE="production"), "list")
    assert as_owner.returncode == 2 and "owns" in as_owner.stderr, as_owner.stderr
    with admin.begin() as conn:
        conn.execute(text(f'ALTER ROLE "{roles.owner}" NOLOGIN'))
    admin.dispose()

    as_app = cli(env_for(roles.url_as(roles.app), MODELREG_MODE="production"), "list")
    assert as_app.returncode == 0, as_app.stderr
    bad = cli(env_for(roles.url_as(roles.app), MODELREG_MODE="prod"), "list")
    assert bad.returncode == 2 and "MODELREG_MODE must be one of" in bad.stderr


def test_pg_roles_needs_a_superuser_and_postgresql(roles, env_for, tmp_path):
    refused = cli(env_for(roles.url_as(roles.app)), "init", "--pg-roles", "--role-prefix", roles.prefix)
    assert refused.returncode == 1 and "superuser" in refused.stderr, refused.stderr
    sqlite = cli(env_for(f"sqlite:///{tmp_path / 'r.db'}"), "init", "--pg-roles")
    assert sqlite.returncode == 2 and "PostgreSQL" in sqlite.stderr, sqlite.stderr
    again = cli(env_for(roles.admin_url), "init", "--pg-roles", "--role-prefix", roles.prefix)
    assert again.returncode == 0, again.stderr  # idempotent
