"""Performance estimated without labels: confidence-based performance estimation (CBPE, as in NannyML).

A credit model's outcome (default) is known months after the decision. Meanwhile, if the model's score is a
calibrated probability, the scores alone say what performance to expect: a row scored ``p`` is a positive
with probability ``p``. Then, at the decision threshold ``t`` (predicted positive when ``score >= t``)::

    expected_tp = Σ_{s >= t} p     expected_fp = Σ_{s >= t} (1 − p)
    expected_fn = Σ_{s <  t} p     expected_tn = Σ_{s <  t} (1 − p)
    estimated_accuracy = (expected_tp + expected_tn) / n

and the expected ROC curve has, at every threshold, ``TPR = Σ_{s >= t} p / Σ p`` and
``FPR = Σ_{s >= t} (1 − p) / Σ (1 − p)``; ``estimated_auc`` is its trapezoid area. Over distinct scores
that is the Mann–Whitney form ``Σ_b P_b · (N_below_b + N_b / 2) / (Σ P · Σ N)`` with ``P_b = Σ p`` and
``N_b = Σ (1 − p)`` of the rows with score ``b`` (ties count half, the trapezoid through a tie group):
NannyML's ``estimate_roc_auc`` walks the same curve row by row.

The reference
-------------
A labelled, scored period the model was not fitted on (the validation hold-out; the governance runner stores
its profile at validation and hands it to monitoring runs). From it:

``reference_auc``    the realised AUC (what ``estimated_auc_drop`` compares with);
``reference_ece``    the expected calibration error on ``calibration_bins`` equal-frequency score bins,
                     ``Σ_g |Σ y − Σ p| / n``.

**Calibration check.** The estimate is only as good as the calibration, so the reference is checked first. The
model is *not estimable* (result status ``not_estimable``, every estimate undefined, the reason in the notes)
when its miscalibration is both **material** (``reference_ece > max_ece``, default 0.02 in probability units:
it bounds the average bias of an expected count per row) and **significant** (Hosmer–Lemeshow reliability
test over the same bins, ``Σ_g (O_g − E_g)² / (E_g (1 − E_g / n_g))`` against χ² with ``calibration_bins``
degrees of freedom, the reference being out of sample, p < ``calibration_alpha``, default 0.001). Why both:
the ECE of a small reference is mostly noise (30 rows a bin move it by 0.05), and the test's power grows with
``n`` so that on a bank-size reference it rejects miscalibration far too small to move the estimate. Nothing
is recalibrated unless asked: ``calibration="isotonic"`` (opt-in, NannyML's behaviour) maps scores through an
isotonic fit of the reference's observed default rate per score bin, and the check then runs on the
calibrated reference (in sample, so it only catches a reference too small to fit).

The confidence band (``estimated_auc_low`` / ``estimated_auc_high``)
--------------------------------------------------------------------
The band is for the AUC that will be *realised* on these very decisions once their outcomes mature. Two
errors separate the two:

* label noise: given the scores, outcomes are Bernoulli(p). Its spread ``sd_current`` comes from a seeded
  parametric bootstrap on the current score bins (``bootstrap`` draws of Binomial(n_b, p̄_b) positives per
  bin, realised AUC of each draw): conditional on the current scores, for the current period's size, with
  no chunking of a reference that may be smaller than the current period (NannyML's sampling error chunks
  the reference instead, which a 1M-row period with a 200k-row reference cannot do);
* calibration bias: what the estimator gets wrong on the reference itself, ``bias = estimated − realised``
  AUC there, which carries over to the current period as far as P(default | score) does (the CBPE
  assumption); it is measured with the reference's own label noise ``sd_reference`` (same bootstrap).

So the band is ``(estimated_auc − bias) ± z · sqrt(sd_current² + sd_reference²)``, ``z`` the normal quantile
of ``confidence`` (0.95), clipped to [0, 1]. It is centred on the bias-corrected value while
``estimated_auc`` stays the plain CBPE number (the one NannyML computes): a band that leaves the estimate out
says that the reference showed the estimator biased by more than its noise. The tests check the nominal rate
over seeds.

Engines and binning
-------------------
Everything reduces to per-bin aggregates (rows, Σ p and, with labels, Σ y) on an equal-width grid of
``score_bins`` bins over [0, 1] (``FLOOR(score · score_bins)``), plus exact sums on each side of the
threshold (the confusion counts are exact on every engine): DuckDB and Spark compute them in one
``GROUP BY``; pandas uses the exact sort over distinct scores for ``estimated_auc``. Cost of binning,
measured on the generated portfolio (200k decisions, PD ≈ 6 %, scores with 6 decimals): the binned
estimate differs from the exact one by 1.0e-7 AUC with 10,000 bins (the default), 1.0e-5 with 1,000 and
1.0e-9 with 100,000, against a band half-width of about 0.01 (``tests/latelabels`` asserts < 1e-6 at the
default); the bootstrap runs on the grid on every engine.

Inputs and bad input
--------------------
``current``: scored decisions (the spec's ``score`` column, a probability of ``positive_label``); labels are
not needed, and when the spec's target column is present and labelled the result adds ``realised_auc``
(exact) and ``realised_auc_in_band`` (1 or 0). ``reference`` (labelled, scored data) or ``profile`` (its
stored aggregates, :meth:`EstimatedPerformanceMonitor.profile`). Scores outside [0, 1] are not probabilities
(invalid_input); NaN/±inf scores are dropped and counted in the notes; too few rows or a reference with fewer
than ``min_class_rows`` of either class is insufficient_data.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

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
    ReferenceProfile,
    fingerprint,
    invalid_result,
    library_versions,
    load_frame,
    numeric_values,
    write_artifact,
)
from monitors.drift import _is_float, _is_int

if TYPE_CHECKING:
    import pandas as pd

KIND = "estimated_performance"

NOT_ESTIMABLE_MESSAGE = (
    "not estimable: the model is not calibrated on the reference (ECE {ece:.4f} > max_ece {max_ece:g} and "
    "Hosmer-Lemeshow p = {p:.3g} < {alpha:g}); the estimate from scores would be biased: "
    "wait for outcomes, or recalibrate the model (or opt in to calibration='isotonic')"
)

ESTIMATES = (
    "estimated_auc",
    "estimated_auc_low",
    "estimated_auc_high",
    "estimated_auc_drop",
    "estimated_accuracy",
    "expected_tp",
    "expected_fp",
    "expected_tn",
    "expected_fn",
)


@dataclass(frozen=True)
class ScoreBins:
    """The sufficient statistics of one period: grid bins (index, rows, Σ p, Σ y or None), the exact
    curve over distinct scores when the rows were seen (pandas), sums each side of the threshold, the exact
    realised AUC when labelled, and how many rows were dropped."""

    index: np.ndarray  # int64, ascending grid bin index (non-empty bins only)
    rows: np.ndarray  # int64
    p_sum: np.ndarray  # float64
    y_sum: np.ndarray | None  # float64, labelled rows only (rows with a label)
    exact_auc: float | None  # CBPE on distinct scores (pandas path)
    above: tuple[int, float]  # (rows, Σ p) with score >= threshold
    below: tuple[int, float]
    realised_auc: float | None
    labelled_rows: int
    positives: int
    dropped_nonfinite: int
    engine: str

    @property
    def n(self) -> int:
        return int(self.rows.sum())


# -- the estimator's arithmetic (numpy only) -------------------------------------------------------------


def mann_whitney_auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """AUC of weights ``pos``/``neg`` per score value in ascending order, ties counted half (the trapezoid
    under the ROC curve through those points). NaN when either total is zero."""
    pos = np.asarray(pos, dtype=float)
    neg = np.asarray(neg, dtype=float)
    tp, tn = pos.sum(), neg.sum()
    if tp <= 0 or tn <= 0:
        return float("nan")
    below = np.cumsum(neg) - neg
    return float(np.sum(pos * (below + 0.5 * neg)) / (tp * tn))


def cbpe_auc(scores: np.ndarray, probabilities: np.ndarray | None = None) -> float:
    """Exact CBPE AUC: the expected ROC over distinct values of ``scores`` with positive weight
    ``probabilities`` (the scores themselves by default)."""
    s = np.asarray(scores, dtype=float)
    if probabilities is None:
        s = np.sort(s)  # the order within a tie does not matter: a tie group is summed
        p = s
    else:
        order = np.argsort(s)
        s, p = s[order], np.asarray(probabilities, dtype=float)[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    pos = np.add.reduceat(p, starts) if len(s) else np.array([])
    cnt = np.diff(np.r_[starts, len(s)])
    return mann_whitney_auc(pos, cnt - pos)


def bootstrap_sd(rows: np.ndarray, p_sum: np.ndarray, draws: int, seed: int) -> float:
    """Spread of the realised AUC over outcomes drawn Bernoulli(p̄_b) per bin, given the binned scores."""
    rng = np.random.default_rng(seed)
    pbar = np.clip(p_sum / np.maximum(rows, 1), 0.0, 1.0)
    pos = rng.binomial(rows[None, :], pbar[None, :], size=(draws, len(rows))).astype(float)
    neg = rows[None, :] - pos
    tp, tn = pos.sum(axis=1), neg.sum(axis=1)
    below = np.cumsum(neg, axis=1) - neg
    ok = (tp > 0) & (tn > 0)
    auc = np.sum(pos * (below + 0.5 * neg), axis=1)[ok] / (tp[ok] * tn[ok])
    return float(np.std(auc, ddof=1)) if auc.size > 1 else float("nan")


def equal_frequency_groups(rows: np.ndarray, k: int) -> np.ndarray:
    """Group id of each (ascending) bin so that groups hold about equal rows (a bin is never split)."""
    cum = np.cumsum(rows)
    total = cum[-1] if len(cum) else 0
    return np.minimum((k * (cum - rows / 2.0) / max(total, 1)).astype(np.int64), k - 1)


def calibration(rows, p_sum, y_sum, k: int) -> tuple[float, float, int]:
    """(ECE, Hosmer–Lemeshow p-value, groups used) over ``k`` equal-frequency groups of the bins."""
    from scipy.stats import chi2

    g = equal_frequency_groups(rows, k)
    n = np.bincount(g, weights=rows)
    e = np.bincount(g, weights=p_sum)
    o = np.bincount(g, weights=y_sum)
    used = n > 0
    n, e, o = n[used], e[used], o[used]
    ece = float(np.sum(np.abs(o - e)) / n.sum())
    var = e * (1.0 - e / n)
    ok = var > 0
    stat = float(np.sum((o[ok] - e[ok]) ** 2 / var[ok]))
    groups = int(ok.sum())
    pvalue = float(chi2.sf(stat, groups)) if groups else 1.0
    return ece, pvalue, groups


def isotonic_map(rows: np.ndarray, p_sum: np.ndarray, y_sum: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pool-adjacent-violators on the reference bins (ascending score): the fitted rate per bin,
    returned as (bin upper score, fitted rate) steps to map any score through."""
    rate = list(y_sum / np.maximum(rows, 1))
    weight = list(rows.astype(float))
    blocks: list[list[float]] = []  # [rate, weight, count of bins]
    for r, w in zip(rate, weight, strict=True):
        blocks.append([r, w, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            r2, w2, c2 = blocks.pop()
            r1, w1, c1 = blocks.pop()
            blocks.append([(r1 * w1 + r2 * w2) / (w1 + w2), w1 + w2, c1 + c2])
    fitted = np.concatenate([np.full(int(c), r) for r, _, c in blocks])
    return fitted, p_sum / np.maximum(rows, 1)


# -- reductions ----------------------------------------------------------------------------------------------


def _bins_of(scores: np.ndarray, grid: int) -> np.ndarray:
    return np.minimum(np.floor(scores * grid).astype(np.int64), grid - 1)


def reduce_pandas(
    frame: pd.DataFrame, spec: ColumnSpec, p: Mapping[str, Any], *, labels: bool, only_labelled: bool = False
) -> tuple[ScoreBins, np.ndarray]:
    """Aggregates of a pandas frame, and its finite scores (for the exact path and calibration);
    ``only_labelled`` (the reference) keeps the rows with a label only."""
    col = spec.score
    if col is None or col not in frame.columns:
        raise DataInputError(f"data is missing the score column {col!r}; it has {list(frame.columns)[:20]}")
    s = numeric_values(frame[col], col)
    finite = np.isfinite(s)
    y: np.ndarray | None = None
    labelled = np.zeros(len(s), dtype=bool)
    if labels and spec.target and spec.target in frame.columns:
        t = frame[spec.target]
        labelled = t.notna().to_numpy()
        y = (t == spec.positive_label).to_numpy(dtype=float)
    keep = finite & labelled if only_labelled else finite
    s_k = s[keep]
    _check_probabilities(s_k, col)
    grid = p["score_bins"]
    b = _bins_of(s_k, grid)
    rows_all = np.bincount(b, minlength=grid)
    idx = np.flatnonzero(rows_all)
    rows = rows_all[idx].astype(np.int64)
    p_sum = np.bincount(b, weights=s_k, minlength=grid)[idx]
    y_sum = None
    realised, n_lab, n_pos = None, 0, 0
    if y is not None:
        lab = labelled[keep]
        y_k = y[keep]
        n_lab, n_pos = int(lab.sum()), int(y_k[lab].sum())
        y_sum = np.bincount(b, weights=np.where(lab, y_k, 0.0), minlength=grid)[idx]
        if n_lab:
            realised = cbpe_auc(s_k[lab], y_k[lab])
    hi = s_k >= p["threshold"]
    out = ScoreBins(
        index=idx.astype(np.int64),
        rows=rows,
        p_sum=p_sum,
        y_sum=y_sum,
        exact_auc=cbpe_auc(s_k),
        above=(int(hi.sum()), float(s_k[hi].sum())),
        below=(int((~hi).sum()), float(s_k[~hi].sum())),
        realised_auc=None if realised is None or math.isnan(realised) else realised,
        labelled_rows=n_lab,
        positives=n_pos,
        dropped_nonfinite=int((~finite).sum()),
        engine="pandas",
    )
    return out, s_k


def _check_probabilities(s: np.ndarray, col: str) -> None:
    bad = (s < 0) | (s > 1)
    if bad.any():
        raise DataInputError(
            f"score column {col} must hold probabilities in [0, 1]. Got {int(bad.sum())} value(s) outside, "
            f"e.g. {float(s[bad][0])!r}, instead."
        )


def reduce_engine(
    engine: str,
    data: Any,
    spec: ColumnSpec,
    p: Mapping[str, Any],
    *,
    labels: bool,
    only_labelled: bool = False,
    **options: Any,
) -> ScoreBins:
    """The same aggregates where the data lives (DuckDB, Spark): one ``GROUP BY`` over the grid bin and
    the threshold side, and the exact realised AUC (Mann–Whitney numerator) when labelled."""
    from monitors.engines.backend import open_backend
    from monitors.engines.sql import double_literal, sql_literal

    backend = open_backend(engine, data, **options)
    try:
        schema = backend.schema()
        col = spec.score
        if col is None or col not in schema:
            raise DataInputError(f"data is missing the score column {col!r}; it has {list(schema)[:20]}")
        if schema[col] not in ("numeric", "bool"):
            raise DataInputError(f"column {col} must be numeric. Got a column of kind {schema[col]} instead.")
        x = backend.num(col)
        fin = backend.finite(x)
        grid = int(p["score_bins"])
        t = double_literal(p["threshold"])
        has_y = bool(labels and spec.target and spec.target in schema)
        yexpr = "NULL"
        if has_y:
            tq = backend.q(spec.target)
            yexpr = (
                f"CASE WHEN {tq} IS NULL THEN NULL WHEN {tq} = {sql_literal(spec.positive_label)} "
                "THEN 1 ELSE 0 END"
            )
        rows = backend.fetch(
            f"SELECT b, hi, COUNT(*), SUM(v), SUM(y), COUNT(y), MIN(v), MAX(v) FROM ("
            f"SELECT LEAST(CAST(FLOOR({x} * {grid}) AS BIGINT), {grid - 1}) AS b, "
            f"CASE WHEN {x} >= {t} THEN 1 ELSE 0 END AS hi, {x} AS v, {yexpr} AS y "
            f"FROM {backend.relation} WHERE {fin}{f' AND ({yexpr}) IS NOT NULL' if only_labelled else ''}) s "
            "GROUP BY b, hi"
        )
        total = backend.row_count()
        by_bin: dict[int, list[float]] = {}
        above, below = [0, 0.0], [0, 0.0]
        lo_v, hi_v = math.inf, -math.inf
        n_lab, n_pos = 0, 0
        for b, side, cnt, sv, sy, cy, mn, mx in rows:
            acc = by_bin.setdefault(int(b), [0, 0.0, 0.0])
            acc[0] += int(cnt)
            acc[1] += float(sv or 0.0)
            acc[2] += float(sy or 0.0)
            tgt = above if int(side) else below
            tgt[0] += int(cnt)
            tgt[1] += float(sv or 0.0)
            n_lab += int(cy or 0)
            n_pos += int(sy or 0)
            lo_v, hi_v = min(lo_v, float(mn)), max(hi_v, float(mx))
        if by_bin and (lo_v < 0 or hi_v > 1):
            bad = lo_v if lo_v < 0 else hi_v
            raise DataInputError(
                f"score column {col} must hold probabilities in [0, 1]. Got values outside, e.g. {bad!r}, instead."
            )
        keys = np.array(sorted(by_bin), dtype=np.int64)
        agg = np.array([by_bin[k] for k in keys], dtype=float).reshape(len(keys), 3)
        realised = None
        if has_y and n_lab:
            ((num, pos, neg),) = _engine_auc(backend, x, yexpr, fin)
            if pos and neg:
                realised = float(num) / (float(pos) * float(neg))
        return ScoreBins(
            index=keys,
            rows=agg[:, 0].astype(np.int64),
            p_sum=agg[:, 1],
            y_sum=agg[:, 2] if has_y else None,
            exact_auc=None,
            above=(int(above[0]), float(above[1])),
            below=(int(below[0]), float(below[1])),
            realised_auc=realised,
            labelled_rows=n_lab,
            positives=n_pos,
            dropped_nonfinite=total - int(agg[:, 0].sum()) if len(keys) else total,
            engine=engine,
        )
    finally:
        backend.close()


def _engine_auc(backend: Any, x: str, yexpr: str, fin: str) -> list[tuple]:
    # The Mann–Whitney numerator over distinct scores: every term a multiple of ½, exact in any order.
    return backend.fetch(
        f"WITH a AS (SELECT {x} AS s, SUM({yexpr}) AS pos, COUNT(*) - SUM({yexpr}) AS neg "
        f"FROM {backend.relation} WHERE {fin} AND ({yexpr}) IS NOT NULL GROUP BY {x}), "
        "w AS (SELECT *, SUM(neg) OVER (ORDER BY s ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) - neg "
        "AS below FROM a) SELECT SUM(CAST(pos AS DOUBLE) * (CAST(below AS DOUBLE) + 0.5 * CAST(neg AS DOUBLE))), "
        "SUM(pos), SUM(neg) FROM w"
    )


# -- the monitor ---------------------------------------------------------------------------------------------


def _is_choice(*choices: str):
    return lambda v: isinstance(v, str) and v in choices


class EstimatedPerformanceMonitor(Monitor):
    """AUC, accuracy and confusion counts estimated from calibrated scores (see the module docstring)."""

    kind = KIND
    version = "1"
    metrics = (
        *ESTIMATES,
        "reference_auc",
        "reference_ece",
        "realised_auc",
        "realised_auc_in_band",
    )
    needs = frozenset({"reference", "profile"})
    params = (
        ParamSpec("threshold", 0.5, "a float in [0, 1]", _is_float(0.0, 1.0)),
        ParamSpec("score_bins", 10_000, "an integer in [100, 1000000]", _is_int(100, 1_000_000)),
        ParamSpec("calibration_bins", 10, "an integer in [2, 100]", _is_int(2, 100)),
        ParamSpec("max_ece", 0.02, "a float in (0, 1]", _is_float(0.0, 1.0, lo_open=True)),
        ParamSpec("calibration_alpha", 0.001, "a float in (0, 0.5]", _is_float(0.0, 0.5, lo_open=True)),
        ParamSpec("calibration", "none", "one of 'none', 'isotonic'", _is_choice("none", "isotonic")),
        ParamSpec("confidence", 0.95, "a float in [0.5, 0.999]", _is_float(0.5, 0.999)),
        ParamSpec("bootstrap", 200, "an integer in [20, 10000]", _is_int(20, 10_000)),
        ParamSpec("min_rows", 100, "an integer in [1, 10**9]", _is_int(1, 10**9)),
        ParamSpec("min_class_rows", 30, "an integer in [1, 10**9]", _is_int(1, 10**9)),
        ParamSpec("seed", 0, "an integer in [0, 2**32 - 1]", _is_int(0, 2**32 - 1)),
    )

    # -- reference profile ---------------------------------------------------------------------------
    def profile(
        self,
        spec: ColumnSpec,
        reference: pd.DataFrame | str | Path,
        params: Mapping[str, Any] | None = None,
    ) -> ReferenceProfile:
        """The reference's aggregates as a profile a monitoring run can use without the raw rows."""
        p = self.validate_params(params)
        frame = load_frame(reference)
        if not spec.target or spec.target not in frame.columns:
            raise DataInputError(f"the reference needs its labels: no target column {spec.target!r}")
        ref, _ = reduce_pandas(frame, spec, p, labels=True, only_labelled=True)
        return ReferenceProfile(
            kind=self.kind,
            monitor_version=self.version,
            spec=spec,
            payload=_payload(ref, p),
            fingerprint=fingerprint(frame, "reference"),
        )

    def run(
        self,
        spec: ColumnSpec,
        *,
        current: pd.DataFrame | str | Path | None = None,
        reference: pd.DataFrame | str | Path | None = None,
        profile: ReferenceProfile | None = None,
        params: Mapping[str, Any] | None = None,
        artifacts_dir: str | Path | None = None,
        engine: str = "pandas",
        **options: Any,
    ) -> MonitorResult:
        p = self.validate_params(params)
        if current is None:
            raise ParameterError(
                "current must be a DataFrame, a Parquet/CSV path or a table. Got None instead."
            )
        if spec.score is None:
            raise ParameterError("spec.score must name the score column (a probability). Got None instead.")
        if profile is not None and not (isinstance(profile, ReferenceProfile) and profile.kind == self.kind):
            got = profile.kind if isinstance(profile, ReferenceProfile) else type(profile).__name__
            raise ParameterError(f"profile must be an {self.kind} ReferenceProfile. Got {got!r} instead.")
        fps: list[Any] = []
        notes: list[str] = []

        def result(metrics, status=MetricStatus.OK, reason=None, artifacts=()) -> MonitorResult:
            return MonitorResult(
                kind=self.kind,
                monitor_version=self.version,
                params=p,
                metrics=tuple(metrics),
                status=status,
                reason=reason,
                artifacts=tuple(artifacts),
                fingerprints=tuple(fps),
                seed=p["seed"],
                library_versions=library_versions(*(("duckdb",) if engine == "duckdb" else ())),
                notes=tuple(notes),
            )

        def invalid(reason: str) -> MonitorResult:
            return invalid_result(
                self.kind,
                self.version,
                p,
                reason,
                fingerprints=tuple(fps),
                seed=p["seed"],
                notes=tuple(notes),
            )

        if reference is None and profile is None:
            return invalid(
                "the estimate needs labelled reference data (--reference) or a stored reference profile"
            )
        # 1. the reference: aggregates and checks
        try:
            if reference is not None:
                if engine != "pandas" and not _is_frame(reference):
                    ref = reduce_engine(
                        engine, reference, spec, p, labels=True, only_labelled=True, **options
                    )
                else:
                    rframe = load_frame(reference)
                    fps.append(fingerprint(rframe, "reference"))
                    if not spec.target or spec.target not in rframe.columns:
                        return invalid(
                            f"reference data must carry its labels: no target column {spec.target!r}; "
                            f"it has {[str(c) for c in rframe.columns][:20]}"
                        )
                    ref, _ = reduce_pandas(rframe, spec, p, labels=True, only_labelled=True)
                payload = _payload(ref, p)
            else:
                assert profile is not None
                payload = dict(profile.payload)
                fps.append(profile.fingerprint)
                if int(payload.get("score_bins", -1)) != p["score_bins"] or float(
                    payload.get("threshold", -1)
                ) != float(p["threshold"]):
                    return invalid(
                        f"the stored reference profile was reduced with score_bins {payload.get('score_bins')} and "
                        f"threshold {payload.get('threshold')}; the policy asks for {p['score_bins']} and "
                        f"{p['threshold']}: validate again to store a matching profile"
                    )
        except DataInputError as exc:
            return invalid(f"reference: {exc}")
        # 2. the current period
        try:
            if engine != "pandas" and not _is_frame(current):
                cur = reduce_engine(engine, current, spec, p, labels=True, **options)
                cur_scores = None
                from monitors.engines.backend import open_backend

                b = open_backend(engine, current, **options)
                try:
                    fps.append(b.fingerprint("current"))
                finally:
                    b.close()
            else:
                frame = load_frame(current)
                fps.append(fingerprint(frame, "current"))
                cur, cur_scores = reduce_pandas(frame, spec, p, labels=True)
        except DataInputError as exc:
            return invalid(str(exc))
        if cur.dropped_nonfinite:
            notes.append(f"dropped {cur.dropped_nonfinite} current row(s) whose score is NaN or ±inf")
        notes.append(f"reduction engine: {cur.engine}; {p['score_bins']} score bins")

        ref_rows = np.asarray(payload["rows"], dtype=np.int64)
        ref_p = np.asarray(payload["p_sum"], dtype=float)
        ref_y = np.asarray(payload["y_sum"], dtype=float)
        ref_n, ref_pos = int(payload["labelled_rows"]), int(payload["positives"])
        if ref_n < p["min_rows"] or min(ref_pos, ref_n - ref_pos) < p["min_class_rows"]:
            reason = (
                f"reference has {ref_n} labelled row(s) with {ref_pos} positive(s) and {ref_n - ref_pos} "
                f"negative(s); the estimate needs min_rows {p['min_rows']} and min_class_rows "
                f"{p['min_class_rows']} of each class"
            )
            return result(
                [Metric.undefined(m, reason) for m in ESTIMATES], MetricStatus.INSUFFICIENT_DATA, reason
            )
        if cur.n < p["min_rows"]:
            reason = (
                f"current data has {cur.n} row(s) with a finite score, fewer than min_rows {p['min_rows']}"
            )
            return result(
                [Metric.undefined(m, reason) for m in ESTIMATES], MetricStatus.INSUFFICIENT_DATA, reason
            )

        # 3. optional isotonic calibration (opt-in), then the calibration check on the reference
        ref_prob_sum = ref_p
        cur_index, cur_rows, cur_p = cur.index, cur.rows, cur.p_sum
        mapped = p["calibration"] == "isotonic"
        if mapped:
            fitted, _ = isotonic_map(ref_rows, ref_p, ref_y)
            ref_index = np.asarray(payload["index"], dtype=np.int64)
            ref_prob_sum = fitted * ref_rows
            # each current bin takes the fitted rate of the nearest reference bin at or below it
            pos = np.clip(np.searchsorted(ref_index, cur_index, side="right") - 1, 0, len(ref_index) - 1)
            cur_p = fitted[pos] * cur_rows
            notes.append("scores mapped through an isotonic fit on the reference (calibration='isotonic')")
        ece, hl_p, groups = calibration(ref_rows, ref_prob_sum, ref_y, p["calibration_bins"])
        ref_auc = float(payload["realised_auc"])
        ref_est = (
            float(payload["exact_auc"])
            if payload.get("exact_auc") is not None and not mapped
            else mann_whitney_auc(ref_prob_sum, ref_rows - ref_prob_sum)
        )
        calib_counts = {
            "hosmer_lemeshow_p": hl_p,
            "groups": groups,
            "max_ece": p["max_ece"],
            "calibration_alpha": p["calibration_alpha"],
            "reference_rows": ref_n,
        }
        ref_metrics = [
            Metric("reference_auc", ref_auc, counts={"positives": ref_pos, "negatives": ref_n - ref_pos}),
            Metric("reference_ece", ece, counts=calib_counts),
        ]
        if ece > p["max_ece"] and hl_p < p["calibration_alpha"]:
            reason = NOT_ESTIMABLE_MESSAGE.format(
                ece=ece, max_ece=p["max_ece"], p=hl_p, alpha=p["calibration_alpha"]
            )
            notes.append(reason)
            undefined = [Metric.undefined(m, reason, status=MetricStatus.NOT_ESTIMABLE) for m in ESTIMATES]
            return result(ref_metrics + undefined, MetricStatus.NOT_ESTIMABLE, reason)

        # 4. the estimates
        if mapped or cur_scores is None:
            est = mann_whitney_auc(cur_p, cur_rows - cur_p)
            how = "binned"
        else:
            est = float(cur.exact_auc)  # type: ignore[arg-type]
            how = "exact"
        if mapped:
            # the threshold sums come from the mapped bins (a bin straddling the threshold goes by its index)
            t_bin = math.floor(p["threshold"] * p["score_bins"])
            hi = cur_index >= t_bin
            a_rows, a_p = int(cur_rows[hi].sum()), float(cur_p[hi].sum())
            b_rows, b_p = int(cur_rows[~hi].sum()), float(cur_p[~hi].sum())
        else:
            (a_rows, a_p), (b_rows, b_p) = cur.above, cur.below
        tp, fp, fn, tn = a_p, a_rows - a_p, b_p, b_rows - b_p
        n = cur.n
        sd_cur = bootstrap_sd(cur_rows, cur_p, p["bootstrap"], p["seed"])
        sd_ref = bootstrap_sd(ref_rows, ref_prob_sum, p["bootstrap"], p["seed"] + 1)
        bias = ref_est - ref_auc
        z = NormalDist().inv_cdf(0.5 + p["confidence"] / 2.0)
        half = z * math.sqrt(sd_cur**2 + sd_ref**2)
        centre = est - bias
        low, high = max(0.0, centre - half), min(1.0, centre + half)
        band_counts = {
            "method": "parametric bootstrap on score bins + reference bias",
            "confidence": p["confidence"],
            "sd_current": sd_cur,
            "sd_reference": sd_ref,
            "reference_estimated_auc": ref_est,
            "reference_bias": bias,
            "centre": centre,
        }
        metrics = [
            Metric(
                "estimated_auc",
                est,
                ci_low=low,
                ci_high=high,
                counts={**band_counts, "rows": n, "computation": how},
            ),
            Metric("estimated_auc_low", low, counts=band_counts),
            Metric("estimated_auc_high", high, counts=band_counts),
            Metric(
                "estimated_auc_drop",
                ref_auc - est,
                ci_low=ref_auc - high,
                ci_high=ref_auc - low,
                counts={"reference_auc": ref_auc, "estimated_auc": est},
            ),
            Metric("estimated_accuracy", (tp + tn) / n, counts={"threshold": p["threshold"], "rows": n}),
            Metric("expected_tp", tp),
            Metric("expected_fp", fp),
            Metric("expected_tn", tn),
            Metric("expected_fn", fn),
            *ref_metrics,
        ]
        if cur.realised_auc is not None:
            inside = bool(low <= cur.realised_auc <= high)
            metrics.append(
                Metric(
                    "realised_auc",
                    cur.realised_auc,
                    counts={
                        "labelled_rows": cur.labelled_rows,
                        "positives": cur.positives,
                        "in_band": inside,
                    },
                )
            )
            metrics.append(Metric("realised_auc_in_band", 1.0 if inside else 0.0))
            notes.append(
                f"current labels present: realised AUC {cur.realised_auc:.4f} on {cur.labelled_rows} rows"
            )
        artifacts = []
        if artifacts_dir is not None:
            lines = ["bin,lower,upper,rows,expected_positives"]
            for i, r, s in zip(cur_index, cur_rows, cur_p, strict=True):
                g = p["score_bins"]
                lines.append(f"{int(i)},{i / g!r},{(i + 1) / g!r},{int(r)},{float(s)!r}")
            art = write_artifact(
                artifacts_dir,
                "estimated_performance_bins.csv",
                ("\n".join(lines) + "\n").encode(),
                "current score bins: rows and expected positives (Σ p)",
            )
            artifacts = [art] if art is not None else []
        return result(metrics, artifacts=artifacts)


def _is_frame(data: Any) -> bool:
    import pandas as pd

    return isinstance(data, pd.DataFrame)


def _payload(ref: ScoreBins, p: Mapping[str, Any]) -> dict[str, Any]:
    if ref.y_sum is None or ref.realised_auc is None:
        raise DataInputError("the reference has no labelled row with a finite score")
    return {
        "score_bins": p["score_bins"],
        "threshold": p["threshold"],
        "index": ref.index.tolist(),
        "rows": ref.rows.tolist(),
        "p_sum": ref.p_sum.tolist(),
        "y_sum": ref.y_sum.tolist(),
        "exact_auc": ref.exact_auc,
        "realised_auc": ref.realised_auc,
        "labelled_rows": ref.labelled_rows,
        "positives": ref.positives,
    }


__all__ = [
    "ESTIMATES",
    "NOT_ESTIMABLE_MESSAGE",
    "EstimatedPerformanceMonitor",
    "ScoreBins",
    "bootstrap_sd",
    "calibration",
    "cbpe_auc",
    "mann_whitney_auc",
    "reduce_engine",
    "reduce_pandas",
]
