"""Reduction engines: rows in, sufficient statistics out.

A monitor's metric step reads only the plain dataclasses defined in :mod:`monitors.engines.pandas`
(numpy arrays, ints, lists of strings), never raw rows. Drift and fairness reach their data through the
backend protocol of :mod:`monitors.engines.backend`: ``PandasBackend`` here, ``DuckDBBackend`` and
``SparkBackend`` (:mod:`monitors.engines.duckdb`, :mod:`monitors.engines.spark`) on the SQL reductions of
:mod:`monitors.engines.sql`; every backend fills the same dataclasses, so each monitor has one metric step
and one result assembly whatever the engine.
"""

from monitors.engines.pandas import (
    CategoricalReduction,
    NumericReduction,
    ScoreLabelReduction,
    bin_counts,
    ks_wasserstein,
    quantile_edges,
    reduce_categorical,
    reduce_numeric,
    reduce_score_label,
    sample_rng,
)

__all__ = [
    "CategoricalReduction",
    "NumericReduction",
    "ScoreLabelReduction",
    "bin_counts",
    "ks_wasserstein",
    "quantile_edges",
    "reduce_categorical",
    "reduce_numeric",
    "reduce_score_label",
    "sample_rng",
]
