"""Machine checks of signed attestations against the pack's own files.

An attestation is a person's word; the registry cannot check most of it. Some statements, though, make a
claim a file in the pack can contradict: a count of stress scenarios the robustness result shows, a shadow
period the lifecycle's dates rule out, named data owners where the data sets record none. Each rule below
reads only what the pack holds, and a contradiction becomes a finding on the pack's pages (and in
``findings/attestation_contradictions.json``), next to the attestation it contradicts.

The numbers are those of the signed statements (quoted in each rule), not new thresholds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from modelreg import clock

FILE = "findings/attestation_contradictions.json"


@dataclass(frozen=True)
class Contradiction:
    control_id: str
    record_id: int
    signer: str
    signed_at: str
    claim_zh: str
    claim_en: str
    found_zh: str
    found_en: str
    evidence: tuple[str, ...]

    def to_dict(self) -> dict:
        return {
            "control_id": self.control_id,
            "record_id": self.record_id,
            "signer": self.signer,
            "signed_at": self.signed_at,
            "claim_zh": self.claim_zh,
            "claim_en": self.claim_en,
            "found_zh": self.found_zh,
            "found_en": self.found_en,
            "evidence": list(self.evidence),
            "status": "contradicted",
        }


def _latest(evaluations: list, purposes: tuple[str, ...]) -> Any | None:
    found = [e for e in evaluations if e.purpose in purposes]
    return max(found, key=lambda e: (e.created_at, e.id)) if found else None


def _stress(ctx: Any, rec: Any) -> Contradiction | None:
    """CHK-ROB-01.review: "at least three stress scenarios were run" (至少运行了 3 个压力情景)."""
    c = ctx.collected
    ev = _latest([e for e in c.evaluations if e.created_at <= rec.at], ("validation", "monitoring"))
    if ev is None:
        return None
    result = c.monitor_results.get(ev.id, {}).get("robustness")
    if result is None:
        return None
    scored = {
        m.get("group")
        for m in result.get("metrics", [])
        if m.get("name") == "stress_approval_rate_change" and m.get("value") is not None
    }
    declared = len((result.get("params") or {}).get("scenarios") or [])
    if len(scored) >= 3:
        return None
    return Contradiction(
        rec.control_id,
        rec.id,
        rec.actor,
        clock.isoformat(rec.at),
        "至少运行了 3 个压力情景",
        "at least three stress scenarios were run",
        f"{ev.purpose} #{ev.id} 的稳健性结果声明了 {declared} 个情景，成功评分 {len(scored)} 个",
        f"the robustness result of {ev.purpose} #{ev.id} declares {declared} scenario(s), {len(scored)} scored",
        (ctx.paths.result(ev.id, "robustness"), ctx.paths.signed(rec.id, rec.kind)),
    )


SHADOW_DAYS = 28  # "at least four weeks for high-risk models" (高风险模型不少于 4 周)


def _shadow(ctx: Any, rec: Any) -> Contradiction | None:
    """CHK-ROB-05: a shadow run of at least four weeks (high risk). It cannot have happened before the
    version existed, so it cannot be complete earlier than four weeks after registration: neither when the
    attestation was signed nor when the version was deployed."""
    c = ctx.collected
    if c.version.risk_tier != "high":
        return None
    registered = c.version.created_at
    deployed = next((h.at for h in c.history if h.action == "deploy"), None)
    moments = [("signed", rec.at)] + ([("deployed", deployed)] if deployed is not None else [])
    what, earliest = min(moments, key=lambda m: m[1])
    gap = earliest - registered
    if gap >= timedelta(days=SHADOW_DAYS):
        return None
    zh_what = {"signed": "声明签署", "deployed": "上线"}[what]
    return Contradiction(
        rec.control_id,
        rec.id,
        rec.actor,
        clock.isoformat(rec.at),
        "高风险模型影子运行不少于 4 周",
        "a shadow run of at least four weeks (high-risk model)",
        f"版本登记于 {clock.isoformat(registered)}，{zh_what}于 {clock.isoformat(earliest)}，间隔 {_duration(gap)}",
        f"the version was registered at {clock.isoformat(registered)} and {what} at {clock.isoformat(earliest)}, "
        f"{_duration(gap)} later",
        (ctx.paths.version_file, ctx.paths.signed(rec.id, rec.kind)),
    )


def _owners(ctx: Any, rec: Any) -> Contradiction | None:
    """CHK-DQ-05: "every data set the model uses has a named data owner" (每个数据集均有明确的数据责任人)."""
    c = ctx.collected
    nameless = [d for d in c.datasets if d.at <= rec.at and not (d.owner or "").strip()]
    if not nameless:
        return None
    names = ", ".join(f"{d.role} {d.name}" for d in nameless)
    return Contradiction(
        rec.control_id,
        rec.id,
        rec.actor,
        clock.isoformat(rec.at),
        "每个数据集均有明确的数据责任人",
        "every data set has a named data owner",
        f"{len(nameless)} 个数据集的责任人为空：{names}",
        f"{len(nameless)} data set(s) record no owner: {names}",
        (ctx.paths.version_file, ctx.paths.signed(rec.id, rec.kind)),
    )


def _duration(gap: timedelta) -> str:
    seconds = gap.total_seconds()
    if seconds < 3600:
        return f"{seconds:.0f} s"
    if seconds < 86400 * 2:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


RULES: dict[str, Callable[[Any, Any], Contradiction | None]] = {
    "CHK-ROB-01.review": _stress,
    "CHK-ROB-05": _shadow,
    "CHK-DQ-05": _owners,
}


def contradictions(ctx: Any) -> list[Contradiction]:
    """Every valid attestation a rule applies to, checked against the pack's files."""
    out = []
    for rec in ctx.collected.signed:
        if rec.kind != "attestation" or not rec.counts:
            continue
        rule = RULES.get(rec.control_id or "")
        hit = rule(ctx, rec) if rule else None
        if hit is not None:
            out.append(hit)
    return out
