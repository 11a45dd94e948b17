"""Findings tracked until remediated.

Every failed control (``fail`` or ``error``) of a validation or monitoring run opens a finding, or updates the
one still open for that control, with the severity's remediation deadline from the policy and the model owner as
its owner. Status: ``open`` → ``remediation_proposed`` → ``closed``. Closing needs evidence: a later passing
run of the same control closes it automatically (in that run's transaction), or a person in the policy's
acceptance role signs an acceptance (Ed25519, the same signed-record machinery as approvals). Each transition
writes exactly one audit event, in the transaction of the change.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from modelreg import clock
from modelreg.errors import BadInput, InvalidTransition, NotFound, PermissionDenied, SegregationOfDuties
from modelreg.store.tables import ModelRow, SignedRecordRow, TrackedFindingRow, VersionRow

OPEN = "open"
PROPOSED = "remediation_proposed"
CLOSED = "closed"
STATUSES = (OPEN, PROPOSED, CLOSED)
TRACKED_PURPOSES = ("validation", "monitoring")
FAILED = ("fail", "error")
# A warning is not a failure (the gates let it through), so a warn closes a finding as a pass does.
PASSED = ("pass", "warn")
ACCEPTANCE_KIND = "acceptance"  # signed_records.kind of a signed finding acceptance


@dataclass(frozen=True)
class TrackedFinding:
    id: int
    model: str
    version: str
    control_id: str
    purpose: str
    status: str
    severity: str
    clause_ids: tuple[str, ...]
    title_zh: str
    title_en: str
    owner: str
    due_at: datetime
    opened_at: datetime
    opened_evaluation_id: int
    last_evaluation_id: int
    occurrences: int
    last_result: dict
    remediation: str | None
    closed_at: datetime | None
    closed_by: str | None
    closure: dict | None
    updated_at: datetime

    def overdue(self, now: datetime | None = None) -> bool:
        return self.status != CLOSED and self.due_at < (now or clock.now())

    def to_dict(self) -> dict:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, datetime):
                value = clock.isoformat(value)
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        out["overdue"] = self.overdue()
        return out


def to_finding(row: TrackedFindingRow, model: str, version: str) -> TrackedFinding:
    return TrackedFinding(
        id=row.id,
        model=model,
        version=version,
        control_id=row.control_id,
        purpose=row.purpose,
        status=row.status,
        severity=row.severity,
        clause_ids=tuple(row.clause_ids or ()),
        title_zh=row.title_zh,
        title_en=row.title_en,
        owner=row.owner,
        due_at=clock.to_utc(row.due_at),
        opened_at=clock.to_utc(row.opened_at),
        opened_evaluation_id=row.opened_evaluation_id,
        last_evaluation_id=row.last_evaluation_id,
        occurrences=row.occurrences,
        last_result=dict(row.last_result or {}),
        remediation=row.remediation,
        closed_at=clock.to_utc(row.closed_at) if row.closed_at else None,
        closed_by=row.closed_by,
        closure=dict(row.closure) if row.closure else None,
        updated_at=clock.to_utc(row.updated_at),
    )


def _result_of(outcome: Any) -> dict:
    return {
        k: getattr(outcome, k, None)
        for k in ("status", "value", "threshold", "comparator", "metric", "feature", "group", "reason")
    }


def _event_payload(row: TrackedFindingRow, **extra: Any) -> dict:
    return {
        "finding_id": row.id,
        "control_id": row.control_id,
        "purpose": row.purpose,
        "severity": row.severity,
        "status": row.status,
        **extra,
    }


def record_run(
    reg: Any,
    session: Session,
    pack: Any,
    model_row: ModelRow,
    row: VersionRow,
    evaluation: Any,
    outcomes: list[Any],
) -> dict[str, list[int]]:
    """Open, update or close findings for one stored run, inside the run's write transaction. Returns the ids
    touched, by transition. Packs without a ``findings`` section track nothing."""
    policy = getattr(pack, "findings_policy", None)
    purpose = evaluation.purpose
    touched: dict[str, list[int]] = {"opened": [], "updated": [], "closed": []}
    if policy is None or purpose not in TRACKED_PURPOSES:
        return touched
    now = clock.now()
    current = {
        r.control_id: r
        for r in session.execute(
            select(TrackedFindingRow).where(
                TrackedFindingRow.version_id == row.id,
                TrackedFindingRow.purpose == purpose,
                TrackedFindingRow.status != CLOSED,
            )
        ).scalars()
    }
    name, version = model_row.name, row.version
    for o in outcomes:
        existing = current.get(o.control_id)
        if o.status in FAILED:
            if existing is not None:
                existing.occurrences += 1
                existing.last_evaluation_id = evaluation.id
                existing.last_result = _result_of(o)
                existing.updated_at = now
                session.flush()
                reg._event(
                    session,
                    "finding.updated",
                    model=name,
                    version=version,
                    payload=_event_payload(
                        existing, evaluation_id=evaluation.id, occurrences=existing.occurrences
                    ),
                )
                touched["updated"].append(existing.id)
                continue
            control = pack.control(o.control_id)
            severity = o.severity or control.severity
            deadline = policy.remediation.get(severity)
            days = deadline.days if deadline is not None else 0
            new = TrackedFindingRow(
                version_id=row.id,
                control_id=o.control_id,
                purpose=purpose,
                status=OPEN,
                severity=severity,
                clause_ids=list(o.clause_ids),
                title_zh=control.title_zh,
                title_en=control.title_en,
                owner=model_row.owner,
                due_at=now + timedelta(days=days),
                opened_at=now,
                opened_evaluation_id=evaluation.id,
                last_evaluation_id=evaluation.id,
                occurrences=1,
                last_result=_result_of(o),
                updated_at=now,
            )
            session.add(new)
            session.flush()
            reg._event(
                session,
                "finding.opened",
                model=name,
                version=version,
                payload=_event_payload(
                    new,
                    evaluation_id=evaluation.id,
                    owner=new.owner,
                    due_at=clock.isoformat(new.due_at),
                    deadline_days=days,
                    deadline_basis=deadline.basis if deadline is not None else None,
                    clause_ids=list(o.clause_ids),
                ),
            )
            touched["opened"].append(new.id)
        elif o.status in PASSED and existing is not None:
            _close(
                reg,
                session,
                existing,
                name,
                version,
                now,
                {"kind": "passed", "evaluation_id": evaluation.id, "evaluation_digest": evaluation.digest},
            )
            touched["closed"].append(existing.id)
    return touched


def _close(
    reg: Any, session: Session, row: TrackedFindingRow, name: str, version: str, now: datetime, closure: dict
) -> None:
    row.status = CLOSED
    row.closed_at = now
    row.closed_by = reg.actor
    row.closure = closure
    row.updated_at = now
    session.flush()
    reg._event(session, "finding.closed", model=name, version=version, payload=_event_payload(row, **closure))


# -- reads ------------------------------------------------------------------------------------------------


def _rows(session: Session, *conditions: Any) -> list[tuple[TrackedFindingRow, str, str]]:
    q = (
        select(TrackedFindingRow, ModelRow.name, VersionRow.version)
        .join(VersionRow, VersionRow.id == TrackedFindingRow.version_id)
        .join(ModelRow, ModelRow.id == VersionRow.model_id)
        .where(*conditions)
        .order_by(TrackedFindingRow.id)
    )
    return [(r, m, v) for r, m, v in session.execute(q)]


def list_findings(
    reg: Any,
    *,
    model: str | None = None,
    version: str | None = None,
    status: str | None = None,
    owner: str | None = None,
) -> list[TrackedFinding]:
    """``status``: one of STATUSES, ``unclosed`` (open or remediation proposed) or None for all."""
    if status is not None and status not in (*STATUSES, "unclosed"):
        raise BadInput(
            f"--status must be one of {', '.join((*STATUSES, 'unclosed', 'all'))}. Got {status!r} instead."
        )
    if version is not None and model is None:
        raise BadInput("a VERSION needs its model NAME")
    with reg._read() as session:
        conditions: list[Any] = []
        if model is not None:
            if version is not None:
                from modelreg.store import repo

                _, vrow = repo.version_rows(session, model, str(version))
                conditions.append(TrackedFindingRow.version_id == vrow.id)
            else:
                mrow = session.execute(select(ModelRow).where(ModelRow.name == model)).scalar_one_or_none()
                if mrow is None:
                    raise NotFound(f"model {model!r} is not registered")
                conditions.append(ModelRow.id == mrow.id)
        if status == "unclosed":
            conditions.append(TrackedFindingRow.status != CLOSED)
        elif status is not None:
            conditions.append(TrackedFindingRow.status == status)
        if owner is not None:
            conditions.append(TrackedFindingRow.owner == owner)
        return [to_finding(r, m, v) for r, m, v in _rows(session, *conditions)]


def get_finding(reg: Any, finding_id: int | str) -> TrackedFinding:
    finding_id = finding_number(finding_id)
    with reg._read() as session:
        found = _rows(session, TrackedFindingRow.id == int(finding_id))
        if not found:
            raise NotFound(f"finding #{finding_id} does not exist (modelreg finding list)")
        return to_finding(*found[0])


def open_counts(session: Session, version_id: int) -> dict[str, int]:
    """Unclosed findings of a version by severity."""
    out: dict[str, int] = {}
    for r in session.execute(
        select(TrackedFindingRow.severity).where(
            TrackedFindingRow.version_id == version_id, TrackedFindingRow.status != CLOSED
        )
    ).scalars():
        out[r] = out.get(r, 0) + 1
    return out


# -- transitions by people ----------------------------------------------------------------------------


def finding_number(finding_id: int | str) -> int:
    """Finding ids are whole numbers (``#12`` is accepted too)."""
    text = str(finding_id).strip().lstrip("#")
    if not text.isdigit():
        raise BadInput(f"a finding id is a number (see modelreg finding list). Got {finding_id!r} instead.")
    return int(text)


def _locked(session: Session, finding_id: int | str) -> tuple[TrackedFindingRow, ModelRow, VersionRow]:
    finding_id = finding_number(finding_id)
    found = session.execute(
        select(TrackedFindingRow, ModelRow, VersionRow)
        .join(VersionRow, VersionRow.id == TrackedFindingRow.version_id)
        .join(ModelRow, ModelRow.id == VersionRow.model_id)
        .where(TrackedFindingRow.id == int(finding_id))
        # Two people closing one finding at once: the second waits and then sees it closed.
        .with_for_update(of=TrackedFindingRow)
    ).first()
    if found is None:
        raise NotFound(f"finding #{finding_id} does not exist (modelreg finding list)")
    return found[0], found[1], found[2]


def _parse_due(text: str | datetime) -> datetime:
    if isinstance(text, datetime):
        return clock.to_utc(text)
    value = str(text).strip()
    try:
        return clock.parse(value + ("T23:59:59Z" if len(value) == 10 else ""))
    except ValueError:
        raise BadInput(
            f"--due must be a date (YYYY-MM-DD) or an ISO datetime. Got {text!r} instead."
        ) from None


def assign(
    reg: Any,
    finding_id: int | str,
    *,
    owner: str | None = None,
    due: str | datetime | None = None,
    reason: str = "",
) -> TrackedFinding:
    """Give a finding a new owner and/or due date (a moved deadline needs a reason)."""
    due_at = _parse_due(due) if due is not None else None
    if due_at is not None and not (reason or "").strip():
        raise BadInput("moving a finding's due date needs --reason")
    with reg._write() as session:
        reg._authorize(session, "finding.assign")
        if owner is None and due is None:
            raise BadInput("finding assign needs --owner and/or --due")
        row, model, vrow = _locked(session, finding_id)
        if row.status == CLOSED:
            raise InvalidTransition(f"finding #{row.id} is closed: nothing to assign")
        from modelreg.store import repo

        if owner is not None and repo.user_row(session, owner) is None:
            raise NotFound(
                f"owner {owner!r} is not a registered user: add them first with `modelreg user add`"
            )
        before = {"owner": row.owner, "due_at": clock.isoformat(row.due_at)}
        if owner is not None:
            row.owner = owner
        if due_at is not None:
            row.due_at = due_at
        row.updated_at = clock.now()
        session.flush()
        reg._event(
            session,
            "finding.assigned",
            model=model.name,
            version=vrow.version,
            payload=_event_payload(
                row, owner=row.owner, due_at=clock.isoformat(row.due_at), before=before, reason=reason.strip()
            ),
        )
        return to_finding(row, model.name, vrow.version)


def propose(reg: Any, finding_id: int | str, *, remediation: str) -> TrackedFinding:
    """open → remediation_proposed: the owner (or a developer, validator or approver) records the plan."""
    text = (remediation or "").strip()
    if not text:
        raise BadInput("a remediation proposal needs --remediation TEXT")
    if len(text) > 4000:
        raise BadInput(f"--remediation must be at most 4000 characters. Got {len(text)} instead.")
    with reg._write() as session:
        reg._authorize(session, "finding.propose")
        row, model, vrow = _locked(session, finding_id)
        if row.status != OPEN:
            raise InvalidTransition(
                f"finding #{row.id} is {row.status}: a remediation is proposed for an open finding"
            )
        row.status = PROPOSED
        row.remediation = text
        row.updated_at = clock.now()
        session.flush()
        reg._event(
            session,
            "finding.remediation_proposed",
            model=model.name,
            version=vrow.version,
            payload=_event_payload(row, remediation=text),
        )
        return to_finding(row, model.name, vrow.version)


def close(
    reg: Any,
    finding_id: int | str,
    *,
    accept: bool = False,
    reason: str = "",
    key_path: str | Path | None = None,
    policy: str | None = None,
) -> TrackedFinding:
    """Close with evidence: ``accept`` signs an acceptance (the policy's acceptance role, not a developer of the
    model); otherwise a later passing run of the same control must exist."""
    from modelreg.governance.service import load_policy

    pack = load_policy(reg, policy)
    fpolicy = pack.findings_policy
    if fpolicy is None:
        raise BadInput(f"policy pack {pack.ref} has no findings section: findings are not tracked")
    key = None
    if accept:
        if not (reason or "").strip():
            raise BadInput("accepting a finding needs --reason")
        from modelreg.governance.signatures import load_signing_key

        path = Path(key_path) if key_path else reg.settings.signing_key_for(reg.actor)
        key = load_signing_key(path, reg.actor)
    with reg._write() as session:
        user = reg._authorize(session, "finding.close")
        row, model, vrow = _locked(session, finding_id)
        if row.status == CLOSED:
            raise InvalidTransition(f"finding #{row.id} is already closed")
        now = clock.now()
        if not accept:
            evidence = _later_pass(session, row)
            if evidence is None:
                raise InvalidTransition(
                    f"finding #{row.id} ({row.control_id}) has no later passing {row.purpose} run of that control: "
                    f"re-run it, or have a {fpolicy.acceptance_role} accept it (modelreg finding close {row.id} --accept --reason ...)"
                )
            _close(reg, session, row, model.name, vrow.version, now, {"kind": "passed", **evidence})
            return to_finding(row, model.name, vrow.version)
        assert user is not None and key is not None
        if fpolicy.acceptance_role not in user.roles:
            raise PermissionDenied(
                f"a finding is accepted by a {fpolicy.acceptance_role} (policy {pack.ref}); {reg.actor} has {', '.join(user.roles)}"
            )
        if reg.actor in {model.owner, vrow.registered_by}:
            raise SegregationOfDuties(f"{reg.actor} developed {model.name} and cannot accept its findings")
        from modelreg.governance.signatures import build_payload, sign_payload

        payload = build_payload(
            ACCEPTANCE_KIND,
            finding_id=row.id,
            control_id=row.control_id,
            severity=row.severity,
            model=model.name,
            version=vrow.version,
            model_artifact_digest=vrow.artifact_digest or "unknown",
            last_evaluation_id=row.last_evaluation_id,
            role=fpolicy.acceptance_role,
            reason=reason.strip(),
            signer=reg.actor,
            at=clock.isoformat(now),
        )
        data, sig = sign_payload(payload, key, user.public_key_pem, reg.actor)
        rec = SignedRecordRow(
            version_id=vrow.id,
            kind=ACCEPTANCE_KIND,
            role=fpolicy.acceptance_role,
            control_id=row.control_id,
            actor=reg.actor,
            payload=data,
            signature=sig.to_dict(),
            until=None,
            at=now,
        )
        session.add(rec)
        session.flush()
        _close(
            reg,
            session,
            row,
            model.name,
            vrow.version,
            now,
            {"kind": "accepted", "record_id": rec.id, "key_id": sig.key_id, "reason": reason.strip()},
        )
        return to_finding(row, model.name, vrow.version)


def _later_pass(session: Session, row: TrackedFindingRow) -> dict | None:
    from modelreg.store.tables import EvaluationRow, FindingRow

    hit = session.execute(
        select(EvaluationRow.id, EvaluationRow.digest)
        .join(FindingRow, FindingRow.evaluation_id == EvaluationRow.id)
        .where(
            EvaluationRow.version_id == row.version_id,
            EvaluationRow.purpose == row.purpose,
            EvaluationRow.id > row.last_evaluation_id,
            FindingRow.control_id == row.control_id,
            FindingRow.status.in_(PASSED),
        )
        .order_by(EvaluationRow.id.desc())
        .limit(1)
    ).first()
    return None if hit is None else {"evaluation_id": hit[0], "evaluation_digest": hit[1]}


# -- the deploy gate ----------------------------------------------------------------------------------


def blocking_unmet(ctx: Any, pack: Any, already: set[str]) -> list[Any]:
    """Unclosed findings of a blocking severity keep deployment blocked unless their control is waived for
    deployment. Controls the gate already reports (``already``) are not repeated."""
    from modelreg.gates import Unmet
    from modelreg.governance import records

    policy = getattr(pack, "findings_policy", None)
    if policy is None:
        return []
    waivers = records.active_waivers(ctx.session, ctx.version_id, gate="deploy")
    out = []
    for r in ctx.session.execute(
        select(TrackedFindingRow).where(
            TrackedFindingRow.version_id == ctx.version_id, TrackedFindingRow.status != CLOSED
        )
    ).scalars():
        if r.severity not in policy.blocking_severities or r.control_id in waivers or r.control_id in already:
            continue
        out.append(
            Unmet(
                "finding_open",
                f"finding #{r.id} ({r.control_id}, {r.severity}, from {r.purpose}) is {r.status}: close it with "
                f"evidence (a passing re-run or a signed acceptance) or waive the control",
                f"发现问题 #{r.id}（{r.title_zh}）尚未关闭：须整改后复验通过、签署接受或豁免",
                tuple(r.clause_ids or ()),
                r.control_id,
            )
        )
    return out
