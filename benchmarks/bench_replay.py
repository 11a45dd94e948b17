"""Audit replay against today's verify, on a legitimate log of ``-n`` events (default 1,000,000), SQLite.

The log is what the registry would have written: ``--versions`` versions registered (10,000), one per model
deployed, then suspend/resume pairs on the deployed versions until the log holds ``-n`` events, every event
format v2 and signed with a registry event key, and every table row (models, versions, transitions) beside it.
The rows are computed with the log's own ``event_bytes`` / leaf / frontier functions and inserted with
executemany (10,000 transactions of the API would take an hour); ``audit verify`` and the replay then must both
say ok, which proves the rows are exactly what the registry writes.

Measured, each in its own subprocess (so peak memory is the measurement's own):
- ``verify``: the Merkle log and signatures (``audit_log.verify_snapshot``): events/s;
- ``replay``: the tables against the state the log proves (``audit.replay.replay``): events/s, and the ratio
  replay time / verify time;
- peak RSS of the replay at the full size and at a tenth of it: bounded memory means the ratio stays far below
  the 10x growth of the log (the versions table, not the log, sets the size).

    python benchmarks/bench_replay.py [-n 1000000] [--versions 10000] [--smoke] [--json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def env_for(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELREG_", "MLFLOW_"))}
    env.update(
        {
            "MODELREG_HOME": str(home),
            "MODELREG_DATABASE_URL": f"sqlite:///{home / 'registry.db'}",
            "MODELREG_AUDIT_KEY": str(home / "keys" / "audit.key"),
            "MODELREG_EVIDENCE_KEY": str(home / "keys" / "evidence.key"),
            "MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlflow.db'}",
            "MLFLOW_DISABLE_TELEMETRY": "true",
        }
    )
    return env


def build(home: Path, events: int, versions: int) -> dict:
    from sqlalchemy import text

    from modelreg import clock, settings
    from modelreg.audit import log as audit_log
    from modelreg.audit.replay import card_digest
    from modelreg.registry import Registry

    reg = Registry(settings.load(environ=env_for(home)), actor="admin")
    reg.init()
    reg.add_user("admin", ["admin"])
    reg.add_user("dev", ["developer"])
    signer = reg.event_signer()
    started = time.perf_counter()
    with reg.engine.begin() as conn:
        size, frontier_json = conn.execute(text("SELECT size, frontier FROM audit_state WHERE id = 1")).one()
        frontier = [bytes.fromhex(h) for h in json.loads(frontier_json)]
        seq = size
        t0 = clock.parse("2026-06-01T00:00:00Z")
        ev_rows: list[dict] = []
        tr_rows: list[dict] = []

        def emit(event: str, actor: str, model: str | None, version: str | None, payload: dict) -> int:
            nonlocal seq, frontier
            at = t0 + timedelta(microseconds=seq)
            data = audit_log.event_bytes(
                seq=seq,
                event=event,
                actor=actor,
                at=at,
                model=model,
                version=version,
                payload=payload,
                db_role=None,
            )
            leaf = hashlib.sha256(b"\x00" + data).digest()
            frontier = audit_log.frontier_push(frontier, seq, leaf)
            root = audit_log.frontier_root(frontier)
            ev_rows.append(
                {
                    "seq": seq,
                    "event": event,
                    "actor": actor,
                    "at": at,
                    "model": model,
                    "version": version,
                    "c": data,
                    "l": leaf,
                    "r": root,
                    "s": signer.sign(seq, leaf, root),
                }
            )
            seq += 1
            return seq - 1

        def flush() -> None:
            if ev_rows:
                conn.execute(
                    text(
                        "INSERT INTO audit_events (seq, event, actor, db_role, at, model, version, canonical, "
                        "leaf_hash, root_hash, signature) VALUES (:seq, :event, :actor, NULL, :at, :model, :version, "
                        ":c, :l, :r, :s)"
                    ),
                    ev_rows,
                )
                ev_rows.clear()
            if tr_rows:
                conn.execute(
                    text(
                        "INSERT INTO transitions (version_id, action, source, target, actor, reason, at, audit_seq) "
                        "VALUES (:vid, :action, :source, :target, 'dev', :reason, :at, :seq)"
                    ),
                    tr_rows,
                )
                tr_rows.clear()

        per_model = 10
        models = max(1, versions // per_model)
        deployed: list[tuple[str, str, int]] = []
        vid = 0
        for m in range(models):
            name = f"model_{m:05d}"
            conn.execute(
                text(
                    "INSERT INTO models (name, owner, purpose, business_line, risk_tier, created_at, created_by) "
                    "VALUES (:n, 'dev', 'PD scoring', NULL, 'medium', :at, 'dev')"
                ),
                {"n": name, "at": t0},
            )
            mid = conn.execute(text("SELECT id FROM models WHERE name = :n"), {"n": name}).scalar_one()
            for v in range(1, per_model + 1):
                ver = str(v)
                stage = "deploy" if v == 1 else "develop"
                conn.execute(
                    text(
                        "INSERT INTO model_versions (model_id, version, stage, suspended, row_version, registered_by, "
                        "created_at, updated_at, mlflow_info, model_card) VALUES (:m, :v, :st, :sus, 1, 'dev', :at, "
                        ":at, '{}', '{}')"
                    ),
                    {"m": mid, "v": ver, "st": stage, "sus": False, "at": t0},
                )
                vid += 1
                emit(
                    "version.registered",
                    "dev",
                    name,
                    ver,
                    {
                        "owner": "dev",
                        "risk_tier": "medium",
                        "purpose": "PD scoring",
                        "business_line": None,
                        "mlflow_run_id": None,
                        "model_uri": None,
                        "artifact_digest": None,
                        "card_digest": card_digest({}),
                    },
                )
                if v == 1:
                    moves = (
                        ("version.submitted", "submit", "develop", "validate"),
                        ("version.deployed", "deploy", "validate", "deploy"),
                    )
                    for event, action, src, dst in moves:
                        s = emit(event, "dev", name, ver, {"from": src, "to": dst})
                        tr_rows.append(
                            {
                                "vid": vid,
                                "action": action,
                                "source": src,
                                "target": dst,
                                "reason": None,
                                "at": t0,
                                "seq": s,
                            }
                        )
                    deployed.append((name, ver, vid))
            if len(ev_rows) > 20_000:
                flush()
        # suspend / resume pairs until the log is full; an even number of moves per version leaves it running
        i = 0
        suspended: dict[int, bool] = {}
        while seq < events:
            name, ver, v_id = deployed[i % len(deployed)]
            now = not suspended.get(v_id, False)
            s = emit("version.suspended" if now else "version.resumed", "dev", name, ver, {"reason": "drill"})
            suspended[v_id] = now
            tr_rows.append(
                {
                    "vid": v_id,
                    "action": "suspend" if now else "resume",
                    "source": "deploy",
                    "target": "deploy",
                    "reason": "drill",
                    "at": t0,
                    "seq": s,
                }
            )
            i += 1
            if len(ev_rows) >= 20_000:
                flush()
        flush()
        for v_id, flag in suspended.items():
            if flag:
                conn.execute(
                    text("UPDATE model_versions SET suspended = :t WHERE id = :i"), {"t": True, "i": v_id}
                )
        conn.execute(
            text("UPDATE audit_state SET size = :n, root_hash = :r, frontier = :f WHERE id = 1"),
            {"n": seq, "r": audit_log.frontier_root(frontier), "f": json.dumps([h.hex() for h in frontier])},
        )
    built = time.perf_counter() - started
    reg.engine.dispose()
    return {"events": seq, "versions": vid, "build_s": round(built, 1)}


def measure(home: Path, what: str) -> dict:
    """Run in a child: one measurement, its time and the process's peak RSS."""
    from modelreg import settings
    from modelreg.audit import log as audit_log
    from modelreg.audit.replay import replay
    from modelreg.store.engine import make_engine

    engine = make_engine(settings.load(environ=env_for(home)).database_url)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    if what == "verify":
        report = audit_log.verify_snapshot(engine)
        ok, n, problem = report.ok, report.size, report.problem
    else:
        rep = replay(engine)
        ok, n, problem = rep.ok, rep.events, (rep.first_line() if not rep.ok else None)
    seconds = time.perf_counter() - started
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "ok": ok,
        "events": n,
        "seconds": seconds,
        "peak_rss_mb": rss / 1024,
        "rss_growth_mb": (rss - rss_before) / 1024,
        "problem": problem,
    }


def child(home: Path, what: str) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--child", what, "--home", str(home)],
        capture_output=True,
        text=True,
        env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"},
        timeout=3600,
    )
    if done.returncode != 0:
        raise SystemExit(f"{what} failed: {done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if not result["ok"]:
        raise SystemExit(f"{what} did not verify the legitimate log: {result['problem']}")
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", "--events", type=int, default=1_000_000)
    ap.add_argument("--versions", type=int, default=10_000)
    ap.add_argument("--smoke", action="store_true", help="10,000 events, 500 versions")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--child", choices=["verify", "replay"], help=argparse.SUPPRESS)
    ap.add_argument("--home", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(measure(Path(args.home), args.child)))
        return 0
    if args.smoke:
        args.events, args.versions = 10_000, 500
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="modelreg-bench-replay-") as tmp:
        for label, n in (("small", max(args.events // 10, args.versions * 3)), ("full", args.events)):
            home = Path(tmp) / label
            home.mkdir()
            built = build(home, n, args.versions)
            verify = child(home, "verify")
            rep = child(home, "replay")
            results[label] = {
                **built,
                "verify_events_per_s": round(verify["events"] / verify["seconds"]),
                "replay_events_per_s": round(rep["events"] / rep["seconds"]),
                "replay_vs_verify_time_ratio": round(rep["seconds"] / verify["seconds"], 2),
                "replay_peak_rss_mb": round(rep["peak_rss_mb"], 1),
                "verify_peak_rss_mb": round(verify["peak_rss_mb"], 1),
            }
    full, small = results["full"], results["small"]
    results["ratios"] = {
        f"replay vs verify time, {full['events']:,} events": full["replay_vs_verify_time_ratio"],
        f"replay peak RSS at {full['events']:,} vs {small['events']:,} events": round(
            full["replay_peak_rss_mb"] / small["replay_peak_rss_mb"], 2
        ),
    }
    print(f"audit replay on SQLite ({full['versions']:,} versions):")
    for label in ("small", "full"):
        r = results[label]
        print(
            f"  {r['events']:>9,} events: verify {r['verify_events_per_s']:>9,} ev/s, replay {r['replay_events_per_s']:>9,} ev/s "
            f"({r['replay_vs_verify_time_ratio']}x verify time), replay peak RSS {r['replay_peak_rss_mb']} MB "
            f"(verify {r['verify_peak_rss_mb']} MB); built in {r['build_s']} s"
        )
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
