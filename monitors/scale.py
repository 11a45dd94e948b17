"""Monitoring at bank scale: which engine reduces the data, and seeded samples for the monitors that must
run the model row by row.

The reduction itself is the monitors' own: ``DriftMonitor.run(..., engine=)`` and
``FairnessMonitor.run(..., engine=)`` reduce through a backend (:mod:`monitors.engines.backend`: pandas,
DuckDB over Parquet files or folders and DuckDB tables, Spark over DataFrames and tables) into the
dataclasses of :mod:`monitors.engines.pandas`, and assemble one result whatever the engine; on DuckDB and
Spark no row reaches pandas. Here: ``choose_engine`` (auto), ``monitor_on`` (any kind on any engine, the
governance runner's entry point), ``explain_sample``/``explain_on`` (stratified seeded samples), and
``drift_on``/``fairness_on``/``profile_on``, the engine-first spellings of the monitors' own calls.

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

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from monitors.base import (
    ColumnKind,
    ColumnSpec,
    DataInputError,
    MonitorResult,
    ParameterError,
    ReferenceProfile,
    invalid_result,
)
from monitors.engines.backend import ENGINES, open_backend, parse_data_ref
from monitors.engines.pandas import allocate
from monitors.engines.sql import categorical_from_counts, numpy_quantile_edges, reduce_numeric_columns

if TYPE_CHECKING:  # pandas is imported where it runs
    import pandas as pd

#: choose_engine sends a Parquet input to DuckDB above either of these.
AUTO_DUCKDB_ROWS = 2_000_000
AUTO_DUCKDB_BYTES = 1 << 30
#: How ``monitor_on`` feeds a built-in kind on DuckDB/Spark: ``reduce`` on the engine, load only the label
#: ``columns``, or a seeded row sample for monitors that run the model row by row (``sample``:
#: ``sample_rows`` rows; ``sample_own``: as many as the monitor's ``sample_size`` parameter, since it
#: would sample that many anyway). Other kinds (a bank's own) run on pandas.
_ENGINE_PLANS: Mapping[str, str] = {
    "drift": "reduce",
    "fairness": "reduce",
    "segments": "reduce",
    "performance": "columns",
    "estimated_performance": "reduce",
    "explainability": "sample_own",
    "robustness": "sample",
}


# -- engine choice -----------------------------------------------------------------------------------------


def _is_spark_frame(data: Any) -> bool:
    return type(data).__module__.startswith("pyspark.") and hasattr(data, "sparkSession")


def choose_engine(data: Any) -> str:
    """pandas for a DataFrame or a small file, duckdb for a DuckDB table or a Parquet file/folder above
    ``AUTO_DUCKDB_ROWS`` rows or ``AUTO_DUCKDB_BYTES`` bytes, spark for a Spark DataFrame or ``spark:TABLE``."""
    import pandas as pd

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


# -- the monitors' reductions, engine first -------------------------------------------------------------------


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
    """``DriftMonitor.run`` with the reduction on ``engine``."""
    from monitors.drift import DriftMonitor

    return DriftMonitor().run(
        spec,
        reference=reference,
        current=current,
        profile=profile,
        params=params,
        artifacts_dir=artifacts_dir,
        engine=engine,
        **options,
    )


def profile_on(
    engine: str, spec: ColumnSpec, reference: Any, params: Mapping[str, Any] | None = None, **options: Any
) -> ReferenceProfile:
    """``DriftMonitor.profile`` with the reduction on ``engine``; raises ``DataInputError`` on bad data."""
    from monitors.drift import DriftMonitor

    return DriftMonitor().profile(spec, reference, params, engine=engine, **options)


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
    """``FairnessMonitor.run`` with the confusion table (and per-group AUC) computed on ``engine``."""
    from monitors.fairness import FairnessMonitor

    return FairnessMonitor().run(
        spec,
        current=current,
        params=params,
        artifacts_dir=artifacts_dir,
        model=model,
        engine=engine,
        **options,
    )


# -- explanations on large data ------------------------------------------------------------------------------


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
    if _ENGINE_PLANS[kind] == "reduce":
        return monitor.run(
            spec, current=current, params=params, artifacts_dir=artifacts_dir, engine=engine, **kw, **options
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
