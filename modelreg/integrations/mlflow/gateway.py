"""The only module of modelreg that talks to MLflow.

MLflow is imported lazily inside the gateway, so importing this module (or any other modelreg module)
costs nothing; the CLI imports it only for commands that need MLflow.

What this module guarantees:

* Every MLflow exception is turned into :class:`~modelreg.errors.NotFound`,
  :class:`~modelreg.errors.BadInput` or :class:`~modelreg.errors.MlflowError` with a one-line message
  (what was expected, what was received, what to do). The original exception stays chained as
  ``__cause__`` for ``--debug``.
* A tracking server that is down fails in seconds: MLflow's HTTP client retries for minutes by default.
  MLflow reads its HTTP limits from ``MLFLOW_HTTP_REQUEST_MAX_RETRIES`` / ``MLFLOW_HTTP_REQUEST_TIMEOUT``
  at call time and offers no per-client setting, so for HTTP(S) tracking URIs the gateway sets those two
  variables for the duration of each call only, under a process-wide lock, and restores them afterwards
  (HTTP calls through two gateways are serialised rather than interleaved, so neither sees the other's
  limits). Besides that, the only process-wide effect is ``MLFLOW_DISABLE_TELEMETRY=true`` (setdefault)
  before MLflow's first import, as the project requires.
* URIs are always passed explicitly (``MlflowClient(tracking_uri=..., registry_uri=...)``, artifact
  repositories built with the tracking URI), never through ``mlflow.set_tracking_uri``, so two gateways
  with different stores do not leak into each other. Several MLflow 3 code paths silently use the
  *global* URIs instead, so the gateway steers around them: it resolves ``models:/`` and ``runs:/``
  URIs itself, lists run artifacts through the artifact repository rather than
  ``MlflowClient.list_artifacts``, and registers a logged model by its artifact location rather than
  ``models:/<model_id>`` (MLflow's SQL registry store resolves the latter with a global client).
* For local stores (SQLite, PostgreSQL, ``file:``) experiments the gateway creates put their artifacts
  under ``artifact_root`` (``MLFLOW_ARTIFACT_ROOT``); MLflow itself would use ``./mlruns`` of whatever
  folder the process runs in. A tracking server decides for itself.
* No function except :meth:`MlflowGateway.load_pyfunc` deserialises a model: ``version_info`` reads only
  the ``MLmodel`` YAML, ``requirements.txt`` and file bytes (for the digest).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import shutil
import tempfile
import threading
import urllib.error
import urllib.parse
import urllib.request
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, TypeVar

from modelreg import clock
from modelreg.errors import BadInput, MlflowError, ModelregError, NotFound

if TYPE_CHECKING:  # pragma: no cover - typing only
    from mlflow.entities import Run
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.tracking import MlflowClient

    from modelreg.settings import Settings

__all__ = [
    "DOWNLOAD_NOTE_FILE",
    "STAGE_TAG",
    "MlflowGateway",
    "MlflowVersionInfo",
    "artifact_digest",
    "sanitize_key",
]

T = TypeVar("T")

#: Model-version tag that mirrors the registry's stage (a projection; the registry is the source of truth).
STAGE_TAG = "modelreg.stage"
#: Run tags every evaluation run carries, linking it to the model version it judged.
MODEL_TAG = "modelreg.model"
VERSION_TAG = "modelreg.version"
MODEL_URI_TAG = "modelreg.model_uri"
#: Run tag MLflow writes for every log_model call: a large JSON blob of no audit value beyond the model
#: itself, which version_info already describes.
_NOISY_RUN_TAGS = frozenset({"mlflow.log-model.history"})

_NOT_FOUND_CODES = frozenset({"RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"})
_BAD_INPUT_CODES = frozenset(
    {"INVALID_PARAMETER_VALUE", "BAD_REQUEST", "RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS", "INVALID_STATE"}
)
_AUTH_CODES = frozenset({"PERMISSION_DENIED", "UNAUTHENTICATED", "CUSTOMER_UNAUTHORIZED"})

# MLflow's own limits (mlflow.utils.validation), checked here so the message names our argument.
_MAX_KEY_LENGTH = 250
_MAX_PARAM_VALUE_LENGTH = 6000
_MAX_TAG_VALUE_LENGTH = 8000
_KEY_ALLOWED = re.compile(r"[^/\w.\- :]")

_HTTP_ENV_LOCK = threading.RLock()
_LOCAL_STORE_SCHEMES = frozenset({"", "file", "sqlite", "postgresql", "mysql", "mssql"})


# --------------------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class MlflowVersionInfo:
    """What MLflow knows about one model version, captured when modelreg registers it."""

    name: str
    version: str
    run_id: str | None
    source: str
    model_uri: str
    artifact_digest: str | None
    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]
    signature: dict | None
    pip_requirements: list[str]
    flavors: list[str]
    datasets: list[dict]
    created_at: str | None
    experiment_id: str | None
    #: Tags on the model version itself (``tags`` holds the run's tags).
    version_tags: dict[str, str] = field(default_factory=dict)
    #: MLflow 3 logged-model id (``m-...``) when the version was registered from a logged model.
    model_id: str | None = None
    #: Where the artifacts actually live (``file://...``, ``mlflow-artifacts:/...``, ``s3://...``).
    storage_location: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


# ------------------------------------------------------------------------------------ pure helpers


#: File MLflow's client writes into every ``models:/...`` download (name and version of the download
#: request). It is not stored with the model, so the digest leaves it out: the digest is the same
#: whether an auditor downloads ``models:/name/3``, ``models:/m-...`` or the raw artifact location.
DOWNLOAD_NOTE_FILE = "registered_model_meta"


def artifact_digest(folder: Path) -> str:
    """SHA-256 over a model folder: the ``sha256sum`` listing of every file, sorted by relative path.

    The top-level ``registered_model_meta`` written by MLflow downloads is left out. Byte-for-byte the
    same as, in the folder::

        find . -type f ! -path ./registered_model_meta -printf '%P\\n' | LC_ALL=C sort \\
            | xargs -d '\\n' sha256sum | sha256sum

    so an auditor can recompute it with coreutils alone.
    """
    folder = Path(folder)
    files = sorted(
        (p.relative_to(folder).as_posix().encode("utf-8"), p)
        for p in folder.rglob("*")
        if p.is_file() and p.relative_to(folder).as_posix() != DOWNLOAD_NOTE_FILE
    )
    listing = hashlib.sha256()
    for rel, path in files:
        file_hash = hashlib.sha256()
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                file_hash.update(chunk)
        listing.update(file_hash.hexdigest().encode("ascii") + b"  " + rel + b"\n")
    return listing.hexdigest()


def sanitize_key(key: str) -> str:
    """Map a metric/param/tag key onto MLflow's allowed names (alphanumerics incl. CJK, ``_ - . / : space``).

    Disallowed characters become ``_``; path-like oddities MLflow refuses (``a//b``, ``./a``, ``a/``,
    ``..``) are normalised; keys longer than MLflow's 250 characters are cut and suffixed with a hash
    of the original so two long keys stay distinct.
    """
    text = _KEY_ALLOWED.sub("_", str(key))
    parts = [p for p in text.split("/") if p not in ("", ".")]
    parts = ["__" if p == ".." else p for p in parts]
    text = "/".join(parts) or "_"
    if len(text) > _MAX_KEY_LENGTH:
        text = text[: _MAX_KEY_LENGTH - 9] + "_" + _short_hash(str(key))
    return text


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _redact(uri: str) -> str:
    """Drop a password from a URI before it goes into a message."""
    parsed = urllib.parse.urlsplit(uri)
    if parsed.password:
        netloc = f"{parsed.username}:***@{parsed.hostname}" + (f":{parsed.port}" if parsed.port else "")
        return urllib.parse.urlunsplit(parsed._replace(netloc=netloc))
    return uri


def _scheme(uri: str) -> str:
    return urllib.parse.urlsplit(uri).scheme.split("+", 1)[0].lower()


def _is_http(uri: str) -> bool:
    return _scheme(uri) in ("http", "https")


def _sqlite_file(uri: str) -> Path | None:
    prefix = "sqlite:///"
    if uri.startswith(prefix):
        rest = uri[len(prefix) :].split("?", 1)[0]
        if rest and rest != ":memory:":
            return Path(rest)
    return None


def _local_path(uri: str) -> Path | None:
    """The local folder behind a ``file:`` URI or plain path, else None."""
    scheme = _scheme(uri)
    if scheme == "file":
        return Path(urllib.request.url2pathname(urllib.parse.urlsplit(uri).path))
    if scheme == "" or (len(scheme) == 1 and os.name == "nt"):
        return Path(uri)
    return None


def _check_text(value: object, what: str) -> str:
    if not isinstance(value, str) or not value.strip() or "\n" in value or "\r" in value:
        raise BadInput(f"{what} must be a non-empty single-line string. Got {value!r} instead.")
    return value


def _check_version(version: object) -> str:
    text = str(version).strip() if isinstance(version, (str, int)) and not isinstance(version, bool) else ""
    if not text.isdigit() or int(text) < 1:
        raise BadInput(f"MLflow model version must be a positive integer such as 3. Got {version!r} instead.")
    return str(int(text))


def _check_artifact_path(artifact_path: object) -> str:
    if not isinstance(artifact_path, str) or not artifact_path.strip():
        raise BadInput(
            f"artifact path must be a non-empty path inside the run, such as 'model'. Got {artifact_path!r} instead."
        )
    raw = artifact_path.strip()
    posix = PurePosixPath(raw.replace("\\", "/"))
    if posix.is_absolute() or re.match(r"^[A-Za-z]:", raw) or "://" in raw:
        raise BadInput(
            f"artifact path must be relative to the run's artifact root, such as 'model'. Got {artifact_path!r} "
            "(absolute) instead."
        )
    if any(part == ".." for part in posix.parts):
        raise BadInput(
            f"artifact path must stay inside the run's artifacts, such as 'model'. Got {artifact_path!r} "
            "(contains '..') instead."
        )
    parts = [p for p in posix.parts if p != "."]
    if not parts:
        raise BadInput(
            f"artifact path must name a folder inside the run, such as 'model'. Got {artifact_path!r}."
        )
    return "/".join(parts)


def _ms_to_iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return clock.isoformat(datetime.fromtimestamp(ms / 1000, UTC))


def _read_requirements(path: Path) -> list[str]:
    if not path.is_file():
        return []
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def _error_code(exc: BaseException) -> str | None:
    code = getattr(exc, "error_code", None)
    return str(code) if code is not None else None


def _unreachable_reason(exc: BaseException) -> str | None:
    """The connection failure behind an exception (also through MLflow's wrapping), or None."""
    import requests

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(
            current, (requests.ConnectionError, requests.Timeout, urllib.error.URLError, TimeoutError)
        ):
            return _connection_reason(str(current))
        current = current.__cause__ or current.__context__
    text = str(exc)
    if "API request to" in text and re.search(
        r"Connection refused|Max retries exceeded|timed out|Failed to establish|Name or service not known|"
        r"Connection reset|RemoteDisconnected",
        text,
    ):
        return _connection_reason(text)
    return None


def _connection_reason(text: str) -> str:
    match = re.search(r"\[Errno -?\d+\] [^'\")\]]+", text)
    if match:
        return match.group(0).strip()
    if "timed out" in text.lower() or "timeout" in text.lower():
        return "the request timed out"
    return _one_line(text, 160)


def _import_mlflow() -> None:
    # Project rule: MLflow must not write telemetry; set before the first import reads it.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    try:
        import mlflow  # noqa: F401
    except ImportError as exc:  # pragma: no cover - mlflow is a core dependency
        raise MlflowError(f"mlflow is not importable ({exc}). Install it: pip install mlflow") from exc


# ----------------------------------------------------------------------------------------- gateway


class MlflowGateway:
    """Read MLflow runs and model versions; mirror modelreg's state as model-version tags and aliases."""

    def __init__(
        self,
        tracking_uri: str,
        registry_uri: str | None = None,
        *,
        artifact_root: Path | None = None,
        timeout_s: float = 10,
        max_retries: int = 0,
    ) -> None:
        self.tracking_uri = _check_text(tracking_uri, "MLflow tracking URI")
        self.registry_uri = _check_text(registry_uri, "MLflow registry URI") if registry_uri else tracking_uri
        self.artifact_root = Path(artifact_root).resolve() if artifact_root is not None else None
        if not (isinstance(timeout_s, (int, float)) and math.isfinite(timeout_s) and timeout_s > 0):
            raise BadInput(f"timeout_s must be a positive number of seconds. Got {timeout_s!r} instead.")
        if not isinstance(max_retries, int) or max_retries < 0:
            raise BadInput(f"max_retries must be an integer >= 0. Got {max_retries!r} instead.")
        self.timeout_s = float(timeout_s)
        self.max_retries = max_retries
        self._client_obj: MlflowClient | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> MlflowGateway:
        return cls(
            settings.mlflow_tracking_uri,
            settings.mlflow_registry_uri,
            artifact_root=settings.mlflow_artifact_root,
        )

    def __repr__(self) -> str:
        return f"MlflowGateway(tracking_uri={_redact(self.tracking_uri)!r}, registry_uri={_redact(self.registry_uri)!r})"

    # ------------------------------------------------------------------------------- plumbing

    @property
    def _where(self) -> str:
        return _redact(self.tracking_uri)

    @property
    def _client(self) -> MlflowClient:
        if self._client_obj is None:
            _import_mlflow()
            from mlflow.tracking import MlflowClient

            # A fresh checkout must work with no setup: the embedded SQLite store's folder may not exist.
            for uri in {self.tracking_uri, self.registry_uri}:
                db_file = _sqlite_file(uri)
                if db_file is not None:
                    db_file.parent.mkdir(parents=True, exist_ok=True)
            self._client_obj = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.registry_uri)
        return self._client_obj

    @contextlib.contextmanager
    def _http_limits(self) -> Iterator[None]:
        if not (_is_http(self.tracking_uri) or _is_http(self.registry_uri)):
            yield
            return
        limits = {
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(self.max_retries),
            "MLFLOW_HTTP_REQUEST_TIMEOUT": str(max(1, math.ceil(self.timeout_s))),
        }
        from modelreg.settings import environ_overrides

        with _HTTP_ENV_LOCK, environ_overrides(limits):
            yield

    @contextlib.contextmanager
    def _calling(self, action: str) -> Iterator[None]:
        """Run MLflow calls with fail-fast HTTP limits; translate whatever escapes into one line."""
        with self._http_limits():
            try:
                yield
            except ModelregError:
                raise
            except Exception as exc:
                raise self._translate(exc, action) from exc

    def _translate(self, exc: BaseException, action: str) -> ModelregError:
        reason = _unreachable_reason(exc)
        if reason is not None:
            return MlflowError(
                f"MLflow tracking server at {self._where} is unreachable: {reason} (while {action}). "
                "Start the server or point MLFLOW_TRACKING_URI at a running one."
            )
        code = _error_code(exc)
        message = _one_line(getattr(exc, "message", None) or str(exc) or type(exc).__name__)
        if code in _NOT_FOUND_CODES:
            return NotFound(f"MLflow at {self._where} has no such object ({action}): {message}")
        if code in _BAD_INPUT_CODES:
            return BadInput(f"MLflow at {self._where} refused the request ({action}): {message}")
        if code in _AUTH_CODES:
            return MlflowError(
                f"MLflow at {self._where} refused access ({action}): {message}. "
                "Check MLFLOW_TRACKING_USERNAME/PASSWORD or MLFLOW_TRACKING_TOKEN."
            )
        return MlflowError(
            f"MLflow at {self._where} failed ({action}): {type(exc).__name__}: {message}. "
            "Check the MLflow store and retry."
        )

    @staticmethod
    def _lookup(fn: Callable[[], T], not_found: str) -> T:
        """Call ``fn``; MLflow's "does not exist" becomes ``NotFound(not_found)``."""
        try:
            return fn()
        except Exception as exc:
            if _error_code(exc) in _NOT_FOUND_CODES:
                raise NotFound(not_found) from exc
            raise

    def _registered_model(self, name: str) -> Any:
        return self._lookup(
            lambda: self._client.get_registered_model(name),
            f"MLflow at {self._where} has no registered model {name!r}. "
            "Log and register it in MLflow first (mlflow.<flavor>.log_model(..., registered_model_name=...)).",
        )

    def _model_version(self, name: str, version: str) -> ModelVersion:
        try:
            return self._client.get_model_version(name, version)
        except Exception as exc:
            if _error_code(exc) not in _NOT_FOUND_CODES:
                raise
            # Raises the "no registered model" message when the model itself is missing.
            model = self._registered_model(name)
            latest = max((int(v.version) for v in (model.latest_versions or [])), default=None)
            hint = f"its latest version is {latest}" if latest else "it has no versions yet"
            raise NotFound(
                f"MLflow at {self._where} has no registered model {name!r} version {version}: {hint}. "
                "Check the version number."
            ) from exc

    def _run(self, run_id: str) -> Run:
        return self._lookup(
            lambda: self._client.get_run(run_id),
            f"MLflow at {self._where} has no run {run_id!r}. Check the run id (mlflow.active_run().info.run_id).",
        )

    def _artifact_repo(self, uri: str) -> Any:
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        return get_artifact_repository(uri, tracking_uri=self.tracking_uri, registry_uri=self.registry_uri)

    @contextlib.contextmanager
    def _local_copy(self, uri: str) -> Iterator[Path]:
        """A local folder holding the artifacts at ``uri``: the folder itself for local stores."""
        local = _local_path(uri)
        if local is not None:
            if not local.is_dir():
                raise MlflowError(
                    f"MLflow model artifacts at {uri} are missing: expected a folder, found nothing. "
                    "The artifact store was moved or cleaned; restore it or re-log the model."
                )
            yield local
            return
        tmp = Path(tempfile.mkdtemp(prefix="modelreg-mlflow-"))
        try:
            self._artifact_repo(uri).download_artifacts("", dst_path=str(tmp))
            yield tmp
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _model_source_in_run(self, run: Run, path: str) -> tuple[str, str | None]:
        """Where the model logged at ``path`` in ``run`` lives: (source URI, logged-model id or None)."""
        run_id = run.info.run_id
        # MLflow 2 style: the model folder is inside the run's own artifacts. (Not client.list_artifacts:
        # in MLflow 3 it also looks into logged models through the *global* tracking URI.)
        run_repo = self._artifact_repo(run.info.artifact_uri)
        entries = run_repo.list_artifacts(path)
        if any(PurePosixPath(e.path).name == "MLmodel" and not e.is_dir for e in entries):
            return f"{run.info.artifact_uri.rstrip('/')}/{path}", None
        # MLflow 3 style: log_model(name=...) creates a LoggedModel linked to the run.
        candidates = [m for m in self._logged_models_of_run(run) if m.name == path]
        if candidates:
            steps = {o.model_id: o.step for o in (run.outputs.model_outputs if run.outputs else [])}
            chosen = max(candidates, key=lambda m: (steps.get(m.model_id, -1), m.creation_timestamp or 0))
            files = self._client.list_logged_model_artifacts(chosen.model_id)
            if any(PurePosixPath(f.path).name == "MLmodel" for f in files):
                # The artifact location, not "models:/<model_id>": MLflow's SQL registry store resolves
                # a models:/ source through the *global* tracking URI, which may be another store.
                return chosen.artifact_location, chosen.model_id
        available = sorted(
            {m.name for m in self._logged_models_of_run(run)}
            | {e.path for e in run_repo.list_artifacts() if e.is_dir}
        )
        raise BadInput(
            f"MLflow run {run_id} has no MLflow model at artifact path {path!r}; "
            f"found: {', '.join(repr(a) for a in available) or 'nothing'}. "
            "Pass the name given to log_model(name=...) as the artifact path."
        )

    def _logged_models_of_run(self, run: Run) -> list[Any]:
        models: list[Any] = []
        token = None
        while True:
            page = self._client.search_logged_models(
                experiment_ids=[run.info.experiment_id],
                filter_string=f"source_run_id = '{run.info.run_id}'",
                page_token=token,
            )
            models.extend(m for m in page if m.source_run_id == run.info.run_id)
            token = page.token
            if not token:
                return models

    def _resolve_model_uri(self, model_uri: str) -> str:
        """The artifact location behind a model URI, resolved with this gateway's stores."""
        uri = model_uri.strip()
        if uri.startswith("models:"):
            rest = uri[len("models:") :].lstrip("/")
            if match := re.fullmatch(r"(m-[0-9a-f]+)", rest):
                model_id = match.group(1)
                logged = self._lookup(
                    lambda: self._client.get_logged_model(model_id),
                    f"MLflow at {self._where} has no logged model {model_id!r}. Check the model URI {model_uri!r}.",
                )
                return logged.artifact_location
            if match := re.fullmatch(r"([^/@]+)@([\w\-]+)", rest):
                name, alias = match.groups()
                version = self._alias_version(name, alias)
                if version is None:
                    raise NotFound(
                        f"MLflow registered model {name!r} has no alias {alias!r}. "
                        "Deploy a version first, or use models:/<name>/<version>."
                    )
                return self._version_location(name, version)
            if match := re.fullmatch(r"([^/@]+)/(\d+)", rest):
                name, version = match.groups()
                self._model_version(name, version)
                return self._version_location(name, version)
            raise BadInput(
                "model URI must be models:/<name>/<version>, models:/<name>@<alias> or models:/<model_id>. "
                f"Got {model_uri!r} instead (MLflow stages are not supported; use a version or an alias)."
            )
        if uri.startswith("runs:"):
            match = re.fullmatch(r"runs:/+([^/]+)/(.+)", uri)
            if not match:
                raise BadInput(
                    f"model URI must be runs:/<run_id>/<artifact path>. Got {model_uri!r} instead."
                )
            run_id, path = match.group(1), _check_artifact_path(match.group(2))
            source, _ = self._model_source_in_run(self._run(run_id), path)
            return source
        return uri

    def _version_location(self, name: str, version: str) -> str:
        location = self._client.get_model_version_download_uri(name, version)
        if _scheme(location) in ("models", "runs"):  # MLflow could not resolve it at registration time
            location = self._resolve_model_uri(location)
        return location

    def _alias_version(self, name: str, alias: str) -> str | None:
        aliases = dict(self._registered_model(name).aliases or {})
        version = aliases.get(alias)
        return str(version) if version is not None else None

    def _collect_info(self, mv: ModelVersion, *, with_artifacts: bool) -> MlflowVersionInfo:
        name, version = mv.name, str(mv.version)
        run = None
        if mv.run_id:
            run = self._lookup(
                lambda: self._client.get_run(mv.run_id),
                f"MLflow model {name!r} version {version} points at run {mv.run_id}, which no longer exists. "
                "Restore the run or register a version whose run is kept.",
            )
        model_id = getattr(mv, "model_id", None)
        if not model_id and (m := re.fullmatch(r"models:/(m-[0-9a-f]+)", mv.source or "")):
            model_id = m.group(1)
        location = self._version_location(name, version)
        if not model_id and run is not None:
            # MLflow's SQL registry does not keep model_id; find the run's logged model stored there.
            model_id = next(
                (m.model_id for m in self._logged_models_of_run(run) if m.artifact_location == location), None
            )
        digest: str | None = None
        signature: dict | None = None
        requirements: list[str] = []
        flavors: list[str] = []
        if with_artifacts:
            with self._local_copy(location) as folder:
                digest = artifact_digest(folder)
                if not any(folder.rglob("*")):
                    raise MlflowError(
                        f"MLflow model {name!r} version {version} has no artifact files at {location}. "
                        "Re-log the model."
                    )
                signature, flavors = self._read_mlmodel(folder / "MLmodel")
                requirements = _read_requirements(folder / "requirements.txt")
        datasets: list[dict] = []
        if run is not None and run.inputs is not None:
            for ds_input in run.inputs.dataset_inputs or []:
                ds = ds_input.dataset
                context = next((t.value for t in ds_input.tags or [] if t.key == "mlflow.data.context"), None)
                try:
                    profile = json.loads(ds.profile) if ds.profile else None
                except ValueError:
                    profile = ds.profile
                datasets.append(
                    {
                        "name": ds.name,
                        "digest": ds.digest,
                        "source": ds.source,
                        "source_type": ds.source_type,
                        "context": context,
                        "profile": profile,
                    }
                )
        return MlflowVersionInfo(
            name=name,
            version=version,
            run_id=mv.run_id or None,
            source=mv.source,
            model_uri=f"models:/{name}/{version}",
            artifact_digest=digest,
            params=dict(run.data.params) if run else {},
            metrics={k: float(v) for k, v in run.data.metrics.items()} if run else {},
            tags={k: v for k, v in run.data.tags.items() if k not in _NOISY_RUN_TAGS} if run else {},
            signature=signature,
            pip_requirements=requirements,
            flavors=flavors,
            datasets=datasets,
            created_at=_ms_to_iso(mv.creation_timestamp),
            experiment_id=run.info.experiment_id if run else None,
            version_tags=dict(mv.tags or {}),
            model_id=model_id,
            storage_location=location,
        )

    @staticmethod
    def _read_mlmodel(path: Path) -> tuple[dict | None, list[str]]:
        if not path.is_file():
            return None, []
        from mlflow.models import Model  # parses YAML only; no model code is loaded

        model = Model.load(str(path))
        signature = None
        if model.signature is not None:
            signature = {}
            for key, value in model.signature.to_dict().items():
                if isinstance(value, str):
                    with contextlib.suppress(ValueError):
                        value = json.loads(value)
                signature[key] = value
        return signature, sorted(model.flavors)

    # ------------------------------------------------------------------------------- public API

    def ping(self) -> None:
        """Fail fast, with one line, when the tracking store cannot be reached."""
        if _is_http(self.tracking_uri):
            url = self.tracking_uri.rstrip("/") + "/health"
            try:
                with urllib.request.urlopen(url, timeout=min(self.timeout_s, 5.0)) as response:
                    status = response.status
            except urllib.error.HTTPError as exc:
                status = exc.code
            except (urllib.error.URLError, OSError, ValueError) as exc:
                reason = getattr(exc, "reason", exc)
                raise MlflowError(
                    f"MLflow tracking server at {self._where} is unreachable: {_connection_reason(str(reason))}. "
                    "Start the server or point MLFLOW_TRACKING_URI at a running one."
                ) from exc
            if status != 200:
                raise MlflowError(
                    f"MLflow tracking server at {self._where} is unhealthy: GET /health answered HTTP {status}, "
                    "expected 200. Check the server's log."
                )
            return
        with self._calling("opening the tracking store"):
            self._client.search_experiments(max_results=1)

    def version_info(self, name: str, version: str, *, with_artifacts: bool = True) -> MlflowVersionInfo:
        """Everything MLflow knows about ``name`` version ``version``.

        ``with_artifacts=False`` skips reading the artifacts (no digest, signature, requirements, flavors)
        for quick listings.
        """
        name = _check_text(name, "MLflow model name")
        version = _check_version(version)
        with self._calling(f"reading model {name!r} version {version}"):
            return self._collect_info(self._model_version(name, version), with_artifacts=with_artifacts)

    def register_from_run(self, name: str, run_id: str, artifact_path: str = "model") -> MlflowVersionInfo:
        """Create an MLflow model version from the model logged at ``artifact_path`` in ``run_id``."""
        name = _check_text(name, "MLflow model name")
        run_id = _check_text(run_id, "MLflow run id").strip()
        path = _check_artifact_path(artifact_path)
        with self._calling(f"registering run {run_id} path {path!r} as {name!r}"):
            run = self._run(run_id)
            if run.info.lifecycle_stage == "deleted":
                raise BadInput(
                    f"MLflow run {run_id} is deleted; expected a live run. Restore it (mlflow runs restore) first."
                )
            source, model_id = self._model_source_in_run(run, path)
            try:
                self._client.get_registered_model(name)
            except Exception as exc:
                if _error_code(exc) not in _NOT_FOUND_CODES:
                    raise
                try:
                    self._client.create_registered_model(name)
                except Exception as create_exc:  # another writer created it in between: fine
                    if _error_code(create_exc) not in {"RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"}:
                        raise
            mv = self._client.create_model_version(
                name=name, source=source, run_id=run_id, model_id=model_id, await_creation_for=0
            )
            try:
                return self._collect_info(mv, with_artifacts=True)
            except BaseException:
                # No half state: a version modelreg could not describe must not stay behind in MLflow.
                with contextlib.suppress(Exception):
                    self._client.delete_model_version(name, str(mv.version))
                raise

    def set_stage_tag(self, name: str, version: str, stage: str) -> None:
        """Mirror the registry's stage on the MLflow version as tag ``modelreg.stage``."""
        self.set_tags(name, version, {STAGE_TAG: _check_text(stage, "stage")})

    def set_tags(self, name: str, version: str, tags: Mapping[str, str]) -> None:
        name = _check_text(name, "MLflow model name")
        version = _check_version(version)
        clean = self._check_tags(tags)
        with self._calling(f"tagging model {name!r} version {version}"):
            self._model_version(name, version)
            for key, value in clean.items():
                self._client.set_model_version_tag(name, version, key, value)

    def get_alias(self, name: str, alias: str) -> str | None:
        """The version ``alias`` points to, or None when the alias is not set."""
        name = _check_text(name, "MLflow model name")
        alias = _check_text(alias, "MLflow alias")
        with self._calling(f"reading alias {alias!r} of {name!r}"):
            return self._alias_version(name, alias)

    def set_alias(self, name: str, alias: str, version: str) -> None:
        name = _check_text(name, "MLflow model name")
        alias = _check_text(alias, "MLflow alias")
        version = _check_version(version)
        with self._calling(f"pointing alias {alias!r} of {name!r} at version {version}"):
            self._model_version(name, version)
            self._client.set_registered_model_alias(name, alias, version)

    def delete_alias(self, name: str, alias: str) -> None:
        """Remove ``alias``; nothing happens when it is not set."""
        name = _check_text(name, "MLflow model name")
        alias = _check_text(alias, "MLflow alias")
        with self._calling(f"removing alias {alias!r} of {name!r}"):
            if self._alias_version(name, alias) is not None:
                try:
                    self._client.delete_registered_model_alias(name, alias)
                except Exception as exc:  # removed by someone else in between: the goal is reached
                    if _error_code(exc) not in _NOT_FOUND_CODES:
                        raise

    def stage_tags(self, name: str) -> dict[str, str | None]:
        """Version -> ``modelreg.stage`` tag (None when untagged), for ``sync --check``."""
        name = _check_text(name, "MLflow model name")
        if "'" in name and '"' in name:
            raise BadInput(f"MLflow model name must not contain both ' and \". Got {name!r} instead.")
        quote = '"' if "'" in name else "'"
        with self._calling(f"listing versions of {name!r}"):
            self._registered_model(name)
            result: dict[str, str | None] = {}
            token = None
            while True:
                page = self._client.search_model_versions(
                    filter_string=f"name = {quote}{name}{quote}", page_token=token
                )
                for mv in page:
                    if mv.name == name:
                        result[str(mv.version)] = (mv.tags or {}).get(STAGE_TAG)
                token = page.token
                if not token:
                    break
        return dict(sorted(result.items(), key=lambda kv: int(kv[0])))

    def registered_model_names(self) -> list[str]:
        """Every registered model's name in MLflow, for ``sync --check``'s ungoverned report."""
        names: list[str] = []
        with self._calling("listing registered models"):
            token = None
            while True:
                page = self._client.search_registered_models(max_results=1000, page_token=token)
                names.extend(str(m.name) for m in page)
                token = page.token
                if not token:
                    break
        return sorted(set(names))

    def ensure_experiment(self, name: str) -> str:
        """Id of experiment ``name``, created if needed (under ``artifact_root`` for local stores)."""
        name = _check_text(name, "MLflow experiment name")
        with self._calling(f"opening experiment {name!r}"):
            return self._ensure_experiment(name)

    def _ensure_experiment(self, name: str) -> str:
        existing = self._client.get_experiment_by_name(name)
        if existing is None:
            location = None
            if self.artifact_root is not None and _scheme(self.tracking_uri) in _LOCAL_STORE_SCHEMES:
                # Without an explicit location MLflow puts a SQLite store's artifacts in ./mlruns of
                # whatever folder the process runs in.
                slug = re.sub(r"[^A-Za-z0-9._-]", "_", name)
                folder = slug if slug == name else f"{slug}-{_short_hash(name)}"
                location = (self.artifact_root / "experiments" / folder).as_uri()
            try:
                return str(self._client.create_experiment(name, artifact_location=location))
            except Exception as exc:
                if _error_code(exc) not in {"RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"}:
                    raise
                existing = self._client.get_experiment_by_name(name)
                if existing is None:
                    raise
        if existing.lifecycle_stage == "deleted":
            raise BadInput(
                f"MLflow experiment {name!r} is deleted; expected an active one. "
                f"Restore it (mlflow experiments restore --experiment-id {existing.experiment_id}) or choose another name."
            )
        return str(existing.experiment_id)

    def log_evaluation(
        self,
        name: str,
        version: str,
        *,
        run_name: str,
        metrics: Mapping[str, float],
        params: Mapping[str, str],
        tags: Mapping[str, str],
        artifacts_dir: Path | None,
        experiment: str = "modelreg-evaluations",
    ) -> str:
        """Record one modelreg Evaluation as one MLflow run; returns the run id.

        Metric and param keys are mapped with :func:`sanitize_key` (colliding results get a hash suffix);
        when any key changed, the original -> logged mapping is stored as ``modelreg/key_map.json``.
        """
        name = _check_text(name, "MLflow model name")
        version = _check_version(version)
        run_name = _check_text(run_name, "run name")
        experiment = _check_text(experiment, "MLflow experiment name")
        if artifacts_dir is not None and not Path(artifacts_dir).is_dir():
            raise BadInput(f"artifacts_dir must be an existing folder. Got {str(artifacts_dir)!r} instead.")
        key_map: dict[str, dict[str, str]] = {}
        metric_values: dict[str, float] = {}
        for key, value in self._sanitized(metrics, "metric", key_map).items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise BadInput(f"metric {key!r} must be a number. Got {value!r} instead.")
            metric_values[key] = float(value)
        param_values = {k: str(v) for k, v in self._sanitized(params, "param", key_map).items()}
        for key, value in param_values.items():
            if len(value) > _MAX_PARAM_VALUE_LENGTH:
                raise BadInput(
                    f"param {key!r} must be at most {_MAX_PARAM_VALUE_LENGTH} characters (MLflow's limit). "
                    f"Got {len(value)}; log long values as an artifact instead."
                )
        user_tags = self._check_tags(tags, sanitize=True)

        with self._calling(f"logging evaluation of {name!r} version {version}"):
            from mlflow.entities import LoggedModelInput, Metric, Param, RunStatus

            target = self._collect_info(self._model_version(name, version), with_artifacts=False)
            run_tags = {
                **user_tags,
                MODEL_TAG: name,
                VERSION_TAG: version,
                MODEL_URI_TAG: f"models:/{name}/{version}",
            }
            if target.run_id:
                run_tags["modelreg.source_run_id"] = target.run_id
            experiment_id = self._ensure_experiment(experiment)
            now_ms = int(clock.now().timestamp() * 1000)
            run = self._client.create_run(experiment_id, start_time=now_ms, tags=run_tags, run_name=run_name)
            run_id = run.info.run_id
            try:
                self._client.log_batch(
                    run_id,
                    metrics=[Metric(k, v, now_ms, 0) for k, v in metric_values.items()],
                    params=[Param(k, v) for k, v in param_values.items()],
                )
                if target.model_id:
                    # Shows the evaluation on the logged model's page in the MLflow UI.
                    self._client.log_inputs(run_id, models=[LoggedModelInput(target.model_id)])
                if any(key_map.values()):
                    self._client.log_dict(run_id, key_map, "modelreg/key_map.json")
                if artifacts_dir is not None:
                    self._client.log_artifacts(run_id, str(artifacts_dir))
                self._client.set_terminated(run_id, RunStatus.to_string(RunStatus.FINISHED))
            except BaseException:
                with contextlib.suppress(Exception):
                    self._client.set_terminated(run_id, RunStatus.to_string(RunStatus.FAILED))
                raise
            return run_id

    def load_pyfunc(self, model_uri: str) -> Any:
        """Load a model for validation/monitoring. The only function here that deserialises a model."""
        model_uri = _check_text(model_uri, "model URI")
        with self._calling(f"resolving {model_uri}"):
            location = self._resolve_model_uri(model_uri)
        target = Path(tempfile.mkdtemp(prefix="modelreg-pyfunc-"))
        try:
            with self._calling(f"downloading {model_uri}"), self._local_copy(location) as folder:
                shutil.copytree(folder, target, dirs_exist_ok=True)
            import mlflow.pyfunc

            model = mlflow.pyfunc.load_model(str(target))
        except ModelregError:
            shutil.rmtree(target, ignore_errors=True)
            raise
        except Exception as exc:
            shutil.rmtree(target, ignore_errors=True)
            raise MlflowError(
                f"Could not load {model_uri} as an MLflow pyfunc model: {type(exc).__name__}: "
                f"{_one_line(str(exc), 200)}. Install the libraries in the model's requirements.txt "
                "or check that it was logged with an MLflow flavor."
            ) from exc
        # Some flavors read files lazily after loading; keep the copy as long as the model lives.
        weakref.finalize(model, shutil.rmtree, str(target), ignore_errors=True)
        return model

    # ------------------------------------------------------------------------------- validation

    @staticmethod
    def _sanitized(
        values: Mapping[str, Any], kind: str, key_map: dict[str, dict[str, str]]
    ) -> dict[str, Any]:
        if not isinstance(values, Mapping):
            raise BadInput(
                f"{kind}s must be a mapping of name to value. Got {type(values).__name__} instead."
            )
        out: dict[str, Any] = {}
        changed: dict[str, str] = {}
        for key in sorted(values, key=str):
            if not isinstance(key, str) or not key:
                raise BadInput(f"{kind} names must be non-empty strings. Got {key!r} instead.")
            clean = sanitize_key(key)
            if clean in out:  # two originals collapse onto one MLflow name: keep both, distinguishably
                clean = sanitize_key(f"{clean[: _MAX_KEY_LENGTH - 10]}_{_short_hash(key)}")
            if clean != key:
                changed[key] = clean
            out[clean] = values[key]
        key_map[f"{kind}s"] = changed
        return out

    @staticmethod
    def _check_tags(tags: Mapping[str, str], *, sanitize: bool = False) -> dict[str, str]:
        if not isinstance(tags, Mapping):
            raise BadInput(f"tags must be a mapping of name to text. Got {type(tags).__name__} instead.")
        clean: dict[str, str] = {}
        for key, value in tags.items():
            if not isinstance(key, str) or not key.strip():
                raise BadInput(f"tag names must be non-empty strings. Got {key!r} instead.")
            if not isinstance(value, str):
                raise BadInput(f"tag {key!r} must have a string value. Got {value!r} instead.")
            if len(value) > _MAX_TAG_VALUE_LENGTH:
                raise BadInput(
                    f"tag {key!r} must be at most {_MAX_TAG_VALUE_LENGTH} characters (MLflow's limit). "
                    f"Got {len(value)} instead."
                )
            clean[sanitize_key(key) if sanitize else key] = value
        return clean
