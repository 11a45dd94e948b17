"""Everything the validation report says, read from the registry in one place."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from modelreg import clock
from modelreg.errors import BadInput, NotFound


def _fmt_time(value) -> str:
    return clock.isoformat(value)[:19].replace("T", " ") + " UTC" if value is not None else ""


def conclusion(findings: list[dict]) -> dict:
    """Passed when no control failed; conditionally passed when every failure is waived; else not passed."""
    failed = [f for f in findings if f["status"] in ("fail", "error")]
    waived = [f for f in findings if f["status"] == "waived"]
    if failed:
        return {
            "code": "not_passed",
            "zh": f"未通过：{len(failed)} 项控制未通过或无法判定",
            "en": f"Not passed: {len(failed)} control(s) failed or could not be evaluated",
        }
    if waived:
        return {
            "code": "passed_with_waivers",
            "zh": f"有条件通过：{len(waived)} 项控制经豁免",
            "en": f"Passed with conditions: {len(waived)} control(s) waived",
        }
    return {"code": "passed", "zh": "通过", "en": "Passed"}


def report_data(
    reg: Any,
    name: str,
    version: str,
    *,
    evidence_pack: str | Path | None = None,
    policy: str | None = None,
) -> dict:
    from modelreg.governance import service
    from modelreg.operations import effective_pack, vendor_of
    from modelreg.operations.findings import ACCEPTANCE_KIND, list_findings

    version = str(version)
    if getattr(reg, "remote", False):
        # MODELREG_URL: the service reads the registry (this same function); the pack is the caller's file
        data = reg.report_data(name, version, policy=policy)
        return {**data, "evidence_pack": _evidence(evidence_pack)}
    mv = reg.show(name, version)
    evs = service.latest(reg, name, version, "validation")
    if not evs:
        raise NotFound(
            f"{name} {version} has no validation evaluation: a validator runs `modelreg validate` first"
        )
    ev = evs[0]
    pack = effective_pack(service.load_policy(reg, policy), mv)
    datasets = reg.datasets(name, version)
    signed = service.signed(reg, name, version)
    tracked = list_findings(reg, model=name, version=version)

    def clause_text(cid: str) -> dict:
        try:
            c = pack.clause(cid)
            return {"id": cid, "title_zh": c.title_zh, "title_en": c.title_en}
        except NotFound:
            return {"id": cid, "title_zh": "", "title_en": ""}

    controls = []
    for f in ev.findings:
        d = f.to_dict()
        controls.append(
            {
                "control_id": f.control_id,
                "title_zh": d.get("title_zh", ""),
                "title_en": d.get("title_en", ""),
                "status": f.status,
                "severity": f.severity,
                "metric": d.get("metric"),
                "value": d.get("value"),
                "comparator": d.get("comparator"),
                "threshold": d.get("threshold"),
                "basis": d.get("basis"),
                "clause_ids": list(f.clause_ids),
                "reason": d.get("reason") or "",
            }
        )
    evidence = _evidence(evidence_pack)
    vendor = vendor_of(mv)
    vm = pack.vendor_models if vendor else None
    return {
        "review_status": _review_status(reg, pack, name, version),
        "title_zh": "模型验证报告",
        "title_en": "Model validation report",
        "generated_at": _fmt_time(clock.now()),
        "model": {
            "name": mv.model,
            "version": mv.version,
            "owner": mv.owner,
            "risk_tier": mv.risk_tier,
            "purpose": mv.purpose,
            "business_line": mv.business_line or "",
            "stage": mv.stage.value,
            "supplier": vendor or "in-house / 自研",
            "artifact_digest": mv.artifact_digest or "",
            "model_uri": mv.model_uri or "",
        },
        "scope": {
            "evaluation_id": ev.id,
            "evaluation_digest": ev.digest,
            "validated_by": ev.created_by,
            "validated_at": _fmt_time(ev.created_at),
            "gate": ev.gate,
            "tier": ev.tier,
            "policy": f"{ev.policy_id}@{ev.policy_version}",
            "policy_digest": ev.policy_digest,
            "status": ev.status,
        },
        "data": [
            {"role": d.role, "name": d.name, "rows": d.rows, "digest": d.digest, "owner": d.owner or ""}
            for d in datasets
        ],
        "fingerprints": list(ev.data.get("fingerprints") or []),
        "methodology": {
            "monitors": sorted((ev.data.get("params") or {}).keys()),
            "model_loading": ev.data.get("model_loading") or "",
            "notes": list(ev.data.get("notes") or []),
            "vendor": None
            if vm is None
            else {
                "note_zh": vm.note_zh,
                "note_en": vm.note_en,
                "not_applicable": {k: [v.reason_zh, v.reason_en] for k, v in vm.not_applicable.items()},
                "outcome_analysis": list(vm.outcome_analysis),
            },
        },
        "controls": controls,
        "clauses": [clause_text(c) for c in sorted({c for x in controls for c in x["clause_ids"]})],
        "findings": [
            {
                "id": t.id,
                "control_id": t.control_id,
                "purpose": t.purpose,
                "severity": t.severity,
                "status": t.status,
                "owner": t.owner,
                "due": clock.isoformat(t.due_at)[:10],
                "remediation": t.remediation or "",
                "closure": (t.closure or {}).get("kind", ""),
                "occurrences": t.occurrences,
            }
            for t in tracked
        ],
        "waivers": [
            {
                "control_id": w.control_id,
                "by": w.actor,
                "until": w.payload.get("until", ""),
                "reason": w.payload.get("reason", ""),
                "key_id": w.signature.get("key_id", ""),
                "valid": w.counts,
            }
            for w in signed
            if w.kind == "waiver"
        ],
        "approvals": [
            {
                "kind": r.kind,
                "role": r.role or "",
                "signer": r.actor,
                "key_id": r.signature.get("key_id", ""),
                "algorithm": r.signature.get("algorithm", ""),
                "at": _fmt_time(r.at),
                "valid": r.counts,
                "comment": r.payload.get("comment") or r.payload.get("reason") or "",
                "bound_to_this_evaluation": r.payload.get("evaluation_digest") == ev.digest,
            }
            for r in signed
            if r.kind in ("approval", "rejection", ACCEPTANCE_KIND)
        ],
        "conclusion": conclusion([c for c in controls]),
        "evidence_pack": evidence,
    }


def _evidence(evidence_pack: str | Path | None) -> dict | None:
    """The evidence pack the report refers to: its file name and SHA-256, read where the file is (the
    caller's machine, also over MODELREG_URL: the pack is never uploaded)."""
    if evidence_pack is None:
        return None
    p = Path(evidence_pack)
    if not p.is_file():
        raise BadInput(f"--evidence-pack {p} is not a file")
    return {"file": p.name, "sha256": hashlib.sha256(p.read_bytes()).hexdigest()}


def _review_status(reg: Any, pack: Any, name: str, version: str) -> str:
    """The calendar's word on a deployed version: overdue reviews are flagged on the report's first page."""
    from modelreg.operations.calendar import OVERDUE, version_items

    if pack.review_calendar is None:
        return "–"
    with reg.reading(model=name, version=version) as rd:
        target = rd.target
        assert target is not None
        if target.stage != "deploy":
            return f"未上线 not deployed ({target.stage})"
        items = version_items(rd.session, pack, target, clock.now(), pack.review_calendar.due_soon.days)
    late = [i for i in items if i.status == OVERDUE]
    if not late:
        return "按期 on schedule"
    return "逾期 OVERDUE: " + "; ".join(
        f"{i.review} {i.title_zh} / {i.title_en} due {clock.isoformat(i.due_at)[:10]}" for i in late
    )
