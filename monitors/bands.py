"""Score-band stability: PSI over the model's rating grades, characteristic stability per feature, and the
grade migration matrix between a reference and a current period.

Score bands come from the model card's ``score_bands`` field, listed from the best grade to the worst::

    score_bands:
      - {grade: A, lower: 0.0, upper: 0.05}     # a score s is in a band when lower <= s < upper
      - {grade: B, lower: 0.05, upper: 0.15}
      - {grade: C, lower: 0.15, upper: 1.0}     # the last band also holds s == upper

Bands must be contiguous (each ``lower`` equals the previous ``upper``), with ``lower < upper`` and
distinct grades (``parse_bands`` says which rule a card breaks). A score outside every band, or missing,
counts in ``out_of_band_share`` and is not graded.

Definitions
-----------
``score_band_psi``
    ``Σ (q_g − p_g) · ln(q_g / p_g)`` over grades, ``p``/``q`` the reference/current share of graded rows
    in grade ``g``, each share floored at ``epsilon`` (1e-4) as the drift monitor does.
``grade_share_reference``, ``grade_share_current`` (group = grade)
    The shares above, with the counts.
``csi`` (feature = column), ``max_csi``
    Characteristic stability index ``Σ (cur% − ref%) · ln(cur% / ref%)`` over the feature's bins: the
    bins of ``feature_bins`` (the scorecard's own attribute edges, ``{feature: [e1, e2, ...]}``, bins
    ``(-inf, e1], (e1, e2], ..., (ek, inf)``) when given, else ``n_bins`` reference quantile bins (the
    drift engine's rule); a categorical feature's bins are its reference levels plus ``__other__``.
    Missing values are a bin of their own. Shares floored at ``epsilon``.
``migration_stay_share``, ``migration_downgrade_share``, ``migration_upgrade_share``
    With ``id_column`` in both periods: over the ids graded in both, the share keeping its grade, moving to
    a worse grade (later in the list), or to a better one. The full matrix (reference grade × current
    grade counts) is in ``migration_stay_share.counts["matrix"]``, with the ids seen in one period only.
    Without an id column the migration is distribution-level only: these three metrics are undefined
    (the grade shares above are the distribution-level comparison).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from monitors.base import (
    ColumnKind,
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
    load_frame,
    numeric_values,
    write_artifact,
)

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class ScoreBand:
    grade: str
    lower: float
    upper: float


def parse_bands(raw: Any, where: str = "score_bands") -> tuple[ScoreBand, ...]:
    """The bands of a model card's ``score_bands`` field, checked (raises ``ParameterError``)."""
    if not isinstance(raw, (list, tuple)) or len(raw) < 2:
        raise ParameterError(
            f"{where} must be a list of at least 2 bands {{grade, lower, upper}}. Got {raw!r} instead."
        )
    bands: list[ScoreBand] = []
    for i, b in enumerate(raw):
        if not isinstance(b, Mapping) or set(b) != {"grade", "lower", "upper"}:
            raise ParameterError(
                f"{where}[{i}] must be a mapping with keys grade, lower, upper. Got {b!r} instead."
            )
        lo, hi = b["lower"], b["upper"]
        if not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in (lo, hi)
        ):
            raise ParameterError(f"{where}[{i}] lower and upper must be finite numbers. Got {b!r} instead.")
        if not lo < hi:
            raise ParameterError(f"{where}[{i}] must have lower < upper. Got {lo!r} >= {hi!r} instead.")
        if bands and float(lo) != bands[-1].upper:
            raise ParameterError(
                f"{where}[{i}] must start where {where}[{i - 1}] ends ({bands[-1].upper!r}): bands are "
                f"contiguous. Got lower {lo!r} instead."
            )
        bands.append(ScoreBand(str(b["grade"]), float(lo), float(hi)))
    grades = [b.grade for b in bands]
    if len(set(grades)) != len(grades):
        raise ParameterError(f"{where} grades must be distinct. Got {grades} instead.")
    return tuple(bands)


def assign_grades(scores: np.ndarray, bands: Sequence[ScoreBand]) -> np.ndarray:
    """Band index of each score (−1: missing or outside every band)."""
    s = np.asarray(scores, dtype=float)
    edges = np.array([b.lower for b in bands] + [bands[-1].upper])
    idx = np.searchsorted(edges, s, side="right") - 1
    idx[s == edges[-1]] = len(bands) - 1  # the last band is closed on the right
    bad = ~np.isfinite(s) | (s < edges[0]) | (s > edges[-1])
    idx[bad] = -1
    return idx.astype(np.int64)


def stability_index(reference: np.ndarray, current: np.ndarray, epsilon: float = 1e-4) -> float:
    """``Σ (q − p) · ln(q / p)`` of two count vectors on the same bins, shares floored at ``epsilon``."""
    r = np.asarray(reference, dtype=float)
    c = np.asarray(current, dtype=float)
    p = np.maximum(r / max(r.sum(), 1.0), epsilon)
    q = np.maximum(c / max(c.sum(), 1.0), epsilon)
    return float(np.sum((q - p) * np.log(q / p)))


def grade_counts(grades: np.ndarray, n: int) -> np.ndarray:
    g = np.asarray(grades)
    return np.bincount(g[g >= 0], minlength=n).astype(np.int64)


def migration_matrix(
    ref_ids: np.ndarray, ref_grades: np.ndarray, cur_ids: np.ndarray, cur_grades: np.ndarray, n: int
) -> tuple[np.ndarray, dict[str, int]]:
    """Counts ``M[i, j]`` of ids graded ``i`` in the reference and ``j`` in the current period (ids graded in
    both), and how many ids were in one period only or ungraded. Duplicate ids are an input error."""
    import pandas as pd

    for name, ids in (("reference", ref_ids), ("current", cur_ids)):
        dup = pd.Series(ids).duplicated()
        if dup.any():
            raise DataInputError(
                f"{name} data has {int(dup.sum())} duplicate id(s), e.g. {pd.Series(ids)[dup].iloc[0]!r}: "
                "a migration matrix needs one row per id"
            )
    ref = pd.DataFrame({"id": ref_ids, "r": ref_grades})
    cur = pd.DataFrame({"id": cur_ids, "c": cur_grades})
    both = ref.merge(cur, on="id", how="inner")
    graded = both[(both["r"] >= 0) & (both["c"] >= 0)]
    matrix = np.zeros((n, n), dtype=np.int64)
    np.add.at(matrix, (graded["r"].to_numpy(), graded["c"].to_numpy()), 1)
    info = {
        "matched_ids": len(both),
        "graded_in_both": len(graded),
        "reference_only_ids": len(ref) - len(both),
        "current_only_ids": len(cur) - len(both),
        "ungraded_matched_ids": len(both) - len(graded),
    }
    return matrix, info


def _bins_for(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts on ``(-inf, e1], (e1, e2], ..., (ek, inf)`` plus a last bin for missing/non-finite values."""
    finite = np.isfinite(values)
    idx = np.searchsorted(edges, values[finite], side="left")
    counts = np.bincount(idx, minlength=len(edges) + 1)
    return np.append(counts, int((~finite).sum())).astype(np.int64)


def _valid_bins(v: Any) -> bool:
    if not isinstance(v, Mapping):
        return False
    for edges in v.values():
        if not isinstance(edges, (list, tuple)) or not edges:
            return False
        e = [float(x) for x in edges if isinstance(x, (int, float)) and not isinstance(x, bool)]
        if len(e) != len(edges) or any(b <= a for a, b in itertools.pairwise(e)):
            return False
    return True


class StabilityMonitor(Monitor):
    """Score-band PSI, CSI per feature and grade migration (see the module docstring)."""

    kind = "stability"
    version = "1"
    metrics = (
        "score_band_psi",
        "grade_share_reference",
        "grade_share_current",
        "out_of_band_share",
        "csi",
        "max_csi",
        "migration_stay_share",
        "migration_downgrade_share",
        "migration_upgrade_share",
    )
    needs = frozenset({"reference"})
    params = (
        ParamSpec(
            "score_bands", None, "a list of bands {grade, lower, upper} (the model card's)", lambda v: True
        ),
        ParamSpec(
            "id_column", None, "None or a column name", lambda v: v is None or (isinstance(v, str) and v)
        ),
        ParamSpec("feature_bins", {}, "a mapping feature -> increasing bin edges", _valid_bins),
        ParamSpec(
            "n_bins",
            10,
            "an integer in [2, 1000]",
            lambda v: isinstance(v, int) and not isinstance(v, bool) and 2 <= v <= 1000,
        ),
        ParamSpec(
            "epsilon",
            1e-4,
            "a float in (0, 0.01]",
            lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v <= 0.01,
        ),
        ParamSpec(
            "seed",
            0,
            "an integer in [0, 2**32 - 1]",
            lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**32,
        ),
        ParamSpec(
            "min_rows",
            30,
            "an integer >= 1",
            lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1,
        ),
    )

    def run(
        self,
        spec: ColumnSpec,
        *,
        current: pd.DataFrame | str | Path,
        reference: pd.DataFrame | str | Path | None = None,
        params: Mapping[str, Any] | None = None,
        artifacts_dir: str | Path | None = None,
    ) -> MonitorResult:
        p = self.validate_params(params)
        if reference is None:
            raise ParameterError("reference must be the reference period's data. Got None instead.")
        bands = parse_bands(p["score_bands"]) if p["score_bands"] is not None else None
        unknown = sorted(set(p["feature_bins"]) - set(spec.feature_names))
        if unknown:
            raise ParameterError(f"feature_bins keys must be features of the spec. Got {unknown} instead.")
        out_p = {**p, "score_bands": None if bands is None else [b.__dict__ for b in bands]}
        try:
            ref, cur = load_frame(reference), load_frame(current)
        except DataInputError as exc:
            return invalid_result(self.kind, self.version, out_p, str(exc))
        from monitors.base import fingerprint

        fps = (fingerprint(ref, "reference"), fingerprint(cur, "current"))
        for role, frame in (("reference", ref), ("current", cur)):
            if len(frame) < p["min_rows"]:
                return MonitorResult(
                    kind=self.kind,
                    monitor_version=self.version,
                    params=out_p,
                    metrics=(),
                    status=MetricStatus.INSUFFICIENT_DATA,
                    reason=f"{role} data has {len(frame)} rows, fewer than min_rows {p['min_rows']}",
                    fingerprints=fps,
                    seed=p["seed"],
                    library_versions=library_versions(),
                )
        metrics: list[Metric] = []
        tables: list[dict[str, Any]] = []
        try:
            if bands is not None:
                metrics += self._bands(spec, ref, cur, bands, p, tables)
            else:
                reason = "the model card declares no score_bands"
                metrics += [
                    Metric.undefined(n, reason)
                    for n in (
                        "score_band_psi",
                        "migration_stay_share",
                        "migration_downgrade_share",
                        "migration_upgrade_share",
                    )
                ]
            metrics += self._csi(spec, ref, cur, p, tables)
        except DataInputError as exc:
            return invalid_result(self.kind, self.version, out_p, str(exc))
        artifacts = []
        if artifacts_dir is not None and tables:
            import pandas as pd

            text = pd.DataFrame(tables).to_csv(index=False, lineterminator="\n").encode()
            art = write_artifact(
                artifacts_dir, "stability_bins.csv", text, "reference/current counts per grade and bin"
            )
            artifacts = [art] if art is not None else []
        status, reason = MetricStatus.OK, None
        undefined = [
            m for m in metrics if m.name in ("score_band_psi", "max_csi") and m.status is not MetricStatus.OK
        ]
        if bands is None:
            undefined = [m for m in undefined if m.name != "score_band_psi"]
        if undefined:
            status, reason = (
                MetricStatus.INSUFFICIENT_DATA,
                "; ".join(f"{m.name}: {m.reason}" for m in undefined),
            )
        notes = []
        if bands is not None and p["id_column"] is None:
            notes.append("no id_column: grade migration is distribution-level only (grade shares)")
        return MonitorResult(
            kind=self.kind,
            monitor_version=self.version,
            params=out_p,
            metrics=tuple(metrics),
            status=status,
            reason=reason,
            artifacts=tuple(artifacts),
            fingerprints=fps,
            seed=p["seed"],
            library_versions=library_versions(),
            notes=tuple(notes),
        )

    @staticmethod
    def _bands(spec, ref, cur, bands, p, tables) -> list[Metric]:
        col = spec.score or spec.prediction
        if col is None or col not in ref.columns or col not in cur.columns:
            raise DataInputError(f"score-band PSI needs the score column {col!r} in both periods")
        rg = assign_grades(numeric_values(ref[col], col), bands)
        cg = assign_grades(numeric_values(cur[col], col), bands)
        n = len(bands)
        rc, cc = grade_counts(rg, n), grade_counts(cg, n)
        out: list[Metric] = []
        if rc.sum() == 0 or cc.sum() == 0:
            side = "reference" if rc.sum() == 0 else "current"
            out.append(Metric.undefined("score_band_psi", f"no {side} score falls in any score band"))
        else:
            out.append(
                Metric(
                    "score_band_psi",
                    stability_index(rc, cc, p["epsilon"]),
                    counts={
                        "grades": [b.grade for b in bands],
                        "reference": rc.tolist(),
                        "current": cc.tolist(),
                    },
                )
            )
        for i, b in enumerate(bands):
            for name, counts in (("grade_share_reference", rc), ("grade_share_current", cc)):
                if counts.sum():
                    out.append(
                        Metric(name, counts[i] / counts.sum(), group=b.grade, counts={"rows": int(counts[i])})
                    )
            tables.append(
                {"what": "grade", "name": col, "bin": b.grade, "reference": int(rc[i]), "current": int(cc[i])}
            )
        out.append(
            Metric(
                "out_of_band_share",
                float(np.mean(cg < 0)),
                counts={"current_rows": len(cg), "ungraded": int(np.sum(cg < 0))},
            )
        )
        id_col = p["id_column"]
        names = ("migration_stay_share", "migration_downgrade_share", "migration_upgrade_share")
        if id_col is None:
            out += [
                Metric.undefined(nm, "no id_column: migration is distribution-level only") for nm in names
            ]
            return out
        for role, frame in (("reference", ref), ("current", cur)):
            if id_col not in frame.columns:
                raise DataInputError(f"{role} data has no id column {id_col!r}")
        matrix, info = migration_matrix(ref[id_col].to_numpy(), rg, cur[id_col].to_numpy(), cg, n)
        total = int(matrix.sum())
        if total == 0:
            return out + [
                Metric.undefined(nm, "no id is graded in both periods", counts=info) for nm in names
            ]
        stay = float(np.trace(matrix)) / total
        down = float(np.triu(matrix, 1).sum()) / total  # later in the list = worse grade
        up = float(np.tril(matrix, -1).sum()) / total
        grades = [b.grade for b in bands]
        out.append(
            Metric("migration_stay_share", stay, counts={**info, "grades": grades, "matrix": matrix.tolist()})
        )
        out.append(Metric("migration_downgrade_share", down, counts=info))
        out.append(Metric("migration_upgrade_share", up, counts=info))
        return out

    @staticmethod
    def _csi(spec, ref, cur, p, tables) -> list[Metric]:
        from monitors.engines.pandas import category_key, quantile_edges

        out: list[Metric] = []
        for feat in spec.features:
            name = feat.name
            if name not in ref.columns or name not in cur.columns:
                raise DataInputError(
                    f"feature {name!r} is missing from the {'reference' if name not in ref.columns else 'current'} data"
                )
            if feat.kind is ColumnKind.CATEGORICAL:
                rk = ref[name].map(
                    lambda v: (
                        None if v is None or (isinstance(v, float) and math.isnan(v)) else category_key(v)
                    )
                )
                ck = cur[name].map(
                    lambda v: (
                        None if v is None or (isinstance(v, float) and math.isnan(v)) else category_key(v)
                    )
                )
                levels = sorted(set(rk.dropna()))
                labels = [*levels, "__other__", "__missing__"]
                idx = {lv: i for i, lv in enumerate(levels)}

                def counts_of(keys, idx=idx, levels=levels) -> np.ndarray:
                    codes = keys.map(lambda k: len(levels) + 1 if k is None else idx.get(k, len(levels)))
                    return np.bincount(codes.to_numpy(dtype=np.int64), minlength=len(levels) + 2)

                rc, cc, rule = counts_of(rk), counts_of(ck), "reference levels"
            else:
                rv, cv = numeric_values(ref[name], name), numeric_values(cur[name], name)
                if name in p["feature_bins"]:
                    edges, rule = np.asarray(p["feature_bins"][name], dtype=float), "feature_bins"
                else:
                    finite = np.sort(rv[np.isfinite(rv)])
                    if finite.size == 0:
                        out.append(
                            Metric.undefined("csi", f"reference {name} has no finite values", feature=name)
                        )
                        continue
                    edges, rule = quantile_edges(finite, p["n_bins"]), f"{p['n_bins']} reference quantiles"
                rc, cc = _bins_for(rv, edges), _bins_for(cv, edges)
                labels = [
                    f"<= {edges[0]!r}",
                    *[f"({a!r}, {b!r}]" for a, b in itertools.pairwise(edges)],
                    f"> {edges[-1]!r}",
                    "missing",
                ]
            value = stability_index(rc, cc, p["epsilon"])
            out.append(Metric("csi", value, feature=name, counts={"bins": len(rc), "rule": rule}))
            for label, a, b in zip(labels, rc, cc, strict=True):
                tables.append(
                    {
                        "what": "feature",
                        "name": name,
                        "bin": str(label),
                        "reference": int(a),
                        "current": int(b),
                    }
                )
        defined = [m for m in out if m.status is MetricStatus.OK]
        if defined:
            best = max(defined, key=lambda m: m.value)  # type: ignore[arg-type, return-value]
            out.append(Metric("max_csi", best.value, counts={"feature": best.feature}))
        else:
            out.append(Metric.undefined("max_csi", "no feature has a defined CSI"))
        return out


__all__ = [
    "ScoreBand",
    "StabilityMonitor",
    "assign_grades",
    "grade_counts",
    "migration_matrix",
    "parse_bands",
    "stability_index",
]
