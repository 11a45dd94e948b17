"""Data quality of the data a model is judged or run on: completeness, plausibility against the reference,
constant columns.

Drift compares distributions and is blind to magnitude: a PSI puts 1e300 in the same top bin as a value just
above the reference's 90th percentile. A validator also needs to know that the hold-out itself is usable
(NFRA 2025 item 19, PBoC 2024 (五), CBIRC 2022 (十六): source-level data-quality control) before any other
number computed on it means anything.

Definitions (per feature, ``feature=<column>``)
-----------------------------------------------
``missing_share``
    Share of the current rows that are missing (NaN/None/empty cell). ±inf is not missing: it is a value,
    and an implausible one.
``constant``
    1.0 when the current column has at most one distinct non-missing value, else 0.0.
``out_of_range_share`` (numeric)
    Among non-missing current values, the share outside the reference's ``[min, max]`` (±inf included).
``implausible_share`` (numeric)
    Among non-missing current values, the share outside the reference range widened on each side by
    ``plausibility_factor`` (default 10) times its span ``max − min`` (when the span is 0: ``max(|max|, 1)``),
    ±inf included. With income between 0.5 and 9.8 in training, values beyond −92.5 … 102.8 are not a shift
    of the population but broken data (a unit error, a sentinel such as 9.99e+300, an overflow).

Both range metrics need reference statistics: ``reference=`` data, or ``profile=`` a profile saved by
``DataQualityMonitor.profile`` (the registry keeps one with each validation, so monitoring needs no training
data). Without either they are ``insufficient_data`` with that reason.

Dataset level: ``rows``, ``max_missing_share``, ``max_out_of_range_share``, ``max_implausible_share`` (worst
feature, defined values only) and ``constant_features`` (how many features are constant).

Bad input never raises out of ``run``: unreadable data or a missing feature column is ``invalid_input``;
strings in a numeric feature are ``invalid_input``; an empty data set, or a feature with no value at all, is
``insufficient_data`` (the per-feature numbers that stay defined are still reported).
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

if TYPE_CHECKING:  # pandas is imported where rows are read: listing monitors stays light
    import pandas as pd

from monitors.base import (
    ColumnKind,
    ColumnSpec,
    DataFingerprint,
    DataInputError,
    Metric,
    MetricStatus,
    Monitor,
    MonitorResult,
    ParameterError,
    ParamSpec,
    ReferenceProfile,
    check_columns,
    fingerprint,
    invalid_result,
    is_int,
    library_versions,
    load_frame,
    numeric_values,
    write_artifact,
)


def _factor(v: Any) -> bool:
    return (
        isinstance(v, (int, float, np.integer, np.floating))
        and not isinstance(v, bool)
        and math.isfinite(float(v))
        and 0.0 < float(v) <= 1e6
    )


def _seed(v: Any) -> bool:
    return is_int(v) and 0 <= v <= 2**32 - 1


def _bounds(lo: float, hi: float, factor: float) -> tuple[float, float]:
    span = hi - lo
    if span <= 0:
        span = max(abs(hi), 1.0)
    return lo - factor * span, hi + factor * span


def _fmt(v: float) -> str:
    return f"{v:.6g}"


class DataQualityMonitor(Monitor):
    """Completeness, plausibility and constant columns of the current data (see the module docstring)."""

    kind: ClassVar[str] = "data_quality"
    version: ClassVar[str] = "1"
    metrics: ClassVar[tuple[str, ...]] = (
        "missing_share",
        "constant",
        "out_of_range_share",
        "implausible_share",
        "rows",
        "max_missing_share",
        "max_out_of_range_share",
        "max_implausible_share",
        "constant_features",
    )
    # Reference data or its profile make the range metrics defined; without them the rest still runs.
    needs: ClassVar[frozenset[str]] = frozenset({"reference", "profile"})
    params = (
        ParamSpec("plausibility_factor", 10.0, "a float in (0, 1000000]", _factor),
        ParamSpec("seed", 0, "an integer in [0, 2**32 - 1]", _seed),
    )

    # -- reference statistics -------------------------------------------------------------------------
    @staticmethod
    def _reference_stats(spec: ColumnSpec, frame: pd.DataFrame) -> dict[str, dict[str, Any]]:
        stats: dict[str, dict[str, Any]] = {}
        for feat in spec.features:
            if feat.kind is ColumnKind.CATEGORICAL:
                continue
            try:
                values = numeric_values(frame[feat.name], feat.name)
            except DataInputError as exc:
                stats[feat.name] = {"reason": f"reference: {exc}"}
                continue
            finite = values[np.isfinite(values)]
            if finite.size == 0:
                stats[feat.name] = {"reason": f"reference column {feat.name} has no finite values"}
                continue
            stats[feat.name] = {
                "min": float(finite.min()),
                "max": float(finite.max()),
                "finite": int(finite.size),
            }
        return stats

    def profile(
        self, spec: ColumnSpec, reference: pd.DataFrame | str | Path, params: Mapping[str, Any] | None = None
    ) -> ReferenceProfile:
        """The reference's per-feature ranges, for monitoring without the raw data. Unreadable data or
        missing feature columns raise ``DataInputError``."""
        self.validate_params(params)
        frame = load_frame(reference)
        check_columns(frame, spec.feature_names, "reference")
        if len(frame) == 0:
            raise DataInputError("reference data has 0 rows")
        return ReferenceProfile(
            kind=self.kind,
            monitor_version=self.version,
            spec=spec,
            payload={"features": self._reference_stats(spec, frame)},
            fingerprint=fingerprint(frame, "reference"),
        )

    # -- run ------------------------------------------------------------------------------------------
    def run(
        self,
        spec: ColumnSpec,
        *,
        current: pd.DataFrame | str | Path | None = None,
        reference: pd.DataFrame | str | Path | None = None,
        profile: ReferenceProfile | None = None,
        params: Mapping[str, Any] | None = None,
        artifacts_dir: str | Path | None = None,
    ) -> MonitorResult:
        p = self.validate_params(params)
        if current is None:
            raise ParameterError("current must be a DataFrame or a Parquet/CSV path. Got None instead.")
        if reference is not None and profile is not None:
            raise ParameterError(
                "reference must be given either as data (reference=) or as a profile (profile=). Got both instead."
            )
        if profile is not None and profile.kind != self.kind:
            raise ParameterError(
                f"profile must be a {self.kind} profile. Got a {profile.kind} profile instead."
            )
        fps: list[DataFingerprint] = []
        ref_stats: dict[str, dict[str, Any]] | None = None
        ref_source = None
        try:
            cur = load_frame(current)
            fps.append(fingerprint(cur, "current"))
            check_columns(cur, spec.feature_names, "current")
            if reference is not None:
                ref = load_frame(reference)
                fps.append(fingerprint(ref, "reference"))
                check_columns(ref, spec.feature_names, "reference")
                ref_stats = self._reference_stats(spec, ref)
                ref_source = "reference data"
            elif profile is not None:
                fps.append(profile.fingerprint)
                ref_stats = dict(profile.payload.get("features", {}))
                ref_source = f"reference profile (digest {profile.fingerprint.digest[:12]})"
        except DataInputError as exc:
            return invalid_result(
                self.kind, self.version, p, str(exc), fingerprints=tuple(fps), seed=p["seed"]
            )
        if len(cur) == 0:
            return MonitorResult(
                kind=self.kind,
                monitor_version=self.version,
                params=p,
                metrics=(),
                status=MetricStatus.INSUFFICIENT_DATA,
                reason="current data has 0 rows",
                fingerprints=tuple(fps),
                seed=p["seed"],
                library_versions=library_versions(),
            )

        metrics: list[Metric] = [Metric("rows", float(len(cur)))]
        rows: list[dict[str, Any]] = []
        notes: list[str] = []
        invalid: list[str] = []
        empty: list[str] = []
        for feat in spec.features:
            series = cur[feat.name]
            missing = series.isna().to_numpy()
            n_missing = int(missing.sum())
            present = len(series) - n_missing
            counts = {"rows": len(series), "missing": n_missing}
            metrics.append(Metric("missing_share", n_missing / len(series), feature=feat.name, counts=counts))
            distinct = int(series.dropna().nunique())
            metrics.append(
                Metric("constant", float(distinct <= 1), feature=feat.name, counts={"distinct": distinct})
            )
            row: dict[str, Any] = {
                "feature": feat.name,
                "kind": feat.kind.value,
                "rows": len(series),
                "missing": n_missing,
                "missing_share": n_missing / len(series),
                "distinct": distinct,
            }
            if present == 0:
                empty.append(feat.name)
            if feat.kind is not ColumnKind.CATEGORICAL:
                self._range_metrics(feat.name, series, ref_stats, ref_source, p, metrics, row, notes, invalid)
            rows.append(row)

        metrics.extend(_dataset_metrics(metrics))
        status, reason = MetricStatus.OK, None
        if invalid:
            status, reason = MetricStatus.INVALID_INPUT, f"invalid values in feature(s) {invalid}"
        elif empty:
            status, reason = (
                MetricStatus.INSUFFICIENT_DATA,
                f"feature(s) {empty} have no values in the current data",
            )
        if ref_stats is None:
            notes.append(
                "no reference data or profile: out_of_range_share and implausible_share are not computed"
            )
        artifacts = []
        if artifacts_dir is not None:
            buf = io.StringIO()
            import pandas as pd

            pd.DataFrame(rows).to_csv(buf, index=False, lineterminator="\n")
            a = write_artifact(
                artifacts_dir,
                "data_quality.csv",
                buf.getvalue().encode("utf-8"),
                "per feature: missing share, distinct values, reference range, out-of-range and implausible shares",
            )
            if a is not None:
                artifacts.append(a)
        return MonitorResult(
            kind=self.kind,
            monitor_version=self.version,
            params=p,
            metrics=tuple(metrics),
            status=status,
            reason=reason,
            artifacts=tuple(artifacts),
            fingerprints=tuple(fps),
            seed=p["seed"],
            library_versions=library_versions(),
            notes=tuple(notes),
        )

    @staticmethod
    def _range_metrics(
        name: str,
        series: pd.Series,
        ref_stats: Mapping[str, Any] | None,
        ref_source: str | None,
        p: Mapping[str, Any],
        metrics: list[Metric],
        row: dict[str, Any],
        notes: list[str],
        invalid: list[str],
    ) -> None:
        try:
            values = numeric_values(series, name)
        except DataInputError as exc:
            invalid.append(name)
            for metric in ("out_of_range_share", "implausible_share"):
                metrics.append(
                    Metric.undefined(metric, str(exc), status=MetricStatus.INVALID_INPUT, feature=name)
                )
            return
        values = values[~np.isnan(values)]
        stats = (ref_stats or {}).get(name)
        if ref_stats is None or stats is None or "min" not in stats:
            why = (
                "needs reference data or a data_quality profile"
                if ref_stats is None
                else (stats or {}).get("reason", f"the reference statistics have no feature {name}")
            )
            for metric in ("out_of_range_share", "implausible_share"):
                metrics.append(Metric.undefined(metric, why, feature=name))
            return
        if values.size == 0:
            for metric in ("out_of_range_share", "implausible_share"):
                metrics.append(Metric.undefined(metric, f"column {name} has no values", feature=name))
            return
        lo, hi = float(stats["min"]), float(stats["max"])
        plo, phi = _bounds(lo, hi, float(p["plausibility_factor"]))
        with np.errstate(invalid="ignore"):
            outside = (values < lo) | (values > hi)
            implausible = (values < plo) | (values > phi)
        n_out, n_bad = int(outside.sum()), int(implausible.sum())
        counts = {"values": int(values.size), "reference_min": lo, "reference_max": hi}
        metrics.append(
            Metric(
                "out_of_range_share", n_out / values.size, feature=name, counts={**counts, "outside": n_out}
            )
        )
        metrics.append(
            Metric(
                "implausible_share",
                n_bad / values.size,
                feature=name,
                counts={**counts, "implausible": n_bad, "plausible_low": plo, "plausible_high": phi},
            )
        )
        row.update(
            reference_min=lo,
            reference_max=hi,
            out_of_range=n_out,
            out_of_range_share=n_out / values.size,
            implausible=n_bad,
            implausible_share=n_bad / values.size,
        )
        if n_bad:
            shown = ", ".join(_fmt(v) for v in np.unique(values[implausible])[-3:])
            notes.append(
                f"{name}: {n_bad} implausible value(s) (e.g. {shown}) outside {_fmt(plo)} … {_fmt(phi)}, "
                f"the {ref_source} range {_fmt(lo)} … {_fmt(hi)} widened {_fmt(float(p['plausibility_factor']))}×"
            )


def _dataset_metrics(metrics: list[Metric]) -> list[Metric]:
    out = []
    for name, source in (
        ("max_missing_share", "missing_share"),
        ("max_out_of_range_share", "out_of_range_share"),
        ("max_implausible_share", "implausible_share"),
    ):
        defined = [m for m in metrics if m.name == source and m.status is MetricStatus.OK]
        if defined:
            worst = max(defined, key=lambda m: m.value)
            out.append(Metric(name, worst.value, counts={"feature": worst.feature, "features": len(defined)}))
        else:
            out.append(Metric.undefined(name, f"no feature has a defined {source}"))
    constant = [m.feature for m in metrics if m.name == "constant" and m.value == 1.0]
    out.append(Metric("constant_features", float(len(constant)), counts={"features": constant[:20]}))
    return out


__all__ = ["DataQualityMonitor"]
