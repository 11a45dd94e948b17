"""SHAP explanations of a binary classifier: global importance, reason codes, additivity and stability.

The explainer is chosen from the model: TreeExplainer for tree ensembles (LightGBM, scikit-learn trees,
forests and gradient boosting), LinearExplainer for scikit-learn linear models, else KernelExplainer on the
positive-class probability with ``l1_reg=False`` (its default would keep only 10 features). Background data
is an explicit, seeded sample whose size is a parameter and whose digest is recorded: shap would otherwise
subsample a numpy background to 100 rows without saying so.

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
}


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
    ) -> None:
        with warnings.catch_warnings():
            # shap's import touches matplotlib colormap APIs that warn about their own future changes.
            warnings.simplefilter("ignore", PendingDeprecationWarning)
            import shap

        self.model, self.family, self.features, self.p = model, family, features, p
        self.background = background
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

        return predict_scores(self.model, pd.DataFrame(x, columns=self.features))

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
                values = self.explainer.shap_values(X, check_additivity=False)
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
        if self.family == "linear":
            if hasattr(m, "decision_function"):
                return np.asarray(m.decision_function(X), float).ravel(), "log-odds"
            return np.asarray(m.predict(X), float).ravel(), "raw"
        if name.startswith("lightgbm."):
            return np.asarray(m.predict(X, raw_score=True), float).ravel(), "log-odds"
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
            frame = load_frame(current)
            X, n_bad = _clean(frame, features, "current")
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
                ref_X, ref_bad = _clean(ref_frame, features, "reference")
        except (DataInputError, ModelError) as exc:
            return invalid_result(self.kind, self.version, p, str(exc), seed=seed)

        fps = [fingerprint(frame, "current")]
        if ref_frame is not None:
            fps.append(fingerprint(ref_frame, "reference"))
        versions = library_versions(
            "shap", "scikit-learn", "lightgbm", "matplotlib"
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

        family = model_family(fitted) if p["explainer"] == "auto" else p["explainer"]
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
            explainer = _Explainer(fitted, family, features, background, p)
            cur = explainer.explain(sample)
            ref_imp = None
            if ref_frame is not None and len(ref_X):
                ref_imp = np.abs(explainer.explain(_sample(ref_X, int(p["sample_size"]), rng)).values).mean(
                    axis=0
                )
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


def _clean(frame: pd.DataFrame, features: list[str], role: str) -> tuple[pd.DataFrame, int]:
    """Numeric feature columns with rows holding NaN/inf dropped; strings are refused, never coerced."""
    import pandas as pd

    check_columns(frame, features, role)
    X = frame[features]
    for col in features:
        dtype = X[col].dtype
        if pd.api.types.is_bool_dtype(dtype):
            continue
        if not pd.api.types.is_numeric_dtype(dtype):
            non_null = X[col].dropna()
            example = f", e.g. {non_null.iloc[0]!r}" if len(non_null) else ""
            raise DataInputError(
                f"{role} feature {col} must be numeric. Got dtype {dtype}{example} instead; encode it before explaining"
            )
    values = X.to_numpy(dtype=float, na_value=np.nan)
    finite = np.isfinite(values).all(axis=1)
    n_bad = int((~finite).sum())
    return (X[finite] if n_bad else X), n_bad


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
