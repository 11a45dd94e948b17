"""Segments: the drift, performance and fairness monitors computed per segment (channel, region, product...).

``SegmentMonitor`` (kind ``segments``) runs the inner monitors once per segment of the current data and
re-labels their metrics, so one result holds every segment side by side:

* a metric of inner kind ``K`` named ``m`` becomes ``K.m`` (``drift.psi``, ``performance.auc``,
  ``fairness.demographic_parity_ratio``); its ``feature`` is unchanged, its ``group`` is the segment label
  (``channel=web``; crossed segments ``channel=web&region=north``; a missing value is ``__missing__``). A
  fairness metric that already had a group (a sensitive group) gets ``<segment>|<group>``.
* ``rows`` (group = segment) counts the segment's current rows, with the reference rows in ``counts``.
* a segment with fewer than ``min_segment_size`` current rows (or reference rows, when drift runs) is
  **insufficient data**: every one of its metrics is undefined with that reason, never a number.

Segments: each column of ``segments`` on its own (one column of results per segment column); with
``cross=True`` also every combination of their values that occurs.

Multiple comparisons. Across all (segment, feature) drift tests of the run (``drift.ks_pvalue`` and
``drift.chi2_pvalue`` together: one family) the p-values are adjusted by Benjamini–Hochberg (``p_adjust:
bh``, false discovery rate, the default) or Holm (``holm``, family-wise error rate), reported as
``drift.ks_pvalue_adjusted`` / ``drift.chi2_pvalue_adjusted`` with the method, the family size and the raw
p-value in ``counts``. ``drift.segment_flagged_psi`` (per segment) is the largest PSI among the segment's
features whose adjusted p-value is below ``alpha`` (0 when none is), so a segment is flagged only when a
shift is both significant after the adjustment and large; ``drift.segment_drifted`` is 1 when that PSI is
at least ``psi_threshold``. Dataset level: ``segments``, ``segments_insufficient``, ``segments_drifted``.

Engines: the segments and their row counts come from one ``GROUP BY`` on the engine; each segment's drift
and fairness reductions then run on the engine over that segment's rows (``open_backend(..., where=)``
filters in DuckDB or Spark, not in pandas); performance loads only the target, score and segment columns.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from monitors.base import (
    ColumnSpec,
    DataInputError,
    Metric,
    MetricStatus,
    Monitor,
    MonitorResult,
    ParameterError,
    ParamSpec,
    invalid_result,
    library_versions,
)

if TYPE_CHECKING:  # pandas is imported where it runs
    import pandas as pd

INNER_KINDS = ("drift", "performance", "fairness")
P_ADJUST = {"bh": "benjamini-hochberg", "holm": "holm"}
MISSING_LABEL = "__missing__"
#: The summary metrics of an inner kind, reported undefined for a segment that cannot be judged.
_SUMMARY = {
    "drift": ("max_psi", "drift_share", "score_psi"),
    "performance": ("auc", "gini", "ks_statistic"),
    "fairness": ("demographic_parity_ratio", "equalized_odds_difference"),
}
_TESTS = ("ks_pvalue", "chi2_pvalue")


def _inner_metrics() -> tuple[str, ...]:
    from monitors.drift import DriftMonitor
    from monitors.fairness import FairnessMonitor
    from monitors.performance import PerformanceMonitor

    names = [f"drift.{m}" for m in DriftMonitor.metrics]
    names += [f"drift.{t}_adjusted" for t in _TESTS] + ["drift.segment_flagged_psi", "drift.segment_drifted"]
    names += [f"performance.{m}" for m in PerformanceMonitor.metrics]
    names += [f"fairness.{m}" for m in FairnessMonitor.metrics]
    return ("rows", *names, "segments", "segments_insufficient", "segments_drifted")


def adjust_pvalues(pvalues: Sequence[float], method: str) -> np.ndarray:
    """Adjusted p-values, as ``statsmodels.stats.multitest.multipletests(p, method="fdr_bh" | "holm")[1]``.

    Benjamini–Hochberg: sort ascending, ``p_(i) · m / i``, then a running minimum from the largest down
    (step-up), capped at 1. Holm: ``p_(i) · (m − i + 1)``, then a running maximum from the smallest up
    (step-down), capped at 1. Returned in the input order."""
    p = np.asarray(pvalues, dtype=float)
    if method not in P_ADJUST:
        raise ParameterError(f"p_adjust must be one of {sorted(P_ADJUST)}. Got {method!r} instead.")
    m = p.size
    if m == 0:
        return p
    order = np.argsort(p, kind="mergesort")
    ranked = p[order]
    i = np.arange(1, m + 1, dtype=float)
    if method == "bh":
        adj = np.minimum.accumulate((ranked * m / i)[::-1])[::-1]
    else:
        adj = np.maximum.accumulate(ranked * (m - i + 1))
    out = np.empty(m)
    out[order] = np.minimum(adj, 1.0)
    return out


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _plain(value: Any) -> Any:
    if _is_missing(value):
        return None
    return value.item() if hasattr(value, "item") else value


def segment_label(where: Mapping[str, Any]) -> str:
    return "&".join(f"{c}={MISSING_LABEL if _is_missing(v) else v}" for c, v in where.items())


def segment_counts(engine: str, data: Any, columns: Sequence[str], **options: Any) -> dict[tuple, int]:
    """Rows per combination of ``columns`` (one ``GROUP BY`` on the engine; missing values are None)."""
    from monitors.engines.backend import open_backend

    backend = open_backend(engine, data, **{k: v for k, v in options.items() if k != "where"})
    try:
        present = backend.columns()
        missing = [c for c in columns if c not in present]
        if missing:
            raise DataInputError(f"data has no segment column(s) {missing}; it has {present[:20]}")
        frame = getattr(backend, "frame", None)
        if frame is not None:
            sizes = frame.groupby(list(columns), dropna=False, sort=False).size()
            items = sizes.items()
            rows = [((k,) if len(columns) == 1 else tuple(k), int(n)) for k, n in items]
        else:
            rows = [
                (tuple(r[:-1]), int(r[-1])) for r in backend.grouped_counts([backend.q(c) for c in columns])
            ]
    finally:
        backend.close()
    return {tuple(_plain(v) for v in key): n for key, n in rows}


def _valid_segments(v: Any) -> bool:
    return (
        isinstance(v, (list, tuple))
        and len(v) > 0
        and all(isinstance(c, str) and c for c in v)
        and len(set(v)) == len(v)
    )


def _valid_kinds(v: Any) -> bool:
    return v is None or (
        isinstance(v, (list, tuple))
        and len(v) > 0
        and all(isinstance(k, str) and k in INNER_KINDS for k in v)
    )


def _is_int_ge(lo: int):
    return lambda v: isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= lo


def _is_open_unit(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and 0.0 < float(v) < 1.0


class SegmentMonitor(Monitor):
    """Drift, performance and fairness per segment (see the module docstring)."""

    kind = "segments"
    version = "1"
    metrics = _inner_metrics()
    needs = frozenset({"reference"})  # scores come with the data (the runner adds the model's)
    params = (
        ParamSpec(
            "segments",
            None,
            "a non-empty list of distinct column names",
            lambda v: v is None or _valid_segments(v),
        ),
        ParamSpec(
            "seed",
            0,
            "an integer in [0, 2**32 - 1]",
            lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**32,
        ),
        ParamSpec("cross", False, "a boolean", lambda v: isinstance(v, bool)),
        ParamSpec("kinds", None, f"None or a non-empty subset of {list(INNER_KINDS)}", _valid_kinds),
        ParamSpec("min_segment_size", 100, "an integer >= 1", _is_int_ge(1)),
        ParamSpec("max_segments", 200, "an integer >= 1", _is_int_ge(1)),
        ParamSpec(
            "p_adjust", "bh", f"one of {sorted(P_ADJUST)}", lambda v: isinstance(v, str) and v in P_ADJUST
        ),
        ParamSpec("alpha", 0.05, "a float in (0, 1)", _is_open_unit),
        ParamSpec(
            "psi_threshold",
            0.1,
            "a float > 0",
            lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0,
        ),
        ParamSpec("drift", {}, "a mapping of drift parameters", lambda v: isinstance(v, Mapping)),
        ParamSpec("performance", {}, "a mapping of performance parameters", lambda v: isinstance(v, Mapping)),
        ParamSpec("fairness", {}, "a mapping of fairness parameters", lambda v: isinstance(v, Mapping)),
    )

    def run(
        self,
        spec: ColumnSpec,
        *,
        current: Any,
        reference: Any = None,
        params: Mapping[str, Any] | None = None,
        artifacts_dir: str | Path | None = None,
        engine: str = "pandas",
        **options: Any,
    ) -> MonitorResult:
        """Per-segment results of the inner monitors on ``engine`` (``options`` go to the backends)."""
        from monitors.engines.backend import ENGINES, engine_libraries

        p = self.validate_params(params)
        if p["segments"] is None:
            raise ParameterError("segments must name at least one segment column. Got None instead.")
        if engine not in ENGINES:
            raise ParameterError(f"engine must be one of {list(ENGINES)}. Got {engine!r} instead.")
        kinds = list(p["kinds"] or self._default_kinds(spec, reference))
        if "drift" in kinds and reference is None:
            raise ParameterError(
                "kinds includes drift, which needs reference data. Got reference=None instead."
            )
        if "performance" in kinds and not spec.target:
            raise ParameterError("kinds includes performance, which needs spec.target. Got None instead.")
        if "fairness" in kinds and not spec.sensitive:
            raise ParameterError("kinds includes fairness, which needs spec.sensitive. Got () instead.")
        # Parameters of the inner monitors are validated here, once, before any segment runs.
        inner_params = {k: self._inner(k).validate_params(self._inner_given(k, p)) for k in kinds}
        cols = list(p["segments"])
        groupings: list[list[str]] = [[c] for c in cols]
        if p["cross"] and len(cols) > 1:
            groupings.append(cols)
        versions = library_versions(*engine_libraries(engine))
        try:
            fps = [_fingerprint(engine, current, "current", options)]
            if reference is not None:
                fps.insert(0, _fingerprint(engine, reference, "reference", options))
            cur_counts = {tuple(g): segment_counts(engine, current, g, **options) for g in groupings}
            ref_counts = (
                {tuple(g): segment_counts(engine, reference, g, **options) for g in groupings}
                if reference is not None
                else {}
            )
        except DataInputError as exc:
            return invalid_result(self.kind, self.version, p, str(exc), seed=p["seed"])
        n_segments = sum(len(set(cur_counts[g]) | set(ref_counts.get(g, {}))) for g in cur_counts)
        if n_segments > p["max_segments"]:
            return invalid_result(
                self.kind,
                self.version,
                p,
                f"{n_segments} segments exceed max_segments {p['max_segments']} (is a segment column an identifier?)",
            )
        perf_frame = None
        if "performance" in kinds:
            try:
                perf_frame = self._performance_frame(engine, current, spec, cols, **options)
            except DataInputError as exc:
                return invalid_result(self.kind, self.version, p, str(exc))

        metrics: list[Metric] = []
        notes: list[str] = [
            f"segments {cols}{' and their cross' if p['cross'] and len(cols) > 1 else ''}; "
            f"minimum segment size {p['min_segment_size']} rows; drift p-values adjusted by "
            f"{P_ADJUST[p['p_adjust']]} across all segment x feature tests (alpha {p['alpha']})"
        ]
        if engine != "pandas":
            notes.append(f"reduction engine: {engine} (segments filtered on the engine)")
        insufficient = 0
        segment_info: list[tuple[str, bool]] = []
        inner_problems: dict[MetricStatus, list[str]] = {}
        for g, counts in cur_counts.items():
            keys = list(dict.fromkeys([*counts, *ref_counts.get(g, {})]))
            keys.sort(key=lambda k: tuple((v is None, str(v)) for v in k))
            for key in keys:
                where = dict(zip(g, key, strict=True))
                label = segment_label(where)
                n_cur = counts.get(key, 0)
                n_ref = ref_counts.get(g, {}).get(key, 0) if reference is not None else None
                row_counts = {"current_rows": n_cur, "segment": {c: v for c, v in where.items()}}
                if n_ref is not None:
                    row_counts["reference_rows"] = n_ref
                metrics.append(Metric("rows", float(n_cur), group=label, counts=row_counts))
                small = n_cur < p["min_segment_size"] or (
                    "drift" in kinds and (n_ref or 0) < p["min_segment_size"]
                )
                segment_info.append((label, small))
                if small:
                    insufficient += 1
                    side = "current" if n_cur < p["min_segment_size"] else "reference"
                    why = (
                        f"segment {label} has {n_cur if side == 'current' else n_ref} {side} rows, "
                        f"fewer than min_segment_size {p['min_segment_size']}"
                    )
                    for k in kinds:
                        names = [
                            *_SUMMARY[k],
                            *(("segment_flagged_psi", "segment_drifted") if k == "drift" else ()),
                        ]
                        metrics += [
                            Metric.undefined(f"{k}.{n}", why, group=label, counts=row_counts) for n in names
                        ]
                    continue
                for k in kinds:
                    result = self._run_inner(
                        k, spec, where, current, reference, perf_frame, inner_params[k], engine, options
                    )
                    metrics += _relabel(k, result, label)
                    if result.status is not MetricStatus.OK:
                        inner_problems.setdefault(result.status, []).append(f"{label} {k}: {result.reason}")
                    notes += [f"{label} {k}: {n}" for n in result.notes if "reduction engine" not in n][:3]
        if "drift" in kinds:
            metrics = _adjust_drift(metrics, p, segment_info)
        drifted = [m for m in metrics if m.name == "drift.segment_drifted" and m.status is MetricStatus.OK]
        metrics.append(
            Metric("segments", float(len(segment_info)), counts={"labels": [s for s, _ in segment_info]})
        )
        metrics.append(
            Metric(
                "segments_insufficient",
                float(insufficient),
                counts={
                    "labels": [s for s, small in segment_info if small],
                    "min_segment_size": p["min_segment_size"],
                },
            )
        )
        if "drift" in kinds:
            if drifted:
                flagged = [m.group for m in drifted if m.value]
                metrics.append(
                    Metric(
                        "segments_drifted",
                        float(len(flagged)),
                        counts={"labels": flagged, "judged": len(drifted)},
                    )
                )
            else:
                metrics.append(
                    Metric.undefined("segments_drifted", "no segment has enough rows to judge drift")
                )
        status, reason = MetricStatus.OK, None
        # A segment's inner monitor that could not compute makes the whole result say so (never a silent ok).
        for worst in (MetricStatus.INVALID_INPUT, MetricStatus.INSUFFICIENT_DATA):
            if worst in inner_problems:
                status, reason = worst, "; ".join(inner_problems[worst][:5])
                break
        if not segment_info:
            status, reason = MetricStatus.INSUFFICIENT_DATA, "the data has no rows, hence no segment"
        elif insufficient == len(segment_info):
            status, reason = (
                MetricStatus.INSUFFICIENT_DATA,
                (f"every segment has fewer than min_segment_size {p['min_segment_size']} rows"),
            )
        artifacts = []
        if artifacts_dir is not None:
            artifacts = _write_table(Path(artifacts_dir), metrics)
        return MonitorResult(
            kind=self.kind,
            monitor_version=self.version,
            params={**p, "kinds": kinds, "inner_params": inner_params},
            metrics=tuple(metrics),
            status=status,
            reason=reason,
            artifacts=tuple(artifacts),
            fingerprints=tuple(fps),
            seed=p["seed"],
            library_versions=versions,
            notes=tuple(notes),
        )

    # -- helpers ----------------------------------------------------------------------------------------
    @staticmethod
    def _default_kinds(spec: ColumnSpec, reference: Any) -> list[str]:
        kinds = []
        if reference is not None:
            kinds.append("drift")
        if spec.target:
            kinds.append("performance")
        if spec.sensitive:
            kinds.append("fairness")
        if not kinds:
            raise ParameterError(
                "kinds: nothing to compute per segment (no reference data, no target, no sensitive attribute)"
            )
        return kinds

    @staticmethod
    def _inner(kind: str) -> Monitor:
        from monitors.base import get_monitor

        return get_monitor(kind)

    @staticmethod
    def _inner_given(kind: str, p: Mapping[str, Any]) -> dict[str, Any]:
        given = dict(p[kind])
        if kind == "drift":
            given.setdefault("evidently_report", False)  # one HTML per segment would swamp the evidence
        if kind == "fairness":
            given.setdefault("bootstrap", 0)
        return given

    @staticmethod
    def _performance_frame(
        engine: str, data: Any, spec: ColumnSpec, cols: list[str], **options: Any
    ) -> pd.DataFrame:
        from monitors.base import load_frame

        wanted = list(dict.fromkeys(c for c in (spec.target, spec.score, spec.prediction, *cols) if c))
        if engine == "pandas":
            frame = load_frame(data)
            missing = [c for c in wanted if c not in frame.columns]
            if missing:
                raise DataInputError(f"data is missing column(s) {missing}")
            return frame[wanted]
        from monitors.scale import load_columns

        return load_columns(engine, data, wanted, **options)

    def _run_inner(
        self,
        kind: str,
        spec: ColumnSpec,
        where: Mapping[str, Any],
        current: Any,
        reference: Any,
        perf_frame: Any,
        params: Mapping[str, Any],
        engine: str,
        options: Mapping[str, Any],
    ) -> MonitorResult:
        monitor = self._inner(kind)
        if kind == "performance":
            from monitors.engines.backend import segment_mask

            sub = perf_frame[segment_mask(perf_frame, where)]
            return monitor.run(spec, current=sub, params=params)
        kw: dict[str, Any] = {
            "current": current,
            "params": params,
            "engine": engine,
            "where": dict(where),
            **options,
        }
        if kind == "drift":
            kw["reference"] = reference
        return monitor.run(spec, **kw)


def _fingerprint(engine: str, data: Any, role: str, options: Mapping[str, Any]) -> Any:
    from monitors.engines.backend import open_backend

    backend = open_backend(engine, data, **{k: v for k, v in options.items() if k != "where"})
    try:
        return backend.fingerprint(role)
    finally:
        backend.close()


def _relabel(kind: str, result: MonitorResult, label: str) -> list[Metric]:
    from dataclasses import replace

    if result.status is not MetricStatus.OK and not result.metrics:
        why = f"segment {label}: the {kind} result is {result.status.value}: {result.reason}"
        return [
            Metric.undefined(f"{kind}.{n}", why, status=result.status, group=label) for n in _SUMMARY[kind]
        ]
    out = []
    for m in result.metrics:
        group = label if m.group is None else f"{label}|{m.group}"
        out.append(replace(m, name=f"{kind}.{m.name}", group=group))
    return out


def _adjust_drift(
    metrics: list[Metric], p: Mapping[str, Any], segments: list[tuple[str, bool]]
) -> list[Metric]:
    """Add the adjusted p-values over the family of every defined drift test, and each segment's verdict."""
    tests = [
        (i, m)
        for i, m in enumerate(metrics)
        if m.name in (f"drift.{t}" for t in _TESTS) and m.status is MetricStatus.OK and m.value is not None
    ]
    method = p["p_adjust"]
    adjusted = adjust_pvalues([m.value for _, m in tests], method) if tests else np.array([])
    out = list(metrics)
    significant: dict[tuple[str, str], float] = {}
    for (_, m), adj in zip(tests, adjusted, strict=True):
        out.append(
            Metric(
                f"{m.name}_adjusted",
                float(adj),
                feature=m.feature,
                group=m.group,
                counts={
                    "method": P_ADJUST[method],
                    "family_size": len(tests),
                    "raw": m.value,
                    "alpha": p["alpha"],
                    "rejected": bool(adj < p["alpha"]),
                },
            )
        )
        if adj < p["alpha"]:
            significant[(str(m.group), str(m.feature))] = float(adj)
    psi = {(str(m.group), str(m.feature)): m for m in metrics if m.name == "drift.psi"}
    for label, small in segments:
        if small:
            continue
        flagged = {
            f: psi[(label, f)].value
            for (g, f) in significant
            if g == label and (label, f) in psi and psi[(label, f)].status is MetricStatus.OK
        }
        value = max(flagged.values(), default=0.0)
        counts = {"features": sorted(flagged), "method": P_ADJUST[method], "alpha": p["alpha"]}
        out.append(Metric("drift.segment_flagged_psi", float(value), group=label, counts=counts))
        out.append(
            Metric(
                "drift.segment_drifted",
                1.0 if value >= p["psi_threshold"] else 0.0,
                group=label,
                counts={**counts, "psi_threshold": p["psi_threshold"]},
            )
        )
    return out


def _write_table(folder: Path, metrics: list[Metric]) -> list:
    import pandas as pd

    from monitors.base import write_artifact

    rows = [
        {
            "segment": m.group,
            "metric": m.name,
            "feature": m.feature,
            "value": m.value,
            "status": m.status.value,
            "reason": m.reason,
        }
        for m in metrics
    ]
    text = pd.DataFrame(rows).to_csv(index=False, lineterminator="\n").encode()
    art = write_artifact(folder, "segments.csv", text, "metrics per segment")
    return [art] if art is not None else []


__all__ = ["INNER_KINDS", "P_ADJUST", "SegmentMonitor", "adjust_pvalues", "segment_counts", "segment_label"]
