"""Issue 18.4: ``sync --check`` records what it found in MLflow outside governance (``mlflow.ungoverned_checked``),
and the optional control ``CHK-LC-01.mlflow`` (shipped disabled) turns an ungoverned version of a model, or no
recent check, into an unmet gate requirement. Against a real ``mlflow server`` on loopback; SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from tests.integration.mlflow_fixtures import MlflowServer, fluent_mlflow, log_and_register_model

pytest_plugins = ["tests.integration.mlflow_fixtures"]
pytestmark = pytest.mark.timeout(600)

CONTROL = "CHK-LC-01.mlflow"
BANK = """\
extends: cn-fin-algo-risk@1.0.0
pack: {id: acme-bank, version: "2026.1", title_zh: 某银行模型风险政策, title_en: ACME Bank model risk policy}
overrides:
  controls:
    CHK-LC-01.mlflow: {disabled: false}
"""


@pytest.fixture
def cli(env_for, db_url, tmp_path, mlflow_server: MlflowServer, mlflow_env: Path, monkeypatch, capsys):
    env = env_for(
        db_url,
        MLFLOW_TRACKING_URI=mlflow_server.url,
        MLFLOW_REGISTRY_URI=mlflow_server.url,
        MODELREG_POLICY="acme-bank",
    )
    policies = Path(env["MODELREG_HOME"]) / "policies"  # where a bank's own packs are found
    policies.mkdir(parents=True)
    (policies / "acme.yaml").write_text(BANK, encoding="utf-8")
    for key in [k for k in list(os.environ) if k.startswith(("MODELREG_", "MLFLOW_"))]:
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        if key.startswith(("MODELREG_", "MLFLOW_")):
            monkeypatch.setenv(key, value)
    from modelreg.cli.main import main

    def run(*args: str, expect: int = 0) -> str:
        capsys.readouterr()
        code = main(list(args))
        out = capsys.readouterr()
        assert code == expect, (
            f"modelreg {' '.join(args)} exited {code}\n{out.out[-2000:]}\n{out.err[-2000:]}"
        )
        assert "Traceback" not in out.err
        return out.out

    return run


def _unmet(name: str, version: str) -> list:
    """The submit gate's unmet items of the control, read by the registry itself (no MLflow call)."""
    from modelreg import settings
    from modelreg.client import Client, open_registry

    reg = open_registry(settings.load(), actor="dev")
    try:
        return [u for u in Client(reg).gate_check(name, version, "submit") if u.control_id == CONTROL]
    finally:
        reg.engine.dispose()


def _checked_events() -> list:
    from modelreg import settings
    from modelreg.client import open_registry

    reg = open_registry(settings.load(), actor="boss")
    try:
        return [e for e in reg.audit_log() if e.event == "mlflow.ungoverned_checked"]
    finally:
        reg.engine.dispose()


def test_ungoverned_versions_and_stale_checks_are_unmet(cli, mlflow_server: MlflowServer):
    import mlflow

    from modelreg import clock

    tag = uuid.uuid4().hex[:8]
    name = f"gov_{tag}"
    experiment = mlflow_server.new_experiment(f"ungoverned-control-{tag}")
    logged = log_and_register_model(mlflow_server.url, experiment_id=experiment, name=name)
    cli("init")
    cli("--as", "boss", "user", "add", "boss", "--role", "admin")
    cli("--as", "boss", "user", "add", "dev", "--role", "developer")
    cli("--as", "boss", "user", "add", "ops", "--role", "operator")
    opts = ["--owner", "dev", "--risk-tier", "medium", "--purpose", "PD"]
    cli("--as", "dev", "register", name, logged.version, *opts)

    # 1. no reconciliation recorded yet: unmet, and it says what to run
    (u,) = _unmet(name, logged.version)
    assert "no reconciliation of MLflow against the registry is recorded" in u.message_en
    assert "modelreg sync --check" in u.message_en and u.message_zh
    assert u.clause_ids == ("NFRA-2025-13.1", "NFRA-2025-25.1", "CBIRC-2022-13.1")

    # 2. a version registered with plain MLflow: the check records it, the gate names it
    with fluent_mlflow(mlflow_server.url):
        extra = mlflow.register_model(f"models:/{logged.model_id}", name)
    anonymous = json.loads(cli("sync", "--check", "--json"))  # anyone may look; only ops/admin record
    assert anonymous["record"]["recorded"] is False and "unknown user" in anonymous["record"]["reason"]
    assert _checked_events() == []
    report = json.loads(cli("--as", "ops", "sync", "--check", "--json"))
    assert report["record"]["recorded"] is True
    (event,) = _checked_events()
    assert event.seq == report["record"]["seq"] and event.actor == "ops"
    assert {"model": name, "version": str(extra.version)} in event.payload["ungoverned_versions"]
    assert event.payload["mlflow_registry"] == mlflow_server.url.rstrip("/")
    (u,) = _unmet(name, logged.version)
    assert f"MLflow holds version(s) {extra.version} of {name} that are not registered" in u.message_en
    assert f"#{event.seq}" in u.message_en
    text = cli("--as", "ops", "sync", "--check")
    assert f"ungoverned: {name}: version {extra.version} exists in MLflow only" in text
    assert "recorded: " in text and "audit event #" in text

    # 3. registered with modelreg and checked again: met
    cli("--as", "dev", "register", name, str(extra.version), *opts)
    assert _unmet(name, logged.version) != []  # the latest recorded check still lists it
    cli("--as", "ops", "sync", "--check")
    assert _unmet(name, logged.version) == []
    assert _unmet(name, str(extra.version)) == []

    # 4. no check within max_age_days (31): unmet again
    later = clock.now() + timedelta(days=40)
    clock.set_clock(lambda: later)
    try:
        (u,) = _unmet(name, logged.version)
    finally:
        clock.set_clock(None)
    assert "is 40 day(s) old, more than 31" in u.message_en

    cli("audit", "verify")  # the new events replay like the others


def test_the_shipped_pack_keeps_the_control_off():
    from modelreg.policy import load_pack

    pack = load_pack("cn-fin-algo-risk")
    control = pack.control(CONTROL)
    assert control.disabled and control.requirement.id == "mlflow_ungoverned_checked"
    assert control.catalog_check == "CHK-LC-01"
    assert control.disabled_reason_zh and "sync --check" in control.disabled_reason_en
    assert all(
        CONTROL not in {c.id for c in pack.controls_for(g, t)}
        for g in ("submit", "deploy")
        for t in pack.tier_ids
    )
