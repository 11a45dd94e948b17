"""What every SQL engine (DuckDB, Spark) shares: literals, the reductions built from aggregate queries, and
the drift and fairness sides of the reduction-backend protocol (:mod:`monitors.engines.backend`).

A concrete engine (``DuckDBBackend``, ``SparkBackend``) supplies the queries (``numeric_profile``,
``order_stats``, ``cumulative_counts``, ``samples``, ``level_counts_many``, ``grouped_counts``,
``group_auc``); this module turns their answers into the same ``NumericReduction``, ``CategoricalReduction``
and ``FairnessReduction`` objects the pandas engine builds, so every metric is computed by one code path.
See :mod:`monitors.engines.duckdb` for how each pandas convention is reproduced bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from monitors.base import ColumnKind, ColumnSpec, DataInputError
from monitors.engines.pandas import (
    MISSING_GROUP,
    CategoricalReduction,
    FairnessReduction,
    FeatureStats,
    NumericReduction,
    categorical_reduction,
    category_key,
    combine_cells,
    edge_label,
    groupings_of,
    quantile_edges,
)

_INF = "CAST('inf' AS DOUBLE)"
_NEG_INF = "CAST('-inf' AS DOUBLE)"


def double_literal(value: float) -> str:
    """A SQL DOUBLE equal to ``value`` bit for bit (``repr`` round-trips; a bare ``0.1`` would be DECIMAL)."""
    value = float(value)
    if math.isnan(value):
        return "CAST('nan' AS DOUBLE)"
    if math.isinf(value):
        return _INF if value > 0 else _NEG_INF
    return f"CAST('{value!r}' AS DOUBLE)"


def sql_literal(value: Any) -> str:
    """A typed SQL literal for a value read back from the engine (used in ``IN (...)`` lists)."""
    if isinstance(value, (bool, np.bool_)):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return double_literal(float(value))
    return "'" + str(value).replace("'", "''") + "'"


def segment_condition(q: Any, where: Mapping[str, Any], literal: Any) -> str:
    """SQL condition of ``where`` with the dialect's quoting ``q`` and literal rule."""
    parts = []
    for col, value in where.items():
        parts.append(f"{q(col)} IS NULL" if is_missing_value(value) else f"{q(col)} = {literal(value)}")
    return " AND ".join(parts) or "TRUE"


def is_missing_value(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


# -- numeric reductions from order statistics and counts ----------------------------------------


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
    # Most frequent first, ties by key: the pandas engine's lexsort order.
    ordered = sorted(keyed.items(), key=lambda kv: (-kv[1], kv[0]))
    return categorical_reduction(
        [k for k, _ in ordered],
        np.asarray([c for _, c in ordered], dtype=np.int64),
        rows=missing + sum(keyed.values()),
        missing=missing,
        reference=reference,
        max_categories=max_categories,
    )


def numeric_message(name: str, prof: Mapping[str, Any], kind: str) -> str | None:
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
            out[c] = numeric_message(c, {"type": backend.raw_types()[c]}, "other")  # type: ignore[assignment]
            continue
        prof = profile[c]
        msg = numeric_message(c, prof, schema[c])
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


# -- the backend protocol's drift and fairness sides ----------------------------------------------


def _is_numeric_feature(kind: ColumnKind, col_kind: str) -> bool:
    return kind is ColumnKind.NUMERIC or (kind is ColumnKind.ORDINAL and col_kind in ("numeric", "bool"))


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


class SqlReductions:
    """Mixin of the SQL engines: the drift and fairness reductions of the backend protocol, from the
    engine's aggregate queries."""

    engine: str = "sql"

    def columns(self) -> list[str]:
        return list(self.schema())  # type: ignore[attr-defined]

    def reference_stats(
        self, columns: Sequence[tuple[str, ColumnKind]], p: Mapping[str, Any]
    ) -> dict[str, FeatureStats]:
        """Reference reductions of ``columns`` ((name, kind); numeric by quantile bins, else categories)."""
        schema = self.schema()
        numeric = [name for name, kind in columns if _is_numeric_feature(kind, schema[name])]
        reduced = reduce_numeric_columns(self, list(dict.fromkeys(numeric)), p, role=0)
        levels = self.level_counts_many(list(dict.fromkeys(n for n, _ in columns if n not in reduced)))
        stats: dict[str, FeatureStats] = {}
        for name, _ in columns:
            if name in reduced:
                r = reduced[name]
                stats[name] = (
                    FeatureStats("invalid", reason=f"reference {r}")
                    if isinstance(r, str)
                    else FeatureStats("numeric", r)
                )
            else:
                stats[name] = FeatureStats(
                    "categorical",
                    categorical_from_counts(levels[name], max_categories=p["max_categories"]),
                )
        return stats

    def current_stats(
        self, columns: Sequence[tuple[str, FeatureStats]], p: Mapping[str, Any]
    ) -> dict[str, FeatureStats]:
        """Current reductions against the reference stats ``columns`` = [(name, FeatureStats)]."""
        schema = self.schema()
        numeric = {
            name: ref.stats.edges
            for name, ref in columns
            if ref.kind == "numeric" and isinstance(ref.stats, NumericReduction)
        }
        reduced = reduce_numeric_columns(self, list(numeric), p, role=1, edges=numeric)
        levels = self.level_counts_many([name for name, ref in columns if ref.kind == "categorical"])
        out: dict[str, Any] = {}
        invalid_ref = [name for name, ref in columns if ref.kind not in ("numeric", "categorical")]
        check = self.numeric_profile([c for c in invalid_ref if schema[c] == "string"]) if invalid_ref else {}
        for name, ref in columns:
            if ref.kind == "numeric":
                r = reduced[name]
                out[name] = (
                    FeatureStats("invalid", reason=f"current {r}")
                    if isinstance(r, str)
                    else FeatureStats("numeric", r)
                )
            elif ref.kind == "categorical":
                out[name] = FeatureStats(
                    "categorical", categorical_from_counts(levels[name], reference=ref.stats)
                )
            else:
                # The reference column was unusable: still check the current one so both problems are reported.
                msg = numeric_message(name, check[name], "string") if name in check else None
                out[name] = FeatureStats("invalid", reason=f"current {msg}" if msg else None)
        return out

    def fairness(self, spec: ColumnSpec, p: Mapping[str, Any], model: Any = None) -> FairnessReduction:
        """The engine side of ``reduce_fairness`` (pandas): one ``GROUP BY`` over (sensitive values, target,
        prediction or score ≥ threshold, exclusion flags) gives the finest-cell confusion table; per-group AUC
        is computed here too (the rows never leave the engine)."""
        schema = self.schema()
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
            c
            for c in ([spec.score] if has_score else []) + list(p["sensitive_bins"])
            if schema[c] == "string"
        ]
        prof = self.numeric_profile(checks) if checks else {}
        for c in checks:
            msg = numeric_message(c, prof[c], "string")
            if msg:
                raise DataInputError(msg)
        for c in [*([spec.score] if has_score else []), *p["sensitive_bins"]]:
            if schema[c] == "other":
                raise DataInputError(
                    f"column {c} must be numeric. Got a column of type {self.raw_types()[c]} instead."
                )

        q = self.q
        attr_exprs, bin_edges = [], {}
        for a in attributes:
            if a in p["sensitive_bins"]:
                edges = np.asarray(p["sensitive_bins"][a], dtype=float)
                bin_edges[a] = edges
                x = self.num(a)
                ge = " + ".join(f"(CASE WHEN {x} >= {double_literal(e)} THEN 1 ELSE 0 END)" for e in edges)
                attr_exprs.append(
                    f"(CASE WHEN NOT {self.finite(x)} THEN NULL WHEN {x} = {double_literal(edges[-1])} "
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
            s = self.num(spec.score)
            score_bad_i = len(exprs)
            exprs.append(f"(CASE WHEN {self.finite(s)} THEN 0 ELSE 1 END)")
        pred_i = len(exprs)
        if has_pred:
            exprs.append(q(spec.prediction))
        else:
            exprs.append(f"(CASE WHEN {s} >= {double_literal(float(p['threshold']))} THEN 1 ELSE 0 END)")
        rows = self.grouped_counts(exprs)

        # Row exclusions in reduce_fairness' order: missing target, then non-finite score, then missing prediction.
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
                outside = [
                    r for r in rows if not _is_missing(r[i]) and not (0 <= int(r[i]) <= len(edges) - 2)
                ]
                if outside:
                    x = self.num(a)
                    example = self.first_where(
                        x,
                        f"{self.finite(x)} AND ({x} < {double_literal(edges[0])} OR {x} > {double_literal(edges[-1])})",
                    )
                    raise DataInputError(
                        f"sensitive attribute {a} has {sum(int(r[-1]) for r in outside)} value(s) outside sensitive_bins "
                        f"[{edges[0]:g}, {edges[-1]:g}], e.g. {float(example)!r}"
                    )
                labels = [
                    f"[{edge_label(edges[j])}, {edge_label(edges[j + 1])}{']' if j == len(edges) - 2 else ')'}"
                    for j in range(len(edges) - 1)
                ]
                # encode_group keeps every bin label; combine_cells' grid spans them all.
                cmap = {j: j for j in range(len(edges) - 1)}
            else:
                is_int = getattr(self, "is_integer_type", lambda c: False)(a)
                cmap, labels = _attr_labels(list(present), is_int and has_missing)
            if has_missing:
                if p["missing_sensitive"] == "error":
                    n_missing = sum(int(r[-1]) for r in rows if _is_missing(r[i]))
                    raise DataInputError(
                        f"sensitive attribute {a} has {n_missing} missing value(s); "
                        'set missing_sensitive="group" to report them as group "__missing__"'
                    )
                labels = [*labels, MISSING_GROUP]
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
        cells, n_cells, cell_attr_codes = combine_cells(codes_arr, [len(lab) for lab in labels_list])
        y = (
            np.asarray([r[target_i] == positive for r in kept_rows], dtype=bool)
            if target_i is not None
            else None
        )
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

        groupings, combos = groupings_of(attributes, labels_list, cell_attr_codes, p["intersections"])

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
            s = self.num(spec.score)
            t = q(spec.target)
            where = [f"{t} IS NOT NULL", self.finite(s)]
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
                got = self.group_auc([attr_exprs[a] for a in combo], s, label_expr, " AND ".join(where))
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
        return FairnessReduction(
            cells=np.empty(0, dtype=np.int64),
            n_cells=n_cells,
            y=y,
            pred=pred,
            score=np.empty(0) if has_score else None,
            groupings=groupings,
            attributes=attributes,
            excluded=excluded,
            cell_table=cell_table,
            group_auc=aucs,
        )
