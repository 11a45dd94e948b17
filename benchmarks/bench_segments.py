"""Benchmark: segmented drift (the ``segments`` monitor, drift per channel, region and product) on the generated
credit portfolio at 1M and 10M decisions, on the pandas and DuckDB engines, against a numpy baseline of the same
statistics measured in the same run.

    .venv/bin/python -m benchmarks.bench_segments                  # 1M and 10M decisions
    .venv/bin/python -m benchmarks.bench_segments --rows 1000000
    .venv/bin/python -m benchmarks.bench_segments --smoke          # 100,000 decisions: a quick check

Data: ``modelreg.demo.portfolio.generate_portfolio`` (seeded; the online channel drifted), the reference a
fifth of the current size; six numeric features, ten segments (3 channels, 4 regions, 3 products). DuckDB
reads the same rows from Parquet files written once.

Contenders (interleaved, median of ``--repeat`` runs, see ``_timing``):

* ``segments pandas``: ``SegmentMonitor.run`` (drift only, no Evidently report) on DataFrames: per segment the
  drift monitor's PSI, KS / chi-square tests, the Benjamini–Hochberg adjustment across segments, the flags.
* ``segments duckdb``: the same on the Parquet files (``engine="duckdb"``: the segment filter runs in DuckDB).
* ``numpy`` baseline: each column converted once, each segment column factorized and sorted once, then per
  segment and feature the reference deciles (``np.quantile``), ``np.searchsorted`` + ``np.bincount`` and the
  PSI formula. Nothing else: no tests, no
  adjustment, no fingerprints. It is what the monitor must at least do.

Check (exit status 1 when it fails): every engine's per-segment PSI equals the baseline's (1e-9 relative), and
only the online channel is flagged. Timings are reported, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

try:
    from benchmarks._timing import interleaved
except ImportError:  # run as a file
    from _timing import interleaved  # type: ignore[no-redef]

SEGMENTS = ("channel", "region", "product")


def _params() -> dict:
    return {"segments": list(SEGMENTS), "kinds": ["drift"], "drift": {"evidently_report": False}}


def _segment_slices(values: np.ndarray) -> tuple[np.ndarray, dict[str, slice]]:
    """A stable order that groups the rows by segment, and each segment's slice of it."""
    import pandas as pd

    codes, levels = pd.factorize(values)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(levels) + 1))
    return order, {str(lv): slice(bounds[i], bounds[i + 1]) for i, lv in enumerate(levels)}


def numpy_baseline(
    ref: Any, cur: Any, features: tuple[str, ...], n_bins: int = 10, eps: float = 1e-4
) -> dict:
    """Per segment and feature: reference deciles, searchsorted + bincount, PSI. Each column is converted
    once and each segment column factorized and sorted once, so the baseline is what a careful numpy
    programmer would write, not a strawman."""
    out: dict[str, float] = {}
    probs = np.arange(1, n_bins) / n_bins
    r_cols = {f: ref[f].to_numpy(float) for f in features}
    c_cols = {f: cur[f].to_numpy(float) for f in features}
    for column in SEGMENTS:
        r_order, r_slices = _segment_slices(ref[column].to_numpy())
        c_order, c_slices = _segment_slices(cur[column].to_numpy())
        for f in features:
            r_sorted, c_sorted = r_cols[f][r_order], c_cols[f][c_order]
            for level, c_slice in c_slices.items():
                r, c = r_sorted[r_slices[level]], c_sorted[c_slice]
                edges = np.unique(np.quantile(r, probs))
                p = np.bincount(np.searchsorted(edges, r, side="left"), minlength=edges.size + 1) / r.size
                q = np.bincount(np.searchsorted(edges, c, side="left"), minlength=edges.size + 1) / c.size
                p, q = np.maximum(p, eps), np.maximum(q, eps)
                out[f"{column}={level}|{f}"] = float(np.sum((q - p) * np.log(q / p)))
    return out


def monitor_psi(result: Any) -> dict:
    return {
        f"{m.group}|{m.feature}": m.value
        for m in result.metrics
        if m.name == "drift.psi" and m.value is not None and m.group and "&" not in m.group
    }


def flagged(result: Any) -> list[str]:
    return sorted(m.group for m in result.metrics if m.name == "drift.segment_drifted" and m.value == 1.0)


def run_size(rows: int, repeat: int, work: Path) -> dict:
    from modelreg.demo.portfolio import FEATURES, generate_portfolio
    from monitors.base import ColumnSpec, Feature
    from monitors.segments import SegmentMonitor

    p = generate_portfolio(rows, seed=3)
    ref = p.reference.drop(columns=["decided_at", "decision_id"])
    cur = p.decisions.drop(columns=["decided_at", "decision_id"])
    ref_path, cur_path = work / f"ref_{rows}.parquet", work / f"cur_{rows}.parquet"
    ref.to_parquet(ref_path)
    cur.to_parquet(cur_path)
    spec = ColumnSpec(tuple(Feature(f) for f in FEATURES), score="score")

    def pandas_run():
        return SegmentMonitor().run(spec, current=cur, reference=ref, params=_params())

    def duckdb_run():
        return SegmentMonitor().run(
            spec, current=str(cur_path), reference=str(ref_path), params=_params(), engine="duckdb"
        )

    def baseline():
        return numpy_baseline(ref, cur, FEATURES)

    (t_np, base), (t_pd, res_pd), (t_dk, res_dk) = interleaved([baseline, pandas_run, duckdb_run], repeat)
    failures = []
    for name, res in (("pandas", res_pd), ("duckdb", res_dk)):
        got = monitor_psi(res)
        if set(got) != set(base):
            failures.append(f"{name}: segments/features differ from the baseline")
            continue
        bad = [k for k, v in base.items() if not np.isclose(got[k], v, rtol=1e-9, atol=1e-12)]
        if bad:
            failures.append(f"{name}: PSI differs from numpy for {bad[:3]}")
        if flagged(res) != ["channel=online"]:
            failures.append(f"{name}: flagged {flagged(res)}, expected only channel=online")
    return {
        "rows": rows,
        "reference_rows": len(ref),
        "seconds": {"numpy": t_np, "segments_pandas": t_pd, "segments_duckdb": t_dk},
        "ratios": {
            f"{rows:,} decisions: segments_pandas vs numpy": t_pd / t_np,
            f"{rows:,} decisions: segments_duckdb vs numpy": t_dk / t_np,
        },
        "failures": failures,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, nargs="*", default=[1_000_000, 10_000_000])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--smoke", action="store_true", help="100,000 decisions, one run")
    ap.add_argument("--json", action="store_true", help="one JSON object on the last line")
    args = ap.parse_args(argv)
    sizes, repeat = ([100_000], 1) if args.smoke else (args.rows, args.repeat)
    out = []
    with tempfile.TemporaryDirectory(prefix="bench-segments-") as tmp:
        for rows in sizes:
            r = run_size(rows, repeat if rows <= 1_000_000 else 1, Path(tmp))
            out.append(r)
            s = r["seconds"]
            print(f"{rows:,} decisions ({r['reference_rows']:,} reference), 10 segments x 6 features:")
            for name in ("numpy", "segments_pandas", "segments_duckdb"):
                print(f"  {name:<18}{s[name]:>9.2f} s  {s[name] / s['numpy']:>6.2f}x numpy")
            for f in r["failures"]:
                print(f"  CHECK FAILED {f}")
    failures = [f for r in out for f in r["failures"]]
    print("all value checks passed" if not failures else f"{len(failures)} check(s) failed")
    if args.json:
        ratios = {k: v for r in out for k, v in r["ratios"].items()}
        print(json.dumps({"sizes": out, "ratios": ratios}))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
