"""evaluate_check on real ``monitors.base`` results: pass / warn / fail / error, undefined metrics,
invalid results and the worst-feature selector."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelreg.errors import PolicyError
from modelreg.policy import (
    DEFAULT_PACK_ID,
    Threshold,
    classify,
    evaluate_check,
    evaluate_results,
    load_pack,
    worst_status,
)
from monitors.base import Metric, MetricStatus, MonitorResult


@pytest.fixture(scope="module")
def pack():
    return load_pack(DEFAULT_PACK_ID)


def result(
    kind: str, *metrics: Metric, status: MetricStatus = MetricStatus.OK, reason: str | None = None
) -> MonitorResult:
    return MonitorResult(
        kind=kind, monitor_version="1", params={}, metrics=metrics, status=status, reason=reason
    )


def test_pass_warn_fail_on_auc(pack):
    control = pack.control("CHK-PERF-01")  # lt; high: warn 0.70, fail 0.65
    cases = {
        0.74: ("pass", 0.70),
        0.68: ("warn", 0.70),
        0.61: ("fail", 0.65),
        0.70: ("pass", 0.70),
        0.65: ("warn", 0.70),
    }
    for value, (status, bound) in cases.items():
        out = evaluate_check(control, "high", result("performance", Metric("auc", value)))
        assert (out.status, out.threshold, out.value) == (status, bound, value)
        assert out.metric == "auc" and out.comparator == "lt" and out.feature is None
        assert out.clause_ids == control.clauses and "CBIRC-2022-26.4" in out.clause_ids
        assert out.severity == "blocking" and out.tier == "high" and out.basis == "convention"
    # The same value reads differently per tier: low fails only below 0.60.
    assert evaluate_check(control, "low", result("performance", Metric("auc", 0.61))).status == "warn"


def test_reason_says_what_decided(pack):
    out = evaluate_check(pack.control("CHK-DRIFT-01"), "high", result("drift", Metric("max_psi", 0.31)))
    assert out.status == "fail"
    assert out.reason == "max_psi (dataset-level) = 0.31 is at or above the fail threshold 0.25"


def test_invalid_input_result_is_an_error_never_a_pass(pack):
    res = result("drift", status=MetricStatus.INVALID_INPUT, reason="current data has 0 rows")
    out = evaluate_check(pack.control("CHK-DRIFT-01"), "high", res)
    assert out.status == "error"
    assert "invalid_input" in out.reason and "current data has 0 rows" in out.reason
    # Even if metrics were somehow present, the result-level status wins.
    res = result("drift", Metric("max_psi", 0.01), status=MetricStatus.INSUFFICIENT_DATA, reason="20 rows")
    assert evaluate_check(pack.control("CHK-DRIFT-01"), "high", res).status == "error"


def test_undefined_metric_is_an_error(pack):
    res = result("performance", Metric.undefined("auc", "the labels hold one class only"))
    out = evaluate_check(pack.control("CHK-PERF-01"), "high", res)
    assert out.status == "error" and out.value is None and out.threshold is None
    assert "one class only" in out.reason


def test_missing_metric_and_missing_result_are_errors(pack):
    out = evaluate_check(pack.control("CHK-PERF-02"), "high", result("performance", Metric("auc", 0.8)))
    assert out.status == "error"
    assert out.reason == "metric max_calibration_gap (dataset-level) is missing from the performance result"
    out = evaluate_check(pack.control("CHK-PERF-02"), "high", None)
    assert out.status == "error" and "no performance result" in out.reason


def test_result_of_the_wrong_kind_is_an_error(pack):
    out = evaluate_check(pack.control("CHK-DRIFT-01"), "high", result("performance", Metric("max_psi", 0.01)))
    assert out.status == "error" and "drift" in out.reason and "performance" in out.reason


def test_star_selector_worst_feature_decides(pack):
    control = pack.control("CHK-FAIR-01")  # feature "*", lt; high warn 0.9 fail 0.8
    metrics = (
        Metric("demographic_parity_ratio", 0.95, feature="sex"),
        Metric("demographic_parity_ratio", 0.86, feature="age_band"),
        Metric("demographic_parity_ratio", 0.86),  # dataset-level: not one of "every feature"
        Metric("selection_rate", 0.2, feature="sex", group="F"),
    )
    out = evaluate_check(control, "high", result("fairness", *metrics))
    assert (out.status, out.feature, out.value, out.threshold) == ("warn", "age_band", 0.86, 0.9)
    assert "the worst of 2" in out.reason


def test_star_selector_with_an_undefined_feature(pack):
    control = pack.control("CHK-FAIR-01")
    small = Metric.undefined("demographic_parity_ratio", "group (F, west) has 12 rows", feature="sex&region")
    ok = Metric("demographic_parity_ratio", 0.97, feature="sex")
    out = evaluate_check(control, "high", result("fairness", ok, small))
    assert (out.status, out.feature) == ("error", "sex&region")
    # A definite breach elsewhere is still a fail (and says one value could not be computed).
    bad = Metric("demographic_parity_ratio", 0.5, feature="sex")
    out = evaluate_check(control, "high", result("fairness", bad, small))
    assert (out.status, out.feature) == ("fail", "sex")
    assert "1 more could not be computed" in out.reason


def test_group_star_selector(pack):
    import dataclasses

    base = pack.control("CHK-ROB-01")
    check = dataclasses.replace(base.check, metric="stress_approval_rate_change", group="*")
    control = dataclasses.replace(base, check=check)
    res = result(
        "robustness",
        Metric("stress_approval_rate_change", -0.04, group="recession"),
        Metric("stress_approval_rate_change", 0.12, group="rate_shock"),
    )
    out = evaluate_check(control, "high", res)  # gt; high warn 0.05 fail 0.10: the largest value decides
    assert (out.status, out.group) == ("fail", "rate_shock")


def test_zero_tolerance_checks(pack):
    control = pack.control("CHK-ROB-02")
    assert (
        evaluate_check(control, "low", result("robustness", Metric("boundary_failures", 0.0))).status
        == "pass"
    )
    assert (
        evaluate_check(control, "low", result("robustness", Metric("boundary_failures", 1.0))).status
        == "fail"
    )


def test_suspend_only_for_high_tier_auc_drop(pack):
    control = pack.control("CHK-PERF-04")
    res = result("performance", Metric("auc_drop", 0.08))
    high = evaluate_check(control, "high", res)
    low = evaluate_check(control, "low", res)
    assert (high.status, high.on_breach, high.suspend) == ("fail", "suspend", True)
    assert (low.status, low.on_breach, low.suspend) == ("warn", "finding", False)


def test_programming_errors_raise_policy_error(pack):
    with pytest.raises(PolicyError, match=r"CHK-HI-02 is not a machine check \(its kind is attestation\)"):
        evaluate_check(pack.control("CHK-HI-02"), "high", None)
    with pytest.raises(PolicyError, match="no thresholds for tier 'extreme'"):
        evaluate_check(pack.control("CHK-PERF-01"), "extreme", None)


def test_evaluate_results_covers_every_check_of_the_gate(pack):
    results = [
        result(
            "drift",
            Metric("max_psi", 0.05),
            Metric("drift_share", 0.0),
            Metric("score_psi", 0.3),
            Metric("max_missing_share_delta", 0.0),
            Metric("max_new_category_share", 0.0),
        ),
        result("performance", Metric("auc_drop", 0.01), Metric("max_calibration_gap", 0.02)),
    ]
    outcomes = evaluate_results(pack, "monitor", "high", results)
    by_id = {o.control_id: o for o in outcomes}
    assert set(by_id) == {c.id for c in pack.controls_for("monitor", "high", kind="check")}
    assert by_id["CHK-DRIFT-02"].status == "fail"
    assert by_id["CHK-DRIFT-01"].status == "pass"
    assert by_id["CHK-FAIR-01"].status == "error"  # no fairness result was given
    assert worst_status(outcomes) == "error"
    assert worst_status([by_id["CHK-DRIFT-01"]]) == "pass"


@given(
    value=st.floats(-10, 10, allow_nan=False),
    a=st.floats(-5, 5, allow_nan=False),
    b=st.floats(-5, 5, allow_nan=False),
    comparator=st.sampled_from(["lt", "le", "gt", "ge"]),
)
def test_classify_matches_a_reference(value, a, b, comparator):
    lower = comparator in ("lt", "le")
    fail, warn = (min(a, b), max(a, b)) if lower else (max(a, b), min(a, b))
    ops = {
        "lt": lambda x, y: x < y,
        "le": lambda x, y: x <= y,
        "gt": lambda x, y: x > y,
        "ge": lambda x, y: x >= y,
    }
    expected = "fail" if ops[comparator](value, fail) else "warn" if ops[comparator](value, warn) else "pass"
    assert classify(value, comparator, Threshold(fail=fail, warn=warn))[0] == expected


def test_four_fifths_on_a_ratio_computed_by_fairlearn(pack):
    """An independent computation: fairlearn's demographic_parity_ratio on a small worked example."""
    import numpy as np
    from fairlearn.metrics import demographic_parity_ratio

    # Group A approved 50 of 100, group B 36 of 100: ratio 0.72, a breach of the four-fifths rule.
    sex = np.array(["A"] * 100 + ["B"] * 100)
    y_pred = np.array([1] * 50 + [0] * 50 + [1] * 36 + [0] * 64)
    ratio = demographic_parity_ratio(np.zeros(200), y_pred, sensitive_features=sex)
    assert ratio == pytest.approx(36 / 50)
    out = evaluate_check(
        pack.control("CHK-FAIR-01"),
        "high",
        result("fairness", Metric("demographic_parity_ratio", ratio, feature="sex")),
    )
    assert (out.status, out.threshold) == ("fail", 0.8)
    # 42 of 100 gives 0.84: under the warn line of 0.9 but not a four-fifths breach.
    y_pred[100:142] = 1
    ratio = demographic_parity_ratio(np.zeros(200), y_pred, sensitive_features=sex)
    out = evaluate_check(
        pack.control("CHK-FAIR-01"),
        "high",
        result("fairness", Metric("demographic_parity_ratio", ratio, feature="sex")),
    )
    assert (out.status, round(out.value, 6)) == ("warn", 0.84)


def test_importing_the_policy_layer_stays_light():
    code = (
        "import sys, modelreg.policy, modelreg.cli.policy_cmds;"
        "heavy = [m for m in ('pandas', 'numpy', 'shap', 'evidently', 'mlflow', 'monitors', 'sklearn') if m in sys.modules];"
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_duck_typed_results_and_numpy_values(pack):
    """Any object with status/reason/metrics works (the lead's stored results need not be MonitorResult)."""
    from types import SimpleNamespace

    import numpy as np

    metric = SimpleNamespace(
        name="max_psi", value=np.float32(0.12), status="ok", reason=None, feature=None, group=None
    )
    res = SimpleNamespace(kind="drift", status="ok", reason=None, metrics=[metric])
    out = evaluate_check(pack.control("CHK-DRIFT-01"), "medium", res)
    assert (out.status, out.threshold) == ("warn", 0.1)
    metric.value = "0.3"  # text is not a number: never a silent pass
    assert evaluate_check(pack.control("CHK-DRIFT-01"), "medium", res).status == "error"


def test_packs_and_controls_are_hashable(pack):
    assert hash(pack) == hash(load_pack(DEFAULT_PACK_ID))
    assert len(set(pack.controls)) == len(pack.controls)
