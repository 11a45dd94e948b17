"""Benchmark: drift and fairness on a Parquet scoring log with the pandas, DuckDB (and Spark) reduction engines
against minimal baselines measured in the same run, with the peak memory of each.

    .venv/bin/python -m benchmarks.bench_engines                    # 1M and 10M rows × 20 features
    .venv/bin/python -m benchmarks.bench_engines --rows 1000000 --spark
    .venv/bin/python -m benchmarks.bench_engines --smoke            # 50,000 rows: a quick check

Data: seeded numpy → pyarrow Parquet, written chunk by chunk (one file per million rows, so the current data is
a *folder*): 16 numeric features (normal, lognormal, Poisson; some NaN and +inf; a quarter shifted), 4
categorical ones (one with 200 levels, one with new levels in the current data), a score, a label and two
sensitive attributes. The reference (``--reference-rows``, default 500,000) is reduced once into a drift
profile (``ReferenceProfile``), as in production monitoring, and every contender reads that profile.

Each measurement runs in its own Python process, which reports its wall time and its peak resident memory
(``VmHWM`` from ``/proc/self/status``), so the numbers do not share a heap. Contenders:

* ``drift pandas``: ``DriftMonitor.run(profile=..., current=<folder>)`` (pandas reads the whole folder).
* ``drift duckdb``: ``monitors.scale.drift_on("duckdb", ...)`` on the same folder.
* ``drift numpy`` baseline: pyarrow reads the columns, ``np.searchsorted`` + ``np.bincount`` on the profile's
  edges, PSI; nothing else (no KS, no samples, no fingerprints).
* ``drift sql`` baseline: one DuckDB query of ``SUM(x <= edge)`` per edge and column, PSI in Python.
* ``fairness pandas`` / ``duckdb``: ``FairnessMonitor.run`` / ``fairness_on`` (two attributes + intersection,
  200 bootstrap replicates, per-group AUC).
* ``fairness numpy`` baseline: factorize + ``np.bincount`` of (sex, region, label, score ≥ 0.5) → rates.
* ``fairness sql`` baseline: one ``GROUP BY sex, region, label, score >= 0.5``.
* ``--spark``: ``drift spark`` / ``fairness spark`` (local[2]) at the smallest size.

Checks (exit status 1 when one fails): every engine's PSI equals the numpy baseline's; every engine's
selection rates equal the baseline's. Timings are reported, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

N_NUMERIC = 16
N_CATEGORICAL = 4
CHUNK = 1_000_000


def spec() -> Any:
    from monitors.base import ColumnSpec, Feature

    feats = [Feature(f"num_{i:02d}") for i in range(N_NUMERIC)]
    feats += [Feature(f"cat_{i}", "categorical") for i in range(N_CATEGORICAL)]
    return ColumnSpec(tuple(feats), target="bad", score="score", sensitive=("sex", "region"))


def _chunk(rows: int, rng: np.random.Generator, *, current: bool) -> Any:
    import pyarrow as pa

    cols: dict[str, Any] = {}
    for i in range(N_NUMERIC):
        shift = 0.1 * (i % 4) if current else 0.0
        if i % 3 == 0:
            v = rng.normal(shift, 1, rows)
        elif i % 3 == 1:
            v = rng.lognormal(shift, 0.7, rows)
        else:
            v = rng.poisson(5 + 5 * shift, rows).astype(float)
        if i % 5 == 0:
            v[rng.random(rows) < 0.02] = np.nan
        if i % 7 == 0:
            v[rng.random(rows) < 0.001] = np.inf
        cols[f"num_{i:02d}"] = v
    levels = [np.array(list("abcdef")), np.array([f"L{j:03d}" for j in range(200 + (10 if current else 0))])]
    levels += [np.array(["x", "y", "z"] + (["new"] if current else [])), np.array(["p", "q"])]
    for i in range(N_CATEGORICAL):
        cols[f"cat_{i}"] = pa.array(levels[i][rng.integers(0, len(levels[i]), rows)]).dictionary_encode()
    score = rng.beta(2, 3.5 if current else 4, rows)
    cols["score"] = score
    cols["bad"] = (rng.random(rows) < score).astype(np.int64)
    cols["sex"] = pa.array(np.array(["F", "M"])[(rng.random(rows) < 0.6).astype(int)]).dictionary_encode()
    cols["region"] = pa.array(
        np.array(["north", "south", "east", "west"])[rng.integers(0, 4, rows)]
    ).dictionary_encode()
    return pa.table(cols)


def generate(folder: Path, rows: int, seed: int, *, current: bool) -> None:
    """Write ``rows`` rows as one Parquet file per million (chunk by chunk: memory stays at one chunk)."""
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    done, part = 0, 0
    while done < rows:
        n = min(CHUNK, rows - done)
        pq.write_table(
            _chunk(n, rng, current=current), folder / f"part-{part:04d}.parquet", row_group_size=250_000
        )
        done += n
        part += 1


# -- child tasks (each in its own process) ------------------------------------------------------------------


def _vmhwm_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _profile(path: Path) -> Any:
    from monitors.base import ReferenceProfile

    return ReferenceProfile.load(path)


def child(task: str, data: Path, profile_path: Path) -> dict[str, Any]:
    from monitors import scale

    sp = spec()
    out: dict[str, Any] = {}
    params = {"evidently_report": False}
    t0 = time.perf_counter()
    if task in ("drift_pandas", "drift_duckdb", "drift_spark"):
        engine = task.split("_")[1]
        options: dict[str, Any] = {}
        current: Any = data
        if engine == "spark":
            from monitors.engines.spark import local_session

            session = local_session("bench", cores=2, shuffle_partitions=4)
            current = session.read.parquet(str(data))
            t0 = time.perf_counter()  # the session start-up is not the monitor's cost
        if engine == "duckdb" and os.environ.get("BENCH_DUCKDB_MEMORY_LIMIT"):
            options["memory_limit"] = os.environ["BENCH_DUCKDB_MEMORY_LIMIT"]
        r = scale.drift_on(
            engine, sp, current=current, profile=_profile(profile_path), params=params, **options
        )
        out["psi"] = {m.feature: m.value for m in r.find("psi")}
        out["status"] = r.status.value
    elif task == "drift_numpy":
        import pyarrow.dataset as ds

        prof = _profile(profile_path)
        table = ds.dataset(str(data), format="parquet").to_table(columns=sp.feature_names)
        from monitors.drift import psi_from_counts

        psi = {}
        for f in sp.features:
            stats = prof.payload["features"][f.name]["stats"]
            col = table.column(f.name)
            if f.kind.value == "numeric":
                v = col.to_numpy(zero_copy_only=False).astype(float)
                edges = np.asarray(stats["edges"])
                finite = v[np.isfinite(v)]
                counts = np.bincount(np.searchsorted(edges, finite, side="left"), minlength=len(edges) + 1)
                extra = [np.isnan(v).sum(), (v == np.inf).sum(), (v == -np.inf).sum()]
                ref = np.asarray(stats["counts"] + [stats["nan"], stats["posinf"], stats["neginf"]])
            else:
                vc = col.combine_chunks().value_counts().to_pylist() if hasattr(col, "combine_chunks") else []
                got = {str(d["values"]): d["counts"] for d in vc if d["values"] is not None}
                missing = sum(d["counts"] for d in vc if d["values"] is None)
                cats = stats["categories"]
                known = set(stats["reference_levels"] or [])
                counts = np.asarray([got.get(c, 0) for c in cats])
                other = sum(n for k, n in got.items() if k not in cats and k in known)
                new = sum(n for k, n in got.items() if k not in known)
                extra = [other, new, missing]
                ref = np.asarray(stats["counts"] + [stats["other"], 0, stats["missing"]])
            psi[f.name] = psi_from_counts(ref, np.concatenate([counts, extra]), 1e-4)
        out["psi"] = psi
    elif task == "drift_sql":
        import duckdb

        prof = _profile(profile_path)
        from monitors.drift import psi_from_counts
        from monitors.engines.duckdb import double_literal

        src = f"read_parquet('{data}/*.parquet')"
        parts, layout = [], []
        for f in sp.features:
            stats = prof.payload["features"][f.name]["stats"]
            if f.kind.value != "numeric":
                continue
            x = f'"{f.name}"'
            for e in stats["edges"]:
                parts.append(f"COUNT_IF(isfinite({x}) AND {x} <= {double_literal(e)})")
                layout.append((f.name, "le"))
            parts += [
                f"COUNT_IF(isfinite({x}))",
                f"COUNT_IF({x} IS NULL OR isnan({x}))",
                f"COUNT_IF({x} = 'inf'::DOUBLE)",
                f"COUNT_IF({x} = '-inf'::DOUBLE)",
            ]
            layout += [(f.name, "finite"), (f.name, "nan"), (f.name, "posinf"), (f.name, "neginf")]
        con = duckdb.connect()
        # See monitors.engines.duckdb: without this DuckDB 2.0 folds isnan() to FALSE on pyarrow's statistics.
        con.execute("SET disabled_optimizers = 'statistics_propagation'")
        row = con.execute(f"SELECT {', '.join(parts)} FROM {src}").fetchall()[0]
        acc: dict[str, dict[str, list[int]]] = {}
        for (name, key), v in zip(layout, row, strict=True):
            acc.setdefault(name, {}).setdefault(key, []).append(int(v))
        psi = {}
        for name, d in acc.items():
            stats = prof.payload["features"][name]["stats"]
            counts = np.diff(np.concatenate([[0], d["le"], d["finite"]]))
            cur = np.concatenate([counts, d["nan"], d["posinf"], d["neginf"]])
            ref = np.asarray(stats["counts"] + [stats["nan"], stats["posinf"], stats["neginf"]])
            psi[name] = psi_from_counts(ref, cur, 1e-4)
        out["psi"] = psi
    elif task in ("fairness_pandas", "fairness_duckdb", "fairness_spark"):
        engine = task.split("_")[1]
        current = data
        if engine == "spark":
            from monitors.engines.spark import local_session

            session = local_session("bench", cores=2, shuffle_partitions=4)
            current = session.read.parquet(str(data))
            t0 = time.perf_counter()
        options = {}
        if engine == "duckdb" and os.environ.get("BENCH_DUCKDB_MEMORY_LIMIT"):
            options["memory_limit"] = os.environ["BENCH_DUCKDB_MEMORY_LIMIT"]
        r = scale.fairness_on(engine, sp, current=current, params={}, **options)
        out["selection_rate"] = {
            f"{m.feature}={m.group}": m.value
            for m in r.find("selection_rate")
            if m.feature in ("sex", "region")
        }
        out["status"] = r.status.value
    elif task == "fairness_numpy":
        import pyarrow.dataset as ds

        table = ds.dataset(str(data), format="parquet").to_table(columns=["sex", "region", "bad", "score"])
        pred = table.column("score").to_numpy() >= 0.5
        rates = {}
        for attr in ("sex", "region"):
            codes, uniq = _factorize(table.column(attr))
            n = np.bincount(codes, minlength=len(uniq))
            sel = np.bincount(codes, weights=pred, minlength=len(uniq))
            rates.update({f"{attr}={u}": float(s / k) for u, s, k in zip(uniq, sel, n, strict=True)})
        out["selection_rate"] = rates
    elif task == "fairness_sql":
        import duckdb

        rows = duckdb.sql(
            f"SELECT sex, region, bad, score >= 0.5, COUNT(*) FROM read_parquet('{data}/*.parquet') GROUP BY ALL"
        ).fetchall()
        rates = {}
        for attr, i in (("sex", 0), ("region", 1)):
            agg: dict[str, list[int]] = {}
            for r in rows:
                a = agg.setdefault(f"{attr}={r[i]}", [0, 0])
                a[0] += r[4]
                a[1] += r[4] if r[3] else 0
            rates.update({k: v[1] / v[0] for k, v in agg.items()})
        out["selection_rate"] = rates
    else:
        raise SystemExit(f"unknown task {task}")
    out["seconds"] = time.perf_counter() - t0
    out["peak_rss_mb"] = _vmhwm_mb()
    return out


def _factorize(col: Any) -> tuple[np.ndarray, list[str]]:
    arr = col.combine_chunks()
    if hasattr(arr, "dictionary"):
        arr = arr.dictionary_decode()
    values = np.asarray(arr.to_pylist(), dtype=object)
    uniq, codes = np.unique(values.astype(str), return_inverse=True)
    return codes, [str(u) for u in uniq]


# -- driver ------------------------------------------------------------------------------------------------------


def run_child(task: str, data: Path, profile_path: Path) -> dict[str, Any]:
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.bench_engines",
        "--child",
        task,
        "--data",
        str(data),
        "--profile",
        str(profile_path),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, nargs="*", default=[1_000_000, 10_000_000])
    ap.add_argument("--reference-rows", type=int, default=500_000)
    ap.add_argument("--smoke", action="store_true", help="50,000 rows, reference 20,000")
    ap.add_argument("--spark", action="store_true", help="also Spark (local[2]) at the smallest size")
    ap.add_argument(
        "--workdir", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "modelreg_bench_engines"
    )
    ap.add_argument(
        "--skip-pandas-above", type=int, default=100_000_000, help="skip the pandas engine above N rows"
    )
    ap.add_argument(
        "--duckdb-memory-limit",
        help='DuckDB memory_limit for the engine runs, e.g. "1GB" (it spills above it)',
    )
    ap.add_argument("--only", nargs="*", help="run only these contenders, e.g. drift_duckdb fairness_duckdb")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--profile", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.data, args.profile)))
        return 0
    if args.duckdb_memory_limit:
        os.environ["BENCH_DUCKDB_MEMORY_LIMIT"] = args.duckdb_memory_limit
    if args.smoke:
        args.rows, args.reference_rows = [50_000], 20_000
    from monitors.drift import DriftMonitor

    work = args.workdir
    ref_dir = work / f"ref_{args.reference_rows}"
    if not ref_dir.exists():
        generate(ref_dir, args.reference_rows, seed=1, current=False)
    profile_path = work / f"profile_{args.reference_rows}.json"
    if not profile_path.exists():
        DriftMonitor().profile(spec(), ref_dir, {"evidently_report": False}).save(profile_path)
    load = os.getloadavg()
    print(
        f"machine: {os.cpu_count()} cores, load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} at start"
    )
    failures = 0
    for rows in sorted(args.rows):
        data = work / f"cur_{rows}"
        if not data.exists():
            t = time.perf_counter()
            generate(data, rows, seed=2, current=True)
            print(
                f"generated {rows:,} rows in {time.perf_counter() - t:.1f}s ({sum(f.stat().st_size for f in data.iterdir()) / 1e6:.0f} MB Parquet)"
            )
        tasks = [
            "drift_numpy",
            "drift_sql",
            "drift_duckdb",
            "fairness_numpy",
            "fairness_sql",
            "fairness_duckdb",
        ]
        if rows <= args.skip_pandas_above:
            tasks += ["drift_pandas", "fairness_pandas"]
        if args.spark and rows == min(args.rows):
            tasks += ["drift_spark", "fairness_spark"]
        if args.only:
            tasks = [t for t in tasks if t in args.only or t.endswith(("_numpy", "_sql"))]
        res = {t: run_child(t, data, profile_path) for t in tasks}
        print(f"\n{rows:,} rows × 20 features (load average now {os.getloadavg()[0]:.1f}):")
        print(f"  {'contender':<18}{'seconds':>10}{'peak RSS MB':>14}{'× numpy':>10}{'× sql':>8}")
        for t in tasks:
            r = res[t]
            if "error" in r:
                print(f"  {t:<18} ERROR {r['error']}")
                failures += 1
                continue
            kind = t.split("_")[0]
            base_np, base_sql = res.get(f"{kind}_numpy", {}), res.get(f"{kind}_sql", {})
            ratio_np = r["seconds"] / base_np["seconds"] if "seconds" in base_np else float("nan")
            ratio_sql = r["seconds"] / base_sql["seconds"] if "seconds" in base_sql else float("nan")
            print(
                f"  {t:<18}{r['seconds']:>10.2f}{r['peak_rss_mb']:>14.0f}{ratio_np:>10.2f}{ratio_sql:>8.2f}"
            )
        # Value checks against the numpy baseline.
        for t in tasks:
            r, kind = res[t], t.split("_")[0]
            base = res.get(f"{kind}_numpy", {})
            key = "psi" if kind == "drift" else "selection_rate"
            if "error" in r or key not in base:
                continue
            for k, v in base[key].items():
                if k in r[key] and r[key][k] != v and not (kind == "drift" and abs(r[key][k] - v) <= 1e-12):
                    print(f"  CHECK FAILED {t} {key}[{k}]: {r[key][k]!r} != baseline {v!r}")
                    failures += 1
    print("\nall value checks passed" if not failures else f"\n{failures} check(s) failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
