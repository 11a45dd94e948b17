"""Late outcomes, the inventory, the review calendar and champion/challenger over HTTP (issue 10, item 3/4): the
CLI over ``MODELREG_URL`` prints what the local CLI prints on the same registry state; a user without the
action's role is refused (403) and nothing changes; no credentials is 401. A real uvicorn over a registry on
SQLite and PostgreSQL, with a deployed and monitored version of the generated portfolio's model."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx
import pandas as pd
import pytest
from sqlalchemy import text

from tests.governance.conftest import german
from tests.outcomes.conftest import NAME, deploy_portfolio_version, governed, portfolio
from tests.service.conftest import AUDIENCE, ISSUER, Server, audit_size, cli_runner

__all__ = ["german", "governed", "portfolio"]

VPATH = f"/api/v1/models/{NAME}/versions/1"


@pytest.fixture
def served(governed, portfolio, issuer):
    """The portfolio model deployed and monitored once (its decisions recorded), and the service over it."""
    from modelreg.service.app import create_app
    from modelreg.service.auth import AuthConfig, OidcConfig

    deploy_portfolio_version(governed, portfolio)
    governed.as_user("ops").monitor(NAME, "1", data=portfolio.decisions, score="score")
    config = AuthConfig(
        oidc=OidcConfig(issuer=ISSUER, audience=AUDIENCE, jwks_url=issuer.jwks_url), failure_limit=1000
    )
    with Server(create_app(governed.settings, config)) as srv:
        srv.settings = governed.settings
        srv.registry = governed
        yield srv


@pytest.fixture
def run(served, env_for, db_url, monkeypatch, capsys):
    """``run(user, *args, over_http=...)``: the CLI, locally or over MODELREG_URL; (exit code, stdout, stderr)."""
    return cli_runner(served.url, env_for(db_url), monkeypatch, capsys)


def _counts(client) -> dict[str, int]:
    with client.registry.engine.connect() as conn:
        return {
            t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
            for t in ("decisions", "outcomes", "outcome_batches", "audit_events")
        }


def _refused_alike(result: tuple[int, str, str], what: str) -> None:
    code, out, err = result
    assert (code, out) == (1, ""), (code, out, err)
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1 and what in err, err


def _unauthenticated(r: httpx.Response) -> None:
    assert r.status_code == 401, r.text
    assert r.json()["error"]["code"] == "authentication_failed"


class fixed_clock:
    """The clock held still (``days`` ahead), so reads that print "now" (as of ...) print the same locally and
    over HTTP."""

    def __init__(self, days: int = 0) -> None:
        self.days = days

    def __enter__(self) -> None:
        from modelreg import clock

        when = datetime.now(UTC) + timedelta(days=self.days)
        clock.set_clock(lambda: when)

    def __exit__(self, *exc) -> None:
        from modelreg import clock

        clock.set_clock(None)


def test_outcomes_add_and_report_over_modelreg_url(served, run, portfolio, tmp_path):
    client = served.registry
    unknown = pd.DataFrame(
        {
            "decision_id": ["never-scored-1", "never-scored-2"],
            "default": [0, 1],
            "observed_at": [portfolio.outcomes["observed_at"].min()] * 2,
        }
    )
    outcomes = pd.concat([portfolio.outcomes.head(800), unknown], ignore_index=True)
    file = tmp_path / "outcomes-2025q1.csv"
    outcomes.to_csv(file, index=False)

    # the first batch over HTTP: recorded, the unknown ids refused and counted (exit 1, as locally)
    before = _counts(client)
    code, out, err = run("ops", "outcomes", "add", NAME, "1", str(file), over_http=True)
    assert code == 1, out + err
    assert f"{NAME} 1: outcomes batch #" in out and "from outcomes-2025q1.csv" in out
    assert "recorded 800, already recorded 0, refused 2 (unknown id 2" in out
    after = _counts(client)
    assert (
        after["outcomes"] == before["outcomes"] + 800
        and after["outcome_batches"] == before["outcome_batches"] + 1
    )
    event = client.audit_log(NAME, "1")[-1]
    assert (event.event, event.actor) == ("outcomes.added", "ops")

    # the same file again, locally then over HTTP: the same lines (the batch number aside), the same exit
    def normal(result: tuple[int, str, str]) -> tuple[int, str, str]:
        code, out, err = result
        return code, re.sub(r"batch #\d+", "batch #N", out), err

    for args in (
        ("outcomes", "add", NAME, "1", str(file)),
        ("outcomes", "add", NAME, "1", str(file), "--json"),
    ):
        local = run("val", *args, over_http=False)
        remote = run("val", *args, over_http=True)
        if "--json" in args:
            local = (local[0], re.sub(r'"batch_id": \d+', '"batch_id": N', local[1]), local[2])
            remote = (remote[0], re.sub(r'"batch_id": \d+', '"batch_id": N', remote[1]), remote[2])
        assert normal(remote) == normal(local), args
        assert local[0] == 1 and (
            "already recorded 800," in local[1] or '"already_recorded": 800' in local[1]
        )
    # --strict refuses the whole file alike (exit 2, one line, nothing recorded)
    size = _counts(client)
    strict = [
        run("ops", "outcomes", "add", NAME, "1", str(file), "--strict", over_http=h) for h in (False, True)
    ]
    assert strict[0] == strict[1] and strict[0][0] == 2 and len(strict[0][2].strip().splitlines()) == 1
    assert _counts(client) == size

    # the report: the same text and JSON
    for args in (
        ("outcomes", "report", NAME, "1"),
        ("outcomes", "report", NAME, "1", "--json"),
        ("outcomes", "report", NAME, "1", "--min-class-count", "5"),
    ):
        local = run("aud", *args, over_http=False)
        assert local[0] == 0 and local[1].strip(), local
        assert run("aud", *args, over_http=True) == local, args

    # a developer and an auditor may not add outcomes: 403 from the service, one line, nothing changes
    size, chain = _counts(client), audit_size(served.settings)
    _refused_alike(run("dev", "outcomes", "add", NAME, "1", str(file), over_http=True), "outcomes.add")
    _refused_alike(run("aud", "outcomes", "add", NAME, "1", str(file), over_http=True), "uploading data")
    assert _counts(client) == size and audit_size(served.settings) == chain
    # no credentials: 401 on both routes
    body = {"upload": "sha256:" + "0" * 64 + "/x.csv"}
    _unauthenticated(httpx.post(f"{served.url}{VPATH}/outcomes", json=body, headers={"If-Match": "*"}))
    _unauthenticated(httpx.get(f"{served.url}{VPATH}/outcomes/report"))
    assert _counts(client) == size


def test_inventory_and_due_over_modelreg_url(served, run, tmp_path, monkeypatch):
    client = served.registry
    with fixed_clock():
        for user, *args in [
            ("aud", "inventory"),
            ("aud", "inventory", "--format", "json"),
            ("aud", "inventory", "--format", "html"),
            ("ops", "due"),
            ("ops", "due", "--json"),
            ("ops", "due", "--within", "400d"),
            ("ops", "due", "--within", "400d", "--json"),
        ]:
            local = run(user, *args, over_http=False)
            assert NAME in local[1] or ("--within" not in args and args[0] == "due"), (args, local)
            assert run(user, *args, over_http=True) == local, args
        # files: csv and xlsx written on the caller's machine, the same rows
        for fmt in ("csv", "xlsx"):
            mine, theirs = tmp_path / f"local.{fmt}", tmp_path / f"remote.{fmt}"
            lo = run("aud", "inventory", "--format", fmt, "-o", str(mine), over_http=False)
            re_ = run("aud", "inventory", "--format", fmt, "-o", str(theirs), over_http=True)
            assert lo[0] == re_[0] == 0 and lo[2].replace(str(mine), "F") == re_[2].replace(str(theirs), "F")
            if fmt == "csv":
                assert theirs.read_bytes() == mine.read_bytes()
            else:
                from openpyxl import load_workbook

                def cells(path):
                    wb = load_workbook(path)
                    return [[[c.value for c in row] for row in ws.iter_rows()] for ws in wb.worksheets]

                assert cells(theirs) == cells(mine)
    assert NAME in (tmp_path / "remote.csv").read_text(encoding="utf-8")
    # three years on every review is overdue: exit 1 (for cron) both ways, the same lines (the caller's clock,
    # which dates its signatures, agrees with the service's)
    import types

    import modelreg.service.client as client_module

    later = (datetime.now(UTC) + timedelta(days=3 * 365)).timestamp()
    monkeypatch.setattr(client_module, "time", types.SimpleNamespace(time=lambda: later))
    with fixed_clock(days=3 * 365):
        for args in (("due",), ("due", "--json")):
            local = run("ops", *args, over_http=False)
            assert (
                local[0] == 1
                and NAME in local[1]
                and ("OVERDUE" in local[1] or '"status": "overdue"' in local[1])
            ), local
            assert run("ops", *args, over_http=True) == local, args
    # reads are for anyone registered (the permission table says so); no credentials: 401, nothing written
    chain = audit_size(served.settings)
    _unauthenticated(httpx.get(f"{served.url}/api/v1/inventory", params={"format": "json"}))
    _unauthenticated(httpx.get(f"{served.url}/api/v1/due"))
    assert audit_size(served.settings) == chain
    assert _counts(client)["audit_events"] >= chain


@pytest.fixture
def challenger_service(governed, german, issuer, tmp_path):
    """credit_scoring 1 deployed (the champion) and 2 in validate (the challenger), registered without MLflow
    models; the service over that registry, and the holdout as the monitoring file."""
    from modelreg.service.app import create_app
    from modelreg.service.auth import AuthConfig, OidcConfig
    from tests.operations.conftest import deploy_after_validation, now_utc, prepare_for_validation, validate

    prepare_for_validation(governed, german, "credit_scoring", "1")
    ev = validate(governed, german, "credit_scoring", "1")
    deploy_after_validation(governed, "credit_scoring", "1", ev, until=now_utc() + timedelta(days=30))
    prepare_for_validation(governed, german, "credit_scoring", "2")
    data = tmp_path / "monitoring.csv"
    german["split"].holdout.to_csv(data, index=False)
    config = AuthConfig(
        oidc=OidcConfig(issuer=ISSUER, audience=AUDIENCE, jwks_url=issuer.jwks_url), failure_limit=1000
    )
    with Server(create_app(governed.settings, config)) as srv:
        srv.settings = governed.settings
        srv.registry = governed
        srv.data = data
        yield srv


def test_challenger_run_over_modelreg_url(challenger_service, env_for, db_url, monkeypatch, capsys):
    """The run's refusals print alike (exit 2, one line: the checks run on the service, on the uploaded
    data); the roles are checked by the service before anything runs; no credentials is 401. (A successful
    comparison over HTTP, with MLflow models the service loads: ``test_challenger_http.py``.)"""
    srv = challenger_service
    run = cli_runner(srv.url, env_for(db_url), monkeypatch, capsys)

    base = ["challenger", "run", "--model", "credit_scoring", "--data", str(srv.data), "--target", "default"]
    chain = audit_size(srv.settings)
    for extra, message in [
        (["--champion", "2", "--challenger", "1"], "must be the deployed champion"),
        (["--champion", "1", "--challenger", "2", "--segment", "region"], "--segment region is not a column"),
        (["--champion", "1", "--challenger", "2", "--target", "nope"], "--target nope is not a column"),
        (["--champion", "1", "--challenger", "2"], "has no MLflow model to score"),
        (["--champion", "1", "--challenger", "2", "--json"], "has no MLflow model to score"),
    ]:
        local = run("ops", *base, *extra, over_http=False)
        assert local[0] == 2 and message in local[2] and len(local[2].strip().splitlines()) == 1, local
        assert run("ops", *base, *extra, over_http=True) == local, extra
    assert audit_size(srv.settings) == chain
    # a developer (may upload data, may not monitor) and an auditor (may not upload): 403, nothing changes
    ok = ["--champion", "1", "--challenger", "2"]
    _refused_alike(run("dev", *base, *ok, over_http=True), "monitor needs the role")
    _refused_alike(run("aud", *base, *ok, over_http=True), "uploading data")
    assert audit_size(srv.settings) == chain
    body = {"champion": "1", "challenger": "2", "data": "sha256:" + "0" * 64 + "/d.csv", "target": "default"}
    _unauthenticated(
        httpx.post(f"{srv.url}/api/v1/models/credit_scoring/challenger", json=body, headers={"If-Match": "*"})
    )
    assert audit_size(srv.settings) == chain


def test_sync_check_over_modelreg_url(served, run, capsys):
    """The service holds the MLflow settings: ``sync --check`` over HTTP reports what the local command reports
    (models in MLflow outside governance), and records that finding for an operator only (audit event #N),
    for anyone else saying why not. (The repair over HTTP: tests/service/test_remote_cmds.py.)"""
    from modelreg.integrations.mlflow import MlflowGateway
    from tests.integration.mlflow_fixtures import log_and_register_model

    s = served.settings
    # The artifact root keeps the experiment's artifacts out of ./mlruns of the checkout (checkout hygiene).
    gw = MlflowGateway(s.mlflow_tracking_uri, s.mlflow_registry_uri, artifact_root=s.mlflow_artifact_root)
    log_and_register_model(s.mlflow_tracking_uri, experiment_id=gw.ensure_experiment("dev"), name="shadow_pd")
    capsys.readouterr()  # MLflow's own lines while the model was logged

    def normal(result: tuple[int, str, str]) -> tuple[int, str, str]:
        code, out, err = result
        out = re.sub(r"audit event #\d+", "audit event #N", out)
        out = re.sub(r'"seq": \d+', '"seq": N', re.sub(r'"at": "[^"]+"', '"at": T', out))
        return code, out, err

    for user, *args in [("aud", "sync", "--check"), ("aud", "sync", "--check", "--json"),
                        ("ops", "sync", "--check"), ("ops", "sync", "--check", "--json")]:  # fmt: skip
        local = run(user, *args, over_http=False)
        assert "shadow_pd" in local[1], local
        assert normal(run(user, *args, over_http=True)) == normal(local), args
    events = [e for e in served.registry.audit_log() if e.event == "mlflow.ungoverned_checked"]
    assert [e.actor for e in events] == [
        "ops"
    ] * 4  # the operator's, locally and over HTTP; never the auditor's
    chain = audit_size(served.settings)
    _unauthenticated(httpx.post(f"{served.url}/api/v1/sync/check", json={}))
    assert audit_size(served.settings) == chain
