"""Data drift: how far the current data's feature (and score) distributions moved from the reference.

Aggregate, then compute: :mod:`monitors.engines.pandas` reduces each column to counts on reference bins and a
sorted sample; every metric below is derived from those statistics only. ``DriftMonitor.profile`` saves the
reference statistics (a :class:`~monitors.base.ReferenceProfile`) so that ``run(spec, current=...,
profile=...)`` needs no raw reference data and gives exactly the numbers ``run(spec, reference=...,
current=...)`` gives.

Definitions (per feature, ``feature=<column>``)
-----------------------------------------------
``psi``
    Population stability index ``Σ (q_i − p_i) · ln(q_i / p_i)`` over bins, where ``p``/``q`` are the shares
    of *all* reference/current rows in each bin. Numeric bins: ``n_bins`` (default 10) reference quantiles,
    deduplicated (see the engine's docstring for the exact interval rule), plus three bins of their own for
    NaN, +inf and −inf, so a shift in missingness moves the PSI. Categorical bins: the reference's
    ``max_categories`` most frequent levels, ``__other__`` (the reference's remaining levels),
    ``__new__`` (levels the reference never had) and ``__missing__``. Smoothing: every share is raised to at
    least ``epsilon`` (default 1e-4) before the formula, so an empty bin on one side costs
    ``≈ share · ln(share / 1e-4)`` instead of infinity; bins empty on both sides contribute 0.
    Evidently's PSI is a different number: it bins numeric columns into equal-width Sturges bins over
    reference + current together (30 bins only as a fallback), so the bins, and the value, change with the
    sample size and with the current data; ours are fixed by the reference and comparable over time.
``ks_statistic``, ``ks_pvalue`` (numeric)
    Two-sample Kolmogorov–Smirnov on the finite values, equal to ``scipy.stats.ks_2samp`` (method "auto":
    exact p-value up to 10,000 values per side, else the asymptotic ``kstwo`` one). Above ``sample_size``
    finite values per side both are computed on the seeded sorted sample (see the engine), which the notes
    say, and the p-value then comes from the limiting Kolmogorov distribution (``ks_pvalue.counts["method"]``).
``wasserstein_norm`` (numeric)
    ``scipy.stats.wasserstein_distance`` of the finite values (of the samples, as above) divided by the
    population standard deviation (ddof=0) of all finite reference values, as Evidently does. Undefined
    (insufficient_data) when that standard deviation is 0.
``chi2_pvalue``, ``js_distance`` (categorical)
    On the non-missing bins (kept levels, ``__other__``, ``__new__``): ``scipy.stats.chisquare`` of the
    current counts against the reference shares times the current total (bins empty on both sides dropped;
    if the current data has a level whose reference count is 0 the statistic is infinite and the p-value is
    0), and ``scipy.spatial.distance.jensenshannon(reference_counts, current_counts, base=2)`` (in [0, 1]).
``missing_share_reference``, ``missing_share_current``, ``missing_share_delta``
    Share of rows that are NaN/None or ±inf, and current − reference.
``new_category_share`` (categorical)
    Share of current rows whose level never occurs in the reference.
``drifted``
    1.0 when ``psi >= psi_threshold`` (0.2) or ``|missing_share_delta| >= missing_share_threshold`` (0.1) or
    ``new_category_share >= new_category_threshold`` (0.1), else 0.0. KS and chi-square p-values are
    reported but not part of the rule: at monitoring sizes they flag shifts too small to matter.

Dataset level: ``drift_share`` (drifted features / features with a defined ``drifted``), ``max_psi``,
``max_missing_share_delta`` (the largest *absolute* change), ``max_new_category_share`` and ``score_psi``
(the PSI of the spec's score column, else its prediction column, when both data sets have it).

Why not Evidently's verdict: Evidently 0.7 drops NaN and ±inf before its tests, so a current column that is
half NaN (or half +inf) and otherwise unchanged is "not drifted" there. Here the NaN/inf bins enter the PSI and
``missing_share_delta`` is its own metric, so such a column is drifted.

Bad input never raises out of ``run``: unreadable data or missing feature columns give an ``invalid_input``
result naming the problem; an empty data set gives ``insufficient_data``; a feature with strings in a numeric
column is ``invalid_input`` (its metrics and the whole result), and a feature with no usable values on one side
makes its KS/Wasserstein/chi-square/JS metrics and the whole result ``insufficient_data``, while the metrics
that stay defined (PSI, missingness) are still reported.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pandas is imported where it runs: declarations must load without it
    import pandas as pd

from monitors.base import (
    ColumnKind,
    ColumnSpec,
    DataFingerprint,
    DataInputError,
    Metric,
    MetricStatus,
    Monitor,
    MonitorResult,
    ParameterError,
    ParamSpec,
    ReferenceProfile,
    invalid_result,
    library_versions,
    write_artifact,
)
from monitors.engines.pandas import (
    OTHER,
    CategoricalReduction,
    FeatureStats,
    NumericReduction,
    ks_wasserstein,
)

#: scipy's ks_2samp computes an exact p-value up to this many values per side ("auto" method).
_KS_EXACT_MAX_N = 10_000


def _is_int(lo: int, hi: int):
    return lambda v: isinstance(v, (int, np.integer)) and not isinstance(v, bool) and lo <= v <= hi


def _is_float(lo: float, hi: float, *, lo_open: bool = False):
    def check(v: Any) -> bool:
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
            return False
        v = float(v)
        return math.isfinite(v) and (v > lo if lo_open else v >= lo) and v <= hi

    return check


def _is_bool(v: Any) -> bool:
    return isinstance(v, bool)


#: Parameters that shape the reduction: a profile fixes them.
_REDUCTION_PARAMS = ("n_bins", "max_categories", "sample_size", "seed")


# Kept under its old name for the code that reads profiles' statistics.
_FeatureStats = FeatureStats


def psi_from_counts(reference: np.ndarray, current: np.ndarray, epsilon: float) -> float:
    """PSI of two count vectors on the same bins, shares floored at ``epsilon`` (see the module docstring)."""
    p = np.maximum(np.asarray(reference, dtype=float) / max(int(np.sum(reference)), 1), epsilon)
    q = np.maximum(np.asarray(current, dtype=float) / max(int(np.sum(current)), 1), epsilon)
    return float(np.sum((q - p) * np.log(q / p)))


def ks_test(
    reference: np.ndarray, current: np.ndarray, statistic: float | None = None, *, sampled: bool = False
) -> tuple[float, float, str]:
    """KS statistic, p-value and the p-value method for two sorted finite samples.

    On complete data (``sampled=False``) both equal ``scipy.stats.ks_2samp`` (method "auto"): its exact
    distribution up to 10,000 values per side ("exact"), else ``kstwo.sf(D, round(n·m/(n+m)))`` ("kstwo").
    On seeded samples the numbers are estimates anyway, and ``kstwo.sf`` can take ~0.1 s per call at
    sample sizes (e.g. n = 25,000, D ≈ 0.01), so the limiting Kolmogorov distribution
    ``scipy.special.kolmogorov(√(n·m/(n+m)) · D)`` is used ("kolmogorov")."""
    from scipy import special, stats

    n1, n2 = reference.size, current.size
    if not sampled and max(n1, n2) <= _KS_EXACT_MAX_N:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # scipy's own exact → asymp fallback notice
            res = stats.ks_2samp(reference, current)
        return float(res.statistic), float(res.pvalue), "exact"
    d = statistic if statistic is not None else ks_wasserstein(reference, current)[0]
    m, n = sorted([float(n1), float(n2)], reverse=True)
    en = m * n / (m + n)
    if sampled:
        return d, float(np.clip(special.kolmogorov(math.sqrt(en) * d), 0, 1)), "kolmogorov"
    # The same asymptotic formula ks_2samp uses above its exact range.
    return d, float(np.clip(stats.kstwo.sf(d, np.round(en)), 0, 1)), "kstwo"


class DriftMonitor(Monitor):
    """Feature and score drift between a reference and a current data set (see the module docstring)."""

    kind = "drift"
    version = "1"
    metrics = (
        "psi",
        "ks_statistic",
        "ks_pvalue",
        "chi2_pvalue",
        "js_distance",
        "wasserstein_norm",
        "missing_share_reference",
        "missing_share_current",
        "missing_share_delta",
        "new_category_share",
        "drifted",
        "drift_share",
        "max_psi",
        "max_missing_share_delta",
        "max_new_category_share",
        "score_psi",
    )
    needs = frozenset({"reference", "profile"})
    params = (
        ParamSpec("n_bins", 10, "an integer in [2, 1000]", _is_int(2, 1000)),
        ParamSpec("epsilon", 1e-4, "a float in (0, 0.01]", _is_float(0.0, 0.01, lo_open=True)),
        ParamSpec("psi_threshold", 0.2, "a float in (0, 100]", _is_float(0.0, 100.0, lo_open=True)),
        ParamSpec("missing_share_threshold", 0.1, "a float in (0, 1]", _is_float(0.0, 1.0, lo_open=True)),
        ParamSpec("new_category_threshold", 0.1, "a float in (0, 1]", _is_float(0.0, 1.0, lo_open=True)),
        ParamSpec("max_categories", 50, "an integer in [1, 10000]", _is_int(1, 10_000)),
        ParamSpec("sample_size", 50_000, "an integer in [100, 100000000]", _is_int(100, 100_000_000)),
        ParamSpec("seed", 0, "an integer in [0, 2**32 - 1]", _is_int(0, 2**32 - 1)),
        ParamSpec("evidently_report", True, "a boolean", _is_bool),
        ParamSpec("html_sample_rows", 5_000, "an integer in [10, 100000]", _is_int(10, 100_000)),
    )

    # -- reference profile ----------------------------------------------------------------------------
    def profile(
        self,
        spec: ColumnSpec,
        reference: pd.DataFrame | str | Path | Any,
        params: Mapping[str, Any] | None = None,
        *,
        engine: str = "pandas",
        **options: Any,
    ) -> ReferenceProfile:
        """Reduce the reference once (on ``engine``) and keep its statistics. Unreadable data, missing
        feature columns or an empty data set raise ``DataInputError`` (there is no result to carry them);
        problems in single columns are stored and come back as metric statuses in ``run``."""
        from monitors.engines.backend import open_backend

        p = self.validate_params(params)
        backend = open_backend(engine, reference, **options)
        try:
            _check_features(backend.columns(), spec, "reference")
            fp = backend.fingerprint("reference")
            if fp.rows == 0:
                raise DataInputError("reference data has 0 rows")
            payload = self._serialise(_reduce_reference(backend, spec, p))
        finally:
            backend.close()
        return ReferenceProfile(
            kind=self.kind, monitor_version=self.version, spec=spec, payload=payload, fingerprint=fp
        )

    @staticmethod
    def _serialise(live: Mapping[str, Any]) -> dict[str, Any]:
        return {
            **live,
            "features": {k: v.to_dict() for k, v in live["features"].items()},
            "score": None if live["score"] is None else live["score"].to_dict(),
        }

    @staticmethod
    def _deserialise(payload: Mapping[str, Any]) -> dict[str, Any]:
        return {
            **payload,
            "features": {k: _FeatureStats.from_dict(v) for k, v in payload["features"].items()},
            "score": None if payload.get("score") is None else _FeatureStats.from_dict(payload["score"]),
        }

    # -- run ------------------------------------------------------------------------------------------
    def run(
        self,
        spec: ColumnSpec,
        *,
        reference: pd.DataFrame | str | Path | Any = None,
        current: pd.DataFrame | str | Path | Any = None,
        profile: ReferenceProfile | None = None,
        params: Mapping[str, Any] | None = None,
        artifacts_dir: str | Path | None = None,
        engine: str = "pandas",
        report_cache: str | Path | None = None,
        **options: Any,
    ) -> MonitorResult:
        """Drift of ``current`` against ``reference`` data or a stored ``profile``, reduced on ``engine``
        (``monitors.engines.backend.open_backend``: a DataFrame or CSV/Parquet file on pandas; Parquet
        files, folders, globs or ``duckdb:PATH::TABLE`` on DuckDB; a Spark DataFrame or ``spark:TABLE``
        on Spark; ``options`` go to the backend). ``report_cache``: a folder where the Evidently HTML report
        is kept per digest of its inputs and reused (it is the slow part: seconds on a few hundred rows)."""
        from monitors.engines.backend import ENGINES, engine_libraries, open_backend

        p = self.validate_params(params)
        if (reference is None) == (profile is None):
            raise ParameterError(
                "reference must be given either as data (reference=) or as a profile (profile=). "
                f"Got {'both' if reference is not None else 'neither'} instead."
            )
        if current is None:
            raise ParameterError("current must be a DataFrame or a Parquet/CSV path. Got None instead.")
        if engine not in ENGINES:
            raise ParameterError(f"engine must be one of {list(ENGINES)}. Got {engine!r} instead.")
        if profile is not None:
            p = _merge_profile_params(profile, p, params or {})
        fingerprints: list[DataFingerprint] = []
        notes: list[str] = [] if engine == "pandas" else [f"reduction engine: {engine}"]
        versions = library_versions("evidently", *engine_libraries(engine))
        backends: list[Any] = []
        ref_b = cur_b = None
        try:
            try:
                if profile is None:
                    ref_b = open_backend(engine, reference, **options)
                    backends.append(ref_b)
                    fingerprints.append(ref_b.fingerprint("reference"))
                else:
                    fingerprints.append(profile.fingerprint)
                cur_b = open_backend(engine, current, **options)
                backends.append(cur_b)
                fingerprints.append(cur_b.fingerprint("current"))
                if ref_b is not None:
                    _check_features(ref_b.columns(), spec, "reference")
                _check_features(cur_b.columns(), spec, "current")
            except DataInputError as exc:
                return invalid_result(
                    self.kind, self.version, p, str(exc), fingerprints=tuple(fingerprints), seed=p["seed"]
                )
            sides = (("reference", ref_b, fingerprints[0]), ("current", cur_b, fingerprints[-1]))
            empty = [role for role, b, fp in sides if b is not None and fp.rows == 0]
            if empty:
                return MonitorResult(
                    kind=self.kind,
                    monitor_version=self.version,
                    params=p,
                    metrics=(),
                    status=MetricStatus.INSUFFICIENT_DATA,
                    reason=f"{' and '.join(empty)} data {'have' if len(empty) > 1 else 'has'} 0 rows",
                    fingerprints=tuple(fingerprints),
                    seed=p["seed"],
                    library_versions=versions,
                )
            try:
                if profile is not None:
                    missing = [n for n in spec.feature_names if n not in profile.payload["features"]]
                    if missing:
                        return invalid_result(
                            self.kind,
                            self.version,
                            p,
                            f"the reference profile has no statistics for feature(s) {missing}; rebuild it with this spec",
                            fingerprints=tuple(fingerprints),
                            seed=p["seed"],
                        )
                    payload = self._deserialise(profile.payload)
                else:
                    payload = _reduce_reference(ref_b, spec, p)
                cur_columns = cur_b.columns()
                cur_stats, cur_score = _reduce_current(cur_b, spec, payload, p)
            except DataInputError as exc:
                return invalid_result(
                    self.kind, self.version, p, str(exc), fingerprints=tuple(fingerprints), seed=p["seed"]
                )
            # Evidently's HTML needs rows: only a pandas backend has them at hand.
            ref_frame, cur_frame = getattr(ref_b, "frame", None), getattr(cur_b, "frame", None)
        finally:
            for b in reversed(backends):  # a shared connection gets its settings back in order
                b.close()

        used = set(spec.feature_names) | {c for c in (spec.score, spec.prediction, spec.target) if c}
        extra = [str(c) for c in cur_columns if c not in used]
        if extra:
            notes.append(f"ignored {len(extra)} current column(s) not in the spec: {extra[:10]}")

        metrics: list[Metric] = []
        table_rows: list[dict[str, Any]] = []
        bin_rows: list[dict[str, Any]] = []
        invalid: list[str] = []
        insufficient: list[str] = []
        sampled: list[str] = []
        capped: list[str] = []
        for feat in spec.features:
            ref = payload["features"][feat.name]
            cur = cur_stats[feat.name]
            fm, status = _feature_metrics(feat.name, ref, cur, p, bin_rows)
            metrics.extend(fm)
            if status is MetricStatus.INVALID_INPUT:
                invalid.append(feat.name)
            elif status is MetricStatus.INSUFFICIENT_DATA:
                insufficient.append(feat.name)
            if (
                isinstance(ref.stats, NumericReduction)
                and isinstance(cur.stats, NumericReduction)
                and not (ref.stats.sample_exact and cur.stats.sample_exact)
            ):
                sampled.append(feat.name)
            if isinstance(ref.stats, CategoricalReduction) and ref.stats.capped:
                capped.append(f"{feat.name} ({ref.stats.levels} levels)")
            table_rows.append(_table_row(feat.name, ref.kind, fm))

        metrics.extend(_dataset_metrics(metrics, spec))
        metrics.append(_score_psi(payload, cur_score, cur_columns, p, bin_rows))

        if sampled:
            # pandas draws with numpy's generator; a SQL engine ranks rows by a hash (see engines/sql.py).
            how, rule = (
                ("", "")
                if engine == "pandas"
                else (f"{engine} ", "; hash of seed, role and row id, not numpy's draw")
            )
            notes.append(
                f"KS and Wasserstein use seeded {how}samples of {p['sample_size']} finite values per side "
                f"(seed {p['seed']}{rule}) for {len(sampled)} feature(s) with more values: {sampled[:10]}; exact otherwise"
            )
        if capped:
            notes.append(
                f"categorical levels capped to the reference's top {p['max_categories']} + '__other__' for: {capped[:10]}"
            )
        if profile is not None:
            notes.append(
                f"reference statistics from a profile (reference digest {profile.fingerprint.digest[:12]}, "
                f"{profile.fingerprint.rows} rows)"
            )

        status, reason = MetricStatus.OK, None
        if invalid:
            status = MetricStatus.INVALID_INPUT
            reason = f"invalid values in feature(s) {invalid}" + (
                f"; no usable values in {insufficient}" if insufficient else ""
            )
        elif insufficient:
            status = MetricStatus.INSUFFICIENT_DATA
            reason = f"no usable (finite / non-missing) values in feature(s) {insufficient} on one side"

        artifacts = []
        if artifacts_dir is not None:
            html_p = p
            if cur_frame is None:
                if p["evidently_report"]:
                    notes.append(f"no Evidently report on the {engine} engine: it needs rows in pandas")
                html_p = {**p, "evidently_report": False}
            artifacts = self._write_artifacts(
                Path(artifacts_dir),
                spec,
                metrics,
                table_rows,
                bin_rows,
                html_p,
                ref_frame,
                cur_frame,
                notes,
                report_cache=report_cache,
            )
        return MonitorResult(
            kind=self.kind,
            monitor_version=self.version,
            params=p,
            metrics=tuple(metrics),
            status=status,
            reason=reason,
            artifacts=tuple(artifacts),
            fingerprints=tuple(fingerprints),
            seed=p["seed"],
            library_versions=versions,
            notes=tuple(notes),
        )

    def _write_artifacts(
        self,
        folder: Path,
        spec: ColumnSpec,
        metrics: list[Metric],
        table_rows: list[dict[str, Any]],
        bin_rows: list[dict[str, Any]],
        p: Mapping[str, Any],
        ref_frame: pd.DataFrame | None,
        cur_frame: pd.DataFrame,
        notes: list[str],
        *,
        report_cache: str | Path | None = None,
    ) -> list:
        import pandas as pd

        out = []
        features_csv = pd.DataFrame(table_rows).to_csv(index=False, lineterminator="\n").encode()
        out.append(write_artifact(folder, "drift_features.csv", features_csv, "per-feature drift metrics"))
        bins_csv = pd.DataFrame(bin_rows).to_csv(index=False, lineterminator="\n").encode()
        out.append(write_artifact(folder, "drift_bins.csv", bins_csv, "reference/current counts per PSI bin"))
        summary = {
            "params": dict(p),
            "dataset": {m.name: m.value for m in metrics if m.feature is None},
            "drifted_features": [m.feature for m in metrics if m.name == "drifted" and m.value == 1.0],
        }
        text = json.dumps(summary, sort_keys=True, indent=2, ensure_ascii=False).encode()
        out.append(write_artifact(folder, "drift_summary.json", text, "dataset-level drift summary"))
        if p["evidently_report"]:
            if ref_frame is None:
                notes.append("no Evidently report: the reference came from a profile, not raw data")
            else:
                html = _evidently_html(spec, ref_frame, cur_frame, p, notes, cache_dir=report_cache)
                if html is not None:
                    out.append(
                        write_artifact(
                            folder, "drift_evidently.html", html, "Evidently data drift report (sample)"
                        )
                    )
        return [a for a in out if a is not None]


# -- reduction helpers ---------------------------------------------------------------------------------


def _score_column(spec: ColumnSpec) -> str | None:
    return spec.score or spec.prediction


def _check_features(columns: Sequence[str], spec: ColumnSpec, role: str) -> None:
    missing = [n for n in spec.feature_names if n not in columns]
    if missing:
        raise DataInputError(
            f"{role} data is missing feature column(s) {missing}; it has {[str(c) for c in columns][:20]}"
        )


def _score_on_its_own(spec: ColumnSpec, score_col: str | None, columns: Sequence[str]) -> tuple[bool, bool]:
    """(the score column is there, it must be reduced apart because it is also a feature)."""
    present = score_col is not None and score_col in columns
    return present, present and score_col in spec.feature_names


def _reduce_reference(backend: Any, spec: ColumnSpec, p: Mapping[str, Any]) -> dict[str, Any]:
    """The reference statistics as live objects; ``_serialise``/``_deserialise`` map them to JSON."""
    score_col = _score_column(spec)
    with_score, apart = _score_on_its_own(spec, score_col, backend.columns())
    columns: list[tuple[str, ColumnKind]] = [(f.name, f.kind) for f in spec.features]
    if with_score and not apart:
        columns.append((score_col, ColumnKind.ORDINAL))  # type: ignore[arg-type]
    stats = backend.reference_stats(columns, p)
    score = None
    if with_score:
        score = (
            backend.reference_stats([(score_col, ColumnKind.ORDINAL)], p)[score_col]
            if apart
            else stats[score_col]
        )
    return {
        "reduction_params": {k: p[k] for k in _REDUCTION_PARAMS},
        "features": {f.name: stats[f.name] for f in spec.features},
        "score_column": score_col,
        "score": score,
    }


def _reduce_current(
    backend: Any, spec: ColumnSpec, payload: Mapping[str, Any], p: Mapping[str, Any]
) -> tuple[dict[str, FeatureStats], FeatureStats | None]:
    """Current statistics of the features on the reference's bins, and of the score column (None when
    either side has none)."""
    score_col = payload.get("score_column")
    with_score, apart = _score_on_its_own(spec, score_col, backend.columns())
    with_score = with_score and payload.get("score") is not None
    columns = [(f.name, payload["features"][f.name]) for f in spec.features]
    if with_score and not apart:
        columns.append((score_col, payload["score"]))
    stats = backend.current_stats(columns, p)
    score = None
    if with_score:
        score = (
            backend.current_stats([(score_col, payload["score"])], p)[score_col]
            if apart
            else stats[score_col]
        )
    return stats, score


def _score_psi(
    payload: Mapping[str, Any],
    cur: FeatureStats | None,
    cur_columns: Sequence[str],
    p: Mapping[str, Any],
    bin_rows: list[dict[str, Any]],
) -> Metric:
    col = payload.get("score_column")
    if col is None:
        return Metric.undefined("score_psi", "the spec names no score or prediction column")
    if payload.get("score") is None:
        return Metric.undefined("score_psi", f"the reference data has no column {col!r}")
    if col not in cur_columns or cur is None:
        return Metric.undefined("score_psi", f"the current data has no column {col!r}")
    ref = payload["score"]
    if ref.stats is None or cur.stats is None:
        return Metric.undefined(
            "score_psi",
            str(ref.reason or cur.reason),
            status=MetricStatus.INVALID_INPUT,
            counts={"column": col},
        )
    value = psi_from_counts(ref.stats.full_counts(), cur.stats.full_counts(), p["epsilon"])
    _append_bins(bin_rows, f"score:{col}", ref.stats, cur.stats, p["epsilon"])
    return Metric("score_psi", value, counts={"column": col, "bins": len(ref.stats.full_counts())})


def _merge_profile_params(
    profile: ReferenceProfile, p: dict[str, Any], given: Mapping[str, Any]
) -> dict[str, Any]:
    if profile.kind != "drift":
        raise ParameterError(f"profile must be a drift profile. Got a {profile.kind!r} profile instead.")
    fixed = profile.payload.get("reduction_params", {})
    for name in _REDUCTION_PARAMS:
        if name in given and given[name] != fixed.get(name):
            raise ParameterError(
                f"{name} must be {fixed.get(name)!r} (fixed by the reference profile). Got {given[name]!r} instead."
            )
    return {**p, **{k: fixed[k] for k in _REDUCTION_PARAMS if k in fixed}}


# -- metrics from statistics ---------------------------------------------------------------------------


def _share(part: int, rows: int) -> float:
    return part / rows if rows else 0.0


def _feature_metrics(
    name: str, ref: _FeatureStats, cur: _FeatureStats, p: Mapping[str, Any], bin_rows: list[dict[str, Any]]
) -> tuple[list[Metric], MetricStatus]:
    """All metrics of one feature and the feature's input status."""
    if ref.stats is None or cur.stats is None:
        reason = "; ".join(r for r in (ref.reason, cur.reason) if r) or "invalid input"
        names = ["psi", "missing_share_reference", "missing_share_current", "missing_share_delta", "drifted"]
        names += (
            ["ks_statistic", "ks_pvalue", "wasserstein_norm"]
            if ref.kind in ("numeric", "invalid")
            else ["chi2_pvalue", "js_distance", "new_category_share"]
        )
        return [
            Metric.undefined(n, reason, status=MetricStatus.INVALID_INPUT, feature=name) for n in names
        ], MetricStatus.INVALID_INPUT

    out: list[Metric] = []
    r, c = ref.stats, cur.stats
    eps = p["epsilon"]
    psi = psi_from_counts(r.full_counts(), c.full_counts(), eps)
    _append_bins(bin_rows, name, r, c, eps)
    out.append(
        Metric(
            "psi",
            psi,
            feature=name,
            counts={"bins": int(r.full_counts().size), "reference_rows": r.rows, "current_rows": c.rows},
        )
    )
    miss_ref, miss_cur = _share(r.missing, r.rows), _share(c.missing, c.rows)
    out.append(
        Metric(
            "missing_share_reference", miss_ref, feature=name, counts={"missing": r.missing, "rows": r.rows}
        )
    )
    out.append(
        Metric("missing_share_current", miss_cur, feature=name, counts={"missing": c.missing, "rows": c.rows})
    )
    out.append(Metric("missing_share_delta", miss_cur - miss_ref, feature=name))

    status = MetricStatus.OK
    new_share: float | None = None
    if isinstance(r, NumericReduction) and isinstance(c, NumericReduction):
        if r.finite == 0 or c.finite == 0:
            side = "reference" if r.finite == 0 else "current"
            reason = f"{side} data has no finite values in {name}"
            out += [
                Metric.undefined(n, reason, feature=name)
                for n in ("ks_statistic", "ks_pvalue", "wasserstein_norm")
            ]
            status = MetricStatus.INSUFFICIENT_DATA
        else:
            exact = r.sample_exact and c.sample_exact
            counts = {"reference_n": int(r.sample.size), "current_n": int(c.sample.size), "exact": exact}
            d_merge, w = ks_wasserstein(r.sample, c.sample)
            d, pvalue, method = ks_test(r.sample, c.sample, d_merge, sampled=not exact)
            out.append(Metric("ks_statistic", d, feature=name, counts=counts))
            out.append(Metric("ks_pvalue", pvalue, feature=name, counts={**counts, "method": method}))
            if not r.std:
                out.append(
                    Metric.undefined(
                        "wasserstein_norm",
                        f"reference standard deviation of {name} is 0 (constant column): the distance cannot be normalised",
                        feature=name,
                    )
                )
            else:
                out.append(
                    Metric(
                        "wasserstein_norm", w / r.std, feature=name, counts={**counts, "reference_std": r.std}
                    )
                )
    elif isinstance(r, CategoricalReduction) and isinstance(c, CategoricalReduction):
        ref_vec = np.concatenate((r.counts, [r.other, 0])).astype(float)
        cur_vec = np.concatenate((c.counts, [c.other, c.new])).astype(float)
        if ref_vec.sum() == 0 or cur_vec.sum() == 0:
            side = "reference" if ref_vec.sum() == 0 else "current"
            reason = f"{side} data has no non-missing values in {name}"
            out += [Metric.undefined(n, reason, feature=name) for n in ("chi2_pvalue", "js_distance")]
            status = MetricStatus.INSUFFICIENT_DATA
        else:
            out.append(_chi2(name, ref_vec, cur_vec))
            from scipy.spatial.distance import jensenshannon

            js = float(jensenshannon(ref_vec, cur_vec, base=2))
            if math.isnan(js):  # sqrt of a divergence rounded to just below 0: identical distributions
                js = 0.0
            out.append(Metric("js_distance", min(max(js, 0.0), 1.0), feature=name))
        if r.reference_levels is None:
            out.append(
                Metric.undefined(
                    "new_category_share",
                    f"the reference has more than {len(r.categories)} kept levels and too many to remember all (an identifier?)",
                    feature=name,
                )
            )
        else:
            new_share = _share(c.new, c.rows)
            out.append(
                Metric(
                    "new_category_share",
                    new_share,
                    feature=name,
                    counts={"new_rows": c.new, "examples": list(c.new_examples)},
                )
            )

    reasons = []
    if psi >= p["psi_threshold"]:
        reasons.append(f"psi {psi:.4g} >= {p['psi_threshold']}")
    if abs(miss_cur - miss_ref) >= p["missing_share_threshold"]:
        reasons.append(
            f"|missing_share_delta| {abs(miss_cur - miss_ref):.4g} >= {p['missing_share_threshold']}"
        )
    if new_share is not None and new_share >= p["new_category_threshold"]:
        reasons.append(f"new_category_share {new_share:.4g} >= {p['new_category_threshold']}")
    out.append(Metric("drifted", 1.0 if reasons else 0.0, feature=name, counts={"because": reasons}))
    return out, status


def _chi2(name: str, ref_vec: np.ndarray, cur_vec: np.ndarray) -> Metric:
    from scipy import stats

    keep = (ref_vec + cur_vec) > 0
    r, c = ref_vec[keep], cur_vec[keep]
    if r.size < 2:
        return Metric.undefined(
            "chi2_pvalue", f"{name} has a single level on both sides: nothing to test", feature=name
        )
    counts = {"bins": int(r.size), "dof": int(r.size - 1)}
    if np.any((r == 0) & (c > 0)):
        return Metric(
            "chi2_pvalue",
            0.0,
            feature=name,
            counts={**counts, "statistic": "inf (a level absent from the reference)"},
        )
    expected = r / r.sum() * c.sum()
    res = stats.chisquare(c, f_exp=expected)
    return Metric(
        "chi2_pvalue", float(res.pvalue), feature=name, counts={**counts, "statistic": float(res.statistic)}
    )


def _append_bins(
    rows: list[dict[str, Any]],
    name: str,
    r: NumericReduction | CategoricalReduction,
    c: NumericReduction | CategoricalReduction,
    eps: float,
) -> None:
    rc, cc = r.full_counts(), c.full_counts()
    if isinstance(r, NumericReduction):
        e = r.edges
        lows = ["-inf", *[repr(float(v)) for v in e]]
        highs = [*[repr(float(v)) for v in e], "inf"]
        labels = [
            f"({lo}, {hi}]" if i < len(e) else f"({lo}, inf)"
            for i, (lo, hi) in enumerate(zip(lows, highs, strict=True))
        ]
        labels += ["NaN", "+inf", "-inf"]
    else:
        labels = c.bin_labels()
    p = np.maximum(rc / max(rc.sum(), 1), eps)
    q = np.maximum(cc / max(cc.sum(), 1), eps)
    for label, a, b, pa, qb in zip(labels, rc, cc, p, q, strict=True):
        rows.append(
            {
                "feature": name,
                "bin": label,
                "reference_count": int(a),
                "current_count": int(b),
                "reference_share": int(a) / max(int(rc.sum()), 1),
                "current_share": int(b) / max(int(cc.sum()), 1),
                "psi_term": float((qb - pa) * np.log(qb / pa)),
            }
        )


def _dataset_metrics(metrics: list[Metric], spec: ColumnSpec) -> list[Metric]:
    def ok(name: str) -> list[Metric]:
        return [
            m for m in metrics if m.name == name and m.feature is not None and m.status is MetricStatus.OK
        ]

    out = []
    drifted = ok("drifted")
    if drifted:
        n = sum(m.value for m in drifted)  # type: ignore[misc]
        out.append(
            Metric(
                "drift_share",
                n / len(drifted),
                counts={
                    "drifted": int(n),
                    "features": len(drifted),
                    "drifted_features": [m.feature for m in drifted if m.value],
                },
            )
        )
    else:
        out.append(Metric.undefined("drift_share", "no feature has a defined drift verdict"))
    for name, source, key in (
        ("max_psi", "psi", lambda v: v),
        ("max_missing_share_delta", "missing_share_delta", abs),
        ("max_new_category_share", "new_category_share", lambda v: v),
    ):
        found = ok(source)
        if (
            not found
            and source == "new_category_share"
            and not any(f.kind is ColumnKind.CATEGORICAL for f in spec.features)
        ):
            # No categorical feature: no category can be new. That is a true 0, not missing data.
            out.append(Metric(name, 0.0, counts={"categorical_features": 0}))
            continue
        if not found:
            reason = (
                "no categorical feature with known reference levels"
                if source == "new_category_share"
                else f"no feature has a defined {source}"
            )
            out.append(Metric.undefined(name, reason))
            continue
        best = max(found, key=lambda m: key(m.value))
        out.append(Metric(name, key(best.value), counts={"feature": best.feature}))
    return out


def _table_row(name: str, kind: str, fm: list[Metric]) -> dict[str, Any]:
    row: dict[str, Any] = {"feature": name, "kind": kind}
    for col in (
        "psi",
        "ks_statistic",
        "ks_pvalue",
        "wasserstein_norm",
        "chi2_pvalue",
        "js_distance",
        "missing_share_reference",
        "missing_share_current",
        "missing_share_delta",
        "new_category_share",
        "drifted",
    ):
        row[col] = None
    notes = []
    for m in fm:
        row[m.name] = m.value
        if m.status is not MetricStatus.OK:
            notes.append(f"{m.name}: {m.reason}")
    row["notes"] = "; ".join(dict.fromkeys(notes))
    return row


# -- Evidently HTML report on a bounded sample ---------------------------------------------------------


#: The inputs of the HTML report that the cache key covers (with the samples' bytes): bump when the way the
#: report is drawn changes, so no cache written by older code is reused.
HTML_CACHE_FORMAT = "modelreg.drift.evidently-html/v1"
HTML_CACHE_MAX_ENTRIES = 16  # a report is a few MB (Evidently inlines its scripts)
HTML_CACHE_NOTE = "Evidently report reused from the report cache"


def _evidently_html(
    spec: ColumnSpec,
    ref: pd.DataFrame,
    cur: pd.DataFrame,
    p: Mapping[str, Any],
    notes: list[str],
    *,
    cache_dir: str | Path | None = None,
) -> bytes | None:
    """Evidently's own drift report on at most ``html_sample_rows`` seeded rows per side (for people to look
    at; the metrics of this monitor never come from it). With ``cache_dir`` the report is kept there under
    the digest of its inputs (both samples' bytes, their columns and kinds, the Evidently and monitor
    versions, the parameters) and reused by a later run on the same inputs, with the notes it was made with
    and a note saying it was reused."""
    import pandas as pd

    k = p["html_sample_rows"]
    rng = np.random.default_rng(p["seed"])

    def sample(frame: pd.DataFrame) -> pd.DataFrame:
        cols = [c for c in (*spec.feature_names, _score_column(spec)) if c and c in frame.columns]
        frame = frame[cols]
        if len(frame) <= k:
            return frame.reset_index(drop=True)
        idx = np.sort(rng.choice(len(frame), size=k, replace=False))
        return frame.iloc[idx].reset_index(drop=True)

    ref_s, cur_s = sample(ref), sample(cur)
    key = _html_cache_key(spec, ref_s, cur_s, p) if cache_dir is not None else None
    if key is not None:
        hit = _html_cache_get(Path(cache_dir), key)  # type: ignore[arg-type]
        if hit is not None:
            html_bytes, made_with = hit
            notes.extend(made_with)
            notes.append(
                f"{HTML_CACHE_NOTE} (key {key[:16]}…): same samples, columns, Evidently version and parameters"
            )
            return html_bytes
    own: list[str] = []
    try:
        from evidently import DataDefinition, Dataset, Report
        from evidently.presets import DataDriftPreset

        numeric = [
            c
            for c in ref_s.columns
            if pd.api.types.is_numeric_dtype(ref_s[c].dtype) and spec_kind(spec, c) != "categorical"
        ]
        categorical = [c for c in ref_s.columns if c not in numeric]
        # Evidently draws every level; pool the long tail as this monitor does so the report stays readable
        # and fast (a 20,000-level column otherwise takes tens of seconds to render).
        pooled = []
        for c in categorical:
            top = ref_s[c].value_counts().index[: p["max_categories"]]
            if ref_s[c].nunique() > len(top) or not cur_s[c].dropna().isin(top).all():
                pooled.append(c)
                for frame in (ref_s, cur_s):
                    col = frame[c].astype(object)
                    frame[c] = col.where(col.isna() | col.isin(top), OTHER)
        if pooled:
            own.append(
                f"Evidently report: levels outside the reference sample's top {p['max_categories']} pooled as {OTHER!r} in {pooled[:10]}"
            )
        definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            snapshot = Report([DataDriftPreset()]).run(
                Dataset.from_pandas(cur_s, data_definition=definition),
                Dataset.from_pandas(ref_s, data_definition=definition),
            )
            # save_html silently ignores a file object in 0.7.23: take the string.
            html = snapshot.get_html_str(as_iframe=False)
    except Exception as exc:  # Evidently failing must not lose the metrics, only its picture
        notes.extend(own)
        notes.append(
            f"Evidently report not written: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        )
        return None
    own.append(
        f"Evidently report on a seeded sample (seed {p['seed']}) of {len(ref_s)} reference and {len(cur_s)} current rows; "
        "its verdicts use its own tests and drop NaN/inf"
    )
    notes.extend(own)
    out = html.encode("utf-8")
    if key is not None:
        problem = _html_cache_put(Path(cache_dir), key, out, own)  # type: ignore[arg-type]
        if problem:
            notes.append(f"Evidently report not cached: {problem}")
    return out


def _html_cache_key(spec: ColumnSpec, ref_s: pd.DataFrame, cur_s: pd.DataFrame, p: Mapping[str, Any]) -> str:
    """SHA-256 over the report's inputs, each part length-prefixed: the recipe (format, versions, columns,
    their kinds and dtypes, parameters) and the bytes of both samples as CSV."""
    import hashlib

    def frame_bytes(frame: pd.DataFrame) -> bytes:
        return frame.to_csv(index=False, lineterminator="\n").encode("utf-8")

    recipe = {
        "format": HTML_CACHE_FORMAT,
        "monitor_version": DriftMonitor.version,
        "evidently": library_versions("evidently").get("evidently"),
        "columns": {
            side: [[c, str(f[c].dtype), spec_kind(spec, c)] for c in f.columns]
            for side, f in (("reference", ref_s), ("current", cur_s))
        },
        "params": dict(p),
    }
    h = hashlib.sha256()
    for part in (
        json.dumps(recipe, sort_keys=True, default=str).encode("utf-8"),
        frame_bytes(ref_s),
        frame_bytes(cur_s),
    ):
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()


def _html_cache_get(folder: Path, key: str) -> tuple[bytes, list[str]] | None:
    """The cached report and the notes it was made with, if the entry is complete and its bytes match the
    digest recorded beside them (a truncated or edited file is a miss, and is made again)."""
    import hashlib

    try:
        meta = json.loads((folder / f"{key}.json").read_text(encoding="utf-8"))
        data = (folder / f"{key}.html").read_bytes()
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or meta.get("sha256") != hashlib.sha256(data).hexdigest():
        return None
    made_with = meta.get("notes")
    if not isinstance(made_with, list) or not all(isinstance(n, str) for n in made_with):
        return None
    return data, made_with


def _html_cache_put(folder: Path, key: str, data: bytes, made_with: list[str]) -> str | None:
    """Store one entry (the HTML first, then its sidecar, each written whole with a rename, so a reader sees a
    complete entry or none) and keep at most ``HTML_CACHE_MAX_ENTRIES``. A cache that cannot be written
    costs the next run its speed, never this run its report: the reason is returned as a note."""
    import hashlib
    import os
    import tempfile

    meta = {"format": HTML_CACHE_FORMAT, "sha256": hashlib.sha256(data).hexdigest(), "notes": made_with}
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name, payload in ((f"{key}.html", data), (f"{key}.json", json.dumps(meta).encode("utf-8"))):
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(payload)
                os.replace(tmp, folder / name)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        entries = sorted(folder.glob("*.json"), key=lambda f: f.stat().st_mtime, reverse=True)
        for old in entries[HTML_CACHE_MAX_ENTRIES:]:
            old.unlink(missing_ok=True)
            old.with_suffix(".html").unlink(missing_ok=True)
    except OSError as exc:
        return f"{type(exc).__name__}: {exc.strerror or exc}"
    return None


def spec_kind(spec: ColumnSpec, column: str) -> str:
    try:
        return spec.feature(column).kind.value
    except KeyError:
        return "numeric"
