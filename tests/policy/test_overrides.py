"""A bank's own file extends the shipped pack: overrides change thresholds and outcomes; the merged pack
records its base; mistakes in the bank's file name the bank's file and line."""

from __future__ import annotations

import shutil

import pytest

from modelreg.errors import PolicyError
from modelreg.policy import DEFAULT_PACK_ID, evaluate_check, lint, list_packs, load_pack
from monitors.base import Metric, MonitorResult

from .test_lint import line_of, write

BANK = """\
extends: cn-fin-algo-risk@1.0.0
pack:
  id: acme-bank
  version: "2026.1"
  title_zh: 某银行模型风险政策
  title_en: ACME Bank model risk policy
overrides:
  tiers:
    medium: {approvals: {approver: 2}}
  controls:
    CHK-FAIR-01:
      thresholds:
        high: {fail: 0.85}
      on_breach: {high: suspend}
    CHK-DISC-02:
      disabled: {reason_zh: 本行无营销推荐算法, reason_en: The bank runs no recommendation algorithm}
    CHK-DRIFT-01:
      severity: blocking
clauses:
  - id: ACME-1
    source: NFRA-2025
    item: "内部 1"
    title_zh: 本行模型管理办法
    title_en: ACME model policy
    text_zh: 所有模型须每季度复核。
    text_en: Every model is reviewed quarterly.
controls:
  - id: ACME-GINI
    title_zh: 基尼系数
    title_en: Gini coefficient
    clauses: [ACME-1]
    gates: [deploy]
    severity: major
    check:
      monitor: performance
      metric: gini
      comparator: lt
      thresholds: {high: {warn: 0.45, fail: 0.4}, medium: {fail: 0.3}, low: {fail: 0.2}}
      basis: institution
      note_zh: 本行标准
      note_en: Bank standard
"""


def dpr(value: float) -> MonitorResult:
    metric = Metric("demographic_parity_ratio", value, feature="sex")
    return MonitorResult(kind="fairness", monitor_version="1", params={}, metrics=(metric,))


@pytest.fixture
def bank_dir(tmp_path):
    folder = tmp_path / "policies"
    folder.mkdir()
    write(folder, BANK, "acme.yaml")
    return folder


def test_override_changes_a_threshold_and_its_outcome(bank_dir):
    base = load_pack(DEFAULT_PACK_ID)
    bank = load_pack("acme-bank", search_paths=[bank_dir])
    # 0.82 is above the shipped four-fifths line (warn) but below the bank's own 0.85 (fail).
    assert evaluate_check(base.control("CHK-FAIR-01"), "high", dpr(0.82)).status == "warn"
    out = evaluate_check(bank.control("CHK-FAIR-01"), "high", dpr(0.82))
    assert (out.status, out.threshold, out.suspend) == ("fail", 0.85, True)
    check = bank.control("CHK-FAIR-01").check
    assert check.thresholds["high"].warn == 0.9  # merged per tier: warn kept
    assert check.thresholds["medium"] == base.control("CHK-FAIR-01").check.thresholds["medium"]
    assert check.basis == "institution"  # a changed number is the bank's calibration now


def test_merged_pack_identity_and_base(bank_dir):
    base = load_pack(DEFAULT_PACK_ID)
    bank = load_pack("acme-bank@2026.1", search_paths=[bank_dir])
    assert (bank.id, bank.version) == ("acme-bank", "2026.1")
    assert bank.extends is not None
    assert (bank.extends.id, bank.extends.version, bank.extends.digest) == (
        base.id,
        base.version,
        base.digest,
    )
    assert bank.digest != base.digest
    assert bank.to_dict()["extends"]["digest"] == base.digest


def test_overrides_of_tiers_severity_and_disabled_controls(bank_dir):
    bank = load_pack("acme-bank", search_paths=[bank_dir])
    assert bank.required_approvals("medium") == {"validator": 1, "approver": 2}
    assert bank.control("CHK-DRIFT-01").severity == "blocking"
    disabled = bank.control("CHK-DISC-02")
    assert disabled.disabled and disabled.disabled_reason_en.startswith("The bank runs")
    assert "CHK-DISC-02" not in {c.id for c in bank.controls_for("deploy", "high")}
    assert "CHK-DISC-02" in {c.id for c in load_pack(DEFAULT_PACK_ID).controls_for("deploy", "high")}
    gini = bank.control("ACME-GINI")
    assert gini in bank.controls_for("deploy", "low")
    assert bank.clause("ACME-1").text_en == "Every model is reviewed quarterly."


def test_list_packs_shows_bank_and_shipped(bank_dir):
    found = {(p.id, p.origin, p.extends) for p in list_packs([bank_dir])}
    assert ("acme-bank", "search_path", "cn-fin-algo-risk@1.0.0") in found
    assert (DEFAULT_PACK_ID, "shipped", None) in found


def test_digest_ignores_formatting_and_location(tmp_path):
    shipped = load_pack(DEFAULT_PACK_ID)
    copy = tmp_path / "copy.yaml"
    text = shipped.path.read_text(encoding="utf-8")
    copy.write_text("# a comment\n" + text.replace("pack:\n", "pack:  \n", 1), encoding="utf-8")
    assert load_pack(copy).digest == shipped.digest
    copy.write_text(
        text.replace("high: {warn: 0.9, fail: 0.8}", "high: {warn: 0.9, fail: 0.79}", 1), encoding="utf-8"
    )
    assert load_pack(copy).digest != shipped.digest


BROKEN_BANK = [
    (
        "unknown control",
        "    CHK-DRIFT-01:\n      severity: blocking",
        "    CHK-DRIFT-99:\n      severity: blocking",
        "CHK-DRIFT-99:",
        "unknown control id 'CHK-DRIFT-99'",
    ),
    (
        "thresholds on an attestation",
        "      disabled: {reason_zh",
        "      thresholds: {high: {fail: 1}}\n      disabled: {reason_zh",
        "thresholds: {high: {fail: 1}}",
        "can only be overridden on a check",
    ),
    (
        "warn beyond fail after merge",
        "        high: {fail: 0.85}",
        "        high: {fail: 0.95}",
        "high: {fail: 0.95}",
        "warn threshold must be at or above the fail",
    ),
    (
        "suspend on a deploy-only control",
        "    CHK-DRIFT-01:\n      severity: blocking",
        "    CHK-PERF-01:\n      on_breach: suspend",
        "on_breach: suspend",
        "allowed only for a check at the 'monitor' gate",
    ),
    (
        "redefined base clause",
        "  - id: ACME-1",
        "  - id: NFRA-2025-25.6",
        "id: NFRA-2025-25.6",
        "duplicate clause id 'NFRA-2025-25.6'",
    ),
    (
        "unknown override key",
        "      severity: blocking",
        "      severity: blocking\n      metric: auc",
        "metric: auc",
        "unknown key 'metric'",
    ),
    (
        "unknown tier override",
        "    medium: {approvals",
        "    extreme: {approvals",
        "extreme:",
        "unknown tier 'extreme'",
    ),
    (
        "disabled without a Chinese reason",
        "disabled: {reason_zh: 本行无营销推荐算法, ",
        "disabled: {",
        "disabled: {reason_en",
        "missing 'reason_zh'",
    ),
    (
        "bank control missing a tier",
        "medium: {fail: 0.3}, ",
        "",
        "thresholds: {high",
        "thresholds are missing for tier 'medium'",
    ),
]


@pytest.mark.parametrize(
    ("old", "new", "marker", "fragment"), [c[1:] for c in BROKEN_BANK], ids=[c[0] for c in BROKEN_BANK]
)
def test_bank_file_errors_name_the_bank_file_and_line(tmp_path, old, new, marker, fragment):
    assert old in BANK
    text = BANK.replace(old, new, 1)
    path = write(tmp_path, text, "acme.yaml")
    errors = [m for m in lint(path) if m.level == "error"]
    hit = [m for m in errors if fragment in m.message]
    assert hit, [str(m) for m in errors]
    assert (hit[0].file, hit[0].line) == (str(path.resolve()), line_of(text, marker))
    with pytest.raises(PolicyError, match=rf"^{path.resolve()}:\d+: "):
        load_pack(path)


def test_extends_unknown_version_or_id(tmp_path):
    path = write(tmp_path, BANK.replace("cn-fin-algo-risk@1.0.0", "cn-fin-algo-risk@9.9.9"), "acme.yaml")
    with pytest.raises(
        PolicyError,
        match=rf"^{path.resolve()}:1: extends 'cn-fin-algo-risk@9.9.9'.*Found versions: \['1.0.0'\]",
    ):
        load_pack(path)
    path = write(tmp_path, BANK.replace("cn-fin-algo-risk@1.0.0", "no-such-pack"), "acme.yaml")
    with pytest.raises(PolicyError, match=r"no policy pack with id 'no-such-pack'"):
        load_pack(path)
    assert lint(path)[0].line == 1


def test_extends_by_relative_path_and_chains(tmp_path):
    shutil.copy(load_pack(DEFAULT_PACK_ID).path, tmp_path / "base.yaml")
    write(tmp_path, BANK.replace("cn-fin-algo-risk@1.0.0", "base.yaml"), "acme.yaml")
    branch = write(
        tmp_path,
        'extends: acme.yaml\npack: {id: acme-sz, version: "1", title_zh: 深圳分行, title_en: Shenzhen branch}\n'
        "overrides:\n  controls:\n    ACME-GINI: {severity: blocking}\n",
        "branch.yaml",
    )
    pack = load_pack(branch)
    assert pack.extends.id == "acme-bank"
    assert pack.control("ACME-GINI").severity == "blocking"
    assert pack.control("CHK-FAIR-01").check.thresholds["high"].fail == 0.85


def test_extends_cycle_is_an_error(tmp_path):
    write(tmp_path, 'extends: b.yaml\npack: {id: a, version: "1", title_zh: 甲, title_en: A}\n', "a.yaml")
    write(tmp_path, 'extends: a.yaml\npack: {id: b, version: "1", title_zh: 乙, title_en: B}\n', "b.yaml")
    with pytest.raises(PolicyError, match="extends forms a cycle"):
        load_pack(tmp_path / "a.yaml")
