"""The monitor gate's controls reach the same outcomes when the reduction runs in DuckDB over a Parquet
scoring log as on pandas (the `modelreg monitor --engine duckdb` path)."""

from __future__ import annotations

import pytest

from tests.governance.german import FEATURES, german_frame, split


def test_monitor_gate_outcomes_equal_on_duckdb_and_pandas(tmp_path):
    import lightgbm as lgb

    from modelreg.errors import BadInput
    from modelreg.governance.runner import EvaluationInput, run
    from modelreg.policy import load_pack
    from monitors.base import ReferenceProfile

    s = split(german_frame())
    model = lgb.LGBMClassifier(n_estimators=40, verbose=-1, random_state=0).fit(
        s.train[FEATURES], s.train["default"]
    )
    train, hold = s.train.copy(), s.holdout.copy()
    train["score"] = model.predict_proba(train[FEATURES])[:, 1]
    hold["score"] = model.predict_proba(hold[FEATURES])[:, 1]
    hold.to_parquet(tmp_path / "month.parquet")
    pack = load_pack("cn-fin-algo-risk")
    common = {"target": "default", "score": "score", "sensitive": ("sex",), "features": tuple(FEATURES)}
    base = run(pack, "deploy", "high", EvaluationInput(data=train, reference=train, **common))
    profile = ReferenceProfile.from_json(base.reference_profile.decode())
    outcomes = {}
    for engine in ("pandas", "duckdb"):
        draft = run(
            pack,
            "monitor",
            "high",
            EvaluationInput(data=str(tmp_path / "month.parquet"), engine=engine, **common),
            profile=profile,
            baselines={"performance": base.results["performance"]},
        )
        outcomes[engine] = {o.control_id: (o.status, o.value) for o in draft.outcomes}
    assert outcomes["duckdb"] == outcomes["pandas"]
    assert (
        outcomes["duckdb"]["CHK-DRIFT-01"][1] is not None and outcomes["duckdb"]["CHK-FAIR-01"][1] is not None
    )
    with pytest.raises(BadInput, match="--score or --prediction"):
        run(
            pack,
            "monitor",
            "high",
            EvaluationInput(data=str(tmp_path / "month.parquet"), target="default", engine="duckdb"),
            profile=profile,
        )
