"""The issue's headline test: the main job (``modelreg.demo.main_job``) run through the service over HTTP by its
seven users ends in the same registry state and the same audit chain shape as the embedded run.

The embedded reference is ``modelreg demo --json`` itself, in a subprocess on its own stores. The HTTP run is
the same ``Demo`` class with each cast member's calls made by ``modelreg.Client`` over ``MODELREG_URL``
(``RemoteRegistry``: every request RFC 9421-signed with that user's own key) against a real uvicorn on
loopback; the users and their keys are set up by OIDC-authenticated requests (admin adds the users, each user
registers the public key they generated), as a bank would onboard them. Only the bootstrap (schema and the
first admin, which by design happen on the database) is local. The demo's own read-back checks (stages, gate
reports, calendar) read the registry directly; they never write.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.service.conftest import AUDIENCE, ISSUER, Server

pytestmark = pytest.mark.timeout(900)


def _env(folder: Path, db: str) -> dict[str, str]:
    home = folder / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELREG_", "MLFLOW_"))}
    env.update(
        {
            "MODELREG_HOME": str(home),
            "MODELREG_DATABASE_URL": db,
            "MODELREG_AUDIT_KEY": str(home / "keys" / "registry-audit.key"),
            "MODELREG_EVIDENCE_KEY": str(home / "keys" / "registry-evidence.key"),
            "MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}",
            "MLFLOW_REGISTRY_URI": f"sqlite:///{folder / 'mlflow.db'}",
            "MLFLOW_ARTIFACT_ROOT": str(folder / "mlartifacts"),
            "MLFLOW_DISABLE_TELEMETRY": "true",
        }
    )
    return env


def _state(settings) -> dict:
    """What the comparison looks at: stages, suspended flags, counts of records, evaluations, findings,
    datasets, and the audit chain's (event, actor) sequence; and whether the chain verifies."""
    from sqlalchemy import text

    from modelreg.client import open_registry

    reg = open_registry(settings, actor="audrey")
    try:
        versions = {
            v.version: (v.stage.value, v.suspended, v.owner, v.registered_by) for v in reg.list(None, None)
        }
        with reg.engine.connect() as conn:

            def count(sql: str) -> list:
                return sorted(tuple(r) for r in conn.execute(text(sql)))

            counts = {
                "signed": count(
                    "SELECT kind, role, actor, count(*) FROM signed_records GROUP BY kind, role, actor"
                ),
                "evaluations": count(
                    "SELECT purpose, status, created_by, count(*) FROM evaluations GROUP BY purpose, status, created_by"
                ),
                "findings": count(
                    "SELECT control_id, status, severity, owner, count(*) FROM tracked_findings "
                    "GROUP BY control_id, status, severity, owner"
                ),
                "datasets": count("SELECT role, name, count(*) FROM datasets GROUP BY role, name"),
            }
        events = [(e.event, e.actor) for e in reg.audit_log()]
        verified = reg.audit_verify()
        return {
            "versions": versions,
            "counts": counts,
            "events": events,
            "ok": verified.ok,
            "size": verified.size,
        }
    finally:
        reg.engine.dispose()


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    """``modelreg demo`` as shipped, on SQLite, in its own folder: the reference."""
    from modelreg import settings as settings_mod

    folder = tmp_path_factory.mktemp("embedded")
    env = _env(folder, f"sqlite:///{folder / 'registry.db'}")
    proc = subprocess.run(
        [sys.executable, "-m", "modelreg", "demo", "--json"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert report["ok"] is True
    return _state(settings_mod.load(environ=env)), report


def _http_demo(settings, url: str, issuer):
    """The Demo with every cast member's writes over HTTP."""
    from modelreg import signing
    from modelreg.client import Client, open_registry
    from modelreg.demo import CAST
    from modelreg.demo.main_job import Demo
    from modelreg.service.client import RemoteRegistry

    class HttpDemo(Demo):
        def as_(self, user: str):
            return Client(RemoteRegistry(self.settings.with_overrides(url=url), actor=user))  # type: ignore[arg-type]

        def _users(self) -> None:
            with self.step(1, "用户与签名密钥", "Users and keys, onboarded over HTTP with OIDC tokens"):

                def call(user: str, method: str, path: str, body: dict) -> dict:
                    token = issuer.token(user, list(CAST[user][0]))
                    resp = httpx.request(
                        method, url + path, json=body, headers={"Authorization": f"Bearer {token}"}
                    )
                    assert resp.status_code == 201, resp.text
                    return resp.json()

                for name, (roles, _) in CAST.items():
                    if name != "admin":
                        call("admin", "POST", "/api/v1/users", {"name": name, "roles": list(roles)})
                for name in CAST:
                    private = self.settings.signing_key_for(name)
                    public = signing.public_key_path_for(private)
                    signing.write_key_pair(private, public)
                    pem = public.read_text(encoding="utf-8")
                    got = call(name, "POST", f"/api/v1/users/{name}/key", {"public_key_pem": pem})
                    assert got["key_id"] == signing.key_id(signing.load_public_key(pem.encode()))
                users = {u.name: u for u in self.client.registry.users()}
                self.expect(
                    "users_and_keys",
                    f"{len(CAST)} users with their roles and registered keys",
                    all(users[n].key_id and set(CAST[n][0]) <= set(users[n].roles) for n in CAST),
                )

    # the bootstrap: the schema and the first admin are created on the database, as `modelreg init` and
    # `modelreg user add admin --role admin` do before any service can authenticate anybody
    reg = open_registry(settings, actor="admin")
    reg.add_user("admin", ["admin"])
    reg.engine.dispose()
    return HttpDemo(settings, say=lambda _line: None)


@pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)
def test_the_main_job_over_http_by_seven_users_matches_the_embedded_run(
    embedded, db_url, tmp_path, issuer, monkeypatch
):
    from modelreg import settings as settings_mod
    from modelreg.service.app import create_app
    from modelreg.service.auth import AuthConfig, OidcConfig

    reference, embedded_report = embedded
    folder = tmp_path / "http"
    folder.mkdir()
    env = _env(folder, db_url)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    settings = settings_mod.load(environ=env)
    demo = None

    config = AuthConfig(
        oidc=OidcConfig(issuer=ISSUER, audience=AUDIENCE, jwks_url=issuer.jwks_url), failure_limit=1000
    )
    from modelreg.client import open_registry

    bootstrap = open_registry(settings, actor="admin")
    bootstrap.init()
    bootstrap.engine.dispose()
    with Server(create_app(settings, config)) as srv:
        demo = _http_demo(settings, srv.url, issuer)
        report = demo.run()
        # who made each write, as the service established it: every request was signed or carried a token
        from modelreg.client import open_registry as reopen

        reg = reopen(settings, actor="audrey")
        with reg.engine.connect() as conn:
            refused = conn.exec_driver_sql("SELECT count(*) FROM security_events").scalar()
        reg.engine.dispose()

    assert report.ok, [(e.key, e.detail) for e in report.failed] + [report.aborted]
    # the same story: every expectation the embedded run met, the HTTP run met too
    assert {e.key for e in report.expectations if e.ok} == {
        e["key"] for e in embedded_report["expectations"] if e["ok"]
    }
    state = _state(settings)
    assert state["ok"] is True and state["size"] == reference["size"]
    assert state["versions"] == reference["versions"]
    assert state["counts"] == reference["counts"]
    assert state["events"] == reference["events"]
    assert refused == 0  # nothing the story does was refused on the way
    # the data went up as uploads and the service fingerprinted its own copies; the pack came down
    uploads = Path(settings.home) / "service" / "uploads"
    written = {p.name for p in (Path(settings.home) / "demo").glob("*.csv")}  # the demo's data files
    assert {p.name for p in uploads.glob("*/*")} == written and {"train.csv", "holdout.csv"} <= written
    reg = reopen(settings, actor="audrey")
    with reg.engine.connect() as conn:
        sources = {r[0] for r in conn.exec_driver_sql("SELECT source FROM datasets")}
    reg.engine.dispose()
    assert sources and all(Path(x).parent.parent == uploads.resolve() for x in sources)
    assert len(list((Path(settings.home) / "service" / "evidence").glob("*.zip"))) == 1
    actors = Counter(actor for _, actor in state["events"])
    assert set(actors) == {"admin", "dana", "victor", "amy", "alan", "oscar", "audrey"}
