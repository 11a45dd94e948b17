"""The Spark reduction engine: a Spark DataFrame or table → the pandas engine's dataclasses.

The reductions are the SQL of :class:`monitors.engines.duckdb.SqlBackend` run through ``spark.sql`` on a
temporary view, so DuckDB and Spark count with the same expressions. Spark-specific parts:

* **Order statistics** (for the reference-quantile bin edges) come from ``percentile_disc`` at the rank's
  mid-point ``(r + ½)/n``; Spark computes it from exact value counts (no sketch), so the edges are numpy's bit
  for bit (the interpolation itself is done by numpy, see :func:`monitors.engines.sql.numpy_quantile_edges`).
* **Samples** above ``sample_size`` are ordered by ``xxhash64(seed, role, monotonically_increasing_id())``:
  deterministic for a given partitioning of the same data, uniform without replacement.
* **SHAP** on large data: :func:`shap_values` spreads a SHAP explainer over the partitions with
  ``mapInPandas`` (the model travels in the task closure, one explainer per Arrow batch).

``pyspark`` is an optional extra, imported only here and only when used.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from monitors.base import DataFingerprint, DataInputError
from monitors.engines.duckdb import SqlBackend

_INSTALL = "the Spark engine needs pyspark: install the extra: pip install 'modelreg[spark]'"
_views = itertools.count()


def import_pyspark() -> Any:
    try:
        import pyspark
        import pyspark.sql
    except ImportError as exc:
        raise ImportError(_INSTALL) from exc
    return pyspark


def local_session(
    app_name: str = "modelreg",
    cores: int = 2,
    shuffle_partitions: int = 4,
    warehouse_dir: str | os.PathLike | None = None,
) -> Any:
    """A local SparkSession for tests, benches and single-machine runs (UI off, few shuffle partitions).
    Its SQL warehouse goes to ``warehouse_dir``, by default a temporary folder: Spark's own default is
    ``./spark-warehouse`` of whatever folder the process runs in (a checkout, a cron job's home)."""
    import_pyspark()
    import tempfile

    from pyspark.sql import SparkSession

    warehouse = Path(warehouse_dir) if warehouse_dir else Path(tempfile.mkdtemp(prefix="modelreg-spark-"))

    # Python workers (mapInPandas) must run this interpreter, with its packages; PySpark reads the worker
    # executable only from this variable when it starts the context (spark.pyspark.python is ignored here).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = (
        SparkSession.builder.master(f"local[{int(cores)}]")
        .appName(app_name)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", str(int(shuffle_partitions)))
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.driver.memory", "1g")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.warehouse.dir", warehouse.as_uri())
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    return session


def _kind_of(dtype: Any) -> str:
    from pyspark.sql import types as T

    if isinstance(dtype, T.BooleanType):
        return "bool"
    if isinstance(dtype, T.NumericType):
        return "numeric"
    if isinstance(dtype, T.StringType):
        return "string"
    return "other"


class SparkBackend(SqlBackend):
    """Reductions of one Spark DataFrame through a temporary view."""

    engine = "spark"

    def __init__(self, data: Any, *, spark: Any = None, where: Mapping[str, Any] | None = None) -> None:
        import_pyspark()
        from pyspark.errors import PySparkException
        from pyspark.sql import DataFrame, SparkSession

        self._errors: tuple[type[BaseException], ...] = (PySparkException,)
        try:
            from py4j.protocol import Py4JJavaError

            self._errors = (PySparkException, Py4JJavaError)
        except ImportError:  # pragma: no cover - py4j ships with pyspark
            pass
        if isinstance(data, DataFrame):
            df, self.description = data, "a Spark DataFrame"
        else:
            spark = spark or SparkSession.getActiveSession() or local_session()
            try:
                if isinstance(data, str) and data.startswith("spark:"):
                    name = data[len("spark:") :]
                    df, self.description = spark.table(name), f"Spark table {name}"
                elif isinstance(data, pd.DataFrame):
                    df, self.description = spark.createDataFrame(data), "a pandas DataFrame"
                else:
                    from monitors.engines.duckdb import parquet_files

                    files = parquet_files(data)
                    df, self.description = spark.read.parquet(*map(str, files)), f"Parquet {data}"
            except self._errors as exc:
                raise DataInputError(f"cannot read {data}: {_first_line(exc)}") from exc
        if where:
            # One segment's rows, filtered by Spark (Column expressions: no literal quoting to get wrong).
            from pyspark.sql import functions as F

            from monitors.engines.sql import is_missing_value

            missing = [c for c in where if c not in df.columns]
            if missing:
                raise DataInputError(f"{self.description} is missing segment column(s) {missing}")
            for col, value in where.items():
                df = df.filter(F.col(col).isNull() if is_missing_value(value) else F.col(col) == F.lit(value))
            self.description += f" where {dict(where)}"
        self._df = df
        self._spark = df.sparkSession
        self._view = f"__modelreg_src_{next(_views)}"
        df.createOrReplaceTempView(self._view)
        self._schema = {f.name: _kind_of(f.dataType) for f in df.schema.fields}
        self._raw_types = {f.name: f.dataType.simpleString() for f in df.schema.fields}
        self._integer = {
            f.name
            for f in df.schema.fields
            if f.dataType.simpleString() in ("tinyint", "smallint", "int", "bigint")
        }

    def q(self, name: str) -> str:
        return "`" + str(name).replace("`", "``") + "`"

    @property
    def relation(self) -> str:
        return self._view

    def fetch(self, sql: str) -> list[tuple]:
        try:
            return [tuple(r) for r in self._spark.sql(sql).collect()]
        except self._errors as exc:
            raise DataInputError(f"cannot read {self.description}: {_first_line(exc)}") from exc

    def fetch_df(self, sql: str) -> pd.DataFrame:
        try:
            return self._spark.sql(sql).toPandas()
        except self._errors as exc:
            raise DataInputError(f"cannot read {self.description}: {_first_line(exc)}") from exc

    def schema(self) -> dict[str, str]:
        return self._schema

    def raw_types(self) -> dict[str, str]:
        return self._raw_types

    def is_integer_type(self, col: str) -> bool:
        return col in self._integer

    key_low = -(2**63)

    def sample_key(self, col: str, seed: int, role: int) -> str:
        return f"xxhash64({int(seed)}, {int(role)}, '{col.replace(chr(39), chr(39) * 2)}', monotonically_increasing_id())"

    def order_stats(self, col: str, ranks: Sequence[int], n_finite: int) -> np.ndarray:
        x = self.num(col)
        parts = ", ".join(
            f"percentile_disc({float((r + 0.5) / n_finite)!r}) WITHIN GROUP (ORDER BY {x})" for r in ranks
        )
        row = self.fetch(f"SELECT {parts} FROM {self.relation} WHERE {self.finite(x)}")[0]
        return np.asarray([float(v) for v in row], dtype=float)

    def numeric_profile(self, cols: Sequence[str], with_std: Sequence[str] = ()) -> dict[str, dict[str, Any]]:
        out = super().numeric_profile(cols, with_std)
        for d in out.values():
            if d.get("example") is not None:
                d["example"] = str(d["example"])
        return out

    def fingerprint(self, role: str) -> DataFingerprint:
        """Rows, schema and an order-independent digest: the sum of Spark's 64-bit xxhash of every row."""
        import hashlib

        cols = list(self._raw_types)
        hashed = ", ".join(self.q(c) for c in cols) if cols else "1"
        row = self.fetch(
            f"SELECT COUNT(*), SUM(CAST(xxhash64({hashed}) AS DECIMAL(38, 0))) FROM {self.relation}"
        )[0]
        h = hashlib.sha256(b"spark-xxhash64-sum-v1\x00")
        for name, t in self._raw_types.items():
            h.update(f"{name}\x00{t}\x00".encode())
        h.update(str(row[1] or 0).encode())
        return DataFingerprint(
            role=role, rows=int(row[0]), columns=tuple(self._raw_types.items()), digest=h.hexdigest()
        )

    def close(self) -> None:
        # Closing must never mask the result.
        with contextlib.suppress(Exception):
            self._spark.catalog.dropTempView(self._view)


def shap_values(
    df: Any,
    model: Any,
    features: Sequence[str],
    *,
    family: str = "tree",
    background: pd.DataFrame | None = None,
    params: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """SHAP values of ``features`` for every row of the Spark DataFrame ``df``, computed in the executors
    with ``mapInPandas`` by the same explainer the explainability monitor builds (``_Explainer``). Returns a
    pandas frame with one ``shap_<feature>`` column per feature plus the ``model_output`` column, in the
    order of ``df``'s rows; callers bound the rows first (``explain_sample``)."""
    import_pyspark()
    from monitors.explainability import ExplainabilityMonitor

    p = ExplainabilityMonitor().validate_params(params)
    feats = list(features)
    out_cols = [f"shap_{f}" for f in feats]
    schema = ", ".join(f"`{c}` double" for c in (*out_cols, "model_output", "expected_value"))

    def explain(batches: Any) -> Any:
        from monitors.explainability import _Explainer

        explainer = _Explainer(model, family, feats, background, p)
        for batch in batches:
            if len(batch) == 0:
                continue
            e = explainer.explain(batch[feats].astype(float).reset_index(drop=True))
            res = pd.DataFrame(np.asarray(e.values, dtype=float), columns=out_cols)
            res["model_output"] = np.asarray(e.model_output, dtype=float)
            res["expected_value"] = float(e.expected)
            yield res

    return df.select(*feats).mapInPandas(explain, schema=schema).toPandas()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


__all__ = ["SparkBackend", "import_pyspark", "local_session", "shap_values"]
