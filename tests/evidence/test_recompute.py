"""`evidence recompute`: the pack's numbers re-derived from the same data, parameters and seeds."""

from __future__ import annotations

import json

import pytest

from tests.evidence.conftest import FEATURES, run_cli


def test_recompute_reproduces_every_monitor_with_the_model(german, pack_path):
    from modelreg.evidence import recompute

    result = recompute(pack_path, german.holdout_path, reference=german.train_path, model=german.model)
    assert result.ok, result.differences
    assert result.evaluation_id == german.validation.id and result.purpose == "validation"
    assert set(result.monitors) == {
        "data_quality",
        "drift",
        "fairness",
        "explainability",
        "performance",
        "robustness",
    }
    assert result.compared > 100 and result.skipped == {}
    assert result.data["current"]["matches"] and result.data["reference"]["matches"]


def test_recompute_without_the_model_says_what_it_skipped(german, pack_path, tmp_path):
    """With the scores as a column of the data, the monitors that only need scores are recomputed; those
    that run the model are skipped with the reason."""
    import pandas as pd

    from modelreg.evidence import recompute
    from modelreg.governance.runner import SCORE_COLUMN

    holdout = pd.read_parquet(german.holdout_path)
    nothing = recompute(pack_path, holdout, reference=german.train_path)
    assert not nothing.ok and nothing.compared == 0
    assert "pass --model" in nothing.skipped["explainability"]
    assert f"lacks the score column {SCORE_COLUMN!r}" in nothing.skipped["performance"]

    scored = holdout.copy()
    scored[SCORE_COLUMN] = german.model.predict_proba(holdout[list(FEATURES)])[:, 1]
    train = pd.read_parquet(german.train_path)
    train[SCORE_COLUMN] = german.model.predict_proba(train[list(FEATURES)])[:, 1]
    result = recompute(pack_path, scored, reference=train)
    assert result.ok, result.differences
    assert set(result.monitors) == {"data_quality", "drift", "fairness", "performance"}
    assert set(result.skipped) == {"explainability", "robustness"}


def test_recompute_reports_changed_data_and_numbers(german, pack_path, tmp_path):
    import pandas as pd

    from modelreg.evidence import recompute
    from modelreg.governance.runner import SCORE_COLUMN

    holdout = pd.read_parquet(german.holdout_path)
    holdout.loc[holdout.index[:40], "default"] = 1 - holdout.loc[holdout.index[:40], "default"]
    holdout[SCORE_COLUMN] = german.model.predict_proba(holdout[list(FEATURES)])[:, 1]
    train = pd.read_parquet(german.train_path)
    train[SCORE_COLUMN] = german.model.predict_proba(train[list(FEATURES)])[:, 1]
    result = recompute(pack_path, holdout, reference=train, tolerance=1e-6)
    assert not result.ok
    assert result.data["current"]["matches"] is False
    notes = [d for d in result.differences if d["metric"] is None]
    assert notes[0]["note"] == "--data is not the data the evaluation used (fingerprint differs)"
    auc = [d for d in result.differences if d["monitor"] == "performance" and d["metric"] == "auc"]
    assert auc and abs(auc[0]["difference"]) > 1e-6


def test_recompute_refuses_a_tampered_pack_and_bad_input(german, pack_path, tmp_path):
    from modelreg.errors import BadInput
    from modelreg.evidence import recompute
    from tests.evidence.conftest import members, rezip

    name = f"monitors/{german.validation.id}/performance.json"
    body = json.loads(members(pack_path)[name])
    body["metrics"][0]["value"] = 0.99
    bad = rezip(pack_path, tmp_path / "t.zip", replace={name: json.dumps(body).encode()})
    with pytest.raises(BadInput, match="does not match its manifest digest"):
        recompute(bad, german.holdout_path, reference=german.train_path, model=german.model)
    with pytest.raises(BadInput, match="--tolerance must be a non-negative number"):
        recompute(pack_path, german.holdout_path, tolerance=-1)
    with pytest.raises(BadInput, match="--evaluation must be one of"):
        recompute(pack_path, german.holdout_path, evaluation=999)
    with pytest.raises(BadInput, match="does not exist"):
        recompute(pack_path, tmp_path / "nope.parquet")


def test_cli_recompute(german, pack_path, tmp_path, capsys):
    import pandas as pd

    from modelreg.governance.runner import SCORE_COLUMN

    holdout = pd.read_parquet(german.holdout_path)
    holdout[SCORE_COLUMN] = german.model.predict_proba(holdout[list(FEATURES)])[:, 1]
    train = pd.read_parquet(german.train_path)
    train[SCORE_COLUMN] = german.model.predict_proba(train[list(FEATURES)])[:, 1]
    holdout.to_parquet(tmp_path / "scored.parquet", index=False)
    train.to_parquet(tmp_path / "train_scored.parquet", index=False)
    code = run_cli(
        "evidence",
        "recompute",
        str(pack_path),
        "--data",
        str(tmp_path / "scored.parquet"),
        "--reference",
        str(tmp_path / "train_scored.parquet"),
        "--json",
    )
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["ok"] and out["compared"] > 50
    holdout.loc[holdout.index[:5], SCORE_COLUMN] = 0.99
    holdout.to_parquet(tmp_path / "changed.parquet", index=False)
    code = run_cli(
        "evidence",
        "recompute",
        str(pack_path),
        "--data",
        str(tmp_path / "changed.parquet"),
        "--reference",
        str(tmp_path / "train_scored.parquet"),
    )
    text = capsys.readouterr().out
    assert code == 1 and text.startswith("DIFFERENT") and "performance auc" in text


def test_cli_recompute_with_a_saved_mlflow_model(german, pack_path, tmp_path, capsys):
    """The model given as an MLflow model URI (a local model folder), loaded the way the registry's runs load it."""
    import mlflow.sklearn

    folder = tmp_path / "model"
    mlflow.sklearn.save_model(german.model, folder, pip_requirements=["scikit-learn"])  # skip slow inference
    code = run_cli(
        "evidence",
        "recompute",
        str(pack_path),
        "--data",
        str(german.holdout_path),
        "--reference",
        str(german.train_path),
        "--model",
        str(folder),
        "--json",
    )
    out = json.loads(capsys.readouterr().out)
    assert code == 0, out
    assert set(out["monitors"]) == {
        "data_quality",
        "drift",
        "fairness",
        "explainability",
        "performance",
        "robustness",
    }
    assert out["differences"] == [] and out["skipped"] == {}


def test_recompute_a_monitoring_run_from_the_packed_baseline_and_profile(german, pack_path):
    """A monitoring run compared new data with the validation baseline and the stored reference profile;
    both come from the pack, so only the new data and the model are needed."""
    from modelreg.evidence import recompute

    assert german.monitoring.purpose == "monitoring"
    result = recompute(pack_path, german.holdout_path, evaluation=german.monitoring.id, model=german.model)
    assert result.ok, (result.differences, result.skipped)
    assert result.purpose == "monitoring" and "drift" in result.monitors and "performance" in result.monitors
    assert "reference" not in result.data


def test_cli_recompute_with_nothing_comparable_is_not_a_difference(german, pack_path, capsys):
    """Issue 17.2: without --model and without the score column no metric can be re-derived. That is
    missing input (exit 2, each monitor named with the reason), never "DIFFERENT" (exit 1)."""
    code = run_cli(
        "evidence", "recompute", str(pack_path), "--data", str(german.holdout_path), "--reference",
        str(german.train_path),
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 2, out
    assert "DIFFERENT" not in out and out.startswith("NOT RECOMPUTED: evaluation #")
    for kind in ("drift", "explainability", "fairness", "performance", "robustness"):
        assert f"not recomputed {kind}: " in out
    assert "pass --model" in out

    code = run_cli("evidence", "recompute", str(pack_path), "--data", str(german.holdout_path), "--json")
    payload = json.loads(capsys.readouterr().out)
    assert code == 2
    assert payload["verdict"] == "not_recomputed" and payload["compared"] == 0
    assert payload["differences"] == [] and set(payload["skipped"]) >= {"performance", "robustness"}


def test_recompute_reads_data_with_the_encoding_validation_used(german, pack_path, tmp_path):
    """recompute reads --data/--reference with the reader validate and monitor use: --encoding applies, and a
    GBK export read without it is one line naming the encodings (never a raw codec error)."""
    from modelreg.errors import BadInput
    from modelreg.evidence import recompute
    from modelreg.evidence.recompute import _load_frame

    result = recompute(
        pack_path, german.holdout_path, reference=german.train_path, model=german.model, encoding="utf-8"
    )
    assert result.ok, result.differences
    gbk = tmp_path / "导出.csv"
    gbk.write_bytes("性别,违约\n男,1\n女,0\n".encode("gbk"))
    frame = _load_frame(gbk, "--data", "gbk")
    assert list(frame.columns) == ["性别", "违约"] and list(frame["性别"]) == ["男", "女"]
    with pytest.raises(BadInput, match="gbk or gb18030") as info:
        _load_frame(gbk, "--data")
    assert "\n" not in str(info.value) and "codec" not in str(info.value)
