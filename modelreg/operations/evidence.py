"""The evidence pack's operations section (``operations.json``): the version's review calendar with any
overdue flag, its tracked findings, and, for a vendor-supplied version, which controls did not apply and why."""

from __future__ import annotations

from typing import Any

from modelreg import clock


def section(registry: Any, session: Any, target: Any) -> dict:
    """``target``: the version (``VersionState``) as read in the pack's own snapshot ``session``."""
    from modelreg.errors import ModelregError
    from modelreg.governance.service import load_policy
    from modelreg.operations import effective_pack, vendor_of
    from modelreg.operations.calendar import OVERDUE, version_items
    from modelreg.store import findings as findings_store

    mv = target.version
    try:
        pack = effective_pack(load_policy(registry), mv)
    except ModelregError as exc:  # the auditor still gets the rest of the pack
        return {"error": f"policy pack could not be loaded: {exc.message}"}
    cal = pack.review_calendar
    items = version_items(session, pack, target, clock.now(), cal.due_soon.days) if cal else []
    overdue = [i for i in items if i.status == OVERDUE] if target.stage == "deploy" else []
    vendor = vendor_of(mv)
    vm = pack.vendor_models if vendor else None
    # No build time in here: two builds of one pack must be identical but for the manifest's generation time.
    return {
        "overdue": bool(overdue),
        "flag": (
            f"逾期 OVERDUE: {', '.join(f'{i.review} {i.title_zh} / {i.title_en} (due {clock.isoformat(i.due_at)[:10]})' for i in overdue)}"
            if overdue
            else None
        ),
        "calendar": [i.to_dict() for i in items],
        "findings": [f.to_dict() for f in findings_store.find(session, version_id=target.id)],
        "supplier": vendor,
        "vendor_view": None
        if vm is None
        else {
            "title_zh": vm.title_zh,
            "title_en": vm.title_en,
            "note_zh": vm.note_zh,
            "note_en": vm.note_en,
            "clauses": list(vm.clauses),
            "not_applicable": {k: v.to_dict() for k, v in vm.not_applicable.items()},
            "outcome_analysis": list(vm.outcome_analysis),
            "vendor_attestations": [c.id for c in vm.attestations],
            "effective_policy_digest": pack.digest,
        },
    }
