"""The validator's and approver's CLI end to end against a real MLflow store: register from MLflow (what an
auditor needs is captured), validate, findings, waive, approve, deploy (the MLflow alias follows), suspend,
sync --check / sync after an alias is moved by hand in MLflow, retire. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest

from tests.integration.mlflow_fixtures import log_and_register_model, training_data


@pytest.fixture
def cli(env_for, db_url, monkeypatch, capsys):
    env = env_for(db_url)
    for key, value in env.items():
        if key.startswith(("MODELREG_", "MLFLOW_")):
            monkeypatch.setenv(key, value)
    from modelreg.cli.main import main

    def run(*args: str, expect: int | tuple[int, ...] = 0) -> str:
        code = main(list(args))
        out = capsys.readouterr()
        assert code in (expect if isinstance(expect, tuple) else (expect,)), (
            f"modelreg {' '.join(args)} exited {code}, expected {expect}\nstdout: {out.out[-2000:]}\nstderr: {out.err[-2000:]}"
        )
        assert "Traceback" not in out.err
        return out.out

    run.env = env  # type: ignore[attr-defined]
    return run


def _data(tmp_path: Path) -> tuple[Path, Path]:
    X, y = training_data(seed=0, n=600)
    rng = np.random.default_rng(5)
    frame = X.assign(default=y, sex=np.where(rng.random(len(X)) < 0.5, "female", "male"))
    train, hold = tmp_path / "train.csv", tmp_path / "holdout.csv"
    frame.iloc[:360].to_csv(train, index=False)
    frame.iloc[360:].to_csv(hold, index=False)
    return train, hold


def test_cli_governed_lifecycle_with_mlflow(cli, tmp_path):
    from modelreg.integrations.mlflow import MlflowGateway

    env = cli.env
    gw = MlflowGateway(
        env["MLFLOW_TRACKING_URI"],
        env["MLFLOW_REGISTRY_URI"],
        artifact_root=Path(env["MLFLOW_ARTIFACT_ROOT"]),
    )
    logged = log_and_register_model(
        env["MLFLOW_TRACKING_URI"], experiment_id=gw.ensure_experiment("dev"), name="credit_scoring"
    )
    train, hold = _data(tmp_path)

    cli("init")
    cli("--as", "boss", "user", "add", "boss", "--role", "admin")
    for user, role in [
        ("dev", "developer"),
        ("val", "validator"),
        ("app1", "approver"),
        ("app2", "approver"),
        ("ops", "operator"),
        ("aud", "auditor"),
    ]:
        cli("--as", "boss", "user", "add", user, "--role", role)
        key = tmp_path / "keys" / f"{user}.key"
        cli("keys", "generate", "-o", str(key))
        cli("--as", user, "keys", "register", f"{key}.pub")

    def key(user: str) -> str:
        return str(tmp_path / "keys" / f"{user}.key")

    # register: NAME VERSION must exist in MLflow; the run, pip requirements, signature and digest are captured
    cli(
        "--as",
        "dev",
        "register",
        "credit_scoring",
        "99",
        "--owner",
        "dev",
        "--risk-tier",
        "high",
        "--purpose",
        "PD",
        expect=2,
    )
    shown = json.loads(
        cli(
            "--as",
            "dev",
            "register",
            "credit_scoring",
            logged.version,
            "--owner",
            "dev",
            "--risk-tier",
            "high",
            "--purpose",
            "PD for consumer loans",
            "--json",
        )
    )
    assert shown["mlflow_run_id"] == logged.run_id
    assert shown["mlflow"]["pip_requirements"] and shown["artifact_digest"]
    assert {d["name"] for d in shown["mlflow"]["datasets"]} == {"credit_training", "credit_validation"}
    assert gw.stage_tags("credit_scoring")[logged.version] == "develop"

    v = logged.version
    cli(
        "--as",
        "dev",
        "card",
        "credit_scoring",
        v,
        "--set",
        "intended_use=application scoring",
        "--set",
        "excluded_uses=pricing",
        "--set",
        "limitations=synthetic data",
    )
    cli("--as", "dev", "attach-data", "credit_scoring", v, "--role", "training", "--data", str(train))
    cli("--as", "dev", "attach-data", "credit_scoring", v, "--role", "holdout", "--data", str(hold))
    out = cli("--as", "dev", "submit", "credit_scoring", v, expect=1)  # attestations missing
    from modelreg import settings
    from modelreg.governance.service import load_policy
    from modelreg.registry import Registry

    pack = load_policy(Registry(settings.load()))
    who = {"developer": "dev", "validator": "val", "approver": "app1"}
    for gate in ("submit", "deploy"):
        for c in pack.controls_for(gate, "high", kind="attestation"):
            cli(
                "--as",
                who[c.attestation.role],
                "attest",
                "credit_scoring",
                v,
                "--control",
                c.id,
                "--key",
                key(who[c.attestation.role]),
            )
    cli("--as", "dev", "submit", "credit_scoring", v)
    assert gw.stage_tags("credit_scoring")[v] == "validate"

    # the validator runs the deploy gate's machine controls on hold-out data with the MLflow model
    out = cli(
        "--as",
        "val",
        "validate",
        "credit_scoring",
        v,
        "--data",
        str(hold),
        "--reference",
        str(train),
        "--target",
        "default",
        "--sensitive",
        "sex",
        "--json",
        expect=(0, 1),
    )
    report = json.loads(out)
    assert report["purpose"] == "validation" and report["model_artifact_digest"] == shown["artifact_digest"]
    failing = [f["control_id"] for f in report["findings"] if f["status"] in ("fail", "error")]
    assert report["mlflow_run_id"], "the evaluation is logged as an MLflow run"
    from mlflow import MlflowClient

    run = MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"]).get_run(report["mlflow_run_id"])
    assert run.data.tags["modelreg.evaluation_id"] == str(report["id"])
    assert any(k.startswith("performance.auc") for k in run.data.metrics)

    until = (date.today() + timedelta(days=90)).isoformat()
    for cid in failing:
        cli(
            "--as",
            "app1",
            "waive",
            "credit_scoring",
            v,
            "--control",
            cid,
            "--until",
            until,
            "--reason",
            "accepted by MRC",
            "--key",
            key("app1"),
        )
    findings = json.loads(cli("findings", "credit_scoring", v, "--json"))
    statuses = {f["control_id"]: f["status"] for f in findings["evaluations"][0]["findings"]}
    assert all(statuses[c] == "waived" for c in failing)

    cli("--as", "val", "approve", "credit_scoring", v, "--role", "validator", "--key", key("val"))
    cli("--as", "app1", "approve", "credit_scoring", v, "--role", "approver", "--key", key("app1"))
    cli("--as", "app1", "deploy", "credit_scoring", v, expect=1)  # high risk: a second approver is needed
    cli("--as", "app2", "approve", "credit_scoring", v, "--role", "approver", "--key", key("app2"))
    cli("--as", "app1", "deploy", "credit_scoring", v)
    assert gw.get_alias("credit_scoring", "production") == v
    cli("sync", "--check")

    # the operator's scheduled run: the monitor gate against the validation baseline (its reference profile)
    out = cli(
        "--as",
        "ops",
        "monitor",
        "credit_scoring",
        v,
        "--data",
        str(hold),
        "--target",
        "default",
        "--sensitive",
        "sex",
        "--json",
        expect=(0, 1),
    )
    mon = json.loads(out)
    assert mon["purpose"] == "monitoring" and mon["gate"] == "monitor"
    drift = {f["control_id"]: f for f in mon["findings"]}["CHK-DRIFT-01"]
    assert drift["value"] is not None  # computed from the stored reference profile, without the training data

    cli("--as", "ops", "suspend", "credit_scoring", v, "--reason", "complaint spike")
    assert gw.get_alias("credit_scoring", "production") is None
    cli("--as", "app1", "resume", "credit_scoring", v, "--reason", "false alarm")
    assert gw.get_alias("credit_scoring", "production") == v

    # someone moves the alias by hand in MLflow: a divergence, repaired from the registry and audited
    other = log_and_register_model(
        env["MLFLOW_TRACKING_URI"], experiment_id=gw.ensure_experiment("dev"), name="credit_scoring", seed=1
    )
    gw.set_alias("credit_scoring", "production", other.version)
    out = cli("sync", "--check", "--json", expect=1)
    assert json.loads(out)["divergences"][0]["actual"] == other.version
    cli("--as", "ops", "sync")
    assert gw.get_alias("credit_scoring", "production") == v
    cli("sync", "--check")
    assert "mlflow.synced" in cli("audit", "log")

    cli(
        "--as", "app1", "retire", "credit_scoring", v, "--reason", "replaced", expect=1
    )  # retire gate attestations
    for c in pack.controls_for("retire", "high", kind="attestation"):
        cli(
            "--as",
            who[c.attestation.role],
            "attest",
            "credit_scoring",
            v,
            "--control",
            c.id,
            "--key",
            key(who[c.attestation.role]),
        )
    cli("--as", "app1", "retire", "credit_scoring", v, "--reason", "replaced")
    assert gw.get_alias("credit_scoring", "production") is None
    assert gw.stage_tags("credit_scoring")[v] == "retire"
    assert "audit log OK" in cli("audit", "verify")
