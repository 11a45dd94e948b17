"""Benchmark: the drift and performance monitors against minimal baselines, in one run on one machine.

    .venv/bin/python -m benchmarks.bench_monitors_drift            # 1,000,000 vs 1,000,000 rows × 20 features
    .venv/bin/python -m benchmarks.bench_monitors_drift --rows 300000
    .venv/bin/python -m benchmarks.bench_monitors_drift --smoke    # 20,000 rows: a quick check for CI

What is compared (every ratio is between medians of ``--repeat`` runs in the same process, the contenders'
runs interleaved so that a change in machine load hits all alike; see ``_timing.py``):

1. ``DriftMonitor.run`` with default parameters (all metrics: PSI, KS, Wasserstein, missingness,
   fingerprints of both inputs; KS/Wasserstein on seeded samples of 50,000 values per side; no artifacts
   folder, so no Evidently HTML) against the *minimal numpy + scipy baseline that computes the same
   statistics*: per feature one ``np.quantile`` for the reference edges, ``np.searchsorted`` +
   ``np.bincount`` for both sides (PSI), and ``scipy.stats.ks_2samp`` on the same seeded samples the monitor
   draws (KS statistic and p-value). PSI and KS values must be equal. Goal: within 1.5×. The exact mode
   (every value in KS/Wasserstein) is timed against the same baseline with ``ks_2samp`` on every value.
2. The same monitor with exact KS/Wasserstein (``sample_size`` ≥ rows, no sampling) against Evidently 0.7
   computing PSI, KS p-value and normed Wasserstein per feature (``ValueDrift``) on ``--evidently-rows`` rows
   (default 200,000; Evidently is too slow for 1M × 20 in a benchmark). KS p-values and Wasserstein must be
   equal; Evidently's PSI is a different definition (Sturges bins over reference + current) and is shown, not
   compared. Goal: ≥ 10× faster. Evidently runs ``--evidently-repeat`` times, interleaved with ours.
3. ``PerformanceMonitor.run`` (AUC, Gini, KS, confusion, Brier, calibration) against
   ``sklearn.metrics.roc_auc_score`` alone; the AUC must be equal.

The exit status is 1 when a value check fails; timings are reported, never asserted (machines differ).
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from typing import Any

import numpy as np
import pandas as pd

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

try:
    from benchmarks._timing import interleaved
except ModuleNotFoundError:  # run as a file (python benchmarks/<script>.py): its own folder is on sys.path
    from _timing import interleaved

from monitors.base import ColumnSpec, Feature
from monitors.drift import DriftMonitor, psi_from_counts
from monitors.engines.pandas import sample_rng
from monitors.performance import PerformanceMonitor


def make_frames(rows: int, features: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reference and current frames: normal, lognormal and integer-valued columns, a little NaN, some shifted."""
    rng = np.random.default_rng(seed)
    ref, cur = {}, {}
    for i in range(features):
        shift = 0.1 * (i % 4)  # a quarter of the features do not move
        if i % 3 == 0:
            r, c = rng.normal(0, 1, rows), rng.normal(shift, 1, rows)
        elif i % 3 == 1:
            r, c = rng.lognormal(0, 0.7, rows), rng.lognormal(shift, 0.7, rows)
        else:
            r, c = rng.poisson(5, rows).astype(float), rng.poisson(5 + 5 * shift, rows).astype(float)
        if i % 5 == 0:
            r[rng.integers(0, rows, rows // 100)] = np.nan
            c[rng.integers(0, rows, rows // 50)] = np.nan
        ref[f"f{i:02d}"], cur[f"f{i:02d}"] = r, c
    return pd.DataFrame(ref), pd.DataFrame(cur)


def numpy_baseline(
    ref: pd.DataFrame, cur: pd.DataFrame, n_bins: int = 10, sample_size: int = 50_000, seed: int = 0
) -> dict[str, dict[str, Any]]:
    """The least work that gives the monitor's PSI and KS: quantile edges, searchsorted + bincount on each
    side, then ``scipy.stats.ks_2samp`` on the same seeded samples of ``sample_size`` finite values per side
    the monitor draws (``sample_rng``; every value when a side has no more)."""
    from scipy.stats import ks_2samp

    probs = np.arange(1, n_bins) / n_bins
    out = {}
    for col in ref.columns:
        r, c = ref[col].to_numpy(), cur[col].to_numpy()
        rf, cf = r[np.isfinite(r)], c[np.isfinite(c)]
        edges = np.unique(np.quantile(rf, probs))
        k = edges.size + 1
        rc = np.bincount(np.searchsorted(edges, rf), minlength=k)
        cc = np.bincount(np.searchsorted(edges, cf), minlength=k)
        samples = []
        for role, values in ((0, rf), (1, cf)):
            if values.size > sample_size:
                idx = sample_rng(seed, col, role).choice(
                    values.size, size=sample_size, replace=False, shuffle=False
                )
                values = values[idx]
            samples.append(values)
        ks = ks_2samp(samples[0], samples[1], method="asymp")
        out[col] = {
            "counts": (np.r_[rc, r.size - rf.size, 0, 0], np.r_[cc, c.size - cf.size, 0, 0]),
            "ks_statistic": float(ks.statistic),
            "ks_pvalue": float(ks.pvalue),
        }
    return out


def check_baseline(res: Any, base: dict[str, dict[str, Any]], failures: list[str], what: str) -> None:
    for col, b in base.items():
        expected = psi_from_counts(*b["counts"], 1e-4)
        if not close(res.value("psi", feature=col), expected, rel=1e-12):
            failures.append(f"{what} psi {col}: ours {res.value('psi', feature=col)!r} != numpy {expected!r}")
        for name in ("ks_statistic", "ks_pvalue"):
            ours = res.value(name, feature=col)
            if not close(ours, b[name], rel=1e-9, abs_=1e-300):
                failures.append(f"{what} {name} {col}: ours {ours!r} != scipy {b[name]!r}")


def evidently_drift(ref: pd.DataFrame, cur: pd.DataFrame) -> dict[tuple[str, str], float]:
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift

    definition = DataDefinition(numerical_columns=list(ref.columns))
    metrics = [ValueDrift(column=c, method=m) for c in ref.columns for m in ("psi", "ks", "wasserstein")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        snap = Report(metrics).run(
            Dataset.from_pandas(cur, data_definition=definition),
            Dataset.from_pandas(ref, data_definition=definition),
        )
    return {(m["config"]["column"], m["config"]["method"]): float(m["value"]) for m in snap.dict()["metrics"]}


def close(a: float, b: float, rel: float = 1e-9, abs_: float = 1e-12) -> bool:
    return abs(a - b) <= max(rel * max(abs(a), abs(b)), abs_)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000, help="rows per side (default 1,000,000)")
    ap.add_argument("--features", type=int, default=20)
    ap.add_argument(
        "--evidently-rows", type=int, default=200_000, help="rows per side for the Evidently comparison"
    )
    ap.add_argument("--repeat", type=int, default=5, help="interleaved runs per contender (medians)")
    ap.add_argument("--evidently-repeat", type=int, default=3, help="Evidently runs (default 3; smoke 2)")
    ap.add_argument(
        "--smoke",
        action="store_true",
        help="20,000 rows x 8 features, 2 runs each (Evidently: 2 on 5,000 rows): a quick end-to-end check",
    )
    ap.add_argument("--skip-evidently", action="store_true")
    args = ap.parse_args(argv)
    if args.smoke:
        # Evidently's cost is mostly per metric: fewer features keep the smoke run short.
        args.rows, args.features, args.evidently_rows, args.repeat, args.evidently_repeat = (
            20_000,
            8,
            5_000,
            2,
            2,
        )
    failures: list[str] = []
    n, k = args.rows, args.features
    print(f"# drift: {n:,} vs {n:,} rows × {k} features (median of {args.repeat} interleaved runs)")
    ref, cur = make_frames(n, k)
    spec = ColumnSpec(tuple(Feature(c) for c in ref.columns))
    mon = DriftMonitor()
    params = {"evidently_report": False}
    mon.run(spec, reference=ref.iloc[:1000], current=cur.iloc[:1000], params=params)  # warm imports

    from monitors.base import fingerprint

    sample_size = mon.validate_params({})["sample_size"]
    exact = {**params, "sample_size": n}
    contenders = [
        lambda: numpy_baseline(ref, cur, sample_size=sample_size),
        lambda: mon.run(spec, reference=ref, current=cur, params=params),
        lambda: (fingerprint(ref, "reference"), fingerprint(cur, "current")),
    ]
    if n > sample_size:  # at most sample_size rows the default run is the exact one already
        contenders += [
            lambda: numpy_baseline(ref, cur, sample_size=n),
            lambda: mon.run(spec, reference=ref, current=cur, params=exact),
        ]
    timed = interleaved(contenders, args.repeat)
    (t_base, base), (t_ours, res), (t_fp, _) = timed[:3]
    (t_base_x, base_x), (t_exact, res_x) = timed[3:] if n > sample_size else timed[:2]
    check_baseline(res, base, failures, "default")
    check_baseline(res_x, base_x, failures, "exact")
    sampled = not res.metric("ks_statistic", feature="f00").counts["exact"]
    print(f"numpy + scipy baseline      {t_base:8.3f} s   (PSI counts; ks_2samp on the same samples)")
    print(
        f"DriftMonitor.run            {t_ours:8.3f} s   ratio {t_ours / t_base:5.2f}x  (goal <= 1.5x at 1M rows)"
    )
    print(f"  of which fingerprints     {t_fp:8.3f} s   (sha256 of both inputs, part of the contract)")
    print(
        f"  KS/Wasserstein on {'seeded samples of ' + str(sample_size) if sampled else 'all'} "
        "values per side; PSI and KS values equal to the baseline's: "
        f"{'yes' if not failures else 'NO'}"
    )
    print(f"numpy + scipy, every value  {t_base_x:8.3f} s   (ks_2samp on all finite values)")
    print(
        f"DriftMonitor.run exact KS   {t_exact:8.3f} s   ratio {t_exact / t_base_x:5.2f}x  (every value in KS/Wasserstein)"
    )

    if not args.skip_evidently:
        m = min(args.evidently_rows, n)
        ref_e, cur_e = ref.iloc[:m].reset_index(drop=True), cur.iloc[:m].reset_index(drop=True)
        print(
            f"\n# drift vs Evidently {_evidently_version()}: {m:,} vs {m:,} rows × {k} features (PSI, KS, Wasserstein)"
        )
        evidently_drift(ref_e.iloc[:500], cur_e.iloc[:500])  # warm imports
        contenders = [
            lambda: evidently_drift(ref_e, cur_e),
            lambda: mon.run(spec, reference=ref_e, current=cur_e, params={**params, "sample_size": m}),
        ]
        if m > sample_size:
            contenders.append(lambda: mon.run(spec, reference=ref_e, current=cur_e, params=params))
        timed = interleaved(contenders, args.evidently_repeat)
        (t_ev, ev), (t_us, us) = timed[:2]
        t_def = timed[2][0] if m > sample_size else t_us
        print(f"Evidently ValueDrift × {3 * k:<4d} {t_ev:8.3f} s   (median of {args.evidently_repeat})")
        print(
            f"DriftMonitor.run (exact)    {t_us:8.3f} s   Evidently / ours {t_ev / t_us:6.1f}x  (goal >= 10x at 200k rows)"
        )
        if m > sample_size:
            print(
                f"DriftMonitor.run (default)  {t_def:8.3f} s   Evidently / ours {t_ev / t_def:6.1f}x  "
                "(KS/Wasserstein on seeded samples: estimates, not compared)"
            )
        equal = True
        for col in ref.columns:
            for ours_name, method in (("ks_pvalue", "ks"), ("wasserstein_norm", "wasserstein")):
                a, b = us.value(ours_name, feature=col), ev[(col, method)]
                if not close(a, b, rel=1e-9, abs_=1e-300):
                    equal = False
                    failures.append(f"{ours_name} {col}: ours {a!r} != evidently {b!r}")
        print(f"  KS p-values and Wasserstein equal to Evidently's: {'yes' if equal else 'NO'}")
        print("  PSI differs by definition (Evidently: Sturges bins over reference+current), e.g.:")
        for col in list(ref.columns)[:4]:
            print(f"    {col}: ours {us.value('psi', feature=col):.5f}  evidently {ev[(col, 'psi')]:.5f}")

    print(f"\n# performance: {n:,} rows")
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, n)
    s = 1 / (1 + np.exp(-rng.normal(y - 0.5, 1.5)))
    frame = pd.DataFrame({"x": 0.0, "y": y, "s": s})
    pspec = ColumnSpec((Feature("x"),), target="y", score="s")
    from sklearn.metrics import roc_auc_score

    perf = PerformanceMonitor()
    perf.run(pspec, current=frame.iloc[:1000])
    (t_sk, auc), (t_pm, pres) = interleaved(
        [lambda: roc_auc_score(y, s), lambda: perf.run(pspec, current=frame)], args.repeat
    )
    print(f"sklearn roc_auc_score       {t_sk:8.3f} s")
    print(
        f"PerformanceMonitor.run      {t_pm:8.3f} s   ratio {t_pm / t_sk:5.2f}x  (all metrics + calibration + fingerprint)"
    )
    if not close(pres.value("auc"), auc, rel=1e-12):
        failures.append(f"auc: ours {pres.value('auc')!r} != sklearn {auc!r}")
    print(f"  AUC equal to sklearn's: {'yes' if not any(f.startswith('auc') for f in failures) else 'NO'}")

    if failures:
        print("\nVALUE CHECKS FAILED:\n  " + "\n  ".join(failures[:20]))
        return 1
    print("\nall value checks passed")
    return 0


def _evidently_version() -> str:
    from importlib import metadata

    return metadata.version("evidently")


if __name__ == "__main__":
    sys.exit(main())
