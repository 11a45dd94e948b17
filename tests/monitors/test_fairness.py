"""FairnessMonitor: numbers against fairlearn and sklearn, undefined rather than 0, bad input as results."""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    demographic_parity_ratio,
    equal_opportunity_difference,
    equalized_odds_difference,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from sklearn.metrics import precision_score, roc_auc_score

from monitors.base import ColumnSpec, Feature, MetricStatus, MonitorResult, ParameterError, get_monitor
from monitors.fairness import DISPARITIES, MISSING_GROUP, FairnessMonitor

try:
    from tests.monitors._fixtures_b import (
        AGE_BINS,
        FEATURES,
        FailingModel,
        age_group,
        german_encoded,
        german_scored,
        lgbm_model,
    )
except ImportError:  # tests/ is not a package: pytest put this folder on sys.path
    from _fixtures_b import (
        AGE_BINS,
        FEATURES,
        FailingModel,
        age_group,
        german_encoded,
        german_scored,
        lgbm_model,
    )

THRESHOLD = 0.3
PARAMS = {"threshold": THRESHOLD, "sensitive_bins": {"age": AGE_BINS}, "bootstrap": 50}


def _spec(**kw) -> ColumnSpec:
    base = {"target": "bad", "score": "score", "sensitive": ("sex", "age")}
    base.update(kw)
    return ColumnSpec((Feature("credit_amount"), Feature("duration")), **base)


def _quiet_fairlearn(fn, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kw)


@pytest.fixture(scope="module")
def german_result() -> tuple[pd.DataFrame, MonitorResult]:
    df = german_scored(THRESHOLD)
    return df, FairnessMonitor().run(_spec(), current=df, params=PARAMS)


def test_german_per_group_rates_match_fairlearn_metricframe(german_result):
    df, res = german_result
    assert res.status is MetricStatus.OK
    y, pred = df["bad"].to_numpy(), (df["score"] >= THRESHOLD).astype(int).to_numpy()
    metrics = {
        "selection_rate": selection_rate,
        "tpr": true_positive_rate,
        "fpr": false_positive_rate,
        "precision": lambda t, p: precision_score(t, p, zero_division=np.nan),
    }
    sensitive = {"sex": df["sex"], "age": age_group(df["age"])}
    for attr, feature in sensitive.items():
        mf = MetricFrame(metrics=metrics, y_true=y, y_pred=pred, sensitive_features=feature)
        assert sorted(mf.by_group.index) == sorted(m.group for m in res.find("n") if m.feature == attr)
        for group, row in mf.by_group.iterrows():
            for name in metrics:
                assert res.value(name, feature=attr, group=str(group)) == pytest.approx(row[name], abs=1e-12)
            assert res.value("n", feature=attr, group=str(group)) == (feature == group).sum()
    # the intersection, against a MetricFrame on both columns at once
    both = pd.DataFrame(sensitive)
    mf = MetricFrame(metrics=metrics, y_true=y, y_pred=pred, sensitive_features=both)
    for (sex, age), row in mf.by_group.iterrows():
        for name in metrics:
            assert res.value(name, feature="sex&age", group=f"{sex}&{age}") == pytest.approx(
                row[name], abs=1e-12
            )


def test_german_disparities_match_fairlearn_definitions(german_result):
    df, res = german_result
    y, pred = df["bad"].to_numpy(), (df["score"] >= THRESHOLD).astype(int).to_numpy()
    worst = {
        "demographic_parity_difference": [],
        "demographic_parity_ratio": [],
        "equalized_odds_difference": [],
    }
    for attr, feature in {"sex": df["sex"], "age": age_group(df["age"])}.items():
        expected = {
            "demographic_parity_difference": demographic_parity_difference(
                y, pred, sensitive_features=feature
            ),
            "demographic_parity_ratio": demographic_parity_ratio(y, pred, sensitive_features=feature),
            "equalized_odds_difference": equalized_odds_difference(y, pred, sensitive_features=feature),
            "equal_opportunity_difference": equal_opportunity_difference(y, pred, sensitive_features=feature),
        }
        for name, value in expected.items():
            assert res.value(name, feature=attr) == pytest.approx(value, abs=1e-12), (attr, name)
            worst.setdefault(name, []).append(value)
    assert res.value("demographic_parity_difference") == pytest.approx(
        max(worst["demographic_parity_difference"])
    )
    assert res.value("demographic_parity_ratio") == pytest.approx(min(worst["demographic_parity_ratio"]))
    assert res.value("equalized_odds_difference") == pytest.approx(max(worst["equalized_odds_difference"]))
    assert res.metric("demographic_parity_difference").counts["attribute"] == "age"


def test_german_group_auc_matches_sklearn(german_result):
    df, res = german_result
    groups = {
        "sex": df["sex"],
        "age": age_group(df["age"]),
        "sex&age": df["sex"] + "&" + age_group(df["age"]),
    }
    checked = 0
    for attr, feature in groups.items():
        for group in feature.unique():
            mask = (feature == group).to_numpy()
            expected = roc_auc_score(df["bad"][mask], df["score"][mask])
            assert res.value("auc", feature=attr, group=group) == pytest.approx(expected, abs=1e-12)
            checked += 1
    assert checked == 2 + 4 + 8


def test_auc_handles_tied_scores_like_sklearn():
    rng = np.random.default_rng(3)
    n = 600
    df = pd.DataFrame(
        {
            "g": rng.choice(["a", "b", "c"], n),
            "bad": rng.integers(0, 2, n),
            "score": rng.integers(0, 5, n) / 4.0,  # heavy ties
            "credit_amount": 0.0,
            "duration": 0.0,
        }
    )
    res = FairnessMonitor().run(_spec(sensitive=("g",)), current=df, params={"bootstrap": 0})
    for g in "abc":
        mask = df["g"] == g
        assert res.value("auc", feature="g", group=g) == pytest.approx(
            roc_auc_score(df["bad"][mask], df["score"][mask])
        )


def test_bootstrap_intervals_are_seeded_and_close_to_binomial(german_result):
    df, res = german_result
    again = FairnessMonitor().run(_spec(), current=df, params=PARAMS)
    assert again.to_json() == res.to_json()
    other = FairnessMonitor().run(_spec(), current=df, params={**PARAMS, "seed": 7})
    m, m7 = (
        res.metric("selection_rate", feature="sex", group="male"),
        other.metric("selection_rate", feature="sex", group="male"),
    )
    assert (m.ci_low, m.ci_high) != (m7.ci_low, m7.ci_high)
    big = FairnessMonitor().run(_spec(), current=df, params={**PARAMS, "bootstrap": 2000})
    for group in ("male", "female"):
        sel = big.metric("selection_rate", feature="sex", group=group)
        n = sel.counts["n"]
        half = 1.959964 * np.sqrt(sel.value * (1 - sel.value) / n)  # normal approximation of the binomial
        assert sel.ci_low == pytest.approx(sel.value - half, abs=0.012)
        assert sel.ci_high == pytest.approx(sel.value + half, abs=0.012)
    dpd = big.metric("demographic_parity_difference", feature="age")
    assert dpd.ci_low < dpd.value < dpd.ci_high
    none = FairnessMonitor().run(_spec(), current=df, params={**PARAMS, "bootstrap": 0})
    assert none.metric("tpr", feature="sex", group="male").ci_low is None


def _no_positive_group_frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for g, n, base in (("a", 200, 0.3), ("b", 200, 0.5), ("c", 60, None)):
        y = np.zeros(n, dtype=int) if base is None else (rng.random(n) < base).astype(int)
        score = np.clip(0.3 * y + rng.random(n) * 0.7, 0, 1)
        rows.append(pd.DataFrame({"g": g, "bad": y, "score": score}))
    df = pd.concat(rows, ignore_index=True)
    df["credit_amount"] = df["duration"] = 1.0
    return df


def test_group_without_positives_is_undefined_where_fairlearn_says_zero():
    df = _no_positive_group_frame()
    res = FairnessMonitor().run(
        _spec(sensitive=("g",)), current=df, params={"threshold": 0.5, "bootstrap": 0}
    )
    y, pred = df["bad"], (df["score"] >= 0.5).astype(int)
    fl_tpr = _quiet_fairlearn(
        lambda: (
            MetricFrame(
                metrics=true_positive_rate, y_true=y, y_pred=pred, sensitive_features=df["g"]
            ).by_group
        )
    )
    assert fl_tpr["c"] == 0.0  # fairlearn: a silent 0 for a group that has no positives
    tpr = res.metric("tpr", feature="g", group="c")
    assert tpr.status is MetricStatus.INSUFFICIENT_DATA and tpr.value is None
    assert "no positives" in tpr.reason
    auc = res.metric("auc", feature="g", group="c")
    assert auc.value is None and "0 positive(s)" in auc.reason
    assert res.value("positives", feature="g", group="c") == 0
    # equal opportunity over the groups where TPR exists; fairlearn's version counts c's TPR as 0
    ab = df["g"] != "c"
    expected = equal_opportunity_difference(y[ab], pred[ab], sensitive_features=df["g"][ab])
    assert res.value("equal_opportunity_difference", feature="g") == pytest.approx(expected)
    fl_all = _quiet_fairlearn(equal_opportunity_difference, y, pred, sensitive_features=df["g"])
    assert fl_all != pytest.approx(expected)
    # FPR is defined for c, so the FPR side of equalized odds uses all three groups
    fpr = {g: false_positive_rate(y[df["g"] == g], pred[df["g"] == g]) for g in "abc"}
    tpr_ab = {g: true_positive_rate(y[df["g"] == g], pred[df["g"] == g]) for g in "ab"}
    eod = max(max(fpr.values()) - min(fpr.values()), max(tpr_ab.values()) - min(tpr_ab.values()))
    assert res.value("equalized_odds_difference", feature="g") == pytest.approx(eod)


def test_single_group_is_insufficient_data_where_fairlearn_says_zero():
    df = german_scored(THRESHOLD)
    df = df[df["sex"] == "male"]
    y, pred = df["bad"], (df["score"] >= THRESHOLD).astype(int)
    assert demographic_parity_difference(y, pred, sensitive_features=df["sex"]) == 0.0
    assert _quiet_fairlearn(equalized_odds_difference, y, pred, sensitive_features=df["sex"]) == 0.0
    res = FairnessMonitor().run(_spec(sensitive=("sex",)), current=df, params={"threshold": THRESHOLD})
    assert res.status is MetricStatus.INSUFFICIENT_DATA
    assert "1 group(s)" in res.reason
    for name in DISPARITIES:
        for feature in ("sex", None):
            m = res.metric(name, feature=feature)
            assert m.value is None and m.status is MetricStatus.INSUFFICIENT_DATA, (name, feature)
            assert m.reason
    # per-group rates are still there
    assert res.value("selection_rate", feature="sex", group="male") == pytest.approx(pred.mean())


def test_small_groups_are_undefined_and_left_out_of_disparities():
    df = german_scored(THRESHOLD)
    res = FairnessMonitor().run(
        _spec(sensitive=("purpose",)),
        current=df,
        params={"threshold": THRESHOLD, "min_group_size": 60, "bootstrap": 0},
    )
    counts = df["purpose"].value_counts()
    small, large = counts[counts < 60].index, counts[counts >= 60].index
    assert len(small) and len(large) >= 2
    for g in small:
        m = res.metric("selection_rate", feature="purpose", group=g)
        assert m.value is None and "min_group_size=60" in m.reason
        assert res.value("n", feature="purpose", group=g) == counts[g]  # counts stay reported
    pred = (df["score"] >= THRESHOLD).astype(int)
    rates = pred.groupby(df["purpose"]).mean()[large]
    assert res.value("demographic_parity_difference", feature="purpose") == pytest.approx(
        rates.max() - rates.min()
    )
    assert res.metric("demographic_parity_difference", feature="purpose").counts["eligible_groups"] == len(
        large
    )


def test_fewer_than_two_large_groups_is_insufficient_not_zero():
    df = german_scored(THRESHOLD)
    res = FairnessMonitor().run(
        _spec(sensitive=("housing",)), current=df, params={"threshold": THRESHOLD, "min_group_size": 200}
    )
    assert (df["housing"].value_counts() >= 200).sum() == 1
    m = res.metric("demographic_parity_difference", feature="housing")
    assert m.value is None and "1 group(s) with a defined selection rate" in m.reason


def test_missing_sensitive_values_form_an_explicit_group_everywhere():
    df = german_scored(THRESHOLD)
    df.loc[df.index[:40], "sex"] = np.nan
    res = FairnessMonitor().run(_spec(), current=df, params=PARAMS)
    assert res.value("n", feature="sex", group=MISSING_GROUP) == 40
    inter = [m for m in res.find("n") if m.feature == "sex&age" and m.group.startswith(MISSING_GROUP + "&")]
    assert sum(m.value for m in inter) == 40
    pred = (df["score"] >= THRESHOLD).astype(int)
    expected = demographic_parity_difference(
        df["bad"], pred, sensitive_features=df["sex"].fillna(MISSING_GROUP)
    )
    assert res.value("demographic_parity_difference", feature="sex") == pytest.approx(expected)
    refused = FairnessMonitor().run(_spec(), current=df, params={**PARAMS, "missing_sensitive": "error"})
    assert refused.status is MetricStatus.INVALID_INPUT
    assert "sensitive attribute sex has 40 missing value(s)" in refused.reason


def test_prediction_column_and_model_paths_agree_with_score_threshold(german_result):
    df, res = german_result
    by_pred = FairnessMonitor().run(_spec(score=None, prediction="pred"), current=df, params=PARAMS)
    enc = german_encoded()
    enc["score"] = 0.0  # never used: the model scores the rows
    # the model needs the encoded sex; the label column carries the group names
    spec_model = ColumnSpec(tuple(Feature(f) for f in FEATURES), target="bad", sensitive=("sex_label", "age"))
    by_model = FairnessMonitor().run(spec_model, current=enc, model=lgbm_model(), params=PARAMS)
    for name in ("selection_rate", "tpr", "fpr", "precision"):
        for group in ("male", "female"):
            v = res.value(name, feature="sex", group=group)
            assert by_pred.value(name, feature="sex", group=group) == pytest.approx(v)
            assert by_model.value(name, feature="sex_label", group=group) == pytest.approx(v)
    assert by_pred.metric("auc", feature="sex", group="male").value is None  # no scores, no AUC
    assert by_model.value("auc", feature="sex_label", group="male") == pytest.approx(
        res.value("auc", feature="sex", group="male")
    )


def test_artifacts_are_written_with_their_hashes(tmp_path: Path, german_result):
    df, res = german_result
    out = FairnessMonitor().run(_spec(), current=df, params=PARAMS, artifacts_dir=tmp_path)
    names = {a.name: a for a in out.artifacts}
    assert set(names) == {"fairness_groups.csv", "fairness_groups.png"}
    for a in out.artifacts:
        data = (tmp_path / a.name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == a.sha256 and a.size == len(data)
    assert (tmp_path / "fairness_groups.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = pd.read_csv(tmp_path / "fairness_groups.csv")
    row = table[(table["feature"] == "sex") & (table["group"] == "female")].iloc[0]
    assert row["tpr"] == pytest.approx(res.value("tpr", feature="sex", group="female"))
    assert len(table) == 2 + 4 + 8


def test_bad_input_comes_back_as_a_result_not_an_exception():
    df = german_scored(THRESHOLD)
    mon = FairnessMonitor()
    empty = mon.run(_spec(), current=df.iloc[:0], params=PARAMS)
    assert empty.status is MetricStatus.INSUFFICIENT_DATA and "empty" in empty.reason
    missing = mon.run(_spec(), current=df.drop(columns=["sex"]), params=PARAMS)
    assert missing.status is MetricStatus.INVALID_INPUT and "['sex']" in missing.reason
    no_pred = mon.run(_spec(score="nope"), current=df, params=PARAMS)
    assert no_pred.status is MetricStatus.INVALID_INPUT and "needs predictions" in no_pred.reason
    strings = df.assign(score=df["score"].astype(object))
    strings.loc[3, "score"] = "high"
    bad = mon.run(_spec(), current=strings, params=PARAMS)
    assert bad.status is MetricStatus.INVALID_INPUT and "column score must be numeric" in bad.reason
    failing = mon.run(
        _spec(score=None), current=german_encoded().assign(score=0.0), model=FailingModel(), params=PARAMS
    )
    assert failing.status is MetricStatus.INVALID_INPUT and "feature store unavailable" in failing.reason
    nan_scores = df.copy()
    nan_scores.loc[:9, "score"] = np.inf
    nan_scores.loc[10:14, "bad"] = np.nan
    res = mon.run(_spec(), current=nan_scores, params=PARAMS)
    assert res.status is MetricStatus.OK
    assert sum(m.value for m in res.find("n") if m.feature == "sex") == 1000 - 15
    assert any("non-finite score: 10 row(s)" in n for n in res.notes)
    assert any("missing target: 5 row(s)" in n for n in res.notes)
    out_of_bins = mon.run(_spec(), current=df, params={**PARAMS, "sensitive_bins": {"age": [30, 40]}})
    assert out_of_bins.status is MetricStatus.INVALID_INPUT and "outside sensitive_bins" in out_of_bins.reason


def test_parameters_are_validated_once_with_clear_messages():
    df = german_scored(THRESHOLD)
    with pytest.raises(ParameterError, match=r"threshold must be a float in \[0, 1\].*Got 2 instead"):
        FairnessMonitor().run(_spec(), current=df, params={"threshold": 2})
    with pytest.raises(ParameterError, match="unknown"):
        FairnessMonitor().run(_spec(), current=df, params={"treshold": 0.5})
    with pytest.raises(ParameterError, match="sensitive_bins keys"):
        FairnessMonitor().run(_spec(), current=df, params={"sensitive_bins": {"income": [0, 1]}})
    with pytest.raises(ParameterError, match=r"spec\.sensitive"):
        FairnessMonitor().run(_spec(sensitive=()), current=df)


def test_registry_roundtrip_and_no_target(german_result):
    df, res = german_result
    assert isinstance(get_monitor("fairness"), FairnessMonitor)
    assert MonitorResult.from_json(res.to_json()).to_json() == res.to_json()
    no_target = FairnessMonitor().run(_spec(target=None), current=df.drop(columns=["bad"]), params=PARAMS)
    assert no_target.value("demographic_parity_difference", feature="sex") == pytest.approx(
        res.value("demographic_parity_difference", feature="sex")
    )
    assert no_target.metric("tpr", feature="sex", group="male").reason == "spec has no target column"
    assert no_target.metric("equalized_odds_difference").value is None


def test_no_intersections_when_disabled_and_csv_input(tmp_path: Path):
    df = german_scored(THRESHOLD)
    path = tmp_path / "scores.csv"
    df.to_csv(path, index=False)
    res = FairnessMonitor().run(_spec(), current=str(path), params={**PARAMS, "intersections": False})
    assert not [m for m in res.metrics if m.feature == "sex&age"]
    assert res.fingerprints[0].rows == 1000


def test_group_labels_stay_distinct_for_mixed_types_and_integer_codes():
    df = pd.DataFrame({"g": [1, "1", 2.5] * 20, "bad": [0, 1, 1] * 20, "score": [0.2, 0.6, 0.9] * 20})
    df["credit_amount"] = df["duration"] = 0.0
    res = FairnessMonitor().run(
        _spec(sensitive=("g",)), current=df, params={"min_group_size": 5, "bootstrap": 0}
    )
    assert sorted(m.group for m in res.find("n")) == ["float:2.5", "int:1", "str:1"]
    # integer codes with gaps: only the values that occur become groups
    ints = pd.DataFrame({"g": [3, 900, 3, 900] * 20, "bad": [0, 1, 1, 0] * 20, "score": 0.7})
    ints["credit_amount"] = ints["duration"] = 0.0
    res = FairnessMonitor().run(
        _spec(sensitive=("g",)), current=ints, params={"min_group_size": 5, "bootstrap": 0}
    )
    assert sorted(m.group for m in res.find("n")) == ["3", "900"]
    assert res.value("demographic_parity_difference", feature="g") == 0.0  # both groups defined, truly equal


def test_three_attributes_give_every_intersection_and_max_groups_caps_them():
    rng = np.random.default_rng(2)
    n = 3000
    df = pd.DataFrame(
        {
            "a": rng.choice(["x", "y"], n),
            "b": rng.choice(["p", "q", "r"], n),
            "c": rng.integers(0, 2, n),
            "bad": rng.integers(0, 2, n),
            "score": rng.random(n),
            "credit_amount": 0.0,
            "duration": 0.0,
        }
    )
    spec = _spec(sensitive=("a", "b", "c"))
    res = FairnessMonitor().run(spec, current=df, params={"bootstrap": 20})
    features = {m.feature for m in res.find("n")}
    assert features == {"a", "b", "c", "a&b", "a&c", "b&c", "a&b&c"}
    for feature in features:
        assert sum(m.value for m in res.find("n") if m.feature == feature) == n
    pred = (df["score"] >= 0.5).astype(int)
    abc = df["a"] + "&" + df["b"] + "&" + df["c"].astype(str)
    expected = demographic_parity_difference(df["bad"], pred, sensitive_features=abc)
    assert res.value("demographic_parity_difference", feature="a&b&c") == pytest.approx(expected)
    capped = FairnessMonitor().run(spec, current=df, params={"bootstrap": 20, "max_groups": 5})
    assert (
        capped.metric("demographic_parity_difference", feature="a&b&c").reason
        == "a&b&c has 12 groups > max_groups=5"
    )
    assert not [m for m in capped.find("n") if m.feature in ("a&b", "a&b&c")]
    assert capped.value("demographic_parity_difference", feature="a&c") == pytest.approx(
        res.value("demographic_parity_difference", feature="a&c")
    )
