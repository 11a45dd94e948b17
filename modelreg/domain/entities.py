"""Registry records as plain immutable objects. Store rows are mapped to these at the store's edge."""

from __future__ import annotations

import html
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from modelreg import clock
from modelreg.domain.stages import Stage


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return clock.isoformat(value)
    if isinstance(value, Stage):
        return value.value
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


class _Record:
    def to_dict(self) -> dict:
        # Shallow field walk: dataclasses.asdict deep-copies every nested dict first, which dominated `list`.
        return _jsonable({f.name: getattr(self, f.name) for f in fields(self)})  # type: ignore[arg-type]

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><th style='text-align:left'>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
            for k, v in self.to_dict().items()
            if v not in (None, "", [], {})
        )
        return f"<table><caption>{type(self).__name__}</caption>{rows}</table>"


@dataclass(frozen=True)
class User(_Record):
    name: str
    roles: tuple[str, ...]
    key_id: str | None = None
    public_key_pem: str | None = None
    created_at: datetime | None = None


@dataclass(frozen=True)
class Model(_Record):
    name: str
    owner: str
    purpose: str
    risk_tier: str
    business_line: str | None = None
    created_by: str | None = None
    created_at: datetime | None = None


@dataclass(frozen=True)
class ModelVersion(_Record):
    model: str
    version: str
    stage: Stage
    suspended: bool
    registered_by: str
    created_at: datetime
    updated_at: datetime
    owner: str = ""
    risk_tier: str = ""
    purpose: str = ""
    business_line: str | None = None
    mlflow_run_id: str | None = None
    model_uri: str | None = None
    artifact_digest: str | None = None
    mlflow: dict = field(default_factory=dict)
    model_card: dict = field(default_factory=dict)

    @property
    def developers(self) -> frozenset[str]:
        """The people who built it: they may not validate or approve it."""
        return frozenset({self.owner, self.registered_by} - {""})


@dataclass(frozen=True)
class TransitionRecord(_Record):
    model: str
    version: str
    action: str
    source: str
    target: str
    actor: str
    reason: str | None
    at: datetime


@dataclass(frozen=True)
class Dataset(_Record):
    model: str
    version: str
    role: str  # training | validation | holdout | reference | monitoring
    name: str
    digest: str
    rows: int
    columns: list
    source: str | None
    owner: str | None
    attached_by: str
    at: datetime


@dataclass(frozen=True)
class AuditEvent(_Record):
    seq: int
    event: str
    actor: str
    at: datetime
    model: str | None
    version: str | None
    payload: dict
    db_role: str | None = None
    leaf_hash: str = ""
    root_hash: str = ""


@dataclass(frozen=True)
class VerifyReport(_Record):
    ok: bool
    size: int
    root_hash: str
    first_bad_seq: int | None = None
    problem: str | None = None
    checkpoint: dict | None = None
    events_per_second: float | None = None
    signatures: dict | None = None  # signed_from, unsigned_events, event_keys
    replay: dict | None = None  # the tables against the state the log proves (audit/replay.py)
