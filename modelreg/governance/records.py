"""Reading governance records: evaluations, findings (with waivers applied), signed records (verified)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from modelreg import clock
from modelreg.domain.records import StoredEvaluation, StoredFinding
from modelreg.governance.signatures import SignedRecord, decode_payload, verify_record
from modelreg.store import governance as store

PURPOSE_GATE = {"precheck": "submit", "validation": "deploy", "monitoring": "monitor"}
BLOCKING_STATUSES = ("fail", "error")


@dataclass(frozen=True)
class Finding:
    control_id: str
    status: str  # pass | warn | fail | error | waived
    severity: str
    clause_ids: tuple[str, ...]
    detail: dict
    raw_status: str  # the status before any waiver
    waiver: dict | None = None

    def to_dict(self) -> dict:
        return {
            "control_id": self.control_id,
            "status": self.status,
            "raw_status": self.raw_status,
            "severity": self.severity,
            "clause_ids": list(self.clause_ids),
            "waiver": self.waiver,
            **{
                k: v
                for k, v in self.detail.items()
                if k not in ("control_id", "status", "severity", "clause_ids")
            },
        }


@dataclass(frozen=True)
class Evaluation:
    id: int
    model: str
    version: str
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
    findings: tuple[Finding, ...] = ()
    suspended: bool = False
    extra: dict = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for f in self.findings:
            out[f.status] = out.get(f.status, 0) + 1
        return out

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "model": self.model,
            "version": self.version,
            "purpose": self.purpose,
            "gate": self.gate,
            "tier": self.tier,
            "policy": {"id": self.policy_id, "version": self.policy_version, "digest": self.policy_digest},
            "model_artifact_digest": self.model_artifact_digest,
            "data": self.data,
            "status": self.status,
            "digest": self.digest,
            "mlflow_run_id": self.mlflow_run_id,
            "created_by": self.created_by,
            "created_at": clock.isoformat(self.created_at),
            "counts": self.counts(),
            "suspended": self.suspended,
            "findings": [f.to_dict() for f in self.findings],
            **self.extra,
        }

    def _repr_html_(self) -> str:
        from modelreg.governance.report import evaluation_html

        return evaluation_html(self)


def latest_evaluation_row(session: Session, version_id: int, purpose: str) -> StoredEvaluation | None:
    return store.latest_evaluation(session, version_id, purpose)


def evaluation_rows(session: Session, version_id: int) -> list[StoredEvaluation]:
    return store.evaluations(session, version_id)


def monitor_results(session: Session, evaluation_id: int) -> dict[str, dict]:
    return store.monitor_results(session, evaluation_id)


def signed_records(session: Session, version_id: int, kind: str | None = None) -> list[SignedRecord]:
    """The version's signed records, each checked against its signer's registered key now."""
    out = []
    for rec in store.signed_records(session, version_id, kind):
        valid = verify_record(rec.payload, rec.signature, rec.signer_public_key_pem)
        out.append(
            SignedRecord(
                id=rec.id,
                kind=rec.kind,
                role=rec.role,
                control_id=rec.control_id,
                actor=rec.actor,
                payload=decode_payload(rec.payload),
                payload_bytes=rec.payload,
                signature=rec.signature,
                until=rec.until,
                at=rec.at,
                valid_signature=valid,
                problems=() if valid else ("signature does not verify with the signer's registered key",),
            )
        )
    return out


# Which waiver scope covers the findings of each kind of evaluation: a waiver granted for deployment does not
# hide the same control's breach in monitoring, and the other way round, unless it says "all".
WAIVER_GATE = {"precheck": "deploy", "validation": "deploy", "monitoring": "monitor"}
WAIVER_SCOPES = ("deploy", "monitor", "all")


def waiver_covers(rec: SignedRecord, gate: str | None) -> bool:
    gates = rec.payload.get("gates") or []
    return gate is None or "all" in gates or gate in gates


def active_waivers(
    session: Session, version_id: int, now: datetime | None = None, *, gate: str | None = None
) -> dict[str, SignedRecord]:
    """Waivers in force now, by control id: valid signature, not expired, payload bound to this record, and
    (with ``gate``) scoped to that gate."""
    now = now or clock.now()
    out: dict[str, SignedRecord] = {}
    for rec in signed_records(session, version_id, "waiver"):
        if not rec.counts or rec.until is None or rec.until <= now:
            continue
        if rec.payload.get("control_id") != rec.control_id or rec.payload.get("until") != clock.isoformat(
            rec.until
        ):
            continue
        if not waiver_covers(rec, gate):
            continue
        out[rec.control_id or ""] = rec
    return out


def findings_for(
    session: Session,
    evaluation: StoredEvaluation,
    waivers: dict[str, SignedRecord],
    rows: list[StoredFinding] | None = None,
) -> list[Finding]:
    """``rows``: the evaluation's findings when the caller fetched them in bulk (see ``finding_rows_by_evaluation``)."""
    if rows is None:
        rows = store.findings(session, evaluation.id)
    gate = WAIVER_GATE.get(evaluation.purpose)
    out = []
    for r in rows:
        waiver = waivers.get(r.control_id)
        if waiver is not None and not waiver_covers(waiver, gate):
            waiver = None
        status = r.status
        waived = waiver is not None and status in ("warn", "fail", "error")
        out.append(
            Finding(
                control_id=r.control_id,
                status="waived" if waived else status,
                severity=r.severity,
                clause_ids=tuple(r.clause_ids),
                detail=dict(r.detail),
                raw_status=status,
                waiver={
                    "by": waiver.actor,
                    "until": clock.isoformat(waiver.until),
                    "reason": waiver.payload.get("reason"),
                }
                if waived and waiver and waiver.until
                else None,
            )
        )
    return out


def to_evaluation(
    session: Session,
    row: StoredEvaluation,
    model: str,
    version: str,
    waivers: dict[str, SignedRecord] | None = None,
    finding_rows: list[StoredFinding] | None = None,
    **extra: Any,
) -> Evaluation:
    if waivers is None:
        waivers = active_waivers(session, row.version_id, gate=WAIVER_GATE.get(row.purpose))
    return Evaluation(
        id=row.id,
        model=model,
        version=version,
        purpose=row.purpose,
        gate=row.gate,
        tier=row.tier,
        policy_id=row.policy_id,
        policy_version=row.policy_version,
        policy_digest=row.policy_digest,
        model_artifact_digest=row.model_artifact_digest,
        data=dict(row.data),
        status=row.status,
        digest=row.digest,
        mlflow_run_id=row.mlflow_run_id,
        created_by=row.created_by,
        created_at=row.created_at,
        findings=tuple(findings_for(session, row, waivers, finding_rows)),
        extra=extra,
    )


def finding_rows_by_evaluation(
    session: Session, version_id: int, evaluation_ids: list[int]
) -> dict[int, list[StoredFinding]]:
    return store.findings_by_evaluation(session, version_id, evaluation_ids)


def monitor_results_by_evaluation(
    session: Session, version_id: int, evaluation_ids: list[int]
) -> dict[int, dict[str, dict]]:
    """``monitor_results`` for many evaluations of one version in one query."""
    return store.monitor_results_by_evaluation(session, version_id, evaluation_ids)
