"""The review calendar: when each deployed version is next due for revalidation, periodic review and audit.

Intervals come from the policy pack's ``review_calendar`` (per risk tier, optionally per model type, each with
its clause and basis). The next due date is the anchor (the latest validation, the latest monitoring run, the
latest signed audit attestation; the deployment when there is none yet) plus the tier's interval. A suspension
(a major incident) makes a special audit due unless an audit was attested after it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from modelreg import clock
from modelreg.domain.records import VersionState
from modelreg.errors import BadInput
from modelreg.store import repo

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

OVERDUE = "overdue"
DUE_SOON = "due_soon"
OK = "ok"


@dataclass(frozen=True)
class DueItem:
    model: str
    version: str
    risk_tier: str
    owner: str
    suspended: bool
    vendor: str | None
    review: str
    title_zh: str
    title_en: str
    anchor: str
    last_at: datetime | None  # when the anchor last happened (None: never; counted from deployment)
    interval_days: int
    basis: str
    clause_ids: tuple[str, ...]
    due_at: datetime
    days_left: int  # negative when overdue
    status: str  # overdue | due_soon | ok

    def to_dict(self) -> dict:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, datetime):
                value = clock.isoformat(value)
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out


def parse_within(text: str | int | None) -> int | None:
    """``30d``, ``6w`` or a number of days."""
    if text is None or isinstance(text, int):
        return text
    m = re.fullmatch(r"\s*(\d+)\s*([dw]?)\s*", str(text))
    if not m:
        raise BadInput(f"--within must be a number of days such as 30d or 6w. Got {text!r} instead.")
    return int(m.group(1)) * (7 if m.group(2) == "w" else 1)


def _anchor_time(session: Session, version_id: int, anchor: str) -> datetime | None:
    if anchor in ("validation", "monitoring"):
        from modelreg.store import governance as gov_store

        ev = gov_store.latest_evaluation(session, version_id, anchor)
        return clock.to_utc(ev.created_at) if ev is not None else None
    control = anchor.split(":", 1)[1]
    # Only attestations whose signature verifies count as the audit having happened.
    from modelreg.governance import records

    times = [
        r.at
        for r in records.signed_records(session, version_id, "attestation")
        if r.counts and r.control_id == control and r.payload.get("control_id") == control
    ]
    return max(times) if times else None


def _last_transition(session: Session, version_id: int, action: str) -> datetime | None:
    return repo.last_transition_at(session, version_id, action)


def _status(due_at: datetime, now: datetime, soon_days: int) -> tuple[str, int]:
    left = due_at - now
    days = int(left.total_seconds() // 86400)
    if left.total_seconds() < 0:
        return OVERDUE, days
    return (DUE_SOON if left <= timedelta(days=soon_days) else OK), days


def version_items(
    session: Session, pack: Any, state: VersionState, now: datetime, soon_days: int
) -> list[DueItem]:
    """Every review of one version (deployed or not), computed from the registry as it stands."""
    from modelreg.operations import vendor_of

    cal = pack.review_calendar
    if cal is None:
        return []
    mv = state.version
    vendor = vendor_of(mv)
    model_type = (mv.model_card or {}).get("model_type")
    deployed_at = _last_transition(session, state.id, "deploy") or clock.to_utc(mv.created_at)
    out = []

    def item(review: str, title_zh: str, title_en: str, anchor: str, last, interval, clauses, due_at):
        status, left = _status(due_at, now, soon_days)
        return DueItem(
            mv.model,
            mv.version,
            mv.risk_tier,
            mv.owner,
            bool(mv.suspended),
            vendor,
            review,
            title_zh,
            title_en,
            anchor,
            last,
            interval.days,
            interval.basis,
            tuple(clauses),
            due_at,
            left,
            status,
        )

    for kind in cal.reviews:
        interval = kind.interval(mv.risk_tier, model_type)
        if interval is None:
            continue
        last = _anchor_time(session, state.id, kind.anchor)
        start = last or deployed_at
        out.append(
            item(
                kind.id,
                kind.title_zh,
                kind.title_en,
                kind.anchor,
                last,
                interval,
                kind.clauses,
                start + timedelta(days=interval.days),
            )
        )
    sa = cal.special_audit
    if sa is not None and sa.trigger == "suspension":
        incident = _last_transition(session, state.id, "suspend")
        audit = cal.review("audit")
        audited = _anchor_time(session, state.id, audit.anchor) if audit is not None else None
        if incident is not None and (audited is None or audited < incident):
            out.append(
                item(
                    "special_audit",
                    sa.title_zh,
                    sa.title_en,
                    "suspension",
                    incident,
                    sa.interval,
                    sa.clauses,
                    incident + timedelta(days=sa.interval.days),
                )
            )
    return out


def calendar(reg: Any, *, within_days: int | None = None, policy: str | None = None) -> dict:
    """The calendar of every deployed version: ``items`` that are overdue or due within ``within_days`` (the
    policy's due-soon window by default), and ``all`` of them."""
    if getattr(reg, "remote", False):
        return reg.calendar(within_days=within_days, policy=policy)
    from modelreg.governance.service import load_policy
    from modelreg.operations import effective_pack

    base = load_policy(reg, policy)
    if base.review_calendar is None:
        raise BadInput(f"policy pack {base.ref} has no review_calendar section")
    soon = base.review_calendar.due_soon.days if within_days is None else within_days
    if soon < 0:
        raise BadInput(f"--within must be >= 0 days. Got {soon} instead.")
    now = clock.now()
    items: list[DueItem] = []
    with reg.reading() as rd:
        for state in repo.version_states(rd.session, stage="deploy"):
            pack = effective_pack(base, state.version)
            items.extend(version_items(rd.session, pack, state, now, soon))
    items.sort(key=lambda i: (i.due_at, i.model, i.version, i.review))
    listed = [i for i in items if i.status != OK]
    return {
        "as_of": now,
        "within_days": soon,
        "policy": base.ref,
        "items": listed,
        "all": items,
        "overdue": [i for i in items if i.status == OVERDUE],
    }


def revalidation_item(session: Session, pack: Any, state: VersionState) -> DueItem | None:
    cal = pack.review_calendar
    if cal is None:
        return None
    items = version_items(session, pack, state, clock.now(), cal.due_soon.days)
    return next((i for i in items if i.review == "revalidation"), None)


def overdue_outcome(reg: Any, pack: Any, mv: Any) -> Any | None:
    """At the monitor gate: a fail (policy ``block``) or warn outcome of the calendar's control when the
    version's revalidation is overdue; None when it is not overdue or the pack has no calendar."""
    from modelreg.policy.model import STATUS_FAIL, STATUS_WARN, ControlOutcome

    cal = pack.review_calendar
    if cal is None or cal.overdue_control is None:
        return None
    with reg.reading(model=mv.model, version=mv.version) as rd:
        assert rd.target is not None
        item = revalidation_item(rd.session, pack, rd.target)
    if item is None or item.status != OVERDUE:
        return None
    control = pack.control(cal.overdue_control)
    action = cal.overdue_at_monitor_gate.get(mv.risk_tier, "warn")
    last = clock.isoformat(item.last_at)[:10] if item.last_at else "never"
    return ControlOutcome(
        control_id=control.id,
        status=STATUS_FAIL if action == "block" else STATUS_WARN,
        value=float(-item.days_left),
        threshold=float(0),
        comparator="gt",
        metric="days_overdue",
        feature=None,
        group=None,
        reason=(
            f"revalidation overdue by {-item.days_left} day(s): last validation {last}, "
            f"interval {item.interval_days} days for a {mv.risk_tier}-risk model ({item.basis}); policy: {action} / "
            f"重新验证已逾期 {-item.days_left} 天"
        ),
        clause_ids=tuple(item.clause_ids) or tuple(control.clauses),
        severity=control.severity,
        tier=mv.risk_tier,
        monitor=None,
        basis=item.basis,
    )
