"""ExplainabilityMonitor: SHAP against LightGBM's own contributions, additivity by hand, stability, bad input."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from monitors.base import ColumnSpec, Feature, MetricStatus, MonitorResult, ParameterError, get_monitor
from monitors.explainability import ExplainabilityMonitor, model_family

try:
    from tests.monitors._fixtures_b import (
        FEATURES,
        LABELS_EN,
        LABELS_ZH,
        FailingModel,
        german_encoded,
        german_spec,
        lgbm_model,
        logreg_model,
    )
except ImportError:  # tests/ is not a package: pytest put this folder on sys.path
    from _fixtures_b import (
        FEATURES,
        LABELS_EN,
        LABELS_ZH,
        FailingModel,
        german_encoded,
        german_spec,
        lgbm_model,
        logreg_model,
    )

ALL_REASONS = {"reason_codes": len(FEATURES), "sample_size": 1000}


def _contributions(folder: Path) -> pd.DataFrame:
    """Reason codes CSV as a rows × features matrix (0 where a contribution is exactly 0 and was skipped)."""
    rc = pd.read_csv(folder / "reason_codes.csv")
    wide = (
        rc.pivot(index="row_id", columns="feature", values="contribution")
        .reindex(columns=FEATURES)
        .fillna(0.0)
    )
    wide.index = wide.index.astype(int)
    return wide.sort_index()


@pytest.fixture(scope="module")
def lgbm_run(tmp_path_factory) -> tuple[MonitorResult, Path]:
    folder = tmp_path_factory.mktemp("shap_lgbm")
    res = ExplainabilityMonitor().run(
        german_spec(), current=german_encoded(), model=lgbm_model(), params=ALL_REASONS, artifacts_dir=folder
    )
    return res, folder


def test_tree_shap_equals_lightgbm_pred_contrib(lgbm_run):
    res, folder = lgbm_run
    assert res.status is MetricStatus.OK
    X = german_encoded()[FEATURES]
    contrib = lgbm_model().booster_.predict(X, pred_contrib=True)  # LightGBM's own Tree SHAP
    for j, f in enumerate(FEATURES):
        assert res.value("mean_abs_shap", feature=f) == pytest.approx(np.abs(contrib[:, j]).mean(), rel=1e-9)
    ours = _contributions(folder)
    np.testing.assert_allclose(ours.to_numpy(), contrib[:, :-1], atol=1e-9)
    meta = res.metric("additivity_max_residual").counts
    assert meta["explainer"] == "TreeExplainer" and meta["output_space"] == "log-odds"
    assert meta["expected_value"] == pytest.approx(contrib[0, -1])


def test_additivity_by_hand_against_the_raw_score(lgbm_run):
    res, folder = lgbm_run
    X = german_encoded()[FEATURES]
    raw = lgbm_model().predict(X, raw_score=True)
    expected = res.metric("additivity_max_residual").counts["expected_value"]
    by_hand = _contributions(folder).sum(axis=1).to_numpy() + expected
    np.testing.assert_allclose(by_hand, raw, atol=1e-9)
    assert res.value("additivity_max_residual") < 1e-9
    imp = np.array([res.value("mean_abs_shap", feature=f) for f in FEATURES])
    assert res.value("top_feature_share") == pytest.approx(imp.max() / imp.sum())
    assert res.metric("top_feature_share").counts["feature"] == FEATURES[int(imp.argmax())]


def test_reason_codes_carry_labels_direction_and_rank(tmp_path: Path):
    res = ExplainabilityMonitor().run(
        german_spec(),
        current=german_encoded(),
        model=lgbm_model(),
        params={"sample_size": 50, "reason_codes": 3},
        artifacts_dir=tmp_path,
    )
    rc = pd.read_csv(tmp_path / "reason_codes.csv")
    assert rc.groupby("row_id").size().max() == 3 and rc["row_id"].nunique() == 50
    for _, group in rc.groupby("row_id"):
        mags = group.sort_values("rank")["contribution"].abs().to_numpy()
        assert np.all(np.diff(mags) <= 1e-12)  # rank 1 is the largest |contribution|
    assert ((rc["contribution"] > 0) == (rc["direction"] == "increases score")).all()
    assert ((rc["contribution"] > 0) == (rc["direction_zh"] == "提高评分")).all()
    labelled = rc[rc["feature"].isin(LABELS_ZH)]
    assert (labelled["label_zh"] == labelled["feature"].map(LABELS_ZH)).all()
    unlabelled_en = rc[~rc["feature"].isin(LABELS_EN)]
    assert (unlabelled_en["label_en"] == unlabelled_en["feature"]).all()  # falls back to the column name
    imp = pd.read_csv(tmp_path / "shap_importance.csv")
    assert list(imp["mean_abs_shap"]) == sorted(imp["mean_abs_shap"], reverse=True)
    for a in res.artifacts:
        assert hashlib.sha256((tmp_path / a.name).read_bytes()).hexdigest() == a.sha256
    assert (tmp_path / "shap_importance.png").read_bytes()[:4] == b"\x89PNG"


def test_random_forest_additivity_in_probability_space(tmp_path: Path):
    from sklearn.ensemble import RandomForestClassifier

    df = german_encoded()
    rf = RandomForestClassifier(n_estimators=20, max_depth=4, random_state=0).fit(df[FEATURES], df["bad"])
    res = ExplainabilityMonitor().run(
        german_spec(),
        current=df,
        model=rf,
        params={**ALL_REASONS, "sample_size": 100},
        artifacts_dir=tmp_path,
    )
    meta = res.metric("additivity_max_residual").counts
    assert meta["explainer"] == "TreeExplainer" and meta["output_space"] == "probability"
    wide = _contributions(tmp_path)
    proba = rf.predict_proba(df.loc[wide.index, FEATURES])[:, 1]
    np.testing.assert_allclose(wide.sum(axis=1).to_numpy() + meta["expected_value"], proba, atol=1e-9)


def test_linear_explainer_uses_the_full_explicit_background(tmp_path: Path):
    df = german_encoded()
    lr = logreg_model()
    res = ExplainabilityMonitor().run(
        german_spec(),
        current=df,
        model=lr,
        params={**ALL_REASONS, "sample_size": 60, "background_size": 1000},
        artifacts_dir=tmp_path,
    )
    meta = res.metric("additivity_max_residual").counts
    assert meta["explainer"] == "LinearExplainer" and meta["output_space"] == "log-odds"
    # shap would have cut a numpy background to 100 rows; ours keeps the size asked for and records it
    assert meta["background_rows"] == 1000
    bg = [f for f in res.fingerprints if f.role == "background"]
    assert len(bg) == 1 and bg[0].rows == 1000 and meta["background_digest"] == bg[0].digest
    # the base value is the mean logit over all 1000 background rows, not over a 100-row subsample
    assert meta["expected_value"] == pytest.approx(lr.decision_function(df[FEATURES]).mean(), abs=1e-9)
    # By hand: phi_j = coef_j * (x_j - mean_j) with one background mean per feature, and the sum is the logit.
    wide = _contributions(tmp_path)
    x = df.loc[wide.index, FEATURES].to_numpy(float)
    implied_mean = x - wide.to_numpy() / lr.coef_[0]
    np.testing.assert_allclose(implied_mean, np.broadcast_to(implied_mean[0], implied_mean.shape), atol=1e-6)
    logit = lr.decision_function(df.loc[wide.index, FEATURES])
    np.testing.assert_allclose(wide.sum(axis=1).to_numpy() + meta["expected_value"], logit, atol=1e-9)
    assert res.value("additivity_max_residual") < 1e-9


def test_pipeline_final_estimator_explained_exactly_and_kernel_on_every_feature():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(1)
    cols = [f"x{i}" for i in range(12)]
    X = pd.DataFrame(rng.normal(size=(400, 12)), columns=cols)
    logit = X.to_numpy() @ np.linspace(0.3, 1.5, 12)
    y = (rng.random(400) < 1 / (1 + np.exp(-logit))).astype(int)
    pipe = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    assert model_family(pipe) == "other"
    spec = ColumnSpec(tuple(Feature(c) for c in cols))
    # auto: the scaler is one-to-one, so the logistic regression is explained exactly on the scaled columns
    exact = ExplainabilityMonitor().run(spec, current=X, model=pipe, params={"sample_size": 8})
    meta = exact.metric("additivity_max_residual").counts
    assert meta["explainer"] == "LinearExplainer" and meta["output_space"] == "log-odds"
    assert exact.value("additivity_max_residual") < 1e-9
    # forced kernel: with shap's default l1_reg only 10 of the 12 features could get a non-zero value
    res = ExplainabilityMonitor().run(
        spec,
        current=X,
        model=pipe,
        params={"sample_size": 8, "background_size": 20, "kernel_nsamples": 600, "explainer": "kernel"},
    )
    meta = res.metric("additivity_max_residual").counts
    assert meta["explainer"] == "KernelExplainer" and meta["output_space"] == "probability"
    assert meta["background_rows"] == 20
    assert all(res.value("mean_abs_shap", feature=c) > 0 for c in cols)
    assert res.value("additivity_max_residual") < 1e-6
    imp = [res.value("mean_abs_shap", feature=c) for c in cols]
    assert spearmanr(imp, np.linspace(0.3, 1.5, 12)).statistic > 0.8  # larger weight, larger importance


def test_stability_against_reference_data_and_reference_result():
    df = german_encoded()
    mon = ExplainabilityMonitor()
    first = mon.run(german_spec(), current=df.iloc[:500], model=lgbm_model(), params={"sample_size": 500})
    vs_result = mon.run(
        german_spec(),
        current=df.iloc[500:],
        model=lgbm_model(),
        reference=first,
        params={"sample_size": 500, "top_k": 3},
    )
    cur = [vs_result.value("mean_abs_shap", feature=f) for f in FEATURES]
    ref = [first.value("mean_abs_shap", feature=f) for f in FEATURES]
    assert vs_result.value("importance_rank_correlation") == pytest.approx(spearmanr(cur, ref).statistic)
    top = lambda v: set(np.argsort(v)[::-1][:3])  # noqa: E731
    assert vs_result.value("importance_topk_overlap") == pytest.approx(len(top(cur) & top(ref)) / 3)
    vs_data = mon.run(
        german_spec(),
        current=df.iloc[500:],
        model=lgbm_model(),
        reference=df.iloc[:500],
        params={"sample_size": 500},
    )
    # same sample, same explainer: the data reference and the result reference agree
    assert vs_data.value("importance_rank_correlation") == pytest.approx(
        vs_result.value("importance_rank_correlation")
    )
    assert vs_data.fingerprints[1].role == "reference"
    # a reference where the model's most important feature barely matters ranks it differently
    shifted = df.copy()
    shifted["checking_account"] = shifted["checking_account"].iloc[0]
    moved = mon.run(
        german_spec(), current=df, model=lgbm_model(), reference=shifted, params={"sample_size": 300}
    )
    assert moved.value("importance_rank_correlation") < vs_data.value("importance_rank_correlation")
    wrong_kind = MonitorResult(kind="drift", monitor_version="1", params={}, metrics=())
    bad = mon.run(german_spec(), current=df, model=lgbm_model(), reference=wrong_kind)
    assert bad.status is MetricStatus.INVALID_INPUT and "kind explainability" in bad.reason


def test_seeded_and_deterministic():
    df = german_encoded()
    params = {"sample_size": 100, "tree_perturbation": "interventional", "background_size": 50}
    a = ExplainabilityMonitor().run(german_spec(), current=df, model=lgbm_model(), params=params)
    b = ExplainabilityMonitor().run(german_spec(), current=df, model=lgbm_model(), params=params)
    c = ExplainabilityMonitor().run(
        german_spec(), current=df, model=lgbm_model(), params={**params, "seed": 1}
    )
    assert a.to_json() == b.to_json()
    assert a.value("mean_abs_shap", feature="age") != c.value("mean_abs_shap", feature="age")
    assert a.seed == 0 and "shap" in a.library_versions
    assert a.value("additivity_max_residual") < 1e-6  # interventional Tree SHAP is additive too
    assert a.metric("additivity_max_residual").counts["background_rows"] == 50


def test_nan_and_inf_rows_are_excluded_and_counted(tmp_path: Path):
    df = german_encoded().astype({"age": float, "credit_amount": float})
    df.loc[[3, 5], "age"] = np.nan
    df.loc[7, "credit_amount"] = np.inf
    res = ExplainabilityMonitor().run(
        german_spec(), current=df, model=lgbm_model(), params={"sample_size": 1000}, artifacts_dir=tmp_path
    )
    assert res.status is MetricStatus.OK
    meta = res.metric("additivity_max_residual").counts
    assert meta["excluded_nonfinite_rows"] == 3 and meta["explained_rows"] == 997
    assert any("3 row(s) with NaN/inf" in n for n in res.notes)
    rc = pd.read_csv(tmp_path / "reason_codes.csv")
    assert not {3, 5, 7} & set(rc["row_id"])


def test_bad_input_is_a_result():
    df = german_encoded()
    mon = ExplainabilityMonitor()
    strings = mon.run(german_spec(), current=df.assign(purpose=df["purpose_label"]), model=lgbm_model())
    assert strings.status is MetricStatus.INVALID_INPUT
    assert "feature purpose must be numeric" in strings.reason and "radio/TV" in strings.reason
    empty = mon.run(german_spec(), current=df.iloc[:0], model=lgbm_model())
    assert empty.status is MetricStatus.INSUFFICIENT_DATA
    all_nan = mon.run(german_spec(), current=df.assign(age=np.nan), model=lgbm_model())
    assert all_nan.status is MetricStatus.INSUFFICIENT_DATA and "1000 row(s) with NaN/inf" in all_nan.reason
    missing = mon.run(german_spec(), current=df.drop(columns=["age"]), model=lgbm_model())
    assert missing.status is MetricStatus.INVALID_INPUT and "['age']" in missing.reason
    no_model = mon.run(german_spec(), current=df)
    assert no_model.status is MetricStatus.INVALID_INPUT and "needs a model" in no_model.reason
    failing = mon.run(
        german_spec(), current=df, model=FailingModel(), params={"sample_size": 5, "background_size": 5}
    )
    assert failing.status is MetricStatus.INVALID_INPUT and "feature store unavailable" in failing.reason
    forced = mon.run(german_spec(), current=df, model=logreg_model(), params={"explainer": "tree"})
    assert forced.status is MetricStatus.INVALID_INPUT and "tree explainer failed" in forced.reason
    not_a_model = mon.run(german_spec(), current=df, model=object())
    assert not_a_model.status is MetricStatus.INVALID_INPUT and "predict" in not_a_model.reason
    import lightgbm as lgb

    three = lgb.LGBMClassifier(n_estimators=5, verbose=-1, n_jobs=1).fit(df[FEATURES], df["job"])
    multi = mon.run(german_spec(), current=df, model=three, params={"sample_size": 20})
    assert multi.status is MetricStatus.INVALID_INPUT and "only binary classifiers" in multi.reason
    with pytest.raises(ParameterError, match="explainer must be one of"):
        mon.run(german_spec(), current=df, model=lgbm_model(), params={"explainer": "deep"})


def test_mlflow_pyfunc_uri_is_unwrapped_to_the_tree_model(tmp_path: Path):
    import os

    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import mlflow.lightgbm

    path = tmp_path / "model"
    mlflow.lightgbm.save_model(lgbm_model(), str(path))
    # monitors take loaded models: modelreg loads URIs through its MLflow integration (the only mlflow importer).
    # mlflow.lightgbm pickles the scikit-learn wrapper: a validator's load refuses it (it runs code when
    # loaded); this test logged the model itself, so it loads it in-process as a notebook would.
    from modelreg.errors import BadInput
    from modelreg.integrations.mlflow.models import load_model, load_model_in_process
    from modelreg.integrations.mlflow.worker import ModelRefused

    with pytest.raises(ModelRefused, match="runs code when loaded"):
        load_model(str(path))
    loaded, _note = load_model_in_process(str(path))
    res = ExplainabilityMonitor().run(
        german_spec(), current=german_encoded(), model=loaded, params={"sample_size": 100}
    )
    assert res.status is MetricStatus.OK, res.reason
    assert res.metric("additivity_max_residual").counts["explainer"] == "TreeExplainer"
    assert isinstance(get_monitor("explainability"), ExplainabilityMonitor)
    with pytest.raises(BadInput, match="cannot load model"):
        load_model_in_process(str(tmp_path / "nope"))
    broken = ExplainabilityMonitor().run(
        german_spec(), current=german_encoded(), model=str(tmp_path / "nope")
    )
    assert broken.status is MetricStatus.INVALID_INPUT and "cannot load model" in broken.reason
