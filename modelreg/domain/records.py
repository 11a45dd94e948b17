"""Governance records as the store hands them out: plain immutable values, mapped from rows in ``store/``.

Governance turns these into its richer objects (an ``Evaluation`` with waivers applied, a ``SignedRecord``
whose signature has been checked); the store only says what was written."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from modelreg.domain.entities import ModelVersion


@dataclass(frozen=True)
class VersionState:
    """A version as read inside a transaction: the domain object plus what a compare-and-set needs."""

    id: int
    model_id: int
    row_version: int
    version: ModelVersion

    @property
    def stage(self) -> str:
        return self.version.stage.value

    @property
    def suspended(self) -> bool:
        return self.version.suspended


@dataclass(frozen=True)
class StoredEvaluation:
    id: int
    version_id: int
    purpose: str
    gate: str
    tier: str
    policy_id: str
    policy_version: str
    policy_digest: str
    model_artifact_digest: str | None
    data: dict
    status: str
    digest: str
    mlflow_run_id: str | None
    created_by: str
    created_at: datetime


@dataclass(frozen=True)
class StoredFinding:
    id: int
    evaluation_id: int
    version_id: int
    control_id: str
    status: str
    severity: str
    clause_ids: tuple[str, ...]
    detail: dict


@dataclass(frozen=True)
class StoredSignedRecord:
    id: int
    version_id: int
    kind: str
    role: str | None
    control_id: str | None
    actor: str
    payload: bytes
    signature: dict
    until: datetime | None
    at: datetime
    signer_public_key_pem: str | None  # the signer's key as registered now (None: unknown signer)


@dataclass(frozen=True)
class StoredArtifactLink:
    evaluation_id: int
    monitor_kind: str
    name: str
    sha256: str
    media_type: str
