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

    @property
    def status(self) -> str:
        from modelreg.policy import worst_status

        return worst_status(self.outcomes)


def _load(data: Any, what: str):
    import pandas as pd

    from monitors.base import DataInputError, load_frame

    if isinstance(data, pd.DataFrame):
        frame = data
    else:
        try:
            frame = load_frame(Path(data))
        except DataInputError as exc:
            raise BadInput(f"{what}: {exc}") from None
    if frame.empty:
        raise BadInput(f"{what} has no rows")
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


def load_model(uri: str):
    """Load a model to run it (validate/monitor only). A scikit-learn flavour is loaded natively so SHAP can
    use a fast explainer; anything else goes through MLflow's pyfunc. Either way it runs in this process."""
    from modelreg.errors import BadInput as _Bad

    try:
        import mlflow.sklearn

        try:
            return mlflow.sklearn.load_model(
                uri
            ), f"loaded {uri} with mlflow.sklearn in the validator's own process"
        except Exception:
            import mlflow.pyfunc

            return mlflow.pyfunc.load_model(
                uri
            ), f"loaded {uri} with mlflow.pyfunc in the validator's own process"
    except Exception as exc:
        first = str(exc).strip().splitlines()
        raise _Bad(f"cannot load model {uri}: {first[0] if first else type(exc).__name__}") from None


def build(inp: EvaluationInput) -> tuple[Any, Any, Any, Any, str | None]:
    """(spec, current frame with a score column, reference frame, model, model note)."""
    import numpy as np

    from monitors.base import ColumnKind, ColumnSpec, Feature, ModelError, predict_scores

    current = _load(inp.data, "--data")
    reference = _load(inp.reference, "--reference") if inp.reference is not None else None
    model, note = inp.model, None
    if model is None and inp.model_uri:
        model, note = load_model(inp.model_uri)
    for col in [c for c in (inp.target, inp.prediction, inp.score, *inp.sensitive) if c]:
        if col not in current.columns:
            raise BadInput(
                f"column {col!r} is not in --data (it has {', '.join(map(str, current.columns[:15]))}{'…' if len(current.columns) > 15 else ''})"
            )
    excluded = {c for c in (inp.target, inp.prediction, inp.score) if c}
    features = list(inp.features) if inp.features else (_model_features(model) if model is not None else None)
    if features is None:
        features = [str(c) for c in current.columns if c not in excluded and c not in inp.sensitive]
    missing = [f for f in features if f not in current.columns]
    if missing:
        raise BadInput(f"--data lacks feature column(s) the model needs: {', '.join(missing)}")
    feats = []
    for name in features:
        dtype = current[name].dtype
        numeric = np.issubdtype(dtype, np.number) and not np.issubdtype(dtype, np.bool_)
        zh, en = inp.feature_labels.get(name, (None, None))
        feats.append(
            Feature(
                name,
                ColumnKind.NUMERIC if numeric else ColumnKind.CATEGORICAL,
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
) -> EvaluationDraft:
    from modelreg.policy import evaluate_results
    from monitors.base import MetricStatus, MonitorResult, get_monitor, monitor_class

    say = progress or (lambda _m: None)
    gates = (gate,) if isinstance(gate, str) else tuple(gate)
    engine = _engine(inp)
    if engine != "pandas":
        return _run_scaled(pack, gates, tier, inp, engine, profile=profile, baselines=baselines, say=say)
    spec, current, reference, model, note = build(inp)
    wanted: dict[str, dict] = {}
    for g in gates:
        for kind, params in pack.monitors_for(g, tier).items():
            wanted.setdefault(kind, {}).update(params)
    folder = Path(tempfile.mkdtemp(prefix="modelreg-eval-"))
    results: dict[str, Any] = {}
    notes: list[str] = []
    for kind, params in wanted.items():
        params = dict(params)
        cls = monitor_class(kind)
        extra, missing = handed_inputs(
            cls, reference=reference, model=model, profile=profile, baselines=baselines
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
        say(f"running {kind} monitor on {len(current):,} rows")
        sub = folder / kind
        sub.mkdir(parents=True, exist_ok=True)
        results[kind] = _call(kind, spec, current, params, sub, extra)
    outcomes = []
    seen: set[str] = set()
    for g in gates:
        for o in evaluate_results(pack, g, tier, results):
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
    )


def _engine(inp: EvaluationInput) -> str:
    from monitors.base import DataInputError, ParameterError
    from monitors.scale import choose_engine

    if inp.engine != "auto":
        return inp.engine
    try:
        return choose_engine(inp.data)
    except (DataInputError, ParameterError) as exc:
        raise BadInput(f"--data: {exc}") from None


def _run_scaled(
    pack, gates, tier, inp: EvaluationInput, engine: str, *, profile, baselines, say
) -> EvaluationDraft:
    """The same controls with the reduction on DuckDB/Spark: the data never becomes one pandas frame. The
    model is not run row by row here: the data must carry --score or --prediction (explainability and
    robustness get a seeded sample, see monitors.scale.monitor_on)."""
    from modelreg.policy import evaluate_results
    from monitors.base import DataInputError, ParameterError, monitor_class
    from monitors.scale import monitor_on, open_backend, spec_from_source

    if inp.score is None and inp.prediction is None:
        raise BadInput(
            f"with --engine {engine} the data must carry the model's --score or --prediction column"
        )
    model, note = inp.model, None
    if model is None and inp.model_uri:
        model, note = load_model(inp.model_uri)
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
    folder = Path(tempfile.mkdtemp(prefix="modelreg-eval-"))
    results: dict[str, Any] = {}
    for kind, params in wanted.items():
        sub = folder / kind
        sub.mkdir(parents=True, exist_ok=True)
        say(f"running {kind} monitor on {current_fp.rows:,} rows ({engine})")
        extra, _ = handed_inputs(
            monitor_class(kind), reference=inp.reference, model=model, profile=profile, baselines=baselines
        )
        try:
            results[kind] = monitor_on(
                kind,
                engine,
                spec,
                current=inp.data,
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
        notes=[f"reduction engine: {engine}"],
        model_note=note,
    )


def digest_of(obj: Any) -> str:
    from modelreg.audit.canonical import canonical_json

    try:
        data = canonical_json(obj)
    except (TypeError, ValueError):
        data = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.sha256(data).hexdigest()
