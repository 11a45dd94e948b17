"""SIGKILL in the middle of deploy / suspend / resume with the MLflow projection on, 100 times per backend:
MLflow is never ahead of the registry (every stage tag and the alias show a state the registry committed),
and the next command brings it level (``sync --check`` finds nothing).

Before the outbox the projection was written inside the registry transaction, before commit: a kill between
the two left MLflow ahead (27/100 kills on SQLite, 8/100 on PostgreSQL, twice ``production`` on a version the
registry records as suspended). Children are forked from this process after MLflow and modelreg are imported,
so a kill costs a fraction of a second instead of a fresh interpreter's start-up."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.conftest import REPO_ROOT
from tests.core._workers import seeded_core_registry

MODEL = "crash_model"
KILLS = int(os.environ.get("MODELREG_OUTBOX_KILLS", "100"))
ALIAS = "production"


def _child(env: dict[str, str], write_fd: int) -> None:
    """The forked child: a registry with the MLflow projection, looping over state changes until killed."""
    from modelreg import settings
    from modelreg.integrations.mlflow import projection as mlflow_sync
    from modelreg.registry import Registry

    def ack(**record) -> None:
        os.write(write_fd, (json.dumps(record) + "\n").encode())

    reg = Registry(settings.load(environ=env), actor="admin")
    mlflow_sync.install(reg)
    dev, app, ops = reg.as_user("dev"), reg.as_user("app1"), reg.as_user("ops")
    client = mlflow_sync._gateway(reg)._client
    for v in reg.list(model=MODEL):  # the first command also drains what the killed child left queued
        if v.stage.value == "develop":
            app.retire(MODEL, v.version, reason="abandoned after a crash")
        elif v.stage.value == "deploy" and v.suspended:
            app.resume(MODEL, v.version, reason="resumed after a crash")
    client.get_registered_model(MODEL)  # open MLflow's store before the kill window starts
    ack(ready=True)
    while True:
        # MLflow numbers versions itself; a version created by a killed child is simply never registered.
        number = client.create_model_version(MODEL, source=f"file:///models/{MODEL}").version
        version = str(number)
        dev.register(
            MODEL,
            version,
            owner="dev",
            risk_tier="low",
            purpose="crash test",
            mlflow_info={"model_uri": f"models:/{MODEL}/{version}"},
        )
        ack(event="registered", version=version)
        dev.submit(MODEL, version)
        app.deploy(MODEL, version, replace="retire")
        ack(event="deployed", version=version)
        ops.suspend(MODEL, version, reason="drill")
        ack(event="suspended", version=version)
        app.resume(MODEL, version, reason="drill over")
        ack(event="resumed", version=version)


class Forked:
    def __init__(self, env: dict[str, str]) -> None:
        self.ready = threading.Event()
        self.acks: list[dict] = []
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: never return into pytest
            code = 0
            try:
                os.close(read_fd)
                _child(env, write_fd)
            except BaseException:
                import traceback

                traceback.print_exc()
                code = 3
            finally:
                os._exit(code)
        os.close(write_fd)
        self.pid = pid
        self._file = os.fdopen(read_fd, "rb")
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for raw in self._file:
            line = raw.decode().strip()
            if not line.endswith("}"):
                continue
            record = json.loads(line)
            if record.get("ready"):
                self.ready.set()
            else:
                self.acks.append(record)

    def kill(self) -> int:
        os.kill(self.pid, signal.SIGKILL)
        _, status = os.waitpid(self.pid, 0)
        self._reader.join(timeout=30)
        self._file.close()
        return status


def _mlflow_state(db: Path) -> tuple[str | None, dict[str, str]]:
    conn = sqlite3.connect(db, timeout=30)
    try:
        row = conn.execute(
            "SELECT version FROM registered_model_aliases WHERE name = ? AND alias = ?", (MODEL, ALIAS)
        ).fetchone()
        tags = dict(
            conn.execute(
                "SELECT version, value FROM model_version_tags WHERE name = ? AND key = 'modelreg.stage'",
                (MODEL,),
            ).fetchall()
        )
    finally:
        conn.close()
    return (str(row[0]) if row else None), {str(k): v for k, v in tags.items()}


def _registry_history(reg) -> tuple[dict[str, str], dict[str, set[str]]]:
    """(current state per version, every state each version has held in committed history)."""
    with reg.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT v.version, t.action, t.target FROM transitions t JOIN model_versions v ON v.id = t.version_id "
                "JOIN models m ON m.id = v.model_id WHERE m.name = :m ORDER BY t.id"
            ),
            {"m": MODEL},
        ).all()
        versions = conn.execute(
            text(
                "SELECT v.version, v.stage, v.suspended FROM model_versions v JOIN models m ON m.id = v.model_id WHERE m.name = :m"
            ),
            {"m": MODEL},
        ).all()
    held: dict[str, set[str]] = {v: {"develop"} for v, _, _ in versions}
    for version, action, target in rows:
        if action == "suspend":
            held[version].add("deploy:suspended")
        else:
            held[version].add(target)  # resume and every move land on an unsuspended state
    current = {v: stage + (":suspended" if suspended else "") for v, stage, suspended in versions}
    return current, held


def _check_never_ahead(reg, mlflow_db: Path) -> int:
    """Assert MLflow shows only committed registry states; return 1 when it is behind (allowed), else 0."""
    alias, tags = _mlflow_state(mlflow_db)
    current, held = _registry_history(reg)
    for version, tag in tags.items():
        assert version in held, f"MLflow tags version {version} as {tag!r}; the registry never registered it"
        assert tag in held[version], (
            f"MLflow ahead: version {version} tagged {tag!r}, a state the registry never committed ({sorted(held[version])})"
        )
    if alias is not None:
        assert "deploy" in held.get(alias, set()), (
            f"MLflow ahead: {ALIAS!r} points at version {alias}, never deployed in the registry"
        )
    deployed = next((v for v, s in current.items() if s == "deploy"), None)
    behind = alias != deployed or any(tags.get(v) != s for v, s in current.items())
    return int(behind)


def _sync_check(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "modelreg", "sync", "--check", "--json"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_kill_9_never_leaves_mlflow_ahead_of_the_registry(db_url, env_for, tmp_path):
    env = env_for(db_url)
    mlflow_db = tmp_path / "mlflow.db"
    reg = seeded_core_registry(env)
    # MLflow's store (schema and the registered model) is created once, outside the kill loop.
    setup = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from mlflow.tracking import MlflowClient; "
            "MlflowClient(tracking_uri=sys.argv[1], registry_uri=sys.argv[1]).create_registered_model(sys.argv[2])",
            env["MLFLOW_TRACKING_URI"],
            MODEL,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert setup.returncode == 0, setup.stderr
    # Imported before forking: children start without the import cost.
    import mlflow
    import mlflow.store.model_registry.sqlalchemy_store
    import mlflow.store.tracking.sqlalchemy_store
    import mlflow.tracking  # noqa: F401

    reg.engine.dispose()
    rng = random.Random(int(os.environ.get("MODELREG_CRASH_SEED", "20261202")))
    behind = 0
    acked = 0
    events_before = reg.audit_verify().size
    started = time.monotonic()
    for i in range(KILLS):
        child = Forked(env)
        try:
            assert child.ready.wait(timeout=120), f"kill {i}: the child never became ready"
            time.sleep(rng.uniform(0.0, 1.5))
        finally:
            status = child.kill()
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, (
            f"kill {i}: child exited {status}"
        )
        acked += len(child.acks)
        behind += _check_never_ahead(reg, mlflow_db)
        assert reg.audit_verify().ok
        if i % 25 == 24:  # the next command brings MLflow level: nothing left for sync to report
            done = _sync_check(env)
            assert done.returncode == 0, done.stdout + done.stderr
            assert _check_never_ahead(reg, mlflow_db) == 0
    elapsed = time.monotonic() - started
    done = _sync_check(env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert _check_never_ahead(reg, mlflow_db) == 0
    # the kills hit children that were working: they committed more state changes than there were kills
    written = reg.audit_verify().size - events_before
    assert written > KILLS, (written, acked)
    print(
        f"\n{reg.engine.dialect.name}: {KILLS} kills in {elapsed:.0f}s, {written} events committed, {acked} steps acknowledged, "
        f"MLflow ahead 0 times, behind (until the next command) {behind} times"
    )
    reg.engine.dispose()
