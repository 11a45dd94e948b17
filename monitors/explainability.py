"""SHAP explanations of a binary classifier: global importance, reason codes, additivity and stability.

The explainer is chosen from the model: TreeExplainer for tree ensembles (LightGBM, scikit-learn trees,
forests and gradient boosting), LinearExplainer for scikit-learn linear models, else KernelExplainer on the
positive-class probability with ``l1_reg=False`` (its default would keep only 10 features). Background data
is an explicit, seeded sample whose size is a parameter and whose digest is recorded: shap would otherwise
subsample a numpy background to 100 rows without saying so.

Pipelines (``sklearn.pipeline.Pipeline``) are explained on the transformed space and mapped back: the
preprocessing steps transform the rows, the final estimator is explained there with its own exact explainer
(tree or linear; kernel otherwise), and the SHAP values of the columns one input feature produced (the
one-hot columns of a category, a scaled number) are summed into that feature. We chose this over explaining
the whole pipeline in the input space because the latter forces KernelExplainer (approximate, slow, and it
needs numeric masking of text categories), whereas a sum of exact SHAP values is itself an exact SHAP value
of the input feature under the same game, so additivity holds unchanged in the mapped-back space and reason
codes name the features the applicant supplied. LightGBM and XGBoost models fitted on pandas ``category``
columns are explained directly (their categorical splits are native).

Every explanation is checked for additivity in the explainer's own output space (log-odds for boosted
trees and logistic regression, probability for forests and the kernel explainer): the largest
``|sum(SHAP) + expected value − model output|`` is reported as ``additivity_max_residual``.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pandas is imported where it runs: declarations must load without it
    import pandas as pd

from monitors.base import (
    Artifact,
    ColumnSpec,
    DataInputError,
    Metric,
    MetricStatus,
    ModelError,
    Monitor,
    MonitorResult,
    ParameterError,
    ParamSpec,
    check_columns,
    check_model,
    fingerprint,
    invalid_result,
    library_versions,
    load_frame,
    predict_scores,
)
from monitors.base import (
    is_int as _is_int,
)
from monitors.base import write_artifact as _write
from monitors.charts import styled

EXPLAINERS = ("auto", "tree", "linear", "kernel")

_TREE_CLASSES = {
    "lightgbm.sklearn.LGBMClassifier",
    "lightgbm.sklearn.LGBMRegressor",
    "lightgbm.basic.Booster",
    "sklearn.tree._classes.DecisionTreeClassifier",
    "sklearn.tree._classes.DecisionTreeRegressor",
    "sklearn.tree._classes.ExtraTreeClassifier",
    "sklearn.tree._classes.ExtraTreeRegressor",
    "sklearn.ensemble._forest.RandomForestClassifier",
    "sklearn.ensemble._forest.RandomForestRegressor",
    "sklearn.ensemble._forest.ExtraTreesClassifier",
    "sklearn.ensemble._forest.ExtraTreesRegressor",
    "sklearn.ensemble._gb.GradientBoostingClassifier",
    "sklearn.ensemble._gb.GradientBoostingRegressor",
    "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier",
    "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingRegressor",
    "xgboost.sklearn.XGBClassifier",
    "xgboost.sklearn.XGBRegressor",
}
# Libraries whose models split on pandas ``category`` columns natively: those columns are not refused.
_CATEGORICAL_NATIVE = ("lightgbm.", "xgboost.")


def _qualname(obj: Any) -> str:
    t = type(obj)
    return f"{t.__module__}.{t.__qualname__}"


def model_family(model: Any) -> str:
    """ "tree", "linear" or "other" (anything else, including scikit-learn Pipelines)."""
    if _qualname(model) in _TREE_CLASSES:
        return "tree"
    if type(model).__module__.startswith("sklearn.linear_model") and hasattr(model, "coef_"):
        return "linear"
    return "other"


@dataclass
class _Explanation:
    values: np.ndarray  # (rows, features) in the explainer's output space
    expected: float
    model_output: np.ndarray  # (rows,) the model's output in the same space
    output_space: str


class _Explainer:
    """One explainer, built once and used for both the current and the reference sample."""

    def __init__(
        self,
        model: Any,
        family: str,
        features: list[str],
        background: pd.DataFrame | None,
        p: Mapping[str, Any],
        numpy_input: bool = False,
    ) -> None:
        with warnings.catch_warnings():
            # shap's import touches matplotlib colormap APIs that warn about their own future changes.
            warnings.simplefilter("ignore", PendingDeprecationWarning)
            import shap

        self.model, self.family, self.features, self.p = model, family, features, p
        self.background = background
        # A pipeline's final estimator fitted on the transformers' numpy output is given numpy (a frame
        # with names it never saw makes scikit-learn warn on every call).
        self.numpy_input = numpy_input
        if family == "tree":
            if p["tree_perturbation"] == "interventional":
                assert background is not None
                masker = shap.maskers.Independent(background.to_numpy(float), max_samples=len(background))
                self.explainer = shap.TreeExplainer(model, masker, feature_perturbation="interventional")
            else:
                # Path-dependent Tree SHAP needs no background: it is exact for the trees' own cover
                # statistics, and for LightGBM it is the library's own pred_contrib.
                self.explainer = shap.TreeExplainer(model, feature_perturbation="tree_path_dependent")
        elif family == "linear":
            assert background is not None
            masker = shap.maskers.Independent(background.to_numpy(float), max_samples=len(background))
            self.explainer = shap.LinearExplainer(model, masker)
        else:
            assert background is not None
            self.explainer = shap.KernelExplainer(self._proba, background.to_numpy(float))

    def _proba(self, x: np.ndarray) -> np.ndarray:
        import pandas as pd

        if self.numpy_input:
            return predict_scores(self.model, x)
        return predict_scores(self.model, pd.DataFrame(x, columns=self.features))

    def _input(self, X: pd.DataFrame) -> Any:
        return X.to_numpy(float) if self.numpy_input else X

    def explain(self, X: pd.DataFrame) -> _Explanation:
        if self.family == "kernel":
            values = self.explainer.shap_values(
                X.to_numpy(float), nsamples=self.p["kernel_nsamples"], l1_reg=False, silent=True
            )
            expected = float(np.ravel(self.explainer.expected_value)[-1])
            return _Explanation(_positive(values), expected, self._proba(X.to_numpy(float)), "probability")
        with warnings.catch_warnings():
            # shap warns on every LightGBM binary call that its return type changed in 0.45; we handle both.
            warnings.filterwarnings("ignore", message="LightGBM binary classifier", category=UserWarning)
            if self.family == "tree":
                values = self.explainer.shap_values(self._input(X), check_additivity=False)
            else:
                values = self.explainer.shap_values(X.to_numpy(float))
        expected = float(np.ravel(self.explainer.expected_value)[-1])
        output, space = self._model_output(X)
        if output.shape != (len(X),):
            raise ModelError(
                f"only binary classifiers and regressors are supported. Got {output.size} model outputs for {len(X)} rows instead."
            )
        return _Explanation(_positive(values), expected, output, space)

    def _model_output(self, X: pd.DataFrame) -> tuple[np.ndarray, str]:
        """The model's own output in the space the explainer decomposes, computed by the model itself."""
        m = self.model
        name = _qualname(m)
        X = self._input(X)
        if self.family == "linear":
            if hasattr(m, "decision_function"):
                return np.asarray(m.decision_function(X), float).ravel(), "log-odds"
            return np.asarray(m.predict(X), float).ravel(), "raw"
        if name.startswith("lightgbm."):
            return np.asarray(m.predict(X, raw_score=True), float).ravel(), "log-odds"
        if name.startswith("xgboost."):
            return np.asarray(m.predict(X, output_margin=True), float).ravel(), "log-odds"
        if "GradientBoostingClassifier" in name:
            return np.asarray(m.decision_function(X), float).ravel(), "log-odds"
        if hasattr(m, "predict_proba"):
            return np.asarray(m.predict_proba(X), float)[:, -1], "probability"
        return np.asarray(m.predict(X), float).ravel(), "raw"


def _positive(values: Any) -> np.ndarray:
    """SHAP values of the positive class as (rows, features), whatever shape shap returned."""
    if isinstance(values, list):
        values = values[-1]
    arr = np.asarray(values, dtype=float)
    if arr.ndim == 3:
        arr = arr[:, :, -1]
    return arr


class ExplainabilityMonitor(Monitor):
    kind = "explainability"
    version = "1"
    metrics = (
        "mean_abs_shap",
        "additivity_max_residual",
        "top_feature_share",
        "importance_rank_correlation",
        "importance_topk_overlap",
    )
    needs = frozenset({"model", "reference", "baseline"})
    params = (
        ParamSpec(
            "sample_size",
            200,
            "an integer >= 1 (rows explained, seeded sample)",
            lambda v: _is_int(v) and v >= 1,
        ),
        ParamSpec(
            "background_size", 100, "an integer >= 1 (background rows)", lambda v: _is_int(v) and v >= 1
        ),
        ParamSpec("seed", 0, "an integer >= 0", lambda v: _is_int(v) and v >= 0),
        ParamSpec("explainer", "auto", f"one of {list(EXPLAINERS)}", lambda v: v in EXPLAINERS),
        ParamSpec(
            "tree_perturbation",
            "tree_path_dependent",
            'one of "tree_path_dependent", "interventional"',
            lambda v: v in ("tree_path_dependent", "interventional"),
        ),
        ParamSpec(
            "kernel_nsamples",
            "auto",
            '"auto" or an integer >= 10',
            lambda v: v == "auto" or (_is_int(v) and v >= 10),
        ),
        ParamSpec("top_k", 5, "an integer >= 1", lambda v: _is_int(v) and v >= 1),
        ParamSpec(
            "reason_codes", 3, "an integer >= 1 (reasons per decision)", lambda v: _is_int(v) and v >= 1
        ),
    )

    def run(
        self,
        spec: ColumnSpec,
        *,
        current: pd.DataFrame | str | Any,
        reference: Any = None,
        model: Any = None,
        baseline: MonitorResult | None = None,
        params: Mapping[str, Any] | None = None,
        artifacts_dir: str | None = None,
        **kw: Any,
    ) -> MonitorResult:
        p = self.validate_params(params)
        if reference is None:
            # A stored baseline result stands in for reference data it was computed on.
            reference = baseline
        if not spec.features:
            raise ParameterError("spec.features must name at least one feature. Got () instead.")
        features = spec.feature_names
        seed = int(p["seed"])
        rng = np.random.default_rng(seed)
        try:
            if model is None:
                raise ModelError(
                    "explainability needs a model (an object with predict/predict_proba or a model URI)"
                )
            fitted = check_model(model)
            fitted = _unwrap(fitted)
            plan = _plan(fitted, features)
            frame = load_frame(current)
            X, n_bad = _clean(frame, features, "current", plan.accepts)
            ref_frame = None
            ref_result = None
            if isinstance(reference, MonitorResult):
                if reference.kind != self.kind:
                    raise DataInputError(
                        f"reference result must be of kind {self.kind}. Got {reference.kind!r} instead."
                    )
                ref_result = reference
            elif reference is not None:
                ref_frame = load_frame(reference)
                ref_X, ref_bad = _clean(ref_frame, features, "reference", plan.accepts)
        except (DataInputError, ModelError) as exc:
            return invalid_result(self.kind, self.version, p, str(exc), seed=seed)

        fps = [fingerprint(frame, "current")]
        if ref_frame is not None:
            fps.append(fingerprint(ref_frame, "reference"))
        versions = library_versions(
            "shap", "scikit-learn", "lightgbm", "xgboost", "xgboost-cpu", "matplotlib"
        )  # cached in monitors.base
        notes: list[str] = []
        if n_bad:
            notes.append(f"current: {n_bad} row(s) with NaN/inf features excluded")
        if ref_frame is not None and ref_bad:
            notes.append(f"reference: {ref_bad} row(s) with NaN/inf features excluded")
        if len(X) == 0:
            return MonitorResult(
                kind=self.kind,
                monitor_version=self.version,
                params=p,
                metrics=(),
                status=MetricStatus.INSUFFICIENT_DATA,
                reason="no rows to explain"
                + (f" ({n_bad} row(s) with NaN/inf excluded)" if n_bad else " (empty data)"),
                fingerprints=tuple(fps),
                seed=seed,
                library_versions=dict(versions),
                notes=tuple(notes),
            )

        family = model_family(plan.model) if p["explainer"] == "auto" else p["explainer"]
        if family == "other":
            family = "kernel"
        sample = _sample(X, int(p["sample_size"]), rng)
        background = None
        needs_background = family in ("linear", "kernel") or p["tree_perturbation"] == "interventional"
        if needs_background:
            pool = ref_X if ref_frame is not None and len(ref_X) else X
            background = _sample(pool, int(p["background_size"]), rng)
            bg_fp = fingerprint(background.reset_index(drop=True), "background")
            fps.append(bg_fp)
            notes.append(
                f"background: {len(background)} row(s) from {'reference' if pool is not X else 'current'}, "
                f"digest {bg_fp.digest[:16]}"
            )
        try:
            explainer = _Explainer(
                plan.model,
                family,
                plan.columns or features,
                None if background is None else plan.prepare(background),
                p,
                numpy_input=plan.transform is not None and not hasattr(plan.model, "feature_names_in_"),
            )
            cur = explainer.explain(plan.prepare(sample))
            cur.values = plan.map_back(cur.values, len(features))
            ref_imp = None
            if ref_frame is not None and len(ref_X):
                ref_cur = explainer.explain(plan.prepare(_sample(ref_X, int(p["sample_size"]), rng)))
                ref_imp = np.abs(plan.map_back(ref_cur.values, len(features))).mean(axis=0)
        except Exception as exc:  # a model shap cannot handle is an input problem for this run, not a crash
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            return invalid_result(
                self.kind,
                self.version,
                p,
                f"{family} explainer failed on {type(fitted).__name__}: {type(exc).__name__}: {msg}",
                seed=seed,
                fingerprints=tuple(fps),
            )
        explainer_name = {"tree": "TreeExplainer", "linear": "LinearExplainer", "kernel": "KernelExplainer"}[
            family
        ]
        notes.append(
            f"explainer: {explainer_name} ({cur.output_space} output space), {len(sample)} row(s) explained"
        )
        if plan.transform is not None:
            notes.append(
                f"pipeline: {type(plan.model).__name__} explained on {len(plan.columns or ())} transformed "
                f"column(s); SHAP values summed back onto {len(features)} input feature(s)"
            )

        importance = np.abs(cur.values).mean(axis=0)
        residual = np.abs(cur.values.sum(axis=1) + cur.expected - cur.model_output)
        meta = {
            "explainer": explainer_name,
            "output_space": cur.output_space,
            "explained_rows": len(sample),
            "excluded_nonfinite_rows": n_bad,
            "background_rows": 0 if background is None else len(background),
            "background_digest": None if background is None else fps[-1].digest,
            "expected_value": cur.expected,
        }
        metrics: list[Metric] = [
            Metric("mean_abs_shap", float(v), feature=f, counts={"rows": len(sample)})
            for f, v in zip(features, importance, strict=True)
        ]
        if np.all(np.isfinite(residual)):
            metrics.append(Metric("additivity_max_residual", float(residual.max()), counts=meta))
        else:
            metrics.append(
                Metric.undefined(
                    "additivity_max_residual",
                    "the model or the explainer returned non-finite values",
                    status=MetricStatus.INVALID_INPUT,
                    counts=meta,
                )
            )
        total = float(importance.sum())
        if total > 0:
            top = int(np.argmax(importance))
            metrics.append(
                Metric("top_feature_share", float(importance[top]) / total, counts={"feature": features[top]})
            )
        else:
            metrics.append(Metric.undefined("top_feature_share", "every feature has mean |SHAP| 0"))

        if ref_result is not None:
            ref_map = {
                m.feature: m.value for m in ref_result.find("mean_abs_shap") if m.status is MetricStatus.OK
            }
            metrics.extend(_stability(features, importance, ref_map, int(p["top_k"])))
        elif ref_imp is not None:
            metrics.extend(
                _stability(features, importance, dict(zip(features, ref_imp, strict=True)), int(p["top_k"]))
            )
        elif ref_frame is not None:
            reason = "reference has no rows with finite features"
            metrics.append(Metric.undefined("importance_rank_correlation", reason))
            metrics.append(Metric.undefined("importance_topk_overlap", reason))

        artifacts: list[Artifact] = []
        if artifacts_dir is not None:
            artifacts = _artifacts(
                artifacts_dir, spec, features, importance, sample, cur, int(p["reason_codes"])
            )
        return MonitorResult(
            kind=self.kind,
            monitor_version=self.version,
            params=p,
            metrics=tuple(metrics),
            artifacts=tuple(artifacts),
            fingerprints=tuple(fps),
            seed=seed,
            library_versions=dict(versions),
            notes=tuple(notes),
        )


def _unwrap(model: Any) -> Any:
    """An MLflow pyfunc model exposes the native model it wraps; explain that one when we can."""
    if _qualname(model).startswith("mlflow.pyfunc") and hasattr(model, "get_raw_model"):
        try:
            raw = model.get_raw_model()
        except Exception:  # not every flavour has one: fall back to the pyfunc wrapper (kernel explainer)
            return model
        if hasattr(raw, "predict") or hasattr(raw, "predict_proba"):
            return raw
    return model


def _clean(
    frame: pd.DataFrame, features: list[str], role: str, accepts: str = "numeric"
) -> tuple[pd.DataFrame, int]:
    """Feature columns with rows holding NaN/inf (or a missing category) dropped. ``accepts`` says what a
    non-numeric column may be: "numeric" refuses it (never coerced), "category" lets pandas ``category``
    columns through (LightGBM/XGBoost split on them), "any" lets anything through (a pipeline encodes it)."""
    import pandas as pd

    check_columns(frame, features, role)
    X = frame[features]
    numeric: list[str] = []
    for col in features:
        dtype = X[col].dtype
        if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype):
            numeric.append(col)
            continue
        if accepts == "any" or (accepts == "category" and isinstance(dtype, pd.CategoricalDtype)):
            continue
        non_null = X[col].dropna()
        example = f", e.g. {non_null.iloc[0]!r}" if len(non_null) else ""
        raise DataInputError(
            f"{role} feature {col} must be numeric. Got dtype {dtype}{example} instead; encode it before explaining"
        )
    values = X[numeric].to_numpy(dtype=float, na_value=np.nan)
    finite = np.isfinite(values).all(axis=1)
    others = [c for c in features if c not in numeric]
    if others:
        finite &= ~X[others].isna().to_numpy().any(axis=1)
    n_bad = int((~finite).sum())
    return (X[finite] if n_bad else X), n_bad


@dataclass
class _Plan:
    """What is explained: the model itself, or a pipeline's final estimator on the transformed space with
    ``groups[j]`` the input feature that produced transformed column ``j``."""

    model: Any
    accepts: str
    transform: Any = None  # the pipeline's preprocessing steps (a fitted scikit-learn transformer)
    columns: list[str] | None = None  # transformed column names
    groups: np.ndarray | None = None  # (transformed columns,) index into the input features

    def prepare(self, X: pd.DataFrame) -> pd.DataFrame:
        if self.transform is None:
            return X
        import pandas as pd

        out = self.transform.transform(X)
        if hasattr(out, "toarray"):  # a sparse one-hot output
            out = out.toarray()
        out = np.asarray(out, dtype=float)
        if out.shape[1] != len(self.columns or ()):
            raise ModelError(
                f"the pipeline's preprocessing returned {out.shape[1]} columns. Expected {len(self.columns or ())}."
            )
        return pd.DataFrame(out, columns=self.columns, index=X.index)

    def map_back(self, values: np.ndarray, n_features: int) -> np.ndarray:
        """Sum each input feature's transformed columns: exact, so additivity carries over."""
        if self.groups is None:
            return values
        onto = np.zeros((values.shape[1], n_features))
        onto[np.arange(values.shape[1]), self.groups] = 1.0
        return values @ onto


def _plan(model: Any, features: list[str]) -> _Plan:
    name = _qualname(model)
    if name.startswith(_CATEGORICAL_NATIVE):
        return _Plan(model, "category")
    if name != "sklearn.pipeline.Pipeline" or len(model.steps) < 2:
        return _Plan(model, "numeric")
    pre, final = model[:-1], model[-1]
    labels = _output_labels(pre, list(features))
    if labels is None:
        raise ModelError(
            "the pipeline's preprocessing cannot be mapped back to its input features "
            "(supported: ColumnTransformer, OneHotEncoder, one-to-one transformers, passthrough, drop)"
        )
    try:
        columns = [str(c) for c in pre.get_feature_names_out(features)]
    except Exception:  # a transformer without names: positional names keep the mapping
        columns = [f"t{j}" for j in range(len(labels))]
    if len(columns) != len(labels):
        columns = [f"t{j}" for j in range(len(labels))]
    index = {f: i for i, f in enumerate(features)}
    return _Plan(final, "any", pre, columns, np.array([index[lab] for lab in labels], dtype=int))


def _output_labels(t: Any, labels: list[str]) -> list[str] | None:
    """For each output column of fitted transformer ``t`` given inputs labelled ``labels``, the input
    feature it comes from; None if that cannot be told from the transformer's structure."""
    if isinstance(t, str):
        return list(labels) if t == "passthrough" else [] if t == "drop" else None
    name = _qualname(t)
    if name == "sklearn.pipeline.Pipeline":
        for _, step in t.steps:
            if step is None or step == "passthrough":
                continue
            out = _output_labels(step, labels)
            if out is None:
                return None
            labels = out
        return labels
    if name == "sklearn.compose._column_transformer.ColumnTransformer":
        n_out = max((s.stop for s in t.output_indices_.values()), default=0)
        result: list[str | None] = [None] * n_out
        for tname, trans, cols in t.transformers_:
            sl = t.output_indices_.get(tname)
            if sl is None or sl.stop == sl.start:
                continue
            picked = _pick(cols, labels, getattr(t, "feature_names_in_", None))
            if picked is None:
                return None
            out = _output_labels(trans, picked)
            if out is None or len(out) != sl.stop - sl.start:
                return None
            result[sl] = out
        return None if any(r is None for r in result) else [str(r) for r in result]
    if name == "sklearn.preprocessing._encoders.OneHotEncoder":
        counts = t._compute_n_features_outs() if hasattr(t, "_compute_n_features_outs") else None
        if counts is None or len(counts) != len(labels):
            return None
        return [lab for lab, n in zip(labels, counts, strict=True) for _ in range(int(n))]
    try:
        n_out = len(t.get_feature_names_out())
    except Exception:
        return None
    if n_out == len(labels):  # scalers, ordinal encoders, imputers without indicators: one-to-one
        return list(labels)
    if len(set(labels)) == 1:
        return [labels[0]] * n_out
    return None


def _pick(cols: Any, labels: list[str], names_in: Any) -> list[str] | None:
    """The labels of the columns a ColumnTransformer entry selected (names, indices, a slice or a mask)."""
    idx = np.arange(len(labels))
    if isinstance(cols, slice):
        return [labels[i] for i in idx[cols]]
    seq = list(np.atleast_1d(np.asarray(cols, dtype=object))) if not isinstance(cols, str) else [cols]
    if seq and all(isinstance(c, (bool, np.bool_)) for c in seq):
        return [labels[i] for i in idx[np.asarray(seq, dtype=bool)]]
    if all(isinstance(c, (int, np.integer)) for c in seq):
        return [labels[int(c)] for c in seq]
    names = list(names_in) if names_in is not None else None
    if names is None or not all(isinstance(c, str) and c in names for c in seq):
        return None
    return [labels[names.index(c)] for c in seq]


def _sample(X: pd.DataFrame, size: int, rng: np.random.Generator) -> pd.DataFrame:
    if len(X) <= size:
        return X
    idx = np.sort(rng.choice(len(X), size=size, replace=False))
    return X.iloc[idx]


def _stability(
    features: list[str], importance: np.ndarray, ref: Mapping[str, float], top_k: int
) -> list[Metric]:
    from scipy.stats import spearmanr

    common = [i for i, f in enumerate(features) if f in ref and ref[f] is not None]
    counts = {"features_compared": len(common), "top_k": min(top_k, len(common))}
    if len(common) < 2:
        reason = (
            f"reference shares {len(common)} feature(s) with the current explanation: at least 2 are needed"
        )
        return [
            Metric.undefined("importance_rank_correlation", reason, counts=counts),
            Metric.undefined("importance_topk_overlap", reason, counts=counts),
        ]
    cur = importance[common]
    old = np.array([ref[features[i]] for i in common], dtype=float)
    out = []
    if np.ptp(cur) == 0 or np.ptp(old) == 0:
        out.append(
            Metric.undefined(
                "importance_rank_correlation",
                "all importances are equal on one side: no ranking",
                counts=counts,
            )
        )
    else:
        out.append(Metric("importance_rank_correlation", float(spearmanr(cur, old).statistic), counts=counts))
    k = min(top_k, len(common))
    # Ties broken by feature order so the top-k set is deterministic.
    top_cur = {common[i] for i in np.argsort(-cur, kind="stable")[:k]}
    top_old = {common[i] for i in np.argsort(-old, kind="stable")[:k]}
    names = {
        "current_top": [features[i] for i in sorted(top_cur)],
        "reference_top": [features[i] for i in sorted(top_old)],
    }
    out.append(Metric("importance_topk_overlap", len(top_cur & top_old) / k, counts={**counts, **names}))
    return out


def reason_codes(
    spec: ColumnSpec, features: list[str], sample: pd.DataFrame, values: np.ndarray, per_row: int
) -> pd.DataFrame:
    """Top contributions per decision: feature, direction and contribution, with zh/en labels."""
    import pandas as pd

    k = min(per_row, len(features))
    order = np.argsort(-np.abs(values), axis=1, kind="stable")[:, :k]
    rows = []
    labels = {f.name: (f.label_zh or f.name, f.label_en or f.name) for f in spec.features}
    raw = sample.to_numpy()
    for r, idx in enumerate(order):
        for rank, j in enumerate(idx, start=1):
            c = float(values[r, j])
            if c == 0.0:
                continue
            up = c > 0
            rows.append(
                {
                    "row_id": str(sample.index[r]),
                    "rank": rank,
                    "feature": features[j],
                    "label_zh": labels[features[j]][0],
                    "label_en": labels[features[j]][1],
                    "value": raw[r, j],
                    "contribution": c,
                    "direction": "increases score" if up else "decreases score",
                    "direction_zh": "提高评分" if up else "降低评分",
                }
            )
    cols = [
        "row_id",
        "rank",
        "feature",
        "label_zh",
        "label_en",
        "value",
        "contribution",
        "direction",
        "direction_zh",
    ]
    return pd.DataFrame(rows, columns=cols)


def _artifacts(
    folder: str,
    spec: ColumnSpec,
    features: list[str],
    importance: np.ndarray,
    sample: pd.DataFrame,
    cur: _Explanation,
    per_row: int,
) -> list[Artifact]:
    import pandas as pd

    labels = {f.name: f for f in spec.features}
    imp = pd.DataFrame(
        {
            "feature": features,
            "label_zh": [labels[f].label_zh or "" for f in features],
            "label_en": [labels[f].label_en or "" for f in features],
            "mean_abs_shap": importance,
        }
    ).sort_values("mean_abs_shap", ascending=False, kind="stable")
    out: list[Artifact | None] = [
        _write(folder, "shap_importance.csv", _csv(imp), "global importance: mean |SHAP| per feature"),
        _write(folder, "shap_importance.png", _bar_png(imp, cur.output_space), "global importance bar chart"),
        _write(
            folder,
            "reason_codes.csv",
            _csv(reason_codes(spec, features, sample, cur.values, per_row)),
            "top reason codes per explained decision",
        ),
    ]
    return [a for a in out if a is not None]


def _csv(df: pd.DataFrame) -> bytes:
    buf = io.StringIO()
    df.to_csv(buf, index=False, lineterminator="\n")
    return buf.getvalue().encode("utf-8")


@styled  # CJK-capable font for Chinese feature and group names
def _bar_png(imp: pd.DataFrame, space: str) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 0.35 * len(imp) + 1.2), dpi=80)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    y = np.arange(len(imp))[::-1]
    ax.barh(y, imp["mean_abs_shap"].to_numpy(), color="#4472c4")
    ax.set_yticks(y, list(imp["feature"]), fontsize=8)
    ax.set_xlabel(f"mean |SHAP| ({space})")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


__all__ = ["EXPLAINERS", "ExplainabilityMonitor", "model_family", "reason_codes"]
