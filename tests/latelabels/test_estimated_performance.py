"""Performance estimated without labels (CBPE): the estimate against numpy by hand, against NannyML's CBPE
run in its own venv, against the realised AUC once outcomes are joined, on pandas, DuckDB and Spark; the
band's coverage over seeds; a miscalibrated score is not estimable and its control never passes."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from modelreg.demo.portfolio import generate_portfolio
from monitors.base import ColumnSpec, Feature, MetricStatus
from monitors.estimated_performance import ESTIMATES, EstimatedPerformanceMonitor, cbpe_auc

HERE = Path(__file__).parent
SPEC = ColumnSpec((Feature("age"),), target="default", score="score")
NANNYML_ENV = "MODELREG_NANNYML_PYTHON"


def _run(current, reference, **params):
    return EstimatedPerformanceMonitor().run(SPEC, current=current, reference=reference, params=params)


@pytest.fixture(scope="module")
def portfolio():
    # 200k decisions (the 1M headline runs in benchmarks/bench_estimated.py: 2 shared cores here).
    return generate_portfolio(200_000, seed=11, drifted_channel="online")


def test_estimate_before_outcomes_lies_within_its_band_of_the_realised_auc(portfolio):
    before = _run(portfolio.decisions, portfolio.reference)
    assert before.status is MetricStatus.OK, before.reason
    assert "default" not in portfolio.decisions.columns
    est, low, high = (before.value(m) for m in ("estimated_auc", "estimated_auc_low", "estimated_auc_high"))
    labelled = portfolio.labelled_current()
    realised = roc_auc_score(labelled["default"], labelled["score"])
    assert low < realised < high, (est, low, high, realised)
    assert high - low < 0.04  # a band that says something
    assert before.value("estimated_auc_drop") == pytest.approx(before.value("reference_auc") - est, abs=1e-12)
    ref = portfolio.reference
    assert before.value("reference_auc") == pytest.approx(
        roc_auc_score(ref["default"], ref["score"]), abs=1e-12
    )
    # once outcomes are joined the same monitor reports the realised AUC (exact) and says it is in the band
    after = _run(labelled, portfolio.reference)
    assert after.value("realised_auc") == pytest.approx(realised, abs=1e-12)
    assert after.value("realised_auc_in_band") == 1.0
    assert after.value("estimated_auc") == est


def test_expected_counts_and_auc_equal_numpy_by_hand():
    rng = np.random.default_rng(5)
    ref = pd.DataFrame({"score": np.round(rng.beta(1.2, 8, 4000), 3)})
    ref["default"] = (rng.random(len(ref)) < ref["score"]).astype(int)
    cur = pd.DataFrame({"score": np.round(rng.beta(1.5, 6, 600), 3)})
    r = _run(cur, ref, threshold=0.2, min_class_rows=10)
    assert r.status is MetricStatus.OK, r.reason
    p = cur["score"].to_numpy()
    hi = p >= 0.2
    assert r.value("expected_tp") == pytest.approx(p[hi].sum(), rel=1e-12)
    assert r.value("expected_fp") == pytest.approx((1 - p[hi]).sum(), rel=1e-12)
    assert r.value("expected_fn") == pytest.approx(p[~hi].sum(), rel=1e-12)
    assert r.value("expected_tn") == pytest.approx((1 - p[~hi]).sum(), rel=1e-12)
    assert r.value("estimated_accuracy") == pytest.approx(
        (p[hi].sum() + (1 - p[~hi]).sum()) / len(p), rel=1e-12
    )
    # the expected AUC as the pairwise definition: Σ_i Σ_j p_i (1 − p_j) [s_i > s_j] (+½ ties) / (Σp Σ(1−p))
    gt = (p[:, None] > p[None, :]) + 0.5 * (p[:, None] == p[None, :])
    by_hand = float((p[:, None] * (1 - p[None, :]) * gt).sum() / (p.sum() * (1 - p).sum()))
    assert r.value("estimated_auc") == pytest.approx(by_hand, abs=1e-12)
    # and the trapezoid under the expected ROC curve (CBPE's method) over distinct thresholds
    t = np.unique(p)[::-1]
    tpr = np.r_[0, [p[p >= x].sum() / p.sum() for x in t]]
    fpr = np.r_[0, [(1 - p[p >= x]).sum() / (1 - p).sum() for x in t]]
    assert r.value("estimated_auc") == pytest.approx(np.trapezoid(tpr, fpr), abs=1e-12)


def test_binning_costs_less_than_1e6_auc_at_the_default_grid(portfolio):
    exact = cbpe_auc(portfolio.decisions["score"].to_numpy())
    mon = EstimatedPerformanceMonitor()
    from monitors.estimated_performance import mann_whitney_auc, reduce_pandas

    for bins, tol in ((10_000, 1e-6), (1_000, 1e-4)):
        b, _ = reduce_pandas(
            portfolio.decisions, SPEC, mon.validate_params({"score_bins": bins}), labels=False
        )
        assert abs(mann_whitney_auc(b.p_sum, b.rows - b.p_sum) - exact) < tol


def test_a_miscalibrated_score_is_not_estimable_and_its_control_never_passes(portfolio):
    from modelreg.policy import evaluate_results, load_pack

    bad_ref = portfolio.reference.assign(score=portfolio.reference["score"] ** 0.5)
    bad_cur = portfolio.decisions.assign(score=portfolio.decisions["score"] ** 0.5)
    r = _run(bad_cur, bad_ref)
    assert r.status is MetricStatus.NOT_ESTIMABLE
    assert r.reason.startswith("not estimable: the model is not calibrated on the reference")
    assert r.value("reference_ece") > 0.1  # reported, so a reader sees why
    for name in ESTIMATES:
        m = r.metric(name)
        assert m.status is MetricStatus.NOT_ESTIMABLE and m.value is None
    pack = load_pack("cn-fin-algo-risk")
    (outcome,) = [
        o
        for o in evaluate_results(pack, "monitor", "high", {"estimated_performance": r})
        if o.control_id == "CHK-PERF-04.estimated"
    ]
    assert outcome.status == "error" and "not_estimable" in outcome.reason
    # the same scores, calibrated, are estimable: the check is about calibration, not the data
    assert _run(portfolio.decisions, portfolio.reference).status is MetricStatus.OK
    # opt-in isotonic calibration on the reference (NannyML-like) makes the square-rooted score usable again
    iso = _run(bad_cur, bad_ref, calibration="isotonic")
    assert iso.status is MetricStatus.OK, iso.reason
    realised = roc_auc_score(portfolio.labelled_current()["default"], bad_cur["score"])
    assert iso.value("estimated_auc_low") < realised < iso.value("estimated_auc_high")


@pytest.mark.parametrize("confidence, lo, hi", [(0.95, 0.85, 1.0), (0.5, 0.3, 0.7)])
def test_band_covers_the_realised_auc_at_about_its_nominal_rate(confidence, lo, hi):
    """Data drawn like the reference, 40 seeds: a 95 % band covers 85-100 % of realised AUCs and a 50 %
    band 30-70 % (so the band is not merely wide)."""
    hits = []
    for seed in range(40):
        pf = generate_portfolio(20_000, reference_rows=20_000, seed=1000 + seed, drifted_channel=None)
        r = _run(pf.labelled_current(), pf.reference, confidence=confidence, bootstrap=100)
        hits.append(r.value("realised_auc_in_band"))
    rate = float(np.mean(hits))
    assert lo <= rate <= hi, rate


def test_bad_input_is_explicit():
    ref = pd.DataFrame({"score": np.linspace(0.01, 0.6, 500)})
    ref["default"] = (np.arange(500) % 3 == 0).astype(int)
    out_of_range = _run(pd.DataFrame({"score": [0.2, 1.7] * 100}), ref)
    assert (
        out_of_range.status is MetricStatus.INVALID_INPUT and "probabilities in [0, 1]" in out_of_range.reason
    )
    no_labels = _run(pd.DataFrame({"score": [0.2] * 200}), ref.drop(columns=["default"]))
    assert no_labels.status is MetricStatus.INVALID_INPUT and "labels" in no_labels.reason
    nothing = EstimatedPerformanceMonitor().run(SPEC, current=pd.DataFrame({"score": [0.1] * 200}))
    assert nothing.status is MetricStatus.INVALID_INPUT and "reference" in nothing.reason
    few = _run(pd.DataFrame({"score": [0.2] * 10}), ref)
    assert few.status is MetricStatus.INSUFFICIENT_DATA and all(
        m.value is None for m in few.metrics if m.name in ESTIMATES
    )


def test_engines_give_the_pandas_numbers(portfolio, tmp_path):
    cur_path, ref_path = tmp_path / "cur.parquet", tmp_path / "ref.parquet"
    labelled = portfolio.labelled_current()
    labelled.to_parquet(cur_path)
    portfolio.reference.to_parquet(ref_path)
    base = _run(labelled, portfolio.reference)
    mon = EstimatedPerformanceMonitor()
    duck = mon.run(SPEC, current=cur_path, reference=ref_path, engine="duckdb")
    assert duck.status is MetricStatus.OK, duck.reason
    for name in ("expected_tp", "expected_fp", "expected_tn", "expected_fn", "estimated_accuracy"):
        assert duck.value(name) == pytest.approx(base.value(name), rel=1e-9), name
    for name in ("estimated_auc", "estimated_auc_low", "estimated_auc_high"):
        assert duck.value(name) == pytest.approx(base.value(name), abs=1e-6), name  # binned vs exact sort
    assert duck.value("realised_auc") == pytest.approx(base.value("realised_auc"), abs=1e-12)
    assert duck.value("reference_auc") == pytest.approx(base.value("reference_auc"), abs=1e-12)
    assert duck.value("reference_ece") == pytest.approx(base.value("reference_ece"), abs=1e-12)

    from monitors.engines.spark import local_session

    spark = local_session()
    small = labelled.iloc[:20_000]
    sdf = spark.createDataFrame(small[["score", "default"]])
    sref = spark.createDataFrame(portfolio.reference[["score", "default"]])
    s_res = mon.run(SPEC, current=sdf, reference=sref, engine="spark", spark=spark)
    p_res = _run(small, portfolio.reference)
    assert s_res.status is MetricStatus.OK, s_res.reason
    for name in ("expected_tp", "expected_fn", "estimated_accuracy", "realised_auc"):
        assert s_res.value(name) == pytest.approx(p_res.value(name), rel=1e-9), name
    assert s_res.value("estimated_auc") == pytest.approx(p_res.value("estimated_auc"), abs=1e-6)


def nannyml_python() -> str | None:
    path = os.environ.get(NANNYML_ENV)
    if path and Path(path).exists():
        return path
    if os.environ.get("CI") == "true":
        pytest.fail(
            f"{NANNYML_ENV} must name the python of the nannyml venv that tests/run.sh creates. Got {path!r}."
        )
    pytest.skip(f"{NANNYML_ENV} is not set (tests/run.sh creates the nannyml venv)")
    return None


def test_estimate_matches_nannyml_cbpe_per_chunk(tmp_path):
    """NannyML 0.13.1's CBPE (roc_auc, accuracy; NoopCalibrator) on the same reference and analysis data,
    chunk by chunk. Tolerance 1e-6 AUC on the exact pandas path: the same curve (NannyML walks it row by row,
    and rows tied on a score have the same p, so the tie group is a straight segment either way), with
    NannyML's rounding of the cumulative counts to 1e-5 giving relative errors near 1e-8. DuckDB's binned
    estimate: 1e-5 (the binning error measured above, with margin)."""
    py = nannyml_python()
    pf = generate_portfolio(40_000, seed=21, drifted_channel="online")
    ref = pf.reference[["score", "default"]].rename(columns={"default": "y"})
    ana = pf.decisions[["score"]]
    ref.to_parquet(tmp_path / "ref.parquet")
    ana.to_parquet(tmp_path / "ana.parquet")
    chunk = 10_000
    proc = subprocess.run(
        [
            py,
            str(HERE / "_nannyml_oracle.py"),
            str(tmp_path / "ref.parquet"),
            str(tmp_path / "ana.parquet"),
            str(chunk),
            "0.1",
            str(tmp_path / "out.json"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads((tmp_path / "out.json").read_text())
    assert out["version"] == "0.13.1" and len(out["chunks"]) == 4
    labelled = pf.labelled_current()
    for c in out["chunks"]:
        part = pf.decisions.iloc[c["start"] : c["end"] + 1]
        mine = _run(part, pf.reference, threshold=0.1)
        assert mine.status is MetricStatus.OK, mine.reason
        assert mine.value("estimated_auc") == pytest.approx(c["roc_auc"], abs=1e-6)
        assert mine.value("estimated_accuracy") == pytest.approx(c["accuracy"], abs=1e-9)
        part.to_parquet(tmp_path / "part.parquet")
        duck = EstimatedPerformanceMonitor().run(
            SPEC,
            current=tmp_path / "part.parquet",
            reference=pf.reference,
            engine="duckdb",
            params={"threshold": 0.1},
        )
        assert duck.value("estimated_auc") == pytest.approx(c["roc_auc"], abs=1e-5)
        # and both against the truth once outcomes are joined: inside our band
        truth = labelled.iloc[c["start"] : c["end"] + 1]
        realised = roc_auc_score(truth["default"], truth["score"])
        assert mine.value("estimated_auc_low") <= realised <= mine.value("estimated_auc_high")
