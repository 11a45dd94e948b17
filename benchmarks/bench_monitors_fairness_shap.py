"""Fairness monitor vs a bare numpy bincount and vs fairlearn; SHAP monitor vs LightGBM's pred_contrib.

    .venv/bin/python benchmarks/bench_monitors_fairness_shap.py            # 1M and 10M rows, SHAP on 50k rows
    .venv/bin/python benchmarks/bench_monitors_fairness_shap.py --smoke    # small sizes, seconds

Goals: the fairness monitor's full ``run()`` within 2x of ``pd.factorize`` + one ``np.bincount`` over
(group, label, prediction) with string groups (category groups are shown too); >= 100x faster than
fairlearn's MetricFrame (at the smallest size only, timed more than once); the explainability monitor
within 1.1x of LightGBM's own ``predict(..., pred_contrib=True)``. Every ratio is between medians of
interleaved runs in the same process (``_timing.interleaved``), and values are checked to be equal before
any time is printed.
"""

from __future__ import annotations

import argparse
import os
import warnings
from typing import Any

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

import numpy as np
import pandas as pd

try:
    from benchmarks._timing import interleaved, once
except ModuleNotFoundError:  # run as a file (python benchmarks/<script>.py): its own folder is on sys.path
    from _timing import interleaved, once

from monitors.base import ColumnSpec, Feature, fingerprint
from monitors.engines.pandas import reduce_fairness
from monitors.explainability import ExplainabilityMonitor
from monitors.fairness import FairnessMonitor, compute_fairness


def fairness_data(n: int, groups: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = rng.integers(0, groups, n)
    y = (rng.random(n) < 0.2 + 0.02 * g).astype(np.int8)
    score = np.clip(0.35 * y + rng.random(n) * 0.65 + 0.005 * g, 0, 1)
    labels = np.array([f"region_{i:02d}" for i in range(groups)])
    return pd.DataFrame(
        {
            "region": pd.Categorical.from_codes(g, categories=labels),
            "bad": y,
            "pred": (score >= 0.5).astype(np.int8),
            "score": score,
        }
    )


def factorize_bincount_baseline(df: pd.DataFrame) -> tuple[list[str], dict[str, np.ndarray]]:
    """The floor: encode the groups (``pd.factorize``, sorted like the monitor's labels), one bincount over
    (group, label, prediction), then the four rates."""
    codes, uniques = pd.factorize(df["region"], sort=True)
    y = df["bad"].to_numpy()
    p = df["pred"].to_numpy()
    k = len(uniques)
    t = np.bincount(codes.astype(np.int64) * 4 + y * 2 + p, minlength=k * 4).reshape(k, 4)
    tn, fp, fn, tp = t.T.astype(float)
    rates = {
        "selection_rate": (fp + tp) / t.sum(1),
        "tpr": tp / (tp + fn),
        "fpr": fp / (fp + tn),
        "precision": tp / (tp + fp),
    }
    return [str(u) for u in uniques], rates


def _check_equal(res: Any, labels: list[str], expected: dict[str, np.ndarray], what: str) -> None:
    for name, values in expected.items():
        ours = np.array([res.value(name, feature="region", group=lab) for lab in labels])
        np.testing.assert_allclose(ours, values, rtol=0, atol=1e-12, err_msg=f"{name} vs {what}")


def bench_fairness(
    sizes: list[int], groups: int, fairlearn_at: int, repeat: int, fairlearn_repeat: int
) -> None:
    spec = ColumnSpec((Feature("x"),), target="bad", prediction="pred", sensitive=("region",))
    spec_auc = ColumnSpec((Feature("x"),), target="bad", score="score", sensitive=("region",))
    params = {"bootstrap": 200, "threshold": 0.5}
    mon = FairnessMonitor()
    p = mon.validate_params(params)
    print(
        f"\n== fairness: {groups} groups, bootstrap={params['bootstrap']} "
        f"(median of {repeat} interleaved runs) =="
    )
    for n in sizes:
        categorical = fairness_data(n, groups)
        strings = categorical.assign(region=categorical["region"].astype(str).astype(object))
        for kind, df in (("string", strings), ("category", categorical)):
            mon.run(spec, current=df.iloc[:1000], params=params)  # warm caches and imports
            (t_base, (labels, base)), (t_ours, res), (t_core, _), (t_fp, _) = interleaved(
                [
                    lambda df=df: factorize_bincount_baseline(df),
                    lambda df=df: mon.run(spec, current=df, params=params),
                    # the monitor minus its audit trail (input fingerprint, result assembly)
                    lambda df=df: compute_fairness(reduce_fairness(df, spec, p), p),
                    lambda df=df: fingerprint(df, "current"),
                ],
                repeat,
            )
            _check_equal(res, labels, base, "the bincount baseline")
            print(f"n={n:>11,}  {kind} groups: factorize + bincount baseline {t_base * 1e3:9.1f} ms")
            goal = " (goal <= 2x)" if kind == "string" else ""
            reuse = "; run() hashes the group encoding it made" if kind == "string" else ""
            print(
                f"{'':15}{kind} groups: full run() {t_ours * 1e3:9.1f} ms  ratio {t_ours / t_base:6.2f}x{goal}"
            )
            print(
                f"{'':15}{kind} groups: reduction + metrics {t_core * 1e3:9.1f} ms  ratio {t_core / t_base:6.2f}x  "
                f"(a fingerprint alone: {t_fp * 1e3:.1f} ms{reuse})"
            )
        t_auc, _ = once(lambda df=categorical: mon.run(spec_auc, current=df, params=params))
        print(
            f"{'':15}full run() with scores + per-group AUC {t_auc * 1e3:9.1f} ms (AUC needs a sort: not in the goal)"
        )
        if n == fairlearn_at:
            from fairlearn.metrics import MetricFrame, false_positive_rate, selection_rate, true_positive_rate
            from sklearn.metrics import precision_score

            def run_fairlearn(df: pd.DataFrame = strings) -> pd.DataFrame:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    return MetricFrame(
                        metrics={
                            "selection_rate": selection_rate,
                            "tpr": true_positive_rate,
                            "fpr": false_positive_rate,
                            "precision": precision_score,
                        },
                        y_true=df["bad"].to_numpy(),
                        y_pred=df["pred"].to_numpy(),
                        sensitive_features=df["region"],
                    ).by_group

            (t_fl, fl), (t_ours, res) = interleaved(
                [run_fairlearn, lambda df=strings: mon.run(spec, current=df, params=params)], fairlearn_repeat
            )
            labels, base = factorize_bincount_baseline(strings)
            _check_equal(res, labels, {k: fl.loc[labels, k].to_numpy(dtype=float) for k in base}, "fairlearn")
            print(
                f"{'':15}fairlearn MetricFrame {t_fl * 1e3:9.1f} ms (median of {fairlearn_repeat}): "
                f"full run() is {t_fl / t_ours:6.1f}x faster (goal >= 100x); values equal"
            )


def bench_shap(n: int, features: int, trees: int, leaves: int, repeat: int, threads: int) -> None:
    import lightgbm as lgb

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(n, features)), columns=[f"f{i:02d}" for i in range(features)])
    logit = X.to_numpy() @ rng.normal(size=features) + 0.5 * X["f00"] * X["f01"]
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    model = lgb.LGBMClassifier(
        n_estimators=trees, num_leaves=leaves, verbose=-1, random_state=0, n_jobs=threads
    )
    model = model.fit(X, y)
    booster = model.booster_
    spec = ColumnSpec(tuple(Feature(c) for c in X.columns))
    mon = ExplainabilityMonitor()
    params = {"sample_size": n}
    mon.run(spec, current=X.iloc[:100], model=model, params=params)  # import shap once, outside the timing
    print(
        f"\n== SHAP: {n:,} rows x {features} features, LightGBM {trees} trees x {leaves} leaves (median of {repeat}) =="
    )
    (t_lgb, contrib), (t_ours, res), (t_raw, _) = interleaved(
        [
            lambda: booster.predict(X, pred_contrib=True),
            lambda: mon.run(spec, current=X, model=model, params=params),
            lambda: booster.predict(X, raw_score=True),
        ],
        repeat,
    )
    for j, c in enumerate(X.columns):
        assert abs(res.value("mean_abs_shap", feature=c) - np.abs(contrib[:, j]).mean()) < 1e-9
    print(
        f"LightGBM pred_contrib {t_lgb * 1e3:8.1f} ms | monitor {t_ours * 1e3:8.1f} ms -> ratio {t_ours / t_lgb:5.2f}x "
        f"(the additivity check's raw-score predict alone is {t_raw * 1e3:.1f} ms); importances equal"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="small sizes (CI / quick check)")
    ap.add_argument("--sizes", type=int, nargs="*", help="fairness row counts (default 1M 10M; smoke 50k)")
    ap.add_argument("--groups", type=int, default=10)
    ap.add_argument("--shap-rows", type=int, help="rows explained (default 50k; smoke 5k)")
    ap.add_argument("--repeat", type=int, help="interleaved runs per contender, medians (default 5; smoke 2)")
    ap.add_argument("--fairlearn-repeat", type=int, help="fairlearn runs (default 3; smoke 2)")
    ap.add_argument("--part", choices=("all", "fairness", "shap"), default="all")
    ap.add_argument(
        "--threads", type=int, default=1, help="LightGBM threads (1: steadier timings on a shared box)"
    )
    args = ap.parse_args()
    sizes = args.sizes or ([50_000] if args.smoke else [1_000_000, 10_000_000])
    repeat = args.repeat if args.repeat is not None else (2 if args.smoke else 5)
    if args.part in ("all", "fairness"):
        bench_fairness(
            sizes,
            args.groups,
            fairlearn_at=min(sizes),
            repeat=repeat,
            fairlearn_repeat=args.fairlearn_repeat or (2 if args.smoke else 3),
        )
    if args.part in ("all", "shap"):
        bench_shap(
            args.shap_rows or (5_000 if args.smoke else 50_000),
            features=20,
            trees=100,
            leaves=15,
            repeat=repeat,
            threads=args.threads,
        )


if __name__ == "__main__":
    main()
