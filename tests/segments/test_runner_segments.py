"""``--segment`` through the governance runner on a real registry (SQLite and PostgreSQL): validation stores a
``segments`` result next to the policy's monitors, with per-segment numbers equal to the performance monitor on
each segment alone; an unknown segment column is bad input (exit 2) naming the columns; score bands in the
model card are linted when written and feed the stability monitor."""

from __future__ import annotations

import pytest
from sklearn.metrics import roc_auc_score

from modelreg.errors import BadInput
from tests.operations.conftest import german, governed, prepare_for_validation

__all__ = ["german", "governed"]
NAME = "credit_scoring"


def test_validate_with_segments_stores_a_segment_result(governed, german):
    client = governed
    prepare_for_validation(client, german, NAME, "1")
    s = german["split"]
    val = client.as_user("val")
    with pytest.raises(BadInput, match="--segment region is not a column of --data"):
        val.validate(
            NAME,
            "1",
            data=s.holdout,
            reference=s.train,
            target="default",
            model=german["clean"],
            segments=["region"],
        )
    ev = val.validate(
        NAME,
        "1",
        data=s.holdout,
        reference=s.train,
        target="default",
        model=german["clean"],
        sensitive=["sex"],
        segments=["channel_code"],
    )
    assert ev.data["params"]["segments"]["segments"] == ["channel_code"]
    from modelreg.store import governance as store

    with client.registry.reading() as rd:
        result = store.monitor_results(rd.session, ev.id)["segments"]
    assert result["params"]["p_adjust"] == "bh" and result["params"]["min_segment_size"] == 100
    hold = s.holdout
    scores = german["clean"].predict_proba(hold[german["clean"].feature_names_in_])[:, 1]
    for code in sorted(hold["channel_code"].unique()):
        mask = (hold["channel_code"] == code).to_numpy()
        got = [
            m
            for m in result["metrics"]
            if m["name"] == "performance.auc" and m["group"] == f"channel_code={code}"
        ]
        assert len(got) == 1
        if mask.sum() >= 100:
            assert got[0]["value"] == pytest.approx(
                roc_auc_score(hold["default"][mask], scores[mask]), abs=1e-12
            )
        else:
            assert got[0]["value"] is None and got[0]["status"] == "insufficient_data"


def test_score_bands_are_linted_when_the_card_is_written(governed):
    client = governed
    dev = client.as_user("dev").registry
    with pytest.raises(BadInput, match="model card field score_bands\\[1\\] must start where"):
        dev.register(
            NAME,
            "7",
            owner="dev",
            risk_tier="low",
            purpose="PD",
            model_card={
                "score_bands": [
                    {"grade": "A", "lower": 0, "upper": 0.1},
                    {"grade": "B", "lower": 0.2, "upper": 1},
                ]
            },
        )
    dev.register(NAME, "7", owner="dev", risk_tier="low", purpose="PD")
    with pytest.raises(BadInput, match="grades must be distinct"):
        dev.update_card(
            NAME,
            "7",
            {
                "score_bands": [
                    {"grade": "A", "lower": 0, "upper": 0.1},
                    {"grade": "A", "lower": 0.1, "upper": 1},
                ]
            },
        )
    good = [{"grade": "A", "lower": 0, "upper": 0.1}, {"grade": "B", "lower": 0.1, "upper": 1}]
    assert dev.update_card(NAME, "7", {"score_bands": good}).model_card["score_bands"] == good
