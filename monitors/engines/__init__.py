"""Reduction engines: rows in, sufficient statistics out.

A monitor's metric step reads only the plain dataclasses defined in :mod:`monitors.engines.pandas`
(numpy arrays, ints, lists of strings), never raw rows. Another engine (DuckDB, Spark) only has to produce
the same dataclasses from its own data to reuse every metric unchanged.
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
