"""Issue 16's executable-model attacks against the people who check models.

A scikit-learn pickle, a pyfunc cloudpickle and an MLflow models-from-code model each write a marker file
and phone home (TCP to 127.0.0.1) when loaded. ``precheck`` and ``validate`` (validator) and ``evidence
recompute --model`` (auditor) refuse them: no file, no connection, and the refusal is what the command
reports. With an execution grant they run only in the isolated worker: still no file outside its scratch
folder and no connection, and the scores come back from the worker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import REPO_ROOT
from tests.evidence.conftest import german, pack_copy, pack_path  # noqa: F401  (fixtures)
from tests.integration.mlflow_fixtures import fluent_mlflow
from tests.isolation._attacks import Attacks, log_attacks


def _data(n: int = 120, seed: int = 3) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    y = pd.Series((X["a"] + rng.normal(scale=0.5, size=n) > 0).astype(int), name="y")
    return X, y


@pytest.fixture
def attacks(tmp_path, env_for) -> Attacks:
    env = env_for(f"sqlite:///{tmp_path / 'registry.db'}")
    X, y = _data()
    with fluent_mlflow(env["MLFLOW_TRACKING_URI"], env["MLFLOW_REGISTRY_URI"]):
        found = log_attacks(tmp_path, env["MLFLOW_TRACKING_URI"], X, y)
    found.env = env  # type: ignore[attr-defined]
    yield found
    found.listener.close()


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "modelreg", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _nothing_happened(attacks: Attacks) -> None:
    assert [a.marker.name for a in attacks.models if a.marker.exists()] == []
    assert attacks.listener.connections == 0


def test_the_attacks_are_real_when_mlflow_loads_them(attacks, tmp_path):
    """The old way (mlflow.pyfunc.load_model in the validator's process, MLflow 3.17's default flag): every
    model writes its marker and connects."""
    env = {**attacks.env, "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true"}
    code = "import sys, mlflow.pyfunc\nfor uri in sys.argv[1:]:\n    mlflow.pyfunc.load_model(uri)\n"
    done = subprocess.run(
        [sys.executable, "-c", code, *(a.uri for a in attacks.models)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert all(a.marker.exists() for a in attacks.models)
    assert attacks.listener.connections == len(attacks.models)


def test_precheck_and_validate_refuse_the_attacks(attacks, tmp_path):
    from modelreg import settings
    from modelreg.registry import Registry

    env = attacks.env
    X, y = _data(80, seed=9)
    data = tmp_path / "holdout.csv"
    X.assign(y=y).to_csv(data, index=False)
    assert _cli(env, "init").returncode == 0
    for user, role in (("admin", "admin"), ("dev", "developer"), ("val", "validator")):
        added = _cli(env, "--as", "admin", "user", "add", user, "--role", role)
        assert added.returncode == 0, added.stderr
    core = Registry(settings.load(environ=env), actor="dev")
    for attack in attacks.models:
        reg = _cli(
            env,
            "--as",
            "dev",
            "register",
            attack.name,
            "1",
            "--owner",
            "dev",
            "--risk-tier",
            "low",
            "--purpose",
            "attack",
        )
        assert reg.returncode == 0, reg.stderr
        pre = _cli(env, "--as", "dev", "precheck", attack.name, "1", "--data", str(data), "--target", "y")
        assert pre.returncode == 1, pre.stdout + pre.stderr
        assert "refused to load" in pre.stderr and "runs code when loaded" in pre.stderr, pre.stderr
        assert "Traceback" not in pre.stderr and len(pre.stderr.strip().splitlines()) == 1
        core.submit(attack.name, "1")  # the core's submit gate (owner, purpose, tier): no policy needed here
        val = _cli(
            env, "--as", "val", "validate", attack.name, "1", "--data", str(data), "--target", "y", "--json"
        )
        assert val.returncode == 1, val.stdout + val.stderr
        assert "refused to load" in val.stderr
    _nothing_happened(attacks)
    # nothing was stored: a refused model produces no evaluation
    assert not [e for e in core.audit_log() if e.event == "evaluation.recorded"]
    core.engine.dispose()


def test_evidence_recompute_refuses_the_attacks(attacks, pack_copy, german, tmp_path):  # noqa: F811
    env = {**german.env, "MLFLOW_DISABLE_TELEMETRY": "true"}
    for attack in attacks.models:
        # a local copy of the model folder: the auditor received it beside the pack
        import mlflow.artifacts

        with fluent_mlflow(attacks.env["MLFLOW_TRACKING_URI"], attacks.env["MLFLOW_REGISTRY_URI"]):
            folder = mlflow.artifacts.download_artifacts(
                artifact_uri=attack.uri, dst_path=str(tmp_path / attack.name)
            )
        done = _cli(
            env,
            "evidence",
            "recompute",
            str(pack_copy),
            "--data",
            str(german.holdout_path),
            "--model",
            folder,
            "--json",
        )
        assert "Traceback" not in done.stderr, done.stderr
        body = json.loads(done.stdout)
        refused = {k: v for k, v in body["skipped"].items() if v.startswith("model refused")}
        assert refused, body["skipped"]
        assert all("runs code when loaded" in v for v in refused.values())
    _nothing_happened(attacks)


def test_with_a_grant_the_attacks_run_only_in_the_isolated_worker(attacks, tmp_path):
    from modelreg.integrations.mlflow.worker import ExecutionGrant, WorkerModel, load_for_evaluation
    from monitors.base import predict_scores

    X, _ = _data(40, seed=11)
    grant = ExecutionGrant("CHK-ROB-04.exec", "val", "1")
    with fluent_mlflow(attacks.env["MLFLOW_TRACKING_URI"], attacks.env["MLFLOW_REGISTRY_URI"]):
        for attack in attacks.models:
            model, note = load_for_evaluation(attack.uri, grant=grant)
            try:
                assert isinstance(model, WorkerModel)
                assert "only in the isolated worker" in note and "no network" in note, note
                scores = predict_scores(model, X)
                np.testing.assert_allclose(scores, np.full(len(X), attack.expected_score))
                scratch = model.scratch
                assert scratch.is_dir()
            finally:
                model.close()
            assert not scratch.exists()  # the worker's scratch folder goes with it
    _nothing_happened(attacks)
    assert os.environ.get("MLFLOW_ALLOW_PICKLE_DESERIALIZATION") in (None, "false", "False")


# The shipped pack keeps CHK-ROB-04.exec switched off; a bank's override switches it on.
EXEC_PACK = """\
extends: cn-fin-algo-risk@1.0.0
pack:
  id: exec-bank
  version: "2026.1"
  title_zh: 允许在隔离进程中运行可执行模型的政策
  title_en: Policy that lets executable model formats run in the isolated worker
overrides:
  controls:
    CHK-ROB-04.exec:
      disabled: false
"""


def test_a_validator_attestation_under_a_pack_that_allows_it_runs_the_model_in_the_worker(attacks, tmp_path):
    from sqlalchemy import create_engine, text

    env = {**attacks.env, "MODELREG_POLICY": "exec-bank"}
    home = Path(env["MODELREG_HOME"])
    (home / "policies").mkdir(parents=True)
    (home / "policies" / "exec-bank.yaml").write_text(EXEC_PACK, encoding="utf-8")
    X, y = _data(80, seed=9)
    data = tmp_path / "holdout.csv"
    X.assign(y=y).to_csv(data, index=False)
    attack = attacks.models[0]  # the scikit-learn pickle
    steps = [
        ("init",),
        ("--as", "admin", "user", "add", "admin", "--role", "admin"),
        ("--as", "admin", "user", "add", "dev", "--role", "developer"),
        ("--as", "admin", "user", "add", "val", "--role", "validator"),
        ("keys", "generate", "-o", str(home / "keys" / "val.key")),
        ("--as", "val", "keys", "register", str(home / "keys" / "val.key.pub")),
        (
            "--as",
            "dev",
            "register",
            attack.name,
            "1",
            "--owner",
            "dev",
            "--risk-tier",
            "low",
            "--purpose",
            "attack",
        ),
    ]
    for step in steps:
        done = _cli(env, *step)
        assert done.returncode == 0, (step, done.stderr)
    refused = _cli(env, "--as", "dev", "precheck", attack.name, "1", "--data", str(data), "--target", "y")
    assert refused.returncode == 1 and "refused to load" in refused.stderr, refused.stderr
    attested = _cli(env, "--as", "val", "attest", attack.name, "1", "--control", "CHK-ROB-04.exec")
    assert attested.returncode == 0, attested.stderr
    ran = _cli(
        env, "--as", "dev", "precheck", attack.name, "1", "--data", str(data), "--target", "y", "--json"
    )
    assert ran.returncode in (0, 1), ran.stderr  # 1: controls may fail on a constant model; it ran
    assert "refused" not in ran.stderr
    engine = create_engine(env["MODELREG_DATABASE_URL"])
    with engine.connect() as conn:
        stored = [
            json.loads(d) if isinstance(d, str) else d
            for d in conn.execute(text("SELECT data FROM evaluations")).scalars()
        ]
    engine.dispose()
    assert len(stored) == 1
    note = stored[0]["model_loading"]
    assert "only in the isolated worker" in note and "CHK-ROB-04.exec attested by val" in note, note
    _nothing_happened(attacks)
