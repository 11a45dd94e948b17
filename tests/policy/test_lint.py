"""Lint and load errors name file and line; the small valid pack here is shared with the other policy tests."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from modelreg.errors import PolicyError
from modelreg.policy import lint, load_pack

MINI = """\
pack:
  id: mini
  version: "1"
  title_zh: 迷你政策包
  title_en: Mini pack
tiers:
  high: {title_zh: 高风险, title_en: High risk, approvals: {validator: 1, approver: 2}}
  low: {title_zh: 低风险, title_en: Low risk, approvals: {validator: 1, approver: 1}}
clauses:
  - id: C-1
    source: S
    item: "1"
    title_zh: 条款一
    title_en: Clause one
    text_zh: 应当防范算法歧视。
    text_en: Prevent algorithmic discrimination.
  - id: C-2
    source: S
    item: "2"
    title_zh: 条款二
    title_en: Clause two
    text_zh: 应当防范模型漂移。
    text_en: Prevent model drift.
controls:
  - id: FAIR
    title_zh: 公平
    title_en: Fairness
    clauses: [C-1]
    gates: [deploy, monitor]
    severity: blocking
    check:
      monitor: fairness
      metric: demographic_parity_ratio
      feature: "*"
      comparator: lt
      thresholds:
        high: {warn: 0.9, fail: 0.8}
        low: {warn: 0.8, fail: 0.7}
      params: {min_group_size: 30}
      basis: convention
      note_zh: 五分之四规则是惯例
      note_en: the four-fifths rule is a convention
  - id: PSI
    title_zh: 漂移
    title_en: Drift
    clauses: [C-2]
    gates: [monitor]
    severity: major
    on_breach: {high: suspend}
    check:
      monitor: drift
      metric: max_psi
      comparator: ge
      thresholds:
        high: {warn: 0.1, fail: 0.25}
        low: {warn: 0.1, fail: 0.25}
      basis: convention
      note_zh: 惯例
      note_en: convention
  - id: SIGN
    title_zh: 签字
    title_en: Sign-off
    clauses: [C-1, C-2]
    gates: [deploy]
    severity: major
    tiers: [high]
    attestation: {role: approver, statement_zh: 本人已审阅。, statement_en: I reviewed it.}
  - id: CARD
    title_zh: 模型卡
    title_en: Model card
    clauses: [C-1]
    gates: [submit, deploy]
    severity: blocking
    requirement: model_card_complete
"""


def write(folder: Path, text: str, name: str = "pack.yaml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def variant(old: str, new: str, *, count: int = 1) -> str:
    assert MINI.count(old) >= 1, f"{old!r} is not in the mini pack"
    return MINI.replace(old, new, count)


def line_of(text: str, marker: str, occurrence: int = 1) -> int:
    """1-based line of the ``occurrence``-th line containing ``marker``."""
    seen = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if marker in line:
            seen += 1
            if seen == occurrence:
                return number
    raise AssertionError(f"{marker!r} not found")


# -- tests ---------------------------------------------------------------------------------------------


def test_mini_pack_is_clean(tmp_path):
    path = write(tmp_path, MINI)
    assert lint(path) == []
    pack = load_pack(path)
    assert pack.ref == "mini@1"
    assert [c.id for c in pack.controls] == ["FAIR", "PSI", "SIGN", "CARD"]


# (description, old, new, marker of the line the error must name, fragment of the message)
BROKEN = [
    (
        "unknown key in a control",
        "    severity: major\n    on_breach",
        "    severty: major\n    on_breach",
        "severty:",
        "unknown key 'severty'",
    ),
    (
        "wrong type",
        "    severity: blocking\n    check:",
        "    severity: 3\n    check:",
        "severity: 3",
        "severity must be one of",
    ),
    ("unknown monitor", "monitor: drift", "monitor: drfit", "monitor: drfit", "monitor must be one of"),
    (
        "unknown metric",
        "metric: max_psi",
        "metric: max_pis",
        "metric: max_pis",
        "metric must be a known drift metric",
    ),
    ("bad comparator", "comparator: ge", "comparator: gte", "comparator: gte", "comparator must be one of"),
    (
        "warn after fail (lt)",
        "high: {warn: 0.9, fail: 0.8}",
        "high: {warn: 0.7, fail: 0.8}",
        "high: {warn: 0.7",
        "warn threshold must be at or above the fail",
    ),
    (
        "warn after fail (ge)",
        "high: {warn: 0.1, fail: 0.25}",
        "high: {warn: 0.3, fail: 0.25}",
        "high: {warn: 0.3",
        "warn threshold must be at or below the fail",
    ),
    (
        "unknown clause in a control",
        "clauses: [C-1, C-2]",
        "clauses: [C-1, C-9]",
        "clauses: [C-1, C-9]",
        "unknown clause id 'C-9'",
    ),
    ("duplicate control id", "  - id: SIGN", "  - id: PSI", ("  - id: PSI", 2), "duplicate control id 'PSI'"),
    ("duplicate clause id", "  - id: C-2", "  - id: C-1", ("  - id: C-1", 2), "duplicate clause id 'C-1'"),
    ("missing English text", "    text_en: Prevent model drift.\n", "", "  - id: C-2", "missing 'text_en'"),
    (
        "missing Chinese statement",
        "statement_zh: 本人已审阅。, ",
        "",
        "attestation: {role",
        "missing 'statement_zh'",
    ),
    (
        "thresholds missing for a tier",
        "        low: {warn: 0.1, fail: 0.25}\n",
        "",
        "        high: {warn: 0.1, fail: 0.25}",
        "thresholds are missing for tier 'low'",
    ),
    (
        "unknown requirement",
        "requirement: model_card_complete",
        "requirement: model_card_done",
        "requirement: model_card_done",
        "requirement id must be one of",
    ),
    ("unknown tier in control", "tiers: [high]", "tiers: [hihg]", "tiers: [hihg]", "tier must be one of"),
    (
        "unknown gate",
        "gates: [submit, deploy]",
        "gates: [submit, deploy, validate]",
        "gates: [submit, deploy, validate]",
        "gate must be one of",
    ),
    (
        "suspend outside the monitor gate",
        "    gates: [deploy, monitor]\n    severity: blocking\n",
        "    gates: [deploy]\n    severity: blocking\n    on_breach: suspend\n",
        "on_breach: suspend",
        "allowed only for a check at the 'monitor' gate",
    ),
    ("unquoted version", 'version: "1"', "version: 1.0", "version: 1.0", "(quote it)"),
    (
        "threshold is text",
        "low: {warn: 0.8, fail: 0.7}",
        "low: {warn: 0.8, fail: high}",
        "low: {warn: 0.8, fail: high}",
        "fail must be a number",
    ),
    (
        "two kinds in one control",
        "    requirement: model_card_complete",
        "    requirement: model_card_complete\n    attestation: {role: approver, statement_zh: 是, statement_en: yes}",
        "  - id: CARD",
        "exactly one of 'check', 'attestation' or 'requirement'",
    ),
    (
        "duplicate YAML key",
        "    title_en: Drift\n",
        "    title_en: Drift\n    title_en: Drift again\n",
        "title_en: Drift again",
        "duplicate key 'title_en'",
    ),
    (
        "YAML syntax error",
        "    gates: [monitor]",
        "    gates: [monitor",
        "gates: [monitor",
        "YAML syntax error",
    ),
    ("unknown role", "role: approver", "role: boss", "role: boss", "role must be one of"),
]


@pytest.mark.parametrize(
    ("old", "new", "marker", "fragment"), [case[1:] for case in BROKEN], ids=[case[0] for case in BROKEN]
)
def test_broken_pack_names_file_and_line(tmp_path, old, new, marker, fragment):
    text = variant(old, new)
    path = write(tmp_path, text)
    marker, occurrence = marker if isinstance(marker, tuple) else (marker, 1)
    expected_line = line_of(text, marker, occurrence)
    messages = [m for m in lint(path) if m.level == "error"]
    hit = [m for m in messages if fragment in m.message]
    assert hit, [str(m) for m in messages]
    assert hit[0].file == str(path.resolve())
    if "syntax" in fragment:
        # The parser notices an unclosed bracket where the flow ends, at or after the mistake.
        assert hit[0].line >= line_of(text, "gates: [monitor")
    else:
        assert hit[0].line == expected_line, (str(hit[0]), expected_line)
    with pytest.raises(PolicyError) as err:
        load_pack(path)
    message = err.value.message
    assert "\n" not in message
    match = re.match(r"^(.*):(\d+): (.+)$", message)
    assert match and match.group(1) == str(path.resolve()), message
    first = min(messages, key=lambda m: m.line)
    assert int(match.group(2)) == first.line and first.message in message


def test_conflicting_monitor_params(tmp_path):
    text = MINI.replace("      metric: max_psi\n", "      metric: max_psi\n      params: {bins: 10}\n")
    text += """\
  - id: PSI2
    title_zh: 漂移二
    title_en: Drift two
    clauses: [C-2]
    gates: [monitor]
    severity: minor
    check:
      monitor: drift
      metric: drift_share
      comparator: ge
      thresholds: {high: {fail: 0.5}, low: {fail: 0.5}}
      params: {bins: 20}
      basis: suggestion
      note_zh: 建议
      note_en: suggestion
"""
    path = write(tmp_path, text)
    errors = [m for m in lint(path) if m.level == "error"]
    assert len(errors) == 1
    assert "conflicts with bins=10 of control PSI" in errors[0].message
    assert errors[0].line == line_of(text, "  - id: PSI2")


def test_lint_reports_every_error_at_once(tmp_path):
    text = MINI.replace("metric: max_psi", "metric: max_pis").replace("role: approver", "role: boss")
    path = write(tmp_path, text)
    errors = [m for m in lint(path) if m.level == "error"]
    assert {m.line for m in errors} == {line_of(text, "max_pis"), line_of(text, "role: boss")}
    assert [str(m) for m in errors] == sorted((str(m) for m in errors), key=lambda s: int(s.split(":")[1]))


def test_warnings_do_not_block_loading(tmp_path):
    # C-2 is then neither implemented nor out of scope: a warning, not an error.
    text = MINI.replace("    clauses: [C-2]\n", "    clauses: [C-1]\n").replace(
        "clauses: [C-1, C-2]", "clauses: [C-1]"
    )
    path = write(tmp_path, text)
    messages = lint(path)
    assert [m.level for m in messages] == ["warning"]
    assert "C-2 is neither implemented" in messages[0].message
    assert messages[0].line == line_of(text, "  - id: C-2")
    assert load_pack(path).id == "mini"


def test_out_of_scope_needs_known_clause_and_both_reasons(tmp_path):
    text = (
        MINI + "out_of_scope:\n  C-7: {reason_zh: 不适用, reason_en: n/a}\n  C-2: {reason_en: only English}\n"
    )
    path = write(tmp_path, text)
    errors = {m.message: m.line for m in lint(path) if m.level == "error"}
    assert any("unknown clause id 'C-7'" in k and v == line_of(text, "C-7:") for k, v in errors.items())
    assert any(
        "missing 'reason_zh'" in k and v == line_of(text, "C-2: {reason_en") for k, v in errors.items()
    )


def test_empty_and_non_mapping_files(tmp_path):
    empty = write(tmp_path, "", "empty.yaml")
    with pytest.raises(PolicyError, match=r"empty\.yaml:1: the file is empty"):
        load_pack(empty)
    listy = write(tmp_path, "- a\n- b\n", "list.yaml")
    with pytest.raises(PolicyError, match=r"list\.yaml:1: a policy pack must be a mapping"):
        load_pack(listy)
    assert [m.line for m in lint(listy)] == [1]


def test_exponent_without_dot_is_a_number(tmp_path):
    # YAML 1.1 (PyYAML) would read 1e-3 as a string; packs accept it as the number it means.
    text = MINI.replace("high: {warn: 0.1, fail: 0.25}", "high: {warn: 1e-3, fail: 2.5e-1}")
    pack = load_pack(write(tmp_path, text))
    assert pack.control("PSI").check.thresholds["high"].warn == 0.001
