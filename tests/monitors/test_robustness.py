"""RobustnessMonitor: worked examples on hand-built models, German credit end to end, bad input."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from monitors.base import ColumnSpec, Feature, MetricStatus, MonitorResult, ParameterError, get_monitor
from monitors.robustness import RobustnessMonitor

try:
    from tests.monitors._fixtures_b import (
        FEATURES,
        FailingModel,
        FunctionModel,
        german_encoded,
        german_spec,
        lgbm_model,
        logreg_model,
    )
except ImportError:  # tests/ is not a package: pytest put this folder on sys.path
    from _fixtures_b import (
        FEATURES,
        FailingModel,
        FunctionModel,
        german_encoded,
        german_spec,
        lgbm_model,
        logreg_model,
    )

NO_EXTRAS = {"categorical_swap": False, "boundary_cases": []}


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=float)))


def test_noise_flip_rate_worked_example_step_model():
    # score is 0.9 for x > 0 and 0.1 otherwise: only rows near 0 can flip, each with probability ~1/2
    n = 4000
    x = np.concatenate([np.full(n // 2, 1e-6), np.full(n // 4, 100.0), np.full(n // 4, -100.0)])
    df = pd.DataFrame({"x": x})
    model = FunctionModel(lambda X: np.where(X["x"].to_numpy() > 0, 0.9, 0.1))
    res = RobustnessMonitor().run(
        ColumnSpec((Feature("x"),)), current=df, model=model, params={**NO_EXTRAS, "noise_levels": [0.1]}
    )
    flip = res.metric("flip_rate", group="noise=0.1")
    # P(flip) = P(N(0, 0.1 * std) < -1e-6) ≈ 1/2 for the near-zero half; ±100 is 100/(0.1*std) ≈ 14 sd away
    assert flip.value == pytest.approx(0.25, abs=0.03)
    assert flip.counts["flips"] == round(flip.value * n)
    # every flip moves the score by exactly 0.8 and nothing else moves
    assert res.value("mean_abs_score_change", group="noise=0.1") == pytest.approx(0.8 * flip.value)
    assert res.value("max_flip_rate") == flip.value


def test_noise_mean_abs_change_matches_gaussian_expectation():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": rng.normal(0, 2.0, 20000)})
    model = FunctionModel(lambda X: 0.5 + 0.01 * X["x"].to_numpy())  # linear, stays inside [0, 1]
    res = RobustnessMonitor().run(
        ColumnSpec((Feature("x"),)),
        current=df,
        model=model,
        params={**NO_EXTRAS, "noise_levels": [0.05, 0.1], "sample_size": 20000},
    )
    std = df["x"].std(ddof=0)
    for level in (0.05, 0.1):
        expected = 0.01 * level * std * np.sqrt(2 / np.pi)  # E|N(0, s)| = s * sqrt(2/pi)
        assert res.value("mean_abs_score_change", group=f"noise={level:g}") == pytest.approx(
            expected, rel=0.03
        )
    assert res.value("max_mean_abs_score_change") == res.value("mean_abs_score_change", group="noise=0.1")


def test_categorical_swap_worked_examples():
    spec = ColumnSpec((Feature("c", "categorical"),))
    two = pd.DataFrame({"c": ["a", "b"] * 50})
    flips_all = FunctionModel(lambda X: np.where(X["c"] == "a", 0.9, 0.1))
    flips_none = FunctionModel(lambda X: np.where(X["c"] == "a", 0.9, 0.8))
    params = {"noise_levels": [0.1], "boundary_cases": []}
    # with two categories every swap is a↔b
    assert (
        RobustnessMonitor()
        .run(spec, current=two, model=flips_all, params=params)
        .value("categorical_swap_flip_rate")
        == 1.0
    )
    assert (
        RobustnessMonitor()
        .run(spec, current=two, model=flips_none, params=params)
        .value("categorical_swap_flip_rate")
        == 0.0
    )
    # three categories, a=0.9, b=0.8, c=0.1: from a or b a swap flips with prob 1/2 (to c), from c always
    three = pd.DataFrame({"c": ["a", "b", "c"] * 2000})
    model = FunctionModel(lambda X: X["c"].map({"a": 0.9, "b": 0.8, "c": 0.1}).to_numpy())
    res = RobustnessMonitor().run(spec, current=three, model=model, params={**params, "sample_size": 6000})
    assert res.value("categorical_swap_flip_rate", feature="c") == pytest.approx(2 / 3, abs=0.02)
    assert res.metric("flip_rate", group="noise=0.1").status is MetricStatus.INSUFFICIENT_DATA


def test_monotonicity_worked_example():
    x = np.concatenate([np.linspace(-5, -1, 300), np.linspace(1, 5, 100)])
    df = pd.DataFrame({"x": x, "z": 0.0})
    bump = FunctionModel(lambda X: _sigmoid(-np.abs(X["x"].to_numpy())))  # rises for x < 0, falls for x > 0
    up = ColumnSpec((Feature("x", monotone=1), Feature("z")))
    down = ColumnSpec((Feature("x", monotone=-1), Feature("z")))
    params = {**NO_EXTRAS, "monotone_step": 0.01}
    r_up = RobustnessMonitor().run(up, current=df, model=bump, params=params)
    r_down = RobustnessMonitor().run(down, current=df, model=bump, params=params)
    assert r_up.value("monotonicity_violation_rate", feature="x") == pytest.approx(100 / 400)
    assert r_down.value("monotonicity_violation_rate", feature="x") == pytest.approx(300 / 400)
    assert r_up.value("max_monotonicity_violation_rate") == pytest.approx(0.25)
    none = RobustnessMonitor().run(ColumnSpec((Feature("x"),)), current=df, model=bump, params=params)
    assert none.metric("max_monotonicity_violation_rate").status is MetricStatus.INSUFFICIENT_DATA


def test_boundary_cases_flag_crashes_and_out_of_range_outputs(tmp_path: Path):
    df = pd.DataFrame({"x": np.linspace(0, 50, 200), "y": np.linspace(-1, 1, 200)})
    spec = ColumnSpec((Feature("x"), Feature("y")))
    unbounded = FunctionModel(lambda X: X["x"].to_numpy() / 100.0)
    res = RobustnessMonitor().run(
        spec, current=df, model=unbounded, params={"noise_levels": [0.1]}, artifacts_dir=tmp_path
    )
    # x=10×max=500 → score 5 (out of range); x missing → NaN output; y never matters
    assert res.value("boundary_failures") == 2
    assert sorted(res.metric("boundary_failures").counts["failing"]) == ["x:extreme", "x:missing"]
    table = pd.read_csv(tmp_path / "boundary_cases.csv")
    assert len(table) == 8
    failing = table[~table["ok"]].set_index("case")["failure"]
    assert "outside [0, 1]" in failing["extreme"] and "non-finite" in failing["missing"]
    assert table.set_index(["feature", "case"]).loc[("x", "extreme"), "value"] == 500.0
    # y's max is 1 > 0 so its extreme is 10; a non-positive max uses max + 10 × range
    neg = pd.DataFrame({"x": np.linspace(0, 50, 20), "y": np.linspace(-3, -1, 20)})
    res = RobustnessMonitor().run(
        spec, current=neg, model=unbounded, params={"noise_levels": [0.1]}, artifacts_dir=tmp_path
    )
    table = pd.read_csv(tmp_path / "boundary_cases.csv").set_index(["feature", "case"])
    assert table.loc[("y", "extreme"), "value"] == pytest.approx(-1 + 10 * 2)
    # with a reference, boundary values come from the reference (training) range
    wide = pd.DataFrame({"x": np.linspace(0, 80, 20), "y": np.linspace(-1, 1, 20)})
    res = RobustnessMonitor().run(
        spec,
        current=df,
        reference=wide,
        model=unbounded,
        params={"noise_levels": [0.1]},
        artifacts_dir=tmp_path,
    )
    table = pd.read_csv(tmp_path / "boundary_cases.csv").set_index(["feature", "case"])
    assert table.loc[("x", "max"), "value"] == 80.0 and table.loc[("x", "extreme"), "value"] == 800.0
    assert [f.role for f in res.fingerprints] == ["current", "reference"]
    # sklearn's LogisticRegression refuses NaN: every "missing" case is a crash, listed with the message
    enc = german_encoded()
    lr = RobustnessMonitor().run(
        german_spec(), current=enc, model=logreg_model(), params={"boundary_rows": 20}
    )
    assert sorted(lr.metric("boundary_failures").counts["failing"]) == sorted(
        f"{f}:missing" for f in FEATURES
    )


def test_stress_scenarios_by_hand():
    rng = np.random.default_rng(5)
    df = pd.DataFrame({"income": rng.uniform(1, 10, 1000), "debt_ratio": rng.uniform(0, 0.8, 1000)})
    spec = ColumnSpec((Feature("income"), Feature("debt_ratio")))
    model = FunctionModel(
        lambda X: np.clip(X["debt_ratio"].to_numpy() + 0.02 * (10 - X["income"].to_numpy()), 0, 1)
    )
    scenarios = [
        {
            "name": "income-20%",
            "name_zh": "收入下降20%",
            "shocks": [{"feature": "income", "op": "mul", "value": 0.8}],
        },
        {"name": "debt+0.1", "shocks": [{"feature": "debt_ratio", "op": "add", "value": 0.1}]},
        {"name": "debt=0", "shocks": [{"feature": "debt_ratio", "op": "set", "value": 0.0}]},
    ]
    res = RobustnessMonitor().run(
        spec, current=df, model=model, params={**NO_EXTRAS, "scenarios": scenarios, "threshold": 0.4}
    )
    base = model.predict_proba(df)[:, 1]
    expected = {}
    for sc in scenarios:
        shocked = df.copy()
        sh = sc["shocks"][0]
        col = shocked[sh["feature"]]
        shocked[sh["feature"]] = {
            "mul": col * sh["value"],
            "add": col + sh["value"],
            "set": col * 0 + sh["value"],
        }[sh["op"]]
        s = model.predict_proba(shocked)[:, 1]
        expected[sc["name"]] = (np.mean(s < 0.4) - np.mean(base < 0.4), s.mean() - base.mean())
        change = res.metric("stress_approval_rate_change", group=sc["name"])
        assert change.value == pytest.approx(expected[sc["name"]][0])
        assert res.value("stress_mean_score_change", group=sc["name"]) == pytest.approx(
            expected[sc["name"]][1]
        )
    assert expected["debt+0.1"][0] < 0 < expected["debt=0"][0]
    assert res.value("max_abs_stress_approval_rate_change") == pytest.approx(
        max(abs(v[0]) for v in expected.values())
    )
    assert res.metric("stress_approval_rate_change", group="income-20%").counts["name_zh"] == "收入下降20%"
    # approving high scores flips the sign of every change
    above = RobustnessMonitor().run(
        spec,
        current=df,
        model=model,
        params={**NO_EXTRAS, "scenarios": scenarios, "threshold": 0.4, "approve_when": "score_above"},
    )
    for sc in scenarios:
        assert above.value("stress_approval_rate_change", group=sc["name"]) == pytest.approx(
            -expected[sc["name"]][0]
        )


def test_german_end_to_end_with_lightgbm(tmp_path: Path):
    enc = german_encoded()
    spec = german_spec(monotone={"duration": 1, "credit_amount": 1})
    scenarios = [
        {
            "name": "amount+20%,duration+12",
            "name_zh": "贷款额上升20%且期限延长12个月",
            "shocks": [
                {"feature": "credit_amount", "op": "mul", "value": 1.2},
                {"feature": "duration", "op": "add", "value": 12},
            ],
        }
    ]
    params = {"threshold": 0.3, "scenarios": scenarios, "seed": 3}
    res = RobustnessMonitor().run(
        spec, current=enc, model=lgbm_model(), params=params, artifacts_dir=tmp_path
    )
    assert res.status is MetricStatus.OK
    for name in (
        "max_flip_rate",
        "max_mean_abs_score_change",
        "categorical_swap_flip_rate",
        "boundary_failures",
        "max_monotonicity_violation_rate",
        "max_abs_stress_approval_rate_change",
    ):
        assert res.metric(name).status is MetricStatus.OK, name
    rates = [res.value("flip_rate", group=f"noise={lv}") for lv in (0.01, 0.05, 0.1)]
    assert 0 <= rates[0] <= rates[2] <= 1 and rates[2] > 0  # more noise, more flips
    assert res.value("boundary_failures") == 0  # LightGBM handles missing and extreme values
    assert {m.feature for m in res.find("categorical_swap_flip_rate") if m.feature} == {
        "sex",
        "housing",
        "saving_accounts",
        "checking_account",
        "purpose",
    }
    # the scenario by hand on all 1000 rows
    model = lgbm_model()
    base = model.predict_proba(enc[FEATURES])[:, 1]
    shocked = enc[FEATURES].copy()
    shocked["credit_amount"] = shocked["credit_amount"] * 1.2
    shocked["duration"] = shocked["duration"] + 12
    s = model.predict_proba(shocked)[:, 1]
    name = scenarios[0]["name"]
    assert res.value("stress_approval_rate_change", group=name) == pytest.approx(
        np.mean(s < 0.3) - np.mean(base < 0.3)
    )
    assert res.value("stress_mean_score_change", group=name) == pytest.approx(s.mean() - base.mean())
    # monotonicity by hand for duration: step = 0.1 std, violation = score falls
    step = 0.1 * enc["duration"].std(ddof=0)
    up = enc[FEATURES].astype({"duration": float}).assign(duration=enc["duration"] + step)
    expected = np.mean(model.predict_proba(up)[:, 1] - base < -1e-9)
    assert res.value("monotonicity_violation_rate", feature="duration") == pytest.approx(expected)
    stress = pd.read_csv(tmp_path / "stress_scenarios.csv")
    assert stress.loc[0, "scenario_zh"] == "贷款额上升20%且期限延长12个月"
    for a in res.artifacts:
        assert hashlib.sha256((tmp_path / a.name).read_bytes()).hexdigest() == a.sha256
    again = RobustnessMonitor().run(spec, current=enc, model=lgbm_model(), params=params)
    assert (
        again.to_json()
        == RobustnessMonitor().run(spec, current=enc, model=lgbm_model(), params=params).to_json()
    )
    assert MonitorResult.from_json(again.to_json()).to_json() == again.to_json()
    assert isinstance(get_monitor("robustness"), RobustnessMonitor)


def _fragile(X: pd.DataFrame) -> np.ndarray:
    """Scores integer ages only, like a model behind a strict schema."""
    if X["age"].dtype.kind == "f":
        raise ValueError("age must be an integer")
    return np.full(len(X), 0.2)


def test_bad_input_is_a_result_and_bad_params_raise():
    enc = german_encoded()
    mon = RobustnessMonitor()
    spec = german_spec()
    assert mon.run(spec, current=enc).reason.startswith("robustness needs a model")
    failing = mon.run(spec, current=enc, model=FailingModel())
    assert failing.status is MetricStatus.INVALID_INPUT and "feature store unavailable" in failing.reason
    missing = mon.run(spec, current=enc.drop(columns=["duration"]), model=lgbm_model())
    assert missing.status is MetricStatus.INVALID_INPUT and "['duration']" in missing.reason
    strings = enc.astype({"age": object})
    strings.loc[4, "age"] = "forty"
    bad = mon.run(spec, current=strings, model=lgbm_model())
    assert (
        bad.status is MetricStatus.INVALID_INPUT
        and "column age must be numeric" in bad.reason
        and "'forty'" in bad.reason
    )
    empty = mon.run(spec, current=enc.iloc[:0], model=lgbm_model())
    assert empty.status is MetricStatus.INSUFFICIENT_DATA
    # LightGBM would happily score an all-missing column; the monitor still cannot scale noise for it
    all_nan = mon.run(spec, current=enc.assign(age=np.nan), model=lgbm_model())
    assert all_nan.status is MetricStatus.INSUFFICIENT_DATA and "['age']" in all_nan.reason
    # a model that crashes only on perturbed data is a finding, not a failed run
    fragile = FunctionModel(_fragile)
    res = mon.run(spec, current=enc, model=fragile, params={"noise_levels": [0.1]})
    assert res.status is MetricStatus.OK
    m = res.metric("flip_rate", group="noise=0.1")
    assert m.status is MetricStatus.INVALID_INPUT and "model failed on the perturbed data" in m.reason
    with pytest.raises(ParameterError, match="scenario 'x' shock feature must be one of"):
        mon.run(
            spec,
            current=enc,
            model=lgbm_model(),
            params={
                "scenarios": [{"name": "x", "shocks": [{"feature": "income", "op": "mul", "value": 0.8}]}]
            },
        )
    with pytest.raises(ParameterError, match="scenarios must be"):
        mon.run(
            spec,
            current=enc,
            model=lgbm_model(),
            params={"scenarios": [{"name": "x", "shocks": [{"feature": "age", "op": "pow", "value": 2}]}]},
        )
    with pytest.raises(ParameterError, match="approve_when must be"):
        mon.run(spec, current=enc, model=lgbm_model(), params={"approve_when": "score_low"})
    with pytest.raises(ParameterError, match="noise_levels must be"):
        mon.run(spec, current=enc, model=lgbm_model(), params={"noise_levels": [0.1, -1]})
