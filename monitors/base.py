"""The monitor contract: column spec, results, statuses, input validation, reference profiles.

Every monitor follows "aggregate, then compute": a reduction step turns rows into sufficient statistics
(histograms on reference bins, category counts, confusion matrices, sorted samples), and the metrics are
derived from those statistics only. Data problems never raise out of ``Monitor.run``: they come back as a
``MonitorResult`` whose metrics carry ``invalid_input`` or ``insufficient_data`` with a reason. Only wrong
*parameters* (a configuration error by the caller) raise ``ParameterError``.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import importlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

if TYPE_CHECKING:  # pandas is imported where it runs: declarations must load without it
    import pandas as pd

CONTRACT_VERSION = "1"


class ParameterError(ValueError):
    """A monitor parameter is invalid. Messages: "<name> must be <what>. Got <value> instead."."""


class ColumnKind(str, enum.Enum):
    NUMERIC = "numeric"
    CATEGORICAL = "categorical"
    ORDINAL = "ordinal"


class MetricStatus(str, enum.Enum):
    OK = "ok"
    INSUFFICIENT_DATA = "insufficient_data"
    INVALID_INPUT = "invalid_input"
    # The quantity cannot be estimated from what was given (e.g. performance from the scores of a model
    # that is not calibrated on the reference): no number, a reason, and a control on it never passes.
    NOT_ESTIMABLE = "not_estimable"


@dataclass(frozen=True)
class Feature:
    name: str
    kind: ColumnKind = ColumnKind.NUMERIC
    label_zh: str | None = None
    label_en: str | None = None
    # +1: the score may only rise with the feature; -1: only fall; 0/None: no constraint.
    monotone: int | None = None
    personal_information: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", ColumnKind(self.kind))
        if self.monotone not in (None, -1, 0, 1):
            raise ParameterError(f"monotone must be one of -1, 0, 1 or None. Got {self.monotone!r} instead.")


@dataclass(frozen=True)
class ColumnSpec:
    """What the columns of a data set mean. ``score`` is a probability of the positive class,
    ``prediction`` a hard label; either may be derived from a model when one is given."""

    features: tuple[Feature, ...]
    target: str | None = None
    prediction: str | None = None
    score: str | None = None
    sensitive: tuple[str, ...] = ()
    positive_label: Any = 1

    def __post_init__(self) -> None:
        feats = tuple(f if isinstance(f, Feature) else Feature(**f) for f in self.features)
        object.__setattr__(self, "features", feats)
        object.__setattr__(self, "sensitive", tuple(self.sensitive))
        names = [f.name for f in feats]
        if len(set(names)) != len(names):
            raise ParameterError(f"feature names must be unique. Got {names} instead.")

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    def feature(self, name: str) -> Feature:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(name)

    def to_dict(self) -> dict:
        d = asdict(self)
        for f in d["features"]:
            f["kind"] = ColumnKind(f["kind"]).value
        d["sensitive"] = list(self.sensitive)
        return d

    @classmethod
    def from_dict(cls, d: Mapping) -> ColumnSpec:
        d = dict(d)
        d["features"] = tuple(Feature(**f) for f in d["features"])
        d["sensitive"] = tuple(d.get("sensitive", ()))
        return cls(**d)

    @classmethod
    def infer(
        cls,
        frame: pd.DataFrame,
        *,
        target: str | None = None,
        prediction: str | None = None,
        score: str | None = None,
        sensitive: Sequence[str] = (),
        exclude: Sequence[str] = (),
    ) -> ColumnSpec:
        """Every column not named as target/prediction/score/excluded is a feature; object, category and
        bool columns are categorical, the rest numeric. Sensitive columns stay features unless excluded."""
        import pandas as pd

        skip = {c for c in (target, prediction, score) if c} | set(exclude)
        feats = []
        for col in frame.columns:
            if col in skip:
                continue
            dtype = frame[col].dtype
            numeric = pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
            feats.append(Feature(str(col), ColumnKind.NUMERIC if numeric else ColumnKind.CATEGORICAL))
        return cls(
            tuple(feats), target=target, prediction=prediction, score=score, sensitive=tuple(sensitive)
        )


def _clean_float(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    if math.isnan(value):
        return None
    return value


@dataclass(frozen=True)
class Metric:
    """One computed number. ``value`` is None whenever ``status`` is not ``ok`` (never a silent 0)."""

    name: str
    value: float | None
    status: MetricStatus = MetricStatus.OK
    reason: str | None = None
    feature: str | None = None
    group: str | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    counts: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", MetricStatus(self.status))
        value = self.value
        if isinstance(value, (bool, np.bool_)):
            value = float(value)
        if value is not None:
            value = float(value)
            if math.isnan(value):
                raise ValueError(f"metric {self.name}: NaN is not a value; use status insufficient_data")
        if self.status is not MetricStatus.OK:
            if value is not None:
                raise ValueError(f"metric {self.name}: a non-ok metric has no value")
            if not self.reason:
                raise ValueError(f"metric {self.name}: a non-ok metric needs a reason")
        elif value is None:
            raise ValueError(f"metric {self.name}: an ok metric needs a value")
        object.__setattr__(self, "value", value)
        object.__setattr__(self, "ci_low", _clean_float(self.ci_low))
        object.__setattr__(self, "ci_high", _clean_float(self.ci_high))
        object.__setattr__(self, "counts", dict(self.counts))

    @classmethod
    def undefined(
        cls, name: str, reason: str, *, status: MetricStatus = MetricStatus.INSUFFICIENT_DATA, **kw: Any
    ) -> Metric:
        return cls(name=name, value=None, status=status, reason=reason, **kw)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["status"] = self.status.value
        return d


@dataclass(frozen=True)
class Artifact:
    """A file a monitor wrote: path relative to the artifacts folder, its SHA-256 and media type."""

    name: str
    sha256: str
    media_type: str
    size: int
    description: str = ""


@dataclass(frozen=True)
class DataFingerprint:
    role: str  # "reference" | "current" | "background" | ...
    rows: int
    columns: tuple[tuple[str, str], ...]  # (name, dtype)
    digest: str  # sha256 of the canonical content

    def to_dict(self) -> dict:
        return {
            "role": self.role,
            "rows": self.rows,
            "columns": [list(c) for c in self.columns],
            "digest": self.digest,
        }


_MEDIA_TYPES = {
    ".html": "text/html",
    ".png": "image/png",
    ".csv": "text/csv",
    ".json": "application/json",
    ".md": "text/markdown",
    ".txt": "text/plain",
}


@dataclass(frozen=True)
class MonitorResult:
    kind: str
    monitor_version: str
    params: Mapping[str, Any]
    metrics: tuple[Metric, ...]
    status: MetricStatus = MetricStatus.OK
    reason: str | None = None
    artifacts: tuple[Artifact, ...] = ()
    fingerprints: tuple[DataFingerprint, ...] = ()
    seed: int | None = None
    library_versions: Mapping[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    contract_version: str = CONTRACT_VERSION

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", MetricStatus(self.status))
        object.__setattr__(self, "metrics", tuple(self.metrics))
        object.__setattr__(self, "artifacts", tuple(self.artifacts))
        object.__setattr__(self, "fingerprints", tuple(self.fingerprints))
        object.__setattr__(self, "notes", tuple(self.notes))
        if self.status is not MetricStatus.OK and not self.reason:
            raise ValueError("a non-ok result needs a reason")

    # -- lookup -------------------------------------------------------------------------------------
    def metric(self, name: str, *, feature: str | None = None, group: str | None = None) -> Metric:
        for m in self.metrics:
            if m.name == name and m.feature == feature and m.group == group:
                return m
        raise KeyError(f"no metric {name!r} (feature={feature!r}, group={group!r}) in {self.kind} result")

    def find(self, name: str) -> list[Metric]:
        return [m for m in self.metrics if m.name == name]

    def value(self, name: str, *, feature: str | None = None, group: str | None = None) -> float | None:
        return self.metric(name, feature=feature, group=group).value

    # -- serialisation ------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "contract_version": self.contract_version,
            "kind": self.kind,
            "monitor_version": self.monitor_version,
            "status": self.status.value,
            "reason": self.reason,
            "params": _jsonable(self.params),
            "seed": self.seed,
            "metrics": [_jsonable(m.to_dict()) for m in self.metrics],
            "artifacts": [asdict(a) for a in self.artifacts],
            "fingerprints": [f.to_dict() for f in self.fingerprints],
            "library_versions": dict(self.library_versions),
            "notes": list(self.notes),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_dict(cls, d: Mapping) -> MonitorResult:
        return cls(
            kind=d["kind"],
            monitor_version=d["monitor_version"],
            params=d.get("params", {}),
            metrics=tuple(Metric(**m) for m in d["metrics"]),
            status=d.get("status", "ok"),
            reason=d.get("reason"),
            artifacts=tuple(Artifact(**a) for a in d.get("artifacts", ())),
            fingerprints=tuple(
                DataFingerprint(f["role"], f["rows"], tuple(tuple(c) for c in f["columns"]), f["digest"])
                for f in d.get("fingerprints", ())
            ),
            seed=d.get("seed"),
            library_versions=d.get("library_versions", {}),
            notes=tuple(d.get("notes", ())),
            contract_version=d.get("contract_version", CONTRACT_VERSION),
        )

    @classmethod
    def from_json(cls, text: str) -> MonitorResult:
        return cls.from_dict(json.loads(text))

    def digest(self) -> str:
        return hashlib.sha256(self.to_json().encode()).hexdigest()


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return None if math.isnan(obj) else float(obj)
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, (np.ndarray,)):
        return [_jsonable(v) for v in obj.tolist()]
    return obj


def invalid_result(kind: str, version: str, params: Mapping, reason: str, **kw: Any) -> MonitorResult:
    """The whole run could not compute anything meaningful: say why, with no numbers."""
    return MonitorResult(
        kind=kind,
        monitor_version=version,
        params=params,
        metrics=(),
        status=MetricStatus.INVALID_INPUT,
        reason=reason,
        library_versions=library_versions(),
        **kw,
    )


# -- data loading, fingerprints, validation -------------------------------------------------------------


class DataInputError(ValueError):
    """Data cannot be read or does not match the spec. Monitors turn it into an ``invalid_input`` result."""


def load_frame(data: pd.DataFrame | str | Path, *, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """A pandas DataFrame, or a Parquet / CSV file path."""
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return data
    path = Path(data)
    if not path.exists():
        raise DataInputError(f"data file {path} does not exist")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq") or path.is_dir():
            return pd.read_parquet(path, columns=list(columns) if columns else None)
        if suffix in (".csv", ".txt"):
            return pd.read_csv(path, usecols=list(columns) if columns else None)
    except (ValueError, OSError) as exc:
        raise DataInputError(f"cannot read {path}: {str(exc).splitlines()[0]}") from exc
    raise DataInputError(f"data file {path} must be .parquet or .csv. Got {suffix or 'no suffix'} instead.")


def factorize_column(series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Codes (int64, −1 = missing, in order of first appearance) and the distinct values: the one
    factorization ``fingerprint`` hashes, so a monitor that factorizes a column anyway hands it over and the
    column is read once (``fingerprint(..., factorized=...)``)."""
    import pandas as pd

    codes, uniques = pd.factorize(series, sort=False, use_na_sentinel=True)
    return codes.astype(np.int64, copy=False), np.asarray(uniques, dtype=object)


def _narrow(codes: np.ndarray, n_values: int) -> np.ndarray:
    # The narrowest signed width that holds every code and −1: hashing 1 byte a row instead of 8.
    for dtype in (np.int8, np.int16, np.int32):
        if n_values < np.iinfo(dtype).max:
            return np.ascontiguousarray(codes, dtype=np.dtype(dtype).newbyteorder("<"))
    return np.ascontiguousarray(codes, dtype=np.dtype(np.int64).newbyteorder("<"))


def _values_digest(values: Any) -> bytes:
    import pandas as pd

    return pd.util.hash_pandas_object(pd.Series(values, dtype=object), index=False).to_numpy().tobytes()


def fingerprint(
    frame: pd.DataFrame,
    role: str,
    *,
    factorized: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
) -> DataFingerprint:
    """Row count, schema and a content digest that does not depend on the index.

    Numeric and boolean columns are hashed over their raw little-endian bytes; categorical columns over
    their codes and categories; object and string columns over the codes and distinct values of
    ``factorize_column`` (the codes in the narrowest width), which ``factorized`` may supply for columns the
    caller has factorized already (the same digest either way). Hashing each value with
    ``hash_pandas_object`` was most of a fairness run on string groups."""
    import pandas as pd

    factorized = factorized or {}
    h = hashlib.sha256()
    cols = []
    for col in frame.columns:
        series = frame[col]
        dtype = series.dtype
        cols.append((str(col), str(dtype)))
        h.update(str(col).encode() + b"\x00" + str(dtype).encode() + b"\x00")
        if isinstance(dtype, np.dtype) and dtype.kind in "biuf":
            values = np.ascontiguousarray(series.to_numpy())
            h.update(values.astype(values.dtype.newbyteorder("<"), copy=False))
        elif isinstance(dtype, pd.CategoricalDtype):
            cats = dtype.categories
            h.update(_values_digest(cats) + (b"ordered" if dtype.ordered else b"unordered"))
            h.update(_narrow(series.cat.codes.to_numpy(), len(cats)))
        elif pd.api.types.is_object_dtype(dtype) or isinstance(dtype, pd.StringDtype):
            codes, uniques = factorized[col] if col in factorized else factorize_column(series)
            h.update(_values_digest(uniques))
            h.update(_narrow(codes, len(uniques)))
        else:
            h.update(pd.util.hash_pandas_object(series, index=False).to_numpy())
    return DataFingerprint(role=role, rows=len(frame), columns=tuple(cols), digest=h.hexdigest())


def check_columns(frame: pd.DataFrame, required: Sequence[str], role: str) -> None:
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DataInputError(f"{role} data is missing column(s) {missing}; it has {list(frame.columns)[:20]}")


def numeric_values(series: pd.Series, name: str) -> np.ndarray:
    """Float values of a numeric column; strings in it are an input error, not a coercion."""
    import pandas as pd

    if pd.api.types.is_bool_dtype(series.dtype):
        return series.to_numpy(dtype=float)
    if not pd.api.types.is_numeric_dtype(series.dtype):
        coerced = pd.to_numeric(series, errors="coerce")
        bad = coerced.isna() & series.notna()
        if bad.any():
            example = series[bad].iloc[0]
            raise DataInputError(
                f"column {name} must be numeric. Got {int(bad.sum())} non-numeric value(s), e.g. {example!r}, instead."
            )
        series = coerced
    return series.to_numpy(dtype=float, na_value=np.nan)


def is_int(v: Any) -> bool:
    """An integer parameter (bools excluded: ``True`` is not a bin count)."""
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def is_probability(v: Any) -> bool:
    return (
        isinstance(v, (int, float, np.floating, np.integer)) and not isinstance(v, bool) and 0.0 <= v <= 1.0
    )


def library_versions(*names: str) -> dict[str, str]:
    return dict(_library_versions(tuple(names)))


@functools.cache
def _library_versions(names: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    # importlib.metadata scans site-packages on every call (40-70 ms); versions do not change in a process.
    from importlib import metadata

    out = []
    for name in ("numpy", "pandas", "scipy", *names):
        try:
            out.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            continue
    return tuple(out)


def write_artifact(
    folder: str | Path | None, name: str, content: bytes, description: str = ""
) -> Artifact | None:
    """Write ``content`` under ``folder/name`` and return its record; no folder means no artifact."""
    if folder is None:
        return None
    path = Path(folder) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    media = _MEDIA_TYPES.get(path.suffix.lower(), "application/octet-stream")
    return Artifact(
        name=name,
        sha256=hashlib.sha256(content).hexdigest(),
        media_type=media,
        size=len(content),
        description=description,
    )


# -- models ----------------------------------------------------------------------------------------------


class ModelError(RuntimeError):
    """A model could not be loaded or failed to predict."""


def check_model(model: Any) -> Any:
    """The model object itself once it can score: monitors take loaded models (the caller loads URIs)."""
    if isinstance(model, (str, Path)):
        raise ModelError(
            f"cannot load model {model}: monitors take a loaded model object, not a path or URI (load it first)"
        )
    if not (hasattr(model, "predict") or hasattr(model, "predict_proba")):
        raise ModelError(f"model must have predict or predict_proba. Got {type(model).__name__} instead.")
    return model


def predict_scores(model: Any, X: pd.DataFrame) -> np.ndarray:
    """Probability of the positive class where the model gives one, else its prediction, as floats."""
    import pandas as pd

    try:
        if hasattr(model, "predict_proba"):
            proba = np.asarray(model.predict_proba(X))
            out = proba[:, -1] if proba.ndim == 2 else proba
        else:
            pred = model.predict(X)
            if isinstance(pred, pd.DataFrame):
                pred = pred.iloc[:, -1]
            out = np.asarray(pred)
            if out.ndim == 2:
                out = out[:, -1]
        return out.astype(float)
    except Exception as exc:
        raise ModelError(
            f"model failed to predict: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        ) from exc


# -- reference profiles ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReferenceProfile:
    """Sufficient statistics of a reference data set for one monitor kind (bins and counts), saved as JSON
    so that monitoring a deployed model does not need the raw training data again."""

    kind: str
    monitor_version: str
    spec: ColumnSpec
    payload: Mapping[str, Any]
    fingerprint: DataFingerprint

    def to_json(self) -> str:
        return json.dumps(
            {
                "kind": self.kind,
                "monitor_version": self.monitor_version,
                "spec": self.spec.to_dict(),
                "payload": _jsonable(self.payload),
                "fingerprint": self.fingerprint.to_dict(),
            },
            sort_keys=True,
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, text: str) -> ReferenceProfile:
        d = json.loads(text)
        f = d["fingerprint"]
        return cls(
            kind=d["kind"],
            monitor_version=d["monitor_version"],
            spec=ColumnSpec.from_dict(d["spec"]),
            payload=d["payload"],
            fingerprint=DataFingerprint(
                f["role"], f["rows"], tuple(tuple(c) for c in f["columns"]), f["digest"]
            ),
        )

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(self.to_json(), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> ReferenceProfile:
        return cls.from_json(Path(path).read_text(encoding="utf-8"))


# -- the monitor interface and registry ---------------------------------------------------------------


@dataclass(frozen=True)
class ParamSpec:
    """One allowed parameter, declared as data and validated once at the boundary."""

    name: str
    default: Any
    check: str  # human text of the constraint, used in messages: "a float in (0, 1)"
    validate: Any = None  # callable(value) -> bool


class Monitor:
    """Base class. Subclasses set ``kind``, ``version``, ``params``, ``metrics``, ``needs`` and implement
    ``run``.

    ``metrics`` names every metric the monitor may emit (the policy loader accepts exactly these for its
    kind); ``needs`` says which inputs beyond the current data the runner hands it, a subset of ``NEEDS``:
    ``model`` (required: without one the run is ``invalid_input``), ``reference`` (reference data, when
    given), ``profile`` (a stored reference profile, when there is no reference data; a monitor that needs
    both ``reference`` and ``profile`` cannot run with neither) and ``baseline`` (the stored result of the
    same kind from the validation run, passed as ``baseline=``). These are class data so that reading them
    imports no heavy library."""

    kind: ClassVar[str] = ""
    version: ClassVar[str] = "1"
    metrics: ClassVar[tuple[str, ...]] = ()
    needs: ClassVar[frozenset[str]] = frozenset()
    params: ClassVar[tuple[ParamSpec, ...]] = ()

    @classmethod
    def validate_params(cls, given: Mapping[str, Any] | None) -> dict[str, Any]:
        given = dict(given or {})
        known = {p.name: p for p in cls.params}
        unknown = sorted(set(given) - set(known))
        if unknown:
            raise ParameterError(
                f"{cls.kind} parameters must be among {sorted(known)}. Got unknown {unknown} instead."
            )
        out = {}
        for name, p in known.items():
            value = given.get(name, p.default)
            if p.validate is not None and not p.validate(value):
                raise ParameterError(f"{name} must be {p.check}. Got {value!r} instead.")
            out[name] = value
        return out

    def run(self, spec: ColumnSpec, **kwargs: Any) -> MonitorResult:  # pragma: no cover - interface
        raise NotImplementedError


#: What a monitor may declare in ``needs``.
NEEDS: frozenset[str] = frozenset({"model", "reference", "profile", "baseline"})

ENTRY_POINT_GROUP = "modelreg.monitors"

# First-party monitors; they are also registered as entry points by this distribution (same targets).
_BUILTIN = {
    "drift": "monitors.drift:DriftMonitor",
    "fairness": "monitors.fairness:FairnessMonitor",
    "explainability": "monitors.explainability:ExplainabilityMonitor",
    "performance": "monitors.performance:PerformanceMonitor",
    "robustness": "monitors.robustness:RobustnessMonitor",
    "data_quality": "monitors.data_quality:DataQualityMonitor",
    "segments": "monitors.segments:SegmentMonitor",
    "stability": "monitors.bands:StabilityMonitor",
    "challenger": "monitors.challenger:ChallengerMonitor",
    "estimated_performance": "monitors.estimated_performance:EstimatedPerformanceMonitor",
}


class MonitorPluginError(ValueError):
    """A monitor registered through the entry point is unusable (shadows a built-in kind, cannot be
    imported, or declares its kind, metrics or needs wrongly)."""


def _import_target(name: str, target: str) -> type[Monitor]:
    module, _, attr = target.partition(":")
    try:
        obj = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except Exception as exc:
        raise MonitorPluginError(
            f"monitor entry point {name} = {target} cannot be loaded: {type(exc).__name__}: {exc}"
        ) from exc
    if not (isinstance(obj, type) and issubclass(obj, Monitor)):
        raise MonitorPluginError(
            f"monitor entry point {name} must name a subclass of monitors.Monitor. Got {obj!r} instead."
        )
    return obj


def check_declaration(cls: type[Monitor], name: str | None = None) -> None:
    """Raise ``MonitorPluginError`` unless ``cls`` declares kind, version, metrics and needs as the
    contract says (``name``: the entry point it was registered under, which must be its kind)."""
    where = f"monitor {cls.__module__}.{cls.__qualname__}"
    if not isinstance(cls.kind, str) or not cls.kind:
        raise MonitorPluginError(f"{where}: kind must be a non-empty string. Got {cls.kind!r} instead.")
    if name is not None and cls.kind != name:
        raise MonitorPluginError(
            f"{where}: kind must equal its entry point name {name!r}. Got {cls.kind!r} instead."
        )
    if not isinstance(cls.version, str) or not cls.version:
        raise MonitorPluginError(f"{where}: version must be a non-empty string. Got {cls.version!r} instead.")
    metrics = cls.metrics
    if (
        not isinstance(metrics, tuple)
        or not metrics
        or not all(isinstance(m, str) and m for m in metrics)
        or len(set(metrics)) != len(metrics)
    ):
        raise MonitorPluginError(
            f"{where}: metrics must be a non-empty tuple of distinct metric names. Got {metrics!r} instead."
        )
    needs = cls.needs
    if not isinstance(needs, frozenset) or not needs <= NEEDS:
        raise MonitorPluginError(
            f"{where}: needs must be a frozenset drawn from {sorted(NEEDS)}. Got {needs!r} instead."
        )


def discover(entry_points: Iterable[tuple[str, str]]) -> dict[str, type[Monitor]]:
    """The monitor classes by kind: the built-ins plus ``entry_points`` ((name, "module:Class") pairs).

    An entry point may not take a built-in kind's name for another class: a bank's ``drift`` that silently
    replaced the validated one would change what every policy's drift controls mean."""
    targets = dict(_BUILTIN)
    for name, target in entry_points:
        if name in _BUILTIN and target != _BUILTIN[name]:
            raise MonitorPluginError(
                f"monitor entry point {name} = {target} shadows the built-in {name} monitor "
                f"({_BUILTIN[name]}); register it under a kind of its own"
            )
        if name in targets and targets[name] != target:
            raise MonitorPluginError(
                f"monitor kind {name} is registered twice: {targets[name]} and {target}; keep one"
            )
        targets[name] = target
    classes = {}
    for name, target in targets.items():
        cls = _import_target(name, target)
        check_declaration(cls, name)
        classes[name] = cls
    return classes


@functools.cache
def _installed() -> dict[str, type[Monitor]]:
    from importlib import metadata

    return discover((ep.name, ep.value) for ep in metadata.entry_points(group=ENTRY_POINT_GROUP))


def monitor_classes() -> dict[str, type[Monitor]]:
    """Every installed monitor class by kind (read once per process; importing them loads no heavy
    library, see ``tests/core/test_imports.py``)."""
    return dict(_installed())


def monitor_kinds() -> list[str]:
    return sorted(_installed())


def known_metrics() -> dict[str, frozenset[str]]:
    """The metric names each installed monitor kind declares."""
    return {kind: frozenset(cls.metrics) for kind, cls in sorted(_installed().items())}


def monitor_class(kind: str) -> type[Monitor]:
    cls = _installed().get(kind)
    if cls is None:
        raise ParameterError(f"monitor kind must be one of {monitor_kinds()}. Got {kind!r} instead.")
    return cls


def get_monitor(kind: str) -> Monitor:
    """An instance of the monitor registered under ``kind`` (first-party ones register like a bank's own)."""
    return monitor_class(kind)()


__all__ = [name for name in dir() if not name.startswith("_")] + ["fields", "replace"]
