"""Group fairness of a binary classifier: per-group rates and disparities, with bootstrap intervals.

Aggregate, then compute: every row is reduced once to a cell of the finest intersection of the sensitive
attributes crossed with (label, prediction), so the whole data set becomes one ``cells × 4`` confusion table
(``np.bincount``). Every attribute, every intersection, every disparity and every bootstrap replicate is
derived from that table; rows are only visited again for per-group AUC, which needs the scores.

A rate whose denominator is zero, or whose group is smaller than ``min_group_size``, is undefined with a
reason (never 0); a disparity needs at least two groups where the rate is defined.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

if TYPE_CHECKING:  # pandas is imported where it runs: declarations must load without it
    import pandas as pd

from monitors.base import (
    Artifact,
    ColumnSpec,
    DataInputError,
    Metric,
    MetricStatus,
    ModelError,
    Monitor,
    MonitorResult,
    ParameterError,
    ParamSpec,
    invalid_result,
    library_versions,
    write_artifact,
)
from monitors.base import (
    is_int as _is_int,
)
from monitors.base import (
    is_probability as _is_prob,
)
from monitors.charts import styled
from monitors.engines.pandas import (
    MISSING_GROUP,
    FairnessReduction,
    Grouping,
    confusion_by_cell,
)

RATES = ("selection_rate", "tpr", "fpr", "precision")
DISPARITIES = (
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equalized_odds_difference",
    "equal_opportunity_difference",
)
# Confusion-table columns: index = 2 * label + prediction.
TN, FP, FN, TP = 0, 1, 2, 3
# The reduction's dataclasses under the names this module's metric step has always used.
_Grouping = Grouping
_Prepared = FairnessReduction


def _valid_bins(v: Any) -> bool:
    if not isinstance(v, Mapping):
        return False
    for edges in v.values():
        if not isinstance(edges, Sequence) or len(edges) < 2:
            return False
        try:
            arr = np.asarray(edges, dtype=float)
        except (TypeError, ValueError):
            return False
        if not np.all(np.diff(arr) > 0):
            return False
    return True


class FairnessMonitor(Monitor):
    kind = "fairness"
    version = "1"
    metrics = (
        "n",
        "positives",
        "predicted_positives",
        "selection_rate",
        "tpr",
        "fpr",
        "precision",
        "auc",
        "demographic_parity_difference",
        "demographic_parity_ratio",
        "equalized_odds_difference",
        "equal_opportunity_difference",
    )
    needs: ClassVar[frozenset[str]] = frozenset()  # scores or predictions come with the data
    params = (
        ParamSpec(
            "threshold", 0.5, "a float in [0, 1] (score >= threshold is a positive prediction)", _is_prob
        ),
        ParamSpec("min_group_size", 30, "an integer >= 1", lambda v: _is_int(v) and v >= 1),
        ParamSpec(
            "bootstrap", 200, "an integer >= 0 (0 disables intervals)", lambda v: _is_int(v) and v >= 0
        ),
        ParamSpec("confidence", 0.95, "a float in (0, 1)", lambda v: _is_prob(v) and 0.0 < float(v) < 1.0),
        ParamSpec("seed", 0, "an integer >= 0", lambda v: _is_int(v) and v >= 0),
        ParamSpec(
            "intersections",
            None,
            "True, False or None (None: True for 2+ attributes)",
            lambda v: v is None or isinstance(v, bool),
        ),
        ParamSpec(
            "max_groups",
            1000,
            "an integer >= 2 (groupings with more groups are not reported group by group)",
            lambda v: _is_int(v) and v >= 2,
        ),
        ParamSpec("missing_sensitive", "group", 'one of "group", "error"', lambda v: v in ("group", "error")),
        ParamSpec(
            "sensitive_bins",
            {},
            "a mapping of sensitive attribute -> increasing bin edges (at least 2)",
            _valid_bins,
        ),
    )

    # -- public --------------------------------------------------------------------------------------
    def run(
        self,
        spec: ColumnSpec,
        *,
        current: pd.DataFrame | str | Any,
        reference: Any = None,
        model: Any = None,
        params: Mapping[str, Any] | None = None,
        artifacts_dir: str | None = None,
        engine: str = "pandas",
        **options: Any,
    ) -> MonitorResult:
        """Group fairness of ``current`` reduced on ``engine`` (see ``DriftMonitor.run`` for the data each
        engine reads; ``options`` go to the backend). A SQL engine does not run a model: its data must
        carry the score or prediction column."""
        from monitors.engines.backend import ENGINES, engine_libraries, open_backend

        p = self.validate_params(params)
        if not spec.sensitive:
            raise ParameterError("spec.sensitive must name at least one sensitive attribute. Got () instead.")
        unknown_bins = sorted(set(p["sensitive_bins"]) - set(spec.sensitive))
        if unknown_bins:
            raise ParameterError(
                f"sensitive_bins keys must be among {list(spec.sensitive)}. Got {unknown_bins} instead."
            )
        if engine not in ENGINES:
            raise ParameterError(f"engine must be one of {list(ENGINES)}. Got {engine!r} instead.")
        versions = library_versions("matplotlib", *engine_libraries(engine))
        backend = None
        try:
            backend = open_backend(engine, current, **options)
            reduced = backend.fairness(spec, p, model)
            # After the reduction: the pandas backend hashes the group encoding it has just made.
            fps = (backend.fingerprint("current"),)
        except (DataInputError, ModelError) as exc:
            return invalid_result(self.kind, self.version, p, str(exc), seed=p["seed"])
        finally:
            if backend is not None:
                backend.close()
        notes = [] if engine == "pandas" else [f"reduction engine: {engine}"]
        excluded = [f"{k}: {v} row(s) excluded" for k, v in reduced.excluded.items() if v]
        notes += excluded
        assert reduced.cell_table is not None
        if int(reduced.cell_table.sum()) == 0:
            return MonitorResult(
                kind=self.kind,
                monitor_version=self.version,
                params=p,
                metrics=(),
                status=MetricStatus.INSUFFICIENT_DATA,
                reason="no usable rows" + (f" ({'; '.join(excluded)})" if excluded else " (empty data)"),
                fingerprints=fps,
                seed=p["seed"],
                library_versions=dict(versions),
                notes=tuple(notes),
            )
        metrics, table = compute_fairness(reduced, p)
        artifacts: list[Artifact] = []
        if artifacts_dir is not None:
            artifacts = _write_artifacts(artifacts_dir, table)
        worst = [m for m in metrics if m.name in DISPARITIES and m.feature is None]
        status, reason = MetricStatus.OK, None
        if not any(m.status is MetricStatus.OK for m in worst):
            status = MetricStatus.INSUFFICIENT_DATA
            reason = worst[0].reason if worst else "no disparity could be computed"
        if reduced.y is None:
            notes.append("spec has no target: only selection rates and demographic parity are computed")
        if reduced.score is None:
            notes.append("no score column or model: per-group AUC is not computed")
        if p["bootstrap"]:
            notes.append(
                f"bootstrap: {p['bootstrap']} replicates stratified by finest sensitive cell (group sizes fixed); "
                "no interval for AUC"
            )
        return MonitorResult(
            kind=self.kind,
            monitor_version=self.version,
            params=p,
            metrics=tuple(metrics),
            status=status,
            reason=reason,
            artifacts=tuple(artifacts),
            fingerprints=fps,
            seed=p["seed"],
            library_versions=dict(versions),
            notes=tuple(notes),
        )


# -- statistics --------------------------------------------------------------------------------------


def _rates(table: np.ndarray) -> dict[str, np.ndarray]:
    """Rates from confusion counts ``(..., groups, 4)``; NaN where the denominator is zero."""
    tn, fp, fn, tp = (table[..., i].astype(float) for i in range(4))
    n = tn + fp + fn + tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "selection_rate": (fp + tp) / n,
            "tpr": tp / (tp + fn),
            "fpr": fp / (fp + tn),
            "precision": tp / (tp + fp),
        }


def _spread(values: np.ndarray, eligible: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """max − min, min / max and the count of defined groups over the last axis (NaN = undefined)."""
    v = np.where(eligible, values, np.nan)
    count = np.sum(~np.isnan(v), axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"), _nan_quiet():
        hi = np.nanmax(v, axis=-1)
        lo = np.nanmin(v, axis=-1)
        diff = np.where(count >= 2, hi - lo, np.nan)
        ratio = np.where((count >= 2) & (hi > 0), lo / hi, np.nan)
    return diff, ratio, count


class _nan_quiet:
    """All-NaN slices are expected (undefined groups); silence numpy's RuntimeWarning for them only here."""

    def __enter__(self) -> None:
        import warnings

        self._cm = warnings.catch_warnings()
        self._cm.__enter__()
        warnings.filterwarnings("ignore", message="All-NaN slice encountered", category=RuntimeWarning)

    def __exit__(self, *exc: Any) -> None:
        self._cm.__exit__(*exc)


def _group_auc(
    groups: np.ndarray, score: np.ndarray, y: np.ndarray, n_groups: int, order: np.ndarray
) -> np.ndarray:
    """Mann–Whitney AUC per group with average ranks for ties; ``order`` sorts ``score`` ascending."""
    # A stable sort by group of the score-sorted order gives (group, score) order; on 8/16-bit keys numpy's
    # stable sort is a radix sort, so each grouping costs O(n) after the one O(n log n) sort of the scores.
    key_type = np.uint8 if n_groups <= 256 else np.uint16 if n_groups <= 65536 else np.int64
    o = order[np.argsort(groups[order].astype(key_type), kind="stable")]
    g, s, yy = groups[o], score[o], y[o]
    n = len(o)
    new_block = np.empty(n, dtype=bool)
    new_block[0] = True
    new_block[1:] = (g[1:] != g[:-1]) | (s[1:] != s[:-1])
    block_id = np.cumsum(new_block) - 1
    starts = np.flatnonzero(new_block)
    ends = np.concatenate((starts[1:], [n]))
    avg_pos = (starts + ends - 1) / 2.0
    sizes = np.bincount(g, minlength=n_groups)
    group_start = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    rank = avg_pos[block_id] - group_start[g] + 1.0
    r_pos = np.bincount(g, weights=rank * yy, minlength=n_groups)
    n_pos = np.bincount(g, weights=yy.astype(float), minlength=n_groups)
    n_neg = sizes - n_pos
    with np.errstate(invalid="ignore", divide="ignore"):
        return (r_pos - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


# Replicates are drawn in chunks so that one chunk holds at most this many (replicate, cell) draws.
_BOOT_CHUNK_DRAWS = 2_000_000


def _bootstrap_tables(
    cell_table: np.ndarray, groupings: list[_Grouping], replicates: int, seed: int
) -> dict[str, np.ndarray]:
    """Confusion tables ``(replicates, groups, 4)`` per grouping from one stratified bootstrap.

    Each occupied finest cell keeps its size and redraws its four counts from a multinomial with the
    observed proportions: equivalent to resampling rows within cells, without touching the rows. Every
    grouping is a sum of the same cell draws, so attributes, intersections and the worst case come from
    one joint resample.
    """
    if not replicates:
        return {}
    rng = np.random.default_rng(seed)
    n_cell = cell_table.sum(axis=1)
    occupied = np.flatnonzero(n_cell)
    probs = cell_table[occupied] / n_cell[occupied, None]
    # Per grouping: the occupied cells sorted by group, so a reduceat sums each group's cells.
    plans = []
    for g in groupings:
        gidx = g.cell_to_group[occupied]
        perm = np.argsort(gidx, kind="stable")
        sorted_g = gidx[perm]
        starts = np.flatnonzero(np.r_[True, sorted_g[1:] != sorted_g[:-1]])
        plans.append((g, perm, starts, sorted_g[starts]))
    out = {g.name: np.zeros((replicates, len(g.labels), 4), dtype=np.int64) for g in groupings}
    chunk = max(1, _BOOT_CHUNK_DRAWS // max(1, len(occupied)))
    for lo in range(0, replicates, chunk):
        hi = min(replicates, lo + chunk)
        draws = rng.multinomial(n_cell[occupied], probs, size=(hi - lo, len(occupied)))
        for g, perm, starts, group_ids in plans:
            out[g.name][lo:hi, group_ids, :] = np.add.reduceat(draws[:, perm, :], starts, axis=1)
    return out


def compute_fairness(
    prepared: _Prepared,
    p: Mapping[str, Any],
    *,
    cell_table: np.ndarray | None = None,
    group_auc: Mapping[str, np.ndarray] | None = None,
) -> tuple[list[Metric], pd.DataFrame]:
    """Metrics from the finest-cell confusion table. Another engine (DuckDB, Spark) passes the table and the
    per-group AUCs it computed itself, so the metric step is shared rather than copied."""
    import pandas as pd

    min_n = int(p["min_group_size"])
    has_y = prepared.y is not None
    if cell_table is None:
        cell_table = prepared.cell_table
    if cell_table is None:
        cell_table = confusion_by_cell(prepared.cells, prepared.y, prepared.pred, prepared.n_cells)
    if group_auc is None:
        group_auc = prepared.group_auc

    tables = {}
    for grouping in prepared.groupings:
        table = np.zeros((len(grouping.labels), 4), dtype=np.int64)
        np.add.at(table, grouping.cell_to_group, cell_table)
        tables[grouping.name] = table
    reported = [
        g for g in prepared.groupings if int((tables[g.name].sum(axis=1) > 0).sum()) <= int(p["max_groups"])
    ]
    boot_tables = _bootstrap_tables(cell_table, reported, int(p["bootstrap"]), int(p["seed"]))
    alpha = (1.0 - float(p["confidence"])) / 2.0

    order = None
    with_auc = prepared.score is not None and has_y
    if with_auc and group_auc is None:
        order = np.argsort(prepared.score)  # ties are averaged later, so the sort need not be stable

    metrics: list[Metric] = []
    rows: list[dict[str, Any]] = []
    per_attribute: dict[str, dict[str, Metric]] = {}
    for grouping in prepared.groupings:
        G = len(grouping.labels)
        table = tables[grouping.name]
        n = table.sum(axis=1)
        present = n > 0
        if int(present.sum()) > int(p["max_groups"]):
            # Thousands of (mostly tiny) groups are not a fairness report; say so instead of listing them.
            reason = f"{grouping.name} has {int(present.sum())} groups > max_groups={p['max_groups']}"
            for name in DISPARITIES:
                metrics.append(Metric.undefined(name, reason, feature=grouping.name))
            per_attribute[grouping.name] = {m.name: m for m in metrics[-len(DISPARITIES) :]}
            continue
        rates = _rates(table)
        large = n >= min_n
        auc = None
        if group_auc is not None:
            auc = group_auc.get(grouping.name) if with_auc else None
        elif order is not None:
            row_groups = grouping.cell_to_group[prepared.cells]
            auc = _group_auc(row_groups, prepared.score, prepared.y, G, order)

        boot_rates = _rates(boot_tables[grouping.name]) if boot_tables else None
        # Every group's interval in one quantile call per rate (one call per group was a tenth of a run).
        boot_ci = {r: _group_percentiles(v, alpha) for r, v in boot_rates.items()} if boot_rates else None

        for gi in np.flatnonzero(present):
            label = grouping.labels[gi]
            tn, fp, fn, tp = (int(v) for v in table[gi])
            counts = {"n": int(n[gi]), "tn": tn, "fp": fp, "fn": fn, "tp": tp}
            kw = {"feature": grouping.name, "group": label}
            row: dict[str, Any] = {"feature": grouping.name, "group": label, "n": int(n[gi])}
            metrics.append(Metric("n", float(n[gi]), counts=counts, **kw))
            metrics.append(Metric("predicted_positives", float(fp + tp), **kw))
            row["predicted_positives"] = fp + tp
            if has_y:
                metrics.append(Metric("positives", float(fn + tp), **kw))
                row["positives"] = fn + tp
            else:
                metrics.append(Metric.undefined("positives", "spec has no target column", **kw))
                row["positives"] = None
            for rate in RATES:
                m = _rate_metric(rate, rates[rate][gi], int(n[gi]), min_n, has_y, counts, kw, boot_ci, gi)
                metrics.append(m)
                row[rate] = m.value
                row[f"{rate}_ci_low"] = m.ci_low
                row[f"{rate}_ci_high"] = m.ci_high
                if m.status is not MetricStatus.OK:
                    row[f"{rate}_reason"] = m.reason
            metrics.append(_auc_metric(auc, gi, int(n[gi]), min_n, tp + fn, tn + fp, has_y, counts, kw))
            row["auc"] = metrics[-1].value
            rows.append(row)

        disp = _disparities(grouping, rates, large & present, boot_rates, alpha, has_y, min_n)
        per_attribute[grouping.name] = {m.name: m for m in disp}
        metrics.extend(disp)

    metrics.extend(_worst_case(per_attribute, prepared.attributes))
    return metrics, pd.DataFrame(rows)


def _rate_metric(
    rate: str,
    value: float,
    n: int,
    min_n: int,
    has_y: bool,
    counts: Mapping[str, int],
    kw: Mapping[str, Any],
    boot_ci: Mapping[str, tuple[list[float | None], list[float | None]]] | None,
    gi: int,
) -> Metric:
    denominators = {
        "selection_rate": ("n", n),
        "tpr": ("positives (tp + fn)", counts["tp"] + counts["fn"]),
        "fpr": ("negatives (fp + tn)", counts["fp"] + counts["tn"]),
        "precision": ("predicted positives (tp + fp)", counts["tp"] + counts["fp"]),
    }
    if rate != "selection_rate" and not has_y:
        return Metric.undefined(rate, "spec has no target column", **kw)
    if n < min_n:
        return Metric.undefined(rate, f"group has n={n} < min_group_size={min_n}", counts=counts, **kw)
    what, denom = denominators[rate]
    if denom == 0:
        return Metric.undefined(rate, f"group has no {what}: {rate} is undefined", counts=counts, **kw)
    lo = hi = None
    if boot_ci is not None:
        lo, hi = boot_ci[rate][0][gi], boot_ci[rate][1][gi]
    return Metric(rate, float(value), counts=counts, ci_low=lo, ci_high=hi, **kw)


def _auc_metric(
    auc: np.ndarray | None,
    gi: int,
    n: int,
    min_n: int,
    n_pos: int,
    n_neg: int,
    has_y: bool,
    counts: Mapping[str, int],
    kw: Mapping[str, Any],
) -> Metric:
    if not has_y:
        return Metric.undefined("auc", "spec has no target column", **kw)
    if auc is None:
        return Metric.undefined("auc", "no score column or model: AUC needs scores", **kw)
    if n < min_n:
        return Metric.undefined("auc", f"group has n={n} < min_group_size={min_n}", counts=counts, **kw)
    if n_pos == 0 or n_neg == 0:
        return Metric.undefined(
            "auc",
            f"group has {n_pos} positive(s) and {n_neg} negative(s): AUC needs both",
            counts=counts,
            **kw,
        )
    return Metric("auc", float(auc[gi]), counts=counts, **kw)


def _group_percentiles(samples: np.ndarray, alpha: float) -> tuple[list[float | None], list[float | None]]:
    """``_percentiles`` of every column of ``samples`` (replicates × groups): columns without NaN share
    one ``np.quantile`` call (the same numbers as one call per column)."""
    lo: list[float | None] = [None] * samples.shape[1]
    hi: list[float | None] = [None] * samples.shape[1]
    clean = ~np.isnan(samples).any(axis=0)
    if samples.shape[0] and clean.any():
        cols = np.flatnonzero(clean)
        q = np.quantile(samples[:, cols], [alpha, 1.0 - alpha], axis=0)
        for k, j in enumerate(cols):
            lo[j], hi[j] = float(q[0, k]), float(q[1, k])
    for j in np.flatnonzero(~clean):
        lo[j], hi[j] = _percentiles(samples[:, j], alpha)
    return lo, hi


def _percentiles(samples: np.ndarray, alpha: float) -> tuple[float | None, float | None]:
    s = samples[~np.isnan(samples)]
    if s.size == 0:
        return None, None
    lo, hi = np.quantile(s, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def _disparities(
    grouping: _Grouping,
    rates: Mapping[str, np.ndarray],
    eligible: np.ndarray,
    boot_rates: Mapping[str, np.ndarray] | None,
    alpha: float,
    has_y: bool,
    min_n: int,
) -> list[Metric]:
    kw = {"feature": grouping.name, "group": None}
    n_present = int(np.sum(~np.isnan(rates["selection_rate"])))
    n_large = int(eligible.sum())
    out: list[Metric] = []

    def why(rate_names: str, count: int) -> str:
        if n_present < 2:
            return f"{grouping.name} has {n_present} group(s): a disparity needs at least 2"
        return (
            f"{grouping.name}: {count} group(s) with a defined {rate_names} and n >= min_group_size={min_n} "
            f"({n_large} of {n_present} groups are large enough): a disparity needs at least 2"
        )

    def ci(name: str) -> tuple[float | None, float | None]:
        if boot_rates is None:
            return None, None
        # Eligibility is fixed by the observed data so every replicate compares the same groups.
        if name in ("demographic_parity_difference", "demographic_parity_ratio"):
            d, r, _ = _spread(boot_rates["selection_rate"], eligible)
            return _percentiles(d if name.endswith("difference") else r, alpha)
        t, _, _ = _spread(boot_rates["tpr"], eligible & ~np.isnan(rates["tpr"]))
        if name == "equal_opportunity_difference":
            return _percentiles(t, alpha)
        f, _, _ = _spread(boot_rates["fpr"], eligible & ~np.isnan(rates["fpr"]))
        # Both TPR and FPR must be defined in a replicate, as for the point estimate.
        return _percentiles(np.maximum(t, f), alpha)

    sel_diff, sel_ratio, sel_count = _spread(rates["selection_rate"], eligible)
    counts = {"groups": n_present, "eligible_groups": int(sel_count)}
    if sel_count >= 2:
        lo, hi = ci("demographic_parity_difference")
        out.append(
            Metric(
                "demographic_parity_difference", float(sel_diff), ci_low=lo, ci_high=hi, counts=counts, **kw
            )
        )
        if np.isnan(sel_ratio):
            out.append(
                Metric.undefined(
                    "demographic_parity_ratio",
                    "every eligible group has selection rate 0",
                    counts=counts,
                    **kw,
                )
            )
        else:
            lo, hi = ci("demographic_parity_ratio")
            out.append(
                Metric(
                    "demographic_parity_ratio", float(sel_ratio), ci_low=lo, ci_high=hi, counts=counts, **kw
                )
            )
    else:
        reason = why("selection rate", int(sel_count))
        out.append(Metric.undefined("demographic_parity_difference", reason, counts=counts, **kw))
        out.append(Metric.undefined("demographic_parity_ratio", reason, counts=counts, **kw))

    if not has_y:
        for name in ("equalized_odds_difference", "equal_opportunity_difference"):
            out.append(Metric.undefined(name, "spec has no target column", **kw))
        return out
    tpr_diff, _, tpr_count = _spread(rates["tpr"], eligible)
    fpr_diff, _, fpr_count = _spread(rates["fpr"], eligible)
    counts_t = {**counts, "tpr_groups": int(tpr_count), "fpr_groups": int(fpr_count)}
    if tpr_count >= 2:
        lo, hi = ci("equal_opportunity_difference")
        out.append(
            Metric(
                "equal_opportunity_difference", float(tpr_diff), ci_low=lo, ci_high=hi, counts=counts_t, **kw
            )
        )
    else:
        out.append(
            Metric.undefined(
                "equal_opportunity_difference", why("TPR", int(tpr_count)), counts=counts_t, **kw
            )
        )
    if tpr_count >= 2 and fpr_count >= 2:
        lo, hi = ci("equalized_odds_difference")
        value = max(float(tpr_diff), float(fpr_diff))
        out.append(Metric("equalized_odds_difference", value, ci_low=lo, ci_high=hi, counts=counts_t, **kw))
    else:
        which = "TPR" if tpr_count < 2 else "FPR"
        out.append(
            Metric.undefined(
                "equalized_odds_difference",
                why(which, int(tpr_count if which == "TPR" else fpr_count)),
                counts=counts_t,
                **kw,
            )
        )
    return out


def _worst_case(per_attribute: Mapping[str, Mapping[str, Metric]], attributes: list[str]) -> list[Metric]:
    """Worst value over the declared attributes (intersections are reported per intersection only)."""
    out = []
    for name in DISPARITIES:
        found = [(a, per_attribute[a][name]) for a in attributes if name in per_attribute.get(a, {})]
        defined = [(a, m) for a, m in found if m.status is MetricStatus.OK]
        undefined = [a for a, m in found if m.status is not MetricStatus.OK]
        if not defined:
            reasons = "; ".join(m.reason or "" for _, m in found)
            out.append(Metric.undefined(name, f"no attribute has a defined {name}: {reasons}"))
            continue
        pick = min if name == "demographic_parity_ratio" else max
        attr, m = pick(defined, key=lambda am: am[1].value)
        counts = {
            "attribute": attr,
            "attributes_defined": [a for a, _ in defined],
            "attributes_undefined": undefined,
        }
        out.append(Metric(name, m.value, ci_low=m.ci_low, ci_high=m.ci_high, counts=counts))
    return out


# -- artifacts -----------------------------------------------------------------------------------------


def _write_artifacts(folder: str, table: pd.DataFrame) -> list[Artifact]:
    out = []
    buf = io.StringIO()
    table.to_csv(buf, index=False, lineterminator="\n")
    a = write_artifact(
        folder, "fairness_groups.csv", buf.getvalue().encode("utf-8"), "per-group fairness metrics"
    )
    if a is not None:
        out.append(a)
    png = _bar_chart(table)
    a = write_artifact(folder, "fairness_groups.png", png, "selection rate and TPR per group")
    if a is not None:
        out.append(a)
    return out


@styled  # CJK-capable font for Chinese feature and group names
def _bar_chart(table: pd.DataFrame) -> bytes:
    # Figure + Agg canvas directly: no pyplot global state, no backend switch for the host process.
    import pandas as pd
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    features = list(dict.fromkeys(table["feature"])) if len(table) else []
    fig = Figure(figsize=(8, 2.6 * max(1, len(features))), dpi=80)
    FigureCanvasAgg(fig)
    for i, feat in enumerate(features):
        ax = fig.add_subplot(max(1, len(features)), 1, i + 1)
        sub = table[table["feature"] == feat]
        x = np.arange(len(sub))
        sel = pd.to_numeric(sub["selection_rate"], errors="coerce").fillna(0.0).to_numpy()
        tpr = (
            pd.to_numeric(sub.get("tpr", pd.Series([np.nan] * len(sub))), errors="coerce")
            .fillna(0.0)
            .to_numpy()
        )
        ax.bar(x - 0.2, sel, width=0.4, label="selection rate")
        ax.bar(x + 0.2, tpr, width=0.4, label="TPR")
        ax.set_xticks(x, [str(g) for g in sub["group"]], rotation=30, fontsize=7)
        ax.set_ylim(0, 1)
        ax.set_title(f"{feat} (undefined rates drawn as 0-height bars)", fontsize=8)
        ax.legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


__all__ = ["DISPARITIES", "MISSING_GROUP", "FairnessMonitor", "compute_fairness", "confusion_by_cell"]
