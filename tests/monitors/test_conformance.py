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
* metric names are the stable ids of the contract.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from monitors import get_monitor, monitor_kinds
from monitors.base import ColumnSpec, MetricStatus, Monitor, MonitorResult, ParameterError

Corrupt = Callable[[pd.DataFrame], pd.DataFrame]


def _same(df: pd.DataFrame) -> pd.DataFrame:
    return df


@dataclass(frozen=True)
class Case:
    """How to call one monitor kind: ``call(monitor, german, params, artifacts_dir, corrupt)`` runs it on valid
    German-credit inputs after passing the frame under test (the current data) through ``corrupt``."""

    call: Callable[..., MonitorResult]
    column: str  # a numeric column the monitor reads; the bad-input checks break it
    invalid_params: dict[str, Any]  # a known-invalid value of a declared parameter
    params: dict[str, Any] = field(default_factory=dict)  # small settings that keep the suite fast


def _encoded_current(g) -> pd.DataFrame:
    return g.encoded.iloc[g.current_index].reset_index(drop=True)


def _fairness_spec(g) -> ColumnSpec:
    return ColumnSpec(g.spec.features, target="bad", score="score", sensitive=("sex",))


CASES: dict[str, Case] = {
    "drift": Case(
        call=lambda mon, g, params, folder, corrupt: mon.run(
            g.spec, reference=g.reference, current=corrupt(g.current), params=params, artifacts_dir=folder
        ),
        column="credit_amount",
        invalid_params={"n_bins": 1},
        params={"html_sample_rows": 200},
    ),
    "performance": Case(
        call=lambda mon, g, params, folder, corrupt: mon.run(
            g.spec, current=corrupt(g.current), params=params, artifacts_dir=folder
        ),
        column="score",
        invalid_params={"threshold": 1.5},
    ),
    "fairness": Case(
        call=lambda mon, g, params, folder, corrupt: mon.run(
            _fairness_spec(g), current=corrupt(g.current), params=params, artifacts_dir=folder
        ),
        column="score",
        invalid_params={"min_group_size": 0},
        params={"bootstrap": 20},
    ),
    "explainability": Case(
        call=lambda mon, g, params, folder, corrupt: mon.run(
            g.spec, current=corrupt(_encoded_current(g)), model=g.model, params=params, artifacts_dir=folder
        ),
        column="credit_amount",
        invalid_params={"top_k": 0},
        params={"sample_size": 40, "background_size": 20},
    ),
    "robustness": Case(
        call=lambda mon, g, params, folder, corrupt: mon.run(
            g.spec, current=corrupt(_encoded_current(g)), model=g.model, params=params, artifacts_dir=folder
        ),
        column="credit_amount",
        invalid_params={"threshold": 2.0},
        params={"sample_size": 200, "boundary_rows": 20},
    ),
    "data_quality": Case(
        call=lambda mon, g, params, folder, corrupt: mon.run(
            g.spec, reference=g.reference, current=corrupt(g.current), params=params, artifacts_dir=folder
        ),
        column="credit_amount",
        invalid_params={"plausibility_factor": 0.0},
    ),
}

#: The stable metric ids of each kind (the contract with policy packs).
METRIC_NAMES: dict[str, set[str]] = {
    "drift": {
        "psi", "ks_statistic", "ks_pvalue", "chi2_pvalue", "js_distance", "wasserstein_norm",
        "missing_share_reference", "missing_share_current", "missing_share_delta", "new_category_share",
        "drifted", "drift_share", "max_psi", "max_missing_share_delta", "max_new_category_share", "score_psi",
    },
    "performance": {
        "auc", "gini", "ks_statistic", "accuracy", "precision", "recall", "brier", "positive_rate",
        "auc_drop", "score_psi", "calibration_observed", "calibration_predicted", "max_calibration_gap",
    },
    "fairness": {
        "n", "positives", "predicted_positives", "selection_rate", "tpr", "fpr", "precision", "auc",
        "demographic_parity_difference", "demographic_parity_ratio", "equalized_odds_difference",
        "equal_opportunity_difference",
    },
    "explainability": {
        "mean_abs_shap", "additivity_max_residual", "top_feature_share", "importance_rank_correlation",
        "importance_topk_overlap",
    },
    "robustness": {
        "flip_rate", "mean_abs_score_change", "max_flip_rate", "max_mean_abs_score_change",
        "monotonicity_violation_rate", "max_monotonicity_violation_rate", "boundary_failures",
        "categorical_swap_flip_rate", "stress_approval_rate_change", "stress_mean_score_change",
        "max_abs_stress_approval_rate_change",
    },
    "data_quality": {
        "missing_share", "constant", "out_of_range_share", "implausible_share", "rows", "max_missing_share",
        "max_out_of_range_share", "max_implausible_share", "constant_features",
    },
}  # fmt: skip

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
    unknown = {m.name for m in res.metrics} - METRIC_NAMES.get(kind, set())
    assert not unknown, f"metric names outside the contract: {sorted(unknown)}"


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
