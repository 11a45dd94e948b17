"""The pandas/numpy reduction engine: rows → sufficient statistics.

Every function here takes column values (numpy arrays or pandas Series) and returns a plain dataclass of numpy
arrays, ints and lists. The metric step of a monitor reads only those dataclasses, so a DuckDB or Spark engine
that fills the same dataclasses reuses every metric unchanged.

Statistics and their conventions
--------------------------------
* **Numeric bins.** Interior cut points are reference quantiles ``np.quantile(finite, [1/k, …, (k-1)/k])``
  (numpy's default linear interpolation), deduplicated with ``np.unique`` so ties never create empty bins.
  Bin ``i`` holds ``edges[i-1] < x <= edges[i]`` (bin 0 is ``x <= edges[0]``, the last bin ``x > edges[-1]``),
  i.e. the index is ``np.searchsorted(edges, x, side="left")``. NaN, +inf and −inf are counted apart,
  never put in a finite bin.
* **Counting.** With few edges (≤ 16, the usual case) the cumulative count ``#(x <= e)`` is one vectorised
  comparison per edge, which is several times faster than ``searchsorted`` + ``bincount`` on large arrays and
  gives identical counts; with more edges ``searchsorted`` + ``bincount`` is used. When the column is
  sorted anyway (exact path, below) the counts are binary searches of the edges in the sorted values.
* **Sorted samples** (for KS and Wasserstein). All finite values, sorted, when there are at most
  ``sample_size`` of them (``sample_exact=True``: statistics then equal scipy's on the full data). Above that,
  a uniform sample of exactly ``sample_size`` finite values drawn without replacement by
  ``numpy.random.default_rng([seed, crc32(column name), role])`` (role 0 = reference, 1 = current), sorted.
  The draw depends only on the seed, the column name, the role and the data, not on column order.
* **Categories.** Values are keyed by ``str(value)`` (integral floats without ``.0``, so ``2.0`` and ``2``
  are one level); NaN/None are missing. The reference keeps its
  ``max_categories`` most frequent levels (ties broken by the key) and pools the rest into ``__other__``; a
  current value that never occurs in the reference is counted as ``new`` (separately from ``__other__``).
  The full set of reference levels is kept up to ``LEVELS_LIMIT`` levels; above that the column looks like an
  identifier and new categories cannot be told apart (``reference_levels`` is None).
* **Score/label.** Cumulative true/false positives at each distinct score (descending), the confusion matrix
  at a threshold (predicted positive when ``score >= threshold``), the sums needed for the Brier score, and
  per-decile calibration sums.
"""

from __future__ import annotations

import itertools
import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pandas is imported where it runs: declarations must load without it
    import pandas as pd

from monitors.base import (
    ColumnKind,
    ColumnSpec,
    DataFingerprint,
    DataInputError,
    ModelError,
    check_columns,
    check_model,
    factorize_column,
    fingerprint,
    numeric_values,
    predict_scores,
)

#: Above this many cut points counting switches from per-edge comparisons to searchsorted + bincount.
_COMPARE_MAX_EDGES = 16
#: The reference keeps at most this many distinct levels to recognise new categories later.
LEVELS_LIMIT = 100_000
OTHER = "__other__"
NEW = "__new__"
MISSING = "__missing__"


def sample_rng(seed: int, column: str, role: int) -> np.random.Generator:
    """The generator used for the sorted sample of ``column`` in ``role`` (0 reference, 1 current)."""
    return np.random.default_rng([int(seed), zlib.crc32(column.encode("utf-8")), int(role)])


def quantile_edges(finite: np.ndarray, n_bins: int) -> np.ndarray:
    """Deduplicated interior reference-quantile cut points (empty when there are no finite values)."""
    if finite.size == 0 or n_bins < 2:
        return np.empty(0, dtype=float)
    probs = np.arange(1, n_bins) / n_bins
    return np.unique(np.quantile(finite, probs))


def bin_counts(finite: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts of ``finite`` values in the ``len(edges) + 1`` bins defined in the module docstring."""
    n = finite.size
    if edges.size == 0:
        return np.array([n], dtype=np.int64)
    if edges.size <= _COMPARE_MAX_EDGES:
        cumulative = np.fromiter(
            (np.count_nonzero(finite <= e) for e in edges), dtype=np.int64, count=edges.size
        )
        return np.diff(np.concatenate(([0], cumulative, [n]))).astype(np.int64)
    return np.bincount(np.searchsorted(edges, finite, side="left"), minlength=edges.size + 1).astype(np.int64)


@dataclass(frozen=True)
class NumericReduction:
    """Sufficient statistics of one numeric column on fixed bins."""

    rows: int
    nan: int
    posinf: int
    neginf: int
    edges: np.ndarray  # interior cut points, ascending, unique
    counts: np.ndarray  # len(edges) + 1 counts of finite values
    sample: np.ndarray  # sorted finite values (all of them when sample_exact)
    sample_exact: bool
    finite: int
    std: float | None = None  # population std (ddof=0) of all finite values; computed for the reference only

    @property
    def missing(self) -> int:
        return self.nan + self.posinf + self.neginf

    def full_counts(self) -> np.ndarray:
        """Finite bins followed by the NaN, +inf and −inf bins: these sum to ``rows``."""
        return np.concatenate((self.counts, [self.nan, self.posinf, self.neginf])).astype(np.int64)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "nan": self.nan,
            "posinf": self.posinf,
            "neginf": self.neginf,
            "edges": [float(e) for e in self.edges],
            "counts": [int(c) for c in self.counts],
            "sample": [float(v) for v in self.sample],
            "sample_exact": self.sample_exact,
            "finite": self.finite,
            "std": self.std,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> NumericReduction:
        return cls(
            rows=int(d["rows"]),
            nan=int(d["nan"]),
            posinf=int(d["posinf"]),
            neginf=int(d["neginf"]),
            edges=np.asarray(d["edges"], dtype=float),
            counts=np.asarray(d["counts"], dtype=np.int64),
            sample=np.asarray(d["sample"], dtype=float),
            sample_exact=bool(d["sample_exact"]),
            finite=int(d["finite"]),
            std=None if d.get("std") is None else float(d["std"]),
        )


def reduce_numeric(
    values: np.ndarray,
    *,
    edges: np.ndarray | None = None,
    n_bins: int = 10,
    sample_size: int = 50_000,
    rng: np.random.Generator | None = None,
    with_std: bool = False,
) -> NumericReduction:
    """Reduce float ``values``. Without ``edges`` (the reference) the cut points come from these values."""
    values = np.asarray(values, dtype=float)
    rows = int(values.size)
    nan = int(np.count_nonzero(np.isnan(values)))
    posinf = int(np.count_nonzero(values == np.inf))
    neginf = int(np.count_nonzero(values == -np.inf))
    n_finite = rows - nan - posinf - neginf
    finite = values if n_finite == rows else values[np.isfinite(values)]
    if n_finite <= sample_size:
        # Exact path: the sort is needed for KS anyway, and on sorted values the bin counts are a few
        # binary searches instead of passes over the data.
        sample, exact = np.sort(finite), True
        edges = quantile_edges(sample, n_bins) if edges is None else np.asarray(edges, dtype=float)
        cumulative = np.searchsorted(sample, edges, side="right")  # #(x <= e)
        counts = np.diff(np.concatenate(([0], cumulative, [n_finite]))).astype(np.int64)
    else:
        edges = quantile_edges(finite, n_bins) if edges is None else np.asarray(edges, dtype=float)
        counts = bin_counts(finite, edges)
        rng = rng if rng is not None else np.random.default_rng(0)
        idx = rng.choice(n_finite, size=sample_size, replace=False, shuffle=False)
        sample, exact = np.sort(finite[idx]), False
    std = float(np.std(finite)) if with_std and n_finite > 0 else None
    return NumericReduction(rows, nan, posinf, neginf, edges, counts, sample, exact, n_finite, std)


def ks_wasserstein(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Two-sample KS statistic and 1-Wasserstein distance of two *sorted* non-empty float arrays.

    Both empirical CDFs are evaluated at every distinct value of the merged sample, as
    ``scipy.stats.ks_2samp`` and ``scipy.stats.wasserstein_distance`` do (same counts, same divisions: the KS
    statistic is bit-for-bit that of ks_2samp's asymptotic mode; its exact mode, up to 10,000 values per side,
    re-derives D as a fraction that can differ in the last bit), but without re-sorting: ``b`` is merged into ``a`` with one
    ``searchsorted`` of sorted keys, and the CDFs are running counts.
    """
    n1, n2 = a.size, b.size
    total = n1 + n2
    pos_b = np.searchsorted(a, b, side="right") + np.arange(n2)  # ties: a's values first (any order works)
    from_a = np.ones(total, dtype=bool)
    from_a[pos_b] = False
    merged = np.empty(total, dtype=float)
    merged[pos_b] = b
    merged[from_a] = a
    count_a = np.cumsum(from_a)
    count_b = np.arange(1, total + 1) - count_a
    # Evaluate only at the last element of each run of equal values: #a <= x and #b <= x there.
    last = np.empty(total, dtype=bool)
    np.not_equal(merged[1:], merged[:-1], out=last[:-1])
    last[-1] = True
    diff = count_a[last] / n1 - count_b[last] / n2
    d = max(float(np.clip(-diff.min(), 0, 1)), float(diff.max()))
    w = float(np.dot(np.abs(diff[:-1]), np.diff(merged[last])))
    return d, w


@dataclass(frozen=True)
class CategoricalReduction:
    """Sufficient statistics of one categorical column against the reference's kept levels."""

    rows: int
    missing: int
    categories: list[str]  # the reference's kept levels, most frequent first
    counts: np.ndarray  # count of each kept level in this data
    other: int  # rows in reference levels outside the kept ones
    new: int  # rows in levels the reference never had (always 0 for the reference itself)
    levels: int  # distinct non-missing levels in this data
    capped: bool  # the reference had more than max_categories levels
    new_examples: list[str] = field(default_factory=list)
    reference_levels: list[str] | None = None  # only on the reference; None above LEVELS_LIMIT

    def full_counts(self) -> np.ndarray:
        """Kept levels, then __other__, __new__, __missing__: these sum to ``rows``."""
        return np.concatenate((self.counts, [self.other, self.new, self.missing])).astype(np.int64)

    def bin_labels(self) -> list[str]:
        return [*self.categories, OTHER, NEW, MISSING]

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "missing": self.missing,
            "categories": list(self.categories),
            "counts": [int(c) for c in self.counts],
            "other": self.other,
            "new": self.new,
            "levels": self.levels,
            "capped": self.capped,
            "new_examples": list(self.new_examples),
            "reference_levels": None if self.reference_levels is None else list(self.reference_levels),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CategoricalReduction:
        levels = d.get("reference_levels")
        return cls(
            rows=int(d["rows"]),
            missing=int(d["missing"]),
            categories=[str(c) for c in d["categories"]],
            counts=np.asarray(d["counts"], dtype=np.int64),
            other=int(d["other"]),
            new=int(d["new"]),
            levels=int(d["levels"]),
            capped=bool(d["capped"]),
            new_examples=[str(c) for c in d.get("new_examples", [])],
            reference_levels=None if levels is None else [str(c) for c in levels],
        )


def category_key(value: Any) -> str:
    """The string a level is counted under. Integral floats lose their ``.0`` so that a code column read as
    float (CSV with a gap, Parquet nullable ints) still matches the reference's integer codes."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _level_counts(series: pd.Series) -> tuple[pd.Series, int]:
    """Counts per ``str(value)`` key (most frequent first, ties by key) and the number of missing rows."""
    import pandas as pd

    missing = int(series.isna().sum())
    vc = series.value_counts(dropna=True, sort=False)
    vc = vc[vc > 0]  # a categorical dtype lists unused categories with count 0
    keys = vc.index.map(category_key)
    counts = pd.Series(vc.to_numpy(dtype=np.int64), index=keys)
    if not counts.index.is_unique:  # e.g. 1 and "1" in an object column share the key "1"
        counts = counts.groupby(level=0).sum()
    order = np.lexsort((counts.index.to_numpy(dtype=object).astype(str), -counts.to_numpy()))
    return counts.iloc[order], missing


def reduce_categorical(
    series: pd.Series,
    *,
    reference: CategoricalReduction | None = None,
    max_categories: int = 50,
) -> CategoricalReduction:
    """Reduce a categorical column. Without ``reference`` this *is* the reference: it picks the kept levels."""
    counts, missing = _level_counts(series)
    return categorical_reduction(
        counts.index.tolist(),
        counts.to_numpy(dtype=np.int64),
        rows=len(series),
        missing=missing,
        reference=reference,
        max_categories=max_categories,
    )


def categorical_reduction(
    keys: Sequence[str],
    counts: np.ndarray,
    *,
    rows: int,
    missing: int,
    reference: CategoricalReduction | None = None,
    max_categories: int = 50,
) -> CategoricalReduction:
    """The reduction of level ``keys`` (``category_key`` strings) and their ``counts``, most frequent first
    with ties by key, whichever engine counted them: the reference keeps ``max_categories`` levels; data
    compared with a reference splits the rest into ``__other__`` (levels the reference had) and new ones."""
    keys = list(keys)
    counts = np.asarray(counts, dtype=np.int64)
    if reference is None:
        return CategoricalReduction(
            rows=rows,
            missing=missing,
            categories=keys[:max_categories],
            counts=counts[:max_categories].copy(),
            other=int(counts[max_categories:].sum()),
            new=0,
            levels=len(keys),
            capped=len(keys) > max_categories,
            reference_levels=sorted(keys) if len(keys) <= LEVELS_LIMIT else None,
        )
    position = {k: i for i, k in enumerate(keys)}
    kept_counts = np.asarray([counts[position[k]] if k in position else 0 for k in reference.categories])
    # Set lookups: np.isin on object arrays compares every pair (20,000 levels took 40 s).
    kept = set(reference.categories)
    rest = np.fromiter((k not in kept for k in keys), dtype=bool, count=len(keys))
    if reference.reference_levels is None:
        other, new, examples = int(counts[rest].sum()), 0, []
    else:
        levels = set(reference.reference_levels)
        unseen = rest & np.fromiter((k not in levels for k in keys), dtype=bool, count=len(keys))
        other, new = int(counts[rest & ~unseen].sum()), int(counts[unseen].sum())
        examples = [keys[i] for i in np.flatnonzero(unseen)[:10]]
    return CategoricalReduction(
        rows=rows,
        missing=missing,
        categories=list(reference.categories),
        counts=kept_counts.astype(np.int64),
        other=other,
        new=new,
        levels=len(keys),
        capped=reference.capped,
        new_examples=examples,
    )


@dataclass(frozen=True)
class ScoreLabelReduction:
    """Sufficient statistics of (binary label, score) pairs for ranking, confusion and calibration metrics."""

    n: int
    positives: int
    thresholds: np.ndarray  # distinct scores, descending
    tps: np.ndarray  # true positives among rows with score >= thresholds[i]
    fps: np.ndarray  # false positives among rows with score >= thresholds[i]
    threshold: float
    tp: int
    fp: int
    tn: int
    fn: int
    sum_score: float
    sum_score_sq: float
    sum_score_pos: float
    calibration_edges: np.ndarray  # interior score-decile cut points (same bin rule as numeric bins)
    calibration_counts: np.ndarray
    calibration_score_sum: np.ndarray
    calibration_positives: np.ndarray
    score_min: float
    score_max: float

    @property
    def negatives(self) -> int:
        return self.n - self.positives


def reduce_score_label(
    y: np.ndarray, score: np.ndarray, *, threshold: float = 0.5, calibration_bins: int = 10
) -> ScoreLabelReduction:
    """``y`` boolean (positive class), ``score`` finite floats of the same length (rows already filtered)."""
    y = np.asarray(y, dtype=bool)
    score = np.asarray(score, dtype=float)
    n = int(score.size)
    # sklearn's roc_curve order: stable sort on the score, reversed (descending, ties kept together).
    order = np.argsort(score, kind="mergesort")[::-1]
    s_sorted = score[order]
    y_sorted = y[order]
    distinct = np.flatnonzero(np.diff(s_sorted)) if n else np.empty(0, dtype=np.int64)
    last = np.r_[distinct, n - 1] if n else np.empty(0, dtype=np.int64)
    cum_pos = np.cumsum(y_sorted, dtype=np.int64)
    tps = cum_pos[last] if n else np.empty(0, dtype=np.int64)
    fps = (last + 1) - tps
    predicted = score >= threshold
    tp = int(np.count_nonzero(predicted & y))
    fp = int(np.count_nonzero(predicted & ~y))
    positives = int(np.count_nonzero(y))
    edges = quantile_edges(score, calibration_bins)
    idx = np.searchsorted(edges, score, side="left")
    k = edges.size + 1
    return ScoreLabelReduction(
        n=n,
        positives=positives,
        thresholds=s_sorted[last] if n else np.empty(0),
        tps=tps,
        fps=fps,
        threshold=float(threshold),
        tp=tp,
        fp=fp,
        tn=int(n - positives - fp),
        fn=int(positives - tp),
        sum_score=float(score.sum()),
        sum_score_sq=float(np.dot(score, score)),
        sum_score_pos=float(score[y].sum()),
        calibration_edges=edges,
        calibration_counts=np.bincount(idx, minlength=k).astype(np.int64),
        calibration_score_sum=np.bincount(idx, weights=score, minlength=k),
        calibration_positives=np.bincount(idx, weights=y.astype(float), minlength=k).astype(np.int64),
        score_min=float(score.min()) if n else float("nan"),
        score_max=float(score.max()) if n else float("nan"),
    )


# -- drift column reductions ------------------------------------------------------------------------------


@dataclass(frozen=True)
class FeatureStats:
    """One column's reduction, or why there is none."""

    kind: str  # "numeric" | "categorical" | "invalid"
    stats: NumericReduction | CategoricalReduction | None = None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "stats": None if self.stats is None else self.stats.to_dict(),
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FeatureStats:
        kind = d["kind"]
        stats: NumericReduction | CategoricalReduction | None = None
        if d.get("stats") is not None:
            stats = (NumericReduction if kind == "numeric" else CategoricalReduction).from_dict(d["stats"])
        return cls(kind=kind, stats=stats, reason=d.get("reason"))


def reduce_reference_column(
    series: pd.Series, name: str, kind: ColumnKind, p: Mapping[str, Any]
) -> FeatureStats:
    # An ordinal column is binned like a number when it holds numbers, else counted like categories.
    import pandas as pd

    numeric = kind is ColumnKind.NUMERIC or (
        kind is ColumnKind.ORDINAL and pd.api.types.is_numeric_dtype(series.dtype)
    )
    if numeric:
        try:
            values = numeric_values(series, name)
        except DataInputError as exc:
            return FeatureStats("invalid", reason=f"reference {exc}")
        stats = reduce_numeric(
            values,
            n_bins=p["n_bins"],
            sample_size=p["sample_size"],
            rng=sample_rng(p["seed"], name, 0),
            with_std=True,
        )
        return FeatureStats("numeric", stats)
    return FeatureStats("categorical", reduce_categorical(series, max_categories=p["max_categories"]))


def reduce_current_column(
    series: pd.Series, name: str, ref: FeatureStats, p: Mapping[str, Any]
) -> FeatureStats:
    if ref.kind == "numeric":
        assert isinstance(ref.stats, NumericReduction)
        try:
            values = numeric_values(series, name)
        except DataInputError as exc:
            return FeatureStats("invalid", reason=f"current {exc}")
        stats = reduce_numeric(
            values, edges=ref.stats.edges, sample_size=p["sample_size"], rng=sample_rng(p["seed"], name, 1)
        )
        return FeatureStats("numeric", stats)
    if ref.kind == "categorical":
        assert isinstance(ref.stats, CategoricalReduction)
        return FeatureStats("categorical", reduce_categorical(series, reference=ref.stats))
    # The reference column was unusable: still check the current one so both problems are reported.
    try:
        numeric_values(series, name)
    except DataInputError as exc:
        return FeatureStats("invalid", reason=f"current {exc}")
    return FeatureStats("invalid", reason=None)


# -- sampling --------------------------------------------------------------------------------------------


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


# -- fairness reduction -------------------------------------------------------------------------------------

MISSING_GROUP = "__missing__"
# Above this many finest cells the cell code is factorised instead of taken as a mixed-radix number.
_MAX_DENSE_CELLS = 1_000_000


@dataclass
class Grouping:
    """One way of splitting the rows: a single attribute or an intersection ("a&b")."""

    name: str
    labels: list[str]
    cell_to_group: np.ndarray  # finest cell index -> group index


@dataclass
class FairnessReduction:
    """Everything the fairness metric step needs, from any engine."""

    cells: np.ndarray  # per-row finest cell code, int64
    n_cells: int
    y: np.ndarray | None  # bool, None when the spec has no target
    pred: np.ndarray  # bool
    score: np.ndarray | None
    groupings: list[Grouping]
    attributes: list[str]
    excluded: dict[str, int]
    # The finest-cell confusion table (n_cells, 4) and, from an engine that computed them itself, the
    # per-group AUCs by grouping name (else they come from ``score`` in the metric step).
    cell_table: np.ndarray | None = None
    group_auc: dict[str, np.ndarray] | None = None
    # factorize_column of the sensitive columns that needed one: the input fingerprint reuses them.
    factorized: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)


def encode_group(
    series: pd.Series,
    name: str,
    bins: Sequence[float] | None,
    factorized: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, list[str]]:
    """Integer codes (−1 = missing) and sorted string labels; O(n) for categoricals and small integers.
    ``factorized``: the column's ``factorize_column``, when the caller has it."""
    import pandas as pd

    if bins is not None:
        values = numeric_values(series, name)
        edges = np.asarray(bins, dtype=float)
        idx = np.searchsorted(edges, values, side="right") - 1
        # The last edge is inclusive, like numpy.histogram; values outside the edges are an input error
        # rather than a silently dropped group.
        idx = np.where(values == edges[-1], len(edges) - 2, idx)
        finite = np.isfinite(values)
        outside = finite & ((idx < 0) | (idx > len(edges) - 2))
        if outside.any():
            raise DataInputError(
                f"sensitive attribute {name} has {int(outside.sum())} value(s) outside sensitive_bins "
                f"[{edges[0]:g}, {edges[-1]:g}], e.g. {values[outside][0]!r}"
            )
        labels = [
            f"[{edge_label(edges[i])}, {edge_label(edges[i + 1])}{']' if i == len(edges) - 2 else ')'}"
            for i in range(len(edges) - 1)
        ]
        return np.where(finite, idx, -1).astype(np.int64), labels
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        # Unused categories are not compacted away: their cells stay empty and empty groups are never
        # reported, which saves a pass over the rows.
        return series.cat.codes.to_numpy(), [str(c) for c in series.cat.categories]
    if (
        pd.api.types.is_integer_dtype(dtype)
        and not pd.api.types.is_extension_array_dtype(dtype)
        and len(series)
    ):
        arr = series.to_numpy()
        lo, hi = int(arr.min()), int(arr.max())
        if hi - lo < 1_000_000:
            codes = arr.astype(np.int64) - lo
            return _compact(codes, [str(v) for v in range(lo, hi + 1)])
    if factorized is None:
        factorized = factorize_column(series)
    codes, uniques = factorized
    try:
        # Sort the few distinct values, not the rows: factorizing them again gives each its sorted rank
        # (pandas' own ordering, as factorize(sort=True) of the column would).
        rank, uniques = pd.factorize(uniques, sort=True, use_na_sentinel=True)
        if not np.array_equal(rank, np.arange(len(rank))):
            codes = np.where(codes >= 0, rank.astype(np.int64)[codes], -1)
    except TypeError:  # mixed types (e.g. 1 and "1") cannot be sorted: keep first-seen order
        pass
    labels = [str(u) for u in uniques]
    if len(set(labels)) < len(labels):  # e.g. 1 and "1": keep the groups apart and say why
        labels = [f"{type(u).__name__}:{u}" for u in uniques]
    return codes, labels


def needs_factorizing(dtype: Any) -> bool:
    import pandas as pd

    return pd.api.types.is_object_dtype(dtype) or isinstance(dtype, pd.StringDtype)


def _compact(codes: np.ndarray, labels: list[str]) -> tuple[np.ndarray, list[str]]:
    """Drop labels that never occur (unused categories, gaps in an integer range)."""
    if len(codes) == 0:
        return codes, labels
    # Skip the masked copy in the common case of no missing values.
    valid = codes if codes.min() >= 0 else codes[codes >= 0]
    present = np.bincount(valid, minlength=len(labels)) > 0
    if present.all():
        return codes, labels
    remap = np.cumsum(present) - 1
    out = np.where(codes >= 0, remap[np.maximum(codes, 0)], -1)
    return out, [lab for lab, keep in zip(labels, present, strict=True) if keep]


def edge_label(x: float) -> str:
    return f"{x:g}"


def combine_cells(codes_list: list[np.ndarray], sizes: list[int]) -> tuple[np.ndarray, int, np.ndarray]:
    """Finest cell per row, the number of cells, and each cell's code in every attribute."""
    total = math.prod(sizes)
    if total <= _MAX_DENSE_CELLS:
        # One attribute: its codes are the cells, in their own (often int8) dtype.
        cells = codes_list[0]
        if len(codes_list) > 1:
            cells = cells.astype(np.int64)
            for codes, size in zip(codes_list[1:], sizes[1:], strict=True):
                cells *= size
                cells += codes
        grid = np.stack(np.unravel_index(np.arange(total), sizes), axis=1).astype(np.int64)
        return cells, total, grid
    stacked = np.stack(codes_list, axis=1)
    uniq, inv = np.unique(stacked, axis=0, return_inverse=True)
    return inv.ravel().astype(np.int64), len(uniq), uniq


def confusion_by_cell(cells: np.ndarray, y: np.ndarray | None, pred: np.ndarray, n_cells: int) -> np.ndarray:
    """The one pass over the rows: ``(n_cells, 4)`` counts of (label, prediction)."""
    idx = np.multiply(cells, 4, dtype=np.int64)
    idx += pred
    if y is not None:
        idx += y
        idx += y
    return np.bincount(idx, minlength=n_cells * 4).reshape(n_cells, 4)


def groupings_of(
    attributes: list[str],
    labels_list: list[list[str]],
    cell_attr_codes: np.ndarray,
    intersections: bool | None,
) -> tuple[list[Grouping], dict[str, tuple[int, ...]]]:
    """Every attribute, and (``intersections``; default: with two or more attributes) every intersection
    of them, as a grouping of the finest cells; with the attribute indices behind each grouping's name."""
    groupings = [Grouping(a, labels_list[i], cell_attr_codes[:, i]) for i, a in enumerate(attributes)]
    combos: dict[str, tuple[int, ...]] = {a: (i,) for i, a in enumerate(attributes)}
    want = intersections if intersections is not None else len(attributes) >= 2
    if want and len(attributes) >= 2:
        for size in range(2, len(attributes) + 1):
            for combo in itertools.combinations(range(len(attributes)), size):
                uniq, inv = np.unique(cell_attr_codes[:, list(combo)], axis=0, return_inverse=True)
                labels = [
                    "&".join(labels_list[a][c] for a, c in zip(combo, row, strict=True)) for row in uniq
                ]
                name = "&".join(attributes[a] for a in combo)
                groupings.append(Grouping(name, labels, inv.ravel()))
                combos[name] = combo
    return groupings, combos


def reduce_fairness(
    frame: pd.DataFrame, spec: ColumnSpec, p: Mapping[str, Any], model: Any = None
) -> FairnessReduction:
    """The pandas side of the fairness reduction: row exclusions, group codes, the finest cell per row and
    its confusion table."""
    attributes = list(spec.sensitive)
    needed = list(attributes)
    if spec.target:
        needed.append(spec.target)
    has_pred = bool(spec.prediction and spec.prediction in frame.columns)
    has_score = bool(spec.score and spec.score in frame.columns)
    if not has_pred and not has_score and model is None:
        wanted = [c for c in (spec.prediction, spec.score) if c]
        raise DataInputError(
            "fairness needs predictions: a prediction column, a score column or a model. "
            f"Got columns {list(frame.columns)[:20]}" + (f" (spec names {wanted})" if wanted else "") + "."
        )
    check_columns(frame, needed, "current")
    n = len(frame)
    keep = np.ones(n, dtype=bool)
    excluded: dict[str, int] = {}

    y = None
    if spec.target:
        y_raw = frame[spec.target]
        y_missing = y_raw.isna().to_numpy()
        y = (y_raw == spec.positive_label).to_numpy(dtype=bool)
        excluded["missing target"] = int(y_missing.sum())
        keep &= ~y_missing

    score = None
    if has_score:
        score = numeric_values(frame[spec.score], spec.score)
    elif model is not None and not has_pred:
        check_columns(frame, spec.feature_names, "current")
        fitted = check_model(model)
        score = predict_scores(fitted, frame[spec.feature_names])
        if score.shape != (n,):
            raise ModelError(f"model must return one score per row. Got shape {score.shape} instead.")
    if score is not None:
        bad = ~np.isfinite(score)
        excluded["non-finite score"] = int((bad & keep).sum())
        keep &= ~bad

    if has_pred:
        pr = frame[spec.prediction]
        pr_missing = pr.isna().to_numpy()
        excluded["missing prediction"] = int((pr_missing & keep).sum())
        keep &= ~pr_missing
        pred = (pr == spec.positive_label).to_numpy(dtype=bool)
    else:
        assert score is not None
        with np.errstate(invalid="ignore"):
            pred = score >= float(p["threshold"])

    codes_list: list[np.ndarray] = []
    labels_list: list[list[str]] = []
    factorized: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for attr in attributes:
        bins = p["sensitive_bins"].get(attr)
        fz = None
        if bins is None and needs_factorizing(frame[attr].dtype):
            fz = factorized[attr] = factorize_column(frame[attr])
        codes, labels = encode_group(frame[attr], attr, bins, fz)
        if len(codes) and codes.min() < 0:
            if p["missing_sensitive"] == "error":
                raise DataInputError(
                    f"sensitive attribute {attr} has {int((codes < 0).sum())} missing value(s); "
                    'set missing_sensitive="group" to report them as group "__missing__"'
                )
            codes = np.where(codes < 0, len(labels), codes.astype(np.int64))
            labels = [*labels, MISSING_GROUP]
        codes_list.append(codes)
        labels_list.append(labels)

    if not keep.all():
        y = None if y is None else y[keep]
        pred = pred[keep]
        score = None if score is None else score[keep]
        codes_list = [c[keep] for c in codes_list]

    cells, n_cells, cell_attr_codes = combine_cells(codes_list, [len(lab) for lab in labels_list])
    groupings, _ = groupings_of(attributes, labels_list, cell_attr_codes, p["intersections"])
    return FairnessReduction(
        cells,
        n_cells,
        y,
        pred,
        score,
        groupings,
        attributes,
        excluded,
        cell_table=confusion_by_cell(cells, y, pred, n_cells),
        factorized=factorized,
    )


class PandasBackend:
    """The reduction backend over a pandas DataFrame (see :mod:`monitors.engines.backend`)."""

    engine = "pandas"

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self._factorized: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def fingerprint(self, role: str) -> DataFingerprint:
        # Columns a reduction factorized already are hashed from that encoding: read once.
        return fingerprint(self.frame, role, factorized=self._factorized)

    def rows(self) -> int:
        return len(self.frame)

    def columns(self) -> list[str]:
        return [str(c) for c in self.frame.columns]

    def reference_stats(
        self, columns: Sequence[tuple[str, ColumnKind]], p: Mapping[str, Any]
    ) -> dict[str, FeatureStats]:
        return {name: reduce_reference_column(self.frame[name], name, kind, p) for name, kind in columns}

    def current_stats(
        self, columns: Sequence[tuple[str, FeatureStats]], p: Mapping[str, Any]
    ) -> dict[str, FeatureStats]:
        return {name: reduce_current_column(self.frame[name], name, ref, p) for name, ref in columns}

    def fairness(self, spec: ColumnSpec, p: Mapping[str, Any], model: Any = None) -> FairnessReduction:
        reduction = reduce_fairness(self.frame, spec, p, model)
        self._factorized.update(reduction.factorized)
        return reduction

    def close(self) -> None:
        return None
