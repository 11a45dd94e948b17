"""The registry at scale: many concurrent clients on one database, and a large registry.

1. Load test: ``--clients`` processes (default 16) against one registry (PostgreSQL on loopback by default;
   SQLite with ``--load-db sqlite``), each running a fixed mix of register / submit / attest / validation
   evaluation (tiny data, a performance-only policy) / validator and approver approvals / deploy / suspend /
   resume on its own model, contended suspend/resume on one shared deployed version, and at the end a
   double-deploy race (one version each of one model, released by a barrier: exactly one may win).
   Reports operations per second and p50/p95/p99 latency per operation and overall, then checks the
   registry: every acknowledged operation is in the audit log exactly once (seq matches), counts match,
   the log verifies and its seq numbers are contiguous, the shared row's compare-and-set counter equals the
   number of acknowledged changes, and the race had one winner. The baseline for the ratio is the same mix
   run by one client (serial ops/s): ``concurrent ops/s ÷ serial ops/s``.

2. Large registry: ``--models`` models (10,000), ``--versions`` versions (100,000) and ``--events`` audit
   events (1,000,000), built on SQLite and PostgreSQL, then ``list``, ``list --model``, ``show``,
   ``findings``, ``audit verify`` and ``evidence pack`` are timed, and the SQL statements each issues are
   counted (a ``before_cursor_execute`` listener). The baseline for the ratio is the same read on a tiny
   registry (``--models 10``-sized) in the same run: a bounded query stays near 1x however big the registry.

How the large registry is built (fast, and through the registry's own code):
- models, versions, evaluations (one validation evaluation per version, three findings each) are
  inserted with SQLAlchemy 2 bulk ``insert(Table)`` executemany calls in large transactions opened by
  ``modelreg.store.engine.write_session`` (which takes the write lock: BEGIN IMMEDIATE on SQLite, the
  ``audit_state`` row lock on PostgreSQL);
- the first ``--api-events`` audit events (one ``version.registered`` per version first) go through
  ``modelreg.audit.log.append_event`` in transactions of 10,000; the rest are rows computed with the log's
  own ``event_bytes`` / leaf / ``frontier_push`` / ``frontier_root`` functions and inserted with executemany,
  then ``audit_state`` is moved forward once. ``audit verify`` recomputes every leaf and every stored root
  and must say ok, which proves the bulk rows are exactly what ``append_event`` would have written.

    .venv/bin/python benchmarks/bench_scale_registry.py                # full: 16 clients, 10k/100k/1M
    .venv/bin/python benchmarks/bench_scale_registry.py --smoke --json # seconds; what CI runs
    .venv/bin/python benchmarks/bench_scale_registry.py --only load --load-db postgresql
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import queue
import sys
import tempfile
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

PG_ADMIN_URL = os.environ.get("MODELREG_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
CAST: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("admin", ("admin",)),
    ("dev", ("developer",)),
    ("val", ("validator",)),
    ("app1", ("approver",)),
    ("app2", ("approver",)),
    ("ops", ("operator",)),
    ("aud", ("auditor",)),
)
SIGNERS = ("dev", "val", "app1", "app2")
SHARED_MODEL = "shared_scoring"
RACE_MODEL = "race_scoring"
POLICY_FILE = "scale-perf-only.yaml"
# Which audit event each acknowledged operation must have appended (exactly one each).
OP_EVENT = {
    "register": "version.registered",
    "submit": "version.submitted",
    "attest": "attestation.signed",
    "evaluate": "evaluation.recorded",
    "approve_validator": "approval.signed",
    "approve_approver": "approval.signed",
    "deploy": "version.deployed",
    "suspend": "version.suspended",
    "resume": "version.resumed",
    "shared_suspend": "version.suspended",
    "shared_resume": "version.resumed",
    "race_deploy": "version.deployed",
}


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in [0, 1]); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def env_for(home: Path, db_url: str) -> dict[str, str]:
    """Environment pointing modelreg at its own stores only (no ambient MODELREG_/MLFLOW_ settings)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELREG_", "MLFLOW_"))}
    env.update(
        {
            "MODELREG_CONFIG": str(REPO / "mlflow.env"),
            "MODELREG_HOME": str(home),
            "MODELREG_DATABASE_URL": db_url,
            "MODELREG_AUDIT_KEY": str(home / "keys" / "audit.key"),
            "MODELREG_EVIDENCE_KEY": str(home / "keys" / "evidence.key"),
            "MODELREG_USER": "admin",
            "MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlflow.db'}",
            "MLFLOW_REGISTRY_URI": f"sqlite:///{home / 'mlflow.db'}",
            "MLFLOW_ARTIFACT_ROOT": str(home / "mlartifacts"),
            "MLFLOW_DISABLE_TELEMETRY": "true",
        }
    )
    return env


def core_registry(env: dict[str, str], actor: str = "admin"):
    """The core Registry (no MLflow projection, basic gates) on the database named by ``env``."""
    from modelreg import settings
    from modelreg.registry import Registry

    return Registry(settings.load(environ=env), actor=actor)


@contextmanager
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database on loopback, dropped afterwards."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    admin = create_engine(
        PG_ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=NullPool, connect_args={"connect_timeout": 5}
    )
    name = f"modelreg_scale_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(
                text(
                    f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()"
                )
            )
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


# ==============================================================================================================
# 1. concurrent clients
# ==============================================================================================================
def write_scale_policy(home: Path) -> Path:
    """A bank policy file extending the shipped pack with every non-performance check disabled, so a
    validation run on tiny data costs ~0.1 s and no SHAP/Evidently import (the registry's write path is what
    is under test here, not the monitors)."""
    import yaml

    from modelreg.policy import load_pack

    base = load_pack("cn-fin-algo-risk")
    disabled = {
        c.id: {
            "disabled": {
                "reason_zh": "规模测试只运行性能检查",
                "reason_en": "scale test: performance checks only",
            }
        }
        for c in base.controls
        if getattr(c, "check", None) is not None and c.check.monitor != "performance"
    }
    doc = {
        "extends": f"{base.id}@{base.version}",
        "pack": {"id": "scale-perf-only", "version": "1", "title_zh": "规模测试", "title_en": "Scale test"},
        "overrides": {"controls": disabled},
    }
    path = home / "policies" / POLICY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    load_pack(path)  # fail here, in the parent, if the file is wrong
    return path


def approver_attestation(policy_path: Path) -> str:
    from modelreg.policy import load_pack

    pack = load_pack(policy_path)
    for c in pack.controls:
        if c.attestation is not None and c.attestation.role == "approver":
            return c.id
    raise RuntimeError("the policy pack has no approver attestation control")


def prepare_load(env: dict[str, str], clients: int) -> dict[str, Any]:
    """Initialise the registry: the cast with keys, the policy file, a shared deployed version and one
    race version per client in validate. Returns what the workers need."""
    from modelreg import signing

    reg = core_registry(env)
    reg.init()
    for name, roles in CAST:
        reg.add_user(name, list(roles))
    for user in SIGNERS:
        path = reg.settings.signing_key_for(user)
        signing.write_key_pair(path, signing.public_key_path_for(path))
        reg.as_user(user).register_key(signing.public_key_path_for(path).read_text(encoding="utf-8"))
    policy = write_scale_policy(reg.settings.home)
    dev, app = reg.as_user("dev"), reg.as_user("app1")
    dev.register(SHARED_MODEL, "1", owner="dev", risk_tier="low", purpose="shared contended version")
    dev.submit(SHARED_MODEL, "1")
    app.deploy(SHARED_MODEL, "1")
    for c in range(clients):
        dev.register(RACE_MODEL, str(c + 1), owner="dev", risk_tier="low", purpose="double-deploy race")
        dev.submit(RACE_MODEL, str(c + 1))
    size = reg.audit_verify().size
    reg.engine.dispose()
    return {"policy": str(policy), "attestation": approver_attestation(policy), "events_before": size}


def tiny_frame(seed: int):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    n = 120
    y = rng.integers(0, 2, n)
    return pd.DataFrame(
        {
            "x1": rng.normal(size=n),
            "x2": rng.normal(size=n),
            "y": y,
            "s": np.clip(0.3 * y + 0.7 * rng.random(n), 0, 1),
        }
    )


def _is_refusal(exc: BaseException) -> bool:
    from modelreg.errors import ModelregError

    return isinstance(exc, ModelregError)


def load_worker(env: dict[str, str], client: int, rounds: int, setup: dict, barrier, results) -> None:
    """One client process. Puts one dict on ``results``: acknowledged ops, refusals, unexpected errors."""
    acked: list[dict] = []
    refused: list[dict] = []
    unexpected: list[dict] = []
    try:
        from modelreg.governance.runner import EvaluationInput
        from modelreg.governance.service import approve, attest, run_evaluation

        reg = core_registry(env)
        dev, val, app, ops = (reg.as_user(u) for u in ("dev", "val", "app1", "ops"))
        frame = tiny_frame(client)
        policy = setup["policy"]
        # Warm up (imports, schema check, first monitor run) before the start line, so that the clients race.
        import monitors.performance  # noqa: F401
        from modelreg.governance.service import load_policy

        load_policy(reg, policy)  # lint + cache the pack here, not inside the first timed attest
        reg.show(SHARED_MODEL, "1")
        model = f"load_{client:02d}"

        def op(kind: str, version: str, fn: Callable[[], Any], target: str | None = None) -> Any:
            started = time.perf_counter()
            try:
                out = fn()
            except Exception as exc:
                record = {
                    "op": kind,
                    "model": target or model,
                    "version": version,
                    "error": type(exc).__name__,
                    "message": str(exc)[:300],
                }
                (refused if _is_refusal(exc) else unexpected).append(record)
                if not _is_refusal(exc):
                    record["traceback"] = traceback.format_exc()[-2000:]
                return None
            elapsed = time.perf_counter() - started
            seq = getattr(getattr(out, "event", None), "seq", None)
            record_id = out.get("record_id") if isinstance(out, dict) else None
            evaluation_id = getattr(out, "id", None) if kind == "evaluate" else None
            acked.append(
                {
                    "op": kind,
                    "model": target or model,
                    "version": version,
                    "seq": seq,
                    "record_id": record_id,
                    "evaluation_id": evaluation_id,
                    "latency": elapsed,
                    "end": time.time(),
                }
            )
            return out

        barrier.wait(timeout=120)
        started = time.time()
        for r in range(rounds):
            v = str(r + 1)
            op(
                "register",
                v,
                lambda v=v: dev.register(
                    model,
                    v,
                    owner="dev",
                    risk_tier="low",
                    purpose="load test",
                    mlflow_info={"artifact_digest": "b" * 64},
                ),
            )
            op("submit", v, lambda v=v: dev.submit(model, v))
            op(
                "attest",
                v,
                lambda v=v: attest(
                    app, model, v, control_id=setup["attestation"], comment="load test", policy=policy
                ),
            )
            op(
                "evaluate",
                v,
                lambda v=v: run_evaluation(
                    val,
                    model,
                    v,
                    EvaluationInput(data=frame, target="y", score="s"),
                    purpose="validation",
                    policy=policy,
                ),
            )
            op(
                "approve_validator",
                v,
                lambda v=v: approve(val, model, v, role="validator", comment="load test"),
            )
            op(
                "approve_approver",
                v,
                lambda v=v: approve(app, model, v, role="approver", comment="load test"),
            )
            op("deploy", v, lambda v=v, r=r: app.deploy(model, v, replace="retire" if r else None))
            op("suspend", v, lambda v=v: ops.suspend(model, v, reason="load test drill"))
            op("resume", v, lambda v=v: app.resume(model, v, reason="drill over"))
            # Contended: every client flips the one shared version; most find it already flipped.
            op(
                "shared_suspend",
                "1",
                lambda: ops.suspend(SHARED_MODEL, "1", reason=f"client {client}"),
                SHARED_MODEL,
            )
            op(
                "shared_resume",
                "1",
                lambda: app.resume(SHARED_MODEL, "1", reason=f"client {client}"),
                SHARED_MODEL,
            )
        finished_mix = time.time()
        barrier.wait(timeout=300)
        race_v = str(client + 1)
        op("race_deploy", race_v, lambda: app.deploy(RACE_MODEL, race_v), RACE_MODEL)
        reg.engine.dispose()
        results.put(
            {
                "client": client,
                "ok": True,
                "acked": acked,
                "refused": refused,
                "unexpected": unexpected,
                "started": started,
                "finished": finished_mix,
            }
        )
    except BaseException:
        results.put(
            {
                "client": client,
                "ok": False,
                "acked": acked,
                "refused": refused,
                "unexpected": unexpected,
                "crash": traceback.format_exc(),
            }
        )


@dataclass
class LoadReport:
    clients: int
    rounds: int
    backend: str
    wall_s: float
    acked: list[dict]
    refused: list[dict]
    unexpected: list[dict]
    crashes: list[str]
    events_before: int
    setup: dict = field(default_factory=dict)

    @property
    def ops_per_s(self) -> float:
        mix = [a for a in self.acked if a["op"] != "race_deploy"]
        return len(mix) / self.wall_s if self.wall_s > 0 else float("nan")

    def latency_ms(self) -> dict[str, dict[str, float]]:
        by_op: dict[str, list[float]] = {}
        for a in self.acked:
            by_op.setdefault(a["op"], []).append(a["latency"])
        by_op["all"] = [a["latency"] for a in self.acked]
        return {
            k: {
                "n": len(v),
                "p50": 1000 * pct(v, 0.5),
                "p95": 1000 * pct(v, 0.95),
                "p99": 1000 * pct(v, 0.99),
            }
            for k, v in by_op.items()
        }

    def error_kinds(self) -> dict[str, int]:
        return dict(Counter(f"{e['op']}:{e['error']}" for e in [*self.refused, *self.unexpected]))

    def to_dict(self) -> dict:
        return {
            "clients": self.clients,
            "rounds": self.rounds,
            "backend": self.backend,
            "wall_s": self.wall_s,
            "acked_ops": len(self.acked),
            "ops_per_s": self.ops_per_s,
            "latency_ms": self.latency_ms(),
            "refusals_and_errors": self.error_kinds(),
            "unexpected": [{k: v for k, v in e.items() if k != "traceback"} for e in self.unexpected],
            "crashes": self.crashes,
        }


def run_load(env: dict[str, str], clients: int = 16, rounds: int = 2, timeout: float = 240.0) -> LoadReport:
    """Start ``clients`` spawn processes on the registry of ``env`` (fresh database), wait at most
    ``timeout`` seconds for all of them (stragglers are killed and reported as crashes)."""
    setup = prepare_load(env, clients)
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(clients)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=load_worker, args=(env, c, rounds, setup, barrier, results), daemon=True)
        for c in range(clients)
    ]
    for p in procs:
        p.start()
    got: list[dict] = []
    deadline = time.monotonic() + timeout
    while len(got) < clients:
        try:
            got.append(results.get(timeout=max(0.1, deadline - time.monotonic())))
        except queue.Empty:
            break
    for p in procs:
        p.join(timeout=10)
        if p.is_alive():  # a bounded test never leaves a worker behind
            p.kill()
            p.join()
    crashes = [g["crash"] for g in got if not g["ok"]]
    if len(got) < clients:
        crashes.append(f"only {len(got)} of {clients} clients reported within {timeout:.0f} s")
    done = [g for g in got if g["ok"]]
    wall = (max(g["finished"] for g in done) - min(g["started"] for g in done)) if done else float("nan")
    backend = env["MODELREG_DATABASE_URL"].split(":", 1)[0].split("+", 1)[0]
    return LoadReport(
        clients=clients,
        rounds=rounds,
        backend=backend,
        wall_s=wall,
        acked=[a for g in got for a in g["acked"]],
        refused=[e for g in got for e in g["refused"]],
        unexpected=[e for g in got for e in g["unexpected"]],
        crashes=crashes,
        events_before=setup["events_before"],
        setup=setup,
    )


def check_load(env: dict[str, str], report: LoadReport) -> list[str]:
    """Everything that must hold after the load; returns the problems found (empty = all good)."""
    from sqlalchemy import func, select, text

    from modelreg.store.tables import EvaluationRow, FindingRow, ModelRow, SignedRecordRow, VersionRow

    problems: list[str] = []
    if report.crashes:
        problems += [f"crash: {c.strip().splitlines()[-1] if c.strip() else c}" for c in report.crashes]
    if report.unexpected:
        problems += [f"unhandled {e['error']} in {e['op']}: {e['message']}" for e in report.unexpected]
    reg = core_registry(env)
    try:
        verify = reg.audit_verify()
        if not verify.ok:
            problems.append(f"audit verify: {verify.problem}")
        with reg.engine.connect() as conn:
            seqs = [r[0] for r in conn.execute(text("SELECT seq FROM audit_events ORDER BY seq"))]
            rows = {
                r[0]: (r[1], r[2], r[3])
                for r in conn.execute(
                    text("SELECT seq, event, model, version FROM audit_events WHERE seq >= :s"),
                    {"s": report.events_before},
                )
            }
        if seqs != list(range(len(seqs))):
            problems.append("audit seq numbers are not contiguous from 0")
        # A failed control opens or updates a tracked finding in the evaluation's own transaction (model risk
        # operations): those events ride along with an acknowledged evaluation, they are not operations.
        riders = {seq for seq, (event, _m, _v) in rows.items() if event.startswith("finding.")}
        rows = {seq: row for seq, row in rows.items() if seq not in riders}
        expected_size = report.events_before + len(report.acked) + len(riders)
        if len(seqs) != expected_size:
            problems.append(
                f"the log holds {len(seqs)} events; {report.events_before} before + {len(report.acked)} acknowledged = {expected_size}"
            )
        # each acknowledged op that returned its event: that seq holds exactly that event
        for a in report.acked:
            if a["seq"] is not None and rows.get(a["seq"]) != (OP_EVENT[a["op"]], a["model"], a["version"]):
                problems.append(
                    f"acknowledged {a['op']} {a['model']} {a['version']} has seq {a['seq']} but the log holds {rows.get(a['seq'])}"
                )
        seen_seq = [a["seq"] for a in report.acked if a["seq"] is not None]
        if len(seen_seq) != len(set(seen_seq)):
            problems.append("two acknowledged operations share one seq (forked log)")
        # counts per (event, model, version): acknowledged == logged
        want = Counter((OP_EVENT[a["op"]], a["model"], a["version"]) for a in report.acked)
        have = Counter(rows.values())
        if want != have:
            diff = {
                k: (want.get(k, 0), have.get(k, 0))
                for k in set(want) | set(have)
                if want.get(k, 0) != have.get(k, 0)
            }
            problems.append(
                f"acknowledged vs logged counts differ (acked, logged): {dict(list(diff.items())[:5])}"
            )
        with reg.reading() as rd:
            s = rd.session
            n_eval = s.execute(select(func.count()).select_from(EvaluationRow)).scalar_one()
            n_signed = s.execute(select(func.count()).select_from(SignedRecordRow)).scalar_one()
            n_find = s.execute(select(func.count()).select_from(FindingRow)).scalar_one()
            shared = s.execute(
                select(VersionRow.row_version, VersionRow.suspended)
                .join(ModelRow, ModelRow.id == VersionRow.model_id)
                .where(ModelRow.name == SHARED_MODEL)
            ).one()
        acked = Counter(a["op"] for a in report.acked)
        if n_eval != acked["evaluate"]:
            problems.append(f"{n_eval} evaluations stored, {acked['evaluate']} acknowledged")
        if n_eval and not n_find:
            problems.append("evaluations were stored without their findings")
        if n_signed != acked["attest"] + acked["approve_validator"] + acked["approve_approver"]:
            problems.append(
                f"{n_signed} signed records stored, {acked['attest'] + acked['approve_validator'] + acked['approve_approver']} acknowledged"
            )
        # the shared row's compare-and-set counter: 1 at register, +1 submit, +1 deploy, +1 per acknowledged flip
        flips = acked["shared_suspend"] + acked["shared_resume"]
        if shared.row_version != 3 + flips:
            problems.append(
                f"shared version row_version {shared.row_version} != 3 + {flips} acknowledged flips (a lost or phantom update)"
            )
        if bool(shared.suspended) != (acked["shared_suspend"] - acked["shared_resume"] == 1):
            problems.append(
                "shared version's suspended flag disagrees with the acknowledged suspend/resume count"
            )
        winners = [a for a in report.acked if a["op"] == "race_deploy"]
        losers = [e for e in report.refused if e["op"] == "race_deploy"]
        if len(winners) != 1:
            problems.append(f"double-deploy race: {len(winners)} winners")
        if not report.crashes and len(winners) + len(losers) != report.clients:
            problems.append("double-deploy race: not every client got an answer")
        bad_losers = [e for e in losers if e["error"] not in ("InvalidTransition", "ConcurrentModification")]
        if bad_losers:
            problems.append(
                f"double-deploy race: a loser got {bad_losers[0]['error']}: {bad_losers[0]['message']}"
            )
        deployed = [v.version for v in reg.list(stage="deploy", model=RACE_MODEL)]
        if len(deployed) != 1 or (winners and deployed != [winners[0]["version"]]):
            problems.append(f"double-deploy race: deployed versions {deployed}")
        # every client's own model: its last round is deployed, earlier rounds retired
        for c in range(report.clients):
            versions = reg.list(model=f"load_{c:02d}")
            if not versions:
                continue
            stages = [v.stage.value for v in versions]
            if stages[-1] != "deploy" or any(s != "retire" for s in stages[:-1]):
                problems.append(f"load_{c:02d}: stages {stages}")
    finally:
        reg.engine.dispose()
    return problems


def load_table(report: LoadReport, serial: LoadReport | None = None) -> str:
    lat = report.latency_ms()
    lines = [
        f"{report.clients} concurrent clients on {report.backend}, {report.rounds} rounds each: {len(report.acked)} acknowledged ops "
        f"in {report.wall_s:.1f} s = {report.ops_per_s:.1f} ops/s"
        + (
            f"; one client alone {serial.ops_per_s:.1f} ops/s, ratio {report.ops_per_s / serial.ops_per_s:.2f}x"
            if serial
            else ""
        ),
        f"  {'op':<18} {'n':>5} {'p50 ms':>9} {'p95 ms':>9} {'p99 ms':>9}",
    ]
    for op_name in [*OP_EVENT, "all"]:
        if op_name in lat:
            s = lat[op_name]
            lines.append(f"  {op_name:<18} {s['n']:>5} {s['p50']:>9.1f} {s['p95']:>9.1f} {s['p99']:>9.1f}")
    kinds = report.error_kinds()
    lines.append(
        "  refusals / errors seen: " + (", ".join(f"{k} ×{v}" for k, v in sorted(kinds.items())) or "none")
    )
    return "\n".join(lines)


# ==============================================================================================================
# 2. large registry
# ==============================================================================================================
FINDINGS_PER_EVALUATION = 3


def build_large(
    engine,
    *,
    models: int,
    versions: int,
    events: int,
    api_events: int,
    signer,
    prefix: str = "model",
    chunk: int = 20_000,
) -> dict:
    """Fill an initialised, empty registry (the cast already added). See the module docstring for how.
    Every event is signed with ``signer`` (the registry's event key), as the registry signs its own."""
    from sqlalchemy import func, insert, select, text

    from modelreg import clock
    from modelreg.audit import log as audit_log
    from modelreg.store.engine import write_session
    from modelreg.store.tables import AuditStateRow, EvaluationRow, FindingRow, ModelRow, VersionRow

    t0 = time.perf_counter()
    now = clock.now()
    per_model = max(1, versions // models)
    model_rows = [
        {
            "name": f"{prefix}_{m:05d}",
            "owner": "dev",
            "purpose": "scale benchmark",
            "business_line": f"line_{m % 7}",
            "risk_tier": ("high", "medium", "low")[m % 3],
            "created_at": now,
            "created_by": "dev",
        }
        for m in range(models)
    ]
    with write_session(engine) as s:
        for i in range(0, len(model_rows), chunk):
            s.execute(insert(ModelRow), model_rows[i : i + chunk])
    with engine.connect() as conn:
        ids = dict(
            conn.execute(
                select(ModelRow.name, ModelRow.id).where(ModelRow.name.like(f"{prefix}\\_%", escape="\\"))
            ).all()
        )
        first_version_id = conn.execute(select(func.coalesce(func.max(VersionRow.id), 0))).scalar_one()
        first_evaluation_id = conn.execute(select(func.coalesce(func.max(EvaluationRow.id), 0))).scalar_one()
        events_at_start = conn.execute(select(AuditStateRow.size)).scalar_one()
    pairs: list[tuple[str, str]] = []
    version_rows = []
    for m in range(models):
        name = f"{prefix}_{m:05d}"
        n = per_model + (1 if m < versions - per_model * models else 0)
        for v in range(1, n + 1):
            stage = "deploy" if v == n else ("retire" if v < n - 1 else "validate")
            version_rows.append(
                {
                    "model_id": ids[name],
                    "version": str(v),
                    "stage": stage,
                    "suspended": False,
                    "row_version": 3,
                    "registered_by": "dev",
                    "created_at": now,
                    "updated_at": now,
                    "mlflow_run_id": f"run_{m}_{v}",
                    "model_uri": f"models:/{name}/{v}",
                    "artifact_digest": "c" * 64,
                    "mlflow_info": {"run_id": f"run_{m}_{v}"},
                    "model_card": {"intended_use": "scale benchmark"},
                }
            )
            pairs.append((name, str(v)))
    with write_session(engine) as s:
        for i in range(0, len(version_rows), chunk):
            s.execute(insert(VersionRow), version_rows[i : i + chunk])
    t_versions = time.perf_counter() - t0
    with engine.connect() as conn:
        vids = [
            r[0]
            for r in conn.execute(
                select(VersionRow.id).where(VersionRow.id > first_version_id).order_by(VersionRow.id)
            )
        ]
    ev_rows = [
        {
            "version_id": vid,
            "purpose": "validation",
            "gate": "deploy",
            "tier": "medium",
            "policy_id": "cn-fin-algo-risk",
            "policy_version": "1.0.0",
            "policy_digest": "sha256:" + "d" * 64,
            "model_artifact_digest": "c" * 64,
            "data": {"fingerprints": []},
            "status": "fail",
            "digest": "e" * 64,
            "mlflow_run_id": None,
            "created_by": "val",
            "created_at": now,
        }
        for vid in vids
    ]
    with write_session(engine) as s:
        for i in range(0, len(ev_rows), chunk):
            s.execute(insert(EvaluationRow), ev_rows[i : i + chunk])
    with engine.connect() as conn:
        evs = conn.execute(
            select(EvaluationRow.id, EvaluationRow.version_id)
            .where(EvaluationRow.id > first_evaluation_id)
            .order_by(EvaluationRow.id)
        ).all()
    statuses = ("pass", "warn", "fail")
    find_rows = [
        {
            "evaluation_id": eid,
            "version_id": vid,
            "control_id": f"CHK-PERF-0{k + 1}",
            "status": statuses[k],
            "severity": "blocking",
            "clause_ids": ["NFRA-2025-25.2"],
            "detail": {"metric": "auc", "value": 0.7 + k / 100},
        }
        for eid, vid in evs
        for k in range(FINDINGS_PER_EVALUATION)
    ]
    with write_session(engine) as s:
        for i in range(0, len(find_rows), chunk):
            s.execute(insert(FindingRow), find_rows[i : i + chunk])
    t_rows = time.perf_counter() - t0

    # audit events: part 1 through append_event (one version.registered per version first)
    api_events = min(api_events, events)
    done = 0
    while done < api_events:
        with write_session(engine) as s:
            for _ in range(min(10_000, api_events - done)):
                name, v = pairs[done % len(pairs)]
                audit_log.append_event(
                    s,
                    "version.registered",
                    actor="dev",
                    model=name,
                    version=v,
                    payload={"owner": "dev", "risk_tier": "medium", "purpose": "scale benchmark"},
                    signer=signer,
                )
                done += 1
    t_api = time.perf_counter() - t0
    # part 2: bulk rows computed with the log's own functions
    with engine.connect() as conn:
        st = conn.execute(select(AuditStateRow.size, AuditStateRow.frontier)).one()
    size, frontier = int(st.size), [bytes.fromhex(h) for h in st.frontier]
    ins = text(
        "INSERT INTO audit_events (seq, event, actor, db_role, at, model, version, canonical, leaf_hash, root_hash, "
        "signature) VALUES (:seq, :event, :actor, NULL, :at, :model, :version, :canonical, :leaf_hash, :root_hash, "
        ":signature)"
    )
    names = ("version.submitted", "evaluation.recorded", "approval.signed", "version.deployed")
    remaining = events - done
    t_bulk = time.perf_counter()
    while remaining > 0:
        batch = []
        for _ in range(min(50_000, remaining)):
            name, v = pairs[size % len(pairs)]
            ev = names[size % len(names)]
            at = now + timedelta(microseconds=size)
            data = audit_log.event_bytes(
                seq=size,
                event=ev,
                actor="val",
                at=at,
                model=name,
                version=v,
                payload={"note": f"bulk {size}"},
                db_role=None,
            )
            leaf = audit_log._leaf(data)
            frontier = audit_log.frontier_push(frontier, size, leaf)
            root = audit_log.frontier_root(frontier)
            batch.append(
                {
                    "seq": size,
                    "event": ev,
                    "actor": "val",
                    "at": at,
                    "model": name,
                    "version": v,
                    "canonical": data,
                    "leaf_hash": leaf,
                    "root_hash": root,
                    "signature": signer.sign(size, leaf, root),
                }
            )
            size += 1
        remaining -= len(batch)
        with write_session(engine) as s:
            s.execute(ins, batch)
    with write_session(engine) as s:
        state = s.get(AuditStateRow, 1)
        state.size = size
        state.frontier = [h.hex() for h in frontier]
        state.root_hash = audit_log.frontier_root(frontier)
    return {
        "models": models,
        "versions": len(version_rows),
        "evaluations": len(ev_rows),
        "findings": len(find_rows),
        "events": size,
        "api_events": api_events,
        "build_s": time.perf_counter() - t0,
        "build_detail": f"models+versions {t_versions:.1f} s, +evaluations/findings {t_rows - t_versions:.1f} s, "
        f"{api_events:,} append_event {t_api - t_rows:.1f} s, {size - events_at_start - api_events:,} bulk events {time.perf_counter() - t_bulk:.1f} s",
    }


class StatementCounter:
    """Counts SQL statements sent to the driver on one engine (``before_cursor_execute``)."""

    def __init__(self, engine) -> None:
        from sqlalchemy import event

        self.engine = engine
        self.statements: list[str] = []
        self._fn = lambda _c, _cur, statement, *_a: self.statements.append(statement)
        event.listen(engine, "before_cursor_execute", self._fn)

    def close(self) -> None:
        from sqlalchemy import event

        event.remove(self.engine, "before_cursor_execute", self._fn)

    @contextmanager
    def counting(self) -> Iterator[list[str]]:
        start = len(self.statements)
        out: list[str] = []
        yield out
        out.extend(self.statements[start:])


def read_ops(reg, name: str, version: str, pack_dir: Path | None) -> dict[str, Callable[[], Any]]:
    """The reads the large-registry benchmark times, as the CLI commands do them."""
    from modelreg.client import Client
    from modelreg.governance.service import latest

    client = Client(reg)
    ops: dict[str, Callable[[], Any]] = {
        "list": lambda: reg.list(),
        "list --model": lambda: reg.list(model=name),
        "show": lambda: client.show(name, version),
        "findings": lambda: latest(reg, name, version),
        "audit log --model": lambda: reg.audit_log(name, version),
        "audit verify": lambda: reg.audit_verify(tables=False),
    }
    if pack_dir is not None:
        try:
            from modelreg.evidence import build_pack

            ops["evidence pack"] = lambda: build_pack(reg, name, version, pack_dir / f"{name}-{version}.zip")
        except ImportError:
            pass
    return ops


def time_reads(reg, name: str, version: str, pack_dir: Path | None, repeat: int) -> dict[str, dict]:
    counter = StatementCounter(reg.engine)
    out: dict[str, dict] = {}
    try:
        for label, fn in read_ops(reg, name, version, pack_dir).items():
            fn()  # warm (schema check, imports, page cache)
            best = float("inf")
            n_stmt = 0
            for _ in range(repeat if label not in ("audit verify", "evidence pack", "list") else 1):
                with counter.counting() as stmts:
                    t = time.perf_counter()
                    result = fn()
                    best = min(best, time.perf_counter() - t)
                n_stmt = len(stmts)
            if label == "audit verify" and not result.ok:
                raise SystemExit(f"the large registry does not verify: {result.problem}")
            out[label] = {"s": best, "statements": n_stmt}
    finally:
        counter.close()
    return out


def bench_large(
    work: Path,
    db_url: str,
    label: str,
    *,
    models: int,
    versions: int,
    events: int,
    api_events: int,
    repeat: int,
    tiny: dict,
) -> dict:
    home = work / f"large_{label}"
    env = env_for(home, db_url)
    reg = core_registry(env)
    reg.init()
    for user, roles in CAST:
        reg.add_user(user, list(roles))
    built = build_large(
        reg.engine,
        signer=reg.event_signer(),
        models=models,
        versions=versions,
        events=events,
        api_events=api_events,
    )
    name, version = f"model_{models // 2:05d}", "1"
    reads = time_reads(reg, name, version, home / "packs", repeat)
    reg.engine.dispose()
    return {"built": built, "reads": reads, "tiny": tiny}


def bench_tiny(work: Path, db_url: str, label: str, repeat: int) -> dict:
    """The same reads on a 10-model registry: the baseline each large-registry read is divided by."""
    home = work / f"tiny_{label}"
    reg = core_registry(env_for(home, db_url))
    reg.init()
    for user, roles in CAST:
        reg.add_user(user, list(roles))
    build_large(reg.engine, signer=reg.event_signer(), models=10, versions=30, events=200, api_events=200)
    reads = time_reads(reg, "model_00005", "1", home / "packs", repeat)
    reg.engine.dispose()
    return reads


def large_table(results: dict) -> str:
    lines = []
    for label in ("sqlite", "postgresql"):
        r = results.get(f"large_{label}")
        if not r:
            continue
        b = r["built"]
        lines.append(
            f"large registry on {label}: {b['models']:,} models, {b['versions']:,} versions, {b['evaluations']:,} evaluations, "
            f"{b['findings']:,} findings, {b['events']:,} audit events; built in {b['build_s']:.0f} s ({b['build_detail']})"
        )
        lines.append(
            f"  {'read':<20} {'time s':>9} {'statements':>11} {'tiny s':>9} {'ratio':>8} {'tiny stmts':>11}"
        )
        for op_name, v in r["reads"].items():
            t = r["tiny"].get(op_name, {})
            ratio = v["s"] / t["s"] if t.get("s") else float("nan")
            lines.append(
                f"  {op_name:<20} {v['s']:>9.4f} {v['statements']:>11} {t.get('s', float('nan')):>9.4f} {ratio:>7.1f}x {t.get('statements', '-'):>11}"
            )
    return "\n".join(lines)


# ==============================================================================================================
def machine() -> str:
    return f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--smoke",
        action="store_true",
        help="small sizes: 4 clients × 1 round, 200 models / 1,000 versions / 10,000 events, SQLite + PostgreSQL",
    )
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--load-db", choices=("postgresql", "sqlite"), default="postgresql")
    ap.add_argument("--models", type=int, default=10_000)
    ap.add_argument("--versions", type=int, default=100_000)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument(
        "--api-events",
        type=int,
        default=100_000,
        help="how many events go through append_event (the rest: bulk rows)",
    )
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument(
        "--skip-pg",
        action="store_true",
        help="no PostgreSQL leg in the large-registry part (the load test then runs on SQLite)",
    )
    ap.add_argument("--only", choices=("load", "large"), action="append")
    ap.add_argument(
        "--json", action="store_true", help="print the figures as one JSON object after the tables"
    )
    ap.add_argument("--workdir", type=Path)
    args = ap.parse_args(argv)
    if args.smoke:
        args.clients, args.rounds, args.models, args.versions, args.events, args.api_events, args.repeat = (
            4,
            1,
            200,
            1_000,
            10_000,
            1_000,
            3,
        )
    if args.skip_pg:
        args.load_db = "sqlite"
    parts = set(args.only or ("load", "large"))
    results: dict[str, Any] = {"machine": machine(), "ratios": {}}
    failed: list[str] = []
    print(f"# registry at scale ({machine()})", flush=True)
    with tempfile.TemporaryDirectory(prefix="modelreg_scale_") as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        if "load" in parts:

            def one(clients: int, tag: str) -> LoadReport:
                if args.load_db == "postgresql":
                    with pg_database() as url:
                        env = env_for(work / f"load_{tag}", url)
                        report = run_load(env, clients, args.rounds)
                        problems = check_load(env, report)
                else:
                    env = env_for(work / f"load_{tag}", f"sqlite:///{work / f'load_{tag}.db'}")
                    report = run_load(env, clients, args.rounds)
                    problems = check_load(env, report)
                failed.extend(f"{tag}: {p}" for p in problems)
                return report

            serial = one(1, "serial")
            report = one(args.clients, "concurrent")
            print(load_table(report, serial), flush=True)
            results["load"] = report.to_dict()
            results["load_serial"] = serial.to_dict()
            results["ratios"][f"load: {args.clients} clients ops/s vs 1 client"] = (
                report.ops_per_s / serial.ops_per_s
            )
        if "large" in parts:
            legs = [("sqlite", None)] + ([] if args.skip_pg else [("postgresql", "pg")])
            for label, _ in legs:
                if label == "sqlite":
                    tiny = bench_tiny(work, f"sqlite:///{work / 'tiny.db'}", label, args.repeat)
                    results["large_sqlite"] = bench_large(
                        work,
                        f"sqlite:///{work / 'large.db'}",
                        label,
                        models=args.models,
                        versions=args.versions,
                        events=args.events,
                        api_events=args.api_events,
                        repeat=args.repeat,
                        tiny=tiny,
                    )
                else:
                    with pg_database() as tiny_url:
                        tiny = bench_tiny(work, tiny_url, label, args.repeat)
                    with pg_database() as url:
                        results["large_postgresql"] = bench_large(
                            work,
                            url,
                            label,
                            models=args.models,
                            versions=args.versions,
                            events=args.events,
                            api_events=args.api_events,
                            repeat=args.repeat,
                            tiny=tiny,
                        )
                r = results[f"large_{label}"]
                for op_name in ("show", "findings"):
                    results["ratios"][f"{label} {op_name} at {r['built']['versions']:,} versions vs 30"] = (
                        r["reads"][op_name]["s"] / r["tiny"][op_name]["s"]
                    )
                    if r["reads"][op_name]["statements"] != r["tiny"][op_name]["statements"]:
                        failed.append(
                            f"{label} {op_name}: {r['reads'][op_name]['statements']} statements at scale vs {r['tiny'][op_name]['statements']} on a tiny registry (N+1)"
                        )
                print(large_table({f"large_{label}": r}), flush=True)
    print("\nratios (each against its baseline measured in this run):")
    for k, v in results["ratios"].items():
        print(f"  ratio {k}: {v:.2f}x")
    if failed:
        print("\nCHECKS FAILED:\n  " + "\n  ".join(failed[:30]))
    else:
        print("\nall checks passed")
    if args.json:
        print(json.dumps(results, indent=2, default=str))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
