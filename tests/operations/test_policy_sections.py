"""The policy pack's operations sections: the shipped values and their clauses, validation with file:line
errors, a bank's file replacing a section, the schema documentation."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelreg.errors import PolicyError
from modelreg.policy import lint, load_pack, loader

SCHEMA = Path(__file__).resolve().parents[2] / "policies" / "schema.md"

BANK = """\
extends: cn-fin-algo-risk@1.0.0
pack:
  id: acme-ops
  version: "2026.1"
  title_zh: 某银行模型风险政策
  title_en: ACME Bank model risk policy
findings:
  remediation_days:
    blocking: {days: 14, basis: institution}
    major: {days: 60, basis: institution}
    minor: {days: 120, basis: institution}
  acceptance_role: validator
"""


def test_shipped_calendar_matches_the_text_and_the_periodic_control():
    pack = load_pack("cn-fin-algo-risk")
    cal = pack.review_calendar
    reval = cal.review("revalidation")
    assert reval.anchor == "validation" and "CBIRC-2022-26.4" in reval.clauses  # 定期评估模型预测能力
    assert "NFRA-APP-2024-17.1" in reval.secondary_clauses  # cited by analogy only
    # the only cadence numbers any text sets: a yearly assessment and an audit every three years (NFRA app notice)
    assert (reval.interval("high").days, reval.interval("high").basis) == (365, "seed_text")
    assert {t: cal.review("audit").interval(t).days for t in pack.tier_ids} == {
        "high": 1095,
        "medium": 1095,
        "low": 1095,
    }
    # everything else is a convention, and says so
    assert reval.interval("medium").basis == reval.interval("low").basis == "convention"
    assert all(i.basis == "convention" for i in cal.review("periodic_review").intervals.values())
    assert cal.special_audit.interval.basis == "convention" and cal.special_audit.trigger == "suspension"
    assert all(i.basis == "convention" for i in pack.findings_policy.remediation.values())
    # the revalidation intervals agree with the periodic re-evaluation control's own max_age_days
    lc07 = pack.control(cal.overdue_control)
    assert {t: lc07.requirement_params(t)["max_age_days"] for t in pack.tier_ids} == {
        t: reval.interval(t).days for t in pack.tier_ids
    }
    assert dict(cal.overdue_at_monitor_gate) == {"high": "block", "medium": "warn", "low": "warn"}
    # every clause the sections cite is quoted in the pack
    cited = {
        *reval.clauses,
        *reval.secondary_clauses,
        *pack.findings_policy.clauses,
        *pack.vendor_models.clauses,
    }
    for c in pack.vendor_models.attestations:
        cited |= set(c.clauses)
    assert all(pack.clause(c).text_zh for c in cited)


def test_vendor_view_disables_with_reasons_and_keeps_outcome_analysis():
    pack = load_pack("cn-fin-algo-risk")
    view = pack.for_vendor()
    assert view.for_vendor() is view and view.digest != pack.digest
    disabled = {c.id: c for c in view.controls if c.disabled}
    shipped_off = {c.id for c in pack.controls if c.disabled}  # opt-ins such as CHK-ROB-04.exec
    assert set(disabled) == set(pack.vendor_models.not_applicable) | shipped_off
    assert disabled["CHK-XAI-03"].disabled_reason_en.endswith("needs the model internals (SHAP)")
    assert all(not view.control(c).disabled for c in pack.vendor_models.outcome_analysis)
    assert {c.id for c in view.controls_for("deploy", "high", kind="attestation")} >= {
        "CHK-TP-05",
        "CHK-TP-06",
    }
    assert "CHK-TP-05" not in {c.id for c in pack.controls_for("deploy", "high")}


def test_a_bank_file_replaces_a_section(tmp_path):
    path = tmp_path / "acme.yaml"
    path.write_text(BANK, encoding="utf-8")
    merged = load_pack(path)
    assert merged.findings_policy.remediation["blocking"].days == 14
    assert merged.findings_policy.acceptance_role == "validator"
    assert merged.review_calendar == load_pack("cn-fin-algo-risk").review_calendar  # untouched sections stay


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "    blocking: {days: 14, basis: institution}",
            "    blocking: {days: -1, basis: institution}",
            "whole number of days",
        ),
        (
            "    blocking: {days: 14, basis: institution}",
            "    blocking: {days: 14, basis: law}",
            "basis must be one of",
        ),
        (
            "    blocking: {days: 14, basis: institution}",
            "    urgent: {days: 14, basis: institution}",
            "severity must be one of",
        ),
        ("  acceptance_role: validator", "  acceptance_role: ceo", "acceptance_role must be one of"),
        ("  acceptance_role: validator", "  acceptance_role: validator\n  owner: x", "unknown key 'owner'"),
    ],
)
def test_bad_sections_name_the_file_and_line(tmp_path, old, new, message):
    text = BANK.replace(old, new)
    path = tmp_path / "acme.yaml"
    path.write_text(text, encoding="utf-8")
    errors = [m for m in lint(path) if m.level == "error"]
    assert errors and message in errors[0].message, errors
    assert errors[0].file == str(path)
    bad_line = next(
        i for i, line in enumerate(text.splitlines(), start=1) if line.strip() == new.splitlines()[-1].strip()
    )
    assert errors[0].line == bad_line
    with pytest.raises(PolicyError, match=message):
        load_pack(path)


def test_calendar_errors(tmp_path):
    text = BANK + (
        "review_calendar:\n  due_soon_days: 30\n  reviews:\n    revalidation:\n      title_zh: a\n      title_en: b\n"
        "      anchor: lunch\n      clauses: [CBIRC-2022-26.4]\n      intervals:\n        high: {days: 365, basis: convention}\n"
        "  overdue_at_monitor_gate: {high: panic}\n"
    )
    path = tmp_path / "acme.yaml"
    path.write_text(text, encoding="utf-8")
    messages = " | ".join(m.message for m in lint(path) if m.level == "error")
    assert "anchor must be one of" in messages
    assert "intervals must give every tier; missing ['medium', 'low']" in messages
    assert "overdue_at_monitor_gate: high must be one of ['block', 'warn']" in messages


def test_operations_keys_are_documented():
    doc = SCHEMA.read_text(encoding="utf-8")
    keys = {
        *loader._OPERATIONS_SECTIONS,
        *loader._CALENDAR_KEYS,
        *loader._REVIEW_KEYS,
        *loader._INTERVAL_KEYS,
        *loader._SPECIAL_AUDIT_KEYS,
        *loader._FINDINGS_KEYS,
        *loader._VENDOR_KEYS,
    }
    assert sorted(k for k in keys if f"`{k}`" not in doc and f"{k}:" not in doc) == []
    from modelreg.policy.model import OVERDUE_ACTIONS, REVIEW_ANCHORS, SPECIAL_AUDIT_TRIGGERS

    assert [v for v in (*OVERDUE_ACTIONS, *REVIEW_ANCHORS, *SPECIAL_AUDIT_TRIGGERS) if v not in doc] == []


def test_intervals_per_model_type(tmp_path):
    text = BANK + (
        "review_calendar:\n  due_soon_days: 14\n  reviews:\n    revalidation:\n      title_zh: 重新验证\n"
        "      title_en: Revalidation\n      anchor: validation\n      clauses: [CBIRC-2022-26.4]\n      intervals:\n"
        "        high: {days: 365, basis: seed_text}\n        medium: {days: 730, basis: convention}\n"
        "        low: {days: 1095, basis: convention}\n      by_model_type:\n"
        "        scorecard: {high: {days: 180, basis: institution}}\n"
    )
    path = tmp_path / "acme.yaml"
    path.write_text(text, encoding="utf-8")
    reval = load_pack(path).review_calendar.review("revalidation")
    assert (
        reval.interval("high", "scorecard").days == 180
        and reval.interval("high", "scorecard").basis == "institution"
    )
    assert reval.interval("high", "gbm").days == 365 and reval.interval("medium", "scorecard").days == 730
    assert load_pack(path).review_calendar.due_soon.days == 14
