"""Champion/challenger: two models' scores on the same labelled rows, their AUC difference with a DeLong
confidence interval, overall and per segment.

DeLong, DeLong & Clarke-Pearson (1988) give the covariance of correlated AUCs from the placement values
(structural components) of each positive and each negative; Sun & Xu (2014, "Fast implementation of
DeLong's algorithm for comparing the areas under correlated receiver operating characteristic curves",
IEEE SPL 21(11)) compute those placements from mid-ranks in O(N log N) instead of O(m·n). With ``m``
positives and ``n`` negatives, for model ``r``:

* ``T_z`` mid-ranks of all scores, ``T_x`` of the positives alone, ``T_y`` of the negatives alone;
* ``AUC_r = (Σ_i T_z(x_i) / m − (m + 1) / 2) / n`` (ties count ½, as ``sklearn.metrics.roc_auc_score``);
* ``V10_i = (T_z(x_i) − T_x(x_i)) / n`` (share of negatives below positive ``i``),
  ``V01_j = 1 − (T_z(y_j) − T_y(y_j)) / m`` (share of positives above negative ``j``);
* ``S = cov(V10) / m + cov(V01) / n`` (sample covariances across models, ddof = 1).

The difference ``Δ = AUC_challenger − AUC_champion`` has variance ``S_cc + S_hh − 2 S_ch``; the interval is
``Δ ± z_{1−α/2} · sqrt(var)`` and the two-sided p-value ``2 Φ(−|Δ| / sqrt(var))``.

``ChallengerMonitor`` (kind ``challenger``) reads the two score columns from the data (the caller scores
both versions first): ``auc_champion``, ``auc_challenger``, ``auc_difference`` (with ``ci_low``/``ci_high``),
``auc_difference_ci_low`` (the interval's lower end, what a policy grades), ``auc_difference_pvalue``;
with ``segments`` the same per segment (group = ``column=value``), a segment with fewer than
``min_segment_size`` rows or without both classes being insufficient data.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from monitors.base import (
    ColumnSpec,
    DataInputError,
    Metric,
    MetricStatus,
    Monitor,
    MonitorResult,
    ParameterError,
    ParamSpec,
    invalid_result,
    library_versions,
    load_frame,
    numeric_values,
)


def midrank(x: np.ndarray) -> np.ndarray:
    """Mid-ranks (1-based, ties averaged) of ``x``, as ``scipy.stats.rankdata(x, method="average")``:
    run boundaries of the sorted values, the average rank of each run."""
    x = np.asarray(x, dtype=float)
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    n = xs.size
    if n == 0:
        return np.empty(0)
    starts = np.flatnonzero(np.concatenate(([True], xs[1:] != xs[:-1])))
    ends = np.concatenate((starts[1:], [n]))
    avg = 0.5 * (starts + ends - 1) + 1.0
    ranks = np.repeat(avg, ends - starts)
    out = np.empty(n, dtype=float)
    out[order] = ranks
    return out


@dataclass(frozen=True)
class DeLong:
    aucs: np.ndarray  # per model
    covariance: np.ndarray  # k × k
    positives: int
    negatives: int


def delong(scores: Sequence[np.ndarray], y: np.ndarray) -> DeLong:
    """AUCs and their DeLong covariance for ``k`` score vectors on the same rows (Sun & Xu's algorithm)."""
    y = np.asarray(y)
    pos = y == 1
    m, n = int(pos.sum()), int((~pos).sum())
    if m < 2 or n < 2:
        raise DataInputError(f"DeLong needs at least 2 positives and 2 negatives. Got {m} and {n} instead.")
    k = len(scores)
    v10 = np.empty((k, m))
    v01 = np.empty((k, n))
    aucs = np.empty(k)
    for r, s in enumerate(scores):
        s = np.asarray(s, dtype=float)
        x, yy = s[pos], s[~pos]
        tz = midrank(np.concatenate((x, yy)))
        tx, ty = midrank(x), midrank(yy)
        aucs[r] = (tz[:m].sum() / m - (m + 1) / 2.0) / n
        v10[r] = (tz[:m] - tx) / n
        v01[r] = 1.0 - (tz[m:] - ty) / m
    sx = np.atleast_2d(np.cov(v10, ddof=1))
    sy = np.atleast_2d(np.cov(v01, ddof=1))
    return DeLong(aucs=aucs, covariance=sx / m + sy / n, positives=m, negatives=n)


@dataclass(frozen=True)
class AucComparison:
    auc_champion: float
    auc_challenger: float
    difference: float  # challenger − champion
    se: float
    ci_low: float
    ci_high: float
    pvalue: float
    positives: int
    negatives: int


def compare_auc(
    champion: np.ndarray, challenger: np.ndarray, y: np.ndarray, confidence: float = 0.95
) -> AucComparison:
    """DeLong comparison of two correlated AUCs (challenger − champion)."""
    from scipy import stats

    d = delong([champion, challenger], y)
    c = d.covariance
    var = float(c[0, 0] + c[1, 1] - 2 * c[0, 1])
    diff = float(d.aucs[1] - d.aucs[0])
    se = math.sqrt(max(var, 0.0))
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    p = (1.0 if diff == 0.0 else 0.0) if se == 0.0 else float(2 * stats.norm.sf(abs(diff) / se))
    return AucComparison(
        auc_champion=float(d.aucs[0]),
        auc_challenger=float(d.aucs[1]),
        difference=diff,
        se=se,
        ci_low=diff - z * se,
        ci_high=diff + z * se,
        pvalue=p,
        positives=d.positives,
        negatives=d.negatives,
    )


def _is_int_ge(lo: int):
    return lambda v: isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= lo


class ChallengerMonitor(Monitor):
    """AUC of a challenger against the champion on the same rows (see the module docstring)."""

    kind = "challenger"
    version = "1"
    metrics = (
        "rows",
        "auc_champion",
        "auc_challenger",
        "auc_difference",
        "auc_difference_ci_low",
        "auc_difference_pvalue",
    )
    needs = frozenset()
    params = (
        ParamSpec(
            "champion_score",
            None,
            "the champion's score column",
            lambda v: v is None or (isinstance(v, str) and v),
        ),
        ParamSpec(
            "challenger_score",
            None,
            "the challenger's score column",
            lambda v: v is None or (isinstance(v, str) and v),
        ),
        ParamSpec(
            "seed",
            0,
            "an integer in [0, 2**32 - 1]",
            lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**32,
        ),
        ParamSpec(
            "segments",
            [],
            "a list of column names",
            lambda v: isinstance(v, (list, tuple)) and all(isinstance(c, str) for c in v),
        ),
        ParamSpec("min_segment_size", 100, "an integer >= 1", _is_int_ge(1)),
        ParamSpec(
            "confidence",
            0.95,
            "a float in (0, 1)",
            lambda v: isinstance(v, float) and 0.0 < v < 1.0,
        ),
    )

    def run(
        self,
        spec: ColumnSpec,
        *,
        current: Any,
        params: Mapping[str, Any] | None = None,
        artifacts_dir: str | Path | None = None,
    ) -> MonitorResult:
        p = self.validate_params(params)
        for name in ("champion_score", "challenger_score"):
            if p[name] is None:
                raise ParameterError(f"{name} must name a score column. Got None instead.")
        if not spec.target:
            raise ParameterError("spec.target must name the label column. Got None instead.")
        try:
            frame = load_frame(current)
            cols = [spec.target, p["champion_score"], p["challenger_score"], *p["segments"]]
            missing = [c for c in cols if c not in frame.columns]
            if missing:
                raise DataInputError(f"data is missing column(s) {missing}")
            y_all = (frame[spec.target] == spec.positive_label).to_numpy()
            y_na = frame[spec.target].isna().to_numpy()
            a_all = numeric_values(frame[p["champion_score"]], p["champion_score"])
            b_all = numeric_values(frame[p["challenger_score"]], p["challenger_score"])
        except DataInputError as exc:
            return invalid_result(self.kind, self.version, p, str(exc))
        from monitors.base import fingerprint

        fps = (fingerprint(frame, "current"),)
        usable = ~y_na & np.isfinite(a_all) & np.isfinite(b_all)
        notes = []
        if (~usable).any():
            notes.append(
                f"{int((~usable).sum())} row(s) without a label or a finite score on both models excluded"
            )
        metrics = self._compare(y_all, a_all, b_all, usable, None, p, overall=True)
        for col in p["segments"]:
            values = frame[col]
            for value in sorted(values.dropna().unique().tolist(), key=str) + (
                [None] if values.isna().any() else []
            ):
                mask = values.isna().to_numpy() if value is None else (values == value).to_numpy()
                label = f"{col}={'__missing__' if value is None else value}"
                metrics += self._compare(y_all, a_all, b_all, usable & mask, label, p, overall=False)
        status, reason = MetricStatus.OK, None
        overall = next(m for m in metrics if m.name == "auc_difference" and m.group is None)
        if overall.status is not MetricStatus.OK:
            status, reason = overall.status, overall.reason
        artifacts = []
        if artifacts_dir is not None:
            art = _write_table(Path(artifacts_dir), metrics)
            artifacts = [art] if art is not None else []
        return MonitorResult(
            kind=self.kind,
            monitor_version=self.version,
            params=p,
            metrics=tuple(metrics),
            status=status,
            reason=reason,
            artifacts=tuple(artifacts),
            fingerprints=fps,
            seed=p["seed"],
            library_versions=library_versions(),
            notes=tuple(notes),
        )

    @staticmethod
    def _compare(y, a, b, mask, label, p, *, overall: bool) -> list[Metric]:
        rows = int(mask.sum())
        yy = y[mask].astype(int)
        counts = {"rows": rows, "positives": int(yy.sum()), "negatives": int(rows - yy.sum())}
        out = [Metric("rows", float(rows), group=label, counts=counts)]
        names = (
            "auc_champion",
            "auc_challenger",
            "auc_difference",
            "auc_difference_ci_low",
            "auc_difference_pvalue",
        )
        why = None
        if not overall and rows < p["min_segment_size"]:
            why = f"segment {label} has {rows} rows, fewer than min_segment_size {p['min_segment_size']}"
        elif counts["positives"] < 2 or counts["negatives"] < 2:
            where = f"segment {label}" if label else "the data"
            why = f"{where} has {counts['positives']} positives and {counts['negatives']} negatives: DeLong needs at least 2 of each"
        if why:
            return out + [Metric.undefined(n, why, group=label, counts=counts) for n in names]
        c = compare_auc(a[mask], b[mask], yy, p["confidence"])
        ci = {"ci_low": c.ci_low, "ci_high": c.ci_high}
        stats = {**counts, "se": c.se, "confidence": p["confidence"], "method": "delong (Sun & Xu 2014)"}
        return [
            *out,
            Metric("auc_champion", c.auc_champion, group=label, counts=counts),
            Metric("auc_challenger", c.auc_challenger, group=label, counts=counts),
            Metric("auc_difference", c.difference, group=label, counts=stats, **ci),
            Metric("auc_difference_ci_low", c.ci_low, group=label, counts=stats),
            Metric("auc_difference_pvalue", c.pvalue, group=label, counts=stats),
        ]


def _write_table(folder: Path, metrics: list[Metric]) -> Any:
    import pandas as pd

    from monitors.base import write_artifact

    rows = [
        {
            "segment": m.group,
            "metric": m.name,
            "value": m.value,
            "ci_low": m.ci_low,
            "ci_high": m.ci_high,
            "status": m.status.value,
            "reason": m.reason,
        }
        for m in metrics
    ]
    text = pd.DataFrame(rows).to_csv(index=False, lineterminator="\n").encode()
    return write_artifact(folder, "challenger.csv", text, "AUC comparison per segment")


__all__ = ["AucComparison", "ChallengerMonitor", "DeLong", "compare_auc", "delong", "midrank"]
