"""Performance monitor: numbers against sklearn on German credit, baselines, models and bad input."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
from sklearn.calibration import calibration_curve
from sklearn.metrics import (
    accuracy_score,
    brier_score_loss,
    precision_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)

from monitors.base import ColumnSpec, Feature, MetricStatus, MonitorResult, ParameterError
from monitors.drift import psi_from_counts
from monitors.engines.pandas import bin_counts, quantile_edges
from monitors.performance import PerformanceMonitor


def _spec(**kw) -> ColumnSpec:
    return ColumnSpec((Feature("x"),), **{"target": "y", "score": "s", **kw})


class _Broken:
    def predict_proba(self, X):
        raise RuntimeError("feature store unavailable")


def test_german_metrics_equal_sklearn(german, tmp_path):
    cur = german.current
    res = PerformanceMonitor().run(
        german.spec, current=cur, params={"threshold": 0.4}, artifacts_dir=tmp_path
    )
    assert res.status is MetricStatus.OK
    y, s = cur["bad"].to_numpy(), cur["score"].to_numpy()
    auc = roc_auc_score(y, s)
    assert res.value("auc") == pytest.approx(auc, rel=1e-12)
    assert res.value("gini") == pytest.approx(2 * auc - 1, rel=1e-12)
    fpr, tpr, _ = roc_curve(y, s)
    assert res.value("ks_statistic") == pytest.approx(np.max(np.abs(tpr - fpr)), rel=1e-12)
    pred = s >= 0.4
    assert res.value("accuracy") == pytest.approx(accuracy_score(y, pred))
    assert res.value("precision") == pytest.approx(precision_score(y, pred))
    assert res.value("recall") == pytest.approx(recall_score(y, pred))
    assert res.value("brier") == pytest.approx(brier_score_loss(y, s), rel=1e-12)
    assert res.value("positive_rate") == pytest.approx(y.mean())
    assert 0.6 < res.value("auc") < 0.9  # a real, imperfect credit model
    # calibration on score deciles equals sklearn's quantile calibration curve
    prob_true, prob_pred = calibration_curve(y, s, n_bins=10, strategy="quantile")
    observed = [m.value for m in res.find("calibration_observed")]
    predicted = [m.value for m in res.find("calibration_predicted")]
    np.testing.assert_allclose(observed, prob_true, rtol=1e-12)
    np.testing.assert_allclose(predicted, prob_pred, rtol=1e-12)
    assert res.value("max_calibration_gap") == pytest.approx(np.max(np.abs(prob_true - prob_pred)))
    table = pd.read_csv(tmp_path / "calibration.csv")
    assert table["n"].sum() == len(cur) and table["observed"].tolist() == pytest.approx(list(prob_true))
    for a in res.artifacts:
        assert hashlib.sha256((tmp_path / a.name).read_bytes()).hexdigest() == a.sha256


def test_tied_scores_auc_equals_sklearn():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 4000)
    s = np.round(np.clip(rng.normal(0.4 + 0.15 * y, 0.2), 0, 1), 1)  # 11 distinct scores: heavy ties
    res = PerformanceMonitor().run(_spec(), current=pd.DataFrame({"x": 0.0, "y": y, "s": s}))
    assert res.value("auc") == pytest.approx(roc_auc_score(y, s), rel=1e-12)
    fpr, tpr, _ = roc_curve(y, s)
    assert res.value("ks_statistic") == pytest.approx(np.max(tpr - fpr), rel=1e-12)


def test_single_class_is_insufficient_never_half():
    df = pd.DataFrame({"x": 0.0, "y": [0] * 50, "s": np.linspace(0, 1, 50)})
    res = PerformanceMonitor().run(_spec(), current=df)
    for name in ("auc", "gini", "ks_statistic"):
        m = res.metric(name)
        assert m.status is MetricStatus.INSUFFICIENT_DATA and m.value is None
        assert "single class" in m.reason and "positives=0" in m.reason
    assert res.metric("recall").status is MetricStatus.INSUFFICIENT_DATA
    assert res.value("accuracy") == pytest.approx(np.mean(np.linspace(0, 1, 50) < 0.5))


def test_model_kwarg_scores_like_the_score_column(german):
    cur = german.encoded.iloc[german.current_index].reset_index(drop=True)
    spec = ColumnSpec(german.spec.features, target="bad")
    res = PerformanceMonitor().run(spec, current=cur.drop(columns=["score", "pred"]), model=german.model)
    assert res.status is MetricStatus.OK
    assert res.value("auc") == pytest.approx(roc_auc_score(cur["bad"], cur["score"]), rel=1e-12)
    assert any("model LogisticRegression" in n for n in res.notes)


def test_failing_or_unloadable_model_is_invalid_input(german, tmp_path):
    cur = german.encoded.iloc[german.current_index]
    spec = ColumnSpec(german.spec.features, target="bad")
    res = PerformanceMonitor().run(spec, current=cur, model=_Broken())
    assert res.status is MetricStatus.INVALID_INPUT and "feature store unavailable" in res.reason
    res = PerformanceMonitor().run(spec, current=cur, model=str(tmp_path / "no-such-model"))
    assert res.status is MetricStatus.INVALID_INPUT and res.reason.startswith("cannot load model")
    res = PerformanceMonitor().run(spec, current=cur, model=object())
    assert res.status is MetricStatus.INVALID_INPUT and "predict_proba" in res.reason


def test_baseline_gives_auc_drop_and_score_psi(german):
    mon = PerformanceMonitor()
    base = mon.run(german.spec, current=german.reference)
    noisy = german.current.copy()
    rng = np.random.default_rng(0)
    noisy["score"] = np.clip(noisy["score"] + rng.normal(0, 0.15, len(noisy)), 0, 1)
    res = mon.run(german.spec, current=noisy, baseline=MonitorResult.from_json(base.to_json()))
    y_ref, s_ref = german.reference["bad"], german.reference["score"].to_numpy()
    expected_drop = roc_auc_score(y_ref, s_ref) - roc_auc_score(noisy["bad"], noisy["score"])
    assert res.value("auc_drop") == pytest.approx(expected_drop, rel=1e-12)
    assert res.value("auc_drop") > 0.02
    edges = quantile_edges(s_ref, 10)
    p = np.r_[bin_counts(s_ref, edges), 0, 0, 0]
    q = np.r_[bin_counts(noisy["score"].to_numpy(), edges), 0, 0, 0]
    assert res.value("score_psi") == pytest.approx(psi_from_counts(p, q, 1e-4), rel=1e-12)
    assert res.params["baseline_digest"] == base.digest()
    with pytest.raises(
        ParameterError, match=r"baseline must be a performance MonitorResult\. Got 'dict' instead\."
    ):
        mon.run(german.spec, current=noisy, baseline={"auc": 0.8})


def test_prediction_column_and_string_labels():
    df = pd.DataFrame(
        {
            "x": 0.0,
            "y": ["bad", "good", "bad", "good", "bad", "good"],
            "p": ["bad", "good", "good", "good", "bad", "bad"],
        }
    )
    spec = ColumnSpec((Feature("x"),), target="y", prediction="p", positive_label="bad")
    res = PerformanceMonitor().run(spec, current=df)
    y, pred = (df["y"] == "bad").to_numpy(), (df["p"] == "bad").to_numpy()
    assert res.value("auc") == pytest.approx(roc_auc_score(y, pred))
    assert res.value("precision") == pytest.approx(precision_score(y, pred))
    assert res.value("recall") == pytest.approx(recall_score(y, pred))
    assert any("prediction column 'p'" in n for n in res.notes)


def test_nan_scores_and_labels_are_dropped_and_noted():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 500).astype(float)
    s = rng.uniform(size=500)
    s[:10], s[10:13], y[20:25] = np.nan, np.inf, np.nan
    res = PerformanceMonitor().run(_spec(), current=pd.DataFrame({"x": 0.0, "y": y, "s": s}))
    keep = np.isfinite(s) & ~np.isnan(y)
    assert res.value("auc") == pytest.approx(roc_auc_score(y[keep], s[keep]), rel=1e-12)
    assert "dropped 5 row(s) with a missing target" in res.notes
    assert "dropped 13 labelled row(s) whose score is NaN or ±inf" in res.notes


def test_scores_outside_unit_interval_make_brier_invalid_but_auc_fine():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 300)
    logit = rng.normal(y, 1.0)
    res = PerformanceMonitor().run(_spec(), current=pd.DataFrame({"x": 0.0, "y": y, "s": logit}))
    assert res.value("auc") == pytest.approx(roc_auc_score(y, logit))
    brier = res.metric("brier")
    assert brier.status is MetricStatus.INVALID_INPUT and "not probabilities" in brier.reason


@pytest.mark.parametrize(
    ("mutate", "status", "text"),
    [
        (lambda d: d.iloc[:0], MetricStatus.INSUFFICIENT_DATA, "0 rows"),
        (
            lambda d: d.assign(score=np.nan),
            MetricStatus.INSUFFICIENT_DATA,
            "no row has both a target and a finite score",
        ),
        (lambda d: d.drop(columns=["bad"]), MetricStatus.INVALID_INPUT, "missing the target column 'bad'"),
        (lambda d: d.drop(columns=["score"]), MetricStatus.INVALID_INPUT, "missing the score column 'score'"),
        (
            lambda d: d.astype({"score": object}).assign(score="high"),
            MetricStatus.INVALID_INPUT,
            "column score must be numeric",
        ),
    ],
)
def test_bad_input_is_a_result_not_an_exception(german, mutate, status, text):
    res = PerformanceMonitor().run(german.spec, current=mutate(german.current))
    assert res.status is status and text in res.reason


def test_extra_columns_are_ignored(german):
    a = PerformanceMonitor().run(german.spec, current=german.current)
    b = PerformanceMonitor().run(german.spec, current=german.current.assign(extra=1))
    assert [m.to_dict() for m in a.metrics] == [m.to_dict() for m in b.metrics]


def test_mlflow_model_uri_is_loaded_and_scored(german, tmp_path):
    import mlflow.sklearn

    path = tmp_path / "model"
    mlflow.sklearn.save_model(german.model, str(path), pyfunc_predict_fn="predict_proba")
    cur = german.encoded.iloc[german.current_index].reset_index(drop=True)
    spec = ColumnSpec(german.spec.features, target="bad")
    # monitors take loaded models: modelreg loads URIs through its MLflow integration (the only mlflow importer)
    from modelreg.integrations.mlflow.models import load_model

    loaded, _note = load_model(str(path))
    res = PerformanceMonitor().run(spec, current=cur.drop(columns=["score", "pred"]), model=loaded)
    assert res.status is MetricStatus.OK, res.reason
    assert res.value("auc") == pytest.approx(roc_auc_score(cur["bad"], cur["score"]), rel=1e-12)


def test_reference_data_is_the_baseline(german):
    mon = PerformanceMonitor()
    via_reference = mon.run(german.spec, current=german.current, reference=german.reference)
    via_baseline = mon.run(
        german.spec, current=german.current, baseline=mon.run(german.spec, current=german.reference)
    )
    assert via_reference.value("auc_drop") == via_baseline.value("auc_drop")
    assert via_reference.value("score_psi") == via_baseline.value("score_psi")
    expected = roc_auc_score(german.reference["bad"], german.reference["score"]) - roc_auc_score(
        german.current["bad"], german.current["score"]
    )
    assert via_reference.value("auc_drop") == pytest.approx(expected, rel=1e-12)
    assert [f.role for f in via_reference.fingerprints] == ["reference", "current"]
    with pytest.raises(ParameterError, match="Got both instead"):
        mon.run(german.spec, current=german.current, reference=german.reference, baseline=via_baseline)
