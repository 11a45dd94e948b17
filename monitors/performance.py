"""Classification performance of a binary scoring model on labelled data.

Aggregate, then compute: the rows (label, score) are reduced by :func:`monitors.engines.pandas.reduce_score_label`
to cumulative true/false positives per distinct score, a confusion matrix at the threshold, the sums behind the
Brier score and per-decile calibration sums; the metrics come from those statistics only.

Scores come from, in this order: a ``model=`` (an object with ``predict_proba``/``predict`` or an MLflow model
URI, run on the spec's feature columns), the spec's ``score`` column when it names one (missing from the data:
invalid_input, never a silent switch to hard labels), else its ``prediction`` column (hard labels, compared
with ``positive_label`` when they are not numbers). The label is ``target == positive_label``.

Metrics (dataset level)
-----------------------
``auc``            area under the ROC curve (trapezoids over distinct scores, ties counted half), equal to
                   ``sklearn.metrics.roc_auc_score``; with a single class present it is insufficient_data with
                   the class counts in the reason, never 0.5.
``gini``           ``2 · auc − 1``.
``ks_statistic``   ``max |TPR − FPR|`` over score thresholds.
``accuracy``, ``precision``, ``recall``  at ``threshold`` (predicted positive when ``score >= threshold``,
                   default 0.5); precision is undefined without predicted positives, recall without positives.
``brier``          mean of ``(score − label)²``, equal to ``sklearn.metrics.brier_score_loss``; scores outside
                   [0, 1] are not probabilities, so Brier and calibration are invalid_input then.
``positive_rate``  share of rows whose label is the positive class (the predicted share is in its counts).
``calibration_observed`` / ``calibration_predicted`` (group=<bin label>) and ``max_calibration_gap``: rows are
                   binned on score deciles (the engine's quantile bins); observed = share of positives,
                   predicted = mean score per bin; the table is also the ``calibration.csv`` artifact.

With ``baseline=`` (an earlier performance ``MonitorResult``), or ``reference=`` data (whose own result is
then the baseline): ``auc_drop`` (baseline auc − current auc) and
``score_psi``, the PSI of the current scores on the baseline's score-decile bins (same definition and
``epsilon`` smoothing as the drift monitor). Every performance result carries its score histogram in
``metric("auc").counts["score_histogram"]`` (bin edges and counts including NaN/±inf) so that it can serve as a
baseline later.

Rows whose label is missing or whose score is NaN/±inf are dropped and counted in the notes. Bad input never
raises: unreadable data, missing columns and a model that fails to load or predict give ``invalid_input``;
empty data, or no row with both a label and a finite score, give ``insufficient_data``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pandas is imported where it runs: declarations must load without it
    import pandas as pd

from monitors.base import (
    ColumnSpec,
    DataInputError,
    Metric,
    MetricStatus,
    ModelError,
    Monitor,
    MonitorResult,
    ParameterError,
    ParamSpec,
    check_model,
    fingerprint,
    invalid_result,
    library_versions,
    load_frame,
    numeric_values,
    predict_scores,
    write_artifact,
)
from monitors.drift import _is_float, _is_int, psi_from_counts
from monitors.engines.pandas import ScoreLabelReduction, reduce_numeric, reduce_score_label


class PerformanceMonitor(Monitor):
    """AUC, Gini, KS, confusion metrics, Brier and calibration of a binary score (see the module docstring)."""

    kind = "performance"
    version = "1"
    metrics = (
        "auc",
        "gini",
        "ks_statistic",
        "accuracy",
        "precision",
        "recall",
        "brier",
        "positive_rate",
        "auc_drop",
        "score_psi",
        "calibration_observed",
        "calibration_predicted",
        "max_calibration_gap",
    )
    needs = frozenset({"reference", "baseline"})
    params = (
        ParamSpec("threshold", 0.5, "a float in [0, 1]", _is_float(0.0, 1.0)),
        ParamSpec("calibration_bins", 10, "an integer in [2, 100]", _is_int(2, 100)),
        ParamSpec("n_bins", 10, "an integer in [2, 1000]", _is_int(2, 1000)),
        ParamSpec("epsilon", 1e-4, "a float in (0, 0.01]", _is_float(0.0, 0.01, lo_open=True)),
        # Nothing here is random; the seed is recorded like every monitor's so results compare alike.
        ParamSpec("seed", 0, "an integer in [0, 2**32 - 1]", _is_int(0, 2**32 - 1)),
    )

    def run(
        self,
        spec: ColumnSpec,
        *,
        current: pd.DataFrame | str | Path | None = None,
        reference: pd.DataFrame | str | Path | None = None,
        model: Any = None,
        baseline: MonitorResult | None = None,
        params: Mapping[str, Any] | None = None,
        artifacts_dir: str | Path | None = None,
    ) -> MonitorResult:
        import pandas as pd

        p = self.validate_params(params)
        if current is None:
            raise ParameterError("current must be a DataFrame or a Parquet/CSV path. Got None instead.")
        if baseline is not None and not (isinstance(baseline, MonitorResult) and baseline.kind == self.kind):
            got = baseline.kind if isinstance(baseline, MonitorResult) else type(baseline).__name__
            raise ParameterError(f"baseline must be a performance MonitorResult. Got {got!r} instead.")
        if not spec.target:
            raise ParameterError("spec.target must name the label column. Got None instead.")
        if reference is not None:
            if baseline is not None:
                raise ParameterError("baseline must be None when reference data is given. Got both instead.")
            # The reference data's own performance is the baseline; its fingerprint is carried along.
            baseline = self.run(spec, current=reference, model=model, params=params)
        out_params = dict(p)
        if baseline is not None:
            out_params["baseline_digest"] = baseline.digest()

        fingerprints = []
        notes: list[str] = []
        if reference is not None and baseline is not None:
            fingerprints += [
                replace(f, role="reference") for f in baseline.fingerprints if f.role == "current"
            ]
            if baseline.status is not MetricStatus.OK:
                notes.append(f"reference data: {baseline.reason}")

        def invalid(reason: str) -> MonitorResult:
            return invalid_result(
                self.kind,
                self.version,
                out_params,
                reason,
                fingerprints=tuple(fingerprints),
                seed=p["seed"],
                notes=tuple(notes),
            )

        try:
            frame = load_frame(current)
        except DataInputError as exc:
            return invalid(str(exc))
        fingerprints.append(fingerprint(frame, "current"))
        if spec.target not in frame.columns:
            return invalid(
                f"current data is missing the target column {spec.target!r}; it has {[str(c) for c in frame.columns][:20]}"
            )

        try:
            scores, source = self._scores(spec, frame, model)
        except (DataInputError, ModelError) as exc:
            return invalid(str(exc))
        notes.append(f"scores from {source}")
        if len(frame) == 0:
            return MonitorResult(
                kind=self.kind,
                monitor_version=self.version,
                params=out_params,
                metrics=(),
                status=MetricStatus.INSUFFICIENT_DATA,
                reason="current data has 0 rows",
                fingerprints=tuple(fingerprints),
                seed=p["seed"],
                library_versions=library_versions(),
                notes=tuple(notes),
            )

        target = frame[spec.target]
        labelled = target.notna().to_numpy()
        y_all = (target == spec.positive_label).to_numpy(dtype=bool)
        finite = np.isfinite(scores)
        keep = labelled & finite
        dropped_label, dropped_score = int((~labelled).sum()), int((labelled & ~finite).sum())
        if dropped_label:
            notes.append(f"dropped {dropped_label} row(s) with a missing target")
        if dropped_score:
            notes.append(f"dropped {dropped_score} labelled row(s) whose score is NaN or ±inf")
        histogram = reduce_numeric(scores, n_bins=p["n_bins"], sample_size=0)
        hist_counts = {
            "score_histogram": {
                "edges": [float(e) for e in histogram.edges],
                "counts": [int(c) for c in histogram.full_counts()],
            }
        }
        if not keep.any():
            return MonitorResult(
                kind=self.kind,
                monitor_version=self.version,
                params=out_params,
                metrics=(
                    Metric.undefined(
                        "auc", "no row has both a target and a finite score", counts=hist_counts
                    ),
                ),
                status=MetricStatus.INSUFFICIENT_DATA,
                reason=f"no row has both a target and a finite score ({len(frame)} rows, {int(finite.sum())} finite scores)",
                fingerprints=tuple(fingerprints),
                seed=p["seed"],
                library_versions=library_versions(),
                notes=tuple(notes),
            )
        red = reduce_score_label(
            y_all[keep], scores[keep], threshold=p["threshold"], calibration_bins=p["calibration_bins"]
        )
        metrics, calibration = _metrics(red, spec, hist_counts)
        if baseline is not None:
            metrics += _baseline_metrics(baseline, metrics[0], scores, p)

        artifacts = []
        if artifacts_dir is not None:
            folder = Path(artifacts_dir)
            csv = pd.DataFrame(calibration).to_csv(index=False, lineterminator="\n").encode()
            artifacts.append(
                write_artifact(folder, "calibration.csv", csv, "calibration table on score deciles")
            )
            summary = {
                "params": out_params,
                "metrics": {m.name: m.value for m in metrics if m.group is None},
                "confusion": {
                    "tp": red.tp,
                    "fp": red.fp,
                    "tn": red.tn,
                    "fn": red.fn,
                    "threshold": red.threshold,
                },
            }
            text = json.dumps(summary, sort_keys=True, indent=2).encode()
            artifacts.append(write_artifact(folder, "performance_summary.json", text, "performance summary"))
        return MonitorResult(
            kind=self.kind,
            monitor_version=self.version,
            params=out_params,
            metrics=tuple(metrics),
            artifacts=tuple(a for a in artifacts if a is not None),
            fingerprints=tuple(fingerprints),
            seed=p["seed"],
            library_versions=library_versions(),
            notes=tuple(notes),
        )

    @staticmethod
    def _scores(spec: ColumnSpec, frame: pd.DataFrame, model: Any) -> tuple[np.ndarray, str]:
        import pandas as pd

        if model is not None:
            missing = [c for c in spec.feature_names if c not in frame.columns]
            if missing:
                raise DataInputError(
                    f"current data is missing feature column(s) {missing} that the model needs"
                )
            loaded = check_model(model)
            scores = predict_scores(loaded, frame[spec.feature_names])
            if scores.shape != (len(frame),):
                raise ModelError(
                    f"model must return one score per row. Got shape {scores.shape} for {len(frame)} rows instead."
                )
            return scores, f"model {model if isinstance(model, (str, Path)) else type(model).__name__}"
        # The spec's score column when it names one (a missing one is an error, not a silent switch to hard
        # labels, which would change what AUC means), else its prediction column.
        if spec.score:
            if spec.score not in frame.columns:
                raise DataInputError(
                    f"current data is missing the score column {spec.score!r} and no model was given"
                )
            return numeric_values(frame[spec.score], spec.score), f"column {spec.score!r}"
        if spec.prediction:
            if spec.prediction not in frame.columns:
                raise DataInputError(
                    f"current data is missing the prediction column {spec.prediction!r} and no model was given"
                )
            pred = frame[spec.prediction]
            if pd.api.types.is_numeric_dtype(pred.dtype):
                return numeric_values(
                    pred, spec.prediction
                ), f"prediction column {spec.prediction!r} (hard labels)"
            values = (pred == spec.positive_label).to_numpy(dtype=float)
            values[pred.isna().to_numpy()] = np.nan
            return values, f"prediction column {spec.prediction!r} == {spec.positive_label!r}"
        raise DataInputError("no scores: the spec names no score or prediction column and no model was given")


def _metrics(
    red: ScoreLabelReduction, spec: ColumnSpec, hist_counts: dict[str, Any]
) -> tuple[list[Metric], list[dict]]:
    n, pos, neg = red.n, red.positives, red.negatives
    base_counts = {"n": n, "positives": pos, "negatives": neg}
    out: list[Metric] = []
    if pos == 0 or neg == 0:
        reason = (
            f"a single class is present (positives={pos}, negatives={neg}, positive_label={spec.positive_label!r}): "
            "ranking metrics are undefined"
        )
        out.append(Metric.undefined("auc", reason, counts={**base_counts, **hist_counts}))
        out.append(Metric.undefined("gini", reason))
        out.append(Metric.undefined("ks_statistic", reason))
    else:
        tpr = np.r_[0.0, red.tps / pos]
        fpr = np.r_[0.0, red.fps / neg]
        auc = float(np.trapezoid(tpr, fpr))
        out.append(Metric("auc", auc, counts={**base_counts, **hist_counts}))
        out.append(Metric("gini", 2 * auc - 1))
        i = int(np.argmax(np.abs(tpr - fpr)))
        out.append(
            Metric(
                "ks_statistic",
                float(abs(tpr[i] - fpr[i])),
                counts={"at_score": float(red.thresholds[i - 1]) if i else None},
            )
        )
    conf = {"tp": red.tp, "fp": red.fp, "tn": red.tn, "fn": red.fn, "threshold": red.threshold}
    out.append(Metric("accuracy", (red.tp + red.tn) / n, counts=conf))
    if red.tp + red.fp == 0:
        out.append(
            Metric.undefined("precision", f"no row has score >= threshold {red.threshold}", counts=conf)
        )
    else:
        out.append(Metric("precision", red.tp / (red.tp + red.fp), counts=conf))
    if pos == 0:
        out.append(Metric.undefined("recall", "no positive rows", counts=conf))
    else:
        out.append(Metric("recall", red.tp / pos, counts=conf))
    out.append(
        Metric(
            "positive_rate", pos / n, counts={**base_counts, "predicted_positive_rate": (red.tp + red.fp) / n}
        )
    )

    calibration: list[dict[str, Any]] = []
    probabilities = red.score_min >= 0.0 and red.score_max <= 1.0
    edges = red.calibration_edges
    lows = [-math.inf, *edges.tolist()]
    highs = [*edges.tolist(), math.inf]
    for i, count in enumerate(red.calibration_counts.tolist()):
        if count == 0:
            continue
        calibration.append(
            {
                "bin": f"bin{i + 1:02d}",
                "lower": lows[i],
                "upper": highs[i],
                "n": int(count),
                "positives": int(red.calibration_positives[i]),
                "observed": float(red.calibration_positives[i]) / count,
                "predicted": float(red.calibration_score_sum[i]) / count,
            }
        )
    if not probabilities:
        reason = f"scores range over [{red.score_min:.4g}, {red.score_max:.4g}], outside [0, 1]: they are not probabilities"
        out.append(Metric.undefined("brier", reason, status=MetricStatus.INVALID_INPUT))
        out.append(Metric.undefined("max_calibration_gap", reason, status=MetricStatus.INVALID_INPUT))
        return out, calibration
    brier = (red.sum_score_sq - 2 * red.sum_score_pos + pos) / n
    out.append(Metric("brier", max(brier, 0.0)))
    for row in calibration:
        c = {
            "n": row["n"],
            "lower": row["lower"] if math.isfinite(row["lower"]) else None,
            "upper": row["upper"] if math.isfinite(row["upper"]) else None,
        }
        out.append(
            Metric(
                "calibration_observed",
                row["observed"],
                group=row["bin"],
                counts={**c, "positives": row["positives"]},
            )
        )
        out.append(Metric("calibration_predicted", row["predicted"], group=row["bin"], counts=c))
    gaps = [abs(r["observed"] - r["predicted"]) for r in calibration]
    worst = int(np.argmax(gaps))
    out.append(Metric("max_calibration_gap", gaps[worst], counts={"bin": calibration[worst]["bin"]}))
    return out, calibration


def _baseline_metrics(
    baseline: MonitorResult, auc: Metric, scores: np.ndarray, p: Mapping[str, Any]
) -> list[Metric]:
    out = []
    try:
        base_auc = baseline.metric("auc")
    except KeyError:
        base_auc = None
    if base_auc is None or base_auc.status is not MetricStatus.OK:
        out.append(Metric.undefined("auc_drop", "the baseline result has no defined auc"))
    elif auc.status is not MetricStatus.OK:
        out.append(Metric.undefined("auc_drop", f"current auc is undefined: {auc.reason}"))
    else:
        out.append(Metric("auc_drop", base_auc.value - auc.value, counts={"baseline_auc": base_auc.value}))  # type: ignore[operator]
    hist = (base_auc.counts if base_auc is not None else {}).get("score_histogram")
    if not hist:
        out.append(Metric.undefined("score_psi", "the baseline result carries no score histogram"))
        return out
    edges = np.asarray(hist["edges"], dtype=float)
    current = reduce_numeric(scores, edges=edges, sample_size=0)
    value = psi_from_counts(np.asarray(hist["counts"]), current.full_counts(), p["epsilon"])
    out.append(Metric("score_psi", value, counts={"bins": len(hist["counts"])}))
    return out
