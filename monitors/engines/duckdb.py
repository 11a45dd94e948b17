"""The DuckDB reduction engine: Parquet files, folders, globs or DuckDB tables → the pandas engine's dataclasses.

Every statistic is computed *inside* DuckDB by a handful of aggregate queries (one pass per kind of statistic,
all columns at once where possible); only the results (counts, a few order statistics, bounded samples, the
distinct levels of categorical columns) reach Python. :mod:`monitors.engines.sql` assembles them into the same
``NumericReduction``/``CategoricalReduction`` objects :mod:`monitors.engines.pandas` builds, so the monitors'
metric code is reused unchanged.

How each convention of the pandas engine is reproduced (see its module docstring):

* **Bin edges** are ``np.quantile(finite, probs)`` recomputed from the *exact* order statistics numpy would
  interpolate between (``quantile_disc`` at the rank's mid-point, which DuckDB answers exactly), fed to numpy's
  own interpolation (:func:`monitors.engines.sql.numpy_quantile_edges`): the edges are bit-for-bit numpy's.
* **Bin counts** are ``SUM(x <= edge)`` per edge with edges passed as round-tripping decimal strings cast to
  DOUBLE: exact integer counts. NaN/NULL, +inf and −inf are counted apart.
* **Exact samples.** When a side has at most ``sample_size`` finite values they are all fetched in row order
  (DuckDB keeps insertion order for plain scans), so KS, Wasserstein and the reference std equal the pandas
  path bit for bit.
* **Large samples.** Above ``sample_size`` the sample is the ``sample_size`` finite values with the smallest
  row key ``hash(seed, role, file, row number)``, one scan for all columns (``SqlBackend.samples``):
  deterministic, uniform without replacement, but not numpy's draw, so KS/Wasserstein then agree with the pandas path only within sampling error (see ``monitors.scale``'s module docstring).
* **Categories** are ``GROUP BY`` counts of the raw values, keyed in Python with the pandas engine's
  ``category_key``.

``duckdb`` is an optional extra: it is imported only when a DuckDB source is opened.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from monitors.base import DataFingerprint, DataInputError
from monitors.engines.sql import SqlReductions, double_literal, segment_condition, sql_literal

_INF = "CAST('inf' AS DOUBLE)"
_NEG_INF = "CAST('-inf' AS DOUBLE)"
_NUMERIC_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER")
_NUMERIC_PREFIXES = ("UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE", "REAL", "DECIMAL")
_INTEGER_TYPES = (*_NUMERIC_TYPES, "UBIGINT", "UHUGEINT")


def import_duckdb() -> Any:
    try:
        import duckdb
    except ImportError as exc:  # pragma: no cover - duckdb is installed in the dev environment
        raise ImportError(
            "the DuckDB engine needs duckdb: install the extra: pip install 'modelreg[duckdb]'"
        ) from exc
    return duckdb


class SqlBackend(SqlReductions):
    """Reductions written once in the SQL both DuckDB and Spark SQL understand.

    Subclasses provide identifier quoting, the relation to read, a query runner and the row-order key of the
    seeded sample. Column kinds: ``numeric``, ``bool``, ``string``, ``other``."""

    engine = "sql"

    # -- dialect hooks ----------------------------------------------------------------------------------
    def q(self, name: str) -> str:
        raise NotImplementedError

    @property
    def relation(self) -> str:
        raise NotImplementedError

    def fetch(self, sql: str) -> list[tuple]:
        raise NotImplementedError

    def schema(self) -> dict[str, str]:
        raise NotImplementedError

    def raw_types(self) -> dict[str, str]:
        raise NotImplementedError

    def sample_key(self, col: str, seed: int, role: int) -> str:
        raise NotImplementedError

    def order_stats(self, col: str, ranks: Sequence[int], n_finite: int) -> np.ndarray:
        raise NotImplementedError

    def fingerprint(self, role: str) -> DataFingerprint:
        raise NotImplementedError

    # -- expressions ------------------------------------------------------------------------------------
    def num(self, col: str) -> str:
        kind = self.schema()[col]
        if kind == "string":
            return f"TRY_CAST({self.q(col)} AS DOUBLE)"
        return f"CAST({self.q(col)} AS DOUBLE)"

    def finite(self, expr: str) -> str:
        return f"({expr} IS NOT NULL AND NOT isnan({expr}) AND {expr} <> {_INF} AND {expr} <> {_NEG_INF})"

    @staticmethod
    def count_if(cond: str) -> str:
        return f"SUM(CASE WHEN {cond} THEN 1 ELSE 0 END)"

    # -- queries ----------------------------------------------------------------------------------------
    def row_count(self) -> int:
        return int(self.fetch(f"SELECT COUNT(*) FROM {self.relation}")[0][0])

    def numeric_profile(self, cols: Sequence[str], with_std: Sequence[str] = ()) -> dict[str, dict[str, Any]]:
        """Per column: rows, nan (NULL or NaN), posinf, neginf, finite, bad (strings that are not numbers) with
        an example, and (for ``with_std``) the population std of the finite values. One scan for all."""
        if not cols:
            return {}
        parts = ["COUNT(*)"]
        layout: list[tuple[str, str]] = []
        schema = self.schema()
        for c in cols:
            x, raw = self.num(c), self.q(c)
            parts += [
                self.count_if(f"{x} IS NULL OR isnan({x})"),
                self.count_if(f"{x} = {_INF}"),
                self.count_if(f"{x} = {_NEG_INF}"),
            ]
            layout += [(c, "nan"), (c, "posinf"), (c, "neginf")]
            if schema[c] == "string":
                parts += [
                    self.count_if(f"{raw} IS NOT NULL AND {x} IS NULL"),
                    f"MIN(CASE WHEN {raw} IS NOT NULL AND {x} IS NULL THEN {raw} END)",
                ]
                layout += [(c, "bad"), (c, "example")]
            if c in with_std:
                parts.append(f"stddev_pop(CASE WHEN {self.finite(x)} THEN {x} END)")
                layout.append((c, "std"))
        row = self.fetch(f"SELECT {', '.join(parts)} FROM {self.relation}")[0]
        rows = int(row[0])
        out: dict[str, dict[str, Any]] = {
            c: {"rows": rows, "bad": 0, "example": None, "std": None} for c in cols
        }
        for (c, key), value in zip(layout, row[1:], strict=True):
            out[c][key] = value if key in ("example", "std") else int(value or 0)
        for c in cols:
            d = out[c]
            # A string that is not a number became NULL in the cast: it is not a missing value.
            d["nan"] -= d["bad"]
            d["finite"] = rows - d["nan"] - d["posinf"] - d["neginf"] - d["bad"]
            if d["std"] is not None:
                d["std"] = float(d["std"])
        return out

    def finite_values(self, col: str) -> np.ndarray:
        """All finite values of ``col`` in row order (callers bound their number first)."""
        x = self.num(col)
        rows = self.fetch(f"SELECT {x} FROM {self.relation} WHERE {self.finite(x)}")
        return np.fromiter((r[0] for r in rows), dtype=float, count=len(rows))

    def numeric_columns(self, cols: Sequence[str]) -> dict[str, np.ndarray]:
        """Every value (as float, NULL → NaN) of several numeric columns in row order, in one scan; for
        data the caller knows to be small."""
        if not cols:
            return {}
        rows = self.fetch(f"SELECT {', '.join(self.num(c) for c in cols)} FROM {self.relation}")
        arr = np.array(rows, dtype=float).reshape(len(rows), len(cols))
        return {c: np.ascontiguousarray(arr[:, i]) for i, c in enumerate(cols)}

    def level_counts_many(self, cols: Sequence[str]) -> dict[str, list[tuple[Any, int]]]:
        """``level_counts`` of several columns in one scan (``GROUPING SETS``)."""
        if len(cols) <= 1:
            return {c: self.level_counts(c) for c in cols}
        qc = [self.q(c) for c in cols]
        sets = ", ".join(f"({c})" for c in qc)
        rows = self.fetch(
            f"SELECT {', '.join(qc)}, GROUPING_ID({', '.join(qc)}), COUNT(*) FROM {self.relation} "
            f"GROUP BY GROUPING SETS ({sets})"
        )
        k = len(cols)
        out: dict[str, list[tuple[Any, int]]] = {c: [] for c in cols}
        for r in rows:
            gid = int(r[k])
            # GROUPING_ID sets bit (k - 1 - i) for every column i that is aggregated away.
            for i, c in enumerate(cols):
                if not (gid >> (k - 1 - i)) & 1:
                    out[c].append((r[i], int(r[k + 1])))
                    break
        return out

    def cumulative_counts(
        self, edges: Mapping[str, np.ndarray], neginf: Mapping[str, int] | None = None
    ) -> dict[str, np.ndarray]:
        """``#(x <= e)`` over finite values for every edge of every column, in one scan.

        With the −inf counts known (``neginf``) the test is a bare ``x <= e``: NULL never counts, NaN sorts
        above every number in both DuckDB and Spark, +inf is above every finite edge, and −inf, which is below,
        is subtracted afterwards. That is 3× cheaper than re-testing finiteness for every edge."""
        parts, layout = [], []
        for c, e in edges.items():
            x = self.num(c)
            for v in e:
                cond = f"{x} <= {double_literal(v)}"
                if neginf is None:
                    cond = f"{self.finite(x)} AND {cond}"
                parts.append(self.count_if(cond))
                layout.append(c)
        out: dict[str, list[int]] = {c: [] for c in edges}
        if parts:
            row = self.fetch(f"SELECT {', '.join(parts)} FROM {self.relation}")[0]
            for c, v in zip(layout, row, strict=True):
                out[c].append(int(v or 0) - (int(neginf[c]) if neginf is not None else 0))
        return {c: np.asarray(v, dtype=np.int64) for c, v in out.items()}

    def sample(self, col: str, k: int, seed: int, role: int) -> np.ndarray:
        """``k`` finite values with the smallest seeded row key (uniform, without replacement), sorted."""
        x = self.num(col)
        rows = self.fetch(
            f"SELECT v FROM (SELECT {x} AS v, {self.sample_key(col, seed, role)} AS h FROM {self.relation} "
            f"WHERE {self.finite(x)}) s ORDER BY h, v LIMIT {int(k)}"
        )
        return np.sort(np.fromiter((r[0] for r in rows), dtype=float, count=len(rows)))

    #: The row key's range: [key_low, key_low + 2**64) (DuckDB's hash is unsigned, Spark's xxhash64 signed).
    key_low = 0

    def samples(
        self, cols: Sequence[str], k: int, seed: int, role: int, finite: Mapping[str, int]
    ) -> dict[str, np.ndarray]:
        """Samples of ``k`` finite values for several columns in one scan.

        Every row gets one seeded key ``sample_key("", seed, role)``; each column's sample is its ``k`` finite
        values with the smallest row keys, which is uniform without replacement for that column. Only rows
        whose key falls in the lowest fraction ``q`` of the key range are fetched, with ``q`` chosen so that
        the sparsest column expects ``1.5·k + 50·√k`` finite values there (a shortfall is a > 10σ event; the
        column then falls back to its own top-k query)."""
        if not cols:
            return {}
        n_min = max(1, min(int(finite[c]) for c in cols))
        q = (1.5 * k + 50 * math.sqrt(k)) / n_min
        if q >= 0.5 or len(cols) == 1:
            return {c: self.sample(c, k, seed, role) for c in cols}
        threshold = self.key_low + int(q * 2**64)
        key = self.sample_key("", seed, role)
        sel = ", ".join(f"{self.num(c)} AS v{i}" for i, c in enumerate(cols))
        rows = self.fetch(
            f"SELECT h, {', '.join(f'v{i}' for i in range(len(cols)))} FROM (SELECT {key} AS h, {sel} FROM {self.relation}) s WHERE h < {threshold}"
        )
        if not rows:
            return {c: self.sample(c, k, seed, role) for c in cols}
        keys = np.array([int(r[0]) for r in rows], dtype=object)
        values = np.array([r[1:] for r in rows], dtype=float).reshape(len(rows), len(cols))
        order = sorted(range(len(rows)), key=lambda i: keys[i])
        out: dict[str, np.ndarray] = {}
        for i, c in enumerate(cols):
            v = values[order, i]
            v = v[np.isfinite(v)]
            out[c] = np.sort(v[:k]) if v.size >= k else self.sample(c, k, seed, role)
        return out

    def level_counts(self, col: str) -> list[tuple[Any, int]]:
        c = self.q(col)
        return [
            (r[0], int(r[1])) for r in self.fetch(f"SELECT {c}, COUNT(*) FROM {self.relation} GROUP BY {c}")
        ]

    def grouped_counts(self, exprs: Sequence[str], where: str | None = None) -> list[tuple]:
        """``GROUP BY`` the given expressions: rows of (values..., count)."""
        cols = ", ".join(f"{e} AS g{i}" for i, e in enumerate(exprs))
        keys = ", ".join(f"g{i}" for i in range(len(exprs)))
        cond = f" WHERE {where}" if where else ""
        return self.fetch(
            f"SELECT {keys}, COUNT(*) FROM (SELECT {cols} FROM {self.relation}{cond}) s GROUP BY {keys}"
        )

    def first_where(self, expr: str, where: str) -> Any:
        rows = self.fetch(f"SELECT {expr} FROM {self.relation} WHERE {where} LIMIT 1")
        return rows[0][0] if rows else None

    def group_auc(self, group_exprs: Sequence[str], score: str, label: str, where: str) -> list[tuple]:
        """Mann–Whitney AUC numerators per group: rows of (group values..., Σ pos·(neg below + neg tied / 2),
        positives, negatives). Every term is a multiple of ½ below 2**53, so the sum is exact in any order
        and equals the rank-sum form the pandas path uses."""
        g = [f"g{i}" for i in range(len(group_exprs))]
        sel = ", ".join(f"{e} AS g{i}" for i, e in enumerate(group_exprs))
        gl = ", ".join(g)
        part = f"PARTITION BY {gl} " if g else ""
        return self.fetch(
            f"WITH b AS (SELECT {sel}{', ' if sel else ''}{score} AS s, {label} AS y FROM {self.relation} WHERE {where}), "
            f"a AS (SELECT {gl}{', ' if gl else ''}s, SUM(y) AS pos, COUNT(*) - SUM(y) AS neg FROM b GROUP BY {gl}{', ' if gl else ''}s), "
            f"w AS (SELECT *, SUM(neg) OVER ({part}ORDER BY s ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) - neg AS below FROM a) "
            f"SELECT {gl}{', ' if gl else ''}SUM(CAST(pos AS DOUBLE) * (CAST(below AS DOUBLE) + 0.5 * CAST(neg AS DOUBLE))), "
            f"SUM(pos), SUM(neg) FROM w{' GROUP BY ' + gl if gl else ''}"
        )

    def fetch_df(self, sql: str) -> pd.DataFrame:
        raise NotImplementedError

    def stratified_sample(
        self, n: int, seed: int, strata: str | None
    ) -> tuple[pd.DataFrame, dict[Any, int], dict[Any, int]]:
        """``n`` rows with the smallest seeded row keys, per stratum in proportion to its size."""
        from monitors.engines.pandas import allocate

        key = self.sample_key("__rows__", seed, 2)
        if strata is None:
            sizes: dict[Any, int] = {"all": self.row_count()}
            alloc = allocate(sizes, n)
            df = self.fetch_df(
                f"SELECT * FROM (SELECT *, {key} AS __modelreg_h FROM {self.relation}) a "
                f"ORDER BY __modelreg_h LIMIT {int(alloc['all'])}"
            )
        else:
            if strata not in self.schema():
                raise DataInputError(f"strata column {strata} is not in the data")
            raw = {v: int(c) for v, c in self.grouped_counts([self.q(strata)])}
            alloc_raw = allocate(raw, n)
            s = self.q(strata)
            cases = " ".join(
                f"WHEN {s} IS NULL THEN {k}" if v is None else f"WHEN {s} = {sql_literal(v)} THEN {k}"
                for v, k in alloc_raw.items()
            )
            df = self.fetch_df(
                f"SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY {s} ORDER BY __modelreg_h) AS __modelreg_rn "
                f"FROM (SELECT *, {key} AS __modelreg_h FROM {self.relation}) a) b "
                f"WHERE __modelreg_rn <= (CASE {cases} ELSE 0 END) ORDER BY __modelreg_h"
            )
            sizes = {("__missing__" if v is None else str(v)): c for v, c in raw.items()}
            alloc = {("__missing__" if v is None else str(v)): c for v, c in alloc_raw.items()}
        df = df.drop(columns=[c for c in ("__modelreg_h", "__modelreg_rn") if c in df.columns])
        return df, sizes, alloc


def _kind_of(duck_type: str) -> str:
    t = duck_type.upper()
    if t == "BOOLEAN":
        return "bool"
    if t in _NUMERIC_TYPES or t.startswith(_NUMERIC_PREFIXES):
        return "numeric"
    if t in ("VARCHAR", "STRING") or t.startswith("VARCHAR") or t.startswith("ENUM"):
        return "string"
    return "other"


class DuckDBBackend(SqlBackend):
    """A DuckDB view over Parquet file(s) or a DuckDB table, read in place."""

    engine = "duckdb"

    def __init__(
        self,
        source: Any,
        *,
        connection: Any = None,
        threads: int | None = None,
        memory_limit: str | None = None,
        where: Mapping[str, Any] | None = None,
    ) -> None:
        duckdb = import_duckdb()
        self._owns = connection is None
        self._con = connection if connection is not None else duckdb.connect()
        if threads is not None:
            self._con.execute(f"SET threads = {int(threads)}")
        if memory_limit is not None:
            # Above the limit DuckDB spills sorts and hash tables to its temp directory instead of growing.
            self._con.execute(f"SET memory_limit = '{str(memory_limit).replace(chr(39), '')}'")
        # DuckDB (2.0.1) folds isnan(x) to FALSE when a Parquet column's min/max statistics exist, but
        # pyarrow's statistics leave NaN out: NaN values would be counted as finite-bin misses, not as NaN.
        # Statistics propagation is an optimisation only; the aggregates here do not need it.
        self._saved_optimizers = str(
            self._con.execute("SELECT current_setting('disabled_optimizers')").fetchone()[0] or ""
        )
        disabled = {o.strip() for o in self._saved_optimizers.split(",") if o.strip()} | {
            "statistics_propagation"
        }
        self._con.execute(f"SET disabled_optimizers = '{','.join(sorted(disabled))}'")
        self.description, self._files, self._table_from, self._rid = self._open(source, duckdb)
        try:
            described = self._con.execute(f"DESCRIBE SELECT * FROM {self._table_from}").fetchall()
        except duckdb.Error as exc:
            raise DataInputError(f"cannot read {self.description}: {_first_line(exc)}") from exc
        self._raw_types = {str(r[0]): str(r[1]) for r in described}
        if where:
            # One segment's rows, filtered in DuckDB. The row id the seeded samples hash is carried as a
            # column, since a subquery has no rowid/filename of its own; it is not part of the schema.
            missing = [c for c in where if c not in self._raw_types]
            if missing:
                raise DataInputError(f"{self.description} is missing segment column(s) {missing}")
            cond = segment_condition(self.q, where, sql_literal)
            self._table_from = f"(SELECT *, {self._rid} AS __modelreg_rid FROM {self._table_from} WHERE {cond}) AS __modelreg_seg"
            self._rid = "__modelreg_rid"
            self.description += f" where {cond}"
        self._schema = {name: _kind_of(t) for name, t in self._raw_types.items()}
        self._duckdb = duckdb

    def _open(self, source: Any, duckdb: Any) -> tuple[str, list[Path], str, str]:
        if isinstance(source, pd.DataFrame):
            # A frame is copied into a real table so that ``rowid`` gives the sample a stable row order.
            self._con.register("__modelreg_frame", source)
            self._con.execute("CREATE OR REPLACE TEMP TABLE __modelreg_df AS SELECT * FROM __modelreg_frame")
            self._con.unregister("__modelreg_frame")
            return "a pandas DataFrame", [], "__modelreg_df", "rowid"
        if isinstance(source, tuple):
            db_path, table = source
            path = Path(db_path)
            if str(db_path) != ":memory:" and not path.exists():
                raise DataInputError(f"DuckDB database {path} does not exist")
            try:
                self._con.execute(
                    f"ATTACH '{str(path).replace(chr(39), chr(39) * 2)}' AS __modelreg_db (READ_ONLY)"
                )
            except duckdb.Error as exc:
                raise DataInputError(f"cannot open DuckDB database {path}: {_first_line(exc)}") from exc
            ref = ".".join(
                '"' + p.replace('"', '""') + '"' for p in ["__modelreg_db", *str(table).split(".")]
            )
            return f"DuckDB table {table} in {path}", [], ref, "rowid"
        files = parquet_files(source)
        listing = ", ".join("'" + str(f).replace("'", "''") + "'" for f in files)
        return (
            f"Parquet {source}",
            files,
            f"read_parquet([{listing}])",
            "hash(filename, file_row_number)",
        )

    # -- dialect -----------------------------------------------------------------------------------------
    def q(self, name: str) -> str:
        return '"' + str(name).replace('"', '""') + '"'

    @property
    def relation(self) -> str:
        return self._table_from

    def fetch(self, sql: str) -> list[tuple]:
        try:
            return self._con.execute(sql).fetchall()
        except self._duckdb.Error as exc:
            raise DataInputError(f"cannot read {self.description}: {_first_line(exc)}") from exc

    def schema(self) -> dict[str, str]:
        return self._schema

    def fetch_df(self, sql: str) -> pd.DataFrame:
        try:
            return self._con.execute(sql).df()
        except self._duckdb.Error as exc:
            raise DataInputError(f"cannot read {self.description}: {_first_line(exc)}") from exc

    def raw_types(self) -> dict[str, str]:
        return self._raw_types

    def is_integer_type(self, col: str) -> bool:
        return self._raw_types[col].upper() in _INTEGER_TYPES

    def sample_key(self, col: str, seed: int, role: int) -> str:
        return f"hash({int(seed)}, {int(role)}, '{col.replace(chr(39), chr(39) * 2)}', {self._rid})"

    def order_stats(self, col: str, ranks: Sequence[int], n_finite: int) -> np.ndarray:
        # quantile_disc(q) returns sorted[ceil(n·q) − 1]; the rank's mid-point (r + ½)/n is half a step away
        # from every boundary, so rounding can never move it to a neighbour.
        x = self.num(col)
        qs = ", ".join(repr(float((int(r) + 0.5) / n_finite)) for r in ranks)
        row = self.fetch(f"SELECT quantile_disc({x}, [{qs}]) FROM {self.relation} WHERE {self.finite(x)}")
        return np.asarray(row[0][0], dtype=float)

    def fingerprint(self, role: str) -> DataFingerprint:
        """Rows, schema and an order-independent digest: the sum of DuckDB's 64-bit row hashes."""
        import hashlib

        cols = list(self._raw_types)
        hashed = ", ".join(self.q(c) for c in cols) if cols else "1"
        row = self.fetch(f"SELECT COUNT(*), SUM(CAST(hash({hashed}) AS HUGEINT)) FROM {self.relation}")[0]
        h = hashlib.sha256(b"duckdb-rowhash-sum-v1\x00")
        for name, t in self._raw_types.items():
            h.update(f"{name}\x00{t}\x00".encode())
        h.update(str(row[1] or 0).encode())
        return DataFingerprint(
            role=role, rows=int(row[0]), columns=tuple(self._raw_types.items()), digest=h.hexdigest()
        )

    def close(self) -> None:
        if self._owns:
            self._con.close()
        else:
            self._con.execute(f"SET disabled_optimizers = '{self._saved_optimizers}'")


def parquet_files(source: str | Path) -> list[Path]:
    """The Parquet files of a file, a folder (recursively, sorted like pyarrow's dataset discovery) or a glob."""
    text = str(source)
    if any(ch in text for ch in "*?["):
        import glob

        files = sorted(Path(p) for p in glob.glob(text, recursive=True) if Path(p).is_file())
        if not files:
            raise DataInputError(f"no Parquet file matches {text}")
        return files
    path = Path(source)
    if not path.exists():
        raise DataInputError(f"data file {path} does not exist")
    if path.is_dir():
        files = sorted(
            p
            for p in path.rglob("*")
            if p.is_file()
            and not p.name.startswith((".", "_"))
            and p.suffix.lower() in (".parquet", ".pq", "")
        )
        if not files:
            raise DataInputError(f"folder {path} holds no Parquet file")
        return files
    if path.suffix.lower() not in (".parquet", ".pq"):
        raise DataInputError(
            f"data file {path} must be .parquet for the DuckDB engine. Got {path.suffix or 'no suffix'} instead."
        )
    if path.stat().st_size == 0:
        raise DataInputError(f"data file {path} is empty (0 bytes): not a Parquet file")
    return [path]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


__all__ = ["DuckDBBackend", "SqlBackend", "double_literal", "import_duckdb", "parquet_files", "sql_literal"]
