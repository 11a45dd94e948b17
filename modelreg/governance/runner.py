"""Run a policy's machine controls on data: build the column spec, compute scores once, run each monitor the
pack needs with the parameters its controls ask for, and judge every check. Pure computation: nothing here
touches the registry database."""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelreg.errors import BadInput

SCORE_COLUMN = "__modelreg_score__"


@dataclass
class EvaluationInput:
    data: Any  # path or DataFrame: hold-out / scoring data
    target: str | None = None
    prediction: str | None = None
    score: str | None = None
    model_uri: str | None = None
    model: Any = None  # an already-loaded model object (Python API)
    reference: Any = None  # path or DataFrame: training / reference data
    sensitive: tuple[str, ...] = ()
    features: tuple[str, ...] | None = None
    feature_labels: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (zh, en)
    monotone: dict[str, int] = field(default_factory=dict)
    scenarios: list[dict] | None = None
    # "pandas", "duckdb", "spark" or "auto" (monitors.scale.choose_engine on ``data``).
    engine: str = "pandas"
    encoding: str | None = None  # CSV text encoding (modelreg.datasets.ENCODINGS); None: UTF-8 or its BOM
    # The target's positive class when its labels are not 0/1 (e.g. "bad", "违约"); None: the labels are 0/1.
    positive_label: Any = None
    # Declared feature schema, name -> "numeric" | "categorical", and where it was declared. The data must
    # fit it; without one the kinds come from the reference data, else from the data itself.
    schema: dict[str, str] | None = None
    schema_source: str | None = None
    # Set by the registry when the policy and a validator's attestation allow an executable model format
    # (it then runs in the isolated worker); None refuses such formats.
    execution_grant: Any = None
    # Segment columns (--segment, repeatable): drift, performance and fairness also run per segment (the
    # ``segments`` monitor); ``cross_segments`` adds the crossed segments. See monitors.segments.
    segments: tuple[str, ...] = ()
    cross_segments: bool = False
    # The model card's score_bands (monitors.bands) and decision id column: the ``stability`` monitor runs
    # score-band PSI, CSI and grade migration when reference data is given.
    score_bands: list | None = None
    id_column: str | None = None
    # The reference period for the segments and stability monitors only (``monitor --reference-period``);
    # without it they use ``reference``. Drift keeps its stored profile either way.
    period_reference: Any = None
    # False (``--no-html-report``): the drift monitor writes no Evidently HTML report (its ``evidently_report``
    # parameter, recorded with the evaluation's parameters). The metrics never come from that report.
    html_report: bool = True
    # Where the drift monitor keeps Evidently reports per digest of their inputs (set by the registry from
    # its settings); None: no cache.
    report_cache: Path | None = None
    # The scoring log's decision time column (model card ``decision_time_column``); with ``id_column`` and
    # ``record_decisions`` (set by a monitoring run) the run hands back the log's decisions to record.
    time_column: str | None = None
    record_decisions: bool = False


@dataclass
class EvaluationDraft:
    """What a run produced, before it is stored."""

    results: dict[str, Any]  # kind -> MonitorResult
    outcomes: list[Any]  # ControlOutcome
    fingerprints: list[dict]
    spec: dict
    params: dict[str, dict]
    artifacts_dir: Path
    notes: list[str]
    model_note: str | None
    reference_profile: bytes | None = None
    # Reference profiles of other monitors (kind -> JSON bytes), e.g. the data_quality ranges for monitoring.
    profiles: dict[str, bytes] = field(default_factory=dict)
    # The scoring log's decisions (decision_id, decided_at, score) to record (modelreg.governance.outcomes),
    # and the realised performance joined from recorded outcomes (set by the service before storing).
    decisions: Any = None
    realised: dict | None = None

    @property
    def status(self) -> str:
        from modelreg.policy import worst_status

        return worst_status(self.outcomes)


def _load(data: Any, what: str, encoding: str | None = None):
    import pandas as pd

    from modelreg.datasets import read_table

    frame = data if isinstance(data, pd.DataFrame) else read_table(Path(data), encoding=encoding, what=what)
    if frame.empty:
        raise BadInput(f"{what} has no rows")
    return frame


def _labels_text(values) -> str:
    shown = ", ".join(repr(v.item() if hasattr(v, "item") else v) for v in list(values)[:6])
    return shown + ("…" if len(values) > 6 else "")


def resolve_positive_label(frame, target: str, positive_label: Any) -> tuple[Any, str | None]:
    """The value of ``target`` that means the positive class, checked against the data: the target must be
    binary in its declared labels. Without ``positive_label`` the labels must be 0/1 (or booleans); a string
    label given for a numeric column is read as that number. Returns (label, note for the evaluation)."""
    import numpy as np
    import pandas as pd

    series = frame[target]
    labels = pd.unique(series.dropna())
    numeric = pd.api.types.is_numeric_dtype(series.dtype)
    if positive_label is None:
        if numeric and set(np.asarray(labels, dtype=float).tolist()) <= {0.0, 1.0}:
            return 1, None
        raise BadInput(
            f"--target {target} must be binary with 1 = the positive class. Got {len(labels)} label(s) "
            f"{_labels_text(labels)} instead: name the positive class with --positive-label"
        )
    # numpy scalars from the Python API become plain values: the label is stored in the spec as JSON
    label: Any = positive_label.item() if hasattr(positive_label, "item") else positive_label
    if numeric and isinstance(label, str):
        try:
            label = float(label)
        except ValueError:
            raise BadInput(
                f"--positive-label {positive_label!r} is not a label of the numeric --target {target} "
                f"(it has {_labels_text(labels)})"
            ) from None
        if label.is_integer() and not pd.api.types.is_float_dtype(series.dtype):
            label = int(label)
    elif not numeric and not isinstance(label, str):
        label = str(label)
    present = [v for v in labels if v == label]
    if len(labels) > 2:
        raise BadInput(
            f"--target {target} must be binary. Got {len(labels)} labels {_labels_text(labels)} instead "
            "(map them to two classes before validating)"
        )
    if not present:
        raise BadInput(
            f"--positive-label {positive_label!r} is not a label of --target {target} (it has {_labels_text(labels)})"
        )
    others = [v for v in labels if v != label]
    note = f"target {target}: {label!r} is the positive class" + (
        f", {_labels_text(others)} the negative" if others else " (no negative labels in the data)"
    )
    return label, note


_NUMERIC_TYPES = frozenset(
    {"integer", "long", "float", "double", "numeric", "number", "int", "float64", "int64"}
)


def schema_kind(declared: Any) -> str:
    """A declared type (MLflow signature type, or the model card's word) as a column kind."""
    return "numeric" if str(declared).strip().lower() in _NUMERIC_TYPES else "categorical"


def _fit_schema(frame, kinds: dict[str, str], what: str, source: str):
    """Check that every feature declared numeric holds numbers (text that parses is converted, e.g. an
    object column read from a file with blanks); anything else is bad input naming each column."""
    import pandas as pd

    problems: list[str] = []
    converted: dict[str, Any] = {}
    for name, kind in kinds.items():
        if kind != "numeric" or name not in frame.columns:
            continue
        series = frame[name]
        if pd.api.types.is_numeric_dtype(series.dtype):
            continue
        coerced = pd.to_numeric(series, errors="coerce")
        bad = coerced.isna() & series.notna()
        if bad.any():
            examples = ", ".join(repr(v) for v in pd.unique(series[bad])[:3])
            problems.append(f"{name} has {int(bad.sum())} non-numeric value(s) ({examples})")
        else:
            converted[name] = coerced
    if problems:
        raise BadInput(
            f"{what} does not fit the feature schema ({source}): numeric feature(s) "
            + "; ".join(problems)
            + ". Fix the cells or declare the feature categorical"
        )
    if converted:
        frame = frame.assign(**converted)
    return frame


def _model_features(model: Any) -> list[str] | None:
    names = getattr(model, "feature_names_in_", None)
    if names is not None:
        return [str(n) for n in names]
    metadata = getattr(model, "metadata", None)  # MLflow pyfunc
    signature = getattr(metadata, "signature", None)
    if signature is not None and signature.inputs is not None:
        try:
            return [str(n) for n in signature.inputs.input_names()]
        except Exception:
            return None
    return None


def build(
    inp: EvaluationInput, build_notes: list[str] | None = None
) -> tuple[Any, Any, Any, Any, str | None]:
    """(spec, current frame with a score column, reference frame, model, model note). Notes on how the
    data was read (positive class, schema source) are appended to ``build_notes``."""
    import numpy as np

    from monitors.base import ColumnKind, ColumnSpec, Feature, ModelError, predict_scores

    if build_notes is None:
        build_notes = []
    current = _load(inp.data, "--data", inp.encoding)
    reference = _load(inp.reference, "--reference", inp.encoding) if inp.reference is not None else None
    model, note = inp.model, None
    if model is None and inp.model_uri:
        from modelreg.integrations.mlflow.models import load_model

        model, note = load_model(inp.model_uri, inp.execution_grant)
    for col in [c for c in (inp.target, inp.prediction, inp.score, *inp.sensitive) if c]:
        if col not in current.columns:
            raise BadInput(
                f"column {col!r} is not in --data (it has {', '.join(map(str, current.columns[:15]))}{'…' if len(current.columns) > 15 else ''})"
            )
    positive_label: Any = 1
    if inp.target:
        positive_label, label_note = resolve_positive_label(current, inp.target, inp.positive_label)
        if label_note:
            build_notes.append(label_note)
    excluded = {c for c in (inp.target, inp.prediction, inp.score) if c}
    if inp.record_decisions:  # a decision's id and time are bookkeeping, never model features
        excluded |= {c for c in (inp.id_column, inp.time_column) if c}
    declared = dict(inp.schema or {})
    features = list(inp.features) if inp.features else None
    if features is None and model is not None:
        features = _model_features(model)  # the model's own column order, which it may insist on
    if features is None and declared:
        features = list(declared)
    if features is None:
        features = [str(c) for c in current.columns if c not in excluded and c not in inp.sensitive]
    missing = [f for f in features if f not in current.columns]
    if missing:
        raise BadInput(f"--data lacks feature column(s) the model needs: {', '.join(missing)}")

    def inferred(name: str) -> str:
        # The training data says what a column is; the hold-out's own dtypes would let dirty cells turn a
        # numeric feature into a categorical one.
        frame = reference if reference is not None and name in reference.columns else current
        dtype = frame[name].dtype
        numeric = np.issubdtype(dtype, np.number) and not np.issubdtype(dtype, np.bool_)
        return "numeric" if numeric else "categorical"

    kinds = {name: schema_kind(declared[name]) if name in declared else inferred(name) for name in features}
    source = inp.schema_source or ("declared schema" if declared else "the reference data's column types")
    if declared:
        build_notes.append(f"feature schema from {source}")
    if declared or reference is not None:
        current = _fit_schema(current, kinds, "--data", source)
        if reference is not None:
            reference = _fit_schema(reference, kinds, "--reference", source)
    feats = []
    for name in features:
        zh, en = inp.feature_labels.get(name, (None, None))
        feats.append(
            Feature(
                name,
                ColumnKind(kinds[name]),
                label_zh=zh,
                label_en=en,
                monotone=inp.monotone.get(name),
            )
        )
    score = inp.score
    if model is not None and score is None:
        current = current.copy()
        try:
            current[SCORE_COLUMN] = predict_scores(model, current[features])
        except ModelError as exc:
            raise BadInput(str(exc)) from None
        score = SCORE_COLUMN
        if reference is not None and all(f in reference.columns for f in features):
            reference = reference.copy()
            try:
                reference[SCORE_COLUMN] = predict_scores(model, reference[features])
            except ModelError as exc:
                raise BadInput(f"on --reference: {exc}") from None
    spec = ColumnSpec(
        tuple(feats),
        target=inp.target,
        prediction=inp.prediction,
        score=score,
        sensitive=tuple(inp.sensitive),
        positive_label=positive_label,
    )
    return spec, current, reference, model, note


def handed_inputs(
    cls: Any, *, reference: Any, model: Any, profile: Any, baselines: dict[str, Any] | None
) -> tuple[dict[str, Any], str | None]:
    """The inputs beyond the current data that the runner hands a monitor, read from its declared
    ``needs`` (see ``monitors.base.Monitor``), or the reason it cannot run."""
    kind, needs = cls.kind, cls.needs
    extra: dict[str, Any] = {}
    if "model" in needs:
        if model is None:
            return {}, f"the {kind} monitor needs the model (--model URI)"
        extra["model"] = model
    if "reference" in needs and reference is not None:
        extra["reference"] = reference
    elif "profile" in needs and profile is not None:
        extra["profile"] = profile
    elif {"reference", "profile"} <= needs:
        return {}, f"{kind} needs --reference data or a stored reference profile"
    if "baseline" in needs and reference is None and baselines and kind in baselines:
        # With reference data the monitor derives its own baseline from it.
        extra["baseline"] = baselines[kind]
    return extra, None


def _html_switch(inp: EvaluationInput, wanted: dict[str, dict]) -> None:
    """``--no-html-report`` switches the drift monitor's Evidently report off for this run."""
    if not inp.html_report and "drift" in wanted:
        wanted["drift"]["evidently_report"] = False


def _report_cache(cls, inp: EvaluationInput, extra: dict) -> None:
    """Hand the report cache to a monitor whose run() names it (the drift monitor's Evidently report)."""
    import inspect

    if inp.report_cache is not None and "report_cache" in inspect.signature(cls.run).parameters:
        extra["report_cache"] = inp.report_cache


def _call(kind: str, spec, current, params: dict, folder: Path, extra: dict) -> Any:
    from monitors.base import MetricStatus, MonitorResult, ParameterError, get_monitor

    monitor = get_monitor(kind)
    kwargs: dict[str, Any] = {"current": current, "params": params, "artifacts_dir": folder}
    kwargs.update(extra)
    # A monitor whose run() takes no **kwargs gets only the inputs it names.
    import inspect

    accepted = inspect.signature(monitor.run).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values()):
        kwargs = {k: v for k, v in kwargs.items() if k in accepted}
    try:
        return monitor.run(spec, **kwargs)
    except ParameterError as exc:
        reason = f"policy parameters rejected by the {kind} monitor: {exc}"
    except TypeError as exc:
        reason = f"{kind} monitor could not be called with these inputs: {exc}"
    except Exception as exc:  # a monitor bug must not turn into a silent pass or a crash of the whole run
        reason = (
            f"{kind} monitor failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        )
    return MonitorResult(
        kind=kind,
        monitor_version="?",
        params=params,
        metrics=(),
        status=MetricStatus.INVALID_INPUT,
        reason=reason,
    )


def run(
    pack,
    gate: str | tuple[str, ...],
    tier: str,
    inp: EvaluationInput,
    *,
    baselines: dict[str, Any] | None = None,
    profile: Any = None,
    progress: Callable[[str], None] | None = None,
    profiles: dict[str, Any] | None = None,
) -> EvaluationDraft:
    """``profile`` is the drift reference profile; ``profiles`` those of other kinds (data_quality)."""
    from modelreg.policy import evaluate_results
    from monitors.base import MetricStatus, MonitorResult, get_monitor, monitor_class

    say = progress or (lambda _m: None)
    gates = (gate,) if isinstance(gate, str) else tuple(gate)
    engine = _engine(inp)
    if engine != "pandas":
        return _run_scaled(
            pack, gates, tier, inp, engine, profile=profile, baselines=baselines, say=say, profiles=profiles
        )
    notes: list[str] = []
    spec, current, reference, model, note = build(inp, notes)
    decisions = _decisions(inp, current, spec.score)
    wanted: dict[str, dict] = {}
    for g in gates:
        for kind, params in pack.monitors_for(g, tier).items():
            wanted.setdefault(kind, {}).update(params)
    _drop_standalone(wanted)
    _html_switch(inp, wanted)
    estimate_note = _labels_rule(inp, wanted)
    if estimate_note:
        notes.append(estimate_note)
    period = _period_reference(inp, spec, model, reference)
    _check_segments(inp, current.columns, None if period is None else period.columns)
    _declared_runs(inp, wanted, has_reference=period is not None)
    folder = Path(tempfile.mkdtemp(prefix="modelreg-eval-"))
    results: dict[str, Any] = {}
    for kind, params in wanted.items():
        params = dict(params)
        cls = monitor_class(kind)
        own_profile = profile if kind == "drift" else (profiles or {}).get(kind)  # each kind's own profile
        extra, missing = handed_inputs(
            cls,
            reference=_reference_for(kind, inp, period, reference),
            model=model,
            profile=own_profile,
            baselines=baselines,
        )
        if missing is not None:
            results[kind] = MonitorResult(
                kind=kind,
                monitor_version="?",
                params=params,
                metrics=(),
                status=MetricStatus.INVALID_INPUT,
                reason=missing,
            )
            continue
        if inp.scenarios and "scenarios" not in params and any(p.name == "scenarios" for p in cls.params):
            params["scenarios"] = inp.scenarios
        _report_cache(cls, inp, extra)
        say(f"running {kind} monitor on {len(current):,} rows")
        sub = folder / kind
        sub.mkdir(parents=True, exist_ok=True)
        results[kind] = _call(kind, spec, current, params, sub, extra)
    outcomes = []
    seen: set[str] = set()
    for g in gates:
        for o in evaluate_results(pack, g, tier, results):
            if o.monitor in STANDALONE_KINDS or (o.monitor in LABEL_FREE_KINDS and o.monitor not in results):
                continue  # graded elsewhere (challenger run) or not at all (an estimate when labels are given)
            if o.control_id not in seen:
                seen.add(o.control_id)
                outcomes.append(o)
    fps = []
    from monitors.base import fingerprint

    fps.append({**fingerprint(current.drop(columns=[SCORE_COLUMN], errors="ignore"), "current").to_dict()})
    if reference is not None:
        fps.append(
            {**fingerprint(reference.drop(columns=[SCORE_COLUMN], errors="ignore"), "reference").to_dict()}
        )
    profile_bytes = None
    # The stored profile serves the (first) monitor that declares it can run from one.
    profiled = [k for k in wanted if "profile" in monitor_class(k).needs]
    if reference is not None and profiled:
        try:
            prof = get_monitor(profiled[0]).profile(spec, reference, wanted[profiled[0]])
            profile_bytes = prof.to_json().encode()
        except Exception as exc:  # keep the evaluation; monitoring will say the profile is missing
            notes.append(f"reference profile not saved: {type(exc).__name__}: {exc}")
    other_profiles: dict[str, bytes] = {}
    if reference is not None and "data_quality" in wanted:
        from monitors.base import DataInputError
        from monitors.data_quality import DataQualityMonitor

        try:
            dq = DataQualityMonitor().profile(spec, reference, wanted["data_quality"])
            other_profiles["data_quality"] = dq.to_json().encode()
        except (DataInputError, ValueError) as exc:
            notes.append(f"data_quality reference profile not saved: {exc}")
    estimated = _estimate_profile(pack, tier, inp, spec, current)
    if isinstance(estimated, bytes):
        other_profiles["estimated_performance"] = estimated
    elif estimated:
        notes.append(estimated)
    notes.extend(monitor_notes(results))
    return EvaluationDraft(
        results=results,
        outcomes=outcomes,
        fingerprints=fps,
        spec=spec.to_dict(),
        params={k: dict(v) for k, v in wanted.items()},
        artifacts_dir=folder,
        notes=notes,
        model_note=note,
        reference_profile=profile_bytes,
        profiles=other_profiles,
        decisions=decisions,
    )


#: Monitors that estimate what labels would show: they run (and their controls are graded) only when the
#: monitoring data has no labels (no --target); with labels, the performance controls grade the realised
#: values instead. Their reference is the validation hold-out's stored profile (or --reference-period),
#: never the training data, on which a model's scores are not out of sample.
LABEL_FREE_KINDS = ("estimated_performance",)


def _labels_rule(inp: EvaluationInput, wanted: dict[str, dict]) -> str | None:
    dropped = [k for k in LABEL_FREE_KINDS if k in wanted and inp.target is not None]
    for k in dropped:
        wanted.pop(k)
    if dropped:
        return (
            f"{', '.join(dropped)} not run: the data has labels (--target {inp.target}), so the performance "
            "controls grade the realised values"
        )
    return None


def _reference_for(kind: str, inp: EvaluationInput, period: Any, reference: Any) -> Any:
    if kind in PERIOD_KINDS:
        return period
    if kind in LABEL_FREE_KINDS:
        return period if inp.period_reference is not None else None
    return reference


def _estimate_profile(pack, tier: str, inp: EvaluationInput, spec: Any, current: Any) -> bytes | str | None:
    """At validation (labelled hold-out data): the profile that the label-free estimate reads at
    monitoring, when the pack has a control on it. Bytes, or a note saying why it was not saved."""
    wanted = pack.monitors_for("monitor", tier)
    if "estimated_performance" not in wanted or inp.target is None or spec.score is None:
        return None
    from monitors.base import DataInputError, ParameterError
    from monitors.estimated_performance import EstimatedPerformanceMonitor

    params = dict(wanted["estimated_performance"])
    try:
        prof = EstimatedPerformanceMonitor().profile(spec, current, params)
    except (DataInputError, ParameterError, ValueError) as exc:
        return f"estimated_performance reference profile not saved: {exc}"
    return prof.to_json().encode()


#: Monitors that only their own command runs (``modelreg challenger run`` scores two versions): a validation
#: or monitoring run neither runs them nor grades their controls.
STANDALONE_KINDS = ("challenger",)


def _drop_standalone(wanted: dict[str, dict]) -> None:
    for kind in STANDALONE_KINDS:
        wanted.pop(kind, None)


#: Monitors that compare with a reference *period* (``EvaluationInput.period_reference``, else ``reference``).
PERIOD_KINDS = ("segments", "stability")


def _period_reference(inp: EvaluationInput, spec: Any, model: Any, reference: Any) -> Any:
    """The reference period's rows for the segments and stability monitors, scored by the model like the
    current data when the score comes from it."""
    if inp.period_reference is None:
        return reference
    from monitors.base import ModelError, predict_scores

    frame = _load(inp.period_reference, "--reference-period", inp.encoding)
    if spec.score == SCORE_COLUMN and model is not None:
        missing = [f for f in spec.feature_names if f not in frame.columns]
        if missing:
            raise BadInput(
                f"--reference-period lacks feature column(s) the model needs: {', '.join(missing)}"
            )
        frame = frame.copy()
        try:
            frame[SCORE_COLUMN] = predict_scores(model, frame[spec.feature_names])
        except ModelError as exc:
            raise BadInput(f"on --reference-period: {exc}") from None
    return frame


def current_fp_columns(fp: Any) -> list[str]:
    return [str(c[0]) for c in fp.columns]


def _check_segments(inp: EvaluationInput, current_columns: Any, reference_columns: Any) -> None:
    """An unknown --segment column is bad input (exit 2), named with the columns that exist."""
    cols = [str(c) for c in current_columns]
    for seg in inp.segments:
        if seg not in cols:
            raise BadInput(
                f"--segment {seg} is not a column of --data (it has {', '.join(cols[:15])}{'…' if len(cols) > 15 else ''})"
            )
        if reference_columns is not None and seg not in [str(c) for c in reference_columns]:
            raise BadInput(f"--segment {seg} is not a column of --reference")
    if len(set(inp.segments)) != len(inp.segments):
        raise BadInput(f"--segment names a column twice: {list(inp.segments)}")


def _declared_runs(
    inp: EvaluationInput, wanted: dict[str, dict], *, has_reference: bool, bands: bool = True
) -> None:
    """Monitors the caller's inputs ask for beyond the policy's controls: ``segments`` with --segment,
    ``stability`` when the model card declares score bands and reference data is given. Their results are
    stored and shown with the evaluation; a policy control on them (disabled in the shipped pack) grades
    them once a bank enables it."""
    if inp.segments:
        params = wanted.setdefault("segments", {})
        params["segments"] = list(inp.segments)
        params["cross"] = bool(inp.cross_segments)
        if not has_reference and inp.target is None and not inp.sensitive and "kinds" not in params:
            raise BadInput(
                "--segment needs something to compute per segment: --reference (drift), --target "
                "(performance) or --sensitive (fairness)"
            )
        if not has_reference and "kinds" not in params:
            # Drift per segment needs the reference rows of each segment, not a whole-data profile.
            params["kinds"] = [
                k for k, on in (("performance", inp.target), ("fairness", inp.sensitive)) if on
            ]
    elif "segments" in wanted:
        wanted["segments"].setdefault("segments", None)  # the monitor says: name the segment columns
    if inp.score_bands is not None and ((bands and has_reference) or "stability" in wanted):
        params = wanted.setdefault("stability", {})
        params.setdefault("score_bands", inp.score_bands)
        if inp.id_column:
            params.setdefault("id_column", inp.id_column)


def _engine(inp: EvaluationInput) -> str:
    from monitors.base import DataInputError, ParameterError
    from monitors.scale import choose_engine

    if inp.engine != "auto":
        return inp.engine
    try:
        return choose_engine(inp.data)
    except (DataInputError, ParameterError) as exc:
        raise BadInput(f"--data: {exc}") from None


def monitor_notes(results: dict[str, Any]) -> list[str]:
    """Every monitor's notes (rows excluded, samples, explainer used...), named by monitor, so that what
    was left out of a number is in the evaluation's --json and findings, not only inside each result."""
    return [f"{kind}: {n}" for kind, r in results.items() for n in getattr(r, "notes", ())]


def _run_scaled(
    pack, gates, tier, inp: EvaluationInput, engine: str, *, profile, baselines, say, profiles=None
) -> EvaluationDraft:
    """The same controls with the reduction on DuckDB/Spark: the data never becomes one pandas frame. The
    model is not run row by row here: the data must carry --score or --prediction (explainability and
    robustness get a seeded sample, see monitors.scale.monitor_on)."""
    from modelreg.policy import evaluate_results
    from monitors.base import DataInputError, ParameterError, monitor_class
    from monitors.scale import monitor_on, open_backend, spec_from_source

    if inp.encoding not in (None, "utf-8"):
        raise BadInput(
            f"--encoding {inp.encoding} is read by the pandas engine only; with --engine {engine} "
            "convert the file to UTF-8 or Parquet first"
        )
    if inp.score is None and inp.prediction is None:
        raise BadInput(
            f"with --engine {engine} the data must carry the model's --score or --prediction column"
        )
    model, note = inp.model, None
    if model is None and inp.model_uri:
        from modelreg.integrations.mlflow.models import load_model

        model, note = load_model(inp.model_uri, inp.execution_grant)
    try:
        spec = spec_from_source(
            engine,
            inp.data,
            target=inp.target,
            prediction=inp.prediction,
            score=inp.score,
            sensitive=inp.sensitive,
            features=inp.features,
        )
        backend = open_backend(engine, inp.data)
        try:
            current_fp = backend.fingerprint("current")
        finally:
            backend.close()
    except (DataInputError, ParameterError) as exc:
        raise BadInput(f"--data: {exc}") from None
    if current_fp.rows == 0:
        raise BadInput("--data has no rows")
    wanted: dict[str, dict] = {}
    for g in gates:
        for kind, params in pack.monitors_for(g, tier).items():
            wanted.setdefault(kind, {}).update(params)
    _drop_standalone(wanted)
    _html_switch(inp, wanted)
    estimate_note = _labels_rule(inp, wanted)
    if inp.segments:
        _check_segments(inp, current_fp_columns(current_fp), None)
    # Score bands read the rows in pandas: on an engine they run only when a control asks for them.
    _declared_runs(
        inp, wanted, has_reference=(inp.period_reference or inp.reference) is not None, bands=False
    )
    folder = Path(tempfile.mkdtemp(prefix="modelreg-eval-"))
    results: dict[str, Any] = {}
    for kind, params in wanted.items():
        sub = folder / kind
        sub.mkdir(parents=True, exist_ok=True)
        say(f"running {kind} monitor on {current_fp.rows:,} rows ({engine})")
        own_profile = profile if kind == "drift" else (profiles or {}).get(kind)
        extra, _ = handed_inputs(
            monitor_class(kind),
            reference=_reference_for(kind, inp, inp.period_reference or inp.reference, inp.reference),
            model=model,
            profile=own_profile,
            baselines=baselines,
        )
        current: Any = inp.data
        if kind == "data_quality":
            # No engine reduction for it yet: fetch the feature columns only (a table name is no file path).
            from monitors.scale import load_columns

            try:
                current = load_columns(engine, inp.data, spec.feature_names)
            except (DataInputError, ParameterError) as exc:
                raise BadInput(f"--data: {exc}") from None
        try:
            results[kind] = monitor_on(
                kind,
                engine,
                spec,
                current=current,
                reference=extra.get("reference"),
                profile=extra.get("profile"),
                baseline=extra.get("baseline"),
                model=model,
                params=dict(params),
                artifacts_dir=sub,
            )
        except ParameterError as exc:
            from monitors.base import invalid_result

            results[kind] = invalid_result(
                kind, "?", params, f"policy parameters rejected by the {kind} monitor: {exc}"
            )
    outcomes, seen = [], set()
    for g in gates:
        for o in evaluate_results(pack, g, tier, results):
            if o.monitor in STANDALONE_KINDS or (o.monitor in LABEL_FREE_KINDS and o.monitor not in results):
                continue  # graded elsewhere (challenger run) or not at all (an estimate when labels are given)
            if o.control_id not in seen:
                seen.add(o.control_id)
                outcomes.append(o)
    return EvaluationDraft(
        results=results,
        outcomes=outcomes,
        fingerprints=[current_fp.to_dict()],
        spec=spec.to_dict(),
        params={k: dict(v) for k, v in wanted.items()},
        artifacts_dir=folder,
        notes=[
            f"reduction engine: {engine}",
            *([estimate_note] if estimate_note else []),
            *monitor_notes(results),
        ],
        model_note=note,
        decisions=_decisions_scaled(inp, engine, spec.score),
    )


def _decisions(inp: EvaluationInput, current: Any, score: str | None) -> Any:
    if not (inp.record_decisions and inp.id_column and inp.time_column):
        return None
    from modelreg.governance.outcomes import decisions_of

    return decisions_of(current, inp.id_column, inp.time_column, score)


def _decisions_scaled(inp: EvaluationInput, engine: str, score: str | None) -> Any:
    """On DuckDB/Spark only the three columns come to pandas (a million rows: some 40 MB)."""
    if not (inp.record_decisions and inp.id_column and inp.time_column):
        return None
    from monitors.base import DataInputError, ParameterError
    from monitors.scale import load_columns

    cols = [c for c in (inp.id_column, inp.time_column, score) if c]
    try:
        frame = load_columns(engine, inp.data, cols)
    except (DataInputError, ParameterError) as exc:
        raise BadInput(
            f"--data: {exc} (the model card's decision_id_column / decision_time_column)"
        ) from None
    return _decisions(inp, frame, score)


def digest_of(obj: Any) -> str:
    from modelreg.audit.canonical import canonical_json

    try:
        data = canonical_json(obj)
    except (TypeError, ValueError):
        data = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.sha256(data).hexdigest()
