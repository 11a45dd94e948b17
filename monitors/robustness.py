"""Robustness of a scoring model under perturbation, at boundaries and in declared stress scenarios.

Each test is one batch prediction on a perturbed copy of a seeded row sample, reduced to a few numbers:
flip rate at the decision threshold and mean |score change| for Gaussian noise (scaled by each feature's
standard deviation), flip rate for categorical swaps, the share of rows that move the wrong way when a
monotone feature increases, boundary cases that crash or leave [0, 1], and the change in approval rate and
mean score under stress scenarios declared as data. A model that cannot score the unperturbed sample makes
the whole run ``invalid_input``; a model that crashes on a perturbed copy is a robustness finding.
Noise scales and boundary values come from ``reference`` (the training data) when it is given, else from
the current data.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pandas is imported where it runs: declarations must load without it
    import pandas as pd

from monitors.base import (
    Artifact,
    ColumnKind,
    ColumnSpec,
    DataInputError,
    Metric,
    MetricStatus,
    ModelError,
    Monitor,
    MonitorResult,
    ParameterError,
    ParamSpec,
    check_columns,
    check_model,
    fingerprint,
    invalid_result,
    library_versions,
    load_frame,
    numeric_values,
    predict_scores,
    write_artifact,
)
from monitors.base import (
    is_int as _is_int,
)

BOUNDARY_CASES = ("min", "max", "extreme", "missing")
SHOCK_OPS = ("mul", "add", "set")
UNSEEN_CATEGORY = "__unseen__"


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and np.isfinite(v)


def _valid_levels(v: Any) -> bool:
    return isinstance(v, Sequence) and not isinstance(v, str) and all(_is_num(x) and x > 0 for x in v)


def _valid_scenarios(v: Any) -> bool:
    if not isinstance(v, Sequence) or isinstance(v, str):
        return False
    names = []
    for sc in v:
        if not isinstance(sc, Mapping) or not isinstance(sc.get("name"), str) or not sc["name"]:
            return False
        if set(sc) - {"name", "name_zh", "shocks"}:
            return False
        shocks = sc.get("shocks")
        if not isinstance(shocks, Sequence) or isinstance(shocks, str) or not shocks:
            return False
        for sh in shocks:
            if not isinstance(sh, Mapping) or set(sh) != {"feature", "op", "value"}:
                return False
            if not isinstance(sh["feature"], str) or sh["op"] not in SHOCK_OPS or not _is_num(sh["value"]):
                return False
        names.append(sc["name"])
    return len(names) == len(set(names))


class RobustnessMonitor(Monitor):
    kind = "robustness"
    version = "1"
    metrics = (
        "flip_rate",
        "mean_abs_score_change",
        "max_flip_rate",
        "max_mean_abs_score_change",
        "monotonicity_violation_rate",
        "max_monotonicity_violation_rate",
        "boundary_failures",
        "categorical_swap_flip_rate",
        "stress_approval_rate_change",
        "stress_mean_score_change",
        "max_abs_stress_approval_rate_change",
    )
    needs = frozenset({"model", "reference"})
    params = (
        ParamSpec(
            "noise_levels",
            [0.01, 0.05, 0.1],
            "a list of positive multiples of each feature's std",
            _valid_levels,
        ),
        ParamSpec("threshold", 0.5, "a float in [0, 1]", lambda v: _is_num(v) and 0.0 <= v <= 1.0),
        ParamSpec(
            "approve_when",
            "score_below",
            'one of "score_below", "score_above" (score_below for PD models)',
            lambda v: v in ("score_below", "score_above"),
        ),
        ParamSpec("seed", 0, "an integer >= 0", lambda v: _is_int(v) and v >= 0),
        ParamSpec(
            "sample_size",
            5000,
            "an integer >= 1 (rows perturbed, seeded sample)",
            lambda v: _is_int(v) and v >= 1,
        ),
        ParamSpec(
            "monotone_step", 0.1, "a positive multiple of the feature's std", lambda v: _is_num(v) and v > 0
        ),
        ParamSpec("monotone_tolerance", 1e-9, "a float >= 0", lambda v: _is_num(v) and v >= 0),
        ParamSpec("categorical_swap", True, "True or False", lambda v: isinstance(v, bool)),
        ParamSpec(
            "boundary_cases",
            list(BOUNDARY_CASES),
            f"a list drawn from {list(BOUNDARY_CASES)}",
            lambda v: isinstance(v, Sequence) and not isinstance(v, str) and set(v) <= set(BOUNDARY_CASES),
        ),
        ParamSpec("boundary_rows", 100, "an integer >= 1", lambda v: _is_int(v) and v >= 1),
        ParamSpec("extreme_factor", 10.0, "a float > 1", lambda v: _is_num(v) and v > 1),
        ParamSpec(
            "scenarios",
            [],
            "a list of {name, name_zh?, shocks: [{feature, op: mul|add|set, value}]} with unique names",
            _valid_scenarios,
        ),
    )

    def run(
        self,
        spec: ColumnSpec,
        *,
        current: pd.DataFrame | str | Any,
        reference: Any = None,
        model: Any = None,
        params: Mapping[str, Any] | None = None,
        artifacts_dir: str | None = None,
        **kw: Any,
    ) -> MonitorResult:
        p = self.validate_params(params)
        features = spec.feature_names
        if not features:
            raise ParameterError("spec.features must name at least one feature. Got () instead.")
        for sc in p["scenarios"]:
            for sh in sc["shocks"]:
                if sh["feature"] not in features:
                    raise ParameterError(
                        f"scenario {sc['name']!r} shock feature must be one of {features}. Got {sh['feature']!r} instead."
                    )
                if spec.feature(sh["feature"]).kind is ColumnKind.CATEGORICAL:
                    raise ParameterError(
                        f"scenario {sc['name']!r} shock feature must be numeric. Got categorical {sh['feature']!r} instead."
                    )
        seed = int(p["seed"])
        rng = np.random.default_rng(seed)
        try:
            if model is None:
                raise ModelError(
                    "robustness needs a model (an object with predict/predict_proba or a model URI)"
                )
            fitted = check_model(model)
            frame = load_frame(current)
            check_columns(frame, features, "current")
            X = frame[features]
            numeric = [f.name for f in spec.features if f.kind is not ColumnKind.CATEGORICAL]
            numeric_values_of = {f: numeric_values(X[f], f) for f in numeric}  # strings → input error
            ref_frame = None
            if reference is not None:
                # Noise scales and boundary values from the reference (training) data when given.
                ref_frame = load_frame(reference)
                check_columns(ref_frame, numeric, "reference")
                stats = {f: numeric_values(ref_frame[f], f) for f in numeric}
            else:
                stats = numeric_values_of
        except (DataInputError, ModelError) as exc:
            return invalid_result(self.kind, self.version, p, str(exc), seed=seed)
        fps = (fingerprint(frame, "current"),)
        if ref_frame is not None:
            fps = (*fps, fingerprint(ref_frame, "reference"))
        versions = library_versions()  # cached in monitors.base
        if len(X) == 0:
            return MonitorResult(
                kind=self.kind,
                monitor_version=self.version,
                params=p,
                metrics=(),
                status=MetricStatus.INSUFFICIENT_DATA,
                reason="no rows (empty data)",
                fingerprints=fps,
                seed=seed,
                library_versions=dict(versions),
            )
        no_values = [f for f, v in stats.items() if not np.isfinite(v).any()]
        if no_values:
            return MonitorResult(
                kind=self.kind,
                monitor_version=self.version,
                params=p,
                metrics=(),
                status=MetricStatus.INSUFFICIENT_DATA,
                reason=f"numeric feature(s) {no_values} have no finite value"
                + (" in the reference" if ref_frame is not None else "")
                + ": perturbation scales are undefined",
                fingerprints=fps,
                seed=seed,
                library_versions=dict(versions),
            )
        if len(X) > p["sample_size"]:
            X = X.iloc[np.sort(rng.choice(len(X), size=int(p["sample_size"]), replace=False))]
        X = X.reset_index(drop=True)
        notes = [f"{len(X)} row(s) perturbed (seeded sample of {len(frame)})"]
        try:
            base = _score(fitted, X)
        except ModelError as exc:
            return invalid_result(self.kind, self.version, p, str(exc), seed=seed, fingerprints=fps)
        ok_base = np.isfinite(base)
        if not ok_base.all():
            notes.append(
                f"{int((~ok_base).sum())} row(s) with a non-finite unperturbed score left out of comparisons"
            )
        # Scales from all rows (not the sample) so the noise does not depend on which rows were drawn.
        finite = {f: v[np.isfinite(v)] for f, v in stats.items()}
        std = {f: float(v.std()) for f, v in finite.items()}
        lo = {f: float(v.min()) for f, v in finite.items()}
        hi = {f: float(v.max()) for f, v in finite.items()}
        thr = float(p["threshold"])

        metrics: list[Metric] = []
        metrics += _noise(fitted, X, base, ok_base, numeric, std, p, rng, thr)
        if p["categorical_swap"]:
            metrics += _swaps(fitted, X, base, ok_base, spec, rng, thr)
        metrics += _monotone(fitted, X, base, ok_base, spec, std, p)
        boundary_table, boundary_metric = _boundary(fitted, X, spec, numeric, lo, hi, p, rng)
        metrics.append(boundary_metric)
        stress_table, stress_metrics = _stress(fitted, X, base, ok_base, p, thr)
        metrics += stress_metrics

        artifacts: list[Artifact] = []
        if artifacts_dir is not None:
            for name, table, desc in (
                ("boundary_cases.csv", boundary_table, "boundary cases: value, outcome, failure"),
                ("stress_scenarios.csv", stress_table, "stress scenarios: approval rate and mean score"),
            ):
                buf = io.StringIO()
                table.to_csv(buf, index=False, lineterminator="\n")
                a = write_artifact(artifacts_dir, name, buf.getvalue().encode("utf-8"), desc)
                if a is not None:
                    artifacts.append(a)
        return MonitorResult(
            kind=self.kind,
            monitor_version=self.version,
            params=p,
            metrics=tuple(metrics),
            artifacts=tuple(artifacts),
            fingerprints=fps,
            seed=seed,
            library_versions=dict(versions),
            notes=tuple(notes),
        )


def _score(model: Any, X: pd.DataFrame) -> np.ndarray:
    s = predict_scores(model, X)
    if s.shape != (len(X),):
        raise ModelError(f"model must return one score per row. Got shape {s.shape} instead.")
    return s


def _compare(
    name: str, kw: Mapping[str, Any], base: np.ndarray, ok: np.ndarray, new: np.ndarray, thr: float
) -> tuple[Metric, Metric | None]:
    """Flip rate and mean |score change| over rows where both scores are finite."""
    both = ok & np.isfinite(new)
    n = int(both.sum())
    counts = {"rows": n, "non_finite_perturbed": int((ok & ~np.isfinite(new)).sum())}
    if n == 0:
        reason = "no row has a finite score both before and after the perturbation"
        return Metric.undefined(name, reason, counts=counts, **kw), Metric.undefined(
            "mean_abs_score_change", reason, counts=counts, **kw
        )
    flips = (base[both] >= thr) != (new[both] >= thr)
    flip = Metric(name, float(flips.mean()), counts={**counts, "flips": int(flips.sum())}, **kw)
    change = Metric(
        "mean_abs_score_change", float(np.abs(new[both] - base[both]).mean()), counts=counts, **kw
    )
    return flip, change


def _failed(name: str, exc: Exception, **kw: Any) -> Metric:
    return Metric.undefined(
        name, f"model failed on the perturbed data: {exc}", status=MetricStatus.INVALID_INPUT, **kw
    )


def _noise(
    model: Any,
    X: pd.DataFrame,
    base: np.ndarray,
    ok: np.ndarray,
    numeric: list[str],
    std: Mapping[str, float],
    p: Mapping[str, Any],
    rng: np.random.Generator,
    thr: float,
) -> list[Metric]:
    out: list[Metric] = []
    flips, changes = [], []
    # Gaussian noise on a 0/1 indicator is not a plausible perturbation (a tree splits it just above 0, so any
    # noise flips it): perturb only columns with more than two distinct values.
    two_valued = {
        f
        for f in numeric
        if np.unique(
            X[f].to_numpy(dtype=float, na_value=np.nan)[
                np.isfinite(X[f].to_numpy(dtype=float, na_value=np.nan))
            ]
        ).size
        <= 2
    }
    noisy = [f for f in numeric if std[f] > 0 and f not in two_valued]
    for level in p["noise_levels"]:
        kw = {"group": f"noise={level:g}"}
        if not noisy:
            reason = "no numeric feature with a positive standard deviation to perturb"
            out += [
                Metric.undefined("flip_rate", reason, **kw),
                Metric.undefined("mean_abs_score_change", reason, **kw),
            ]
            continue
        Xp = X.copy()
        for f in noisy:
            Xp[f] = X[f].to_numpy(dtype=float, na_value=np.nan) + rng.normal(0.0, level * std[f], len(X))
        try:
            new = _score(model, Xp)
        except ModelError as exc:
            out += [_failed("flip_rate", exc, **kw), _failed("mean_abs_score_change", exc, **kw)]
            continue
        flip, change = _compare("flip_rate", kw, base, ok, new, thr)
        if two_valued and flip.status is MetricStatus.OK:
            flip = Metric(
                flip.name,
                flip.value,
                group=flip.group,
                ci_low=flip.ci_low,
                ci_high=flip.ci_high,
                counts={**flip.counts, "not_perturbed_two_valued": sorted(two_valued)},
            )
        out += [flip, change]
        flips.append(flip)
        changes.append(change)
    out.append(_max("max_flip_rate", flips, "flip_rate"))
    out.append(_max("max_mean_abs_score_change", changes, "mean_abs_score_change"))
    return out


def _max(name: str, ms: list[Metric], what: str) -> Metric:
    defined = [m for m in ms if m is not None and m.status is MetricStatus.OK]
    if not defined:
        return Metric.undefined(name, f"no {what} could be computed")
    worst = max(defined, key=lambda m: m.value)
    return Metric(name, worst.value, counts={"at": worst.group or worst.feature})


def _swaps(
    model: Any,
    X: pd.DataFrame,
    base: np.ndarray,
    ok: np.ndarray,
    spec: ColumnSpec,
    rng: np.random.Generator,
    thr: float,
) -> list[Metric]:
    import pandas as pd

    cats = [f.name for f in spec.features if f.kind is ColumnKind.CATEGORICAL]
    out: list[Metric] = []
    total_flips = total_rows = 0
    for f in cats:
        col = X[f]
        values = pd.unique(col.dropna())
        if len(values) < 2:
            out.append(
                Metric.undefined(
                    "categorical_swap_flip_rate", f"{f} has fewer than 2 observed categories", feature=f
                )
            )
            continue
        # Every row gets another observed category, chosen uniformly among the others.
        pos = pd.Index(values).get_indexer(col)
        draw = rng.integers(0, len(values) - 1, len(col))
        new_pos = np.where(pos < 0, rng.integers(0, len(values), len(col)), draw + (draw >= pos))
        swapped = pd.Series(values[new_pos], index=col.index)
        if isinstance(col.dtype, pd.CategoricalDtype):
            swapped = swapped.astype(col.dtype)
        else:
            swapped = swapped.astype(col.dtype) if col.notna().all() else swapped
        Xp = X.copy()
        Xp[f] = swapped
        try:
            new = _score(model, Xp)
        except ModelError as exc:
            out.append(_failed("categorical_swap_flip_rate", exc, feature=f))
            continue
        flip, _ = _compare("categorical_swap_flip_rate", {"feature": f}, base, ok, new, thr)
        out.append(flip)
        if flip.status is MetricStatus.OK:
            total_flips += int(flip.counts["flips"])
            total_rows += int(flip.counts["rows"])
    if total_rows:
        out.append(
            Metric(
                "categorical_swap_flip_rate",
                total_flips / total_rows,
                counts={"flips": total_flips, "row_swaps": total_rows, "features": cats},
            )
        )
    else:
        reason = "no categorical feature in the spec" if not cats else "no categorical swap could be scored"
        out.append(Metric.undefined("categorical_swap_flip_rate", reason))
    return out


def _monotone(
    model: Any,
    X: pd.DataFrame,
    base: np.ndarray,
    ok: np.ndarray,
    spec: ColumnSpec,
    std: Mapping[str, float],
    p: Mapping[str, Any],
) -> list[Metric]:
    out: list[Metric] = []
    for f in spec.features:
        if f.monotone not in (1, -1):
            continue
        if f.kind is ColumnKind.CATEGORICAL:
            out.append(
                Metric.undefined(
                    "monotonicity_violation_rate",
                    "monotone is declared on a categorical feature",
                    feature=f.name,
                )
            )
            continue
        step = float(p["monotone_step"]) * (std[f.name] if std[f.name] > 0 else 1.0)
        Xp = X.copy()
        Xp[f.name] = X[f.name].to_numpy(dtype=float, na_value=np.nan) + step
        try:
            new = _score(model, Xp)
        except ModelError as exc:
            out.append(_failed("monotonicity_violation_rate", exc, feature=f.name))
            continue
        both = ok & np.isfinite(new) & np.isfinite(X[f.name].to_numpy(dtype=float, na_value=np.nan))
        n = int(both.sum())
        if n == 0:
            out.append(
                Metric.undefined(
                    "monotonicity_violation_rate", "no row with a finite value and score", feature=f.name
                )
            )
            continue
        wrong = f.monotone * (new[both] - base[both]) < -float(p["monotone_tolerance"])
        out.append(
            Metric(
                "monotonicity_violation_rate",
                float(wrong.mean()),
                feature=f.name,
                counts={"rows": n, "violations": int(wrong.sum()), "step": step, "direction": f.monotone},
            )
        )
    out.append(
        _max("max_monotonicity_violation_rate", out, "monotonicity_violation_rate")
        if out
        else Metric.undefined("max_monotonicity_violation_rate", "no feature declares monotone = +1 or -1")
    )
    return out


def _boundary(
    model: Any,
    X: pd.DataFrame,
    spec: ColumnSpec,
    numeric: list[str],
    lo: Mapping[str, float],
    hi: Mapping[str, float],
    p: Mapping[str, Any],
    rng: np.random.Generator,
) -> tuple[pd.DataFrame, Metric]:
    import pandas as pd

    rows = (
        X
        if len(X) <= p["boundary_rows"]
        else X.iloc[np.sort(rng.choice(len(X), int(p["boundary_rows"]), replace=False))]
    )
    factor = float(p["extreme_factor"])
    cases: list[tuple[str, str, Any]] = []
    for f in spec.features:
        for case in p["boundary_cases"]:
            if f.name in numeric:
                value = {
                    "min": lo[f.name],
                    "max": hi[f.name],
                    # 10× max, or max + 10× the observed range when max is not positive.
                    "extreme": hi[f.name] * factor
                    if hi[f.name] > 0
                    else hi[f.name] + factor * max(hi[f.name] - lo[f.name], 1.0),
                    "missing": np.nan,
                }[case]
            elif case == "missing":
                value = np.nan if _is_code(X[f.name]) else None
            elif case == "extreme":
                # An unseen category: a new code for integer-coded categories, a new label otherwise.
                col = X[f.name]
                value = (
                    float(np.nanmax(col.to_numpy(float, na_value=np.nan))) + 1.0
                    if _is_code(col)
                    else UNSEEN_CATEGORY
                )
            else:
                continue  # min/max have no meaning for a categorical feature
            cases.append((f.name, case, value))
    records = []
    for feat, case, value in cases:
        Xp = rows.copy()
        col = Xp[feat]
        if feat in numeric or isinstance(value, float):
            Xp[feat] = np.full(len(Xp), np.nan if value is None else value, dtype=float)
        elif isinstance(col.dtype, pd.CategoricalDtype):
            Xp[feat] = (
                pd.Categorical([value] * len(Xp), categories=col.cat.categories)
                if value is None
                else pd.Categorical([value] * len(Xp))
            )
        else:
            Xp[feat] = pd.Series([value] * len(Xp), index=Xp.index, dtype=object)
        failure = ""
        try:
            s = _score(model, Xp)
            bad_nf = int((~np.isfinite(s)).sum())
            bad_range = int(((s < 0) | (s > 1)).sum()) if bad_nf == 0 else 0
            if bad_nf:
                failure = f"{bad_nf} non-finite output(s)"
            elif bad_range:
                failure = f"{bad_range} output(s) outside [0, 1] (min {s.min():.6g}, max {s.max():.6g})"
        except ModelError as exc:
            failure = str(exc)
        records.append(
            {
                "feature": feat,
                "case": case,
                "value": value,
                "rows": len(Xp),
                "ok": not failure,
                "failure": failure,
            }
        )
    table = pd.DataFrame(records, columns=["feature", "case", "value", "rows", "ok", "failure"])
    n_fail = int((~table["ok"]).sum()) if len(table) else 0
    failing = [f"{r.feature}:{r.case}" for r in table.itertuples() if not r.ok]
    metric = Metric("boundary_failures", float(n_fail), counts={"cases": len(table), "failing": failing})
    return table, metric


def _is_code(col: pd.Series) -> bool:
    import pandas as pd

    return pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype)


def _stress(
    model: Any, X: pd.DataFrame, base: np.ndarray, ok: np.ndarray, p: Mapping[str, Any], thr: float
) -> tuple[pd.DataFrame, list[Metric]]:
    import pandas as pd

    below = p["approve_when"] == "score_below"

    def approval(s: np.ndarray) -> float:
        return float(np.mean(s < thr) if below else np.mean(s >= thr))

    out: list[Metric] = []
    records = []
    changes: list[Metric] = []
    for sc in p["scenarios"]:
        kw = {"group": sc["name"]}
        Xp = X.copy()
        for sh in sc["shocks"]:
            v = Xp[sh["feature"]].to_numpy(dtype=float, na_value=np.nan)
            Xp[sh["feature"]] = {
                "mul": v * sh["value"],
                "add": v + sh["value"],
                "set": np.full_like(v, sh["value"]),
            }[sh["op"]]
        try:
            new = _score(model, Xp)
        except ModelError as exc:
            out += [
                _failed("stress_approval_rate_change", exc, **kw),
                _failed("stress_mean_score_change", exc, **kw),
            ]
            records.append({"scenario": sc["name"], "scenario_zh": sc.get("name_zh", ""), "error": str(exc)})
            continue
        both = ok & np.isfinite(new)
        if not both.any():
            reason = "no row has a finite score before and after the scenario"
            out += [
                Metric.undefined("stress_approval_rate_change", reason, **kw),
                Metric.undefined("stress_mean_score_change", reason, **kw),
            ]
            continue
        b, s = base[both], new[both]
        counts = {
            "rows": int(both.sum()),
            "name_zh": sc.get("name_zh"),
            "base_approval_rate": approval(b),
            "stressed_approval_rate": approval(s),
        }
        m = Metric("stress_approval_rate_change", approval(s) - approval(b), counts=counts, **kw)
        out.append(m)
        changes.append(m)
        out.append(
            Metric(
                "stress_mean_score_change",
                float(s.mean() - b.mean()),
                counts={"base_mean_score": float(b.mean()), "stressed_mean_score": float(s.mean())},
                **kw,
            )
        )
        records.append(
            {
                "scenario": sc["name"],
                "scenario_zh": sc.get("name_zh", ""),
                "shocks": "; ".join(f"{sh['feature']} {sh['op']} {sh['value']:g}" for sh in sc["shocks"]),
                "rows": int(both.sum()),
                "base_approval_rate": approval(b),
                "stressed_approval_rate": approval(s),
                "approval_rate_change": approval(s) - approval(b),
                "base_mean_score": float(b.mean()),
                "stressed_mean_score": float(s.mean()),
                "error": "",
            }
        )
    if changes:
        worst = max(changes, key=lambda m: abs(m.value))
        out.append(
            Metric("max_abs_stress_approval_rate_change", abs(worst.value), counts={"scenario": worst.group})
        )
    else:
        reason = "no stress scenario declared" if not p["scenarios"] else "no stress scenario could be scored"
        out.append(Metric.undefined("max_abs_stress_approval_rate_change", reason))
    cols = [
        "scenario",
        "scenario_zh",
        "shocks",
        "rows",
        "base_approval_rate",
        "stressed_approval_rate",
        "approval_rate_change",
        "base_mean_score",
        "stressed_mean_score",
        "error",
    ]
    return pd.DataFrame(records, columns=cols), out


__all__ = ["BOUNDARY_CASES", "SHOCK_OPS", "RobustnessMonitor"]
