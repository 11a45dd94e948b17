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

import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pandas is imported where it runs: declarations must load without it
    import pandas as pd

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
    import pandas as pd

    counts, missing = _level_counts(series)
    rows = len(series)
    if reference is None:
        kept = counts.iloc[:max_categories]
        levels = counts.index.tolist()
        return CategoricalReduction(
            rows=rows,
            missing=missing,
            categories=[str(k) for k in kept.index],
            counts=kept.to_numpy(dtype=np.int64),
            other=int(counts.iloc[max_categories:].sum()),
            new=0,
            levels=len(counts),
            capped=len(counts) > max_categories,
            reference_levels=sorted(levels) if len(levels) <= LEVELS_LIMIT else None,
        )
    kept_index = pd.Index(reference.categories)
    kept_counts = counts.reindex(kept_index, fill_value=0).to_numpy(dtype=np.int64)
    rest = counts[~counts.index.isin(kept_index)]
    if reference.reference_levels is None:
        other, new, examples = int(rest.sum()), 0, []
    else:
        known = rest.index.isin(pd.Index(reference.reference_levels))
        other = int(rest[known].sum())
        unseen = rest[~known]
        new, examples = int(unseen.sum()), [str(k) for k in unseen.index[:10]]
    return CategoricalReduction(
        rows=rows,
        missing=missing,
        categories=list(reference.categories),
        counts=kept_counts,
        other=other,
        new=new,
        levels=len(counts),
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
