"""The Spark reduction engine (local[2]) against the pandas path on the same data, SHAP through mapInPandas,
and the clear error when pyspark is missing. One SparkSession for the whole module."""

from __future__ import annotations

import os
import sys

import numpy as np
import pandas as pd
import pytest

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

from monitors.base import ColumnSpec, MetricStatus
from monitors.drift import DriftMonitor
from monitors.fairness import FairnessMonitor
from monitors.scale import drift_on, explain_sample, fairness_on
from tests.monitors.test_engines_duckdb import NO_HTML, SPEC, assert_same, make_frame


def test_missing_pyspark_gives_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    from monitors.engines import spark as spark_engine

    monkeypatch.setitem(sys.modules, "pyspark", None)
    monkeypatch.setitem(sys.modules, "pyspark.sql", None)
    with pytest.raises(ImportError, match=r"pip install 'modelreg\[spark\]'"):
        spark_engine.import_pyspark()


pyspark = pytest.importorskip("pyspark")


@pytest.fixture(scope="module")
def spark():
    from monitors.engines.spark import local_session

    session = local_session("modelreg-tests", cores=2, shuffle_partitions=2)
    yield session
    session.stop()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("spark")
    ref, cur = make_frame(1500, shifted=False, seed=11), make_frame(2000, shifted=True, seed=12)
    cur.loc[::53, "region"] = None
    ref.to_parquet(root / "ref.parquet")
    cur.to_parquet(root / "cur.parquet")
    return {"ref": root / "ref.parquet", "cur": root / "cur.parquet"}


def test_drift_equals_pandas_exactly(spark, files: dict) -> None:
    expected = DriftMonitor().run(SPEC, reference=files["ref"], current=files["cur"], params=NO_HTML)
    spark.read.parquet(str(files["cur"])).createOrReplaceTempView("scoring_log")
    got = drift_on(
        "spark",
        SPEC,
        reference=spark.read.parquet(str(files["ref"])),
        current="spark:scoring_log",
        params=NO_HTML,
    )
    assert_same(expected, got)
    assert got.value("new_category_share", feature="cat") > 0.03
    assert got.metric("psi", feature="big").counts["bins"] == 53
    assert "reduction engine: spark" in got.notes


def test_fairness_equals_pandas_exactly(spark, files: dict) -> None:
    spec = ColumnSpec(SPEC.features, target="bad", score="score", sensitive=("sex", "region", "age"))
    params = {"sensitive_bins": {"age": [18, 35, 50, 80]}, "bootstrap": 50, "min_group_size": 20}
    expected = FairnessMonitor().run(spec, current=files["cur"], params=params)
    got = fairness_on("spark", spec, current=spark.read.parquet(str(files["cur"])), params=params)
    assert_same(expected, got)
    assert got.value("n", feature="region", group="__missing__") > 0
    assert got.metric("auc", feature="sex&region", group="F&north").status is MetricStatus.OK


def test_german_credit_equals_pandas(spark, german, tmp_path) -> None:
    german.reference.to_parquet(tmp_path / "ref.parquet")
    german.current.to_parquet(tmp_path / "cur.parquet")
    ref, cur = (
        spark.read.parquet(str(tmp_path / "ref.parquet")),
        spark.read.parquet(str(tmp_path / "cur.parquet")),
    )
    a = DriftMonitor().run(
        german.spec, reference=tmp_path / "ref.parquet", current=tmp_path / "cur.parquet", params=NO_HTML
    )
    assert_same(a, drift_on("spark", german.spec, reference=ref, current=cur, params=NO_HTML))
    spec = ColumnSpec(german.spec.features, target="bad", score="score", sensitive=("sex",))
    a = FairnessMonitor().run(spec, current=tmp_path / "cur.parquet")
    b = fairness_on("spark", spec, current=cur)
    assert_same(a, b)
    female = german.current[german.current["sex"] == "female"]
    assert b.value("selection_rate", feature="sex", group="female") == float((female["score"] >= 0.5).mean())


def test_bad_input_is_a_result_not_a_traceback(spark, files: dict) -> None:
    cur = spark.read.parquet(str(files["cur"]))
    r = drift_on("spark", SPEC, reference=files["ref"], current=cur.drop("cat"), params=NO_HTML)
    assert r.status is MetricStatus.INVALID_INPUT and "missing feature column(s) ['cat']" in r.reason
    bad = cur.withColumn("x", cur["x"].cast("string"))
    from pyspark.sql import functions as F

    bad = bad.withColumn("x", F.when(F.col("count") == 7, F.lit("n/a")).otherwise(F.col("x")))
    r = drift_on("spark", SPEC, reference=files["ref"], current=bad, params=NO_HTML)
    assert r.status is MetricStatus.INVALID_INPUT
    assert "'n/a'" in r.metric("psi", feature="x").reason
    r = drift_on("spark", SPEC, reference=files["ref"], current=cur.limit(0), params=NO_HTML)
    assert r.status is MetricStatus.INSUFFICIENT_DATA and r.reason == "current data has 0 rows"
    r = fairness_on("spark", SPEC, current=cur.drop("sex"))
    assert r.status is MetricStatus.INVALID_INPUT and "sex" in r.reason
    r = drift_on("spark", SPEC, reference=files["ref"], current="spark:no_such_table", params=NO_HTML)
    assert r.status is MetricStatus.INVALID_INPUT and "no_such_table" in r.reason


def test_stratified_sample_on_spark(spark, files: dict) -> None:
    cur = spark.read.parquet(str(files["cur"]))
    sample, note = explain_sample(cur, 200, seed=5, strata="sex", engine="spark")
    frame = pd.read_parquet(files["cur"])
    assert len(sample) == 200
    for sex, size in frame["sex"].value_counts().items():
        assert abs(int((sample["sex"] == sex).sum()) - 200 * size / len(frame)) < 1
    assert "stratified by sex" in note


def test_shap_with_map_in_pandas_equals_pandas_path(spark) -> None:
    lightgbm = pytest.importorskip("lightgbm")
    from monitors.engines.spark import shap_values
    from monitors.explainability import ExplainabilityMonitor, _Explainer

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(600, 4)), columns=["a", "b", "c", "d"])
    y = (X["a"] + 0.5 * X["b"] - X["c"] * X["d"] + rng.normal(0, 0.3, 600) > 0).astype(int)
    model = lightgbm.LGBMClassifier(n_estimators=30, num_leaves=8, verbose=-1).fit(X, y)
    rows = X.iloc[:40].reset_index(drop=True)
    p = ExplainabilityMonitor().validate_params({})
    expected = _Explainer(model, "tree", list(X.columns), None, p).explain(rows)
    got = shap_values(spark.createDataFrame(rows).repartition(3), model, list(X.columns))
    # mapInPandas over 3 partitions may reorder rows: align on the model output + features' SHAP values.
    exp = pd.DataFrame(expected.values, columns=[f"shap_{c}" for c in X.columns])
    exp["model_output"] = expected.model_output
    key = ["model_output", "shap_a", "shap_b"]
    np.testing.assert_allclose(
        got.sort_values(key).drop(columns="expected_value").to_numpy(),
        exp.sort_values(key).to_numpy(),
        rtol=0,
        atol=1e-12,
    )
    # Additivity in the executors' output: expected value + Σ SHAP = raw model output.
    total = got[[f"shap_{c}" for c in X.columns]].sum(axis=1) + got["expected_value"]
    np.testing.assert_allclose(total, got["model_output"], atol=1e-9)


def test_sampled_path_counts_exact_ks_within_dkw(spark, files: dict) -> None:
    import math

    m = 200
    params = {**NO_HTML, "sample_size": m}
    expected = DriftMonitor().run(SPEC, reference=files["ref"], current=files["cur"], params=params)
    cur = spark.read.parquet(str(files["cur"]))
    got = drift_on("spark", SPEC, reference=spark.read.parquet(str(files["ref"])), current=cur, params=params)
    assert_same(expected, got, loose={"ks_statistic", "ks_pvalue", "wasserstein_norm"})
    assert got.metric("ks_statistic", feature="x").counts == {
        "reference_n": m,
        "current_n": m,
        "exact": False,
    }
    eps = math.sqrt(math.log(2 / 1e-6) / (2 * m))
    for col in ("x", "count"):
        assert (
            abs(got.value("ks_statistic", feature=col) - expected.value("ks_statistic", feature=col))
            <= 4 * eps
        )


def test_local_session_keeps_its_warehouse_out_of_the_current_folder(spark) -> None:
    """Issue 17.7: Spark's default warehouse is ./spark-warehouse of the process's folder (the checkout in
    a test run). A table saved through the session must land in a temporary folder instead."""
    from pathlib import Path
    from urllib.parse import urlparse

    warehouse = Path(urlparse(spark.conf.get("spark.sql.warehouse.dir")).path)
    assert not warehouse.resolve().is_relative_to(Path.cwd().resolve())
    spark.range(3).write.mode("overwrite").saveAsTable("modelreg_hygiene_probe")
    try:
        assert (warehouse / "modelreg_hygiene_probe").is_dir()
        assert not (Path.cwd() / "spark-warehouse" / "modelreg_hygiene_probe").exists()
    finally:
        spark.sql("DROP TABLE IF EXISTS modelreg_hygiene_probe")
