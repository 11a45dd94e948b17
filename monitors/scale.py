"""Monitoring at bank scale: the reduction step on DuckDB or Spark, the metric step shared with pandas.

``drift_on(engine, spec, current=..., profile=... | reference=...)`` and ``fairness_on(engine, spec,
current=...)`` reduce the data where it lives (Parquet files or folders and DuckDB tables through DuckDB, Spark
DataFrames and tables through Spark) into the dataclasses of :mod:`monitors.engines.pandas`, then hand them to
the monitors' own metric code (``monitors.drift._feature_metrics``/``_dataset_metrics``,
``monitors.fairness._rates``/``_disparities``/...). No row reaches pandas.

Agreement with the pandas path (``DriftMonitor.run`` / ``FairnessMonitor.run`` on the same data)
------------------------------------------------------------------------------------------------------
* **Exact** (bit for bit): row counts, NaN/±inf counts, reference-quantile bin edges and bin counts, category
  counts, ``__other__``/``__new__``, hence ``psi``, ``score_psi``, ``chi2_pvalue``, ``js_distance``,
  ``missing_share_*``, ``new_category_share``, ``drifted``, ``drift_share``; the fairness confusion table per
  finest cell, hence every rate, disparity and (same seed, same cell order) bootstrap interval; per-group AUC
  (its Mann–Whitney numerator is a sum of half-integers, exact in any order).
* **Exact when a side fits the sample** (``sample_size`` finite values, 50,000 by default): ``ks_statistic``,
  ``ks_pvalue``, ``wasserstein_norm`` (the values are fetched in row order, so even the reference std matches).
  DuckDB keeps row order on plain scans; Spark usually does on a local DataFrame, and otherwise the std differs
  in the last bits only (relative 1e-12).
* **Within sampling error** above the sample size: the engines draw their own seeded uniform sample (hash of
  seed, role and row id) instead of numpy's draw, so KS and Wasserstein are those of a different
  sample of the same size ``m``. By the Dvoretzky–Kiefer–Wolfowitz inequality each sample's ECDF is within
  ``sqrt(ln(2/α)/(2m))`` of the full data's with probability ``1−α``: for ``m = 50,000`` and ``α = 1e-6``
  that is 0.0121, so ``|ks_statistic(engine) − ks_statistic(pandas)| ≤ 0.049`` (four samples) and the
  Wasserstein distance moves by at most the same ECDF bound times the value range. The tests assert the DKW
  bound; the reference std then comes from the engine's ``stddev_pop`` (relative 1e-12).

Streaming: DuckDB reads Parquet column by column and aggregates in bounded memory; the bench
(``benchmarks/bench_engines.py``) measures peak RSS against pandas on the same file.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from monitors.base import (
    ColumnKind,
    ColumnSpec,
    DataFingerprint,
    DataInputError,
    Metric,
    MetricStatus,
    MonitorResult,
    ParameterError,
    ReferenceProfile,
    invalid_result,
    library_versions,
)
from monitors.engines.pandas import (
    LEVELS_LIMIT,
    CategoricalReduction,
    NumericReduction,
    category_key,
    quantile_edges,
)

ENGINES = ("pandas", "duckdb", "spark")
#: How ``monitor_on`` feeds a built-in kind on DuckDB/Spark: ``reduce`` on the engine, load only the label
#: ``columns``, or a seeded row sample for monitors that run the model row by row (``sample``:
#: ``sample_rows`` rows; ``sample_own``: as many as the monitor's ``sample_size`` parameter, since it
#: would sample that many anyway). Other kinds (a bank's own) run on pandas.
_ENGINE_PLANS: Mapping[str, str] = {
    "drift": "reduce",
    "fairness": "reduce",
    "performance": "columns",
    "explainability": "sample_own",
    "robustness": "sample",
}
#: choose_engine sends a Parquet input to DuckDB above either of these.
AUTO_DUCKDB_ROWS = 2_000_000
AUTO_DUCKDB_BYTES = 1 << 30


# -- engine choice and opening -----------------------------------------------------------------------------


def _is_spark_frame(data: Any) -> bool:
    return type(data).__module__.startswith("pyspark.") and hasattr(data, "sparkSession")


def parse_data_ref(data: Any) -> Any:
    """``duckdb:PATH::TABLE`` → (PATH, TABLE); ``spark:TABLE`` stays a string; other values unchanged."""
    if isinstance(data, str) and data.startswith("duckdb:"):
        body = data[len("duckdb:") :]
        path, sep, table = body.rpartition("::")
        if not sep or not path or not table:
            raise ParameterError(f"a DuckDB reference must be duckdb:PATH::TABLE. Got {data!r} instead.")
        return (path, table)
    return data


def choose_engine(data: Any) -> str:
    """pandas for a DataFrame or a small file, duckdb for a DuckDB table or a Parquet file/folder above
    ``AUTO_DUCKDB_ROWS`` rows or ``AUTO_DUCKDB_BYTES`` bytes, spark for a Spark DataFrame or ``spark:TABLE``."""
    if isinstance(data, pd.DataFrame):
        return "pandas"
    if _is_spark_frame(data) or (isinstance(data, str) and data.startswith("spark:")):
        return "spark"
    data = parse_data_ref(data)
    if isinstance(data, tuple):
        return "duckdb"
    path = Path(data)
    if path.suffix.lower() == ".csv":
        return "pandas"
    from monitors.engines.duckdb import parquet_files

    files = parquet_files(path)
    if sum(f.stat().st_size for f in files) > AUTO_DUCKDB_BYTES:
        return "duckdb"
    import pyarrow.parquet as pq

    rows = 0
    for f in files:
        try:
            rows += pq.ParquetFile(f).metadata.num_rows
        except Exception as exc:
            raise DataInputError(
                f"cannot read {f}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
            ) from exc
    return "duckdb" if rows > AUTO_DUCKDB_ROWS else "pandas"


def open_backend(engine: str, data: Any, **options: Any) -> Any:
    """A reduction backend over ``data`` (raises ``DataInputError`` for unreadable data)."""
    data = parse_data_ref(data)
    if engine == "duckdb":
        from monitors.engines.duckdb import DuckDBBackend

        return DuckDBBackend(
            data,
            connection=options.get("connection"),
            threads=options.get("threads"),
            memory_limit=options.get("memory_limit"),
        )
    if engine == "spark":
        from monitors.engines.spark import SparkBackend

        return SparkBackend(data, spark=options.get("spark"))
    raise ParameterError(f"engine must be one of {list(ENGINES)}. Got {engine!r} instead.")


# -- numeric reductions from order statistics and counts ----------------------------------------------------


def numpy_quantile_edges(n: int, n_bins: int, values_at: Callable[[list[int]], np.ndarray]) -> np.ndarray:
    """``quantile_edges`` of ``n`` finite values known only through ``values_at(ranks)`` (0-based order
    statistics): numpy's own virtual indices, neighbour choice and ``_lerp`` on the exact neighbours, so the
    result is bit-for-bit ``np.unique(np.quantile(values, probs))``."""
    if n == 0 or n_bins < 2:
        return np.empty(0, dtype=float)
    from numpy.lib import _function_base_impl as fb

    probs = np.arange(1, n_bins) / n_bins
    method = fb._QuantileMethods["linear"]
    virtual = np.asanyarray(method["get_virtual_index"](n, probs))
    prev, nxt = fb._get_indexes(np.empty(0, dtype=float), virtual, n)
    gamma = fb._get_gamma(virtual, prev, method)
    prev = np.where(prev < 0, n - 1, prev)
    nxt = np.where(nxt < 0, n - 1, nxt)
    ranks = sorted(set(prev.tolist()) | set(nxt.tolist()))
    found = dict(zip(ranks, np.asarray(values_at(ranks), dtype=float).tolist(), strict=True))
    a = np.array([found[r] for r in prev], dtype=float)
    b = np.array([found[r] for r in nxt], dtype=float)
    return np.unique(fb._lerp(a, b, gamma))


def categorical_from_counts(
    pairs: Sequence[tuple[Any, int]],
    *,
    reference: CategoricalReduction | None = None,
    max_categories: int = 50,
) -> CategoricalReduction:
    """``reduce_categorical`` from (raw value, count) pairs of a ``GROUP BY``: same keys, order and pooling."""
    missing = 0
    keyed: dict[str, int] = {}
    for value, count in pairs:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            missing += count
            continue
        key = category_key(value)
        keyed[key] = keyed.get(key, 0) + int(count)
    rows = missing + sum(keyed.values())
    # Most frequent first, ties by key: the pandas engine's lexsort order.
    ordered = sorted(keyed.items(), key=lambda kv: (-kv[1], kv[0]))
    if reference is None:
        kept = ordered[:max_categories]
        levels = [k for k, _ in ordered]
        return CategoricalReduction(
            rows=rows,
            missing=missing,
            categories=[k for k, _ in kept],
            counts=np.asarray([c for _, c in kept], dtype=np.int64),
            other=int(sum(c for _, c in ordered[max_categories:])),
            new=0,
            levels=len(ordered),
            capped=len(ordered) > max_categories,
            reference_levels=sorted(levels) if len(levels) <= LEVELS_LIMIT else None,
        )
    kept_set = set(reference.categories)
    kept_counts = np.asarray([keyed.get(k, 0) for k in reference.categories], dtype=np.int64)
    rest = [(k, c) for k, c in ordered if k not in kept_set]
    if reference.reference_levels is None:
        other, new, examples = int(sum(c for _, c in rest)), 0, []
    else:
        known = set(reference.reference_levels)
        other = int(sum(c for k, c in rest if k in known))
        unseen = [(k, c) for k, c in rest if k not in known]
        new, examples = int(sum(c for _, c in unseen)), [k for k, _ in unseen[:10]]
    return CategoricalReduction(
        rows=rows,
        missing=missing,
        categories=list(reference.categories),
        counts=kept_counts,
        other=other,
        new=new,
        levels=len(ordered),
        capped=reference.capped,
        new_examples=examples,
    )


def _numeric_message(name: str, prof: Mapping[str, Any], kind: str) -> str | None:
    if kind == "other":
        return f"column {name} must be numeric. Got a column of type {prof.get('type', 'unknown')} instead."
    if prof["bad"]:
        return (
            f"column {name} must be numeric. Got {prof['bad']} non-numeric value(s), "
            f"e.g. {prof['example']!r}, instead."
        )
    return None


def reduce_numeric_columns(
    backend: Any,
    cols: Sequence[str],
    p: Mapping[str, Any],
    *,
    role: int,
    edges: Mapping[str, np.ndarray] | None = None,
) -> dict[str, NumericReduction | str]:
    """Numeric reductions of ``cols`` (reference when ``edges`` is None), or the error message of a column."""
    schema = backend.schema()
    usable = [c for c in cols if schema[c] != "other"]
    profile = backend.numeric_profile(usable, with_std=usable if edges is None else ())
    out: dict[str, NumericReduction | str] = {}
    large: dict[str, dict[str, Any]] = {}
    # Small data: every exact-path column in one scan instead of one query per column.
    small = [c for c in usable if profile[c]["rows"] <= p["sample_size"] and not profile[c]["bad"]]
    prefetched = backend.numeric_columns(small) if small else {}
    for c in cols:
        if schema[c] == "other":
            out[c] = _numeric_message(c, {"type": backend.raw_types()[c]}, "other")  # type: ignore[assignment]
            continue
        prof = profile[c]
        msg = _numeric_message(c, prof, schema[c])
        if msg:
            out[c] = msg
            continue
        n_finite = prof["finite"]
        if n_finite <= p["sample_size"]:
            if c in prefetched:
                allv = prefetched[c]
                finite = allv[np.isfinite(allv)]
            else:
                finite = backend.finite_values(c)
            sample = np.sort(finite)
            col_edges = (
                quantile_edges(sample, p["n_bins"]) if edges is None else np.asarray(edges[c], dtype=float)
            )
            cumulative = np.searchsorted(sample, col_edges, side="right")
            counts = np.diff(np.concatenate(([0], cumulative, [n_finite]))).astype(np.int64)
            std = float(np.std(finite)) if edges is None and n_finite > 0 else None
            out[c] = NumericReduction(
                prof["rows"],
                prof["nan"],
                prof["posinf"],
                prof["neginf"],
                col_edges,
                counts,
                sample,
                True,
                n_finite,
                std,
            )
        else:
            if edges is None:
                col_edges = numpy_quantile_edges(
                    n_finite, p["n_bins"], lambda ranks, c=c, n=n_finite: backend.order_stats(c, ranks, n)
                )
            else:
                col_edges = np.asarray(edges[c], dtype=float)
            large[c] = {"prof": prof, "edges": col_edges}
    if large:
        cumulative = backend.cumulative_counts(
            {c: v["edges"] for c, v in large.items()}, {c: v["prof"]["neginf"] for c, v in large.items()}
        )
        samples = backend.samples(
            list(large), p["sample_size"], p["seed"], role, {c: v["prof"]["finite"] for c, v in large.items()}
        )
        for c, v in large.items():
            prof, n_finite = v["prof"], v["prof"]["finite"]
            counts = np.diff(np.concatenate(([0], cumulative[c], [n_finite]))).astype(np.int64)
            sample = samples[c]
            std = prof["std"] if edges is None else None
            out[c] = NumericReduction(
                prof["rows"],
                prof["nan"],
                prof["posinf"],
                prof["neginf"],
                v["edges"],
                counts,
                sample,
                False,
                n_finite,
                std,
            )
    return out


# -- drift -------------------------------------------------------------------------------------------------


def _is_numeric_feature(kind: ColumnKind, col_kind: str) -> bool:
    return kind is ColumnKind.NUMERIC or (kind is ColumnKind.ORDINAL and col_kind in ("numeric", "bool"))


def _reduce_reference(backend: Any, spec: ColumnSpec, p: Mapping[str, Any]) -> dict[str, Any]:
    from monitors.drift import _REDUCTION_PARAMS, _FeatureStats, _score_column

    schema = backend.schema()
    score_col = _score_column(spec)
    columns = [(f.name, f.kind) for f in spec.features]
    if score_col is not None and score_col in schema:
        columns.append((score_col, ColumnKind.ORDINAL))
    numeric = [name for name, kind in columns if _is_numeric_feature(kind, schema[name])]
    reduced = reduce_numeric_columns(backend, list(dict.fromkeys(numeric)), p, role=0)
    levels = backend.level_counts_many(list(dict.fromkeys(n for n, _ in columns if n not in reduced)))
    stats: dict[str, Any] = {}
    for name, _ in columns:
        if name in reduced:
            r = reduced[name]
            stats[name] = (
                _FeatureStats("invalid", reason=f"reference {r}")
                if isinstance(r, str)
                else _FeatureStats("numeric", r)
            )
        else:
            stats[name] = _FeatureStats(
                "categorical",
                categorical_from_counts(levels[name], max_categories=p["max_categories"]),
            )
    features = {f.name: stats[f.name] for f in spec.features}
    score = stats.get(score_col) if score_col is not None and score_col in schema else None
    return {
        "reduction_params": {k: p[k] for k in _REDUCTION_PARAMS},
        "features": features,
        "score_column": score_col,
        "score": score,
    }


def _reduce_current(backend: Any, columns: Sequence[tuple[str, Any]], p: Mapping[str, Any]) -> dict[str, Any]:
    """Current reductions against the reference stats ``columns`` = [(name, _FeatureStats)]."""
    from monitors.drift import _FeatureStats

    schema = backend.schema()
    numeric = {
        name: ref.stats.edges
        for name, ref in columns
        if ref.kind == "numeric" and isinstance(ref.stats, NumericReduction)
    }
    reduced = reduce_numeric_columns(backend, list(numeric), p, role=1, edges=numeric)
    levels = backend.level_counts_many([name for name, ref in columns if ref.kind == "categorical"])
    out: dict[str, Any] = {}
    invalid_ref = [name for name, ref in columns if ref.kind not in ("numeric", "categorical")]
    check = backend.numeric_profile([c for c in invalid_ref if schema[c] == "string"]) if invalid_ref else {}
    for name, ref in columns:
        if ref.kind == "numeric":
            r = reduced[name]
            out[name] = (
                _FeatureStats("invalid", reason=f"current {r}")
                if isinstance(r, str)
                else _FeatureStats("numeric", r)
            )
        elif ref.kind == "categorical":
            out[name] = _FeatureStats(
                "categorical", categorical_from_counts(levels[name], reference=ref.stats)
            )
        else:
            # The reference column was unusable: still check the current one so both problems are reported.
            msg = _numeric_message(name, check[name], "string") if name in check else None
            out[name] = _FeatureStats("invalid", reason=f"current {msg}" if msg else None)
    return out


def profile_on(
    engine: str,
    spec: ColumnSpec,
    reference: Any,
    params: Mapping[str, Any] | None = None,
    **options: Any,
) -> ReferenceProfile:
    """``DriftMonitor.profile`` with the reduction on ``engine``; raises ``DataInputError`` on bad data."""
    from monitors.drift import DriftMonitor

    monitor = DriftMonitor()
    if engine == "pandas":
        return monitor.profile(spec, reference, params)
    p = monitor.validate_params(params)
    backend = open_backend(engine, reference, **options)
    try:
        _check_columns(backend, spec.feature_names, "reference")
        fp = backend.fingerprint("reference")
        if fp.rows == 0:
            raise DataInputError("reference data has 0 rows")
        payload = monitor._serialise(_reduce_reference(backend, spec, p))
    finally:
        backend.close()
    return ReferenceProfile(
        kind="drift", monitor_version=monitor.version, spec=spec, payload=payload, fingerprint=fp
    )


def _check_columns(backend: Any, names: Sequence[str], role: str) -> None:
    cols = list(backend.schema())
    missing = [n for n in names if n not in cols]
    if missing:
        raise DataInputError(f"{role} data is missing feature column(s) {missing}; it has {cols[:20]}")


def drift_on(
    engine: str,
    spec: ColumnSpec,
    *,
    current: Any,
    reference: Any = None,
    profile: ReferenceProfile | None = None,
    params: Mapping[str, Any] | None = None,
    artifacts_dir: str | Path | None = None,
    **options: Any,
) -> MonitorResult:
    """Drift with the reduction on ``engine`` ("pandas" delegates to ``DriftMonitor.run``).

    ``current``/``reference``: a Parquet file, folder or glob, ``duckdb:PATH::TABLE`` or (PATH, TABLE) for
    DuckDB; a Spark DataFrame or ``spark:TABLE`` for Spark; a pandas DataFrame for either. ``options``:
    ``connection=``/``threads=``/``memory_limit=`` (DuckDB, e.g. "1GB"), ``spark=`` (a SparkSession)."""
    from monitors.drift import (
        DriftMonitor,
        _dataset_metrics,
        _feature_metrics,
        _merge_profile_params,
        _table_row,
        psi_from_counts,
    )

    monitor = DriftMonitor()
    if engine == "pandas":
        return monitor.run(
            spec,
            reference=reference,
            current=current,
            profile=profile,
            params=params,
            artifacts_dir=artifacts_dir,
        )
    p = monitor.validate_params(params)
    if (reference is None) == (profile is None):
        raise ParameterError(
            "reference must be given either as data (reference=) or as a profile (profile=). "
            f"Got {'both' if reference is not None else 'neither'} instead."
        )
    if current is None:
        raise ParameterError(
            "current must be a Parquet path, a table reference or a DataFrame. Got None instead."
        )
    if profile is not None:
        p = _merge_profile_params(profile, p, params or {})
    if engine not in ENGINES:
        raise ParameterError(f"engine must be one of {list(ENGINES)}. Got {engine!r} instead.")
    fingerprints: list[DataFingerprint] = []
    notes: list[str] = [f"reduction engine: {engine}"]
    backends: list[Any] = []
    versions = library_versions("evidently", engine if engine == "duckdb" else "pyspark")
    try:
        try:
            ref_backend = None
            if profile is None:
                ref_backend = open_backend(engine, reference, **options)
                backends.append(ref_backend)
                fingerprints.append(ref_backend.fingerprint("reference"))
            else:
                fingerprints.append(profile.fingerprint)
            cur_backend = open_backend(engine, current, **options)
            backends.append(cur_backend)
            fingerprints.append(cur_backend.fingerprint("current"))
            if ref_backend is not None:
                _check_columns(ref_backend, spec.feature_names, "reference")
            _check_columns(cur_backend, spec.feature_names, "current")
        except DataInputError as exc:
            return invalid_result(
                monitor.kind, monitor.version, p, str(exc), fingerprints=tuple(fingerprints), seed=p["seed"]
            )
        empty = [
            role
            for role, fp in zip(
                ("reference", "current"),
                fingerprints if profile is None else [None, fingerprints[-1]],
                strict=True,
            )
            if fp is not None and fp.rows == 0
        ]
        if empty:
            return MonitorResult(
                kind=monitor.kind,
                monitor_version=monitor.version,
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
                        monitor.kind,
                        monitor.version,
                        p,
                        f"the reference profile has no statistics for feature(s) {missing}; rebuild it with this spec",
                        fingerprints=tuple(fingerprints),
                        seed=p["seed"],
                    )
                payload = monitor._deserialise(profile.payload)
            else:
                assert ref_backend is not None
                payload = _reduce_reference(ref_backend, spec, p)
            columns = [(f.name, payload["features"][f.name]) for f in spec.features]
            score_col = payload.get("score_column")
            cur_schema = cur_backend.schema()
            with_score = (
                score_col is not None and payload.get("score") is not None and score_col in cur_schema
            )
            if with_score:
                columns.append((score_col, payload["score"]))
            cur_stats = _reduce_current(cur_backend, columns, p)
        except DataInputError as exc:
            return invalid_result(
                monitor.kind, monitor.version, p, str(exc), fingerprints=tuple(fingerprints), seed=p["seed"]
            )
    finally:
        for b in reversed(backends):  # a shared connection gets its settings back in order
            b.close()

    used = set(spec.feature_names) | {c for c in (spec.score, spec.prediction, spec.target) if c}
    extra = [str(c) for c in cur_schema if c not in used]
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
    metrics.append(
        _score_psi(payload, cur_stats if with_score else None, cur_schema, p, bin_rows, psi_from_counts)
    )

    if sampled:
        notes.append(
            f"KS and Wasserstein use seeded {engine} samples of {p['sample_size']} finite values per side "
            f"(seed {p['seed']}; hash of seed, role and row id, not numpy's draw) for {len(sampled)} "
            f"feature(s) with more values: {sampled[:10]}; exact otherwise"
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
    artifacts: list[Any] = []
    if artifacts_dir is not None:
        if p["evidently_report"]:
            notes.append(f"no Evidently report on the {engine} engine: it needs rows in pandas")
        artifacts = monitor._write_artifacts(
            Path(artifacts_dir),
            spec,
            metrics,
            table_rows,
            bin_rows,
            {**p, "evidently_report": False},
            None,
            None,
            notes,  # type: ignore[arg-type]
        )
    return MonitorResult(
        kind=monitor.kind,
        monitor_version=monitor.version,
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


def _score_psi(
    payload: Mapping[str, Any],
    cur_stats: Mapping[str, Any] | None,
    cur_schema: Mapping[str, str],
    p: Mapping[str, Any],
    bin_rows: list[dict[str, Any]],
    psi_from_counts: Callable[..., float],
) -> Metric:
    from monitors.drift import _append_bins

    col = payload.get("score_column")
    if col is None:
        return Metric.undefined("score_psi", "the spec names no score or prediction column")
    if payload.get("score") is None:
        return Metric.undefined("score_psi", f"the reference data has no column {col!r}")
    if col not in cur_schema or cur_stats is None:
        return Metric.undefined("score_psi", f"the current data has no column {col!r}")
    ref, cur = payload["score"], cur_stats[col]
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


# -- fairness ----------------------------------------------------------------------------------------------


def _is_missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _attr_labels(values: list[Any], integer_with_nulls: bool) -> tuple[dict[Any, int], list[str]]:
    """Codes and labels of one sensitive attribute's distinct non-missing values, ordered and spelled as
    ``fairness._encode_group`` does on the frame pandas reads from the same Parquet data (an integer
    column with nulls is float64 there, so its labels read ``1.0``)."""
    try:
        ordered = sorted(values)
    except TypeError:
        ordered = sorted(values, key=str)
    labels = [str(float(v)) for v in ordered] if integer_with_nulls else [str(v) for v in ordered]
    return {v: i for i, v in enumerate(ordered)}, labels


def fairness_on(
    engine: str,
    spec: ColumnSpec,
    *,
    current: Any,
    params: Mapping[str, Any] | None = None,
    artifacts_dir: str | None = None,
    model: Any = None,
    **options: Any,
) -> MonitorResult:
    """Fairness with the confusion table (and per-group AUC) computed on ``engine``.

    The data must carry a prediction or a score column: scoring a model row by row is the pandas path's job
    (or Spark's ``mapInPandas``, see :func:`spark_predict`)."""
    from monitors import fairness as fz

    monitor = fz.FairnessMonitor()
    if engine == "pandas":
        return monitor.run(spec, current=current, model=model, params=params, artifacts_dir=artifacts_dir)
    p = monitor.validate_params(params)
    if not spec.sensitive:
        raise ParameterError("spec.sensitive must name at least one sensitive attribute. Got () instead.")
    unknown_bins = sorted(set(p["sensitive_bins"]) - set(spec.sensitive))
    if unknown_bins:
        raise ParameterError(
            f"sensitive_bins keys must be among {list(spec.sensitive)}. Got {unknown_bins} instead."
        )
    if engine not in ENGINES:
        raise ParameterError(f"engine must be one of {list(ENGINES)}. Got {engine!r} instead.")
    versions = library_versions("matplotlib", engine if engine == "duckdb" else "pyspark")
    backend = None
    try:
        backend = open_backend(engine, current, **options)
        fp = backend.fingerprint("current")
        reduced = _fairness_reduce(backend, spec, p, model)
    except DataInputError as exc:
        return invalid_result(monitor.kind, monitor.version, p, str(exc), seed=p["seed"])
    finally:
        if backend is not None:
            backend.close()
    prepared, cell_table, aucs, excluded = reduced
    notes = [f"reduction engine: {engine}"] + [f"{k}: {v} row(s) excluded" for k, v in excluded.items() if v]
    if int(cell_table.sum()) == 0:
        return MonitorResult(
            kind=monitor.kind,
            monitor_version=monitor.version,
            params=p,
            metrics=(),
            status=MetricStatus.INSUFFICIENT_DATA,
            reason="no usable rows" + (f" ({'; '.join(notes[1:])})" if notes[1:] else " (empty data)"),
            fingerprints=(fp,),
            seed=p["seed"],
            library_versions=versions,
            notes=tuple(notes),
        )
    metrics, table = compute_fairness_from_table(prepared, cell_table, aucs, p)
    artifacts: list[Any] = []
    if artifacts_dir is not None:
        artifacts = fz._write_artifacts(artifacts_dir, table)
    worst = [m for m in metrics if m.name in fz.DISPARITIES and m.feature is None]
    status, reason = MetricStatus.OK, None
    if not any(m.status is MetricStatus.OK for m in worst):
        status = MetricStatus.INSUFFICIENT_DATA
        reason = worst[0].reason if worst else "no disparity could be computed"
    if prepared.y is None:
        notes.append("spec has no target: only selection rates and demographic parity are computed")
    if prepared.score is None:
        notes.append("no score column or model: per-group AUC is not computed")
    if p["bootstrap"]:
        notes.append(
            f"bootstrap: {p['bootstrap']} replicates stratified by finest sensitive cell (group sizes fixed); "
            "no interval for AUC"
        )
    return MonitorResult(
        kind=monitor.kind,
        monitor_version=monitor.version,
        params=p,
        metrics=tuple(metrics),
        status=status,
        reason=reason,
        artifacts=tuple(artifacts),
        fingerprints=(fp,),
        seed=p["seed"],
        library_versions=versions,
        notes=tuple(notes),
    )


def _fairness_reduce(
    backend: Any, spec: ColumnSpec, p: Mapping[str, Any], model: Any
) -> tuple[Any, np.ndarray, dict[str, np.ndarray], dict[str, int]]:
    """The engine side of ``FairnessMonitor._prepare`` + ``confusion_by_cell``: one ``GROUP BY`` over
    (sensitive values, target, prediction or score ≥ threshold, exclusion flags)."""
    from monitors import fairness as fz
    from monitors.engines.duckdb import double_literal, sql_literal

    schema = backend.schema()
    cols = list(schema)
    attributes = list(spec.sensitive)
    has_pred = bool(spec.prediction and spec.prediction in schema)
    has_score = bool(spec.score and spec.score in schema)
    if not has_pred and not has_score:
        wanted = [c for c in (spec.prediction, spec.score) if c]
        raise DataInputError(
            "fairness needs predictions: a prediction column or a score column"
            + (
                " (the scale engines do not run models: add the model's scores to the data)"
                if model is not None
                else ""
            )
            + f". Got columns {cols[:20]}"
            + (f" (spec names {wanted})" if wanted else "")
            + "."
        )
    needed = [*attributes, *([spec.target] if spec.target else [])]
    missing = [c for c in needed if c not in schema]
    if missing:
        raise DataInputError(f"current data is missing column(s) {missing}; it has {cols[:20]}")

    checks = [
        c for c in ([spec.score] if has_score else []) + list(p["sensitive_bins"]) if schema[c] == "string"
    ]
    prof = backend.numeric_profile(checks) if checks else {}
    for c in checks:
        msg = _numeric_message(c, prof[c], "string")
        if msg:
            raise DataInputError(msg)
    for c in [*([spec.score] if has_score else []), *p["sensitive_bins"]]:
        if schema[c] == "other":
            raise DataInputError(
                f"column {c} must be numeric. Got a column of type {backend.raw_types()[c]} instead."
            )

    q = backend.q
    attr_exprs, bin_edges = [], {}
    for a in attributes:
        if a in p["sensitive_bins"]:
            edges = np.asarray(p["sensitive_bins"][a], dtype=float)
            bin_edges[a] = edges
            x = backend.num(a)
            ge = " + ".join(f"(CASE WHEN {x} >= {double_literal(e)} THEN 1 ELSE 0 END)" for e in edges)
            attr_exprs.append(
                f"(CASE WHEN NOT {backend.finite(x)} THEN NULL WHEN {x} = {double_literal(edges[-1])} "
                f"THEN {len(edges) - 2} ELSE {ge} - 1 END)"
            )
        else:
            attr_exprs.append(q(a))
    exprs = list(attr_exprs)
    target_i = pred_i = score_bad_i = None
    if spec.target:
        target_i = len(exprs)
        exprs.append(q(spec.target))
    if has_score:
        s = backend.num(spec.score)
        score_bad_i = len(exprs)
        exprs.append(f"(CASE WHEN {backend.finite(s)} THEN 0 ELSE 1 END)")
    pred_i = len(exprs)
    if has_pred:
        exprs.append(q(spec.prediction))
    else:
        exprs.append(f"(CASE WHEN {s} >= {double_literal(float(p['threshold']))} THEN 1 ELSE 0 END)")
    rows = backend.grouped_counts(exprs)

    # Row exclusions in _prepare's order: missing target, then non-finite score, then missing prediction.
    excluded: dict[str, int] = {}
    kept_rows = []
    if spec.target:
        excluded["missing target"] = 0
    if has_score:
        excluded["non-finite score"] = 0
    if has_pred:
        excluded["missing prediction"] = 0
    for r in rows:
        count = int(r[-1])
        if target_i is not None and _is_missing(r[target_i]):
            excluded["missing target"] += count
            continue
        if score_bad_i is not None and r[score_bad_i]:
            excluded["non-finite score"] += count
            continue
        if has_pred and _is_missing(r[pred_i]):
            excluded["missing prediction"] += count
            continue
        kept_rows.append(r)

    # Per-attribute codes and labels.
    codes_maps: list[dict[Any, int]] = []
    labels_list: list[list[str]] = []
    for i, a in enumerate(attributes):
        present = {r[i] for r in rows if not _is_missing(r[i])}
        has_missing = any(_is_missing(r[i]) for r in rows)
        if a in bin_edges:
            edges = bin_edges[a]
            outside = [r for r in rows if not _is_missing(r[i]) and not (0 <= int(r[i]) <= len(edges) - 2)]
            if outside:
                x = backend.num(a)
                example = backend.first_where(
                    x,
                    f"{backend.finite(x)} AND ({x} < {double_literal(edges[0])} OR {x} > {double_literal(edges[-1])})",
                )
                raise DataInputError(
                    f"sensitive attribute {a} has {sum(int(r[-1]) for r in outside)} value(s) outside sensitive_bins "
                    f"[{edges[0]:g}, {edges[-1]:g}], e.g. {float(example)!r}"
                )
            labels = [
                f"[{fz._fmt(edges[j])}, {fz._fmt(edges[j + 1])}{']' if j == len(edges) - 2 else ')'}"
                for j in range(len(edges) - 1)
            ]
            # _encode_group keeps every bin label; _combine's grid spans them all.
            cmap = {j: j for j in range(len(edges) - 1)}
        else:
            is_int = getattr(backend, "is_integer_type", lambda c: False)(a)
            cmap, labels = _attr_labels(list(present), is_int and has_missing)
        if has_missing:
            if p["missing_sensitive"] == "error":
                n_missing = sum(int(r[-1]) for r in rows if _is_missing(r[i]))
                raise DataInputError(
                    f"sensitive attribute {a} has {n_missing} missing value(s); "
                    'set missing_sensitive="group" to report them as group "__missing__"'
                )
            labels = [*labels, fz.MISSING_GROUP]
        codes_maps.append(cmap)
        labels_list.append(labels)

    binned = {i for i, a in enumerate(attributes) if a in bin_edges}

    def code(i: int, v: Any) -> int:
        # Missing values are the last label ("__missing__"); a binned attribute's value is its bin index.
        if _is_missing(v):
            return len(labels_list[i]) - 1
        return codes_maps[i][int(v) if i in binned else v]

    positive = spec.positive_label
    n_kept = len(kept_rows)
    codes_arr = [
        np.asarray([code(i, r[i]) for r in kept_rows], dtype=np.int64) for i in range(len(attributes))
    ]
    cells, n_cells, cell_attr_codes = fz._combine(codes_arr, [len(lab) for lab in labels_list])
    y = np.asarray([r[target_i] == positive for r in kept_rows], dtype=bool) if target_i is not None else None
    if has_pred:
        pred = np.asarray([r[pred_i] == positive for r in kept_rows], dtype=bool)
    else:
        pred = np.asarray([bool(r[pred_i]) for r in kept_rows], dtype=bool)
    weights = np.asarray([int(r[-1]) for r in kept_rows], dtype=np.int64)
    idx = (
        np.asarray(cells, dtype=np.int64) * 4
        + pred.astype(np.int64)
        + (2 * y.astype(np.int64) if y is not None else 0)
    )
    cell_table = (
        np.bincount(idx, weights=weights, minlength=n_cells * 4).astype(np.int64).reshape(n_cells, 4)
        if n_kept
        else np.zeros((n_cells, 4), dtype=np.int64)
    )

    groupings = [fz._Grouping(a, labels_list[i], cell_attr_codes[:, i]) for i, a in enumerate(attributes)]
    combos: dict[str, tuple[int, ...]] = {a: (i,) for i, a in enumerate(attributes)}
    want_inter = p["intersections"] if p["intersections"] is not None else len(attributes) >= 2
    if want_inter and len(attributes) >= 2:
        for size in range(2, len(attributes) + 1):
            for combo in itertools.combinations(range(len(attributes)), size):
                sub = cell_attr_codes[:, list(combo)]
                uniq, inv = np.unique(sub, axis=0, return_inverse=True)
                labels = [
                    "&".join(labels_list[a][c] for a, c in zip(combo, row, strict=True)) for row in uniq
                ]
                name = "&".join(attributes[a] for a in combo)
                groupings.append(fz._Grouping(name, labels, inv.ravel()))
                combos[name] = combo

    # Per-group AUC on the engine, only for groupings that will be reported group by group.
    aucs: dict[str, np.ndarray] = {}
    score_flag = has_score and y is not None and n_kept > 0
    if score_flag:
        positives_raw = sorted({r[target_i] for r in kept_rows if r[target_i] == positive}, key=str)
        label_expr = (
            f"(CASE WHEN {q(spec.target)} IN ({', '.join(sql_literal(v) for v in positives_raw)}) THEN 1 ELSE 0 END)"
            if positives_raw
            else "0"
        )
        s = backend.num(spec.score)
        t = q(spec.target)
        where = [f"{t} IS NOT NULL", backend.finite(s)]
        if schema[spec.target] == "numeric":
            where.append(f"NOT isnan(CAST({t} AS DOUBLE))")
        if has_pred:
            pcol = q(spec.prediction)
            where.append(f"{pcol} IS NOT NULL")
            if schema[spec.prediction] == "numeric":
                where.append(f"NOT isnan(CAST({pcol} AS DOUBLE))")
        for g in groupings:
            table = np.zeros((len(g.labels), 4), dtype=np.int64)
            np.add.at(table, g.cell_to_group, cell_table)
            if int((table.sum(axis=1) > 0).sum()) > int(p["max_groups"]):
                continue
            combo = combos[g.name]
            got = backend.group_auc([attr_exprs[a] for a in combo], s, label_expr, " AND ".join(where))
            lookup = {}
            for j, cell_codes in enumerate(cell_attr_codes[:, list(combo)]):
                lookup.setdefault(tuple(int(c) for c in cell_codes), int(g.cell_to_group[j]))
            out = np.full(len(g.labels), np.nan)
            for r in got:
                key = tuple(code(a, r[k]) for k, a in enumerate(combo))
                num, npos, nneg = float(r[len(combo)]), float(r[len(combo) + 1]), float(r[len(combo) + 2])
                with np.errstate(invalid="ignore", divide="ignore"):
                    out[lookup[key]] = num / (npos * nneg) if npos * nneg else np.nan
            aucs[g.name] = out
    prepared = fz._Prepared(
        cells=np.empty(0, dtype=np.int64),
        n_cells=n_cells,
        y=y,
        pred=pred,
        score=np.empty(0) if has_score else None,
        groupings=groupings,
        attributes=attributes,
        excluded=excluded,
    )
    return prepared, cell_table, aucs, excluded


def compute_fairness_from_table(
    prepared: Any, cell_table: np.ndarray, aucs: Mapping[str, np.ndarray], p: Mapping[str, Any]
) -> tuple[list[Metric], pd.DataFrame]:
    """``fairness.compute_fairness`` on an engine's finest-cell confusion table and per-group AUCs."""
    from monitors.fairness import compute_fairness

    return compute_fairness(prepared, p, cell_table=cell_table, group_auc=aucs)


# -- explanations on large data ------------------------------------------------------------------------------


def allocate(sizes: Mapping[Any, int], n: int) -> dict[Any, int]:
    """Proportional allocation of ``n`` draws over strata (largest remainder, ties by stratum order), never
    more than a stratum holds."""
    total = sum(sizes.values())
    if total <= n:
        return dict(sizes)
    exact = {k: n * v / total for k, v in sizes.items()}
    out = {k: min(sizes[k], math.floor(x)) for k, x in exact.items()}
    left = n - sum(out.values())
    for k in sorted(exact, key=lambda k: (-(exact[k] - math.floor(exact[k])), str(k))):
        if left <= 0:
            break
        if out[k] < sizes[k]:
            out[k] += 1
            left -= 1
    return out


def explain_sample(
    data: Any, n: int, seed: int, strata: str | None = None, *, engine: str | None = None, **options: Any
) -> tuple[pd.DataFrame, str]:
    """A seeded sample of ``n`` rows (stratified proportionally by ``strata`` when given) as pandas, and a note
    describing it. ``n`` is the caller's (the policy's) choice. On DuckDB/Spark only the sample is fetched."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ParameterError(f"n must be an integer >= 1. Got {n!r} instead.")
    engine = engine or choose_engine(data)
    if engine == "pandas":
        from monitors.base import load_frame

        frame = load_frame(data)
        if strata is not None and strata not in frame.columns:
            raise DataInputError(f"strata column {strata} is not in the data")
        rng = np.random.default_rng(seed)
        if strata is None:
            take = np.sort(rng.choice(len(frame), size=min(n, len(frame)), replace=False))
            sample = frame.iloc[take]
            sizes = {"all": len(frame)}
            alloc = {"all": len(sample)}
        else:
            keys = (
                frame[strata]
                .astype(object)
                .where(frame[strata].notna(), None)
                .map(lambda v: None if v is None else str(v))
            )
            sizes = keys.value_counts(dropna=False).to_dict()
            alloc = allocate(sizes, n)
            parts = []
            for k in sorted(alloc, key=str):
                idx = np.flatnonzero((keys.isna() if k is None else keys == k).to_numpy())
                parts.append(np.sort(rng.choice(idx, size=alloc[k], replace=False)))
            sample = frame.iloc[np.sort(np.concatenate(parts))] if parts else frame.iloc[:0]
    else:
        backend = open_backend(engine, data, **options)
        try:
            sample, sizes, alloc = backend.stratified_sample(n, seed, strata)
        finally:
            backend.close()
    total = sum(sizes.values())
    note = f"explained a seeded sample (seed {seed}, engine {engine}) of {len(sample)} of {total} rows" + (
        f", stratified by {strata} with proportional allocation: "
        + ", ".join(f"{k}: {alloc[k]}/{sizes[k]}" for k in sorted(alloc, key=str)[:20])
        if strata
        else ", simple random sample without replacement"
    )
    return sample.reset_index(drop=True), note


def explain_on(
    engine: str | None,
    spec: ColumnSpec,
    *,
    current: Any,
    model: Any,
    n: int,
    seed: int = 0,
    strata: str | None = None,
    params: Mapping[str, Any] | None = None,
    artifacts_dir: str | None = None,
    **options: Any,
) -> MonitorResult:
    """The explainability monitor on an ``explain_sample`` of the data; the sampling is in the notes."""
    from monitors.explainability import ExplainabilityMonitor

    monitor = ExplainabilityMonitor()
    p = dict(params or {})
    try:
        sample, note = explain_sample(current, n, seed, strata, engine=engine, **options)
    except DataInputError as exc:
        return invalid_result(monitor.kind, monitor.version, monitor.validate_params(p), str(exc), seed=seed)
    p.setdefault("sample_size", max(1, len(sample)))
    p.setdefault("seed", seed)
    result = monitor.run(spec, current=sample, model=model, params=p, artifacts_dir=artifacts_dir)
    return replace(result, notes=(note, *result.notes))


# -- one entry point for the governance runner --------------------------------------------------------------


def spec_from_source(
    engine: str,
    data: Any,
    *,
    target: str | None = None,
    prediction: str | None = None,
    score: str | None = None,
    sensitive: Sequence[str] = (),
    features: Sequence[str] | None = None,
    **options: Any,
) -> ColumnSpec:
    """``ColumnSpec.infer`` from the engine's schema (numeric and bool columns… as pandas would: numbers are
    numeric, the rest categorical); raises ``DataInputError`` for unreadable data or unknown columns."""
    from monitors.base import Feature

    backend = open_backend(engine, data, **options)
    try:
        schema = backend.schema()
    finally:
        backend.close()
    named = [c for c in (target, prediction, score, *sensitive) if c]
    missing = [c for c in [*named, *(features or [])] if c not in schema]
    if missing:
        raise DataInputError(f"data is missing column(s) {missing}; it has {list(schema)[:20]}")
    skip = {c for c in (target, prediction, score) if c} | set(sensitive)
    names = list(features) if features else [c for c in schema if c not in skip]
    feats = tuple(
        Feature(c, ColumnKind.NUMERIC if schema[c] == "numeric" else ColumnKind.CATEGORICAL) for c in names
    )
    return ColumnSpec(feats, target=target, prediction=prediction, score=score, sensitive=tuple(sensitive))


def load_columns(engine: str, data: Any, columns: Sequence[str], **options: Any) -> pd.DataFrame:
    """Only ``columns`` of the data, as pandas (e.g. target + score for the performance monitor: 16 bytes a row)."""
    backend = open_backend(engine, data, **options)
    try:
        missing = [c for c in columns if c not in backend.schema()]
        if missing:
            raise DataInputError(f"data is missing column(s) {missing}")
        return backend.fetch_df(f"SELECT {', '.join(backend.q(c) for c in columns)} FROM {backend.relation}")
    finally:
        backend.close()


def monitor_on(
    kind: str,
    engine: str,
    spec: ColumnSpec,
    *,
    current: Any,
    reference: Any = None,
    profile: ReferenceProfile | None = None,
    baseline: MonitorResult | None = None,
    model: Any = None,
    params: Mapping[str, Any] | None = None,
    artifacts_dir: str | Path | None = None,
    sample_rows: int = 10_000,
    **options: Any,
) -> MonitorResult:
    """Run monitor ``kind`` with its reduction on ``engine``: drift and fairness reduce on the engine; the
    performance monitor gets only the target/score/prediction columns; explainability and robustness (which
    need the model row by row) get a seeded sample of ``sample_rows`` rows (explainability: its own
    ``sample_size`` parameter, stratified by the first sensitive attribute), recorded in the notes. Each
    monitor gets only the inputs it declares in ``needs``."""
    from monitors.base import get_monitor

    monitor = get_monitor(kind)
    needs = monitor.needs
    given = {"reference": reference, "profile": profile, "baseline": baseline, "model": model}
    kw: dict[str, Any] = {k: v for k, v in given.items() if v is not None and k in needs}
    if engine == "pandas" or kind not in _ENGINE_PLANS:
        return monitor.run(spec, current=current, params=params, artifacts_dir=artifacts_dir, **kw)
    if kind == "drift":
        return drift_on(
            engine,
            spec,
            current=current,
            reference=reference,
            profile=profile,
            params=params,
            artifacts_dir=artifacts_dir,
            **options,
        )
    if kind == "fairness":
        return fairness_on(
            engine, spec, current=current, params=params, artifacts_dir=artifacts_dir, model=model, **options
        )
    p = dict(params or {})
    try:
        if _ENGINE_PLANS[kind] == "columns":
            cols = [c for c in dict.fromkeys((spec.target, spec.score, spec.prediction)) if c]
            frame = load_columns(engine, current, cols, **options)
            note = f"reduction engine {engine}: only columns {cols} were loaded ({len(frame):,} rows)"
        else:
            own = _ENGINE_PLANS[kind] == "sample_own"
            n = int(p.get("sample_size", 200)) if own else int(sample_rows)
            strata = spec.sensitive[0] if spec.sensitive else None
            frame, note = explain_sample(current, n, int(p.get("seed", 0)), strata, engine=engine, **options)
            if own:
                p.setdefault("sample_size", max(1, len(frame)))
    except DataInputError as exc:
        return invalid_result(monitor.kind, monitor.version, p, str(exc))
    # Reference data is reduced on the engine by drift only; a sampled monitor sees the current sample.
    kw.pop("reference", None)
    result = monitor.run(spec, current=frame, params=p, artifacts_dir=artifacts_dir, **kw)
    return replace(result, notes=(note, *result.notes))


__all__ = [
    "AUTO_DUCKDB_BYTES",
    "AUTO_DUCKDB_ROWS",
    "ENGINES",
    "allocate",
    "categorical_from_counts",
    "choose_engine",
    "compute_fairness_from_table",
    "drift_on",
    "explain_on",
    "explain_sample",
    "fairness_on",
    "load_columns",
    "monitor_on",
    "numpy_quantile_edges",
    "open_backend",
    "parse_data_ref",
    "profile_on",
    "reduce_numeric_columns",
    "spec_from_source",
]
