"""Late outcomes at scale: record 1,000,000 scored decisions, add their 1,000,000 outcomes, join and report.

On SQLite and on PostgreSQL (loopback, a throw-away database), through the registry's own code:

1. ``record``: ``modelreg.store.outcomes.record_decisions`` in one registry write transaction (what a
   monitoring run does in the transaction that stores its evaluation; the evaluation here is a real stored
   pre-check, the monitors themselves are not timed): executemany on SQLite, COPY + INSERT … SELECT on
   PostgreSQL, into the unique-keyed, trigger-guarded ``decisions`` table.
2. ``add``: ``Client.add_outcomes`` on the 1,000,000-row outcome frame (the whole command behind
   ``modelreg outcomes add``: validation, staging, classification of every row in SQL, insert, audit event).
3. ``report``: ``Client.outcomes_report`` (join of every decision with its outcome, vintages, AUCs).
4. ``join``: ``realised_section`` for a monitoring run's log of the same 1,000,000 decisions.

The baseline for the ratio is the bare bulk load of the same rows in the same run and database into a table
with no key, no trigger and no registry: ``executemany`` into a plain SQLite table, ``COPY`` into a plain
PostgreSQL table, with the times turned to text the same way. ``record ÷ baseline`` says what the registry's keys, guards and duplicate handling cost.

    .venv/bin/python benchmarks/bench_outcomes.py                   # 1,000,000 decisions, both backends
    .venv/bin/python benchmarks/bench_outcomes.py --smoke --json    # 20,000 decisions (CI)
    .venv/bin/python benchmarks/bench_outcomes.py -n 200000 --db sqlite
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

PG_ADMIN_URL = os.environ.get("MODELREG_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
CARD = {
    "intended_use": "PD scoring (benchmark)",
    "excluded_uses": "none",
    "limitations": "generated data",
    "decision_id_column": "decision_id",
    "decision_time_column": "decided_at",
    "outcome_column": "default",
    "outcome_time_column": "observed_at",
}


@contextmanager
def pg_database() -> Iterator[str]:
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    name = f"modelreg_outcomes_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(
                text(
                    f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' "
                    "AND pid <> pg_backend_pid()"
                )
            )
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


def _client(db_url: str, home: Path):
    from modelreg import settings
    from modelreg.client import Client, open_registry

    env = {
        "MODELREG_HOME": str(home),
        "MODELREG_DATABASE_URL": db_url,
        "MODELREG_AUDIT_KEY": str(home / "keys" / "audit.key"),
        "MODELREG_EVIDENCE_KEY": str(home / "keys" / "evidence.key"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlflow.db'}",
        "MLFLOW_REGISTRY_URI": f"sqlite:///{home / 'mlflow.db'}",
        "MLFLOW_ARTIFACT_ROOT": str(home / "mlartifacts"),
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "MODELREG_CONFIG": str(REPO / "mlflow.env"),
    }
    reg = open_registry(settings.load(environ=env), actor="admin")
    reg.init()
    for name, roles in (("admin", ["admin"]), ("dev", ["developer"]), ("ops", ["operator"])):
        reg.add_user(name, roles)
    return Client(reg)


def _baseline(engine, frame) -> float:
    """Bare bulk load of the same decision rows into a plain table (no key, trigger or registry)."""
    from sqlalchemy import text

    from modelreg.store.outcomes import _times

    ids = frame["decision_id"].tolist()
    scores = frame["score"].astype(float).tolist()
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS bench_plain"))
        conn.execute(text("CREATE TABLE bench_plain (decision_id TEXT, decided_at TEXT, score REAL)"))
    raw = engine.raw_connection()
    try:
        start = time.perf_counter()
        if engine.dialect.name == "postgresql":
            import io

            times = _times(frame["decided_at"], "pg")
            buf = io.StringIO()
            for row in zip(ids, times, scores, strict=True):
                buf.write("\t".join(map(str, row)) + "\n")
            with (
                raw.cursor() as cur,
                cur.copy("COPY bench_plain (decision_id, decided_at, score) FROM STDIN") as cp,
            ):
                cp.write(buf.getvalue())
        else:
            times = _times(frame["decided_at"], "sqlite")
            cur = raw.cursor()
            cur.execute("BEGIN")
            cur.executemany("INSERT INTO bench_plain VALUES (?, ?, ?)", zip(ids, times, scores, strict=True))
        raw.commit()
        return time.perf_counter() - start
    finally:
        raw.close()


def run_backend(db_url: str, n: int) -> dict:
    import pandas as pd

    from modelreg.demo.portfolio import FEATURES, generate_portfolio
    from modelreg.governance import records
    from modelreg.governance.outcomes import decisions_of, realised_section
    from modelreg.store import outcomes as store
    from modelreg.store.engine import write_session
    from monitors.vintage import MIN_CLASS_COUNT

    t0 = time.perf_counter()
    portfolio = generate_portfolio(n, seed=3, months=6, reference_rows=5_000)
    t_generate = time.perf_counter() - t0
    with tempfile.TemporaryDirectory(prefix="modelreg-bench-outcomes-") as tmp:
        client = _client(db_url, Path(tmp))
        dev = client.as_user("dev")
        dev.registry.register("pd", "1", owner="dev", risk_tier="low", purpose="bench", model_card=CARD)
        # One real, stored evaluation for the decisions to point at (a developer's pre-check on a small sample).
        ref = portfolio.reference.head(2_000)
        ev = dev.precheck("pd", "1", data=ref, target="default", score="score", features=list(FEATURES))
        reg = client.as_user("ops").registry
        decisions = decisions_of(portfolio.decisions, "decision_id", "decided_at", "score")

        t_base = _baseline(reg.engine, decisions)
        with reg.reading(model="pd", version="1") as rd:
            version_id = rd.target.id
        start = time.perf_counter()
        # The write transaction a monitoring run's evaluation is stored in (its lock, BEGIN IMMEDIATE / the
        # audit_state row), without the evaluation's other rows and event.
        with write_session(reg.engine) as session:
            inserted, already = store.record_decisions(session, version_id, ev.id, decisions)
        t_record = time.perf_counter() - start
        assert (inserted, already) == (n, 0), (inserted, already)

        ops = client.as_user("ops")
        start = time.perf_counter()
        done = ops.add_outcomes("pd", "1", portfolio.outcomes)
        t_add = time.perf_counter() - start
        assert done["matched"] == n and done["refused"] == 0, done

        start = time.perf_counter()
        again = ops.add_outcomes("pd", "1", portfolio.outcomes)
        t_again = time.perf_counter() - start
        assert again["already_recorded"] == n

        start = time.perf_counter()
        report = ops.outcomes_report("pd", "1")
        t_report = time.perf_counter() - start
        assert report["overall"]["outcomes_known"] == n

        start = time.perf_counter()
        with reg.reading() as rd:
            realised = realised_section(
                reg, rd.session, version_id, decisions, min_class_count=MIN_CLASS_COUNT
            )
        t_join = time.perf_counter() - start
        assert realised is not None and realised["overall"]["decisions"] == n
        del records, pd
        reg.engine.dispose()
    return {
        "decisions": n,
        "generate_s": round(t_generate, 2),
        "baseline_bulk_load_s": round(t_base, 2),
        "record_decisions_s": round(t_record, 2),
        "record_decisions_per_s": round(n / t_record),
        "record_vs_baseline": round(t_record / t_base, 2),
        "outcomes_add_s": round(t_add, 2),
        "outcomes_add_again_s": round(t_again, 2),
        "outcomes_report_s": round(t_report, 2),
        "monitoring_join_s": round(t_join, 2),
        "overall_realised_auc": report["overall"]["realised_auc"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--decisions", type=int, default=1_000_000)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--smoke", action="store_true", help="20,000 decisions")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args(argv)
    n = 20_000 if args.smoke else args.decisions
    out: dict = {"python": platform.python_version(), "machine": platform.machine(), "ratios": {}}
    backends = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    for backend in backends:
        if backend == "sqlite":
            with tempfile.TemporaryDirectory(prefix="modelreg-bench-outcomes-db-") as d:
                out[backend] = run_backend(f"sqlite:///{Path(d) / 'registry.db'}", n)
        else:
            with pg_database() as url:
                out[backend] = run_backend(url, n)
        out["ratios"][f"{backend} record decisions vs bare bulk load"] = out[backend]["record_vs_baseline"]
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for backend in backends:
            print(f"[{backend}]")
            for key, value in out[backend].items():
                print(f"  {key:<28} {value}")
        for label, value in out["ratios"].items():
            print(f"{label}: {value}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
