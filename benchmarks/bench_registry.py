"""Registry benchmarks: CLI start-up, full audit verification from the database, write latencies.

1. ``modelreg --help`` and ``modelreg list`` wall time (median of --runs subprocess runs) against
   ``python -c pass`` in the same run, on a SQLite registry of --versions versions. Goal: <= 0.3 s.
2. ``Registry.audit_verify()`` throughput on --events events in SQLite (goal >= 200,000 events/s), and the
   ratio against a bare ``hashlib.sha256`` loop over the same canonical bytes in the same run.
3. register / submit / deploy latency (p50, p95 over --ops operations) on SQLite and PostgreSQL.

    .venv/bin/python benchmarks/bench_registry.py            # full sizes (10,000 versions, 1,000,000 events)
    .venv/bin/python benchmarks/bench_registry.py --smoke    # small sizes, a few seconds
    .venv/bin/python benchmarks/bench_registry.py --skip-pg --json

How the data is built (reported in the output too):
- the 10,000-version registry: one write transaction (``store.engine.write_session``) inserting model and
  version rows with the ORM and one ``version.registered`` event per version through
  ``audit.log.append_event`` -- the same event and rows ``Registry.register`` writes, without 10,000 fsyncs;
- the 1,000,000-event log: the first --api-events events through ``append_event`` in large transactions, the
  rest bulk-inserted with ``executemany`` using the log's own ``event_bytes`` / leaf / frontier functions
  (the ORM path costs ~0.2 ms per event). ``audit_verify()`` recomputes everything and must say ok, which
  checks that the bulk rows are exactly what ``append_event`` would have written.
The write latencies use the core ``Registry`` (no governance plug-ins: the policy gate's cost is measured
with the policy benchmarks), SQLite with synchronous=FULL (one fsync per commit) and PostgreSQL on loopback.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

from sqlalchemy import text

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from modelreg import clock  # noqa: E402
from modelreg.audit import log as audit_log  # noqa: E402
from modelreg.registry import Registry  # noqa: E402
from modelreg.settings import load as load_settings  # noqa: E402
from modelreg.store.engine import write_session  # noqa: E402
from modelreg.store.tables import AuditStateRow, ModelRow, VersionRow  # noqa: E402

GOAL_STARTUP_S = 0.3
GOAL_VERIFY_EPS = 200_000
PG_ADMIN_URL = os.environ.get("MODELREG_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
CAST = (("admin", ["admin"]), ("dev", ["developer"]), ("app1", ["approver"]), ("val", ["validator"]))


def env_for(home: Path, db_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELREG_", "MLFLOW_"))}
    env.update(
        {
            "MODELREG_CONFIG": str(REPO / "mlflow.env"),
            "MODELREG_HOME": str(home),
            "MODELREG_DATABASE_URL": db_url,
            "MODELREG_AUDIT_KEY": str(home / "keys" / "audit.key"),
            "MODELREG_USER": "admin",
            "MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlflow.db'}",
            "MLFLOW_REGISTRY_URI": f"sqlite:///{home / 'mlflow.db'}",
            "MLFLOW_DISABLE_TELEMETRY": "true",
        }
    )
    return env


def new_registry(home: Path, db_url: str) -> Registry:
    reg = Registry(load_settings(environ=env_for(home, db_url)), actor="admin")
    reg.init()
    for name, roles in CAST:
        reg.add_user(name, roles)
    return reg


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


# -- 1. start-up ----------------------------------------------------------------------------------------------
def build_versions(reg: Registry, n: int, per_model: int = 100) -> float:
    """n versions in develop, per_model per model, each with its version.registered event; one transaction."""
    started = time.perf_counter()
    now = clock.now()
    with write_session(reg.engine) as session:
        for m in range((n + per_model - 1) // per_model):
            name = f"model_{m:04d}"
            model = ModelRow(
                name=name,
                owner="dev",
                purpose="benchmark",
                business_line=None,
                risk_tier="medium",
                created_at=now,
                created_by="dev",
            )
            session.add(model)
            session.flush()
            for v in range(1, min(per_model, n - m * per_model) + 1):
                session.add(
                    VersionRow(
                        model_id=model.id,
                        version=str(v),
                        stage="develop",
                        suspended=False,
                        row_version=1,
                        registered_by="dev",
                        created_at=now,
                        updated_at=now,
                        mlflow_info={},
                        model_card={},
                    )
                )
                audit_log.append_event(
                    session,
                    "version.registered",
                    actor="dev",
                    model=name,
                    version=str(v),
                    payload={
                        "owner": "dev",
                        "risk_tier": "medium",
                        "purpose": "benchmark",
                        "business_line": None,
                        "mlflow_run_id": None,
                        "model_uri": None,
                        "artifact_digest": None,
                    },
                    signer=reg.event_signer(),
                )
    return time.perf_counter() - started


def wall(argv: list[str], env: dict[str, str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=REPO)
        times.append(time.perf_counter() - started)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed: {done.stderr.decode().strip()}")
    return times


def bench_startup(work: Path, versions: int, runs: int) -> dict:
    db = f"sqlite:///{work / 'startup.db'}"
    reg = new_registry(work / "startup_home", db)
    build_s = build_versions(reg, versions)
    assert len(reg.list()) == versions
    assert reg.audit_verify().ok
    reg.engine.dispose()
    env = env_for(work / "startup_home", db)
    modelreg = [sys.executable, "-m", "modelreg"]
    wall([sys.executable, "-c", "pass"], env, 2)  # warm the page cache for all three
    base = wall([sys.executable, "-c", "pass"], env, runs)
    help_ = wall([*modelreg, "--help"], env, runs)
    listing = wall([*modelreg, "list"], env, runs)
    listing_json = wall([*modelreg, "list", "--json"], env, runs)
    med = statistics.median
    return {
        "versions": versions,
        "build": f"one write transaction, ORM rows + append_event per version: {build_s:.1f} s",
        "python -c pass": med(base),
        "modelreg --help": med(help_),
        "modelreg list": med(listing),
        "modelreg list --json": med(listing_json),
        "runs": runs,
    }


# -- 2. audit verify ------------------------------------------------------------------------------------------
def build_log(reg: Registry, events: int, api_events: int, batch: int = 50_000) -> tuple[float, list[bytes]]:
    """Append ``events`` events; returns the build time and every event's canonical bytes (for the baseline)."""
    started = time.perf_counter()
    # part 1: the registry's own append path, in large transactions
    done = 0
    while done < api_events:
        with write_session(reg.engine) as session:
            for _ in range(min(10_000, api_events - done)):
                audit_log.append_event(
                    session,
                    "version.submitted",
                    actor="dev",
                    model="credit_scoring",
                    version=str(done % 97 + 1),
                    payload={"from": "develop", "to": "validate", "note": f"bench {done}"},
                    signer=reg.event_signer(),
                )
                done += 1
    canonicals: list[bytes] = [bytes(r[1]) for r in audit_log.iter_rows(reg.engine)]
    # part 2: bulk rows, computed with the log's own functions, then the state row moved forward once
    with reg.engine.connect() as conn:
        frontier = [
            bytes.fromhex(h)
            for h in json.loads(conn.execute(text("SELECT frontier FROM audit_state")).scalar_one())
        ]
        size = conn.execute(text("SELECT size FROM audit_state")).scalar_one()
    base_time = clock.now()
    insert = text(
        "INSERT INTO audit_events (seq, event, actor, db_role, at, model, version, canonical, leaf_hash, root_hash, "
        "signature) VALUES (:seq, :event, :actor, NULL, :at, :model, :version, :canonical, :leaf_hash, :root_hash, "
        ":signature)"
    )
    signer = reg.event_signer()
    remaining = events - done
    while remaining > 0:
        rows = []
        for _ in range(min(batch, remaining)):
            at = base_time + timedelta(microseconds=size)
            version = str(size % 97 + 1)
            data = audit_log.event_bytes(
                seq=size,
                event="version.submitted",
                actor="dev",
                at=at,
                model="credit_scoring",
                version=version,
                payload={"from": "develop", "to": "validate", "note": f"bench {size}"},
                db_role=None,
            )
            leaf = audit_log._leaf(data)
            frontier = audit_log.frontier_push(frontier, size, leaf)
            root = audit_log.frontier_root(frontier)
            rows.append(
                {
                    "seq": size,
                    "event": "version.submitted",
                    "actor": "dev",
                    "at": at,
                    "model": "credit_scoring",
                    "version": version,
                    "canonical": data,
                    "leaf_hash": leaf,
                    "root_hash": root,
                    "signature": signer.sign(size, leaf, root),
                }
            )
            canonicals.append(data)
            size += 1
        remaining -= len(rows)
        with reg.engine.begin() as conn:
            conn.execute(insert, rows)
    with write_session(reg.engine) as session:
        state = session.get(AuditStateRow, 1)
        state.size = size
        state.frontier = [h.hex() for h in frontier]
        state.root_hash = audit_log.frontier_root(frontier)
    return time.perf_counter() - started, canonicals


def bench_verify(work: Path, events: int, api_events: int) -> dict:
    reg = new_registry(work / "verify_home", f"sqlite:///{work / 'verify.db'}")
    build_s, canonicals = build_log(reg, events, min(api_events, events))
    total = len(canonicals)
    started = time.perf_counter()
    # the log alone (Merkle tree and signatures): its bulk events stand for no table rows (benchmarks/bench_replay.py
    # measures the replay of a consistent registry)
    report = reg.audit_verify(tables=False)
    verify_s = time.perf_counter() - started
    if not report.ok or report.size != total:
        raise SystemExit(
            f"the benchmark log does not verify: {report.problem} (size {report.size}, expected {total})"
        )
    sha = hashlib.sha256
    started = time.perf_counter()
    for c in canonicals:
        sha(b"\x00" + c).digest()
    bare_s = time.perf_counter() - started
    started = time.perf_counter()
    rows = sum(1 for _ in audit_log.iter_rows(reg.engine))
    read_s = time.perf_counter() - started
    reg.engine.dispose()
    return {
        "events": total,
        "build": f"{min(api_events, events):,} via append_event + {events - min(api_events, events):,} bulk rows: {build_s:.1f} s",
        "verify_s": verify_s,
        "verify_eps": total / verify_s,
        "verify_loop_eps (report.events_per_second, excludes opening the session)": report.events_per_second,
        "bare_sha256_s": bare_s,
        "bare_sha256_eps": total / bare_s,
        "read_rows_only_eps": rows / read_s,
        "avg_canonical_bytes": sum(map(len, canonicals)) / total,
    }


# -- 3. write latencies ---------------------------------------------------------------------------------------
def bench_ops(work: Path, db_url: str, label: str, ops: int) -> dict:
    reg = new_registry(work / f"ops_home_{label}", db_url)
    dev, app = reg.as_user("dev"), reg.as_user("app1")
    timings: dict[str, list[float]] = {"register": [], "submit": [], "deploy": []}
    for i in range(ops):
        name = f"m{i:05d}"
        t0 = time.perf_counter()
        dev.register(name, "1", owner="dev", risk_tier="medium", purpose="benchmark")
        t1 = time.perf_counter()
        dev.submit(name, "1")
        t2 = time.perf_counter()
        app.deploy(name, "1")
        t3 = time.perf_counter()
        timings["register"].append(t1 - t0)
        timings["submit"].append(t2 - t1)
        timings["deploy"].append(t3 - t2)
    assert reg.audit_verify().ok
    reg.engine.dispose()
    return {
        op: {"p50_ms": 1000 * pct(t, 0.5), "p95_ms": 1000 * pct(t, 0.95), "n": len(t)}
        for op, t in timings.items()
    }


def pg_database() -> tuple[str, callable]:
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    admin = create_engine(
        PG_ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=NullPool, connect_args={"connect_timeout": 5}
    )
    name = f"modelreg_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(
                text(
                    f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()"
                )
            )
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))

    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name, drop


# -- output ---------------------------------------------------------------------------------------------------
def report_table(results: dict) -> str:
    lines = [
        f"modelreg registry benchmarks ({platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f})",
        "",
    ]
    s = results.get("startup")
    if s:
        base = s["python -c pass"]
        lines += [
            f"CLI start-up, SQLite registry of {s['versions']:,} versions, median of {s['runs']} runs ({s['build']})",
            f"  {'command':<24} {'wall s':>8} {'x python -c pass':>17} {'goal':>8}",
        ]
        for key in ("python -c pass", "modelreg --help", "modelreg list", "modelreg list --json"):
            goal = (
                ""
                if key == "python -c pass"
                else ("ok" if s[key] <= GOAL_STARTUP_S else "MISSED") + f" ≤{GOAL_STARTUP_S}"
            )
            lines.append(f"  {key:<24} {s[key]:>8.3f} {s[key] / base:>17.2f} {goal:>8}")
        lines.append("")
    v = results.get("verify")
    if v:
        lines += [
            f"audit verify from SQLite, {v['events']:,} events ({v['build']}; {v['avg_canonical_bytes']:.0f} B/event)",
            f"  Registry.audit_verify(): {v['verify_s']:.2f} s = {v['verify_eps']:,.0f} events/s  "
            f"(goal ≥ {GOAL_VERIFY_EPS:,}: {'ok' if v['verify_eps'] >= GOAL_VERIFY_EPS else 'MISSED'})",
            f"  bare sha256 loop over the same bytes: {v['bare_sha256_s']:.2f} s = {v['bare_sha256_eps']:,.0f} events/s; "
            f"verify / bare time ratio {v['verify_s'] / v['bare_sha256_s']:.1f}x",
            f"  reading the rows alone: {v['read_rows_only_eps']:,.0f} rows/s",
            "",
        ]
    for label in ("sqlite", "postgresql"):
        o = results.get(f"ops_{label}")
        if o:
            lines.append(f"write latency, {label} (core Registry, {o['register']['n']} ops each)")
            lines.append(f"  {'op':<10} {'p50 ms':>8} {'p95 ms':>8}")
            lines += [
                f"  {op:<10} {o[op]['p50_ms']:>8.2f} {o[op]['p95_ms']:>8.2f}"
                for op in ("register", "submit", "deploy")
            ]
            lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--smoke", action="store_true", help="small sizes (CI): 500 versions, 20,000 events, 30 ops, 3 runs"
    )
    parser.add_argument("--versions", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument(
        "--api-events", type=int, default=20_000, help="how many of the events go through append_event"
    )
    parser.add_argument("--ops", type=int, default=200)
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--skip-pg", action="store_true", help="no PostgreSQL leg")
    parser.add_argument(
        "--only",
        choices=["startup", "verify", "ops"],
        action="append",
        help="run only these parts (repeatable)",
    )
    parser.add_argument("--json", action="store_true", help="print the raw results as JSON after the table")
    parser.add_argument("--workdir", type=Path, help="keep the databases here (default: a temporary folder)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.versions, args.events, args.api_events, args.ops, args.runs = 500, 20_000, 2_000, 30, 3
    parts = set(args.only or ["startup", "verify", "ops"])
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="modelreg_bench_") as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        if "startup" in parts:
            results["startup"] = bench_startup(work, args.versions, args.runs)
        if "verify" in parts:
            results["verify"] = bench_verify(work, args.events, args.api_events)
        if "ops" in parts:
            results["ops_sqlite"] = bench_ops(work, f"sqlite:///{work / 'ops.db'}", "sqlite", args.ops)
            if not args.skip_pg:
                url, drop = pg_database()
                try:
                    results["ops_postgresql"] = bench_ops(work, url, "postgresql", args.ops)
                finally:
                    drop()
    print(report_table(results))
    if args.json:
        print(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
