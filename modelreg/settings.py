"""The only reader of environment variables and of ``mlflow.env``.

Precedence: environment variable > ``mlflow.env`` > built-in default. ``mlflow.env`` is looked for in
``$MODELREG_CONFIG`` (a file), else in the current folder and its parents; relative paths in it are relative
to its own folder. With no file at all, everything lives under ``./.modelreg``.
"""

from __future__ import annotations

import contextlib
import getpass
import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from modelreg.errors import ConfigError

ENV_FILE_NAME = "mlflow.env"

_KEYS = (
    "MODELREG_DATABASE_URL",
    "MODELREG_HOME",
    "MODELREG_AUDIT_KEY",
    "MODELREG_EVIDENCE_KEY",
    "MODELREG_MLFLOW_ALIAS",
    "MODELREG_USER",
    "MODELREG_POLICY",
    "MODELREG_SIGNING_KEY",
    "MLFLOW_TRACKING_URI",
    "MLFLOW_REGISTRY_URI",
    "MLFLOW_ARTIFACT_ROOT",
    "MLFLOW_DISABLE_TELEMETRY",
    "MODELREG_URL",
    "MODELREG_OIDC_ISSUER",
    "MODELREG_OIDC_AUDIENCE",
    "MODELREG_OIDC_JWKS_URL",
    "MODELREG_OIDC_USER_CLAIM",
    "MODELREG_OIDC_ROLES_CLAIM",
    "MODELREG_OIDC_ROLE_MAP",
    "MODELREG_SERVICE_DATA_ROOTS",
    "MODELREG_SERVICE_UPLOAD_DAYS",
    "MODELREG_SERVICE_PACK_HOURS",
)


def parse_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for lineno, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :]
        key, sep, value = line.partition("=")
        if not sep or not key.strip().isidentifier():
            raise ConfigError(f"{path}:{lineno}: expected KEY=VALUE. Got {raw!r} instead.")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def find_env_file(start: Path | None = None, environ: dict[str, str] | None = None) -> Path | None:
    explicit = (os.environ if environ is None else environ).get("MODELREG_CONFIG")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"MODELREG_CONFIG points at {path}, which is not a file")
        return path
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / ENV_FILE_NAME
        if candidate.is_file():
            return candidate
    return None


def _resolve_sqlite_url(url: str, base: Path) -> str:
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith("sqlite:////"):
        rest = url[len(prefix) :]
        if rest and rest != ":memory:" and not rest.startswith("/"):
            return prefix + str((base / rest).resolve())
    return url


def _resolve_path(value: str, base: Path) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else (base / path).resolve()


@dataclass(frozen=True)
class Settings:
    database_url: str
    home: Path
    audit_key_path: Path
    evidence_key_path: Path
    mlflow_tracking_uri: str
    mlflow_registry_uri: str
    mlflow_artifact_root: Path
    mlflow_alias: str
    user: str
    env_file: Path | None
    policy: str = "cn-fin-algo-risk"
    signing_key: Path | None = None
    # "production": refuse to run on PostgreSQL as a superuser or as the tables' owner (see `init --pg-roles`).
    mode: str = "development"
    # The shared registry service (`modelreg serve`): with ``url`` set, the CLI and ``connect()`` talk to it.
    url: str | None = None
    user_explicit: bool = False  # MODELREG_USER was set (the service refuses a claimed name)
    oidc_issuer: str | None = None
    oidc_audience: str | None = None
    oidc_jwks_url: str | None = None
    oidc_user_claim: str = "preferred_username"
    oidc_roles_claim: str = "groups"
    # IdP group -> modelreg role, "group=role,group=role"; empty: a group named like a role maps to it.
    oidc_role_map: tuple[tuple[str, str], ...] = ()
    # The service's server-side data: "landing=/srv/landing,warehouse=/data/wh"; requests name a file in one
    # as server:<root>/<relative path> instead of uploading it.
    service_data_roots: tuple[tuple[str, Path], ...] = ()
    # The service's working files: uploads not used for this many days, evidence packs older than this many
    # hours are removed by the retention sweep (at start, hourly while serving, `modelreg serve --sweep`).
    service_upload_days: float = 7.0
    service_pack_hours: float = 24.0

    @property
    def policy_paths(self) -> tuple[Path, ...]:
        """Where a bank's own packs live (searched before the shipped ones)."""
        return (self.home / "policies",)

    def signing_key_for(self, user: str) -> Path:
        """The acting user's private key: $MODELREG_SIGNING_KEY, else <home>/keys/<user>.key."""
        return self.signing_key or (self.home / "keys" / f"{user}.key")

    @property
    def artifact_store(self) -> Path:
        return self.home / "artifacts"

    @property
    def report_cache(self) -> Path:
        """Where the drift monitor keeps Evidently HTML reports per digest of their inputs (safe to delete)."""
        return self.home / "cache" / "evidently"

    def with_overrides(self, **kw) -> Settings:
        return replace(self, **kw)

    def mlflow_environ(self) -> dict[str, str]:
        """What a notebook or a subprocess needs so that plain ``mlflow`` sees the same stores."""
        return {
            "MLFLOW_TRACKING_URI": self.mlflow_tracking_uri,
            "MLFLOW_REGISTRY_URI": self.mlflow_registry_uri,
            "MLFLOW_DISABLE_TELEMETRY": "true",
        }

    def apply_mlflow_environ(self) -> None:
        for key, value in self.mlflow_environ().items():
            os.environ.setdefault(key, value)

    @contextlib.contextmanager
    def mlflow_scope(self) -> Iterator[None]:
        """MLflow's process-wide configuration is its environment: every ``mlflow`` call made inside this
        block (a ``models:/`` load, a fluent call in a library) sees this registry's stores rather than
        MLflow's own default (a ``./mlflow.db`` in whatever folder the process runs in). The previous values
        come back afterwards, so two registries in one process (tests, notebooks) do not leak into each
        other. These settings already give the environment precedence, so overwriting is safe."""
        wanted = self.mlflow_environ()
        wanted["MLFLOW_DISABLE_TELEMETRY"] = os.environ.get("MLFLOW_DISABLE_TELEMETRY") or "true"
        with environ_overrides(wanted):
            yield


@contextlib.contextmanager
def environ_overrides(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for a block (what MLflow reads at call time) and put back what was there:
    one process may hold several registries (tests, notebooks) and must not leak one into the next."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def load(start: Path | None = None, environ: dict[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    env_file = find_env_file(start, env)
    file_values = parse_env_file(env_file) if env_file else {}
    base = env_file.parent if env_file else (start or Path.cwd()).resolve()

    def get(key: str, default: str) -> str:
        if env.get(key):
            return env[key]
        return file_values.get(key, default)

    home = _resolve_path(get("MODELREG_HOME", ".modelreg"), base)

    # Values from the environment are relative to the current folder, values from the file to the file.
    def base_for(key: str) -> Path:
        return Path.cwd() if env.get(key) else base

    db_default = "sqlite:///" + str(home / "registry.db")
    database_url = _resolve_sqlite_url(
        get("MODELREG_DATABASE_URL", db_default), base_for("MODELREG_DATABASE_URL")
    )
    mlflow_default = "sqlite:///" + str(home / "mlflow.db")
    tracking = _resolve_sqlite_url(
        get("MLFLOW_TRACKING_URI", mlflow_default), base_for("MLFLOW_TRACKING_URI")
    )
    registry = _resolve_sqlite_url(get("MLFLOW_REGISTRY_URI", tracking), base_for("MLFLOW_REGISTRY_URI"))
    try:
        user = env.get("MODELREG_USER") or getpass.getuser()
    except Exception:  # no passwd entry in some containers
        user = "unknown"
    return Settings(
        database_url=database_url,
        home=home,
        audit_key_path=_resolve_path(
            get("MODELREG_AUDIT_KEY", str(home / "keys" / "registry-audit.key")),
            base_for("MODELREG_AUDIT_KEY"),
        ),
        evidence_key_path=_resolve_path(
            get("MODELREG_EVIDENCE_KEY", str(home / "keys" / "registry-evidence.key")),
            base_for("MODELREG_EVIDENCE_KEY"),
        ),
        mlflow_tracking_uri=tracking,
        mlflow_registry_uri=registry,
        mlflow_artifact_root=_resolve_path(
            get("MLFLOW_ARTIFACT_ROOT", str(home / "mlartifacts")), base_for("MLFLOW_ARTIFACT_ROOT")
        ),
        mlflow_alias=get("MODELREG_MLFLOW_ALIAS", "production"),
        user=user,
        env_file=env_file,
        policy=get("MODELREG_POLICY", "cn-fin-algo-risk"),
        signing_key=_resolve_path(env["MODELREG_SIGNING_KEY"], Path.cwd())
        if env.get("MODELREG_SIGNING_KEY")
        else None,
        mode=_mode(get("MODELREG_MODE", "development")),
        url=get("MODELREG_URL", "").rstrip("/") or None,
        user_explicit=bool(env.get("MODELREG_USER")),
        oidc_issuer=get("MODELREG_OIDC_ISSUER", "") or None,
        oidc_audience=get("MODELREG_OIDC_AUDIENCE", "") or None,
        oidc_jwks_url=get("MODELREG_OIDC_JWKS_URL", "") or None,
        oidc_user_claim=get("MODELREG_OIDC_USER_CLAIM", "preferred_username"),
        oidc_roles_claim=get("MODELREG_OIDC_ROLES_CLAIM", "groups"),
        oidc_role_map=parse_role_map(get("MODELREG_OIDC_ROLE_MAP", "")),
        service_data_roots=parse_data_roots(
            get("MODELREG_SERVICE_DATA_ROOTS", ""), base_for("MODELREG_SERVICE_DATA_ROOTS")
        ),
        service_upload_days=_positive(
            "MODELREG_SERVICE_UPLOAD_DAYS", get("MODELREG_SERVICE_UPLOAD_DAYS", "7")
        ),
        service_pack_hours=_positive("MODELREG_SERVICE_PACK_HOURS", get("MODELREG_SERVICE_PACK_HOURS", "24")),
    )


DATA_ROOT_NAME = r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}"


def parse_data_roots(text: str, base: Path) -> tuple[tuple[str, Path], ...]:
    """``MODELREG_SERVICE_DATA_ROOTS=landing=/srv/landing,warehouse=/data/wh``: NAME=FOLDER items, comma
    separated; a relative folder is relative to where the value came from (as every path here)."""
    import re

    roots: dict[str, Path] = {}
    for item in (x.strip() for x in text.split(",")):
        if not item:
            continue
        name, sep, folder = item.partition("=")
        name, folder = name.strip(), folder.strip()
        if not sep or not re.fullmatch(DATA_ROOT_NAME, name) or not folder or name in roots:
            raise ConfigError(
                "MODELREG_SERVICE_DATA_ROOTS items must be NAME=FOLDER with distinct names of letters, digits, "
                f"'_' and '-' (e.g. landing=/srv/landing). Got {item!r} instead."
            )
        roots[name] = _resolve_path(folder, base)
    return tuple(roots.items())


def _positive(key: str, value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not number > 0:
        raise ConfigError(f"{key} must be a positive number. Got {value!r} instead.")
    return number


def parse_role_map(text: str) -> tuple[tuple[str, str], ...]:
    """``MODELREG_OIDC_ROLE_MAP=cn=mrm-approvers=approver,risk-validators=validator``: the last ``=`` of each
    comma-separated item splits the IdP group (which may itself hold ``=``) from the modelreg role."""
    from modelreg.domain.roles import Role

    pairs: list[tuple[str, str]] = []
    for item in (x.strip() for x in text.split(",")):
        if not item:
            continue
        group, sep, role = item.rpartition("=")
        if not sep or not group.strip() or role.strip() not in {r.value for r in Role}:
            raise ConfigError(
                f"MODELREG_OIDC_ROLE_MAP items must be GROUP=ROLE with ROLE one of "
                f"{', '.join(r.value for r in Role)}. Got {item!r} instead."
            )
        pairs.append((group.strip(), role.strip()))
    return tuple(pairs)


MODES = ("development", "production")


def _mode(value: str) -> str:
    if value not in MODES:
        raise ConfigError(f"MODELREG_MODE must be one of {', '.join(MODES)}. Got {value!r} instead.")
    return value
