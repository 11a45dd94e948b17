"""The reduction-backend protocol and how a backend is opened over data.

A monitor that reduces its input (drift, fairness) talks to its data only through a ``Backend``: the pandas
engine over a DataFrame or a small file (:class:`monitors.engines.pandas.PandasBackend`), DuckDB over
Parquet files, folders, globs and DuckDB tables, Spark over DataFrames and tables
(:mod:`monitors.engines.duckdb`, :mod:`monitors.engines.spark`, both built on
:mod:`monitors.engines.sql`). Every backend returns the same dataclasses, so each monitor has one result
assembly whatever the engine. Which engine suits which data is ``monitors.scale.choose_engine``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from monitors.base import (
    ColumnKind,
    ColumnSpec,
    DataFingerprint,
    DataInputError,
    ParameterError,
    load_frame,
)
from monitors.engines.pandas import FairnessReduction, FeatureStats, PandasBackend
from monitors.engines.sql import is_missing_value

ENGINES = ("pandas", "duckdb", "spark")


class Backend(Protocol):
    """One data set, reduced where it lives."""

    engine: str

    def fingerprint(self, role: str) -> DataFingerprint:
        """Rows, schema and a content digest (each engine has its own digest rule)."""
        ...

    def columns(self) -> list[str]: ...

    def reference_stats(
        self, columns: Sequence[tuple[str, ColumnKind]], p: Mapping[str, Any]
    ) -> dict[str, FeatureStats]:
        """Drift: reference reductions (quantile bins and a sorted sample, or category counts)."""
        ...

    def current_stats(
        self, columns: Sequence[tuple[str, FeatureStats]], p: Mapping[str, Any]
    ) -> dict[str, FeatureStats]:
        """Drift: current reductions on the reference's bins and categories."""
        ...

    def fairness(self, spec: ColumnSpec, p: Mapping[str, Any], model: Any = None) -> FairnessReduction:
        """Fairness: the finest-cell confusion table of the sensitive attributes (and group AUCs)."""
        ...

    def close(self) -> None: ...


def parse_data_ref(data: Any) -> Any:
    """``duckdb:PATH::TABLE`` → (PATH, TABLE); ``spark:TABLE`` stays a string; other values unchanged."""
    if isinstance(data, str) and data.startswith("duckdb:"):
        body = data[len("duckdb:") :]
        path, sep, table = body.rpartition("::")
        if not sep or not path or not table:
            raise ParameterError(f"a DuckDB reference must be duckdb:PATH::TABLE. Got {data!r} instead.")
        return (path, table)
    return data


def open_backend(engine: str, data: Any, **options: Any) -> Any:
    """A reduction backend over ``data`` (raises ``DataInputError`` for unreadable data). ``options``:
    ``connection=``/``threads=``/``memory_limit=`` (DuckDB, e.g. "1GB"), ``spark=`` (a SparkSession),
    ``where=`` (a mapping column → value, None meaning missing: only the rows of that segment, filtered
    where the data lives, see :mod:`monitors.segments`)."""
    where = options.get("where")
    if engine == "pandas":
        frame = load_frame(data)
        return PandasBackend(frame if not where else frame[segment_mask(frame, where)])
    data = parse_data_ref(data)
    if engine == "duckdb":
        from monitors.engines.duckdb import DuckDBBackend

        return DuckDBBackend(
            data,
            connection=options.get("connection"),
            threads=options.get("threads"),
            memory_limit=options.get("memory_limit"),
            where=where,
        )
    if engine == "spark":
        from monitors.engines.spark import SparkBackend

        return SparkBackend(data, spark=options.get("spark"), where=where)
    raise ParameterError(f"engine must be one of {list(ENGINES)}. Got {engine!r} instead.")


def segment_mask(frame: Any, where: Mapping[str, Any]) -> Any:
    """Boolean row mask of a pandas frame for ``where`` (column → value; None or NaN: missing)."""
    import pandas as pd

    missing = [c for c in where if c not in frame.columns]
    if missing:
        raise DataInputError(f"data is missing segment column(s) {missing}")
    mask = pd.Series(True, index=frame.index)
    for col, value in where.items():
        series = frame[col]
        mask &= series.isna() if is_missing_value(value) else (series == value)
    return mask.to_numpy()


def engine_libraries(engine: str) -> tuple[str, ...]:
    """The engine's own library, for a result's ``library_versions``."""
    return {"duckdb": ("duckdb",), "spark": ("pyspark",)}.get(engine, ())
