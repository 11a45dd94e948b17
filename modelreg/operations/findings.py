"""Findings tracked until remediated.

Every failed control (``fail`` or ``error``) of a validation or monitoring run opens a finding, or updates the
one still open for that control, with the severity's remediation deadline from the policy and the model owner as
its owner. Status: ``open`` → ``remediation_proposed`` → ``closed``. Closing needs evidence: a later passing
run of the same control closes it automatically (in that run's transaction), or a person in the policy's
acceptance role signs an acceptance (Ed25519, the same signed-record machinery as approvals). Each transition
writes exactly one audit event, in the transaction of the change.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from modelreg import clock
from modelreg.domain.findings import CLOSED, OPEN, PROPOSED, STATUSES, TrackedFinding
from modelreg.errors import BadInput, InvalidTransition, NotFound, PermissionDenied, SegregationOfDuties
from modelreg.store import findings as store

__all__ = [
    "ACCEPTANCE_KIND",
    "CLOSED",
    "OPEN",
    "PROPOSED",
    "STATUSES",
    "TrackedFinding",
    "assign",
    "blocking_unmet",
    "close",
    "get_finding",
    "list_findings",
    "open_counts",
    "propose",
    "record_run",
]

TRACKED_PURPOSES = ("validation", "monitoring")
FAILED = ("fail", "error")
# A warning is not a failure (the gates let it through), so a warn closes a finding as a pass does.
PASSED = ("pass", "warn")
ACCEPTANCE_KIND = "acceptance"  # signed_records.kind of a signed finding acceptance


def _result_of(outcome: Any) -> dict:
    return {
        k: getattr(outcome, k, None)
        for k in ("status", "value", "threshold", "comparator", "metric", "feature", "group", "reason")
    }


def _event_payload(f: TrackedFinding, **extra: Any) -> dict:
    return {
        "finding_id": f.id,
        "control_id": f.control_id,
        "purpose": f.purpose,
        "severity": f.severity,
        "status": f.status,
        **extra,
    }


def record_run(
    tx: Any,
    pack: Any,
    purpose: str,
    evaluation_id: int,
    evaluation_digest: str,
    outcomes: list[Any],
) -> dict[str, list[int]]:
    """Open, update or close findings for one stored run, inside the run's unit of work ``tx`` (a
    ``registry.Change`` whose target is the run's version): one audit event per finding touched. Returns the
    ids touched, by transition. Packs without a ``findings`` section track nothing."""
    policy = getattr(pack, "findings_policy", None)
    touched: dict[str, list[int]] = {"opened": [], "updated": [], "closed": []}
    if policy is None or purpose not in TRACKED_PURPOSES:
        return touched
    target = tx.target
    assert target is not None
    session = tx.session
    now = clock.now()
    current = {f.control_id: f for f in store.unclosed(session, target.id, purpose)}
    for o in outcomes:
        existing = current.get(o.control_id)
        if o.status in FAILED:
            if existing is not None:
                f = store.record_repeat(
                    session, existing.id, evaluation_id=evaluation_id, last_result=_result_of(o), at=now
                )
                tx.event(
                    "finding.updated",
                    payload=_event_payload(f, evaluation_id=evaluation_id, occurrences=f.occurrences),
                )
                touched["updated"].append(f.id)
                continue
            control = pack.control(o.control_id)
            severity = o.severity or control.severity
            deadline = policy.remediation.get(severity)
            days = deadline.days if deadline is not None else 0
            new = store.add(
                session,
                version_id=target.id,
                control_id=o.control_id,
                purpose=purpose,
                status=OPEN,
                severity=severity,
                clause_ids=list(o.clause_ids),
                title_zh=control.title_zh,
                title_en=control.title_en,
                owner=target.version.owner,
                due_at=now + timedelta(days=days),
                opened_at=now,
                evaluation_id=evaluation_id,
                last_result=_result_of(o),
            )
            tx.event(
                "finding.opened",
                payload=_event_payload(
                    new,
                    evaluation_id=evaluation_id,
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
                tx,
                existing,
                now,
                {"kind": "passed", "evaluation_id": evaluation_id, "evaluation_digest": evaluation_digest},
            )
            touched["closed"].append(existing.id)
    return touched


def _close(tx: Any, f: TrackedFinding, now: datetime, closure: dict) -> TrackedFinding:
    done = store.set_closed(tx.session, f.id, closed_by=tx.actor, closure=closure, at=now)
    tx.event("finding.closed", payload=_event_payload(done, **closure))
    return done


# -- reads ------------------------------------------------------------------------------------------------


def list_findings(
    reg: Any,
    *,
    model: str | None = None,
    version: str | None = None,
    status: str | None = None,
    owner: str | None = None,
) -> list[TrackedFinding]:
    """``status``: one of STATUSES, ``unclosed`` (open or remediation proposed) or None for all."""
    if getattr(reg, "remote", False):  # MODELREG_URL: the service runs this same function
        return reg.finding_list(model=model, version=version, status=status, owner=owner)
    if status is not None and status not in (*STATUSES, "unclosed"):
        raise BadInput(
            f"--status must be one of {', '.join((*STATUSES, 'unclosed', 'all'))}. Got {status!r} instead."
        )
    if version is not None and model is None:
        raise BadInput("a VERSION needs its model NAME")
    from modelreg.store import repo

    with reg.reading(model=model, version=version) as rd:
        version_id = model_id = None
        if model is not None:
            if rd.target is not None:
                version_id = rd.target.id
            else:
                model_id = repo.model_id(rd.session, model)
                if model_id is None:
                    raise NotFound(f"model {model!r} is not registered")
        return store.find(rd.session, version_id=version_id, model_id=model_id, status=status, owner=owner)


def get_finding(reg: Any, finding_id: int | str) -> TrackedFinding:
    if getattr(reg, "remote", False):  # MODELREG_URL: the service runs this same function
        return reg.finding_show(finding_id)
    finding_id = finding_number(finding_id)
    with reg.reading() as rd:
        found = store.get(rd.session, finding_id)
    if found is None:
        raise NotFound(f"finding #{finding_id} does not exist (modelreg finding list)")
    return found


def open_counts(session: Any, version_id: int) -> dict[str, int]:
    """Unclosed findings of a version by severity."""
    return store.open_counts(session, version_id)


# -- transitions by people ----------------------------------------------------------------------------


def finding_number(finding_id: int | str) -> int:
    """Finding ids are whole numbers (``#12`` is accepted too)."""
    text = str(finding_id).strip().lstrip("#")
    if not text.isdigit():
        raise BadInput(f"a finding id is a number (see modelreg finding list). Got {finding_id!r} instead.")
    return int(text)


def _whose(reg: Any, action: str, finding_id: int | str) -> TrackedFinding:
    """The permission check first (before the id is even parsed), then the finding, so the change can be
    opened on its version."""
    with reg.reading(action) as rd:
        number = finding_number(finding_id)
        found = store.get(rd.session, number)
    if found is None:
        raise NotFound(f"finding #{number} does not exist (modelreg finding list)")
    return found


def _locked(tx: Any, finding_id: int) -> TrackedFinding:
    """The finding's row, locked for the change (two people closing one finding at once: the second waits and
    then sees it closed)."""
    found = store.get(tx.session, finding_id, lock=True)
    if found is None:
        raise NotFound(f"finding #{finding_id} does not exist (modelreg finding list)")
    return found


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
    if getattr(reg, "remote", False):  # MODELREG_URL: the service runs this same function
        return reg.finding_assign(finding_id, owner=owner, due=due, reason=reason)
    due_at = _parse_due(due) if due is not None else None
    if due_at is not None and not (reason or "").strip():
        raise BadInput("moving a finding's due date needs --reason")
    found = _whose(reg, "finding.assign", finding_id)
    if owner is None and due is None:
        raise BadInput("finding assign needs --owner and/or --due")
    from modelreg.store import repo

    with reg.change("finding.assign", model=found.model, version=found.version) as tx:
        f = _locked(tx, found.id)
        if f.status == CLOSED:
            raise InvalidTransition(f"finding #{f.id} is closed: nothing to assign")
        if owner is not None and repo.get_user(tx.session, owner) is None:
            raise NotFound(
                f"owner {owner!r} is not a registered user: add them first with `modelreg user add`"
            )
        before = {"owner": f.owner, "due_at": clock.isoformat(f.due_at)}
        f = store.set_assignment(tx.session, f.id, owner=owner, due_at=due_at, at=clock.now())
        tx.event(
            "finding.assigned",
            payload=_event_payload(
                f, owner=f.owner, due_at=clock.isoformat(f.due_at), before=before, reason=reason.strip()
            ),
        )
        return f


def propose(reg: Any, finding_id: int | str, *, remediation: str) -> TrackedFinding:
    """open → remediation_proposed: the owner (or a developer, validator or approver) records the plan."""
    if getattr(reg, "remote", False):  # MODELREG_URL: the service runs this same function
        return reg.finding_propose(finding_id, remediation=remediation)
    text = (remediation or "").strip()
    if not text:
        raise BadInput("a remediation proposal needs --remediation TEXT")
    if len(text) > 4000:
        raise BadInput(f"--remediation must be at most 4000 characters. Got {len(text)} instead.")
    found = _whose(reg, "finding.propose", finding_id)
    with reg.change("finding.propose", model=found.model, version=found.version) as tx:
        f = _locked(tx, found.id)
        if f.status != OPEN:
            raise InvalidTransition(
                f"finding #{f.id} is {f.status}: a remediation is proposed for an open finding"
            )
        f = store.set_proposed(tx.session, f.id, status=PROPOSED, remediation=text, at=clock.now())
        tx.event("finding.remediation_proposed", payload=_event_payload(f, remediation=text))
        return f


def close(
    reg: Any,
    finding_id: int | str,
    *,
    accept: bool = False,
    reason: str = "",
    key_path: str | Path | None = None,
    policy: str | None = None,
    presigned: dict | None = None,
) -> TrackedFinding:
    """Close with evidence: ``accept`` signs an acceptance (the policy's acceptance role, not a developer of the
    model); otherwise a later passing run of the same control must exist. ``presigned`` is an acceptance the
    signer signed on their own machine from ``acceptance_draft`` (the registry service holds no private keys)."""
    if getattr(reg, "remote", False):  # MODELREG_URL: the service runs this same function
        return reg.finding_close(finding_id, accept=accept, reason=reason, key_path=key_path)
    fpolicy, pack = _findings_policy(reg, policy)
    key = None
    if accept:
        if not (reason or "").strip():
            raise BadInput("accepting a finding needs --reason")
        if presigned is None:
            from modelreg.governance.signatures import load_signing_key

            path = Path(key_path) if key_path else reg.settings.signing_key_for(reg.actor)
            key = load_signing_key(path, reg.actor)
    found = _whose(reg, "finding.close", finding_id)
    with reg.change("finding.close", model=found.model, version=found.version) as tx:
        user, target = tx.user, tx.target
        assert target is not None
        f = _locked(tx, found.id)
        if f.status == CLOSED:
            raise InvalidTransition(f"finding #{f.id} is already closed")
        now = clock.now()
        if not accept:
            evidence = store.later_pass(
                tx.session,
                version_id=target.id,
                purpose=f.purpose,
                control_id=f.control_id,
                after_evaluation_id=f.last_evaluation_id,
                passed=PASSED,
            )
            if evidence is None:
                raise InvalidTransition(
                    f"finding #{f.id} ({f.control_id}) has no later passing {f.purpose} run of that control: "
                    f"re-run it, or have a {fpolicy.acceptance_role} accept it (modelreg finding close {f.id} --accept --reason ...)"
                )
            return _close(tx, f, now, {"kind": "passed", **evidence})
        assert user is not None
        from modelreg.governance.service import _presigned_time, _same_as_draft
        from modelreg.governance.signatures import sign_payload, verify_presigned
        from modelreg.store import governance as gov_store

        if presigned is not None:
            now = _presigned_time(presigned)
        payload = _acceptance_payload(reg, user, target, f, fpolicy, pack, reason, now)
        _same_as_draft(presigned, payload)
        if presigned is not None:
            data, sig = verify_presigned(payload, presigned["signature"], user.public_key_pem, reg.actor)
        else:
            data, sig = sign_payload(payload, key, user.public_key_pem, reg.actor)
        record_id = gov_store.add_signed_record(
            tx.session,
            version_id=target.id,
            kind=ACCEPTANCE_KIND,
            role=fpolicy.acceptance_role,
            control_id=f.control_id,
            actor=reg.actor,
            payload=data,
            signature=sig.to_dict(),
            until=None,
            at=now,
        )
        return _close(
            tx,
            f,
            now,
            {"kind": "accepted", "record_id": record_id, "key_id": sig.key_id, "reason": reason.strip()},
        )


def _findings_policy(reg: Any, policy: str | None):
    from modelreg.governance.service import load_policy

    pack = load_policy(reg, policy)
    fpolicy = pack.findings_policy
    if fpolicy is None:
        raise BadInput(f"policy pack {pack.ref} has no findings section: findings are not tracked")
    return fpolicy, pack


def _acceptance_payload(
    reg: Any, user: Any, target: Any, f: TrackedFinding, fpolicy, pack, reason, now
) -> dict:
    from modelreg.governance.signatures import build_payload

    if fpolicy.acceptance_role not in user.roles:
        raise PermissionDenied(
            f"a finding is accepted by a {fpolicy.acceptance_role} (policy {pack.ref}); {reg.actor} has {', '.join(user.roles)}"
        )
    mv = target.version
    if reg.actor in {mv.owner, mv.registered_by}:
        raise SegregationOfDuties(f"{reg.actor} developed {mv.model} and cannot accept its findings")
    return build_payload(
        ACCEPTANCE_KIND,
        finding_id=f.id,
        control_id=f.control_id,
        severity=f.severity,
        model=mv.model,
        version=mv.version,
        model_artifact_digest=mv.artifact_digest or "unknown",
        last_evaluation_id=f.last_evaluation_id,
        role=fpolicy.acceptance_role,
        reason=reason.strip(),
        signer=reg.actor,
        at=clock.isoformat(now),
    )


def acceptance_draft(reg: Any, finding_id: int | str, *, reason: str, policy: str | None = None) -> dict:
    """The payload ``close(accept=True)`` would sign now, for a signer who signs on their own machine."""
    fpolicy, pack = _findings_policy(reg, policy)
    if not (reason or "").strip():
        raise BadInput("accepting a finding needs --reason")
    found = _whose(reg, "finding.close", finding_id)
    with reg.reading("finding.close", model=found.model, version=found.version) as rd:
        if rd.user is None:
            raise PermissionDenied(reg.unknown_user_message())
        f = store.get(rd.session, found.id)
        assert f is not None
        if f.status == CLOSED:
            raise InvalidTransition(f"finding #{f.id} is already closed")
        return _acceptance_payload(reg, rd.user, rd.target, f, fpolicy, pack, reason, clock.now())


# -- the deploy gate ----------------------------------------------------------------------------------


def blocking_unmet(ctx: Any, pack: Any, already: set[str]) -> list[Any]:
    """Unclosed findings of a blocking severity keep deployment blocked unless their control is waived for
    deployment. Controls the gate already reports (``already``) are not repeated."""
    from modelreg.governance import records
    from modelreg.registry.gates import Unmet

    policy = getattr(pack, "findings_policy", None)
    if policy is None:
        return []
    waivers = records.active_waivers(ctx.session, ctx.version_id, gate="deploy")
    out = []
    for r in store.unclosed(ctx.session, ctx.version_id):
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
