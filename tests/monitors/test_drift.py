"""Drift monitor: numbers against scipy / hand-worked examples, German credit end to end, bad input."""

from __future__ import annotations

import hashlib
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import special, stats
from scipy.spatial.distance import jensenshannon

from monitors.base import ColumnSpec, Feature, MetricStatus, MonitorResult, ParameterError, ReferenceProfile
from monitors.drift import DriftMonitor, psi_from_counts
from monitors.engines.pandas import bin_counts, quantile_edges, reduce_categorical, reduce_numeric

from .conftest import GERMAN_FEATURES, SYNTHETIC_SPEC, synthetic

NO_HTML = {"evidently_report": False}


def _run(spec, ref, cur, **params) -> MonitorResult:
    return DriftMonitor().run(spec, reference=ref, current=cur, params={**NO_HTML, **params})


def _finite(values) -> np.ndarray:
    a = np.asarray(values, dtype=float)
    return a[np.isfinite(a)]


# -- PSI: hand-worked examples ---------------------------------------------------------------------------


def test_psi_hand_worked_table():
    # reference: 40 × 1, 30 × 2, 20 × 3, 10 × 4; with 4 bins the reference quartiles are 1, 2, 3, so the
    # bins are {1}, {2}, {3}, {4} with shares p = .4 .3 .2 .1. Current: 25 of each value, q = .25 each.
    # PSI = (.25-.4)ln(.25/.4) + (.25-.3)ln(.25/.3) + (.25-.2)ln(.25/.2) + (.25-.1)ln(.25/.1)
    #     = 0.070501 + 0.009116 + 0.011157 + 0.137444 = 0.228217
    ref = pd.DataFrame({"v": [1] * 40 + [2] * 30 + [3] * 20 + [4] * 10})
    cur = pd.DataFrame({"v": [1, 2, 3, 4] * 25})
    res = _run(ColumnSpec((Feature("v"),)), ref, cur, n_bins=4)
    assert res.value("psi", feature="v") == pytest.approx(0.228217, abs=1e-6)
    assert res.value("drifted", feature="v") == 1.0  # 0.228 >= 0.2
    assert psi_from_counts(np.array([40, 30, 20, 10]), np.array([25, 25, 25, 25]), 1e-4) == pytest.approx(
        0.2282174, abs=1e-7
    )


def test_psi_epsilon_smoothing_of_an_empty_bin():
    # reference 50 × 1, 50 × 2 → median edge 1.5, p = (.5, .5); current all 1 → q = (1, 0) → floored to 1e-4.
    # PSI = (1-.5)ln(1/.5) + (1e-4-.5)ln(1e-4/.5) = 0.346574 + 4.257745 = 4.604318
    ref = pd.DataFrame({"v": [1.0] * 50 + [2.0] * 50})
    cur = pd.DataFrame({"v": [1.0] * 100})
    res = _run(ColumnSpec((Feature("v"),)), ref, cur, n_bins=2)
    assert res.value("psi", feature="v") == pytest.approx(4.604318, abs=1e-6)


def test_bins_are_reference_quantiles_with_nan_and_inf_apart():
    values = np.array([np.nan, np.inf, -np.inf, *range(1, 101)], dtype=float)
    red = reduce_numeric(values, n_bins=4)
    np.testing.assert_array_equal(red.edges, np.quantile(np.arange(1, 101), [0.25, 0.5, 0.75]))
    assert (red.nan, red.posinf, red.neginf, red.finite) == (1, 1, 1, 100)
    assert red.counts.tolist() == [25, 25, 25, 25]
    assert red.full_counts().sum() == values.size
    # comparison counting and searchsorted + bincount agree, edges on data points included
    x = np.random.default_rng(3).integers(0, 20, 10_000).astype(float)
    edges = quantile_edges(x, 10)
    ref = np.bincount(np.searchsorted(edges, x, side="left"), minlength=edges.size + 1)
    np.testing.assert_array_equal(bin_counts(x, edges), ref)
    many = quantile_edges(np.random.default_rng(4).normal(size=5000), 40)
    np.testing.assert_array_equal(
        bin_counts(x, many), np.bincount(np.searchsorted(many, x), minlength=many.size + 1)
    )
    # duplicate quantiles collapse: a column that is 90 % zeros does not get empty bins
    zeros = np.r_[np.zeros(900), np.arange(1, 101)]
    assert quantile_edges(zeros, 10).tolist() == [0.0, pytest.approx(np.quantile(zeros, 0.9))]


# -- numeric tests against scipy -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n_ref", "n_cur"), [(800, 600), (30_000, 20_000)]
)  # scipy exact and asymptotic paths
def test_ks_and_wasserstein_equal_scipy_on_finite_values(n_ref, n_cur):
    rng = np.random.default_rng(n_ref)
    ref = rng.normal(0, 1, n_ref)
    cur = rng.normal(0.1, 1.2, n_cur)
    ref[:7] = np.nan
    cur[:5] = np.inf
    cur[5:9] = -np.inf
    cur[9:20] = np.round(cur[9:20], 1)  # some ties
    res = _run(ColumnSpec((Feature("v"),)), pd.DataFrame({"v": ref}), pd.DataFrame({"v": cur}))
    expected = stats.ks_2samp(_finite(ref), _finite(cur))
    assert res.value("ks_statistic", feature="v") == pytest.approx(expected.statistic, rel=1e-12)
    assert res.value("ks_pvalue", feature="v") == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)
    w = stats.wasserstein_distance(_finite(ref), _finite(cur)) / np.std(_finite(ref))
    assert res.value("wasserstein_norm", feature="v") == pytest.approx(w, rel=1e-10)
    assert res.metric("ks_statistic", feature="v").counts["exact"] is True
    assert res.metric("ks_pvalue", feature="v").counts["method"] == ("exact" if n_ref <= 10_000 else "kstwo")
    assert res.value("missing_share_reference", feature="v") == pytest.approx(7 / n_ref)
    assert res.value("missing_share_current", feature="v") == pytest.approx(9 / n_cur)
    assert res.value("missing_share_delta", feature="v") == pytest.approx(9 / n_cur - 7 / n_ref)


def test_above_sample_size_ks_uses_a_seeded_sample_and_says_so():
    rng = np.random.default_rng(9)
    ref, cur = pd.DataFrame({"v": rng.normal(size=20_000)}), pd.DataFrame({"v": rng.normal(0.3, 1, 20_000)})
    spec = ColumnSpec((Feature("v"),))
    a = _run(spec, ref, cur, sample_size=2_000)
    b = _run(spec, ref, cur, sample_size=2_000)
    assert a.to_json() == b.to_json()
    assert a.metric("ks_statistic", feature="v").counts == {
        "reference_n": 2000,
        "current_n": 2000,
        "exact": False,
    }
    assert any("seeded samples of 2000" in n for n in a.notes)
    # on samples the p-value is the limiting Kolmogorov one: sqrt(n·m/(n+m)) · D with n = m = 2000
    d = a.value("ks_statistic", feature="v")
    assert a.metric("ks_pvalue", feature="v").counts["method"] == "kolmogorov"
    assert a.value("ks_pvalue", feature="v") == pytest.approx(
        special.kolmogorov(np.sqrt(1000) * d), rel=1e-12
    )
    full = stats.ks_2samp(ref["v"], cur["v"]).statistic
    assert a.value("ks_statistic", feature="v") == pytest.approx(full, abs=0.05)  # a sample estimate of D
    # PSI never samples: it is the same with and without the cap
    assert a.value("psi", feature="v") == _run(spec, ref, cur).value("psi", feature="v")
    other_seed = _run(spec, ref, cur, sample_size=2_000, seed=1)
    assert other_seed.value("ks_statistic", feature="v") != a.value("ks_statistic", feature="v")


# -- categorical tests against scipy ---------------------------------------------------------------------


def test_chi2_and_js_equal_scipy_on_the_same_counts():
    ref = pd.DataFrame({"c": ["a"] * 500 + ["b"] * 300 + ["c"] * 200})
    cur = pd.DataFrame({"c": ["a"] * 350 + ["b"] * 350 + ["c"] * 250 + [None] * 50})
    res = _run(ColumnSpec((Feature("c", "categorical"),)), ref, cur)
    obs, ref_counts = np.array([350, 350, 250]), np.array([500, 300, 200])
    expected_p = stats.chisquare(obs, f_exp=ref_counts / ref_counts.sum() * obs.sum()).pvalue
    assert res.value("chi2_pvalue", feature="c") == pytest.approx(expected_p, rel=1e-12)
    assert res.value("js_distance", feature="c") == pytest.approx(
        jensenshannon(ref_counts, obs, base=2), rel=1e-12
    )
    assert res.value("missing_share_current", feature="c") == pytest.approx(0.05)
    assert res.value("new_category_share", feature="c") == 0.0
    # PSI bins: a, b, c, __other__, __new__, __missing__ (shares of all rows, floored at 1e-4)
    p = np.maximum(np.array([500, 300, 200, 0, 0, 0]) / 1000, 1e-4)
    q = np.maximum(np.array([350, 350, 250, 0, 0, 50]) / 1000, 1e-4)
    assert res.value("psi", feature="c") == pytest.approx(np.sum((q - p) * np.log(q / p)), rel=1e-12)


def test_unseen_categories_give_new_category_share_and_zero_chi2_pvalue():
    ref = pd.DataFrame({"c": ["a", "b"] * 200})
    cur = pd.DataFrame({"c": ["a", "b"] * 150 + ["zz"] * 60 + ["yy"] * 40})
    res = _run(ColumnSpec((Feature("c", "categorical"),)), ref, cur)
    assert res.value("new_category_share", feature="c") == pytest.approx(100 / 400)
    assert sorted(res.metric("new_category_share", feature="c").counts["examples"]) == ["yy", "zz"]
    assert (
        res.value("chi2_pvalue", feature="c") == 0.0
    )  # a level absent from the reference: infinite statistic
    assert res.value("js_distance", feature="c") == pytest.approx(
        jensenshannon([200, 200, 0], [150, 150, 100], base=2), rel=1e-12
    )
    assert res.value("drifted", feature="c") == 1.0
    assert res.value("max_new_category_share") == pytest.approx(0.25)


def test_20000_level_categorical_is_capped_and_recorded():
    """(Its speed is measured by the benchmarks, not asserted here.)"""
    rng = np.random.default_rng(5)
    levels = np.array([f"merchant_{i:05d}" for i in range(20_000)])
    weights = 1.0 / np.arange(1, 20_001)  # Zipf-like: a few big merchants, a long tail
    weights /= weights.sum()
    ref = pd.DataFrame({"m": rng.choice(levels, 200_000, p=weights)})
    cur = pd.DataFrame({"m": np.r_[rng.choice(levels, 199_000, p=weights), np.full(1_000, "brand_new")]})
    spec = ColumnSpec((Feature("m", "categorical"),))
    res = _run(spec, ref, cur)
    assert res.status is MetricStatus.OK
    assert any("top 50 + '__other__'" in n and "m (" in n for n in res.notes)
    assert res.metric("psi", feature="m").counts["bins"] == 53  # 50 kept + __other__ + __new__ + __missing__
    # the long tail is not fully sampled by the reference either: every current level outside it is new
    unseen = ~cur["m"].isin(set(ref["m"]))
    assert unseen.sum() > 1_000
    assert res.value("new_category_share", feature="m") == pytest.approx(unseen.mean())
    red = reduce_categorical(ref["m"], max_categories=50)
    # the oracle: most frequent first, ties by key (the documented order; value_counts leaves ties unordered)
    top = sorted(ref["m"].value_counts().items(), key=lambda kv: (-kv[1], kv[0]))
    assert red.categories == [k for k, _ in top[:50]] and red.counts.tolist() == [n for _, n in top[:50]]
    assert red.other == sum(n for _, n in top[50:]) and red.capped


# -- Evidently's blind spot ------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_half_nan_or_inf_current_is_drift_here_but_not_in_evidently(bad):
    from evidently import Report
    from evidently.metrics import ValueDrift
    from evidently.presets import DataDriftPreset

    rng = np.random.default_rng(0)
    ref = pd.DataFrame({"a": rng.normal(size=1000), "b": rng.normal(size=1000)})
    cur = pd.DataFrame({"a": rng.normal(size=1000), "b": rng.normal(size=1000)})
    cur.loc[:499, "a"] = bad
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        snap = Report([DataDriftPreset(), ValueDrift(column="a", method="ks")]).run(cur, ref)
    values = {m["metric_name"]: m["value"] for m in snap.dict()["metrics"]}
    ks_p = next(v for k, v in values.items() if k.startswith("ValueDrift(column=a,method=ks"))
    assert ks_p > 0.05  # Evidently: column a has not drifted (it dropped the NaN/inf rows)

    ours = _run(ColumnSpec((Feature("a"), Feature("b"))), ref, cur)
    assert ours.status is MetricStatus.OK
    assert ours.value("drifted", feature="a") == 1.0
    assert ours.value("missing_share_delta", feature="a") == pytest.approx(0.5)
    assert ours.value("psi", feature="a") > 2.0  # half the rows land in a bin the reference never used
    assert ours.value("drifted", feature="b") == 0.0
    assert ours.value("drift_share") == 0.5


# -- German credit end to end ----------------------------------------------------------------------------


def test_german_split_has_no_drift_and_scaled_credit_amount_drifts(german, tmp_path):
    spec = german.spec
    same = DriftMonitor().run(spec, reference=german.reference, current=german.current, params=NO_HTML)
    assert same.status is MetricStatus.OK
    assert same.value("drift_share") == 0.0
    assert same.value("max_psi") < 0.1
    assert same.value("score_psi") < 0.1

    shifted = german.current.copy()
    shifted["credit_amount"] = shifted["credit_amount"] * 1.3
    res = DriftMonitor().run(spec, reference=german.reference, current=shifted, artifacts_dir=tmp_path)
    assert res.value("drifted", feature="credit_amount") == 1.0
    assert res.value("psi", feature="credit_amount") > 0.2
    assert res.value("ks_pvalue", feature="credit_amount") < 1e-3
    for f in GERMAN_FEATURES:
        if f != "credit_amount":
            assert res.value("drifted", feature=f) == 0.0, f
    assert res.value("drift_share") == pytest.approx(1 / 9)
    assert res.metric("max_psi").counts["feature"] == "credit_amount"
    # same values as scipy on the real data
    ref_ca, cur_ca = (
        german.reference["credit_amount"].to_numpy(float),
        shifted["credit_amount"].to_numpy(float),
    )
    assert res.value("ks_statistic", feature="credit_amount") == pytest.approx(
        stats.ks_2samp(ref_ca, cur_ca).statistic
    )
    assert res.value("wasserstein_norm", feature="credit_amount") == pytest.approx(
        stats.wasserstein_distance(ref_ca, cur_ca) / ref_ca.std(), rel=1e-10
    )
    # artifacts: tables, summary and the Evidently HTML on a bounded sample; hashes match the files
    names = {a.name for a in res.artifacts}
    assert names == {"drift_features.csv", "drift_bins.csv", "drift_summary.json", "drift_evidently.html"}
    for a in res.artifacts:
        data = (tmp_path / a.name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == a.sha256 and len(data) == a.size > 0
    table = pd.read_csv(tmp_path / "drift_features.csv")
    assert table.set_index("feature").loc["credit_amount", "drifted"] == 1.0
    bins = pd.read_csv(tmp_path / "drift_bins.csv")
    ca = bins[bins.feature == "credit_amount"]
    assert ca.reference_count.sum() == 600 and ca.current_count.sum() == 400
    assert ca.psi_term.sum() == pytest.approx(res.value("psi", feature="credit_amount"))
    assert b"<html" in (tmp_path / "drift_evidently.html").read_bytes()[:2000].lower()
    assert any("600 reference and 400 current rows" in n for n in res.notes)


def test_evidently_html_sample_is_bounded(tmp_path):
    ref, cur = synthetic(3000, seed=1), synthetic(2500, seed=2)
    res = DriftMonitor().run(
        SYNTHETIC_SPEC, reference=ref, current=cur, params={"html_sample_rows": 500}, artifacts_dir=tmp_path
    )
    assert any("500 reference and 500 current rows" in n for n in res.notes)
    assert (tmp_path / "drift_evidently.html").stat().st_size > 0


# -- reference profiles ----------------------------------------------------------------------------------


def test_profile_gives_the_same_numbers_as_raw_reference(tmp_path, synthetic_frames):
    ref, cur = synthetic_frames
    cur = cur.assign(x=cur["x"] + 0.3)
    mon = DriftMonitor()
    prof = mon.profile(SYNTHETIC_SPEC, ref, {"sample_size": 1000})
    path = prof.save(tmp_path / "ref.json")
    loaded = ReferenceProfile.load(path)
    a = mon.run(SYNTHETIC_SPEC, reference=ref, current=cur, params={**NO_HTML, "sample_size": 1000})
    b = mon.run(SYNTHETIC_SPEC, current=cur, profile=loaded, params=NO_HTML)
    assert [m.to_dict() for m in a.metrics] == [m.to_dict() for m in b.metrics]
    assert a.fingerprints[0] == b.fingerprints[0]  # the profile keeps the reference's fingerprint
    assert any("from a profile" in n for n in b.notes)
    with pytest.raises(
        ParameterError, match=r"n_bins must be 10 \(fixed by the reference profile\)\. Got 20 instead\."
    ):
        mon.run(SYNTHETIC_SPEC, current=cur, profile=loaded, params={"n_bins": 20})
    with pytest.raises(ParameterError, match="either as data"):
        mon.run(SYNTHETIC_SPEC, reference=ref, current=cur, profile=loaded)


def test_profile_of_missing_columns_raises_data_input_error(synthetic_frames):
    from monitors.base import DataInputError

    with pytest.raises(DataInputError, match=r"\['x'\]"):
        DriftMonitor().profile(SYNTHETIC_SPEC, synthetic_frames[0].drop(columns=["x"]))


# -- bad input: each explicit ----------------------------------------------------------------------------


def test_empty_frames_are_insufficient_data(synthetic_frames):
    ref, cur = synthetic_frames
    res = _run(SYNTHETIC_SPEC, ref, cur.iloc[:0])
    assert res.status is MetricStatus.INSUFFICIENT_DATA and res.reason == "current data has 0 rows"
    res = _run(SYNTHETIC_SPEC, ref.iloc[:0], cur.iloc[:0])
    assert res.reason == "reference and current data have 0 rows"


def test_missing_column_invalidates_the_whole_result_naming_it(synthetic_frames):
    ref, cur = synthetic_frames
    res = _run(SYNTHETIC_SPEC, ref, cur.drop(columns=["z"]))
    assert res.status is MetricStatus.INVALID_INPUT and res.metrics == ()
    assert "current data is missing feature column(s) ['z']" in res.reason


def test_all_nan_column_is_insufficient_but_missingness_is_reported(synthetic_frames):
    ref, cur = synthetic_frames
    res = _run(SYNTHETIC_SPEC, ref, cur.assign(x=np.nan))
    assert res.status is MetricStatus.INSUFFICIENT_DATA and "['x']" in res.reason
    ks = res.metric("ks_statistic", feature="x")
    assert (
        ks.status is MetricStatus.INSUFFICIENT_DATA and ks.value is None and "no finite values" in ks.reason
    )
    assert res.value("missing_share_current", feature="x") == 1.0
    assert res.value("drifted", feature="x") == 1.0
    assert res.value("drifted", feature="z") == 0.0


def test_nan_and_inf_in_some_rows_are_their_own_bins(synthetic_frames):
    ref, cur = synthetic_frames
    cur = cur.copy()
    cur.loc[:9, "x"] = np.nan
    cur.loc[10:14, "x"] = np.inf
    res = _run(SYNTHETIC_SPEC, ref, cur)
    assert res.status is MetricStatus.OK
    assert res.value("missing_share_current", feature="x") == pytest.approx(15 / len(cur))
    assert res.value("ks_statistic", feature="x") == pytest.approx(
        stats.ks_2samp(_finite(ref["x"]), _finite(cur["x"])).statistic
    )


def test_strings_in_a_numeric_column_invalidate_that_feature_only(synthetic_frames):
    ref, cur = synthetic_frames
    cur = cur.astype({"x": object})
    cur.loc[3, "x"] = "n/a"
    res = _run(SYNTHETIC_SPEC, ref, cur)
    assert res.status is MetricStatus.INVALID_INPUT and "['x']" in res.reason
    psi = res.metric("psi", feature="x")
    assert (
        psi.status is MetricStatus.INVALID_INPUT
        and "column x must be numeric" in psi.reason
        and "'n/a'" in psi.reason
    )
    assert res.metric("psi", feature="z").status is MetricStatus.OK
    assert res.value("drift_share") == 0.0  # over the two features that have a verdict
    assert res.metric("drift_share").counts["features"] == 2


def test_extra_columns_are_ignored_and_noted(synthetic_frames):
    ref, cur = synthetic_frames
    res = _run(SYNTHETIC_SPEC, ref, cur.assign(debug_id=1, other="x"))
    assert res.status is MetricStatus.OK
    assert any("ignored 2 current column(s)" in n and "debug_id" in n for n in res.notes)


def test_constant_column_psi_and_ks_fine_wasserstein_undefined():
    ref = pd.DataFrame({"k": np.full(500, 3.0)})
    cur = pd.DataFrame({"k": np.r_[np.full(450, 3.0), np.full(50, 4.0)]})
    res = _run(ColumnSpec((Feature("k"),)), ref, cur)
    # bins: x <= 3 and x > 3 → p = (1, 0), q = (.9, .1)
    p, q = np.array([1.0, 1e-4]), np.array([0.9, 0.1])
    assert res.value("psi", feature="k") == pytest.approx(np.sum((q - p) * np.log(q / p)))
    assert res.value("ks_statistic", feature="k") == pytest.approx(
        stats.ks_2samp(ref["k"], cur["k"]).statistic
    )
    w = res.metric("wasserstein_norm", feature="k")
    assert w.status is MetricStatus.INSUFFICIENT_DATA and "standard deviation" in w.reason
    assert res.status is MetricStatus.OK


def test_unreadable_path_is_invalid_input_and_paths_work(tmp_path, synthetic_frames):
    ref, cur = synthetic_frames
    res = _run(SYNTHETIC_SPEC, ref, tmp_path / "nope.parquet")
    assert res.status is MetricStatus.INVALID_INPUT and "does not exist" in res.reason
    ref.to_parquet(tmp_path / "ref.parquet")
    cur.to_csv(tmp_path / "cur.csv", index=False)
    from_files = _run(SYNTHETIC_SPEC, tmp_path / "ref.parquet", str(tmp_path / "cur.csv"))
    assert from_files.value("psi", feature="x") == pytest.approx(
        _run(SYNTHETIC_SPEC, ref, cur).value("psi", feature="x")
    )


def test_score_psi_uses_the_score_column(synthetic_frames):
    ref, cur = synthetic_frames
    res = _run(SYNTHETIC_SPEC, ref, cur.assign(score=cur["score"] ** 0.5))
    edges = quantile_edges(ref["score"].to_numpy(), 10)
    p = np.r_[bin_counts(ref["score"].to_numpy(), edges), 0, 0, 0]
    q = np.r_[bin_counts(cur["score"].to_numpy() ** 0.5, edges), 0, 0, 0]
    assert res.value("score_psi") == pytest.approx(psi_from_counts(p, q, 1e-4))
    assert res.value("score_psi") > 0.2
    no_score = _run(SYNTHETIC_SPEC, ref.drop(columns=["score"]), cur)
    assert no_score.metric("score_psi").status is MetricStatus.INSUFFICIENT_DATA
    assert "reference data has no column 'score'" in no_score.metric("score_psi").reason


def test_invalid_params_raise_with_the_sklearn_style_message():
    ref = pd.DataFrame({"v": [1.0, 2.0]})
    with pytest.raises(ParameterError, match=r"n_bins must be an integer in \[2, 1000\]\. Got 1 instead\."):
        _run(ColumnSpec((Feature("v"),)), ref, ref, n_bins=1)
    with pytest.raises(
        ParameterError, match=r"psi_threshold must be a float in \(0, 100\]\. Got 'high' instead\."
    ):
        _run(ColumnSpec((Feature("v"),)), ref, ref, psi_threshold="high")


def test_drift_monitor_is_registered():
    from monitors import get_monitor

    assert isinstance(get_monitor("drift"), DriftMonitor)


def test_ordinal_features_follow_their_values():
    ref = pd.DataFrame({"grade": [1, 2, 3, 4] * 50, "band": ["A", "B", "C", "D"] * 50})
    cur = pd.DataFrame({"grade": [1, 2, 3, 4, 4] * 40, "band": ["A", "B", "C", "D", "D"] * 40})
    spec = ColumnSpec((Feature("grade", "ordinal"), Feature("band", "ordinal")))
    res = _run(spec, ref, cur)
    assert res.value("ks_statistic", feature="grade") == pytest.approx(
        stats.ks_2samp(ref["grade"], cur["grade"]).statistic
    )
    assert res.value("chi2_pvalue", feature="band") == pytest.approx(
        stats.chisquare([40, 40, 40, 80], f_exp=[50, 50, 50, 50]).pvalue
    )


def test_integer_codes_read_as_floats_are_the_same_levels():
    ref = pd.DataFrame({"job": [0, 1, 2, 3] * 50})
    cur = pd.DataFrame({"job": [0.0, 1.0, 2.0, 3.0, np.nan] * 40})  # e.g. a CSV with a gap
    res = _run(ColumnSpec((Feature("job", "categorical"),)), ref, cur)
    assert res.value("new_category_share", feature="job") == 0.0
    assert res.value("missing_share_current", feature="job") == pytest.approx(0.2)
    assert res.value("js_distance", feature="job") == pytest.approx(0.0, abs=1e-12)


def test_profile_keeps_a_broken_reference_column_as_invalid(synthetic_frames):
    ref, cur = synthetic_frames
    ref = ref.astype({"z": object})
    ref.loc[0, "z"] = "oops"
    prof = DriftMonitor().profile(SYNTHETIC_SPEC, ref)
    res = DriftMonitor().run(SYNTHETIC_SPEC, current=cur, profile=ReferenceProfile.from_json(prof.to_json()))
    assert res.status is MetricStatus.INVALID_INPUT and "['z']" in res.reason
    assert "reference column z must be numeric" in res.metric("psi", feature="z").reason
    assert res.metric("psi", feature="x").status is MetricStatus.OK


def test_evidently_report_pools_a_high_cardinality_column(tmp_path):
    rng = np.random.default_rng(8)
    levels = np.array([f"m{i}" for i in range(5_000)])
    ref = pd.DataFrame({"m": pd.Categorical(rng.choice(levels, 3_000)), "x": rng.normal(size=3_000)})
    cur = pd.DataFrame({"m": pd.Categorical(rng.choice(levels, 3_000)), "x": rng.normal(size=3_000)})
    spec = ColumnSpec((Feature("m", "categorical"), Feature("x")))
    res = DriftMonitor().run(spec, reference=ref, current=cur, artifacts_dir=tmp_path)
    assert "drift_evidently.html" in {a.name for a in res.artifacts}
    assert any("pooled as '__other__' in ['m']" in n for n in res.notes)


def test_no_categorical_feature_means_no_new_category_share_not_missing_data():
    """A model with only numeric features cannot see a new category: the share is a true 0 (the policy's
    unseen-category control must not turn every monitoring run into an error)."""
    import numpy as np
    import pandas as pd

    from monitors.base import ColumnSpec, Feature
    from monitors.drift import DriftMonitor

    rng = np.random.default_rng(0)
    ref = pd.DataFrame({"x": rng.normal(size=500), "y": rng.normal(size=500)})
    cur = pd.DataFrame({"x": rng.normal(size=400), "y": rng.normal(size=400)})
    spec = ColumnSpec((Feature("x"), Feature("y")))
    result = DriftMonitor().run(spec, reference=ref, current=cur, params={"evidently_report": False})
    metric = result.metric("max_new_category_share")
    assert metric.value == 0.0 and metric.counts["categorical_features"] == 0
