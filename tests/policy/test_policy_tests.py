"""Policy unit tests (``run_policy_tests``): the shipped pack's own tests pass, and failures and malformed
test files are reported with file and line."""

from __future__ import annotations

import pytest

from modelreg.errors import PolicyError
from modelreg.policy import DEFAULT_PACK_ID, default_tests_file, load_pack, run_policy_tests

from .test_lint import MINI, line_of, write


def test_shipped_pack_tests_pass():
    pack = load_pack(DEFAULT_PACK_ID)
    tests_file = default_tests_file(pack)
    assert tests_file is not None and tests_file.name == "cn-fin-algorithm-risk.tests.yaml"
    outcomes = run_policy_tests(pack, tests_file)
    failed = [f"{o.file}:{o.line}: {o.name}: {o.message}" for o in outcomes if not o.passed]
    assert failed == []
    assert len(outcomes) >= 200
    # Every machine check of the shipped pack is exercised, for every tier, in every band it has.
    covered = {(o.control_id, o.tier, o.actual) for o in outcomes}
    for control in pack.controls:
        if control.check is None:
            continue
        for tier in control.tiers:
            th = control.check.thresholds[tier]
            bands = {"pass", "fail"} | ({"warn"} if th.warn is not None and th.warn != th.fail else set())
            assert {b for (c, t, b) in covered if c == control.id and t == tier} >= bands, (control.id, tier)
    assert {o.actual for o in outcomes} == {"pass", "warn", "fail", "error"}


TESTS = """\
tests:
  - name: breach
    control: FAIR
    tier: high
    metrics: [{name: demographic_parity_ratio, feature: sex, value: 0.7}]
    expect: fail
  - name: wrong expectation
    control: PSI
    tier: low
    metrics: [{name: max_psi, value: 0.05}]
    expect: warn
  - name: undefined
    control: PSI
    tier: high
    metrics: [{name: max_psi, status: insufficient_data, reason: no reference profile}]
    expect: error
  - name: not a check
    control: SIGN
    tier: high
    metrics: []
    expect: pass
  - name: wrong feature expectation
    control: FAIR
    tier: high
    metrics: [{name: demographic_parity_ratio, feature: age, value: 0.7}]
    expect: fail
    expect_feature: sex
"""


def test_failures_name_the_case_line(tmp_path):
    pack = load_pack(write(tmp_path, MINI))
    tests = write(tmp_path, TESTS, "pack.tests.yaml")
    outcomes = run_policy_tests(pack, tests)
    assert [o.passed for o in outcomes] == [True, False, True, False, False]
    wrong = outcomes[1]
    assert (wrong.file, wrong.line) == (str(tests), line_of(TESTS, "name: wrong expectation"))
    assert wrong.message.startswith(
        "expected warn, got pass: max_psi (dataset-level) = 0.05 is not at or above"
    )
    assert "only machine checks" in outcomes[3].message
    assert outcomes[4].message == "expect_feature: expected 'sex', got 'age'"
    # <stem>.tests.yaml beside the pack is found; tests/<stem>.tests.yaml takes precedence.
    assert default_tests_file(pack) == tests
    (tmp_path / "tests").mkdir()
    nested = write(tmp_path / "tests", TESTS, "pack.tests.yaml")
    assert default_tests_file(pack) == nested


@pytest.mark.parametrize(
    ("old", "new", "marker", "fragment"),
    [
        (
            "expect: fail\n  - name: wrong",
            "expect: failed\n  - name: wrong",
            "expect: failed",
            "expect must be one of",
        ),
        ("value: 0.05}", "value: low}", "{name: max_psi, value: low}", "needs a numeric value"),
        (
            "status: insufficient_data, reason: no reference profile",
            "status: insufficient_data",
            "status: insufficient_data}",
            "needs a reason",
        ),
        (
            "    expect: error\n",
            "    expect: error\n    expected: error\n",
            "expected: error",
            "unknown key 'expected'",
        ),
    ],
)
def test_malformed_tests_file_names_file_and_line(tmp_path, old, new, marker, fragment):
    pack = load_pack(write(tmp_path, MINI))
    text = TESTS.replace(old, new, 1)
    tests = write(tmp_path, text, "bad.tests.yaml")
    with pytest.raises(PolicyError) as err:
        run_policy_tests(pack, tests)
    assert err.value.message.startswith(f"{tests}:{line_of(text, marker)}: ")
    assert fragment in err.value.message
