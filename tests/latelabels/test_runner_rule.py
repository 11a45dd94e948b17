"""How the governance runner feeds the estimate: the validation stores its reference profile from the
labelled hold-out; a monitoring run grades CHK-PERF-04.estimated exactly when the data has no labels."""

from __future__ import annotations

import pandas as pd
import pytest

from modelreg.demo.portfolio import generate_portfolio
from modelreg.governance import runner
from modelreg.governance.runner import EvaluationInput
from modelreg.policy import load_pack
from monitors.base import ReferenceProfile

FEATURES = ("income_k", "debt_ratio", "utilisation")
CONTROL = "CHK-PERF-04.estimated"


@pytest.fixture(scope="module")
def setting():
    pf = generate_portfolio(20_000, seed=4, drifted_channel=None)
    pack = load_pack("cn-fin-algo-risk")
    cols = [*FEATURES, "score", "default"]
    validation = runner.run(
        pack,
        "deploy",
        "high",
        EvaluationInput(data=pf.reference[cols], target="default", score="score", features=FEATURES),
    )
    return pf, pack, validation


def test_validation_stores_the_profile_from_the_labelled_hold_out(setting):
    pf, _, validation = setting
    prof = ReferenceProfile.from_json(validation.profiles["estimated_performance"].decode())
    assert prof.kind == "estimated_performance"
    assert prof.payload["labelled_rows"] == len(pf.reference)
    assert prof.payload["positives"] == int(pf.reference["default"].sum())


def _monitor(setting, data: pd.DataFrame, target: str | None):
    _, pack, validation = setting
    prof = ReferenceProfile.from_json(validation.profiles["estimated_performance"].decode())
    return runner.run(
        pack,
        "monitor",
        "high",
        EvaluationInput(data=data, target=target, score="score", features=FEATURES),
        profiles={"estimated_performance": prof},
    )


def test_without_labels_the_estimate_is_graded_and_passes_on_reference_like_data(setting):
    pf, _, _ = setting
    draft = _monitor(setting, pf.decisions[[*FEATURES, "score"]], None)
    (o,) = [o for o in draft.outcomes if o.control_id == CONTROL]
    assert o.status == "pass", o.reason
    assert draft.results["estimated_performance"].value("estimated_auc_drop") < 0.03


def test_with_labels_the_estimate_is_not_run_and_says_why(setting):
    pf, _, _ = setting
    draft = _monitor(setting, pf.labelled_current()[[*FEATURES, "score", "default"]], "default")
    assert "estimated_performance" not in draft.results
    assert not [o for o in draft.outcomes if o.control_id == CONTROL]
    assert any("estimated_performance not run: the data has labels" in n for n in draft.notes)


def test_a_compressed_score_month_warns_or_fails_on_the_estimate(setting):
    pf, _, _ = setting
    month = pf.decisions[[*FEATURES, "score"]].copy()
    # scores pulled halfway to their mean: the applicants bunch up and the expected AUC drops
    month["score"] = 0.5 * month["score"] + 0.5 * month["score"].mean()
    draft = _monitor(setting, month, None)
    (o,) = [o for o in draft.outcomes if o.control_id == CONTROL]
    assert o.status in ("warn", "fail")
