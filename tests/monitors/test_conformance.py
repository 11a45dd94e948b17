"""The conformance suite every monitor kind passes (in the spirit of sklearn's ``parametrize_with_checks``).

Generic over ``monitors.monitor_kinds()``: each kind has one entry in ``CASES`` saying how to call it with
valid inputs built from the German credit fixture; the checks themselves know nothing about the kind.

* parameters: unknown or invalid ones raise ``ParameterError`` worded "<name> must be …. Got … instead.";
  validators answer False (never crash) on values of the wrong type;
* determinism: two runs with the same seed give byte-identical JSON;
* serialisation: ``MonitorResult.from_json(r.to_json()) == r``;
* bad input (empty frame, missing column, all-NaN column, strings in a numeric column) gives a result whose
  status is invalid_input / insufficient_data with a reason, and never raises;
* artifacts: every recorded SHA-256 and size matches the file on disk;
* declarations: kind, version, metrics and needs are well formed, every emitted metric name is declared,
  ``run`` takes every input the monitor declares it needs, and a monitor needing the model says so without one.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from monitors import get_monitor, monitor_kinds
from monitors.base import (
    ColumnSpec,
    MetricStatus,
    Monitor,
    MonitorResult,
    ParameterError,
    check_declaration,
)

Corrupt = Callable[[pd.DataFrame], pd.DataFrame]


def _same(df: pd.DataFrame) -> pd.DataFrame:
    return df


@dataclass(frozen=True)
class Case:
    """How to call one monitor kind on valid German-credit inputs: ``spec(g)`` and ``current(g)`` (the frame
    under test, passed through ``corrupt``); ``inputs(g)`` the inputs this case can offer beyond the current
    data. The suite hands the monitor exactly those it declares in ``needs``, so a monitor that leaves a
    needed input undeclared fails here."""

    column: str  # a numeric column the monitor reads; the bad-input checks break it
    invalid_params: dict[str, Any]  # a known-invalid value of a declared parameter
    params: dict[str, Any] = field(default_factory=dict)  # small settings that keep the suite fast
    spec: Callable[[Any], ColumnSpec] = lambda g: g.spec
    current: Callable[[Any], pd.DataFrame] = lambda g: g.current
    inputs: Callable[[Any], dict[str, Any]] = lambda g: {}

    def call(self, mon: Monitor, g, params: dict, folder: Path | None, corrupt: Corrupt) -> MonitorResult:
        offered = self.inputs(g)
        handed = {k: v for k, v in offered.items() if k in mon.needs}
        return mon.run(
            self.spec(g), current=corrupt(self.current(g)), params=params, artifacts_dir=folder, **handed
        )


def _encoded_current(g) -> pd.DataFrame:
    return g.encoded.iloc[g.current_index].reset_index(drop=True)


def _fairness_spec(g) -> ColumnSpec:
    return ColumnSpec(g.spec.features, target="bad", score="score", sensitive=("sex",))


CASES: dict[str, Case] = {
    "drift": Case(
        inputs=lambda g: {"reference": g.reference},
        column="credit_amount",
        invalid_params={"n_bins": 1},
        params={"html_sample_rows": 200},
    ),
    "performance": Case(
        column="score",
        invalid_params={"threshold": 1.5},
    ),
    "fairness": Case(
        spec=_fairness_spec,
        column="score",
        invalid_params={"min_group_size": 0},
        params={"bootstrap": 20},
    ),
    "explainability": Case(
        current=_encoded_current,
        inputs=lambda g: {"model": g.model},
        column="credit_amount",
        invalid_params={"top_k": 0},
        params={"sample_size": 40, "background_size": 20},
    ),
    "robustness": Case(
        current=_encoded_current,
        inputs=lambda g: {"model": g.model},
        column="credit_amount",
        invalid_params={"threshold": 2.0},
        params={"sample_size": 200, "boundary_rows": 20},
    ),
    "data_quality": Case(
        inputs=lambda g: {"reference": g.reference},
        column="credit_amount",
        invalid_params={"plausibility_factor": 0.0},
    ),
    "segments": Case(
        spec=_fairness_spec,
        inputs=lambda g: {"reference": g.reference},
        column="credit_amount",
        invalid_params={"p_adjust": "bonferroni"},
        params={"segments": ["sex"], "min_segment_size": 20, "kinds": ["drift", "performance"]},
    ),
    "stability": Case(
        inputs=lambda g: {"reference": g.reference},
        column="score",
        invalid_params={"epsilon": 0.5},
        params={
            "score_bands": [
                {"grade": "A", "lower": 0.0, "upper": 0.3},
                {"grade": "B", "lower": 0.3, "upper": 0.6},
                {"grade": "C", "lower": 0.6, "upper": 1.0},
            ]
        },
    ),
    "estimated_performance": Case(
        inputs=lambda g: {"reference": g.reference},
        column="score",
        invalid_params={"max_ece": 0.0},
        params={"bootstrap": 20, "min_rows": 30, "min_class_rows": 10},
    ),
    "challenger": Case(
        spec=_fairness_spec,
        column="score",
        invalid_params={"min_segment_size": 0},
        params={"champion_score": "score", "challenger_score": "duration"},
    ),
}

MESSAGE = r"must be .+\. Got .+ instead\."


def _monitor_and_case(kind: str) -> tuple[Monitor, Case]:
    # Every registered monitor kind must import and have a conformance case: a missing one fails.
    mon = get_monitor(kind)
    case = CASES.get(kind)
    assert case is not None, f"no conformance case for kind {kind!r}: add one to CASES"
    return mon, case


def _run(
    kind: str, german, *, params: dict | None = None, folder: Path | None = None, corrupt: Corrupt = _same
):
    mon, case = _monitor_and_case(kind)
    return case.call(mon, german, {**case.params, **(params or {})}, folder, corrupt)


KINDS = sorted(set(monitor_kinds()) | set(CASES))


@pytest.mark.parametrize("kind", KINDS)
def test_unknown_parameter_raises(kind, german):
    with pytest.raises(ParameterError, match=MESSAGE):
        _run(kind, german, params={"no_such_parameter": 1})


@pytest.mark.parametrize("kind", KINDS)
def test_invalid_parameter_raises_naming_it(kind, german):
    _, case = _monitor_and_case(kind)
    ((name, value),) = case.invalid_params.items()
    with pytest.raises(ParameterError, match=rf"^{name} must be .+\. Got {value!r} instead\.$"):
        _run(kind, german, params=case.invalid_params)


@pytest.mark.parametrize("kind", KINDS)
def test_parameter_validators_answer_instead_of_crashing(kind):
    mon, _ = _monitor_and_case(kind)
    defaults = mon.validate_params({})
    assert set(defaults) == {p.name for p in mon.params}
    assert "seed" in defaults, "every monitor takes a seed so that runs are reproducible"
    for p in mon.params:
        for odd in ("not-a-value", -1, None, 1e12, [], {}, object()):
            try:
                mon.validate_params({p.name: odd})
            except ParameterError as exc:
                assert str(exc).startswith(f"{p.name} must be ")
            # any other exception type propagates and fails the test


@pytest.mark.parametrize("kind", KINDS)
def test_deterministic_with_a_fixed_seed(kind, german):
    first = _run(kind, german, params={"seed": 7})
    second = _run(kind, german, params={"seed": 7})
    assert first.status is MetricStatus.OK, first.reason
    assert first.seed == 7 and first.to_json() == second.to_json()


@pytest.mark.parametrize("kind", KINDS)
def test_json_round_trip_and_contract_fields(kind, german):
    mon, _ = _monitor_and_case(kind)
    res = _run(kind, german)
    assert res.kind == kind and res.monitor_version == mon.version
    assert res.metrics and "numpy" in res.library_versions
    assert any(f.role == "current" for f in res.fingerprints)
    again = MonitorResult.from_json(res.to_json())
    assert again == res and again.to_json() == res.to_json()
    unknown = {m.name for m in res.metrics} - set(mon.metrics)
    assert not unknown, f"metric names outside the monitor's declared metrics: {sorted(unknown)}"


@pytest.mark.parametrize("kind", KINDS)
def test_declaration_is_well_formed_and_run_takes_what_it_needs(kind):
    mon, _ = _monitor_and_case(kind)
    check_declaration(type(mon), kind)  # raises MonitorPluginError with the reason
    run = inspect.signature(mon.run).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in run.values())
    assert takes_any or set(mon.needs) <= set(run), f"run() does not take {sorted(set(mon.needs) - set(run))}"


@pytest.mark.parametrize("kind", sorted(k for k in KINDS if "model" in get_monitor(k).needs))
def test_a_monitor_that_needs_the_model_says_so_without_one(kind, german):
    _, case = _monitor_and_case(kind)
    mon = get_monitor(kind)
    res = mon.run(case.spec(german), current=case.current(german), params=case.params)
    assert res.status is MetricStatus.INVALID_INPUT and "model" in res.reason


@pytest.mark.parametrize("kind", KINDS)
def test_artifact_hashes_match_the_files(kind, german, tmp_path):
    res = _run(kind, german, folder=tmp_path)
    assert res.artifacts, "a run with an artifacts folder writes at least one artifact"
    for a in res.artifacts:
        path = tmp_path / a.name
        assert path.resolve().is_relative_to(tmp_path.resolve())
        data = path.read_bytes()
        assert hashlib.sha256(data).hexdigest() == a.sha256
        assert len(data) == a.size


def _empty(col: str) -> Corrupt:
    return lambda df: df.iloc[:0]


def _drop(col: str) -> Corrupt:
    return lambda df: df.drop(columns=[col])


def _all_nan(col: str) -> Corrupt:
    return lambda df: df.assign(**{col: np.nan})


def _strings(col: str) -> Corrupt:
    def corrupt(df: pd.DataFrame) -> pd.DataFrame:
        df = df.astype({col: object})
        df.loc[df.index[::7], col] = "n/a"
        return df

    return corrupt


BAD_INPUTS = {
    "empty_frame": _empty,
    "missing_column": _drop,
    "all_nan_column": _all_nan,
    "strings_in_numeric": _strings,
}


@pytest.mark.parametrize("bad", sorted(BAD_INPUTS))
@pytest.mark.parametrize("kind", KINDS)
def test_bad_input_is_a_result_never_an_exception(kind, bad, german):
    _, case = _monitor_and_case(kind)
    res = _run(kind, german, corrupt=BAD_INPUTS[bad](case.column))
    assert res.status in (MetricStatus.INVALID_INPUT, MetricStatus.INSUFFICIENT_DATA), (
        res.status,
        res.reason,
    )
    assert res.reason
    if bad == "missing_column":
        assert res.status is MetricStatus.INVALID_INPUT and case.column in res.reason
    for m in res.metrics:
        assert (m.status is MetricStatus.OK) == (m.value is not None)
