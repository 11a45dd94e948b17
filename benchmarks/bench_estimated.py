"""The label-free performance estimate (``monitors.estimated_performance``, CBPE) at bank scale.

    .venv/bin/python -m benchmarks.bench_estimated --smoke      # 50,000 decisions: a quick check
    .venv/bin/python -m benchmarks.bench_estimated              # 1M and 10M decisions
    .venv/bin/python -m benchmarks.bench_estimated --json

For each size the generated portfolio's scoring log (``modelreg.demo.portfolio``; 10M rows are the 1M
scores tiled, scoring log only) is estimated by the monitor on the pandas engine (exact sort over distinct
scores) and on DuckDB (score-bin aggregates in SQL over a Parquet file), each as a ratio against a numpy
baseline of the same statistics (sort, cumulative expected positives, trapezoid, threshold sums) timed
interleaved in the same run (``_timing.interleaved``). NannyML 0.13.1's CBPE on the same data (1M rows) is
timed in its own venv when ``MODELREG_NANNYML_PYTHON`` names it (``tests/run.sh`` creates it); the headline
check: the 1M estimate lies within its band of the realised AUC once outcomes are joined.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
try:
    from benchmarks._timing import interleaved
except ImportError:  # run as a file
    from _timing import interleaved  # type: ignore[no-redef]


def numpy_baseline(p: np.ndarray, threshold: float) -> tuple[float, float]:
    s = np.sort(p)[::-1]
    tp = np.cumsum(s)
    fp = np.arange(1, len(s) + 1) - tp
    auc = float(np.trapezoid(np.r_[0, tp / tp[-1]], np.r_[0, fp / fp[-1]]))
    hi = p >= threshold
    acc = float((p[hi].sum() + (1 - p[~hi]).sum()) / len(p))
    return auc, acc


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    import pandas as pd
    from sklearn.metrics import roc_auc_score

    from modelreg.demo.portfolio import generate_portfolio
    from monitors.base import ColumnSpec, Feature
    from monitors.estimated_performance import EstimatedPerformanceMonitor

    spec = ColumnSpec((Feature("age"),), target="default", score="score")
    mon = EstimatedPerformanceMonitor()
    base_n = 50_000 if args.smoke else 1_000_000
    sizes = [base_n] if args.smoke else [1_000_000, 10_000_000]
    pf = generate_portfolio(base_n, seed=3, drifted_channel="online")
    ref = pf.reference
    out: dict = {"sizes": {}, "ratios": {}}
    params = {"threshold": 0.1}
    work = Path(tempfile.mkdtemp(prefix="bench-estimated-"))
    for n in sizes:
        reps = n // base_n
        cur = (
            pf.decisions[["score"]]
            if reps == 1
            else pd.DataFrame({"score": np.tile(pf.decisions["score"].to_numpy(), reps)})
        )
        path = work / f"cur-{n}.parquet"
        cur.to_parquet(path)
        p = cur["score"].to_numpy()
        (t_np, _), (t_pd, r_pd), (t_dk, r_dk) = interleaved(
            [
                lambda p=p: numpy_baseline(p, 0.1),
                lambda cur=cur: mon.run(spec, current=cur, reference=ref, params=params),
                lambda path=path: mon.run(spec, current=path, reference=ref, params=params, engine="duckdb"),
            ],
            1 if n > 1_000_000 else args.repeat,
        )
        row = {
            "numpy_s": t_np,
            "pandas_s": t_pd,
            "duckdb_s": t_dk,
            "estimated_auc": r_pd.value("estimated_auc"),
            "duckdb_minus_pandas_auc": r_dk.value("estimated_auc") - r_pd.value("estimated_auc"),
            "band": [r_pd.value("estimated_auc_low"), r_pd.value("estimated_auc_high")],
        }
        if reps == 1:
            lab = pf.labelled_current()
            realised = float(roc_auc_score(lab["default"], lab["score"]))
            row["realised_auc"] = realised
            row["realised_in_band"] = bool(row["band"][0] <= realised <= row["band"][1])
        out["sizes"][n] = row
        out["ratios"][f"pandas_vs_numpy_{n}"] = t_pd / t_np
        out["ratios"][f"duckdb_vs_numpy_{n}"] = t_dk / t_np
    py = os.environ.get("MODELREG_NANNYML_PYTHON")
    if py and Path(py).exists():
        r = pf.reference[["score", "default"]].rename(columns={"default": "y"})
        r.to_parquet(work / "ref.parquet")
        pf.decisions[["score"]].to_parquet(work / "ana.parquet")
        oracle = Path(__file__).resolve().parent.parent / "tests" / "latelabels" / "_nannyml_oracle.py"
        t0 = time.perf_counter()
        subprocess.run(
            [
                py,
                str(oracle),
                str(work / "ref.parquet"),
                str(work / "ana.parquet"),
                str(base_n),
                "0.1",
                str(work / "nml.json"),
            ],
            check=True,
            capture_output=True,
        )
        nml = json.loads((work / "nml.json").read_text())
        out["nannyml"] = {
            "process_s": time.perf_counter() - t0,
            "cbpe_s": nml["seconds"],
            "roc_auc": nml["chunks"][0]["roc_auc"],
            "minus_ours": nml["chunks"][0]["roc_auc"] - out["sizes"][base_n]["estimated_auc"],
        }
        out["ratios"][f"nannyml_vs_numpy_{base_n}"] = nml["seconds"] / out["sizes"][base_n]["numpy_s"]
    if args.json:
        print(json.dumps(out, indent=2, default=float))
        return
    for n, row in out["sizes"].items():
        print(
            f"{n:>11,} rows: numpy {row['numpy_s']:.2f} s; pandas {row['pandas_s']:.2f} s "
            f"(ratio {row['pandas_s'] / row['numpy_s']:.2f}x); duckdb {row['duckdb_s']:.2f} s "
            f"({row['duckdb_s'] / row['numpy_s']:.2f}x); estimated AUC {row['estimated_auc']:.4f} band "
            f"{row['band'][0]:.4f}-{row['band'][1]:.4f}"
            + (
                f"; realised {row['realised_auc']:.4f} in band: {row['realised_in_band']}"
                if "realised_auc" in row
                else ""
            )
        )
    if "nannyml" in out:
        nm = out["nannyml"]
        print(
            f"nannyml CBPE on {base_n:,} rows: {nm['cbpe_s']:.2f} s (process {nm['process_s']:.1f} s), AUC differs by {nm['minus_ours']:.2e}"
        )


if __name__ == "__main__":
    main()
