"""``modelreg challenger run`` on a real registry (SQLite and PostgreSQL): bad input exits 2 with one line;
a comparison is stored as a challenger evaluation on both versions, audited, with numbers equal to sklearn's
AUCs of the two models; no version moves."""

from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from tests.operations.conftest import (
    deploy_after_validation,
    german,
    governed,
    now_utc,
    prepare_for_validation,
    validate,
)

__all__ = ["german", "governed"]
NAME = "credit_scoring"


@pytest.fixture
def setup(governed, german, env_for, db_url, monkeypatch, tmp_path):
    """Version 1 deployed (the champion), version 2 in validate (the challenger), version 3 in develop."""
    client = governed
    prepare_for_validation(client, german, NAME, "1")
    ev = validate(client, german, NAME, "1")
    deploy_after_validation(client, NAME, "1", ev, until=now_utc() + timedelta(days=30))
    prepare_for_validation(client, german, NAME, "2")
    client.as_user("dev").registry.register(
        NAME, "3", owner="dev", risk_tier="high", purpose="PD scoring for consumer loans"
    )
    data = tmp_path / "monitoring.csv"
    german["split"].holdout.to_csv(data, index=False)
    for key, value in env_for(db_url).items():
        if key.startswith(("MODELREG_", "MLFLOW_")):
            monkeypatch.setenv(key, value)
    return client, data


def _cli(capsys, *args: str) -> tuple[int, str, str]:
    from modelreg.cli.main import main

    code = main(list(args))
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    return code, out.out, out.err


def test_bad_input_exits_2_with_one_line(setup, capsys):
    _client, data = setup
    base = ["--as", "ops", "challenger", "run", "--model", NAME, "--data", str(data), "--target", "default"]
    cases = [
        (["--champion", "2", "--challenger", "1"], "must be the deployed champion"),
        (["--champion", "1", "--challenger", "3"], "must be a challenger in validate"),
        (["--champion", "1", "--challenger", "2", "--segment", "region"], "--segment region is not a column"),
        (["--champion", "1", "--challenger", "2", "--target", "nope"], "--target nope is not a column"),
        # registered without MLflow: nothing to score through the model loading path
        (["--champion", "1", "--challenger", "2"], "has no MLflow model to score"),
    ]
    for extra, message in cases:
        code, _out, err = _cli(capsys, *base, *extra)
        assert code == 2, (extra, err)
        assert message in err and len(err.strip().splitlines()) == 1, err


def test_comparison_is_stored_on_both_versions_and_moves_nothing(setup, german, capsys):
    from modelreg.governance.challenger import run_challenger

    client, data = setup
    reg = client.as_user("ops").registry
    history_before = {v: len(client.registry.history(NAME, v)) for v in ("1", "2")}
    hold = german["split"].holdout
    done = run_challenger(
        reg,
        NAME,
        champion="1",
        challenger="2",
        data=data,
        target="default",
        segments=("channel_code",),
        min_segment_size=50,
        models={"1": german["clean"], "2": german["biased"]},
    )
    champ_scores = german["clean"].predict_proba(hold[german["clean"].feature_names_in_])[:, 1]
    chall_scores = german["biased"].predict_proba(hold[german["biased"].feature_names_in_])[:, 1]
    y = hold["default"].to_numpy()
    rows = {r["segment"]: r for r in done.comparison()}
    want = roc_auc_score(y, chall_scores) - roc_auc_score(y, champ_scores)
    assert rows[None]["auc_difference"] == pytest.approx(want, abs=1e-9)
    assert rows[None]["ci_low"] < rows[None]["auc_difference"] < rows[None]["ci_high"]
    for code in np.unique(hold["channel_code"]):
        mask = (hold["channel_code"] == code).to_numpy()
        row = rows[f"channel_code={code}"]
        assert row["rows"] == mask.sum()
        if mask.sum() >= 50 and 2 <= y[mask].sum() <= mask.sum() - 2:
            seg = roc_auc_score(y[mask], chall_scores[mask]) - roc_auc_score(y[mask], champ_scores[mask])
            assert row["auc_difference"] == pytest.approx(seg, abs=1e-9)
        else:
            assert row["auc_difference"] is None and row["status"] == "insufficient_data"

    # stored on both versions, same comparison, audited
    assert done.champion.purpose == done.challenger.purpose == "challenger"
    assert (done.champion.version, done.challenger.version) == ("1", "2")
    assert done.champion.data["champion"]["version"] == "1" and done.champion.data["role"] == "champion"
    assert done.challenger.data["role"] == "challenger"
    code, out, err = _cli(capsys, "audit", "log", "--json")
    assert code == 0, err
    log = json.loads(out)
    events = log if isinstance(log, list) else log.get("events", [])
    recorded = [
        e
        for e in events
        if e.get("event") == "evaluation.recorded" and (e.get("payload") or {}).get("purpose") == "challenger"
    ]
    assert sorted(e["version"] for e in recorded) == ["1", "2"]
    code, _out, err = _cli(capsys, "audit", "verify")
    assert code == 0, err  # the replay proves the new evaluation rows

    # never changes the deployment
    assert client.registry.show(NAME, "1").stage.value == "deploy"
    assert client.registry.show(NAME, "2").stage.value == "validate"
    first = events.index(recorded[0])
    assert [e["event"] for e in events[first:]] == ["evaluation.recorded", "evaluation.recorded"]
    assert {v: len(client.registry.history(NAME, v)) for v in ("1", "2")} == history_before
