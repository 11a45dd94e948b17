"""The DuckDB reduction engine against the pandas path on the same Parquet data: counts-based metrics equal
bit for bit, KS/Wasserstein equal when both sides fit the sample and within the DKW bound when sampled."""

from __future__ import annotations

import math
import os

import numpy as np
import pandas as pd
import pytest

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

duckdb = pytest.importorskip("duckdb")

from scipy import stats  # noqa: E402

from monitors import scale  # noqa: E402
from monitors.base import ColumnSpec, Feature, MetricStatus, MonitorResult  # noqa: E402
from monitors.drift import DriftMonitor  # noqa: E402
from monitors.fairness import FairnessMonitor  # noqa: E402
from monitors.scale import (  # noqa: E402
    choose_engine,
    drift_on,
    explain_on,
    explain_sample,
    fairness_on,
    numpy_quantile_edges,
    profile_on,
)

NO_HTML = {"evidently_report": False}


def make_frame(n: int, *, shifted: bool, seed: int) -> pd.DataFrame:
    """NaN/±inf in a numeric column, missing and new categories, a 200-level categorical, a score, a label."""
    r = np.random.default_rng(seed)
    x = r.normal(0.4 if shifted else 0.0, 1.0, n)
    x[r.random(n) < 0.05] = np.nan
    x[r.random(n) < (0.03 if shifted else 0.01)] = np.inf
    x[r.random(n) < 0.01] = -np.inf
    cat = r.choice(["a", "b", "c", "d"], n).astype(object)
    cat[r.random(n) < 0.03] = None
    if shifted:
        cat[r.random(n) < 0.06] = "brand_new"
    levels = r.integers(0, 215 if shifted else 200, n)
    big = np.array([f"L{i:03d}" for i in levels], dtype=object)
    score = r.beta(2, 3 if shifted else 4, n)
    return pd.DataFrame(
        {
            "x": x,
            "count": r.poisson(3, n),
            "cat": cat,
            "big": big,
            "sex": r.choice(["F", "M"], n, p=[0.4, 0.6]),
            "region": r.choice(["north", "south", "west"], n),
            "age": r.integers(18, 80, n).astype(float),
            "score": score,
            "bad": (r.random(n) < score).astype(int),
        }
    )


SPEC = ColumnSpec(
    (
        Feature("x"),
        Feature("count"),
        Feature("cat", "categorical"),
        Feature("big", "categorical"),
        Feature("age", "ordinal"),
    ),
    target="bad",
    score="score",
    sensitive=("sex", "region"),
)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    root = tmp_path_factory.mktemp("engines")
    ref, cur = make_frame(3000, shifted=False, seed=1), make_frame(4000, shifted=True, seed=2)
    ref.to_parquet(root / "ref.parquet")
    cur.to_parquet(root / "cur.parquet")
    folder = root / "cur_folder"
    folder.mkdir()
    for i, part in enumerate(np.array_split(np.arange(len(cur)), 3)):
        cur.iloc[part].to_parquet(folder / f"part-{i}.parquet")
    db = root / "scoring.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE SCHEMA logs")
    con.execute(f"CREATE TABLE logs.scoring AS SELECT * FROM read_parquet('{root / 'cur.parquet'}')")
    con.close()
    return {
        "root": root,
        "ref": root / "ref.parquet",
        "cur": root / "cur.parquet",
        "folder": folder,
        "db": db,
    }


def as_map(result: MonitorResult) -> dict[tuple, tuple]:
    return {
        (m.name, m.feature, m.group): (m.value, m.status.value, m.ci_low, m.ci_high) for m in result.metrics
    }


def assert_same(a: MonitorResult, b: MonitorResult, *, loose: set[str] = frozenset()) -> None:
    ma, mb = as_map(a), as_map(b)
    assert a.status == b.status and a.reason == b.reason
    assert set(ma) == set(mb)
    for key, value in ma.items():
        if key[0] in loose:
            continue
        assert mb[key] == value, key


# -- bin edges -------------------------------------------------------------------------------------------------


def test_quantile_edges_from_duckdb_order_statistics_are_numpys_bit_for_bit() -> None:
    rng = np.random.default_rng(7)
    con = duckdb.connect()
    for trial in range(40):
        n = int(rng.integers(1, 5000))
        x = rng.normal(size=n) * rng.choice([1e-3, 1.0, 1e6])
        if trial % 3 == 0:
            x = np.round(x, 1)  # heavy ties: dedup of edges matters
        con.execute("CREATE OR REPLACE TABLE t AS SELECT unnest(?::DOUBLE[]) AS x", [x.tolist()])
        k = int(rng.integers(2, 30))
        got = numpy_quantile_edges(
            n,
            k,
            lambda ranks, n=n: np.asarray(
                con.execute(
                    "SELECT quantile_disc(x, ?::DOUBLE[]) FROM t", [[(r + 0.5) / n for r in ranks]]
                ).fetchone()[0]
            ),
        )
        expected = np.unique(np.quantile(x, np.arange(1, k) / k))
        assert np.array_equal(got, expected), (n, k)


# -- drift ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["file", "folder", "glob", "table"])
def test_drift_equals_pandas_exactly(data: dict, source: str) -> None:
    expected = DriftMonitor().run(SPEC, reference=data["ref"], current=data["cur"], params=NO_HTML)
    current = {
        "file": data["cur"],
        "folder": data["folder"],
        "glob": str(data["folder"] / "*.parquet"),
        "table": f"duckdb:{data['db']}::logs.scoring",
    }[source]
    got = drift_on("duckdb", SPEC, reference=data["ref"], current=current, params=NO_HTML)
    assert_same(expected, got)
    # The data really drifted where it was built to: NaN/inf shares, a new category, the 200-level column.
    assert got.value("missing_share_delta", feature="x") > 0.015
    assert got.value("new_category_share", feature="cat") == pytest.approx(
        expected.value("new_category_share", feature="cat")
    )
    assert got.value("new_category_share", feature="big") > 0.0
    assert got.metric("psi", feature="big").counts["bins"] == 53  # top 50 + other + new + missing
    assert got.metric("ks_statistic", feature="x").counts["exact"] is True
    assert "reduction engine: duckdb" in got.notes


def test_profile_on_duckdb_equals_pandas_profile(data: dict) -> None:
    pandas_profile = DriftMonitor().profile(SPEC, data["ref"], NO_HTML)
    duck_profile = profile_on("duckdb", SPEC, data["ref"], NO_HTML)
    import json

    assert json.loads(duck_profile.to_json())["payload"] == json.loads(pandas_profile.to_json())["payload"]
    a = DriftMonitor().run(SPEC, profile=pandas_profile, current=data["cur"], params=NO_HTML)
    b = drift_on("duckdb", SPEC, profile=duck_profile, current=data["folder"], params=NO_HTML)
    assert_same(a, b)


def test_sampled_ks_wasserstein_within_dkw_bound_and_counts_exact(data: dict) -> None:
    m = 500
    params = {**NO_HTML, "sample_size": m}
    expected = DriftMonitor().run(SPEC, reference=data["ref"], current=data["cur"], params=params)
    got = drift_on("duckdb", SPEC, reference=data["ref"], current=data["cur"], params=params)
    assert_same(expected, got, loose={"ks_statistic", "ks_pvalue", "wasserstein_norm"})
    assert got.metric("ks_statistic", feature="x").counts["exact"] is False
    # DKW: each of the four samples' ECDFs is within eps of its full data's with probability 1 - 1e-6.
    eps = math.sqrt(math.log(2 / 1e-6) / (2 * m))
    ref, cur = pd.read_parquet(data["ref"]), pd.read_parquet(data["cur"])
    for col in ("x", "count"):
        a, b = ref[col].to_numpy(float), cur[col].to_numpy(float)
        full = stats.ks_2samp(a[np.isfinite(a)], b[np.isfinite(b)]).statistic
        assert abs(got.value("ks_statistic", feature=col) - full) <= 2 * eps
        assert (
            abs(got.value("ks_statistic", feature=col) - expected.value("ks_statistic", feature=col))
            <= 4 * eps
        )
    assert any("hash of seed" in n for n in got.notes)
    # Deterministic: the same seed draws the same sample.
    again = drift_on("duckdb", SPEC, reference=data["ref"], current=data["cur"], params=params)
    assert as_map(again) == as_map(got)


def test_drift_large_path_edges_and_counts_match_pandas(data: dict) -> None:
    """Above sample_size the edges come from quantile_disc order statistics and the counts from SQL."""
    params = {**NO_HTML, "sample_size": 100, "n_bins": 20}
    expected = DriftMonitor().run(SPEC, reference=data["ref"], current=data["cur"], params=params)
    got = drift_on("duckdb", SPEC, reference=data["ref"], current=data["cur"], params=params)
    for col in ("x", "count", "age"):
        assert got.value("psi", feature=col) == expected.value("psi", feature=col)
    assert got.value("score_psi") == expected.value("score_psi")


def test_german_credit_drift_and_fairness_equal_pandas(german, tmp_path) -> None:
    german.reference.to_parquet(tmp_path / "ref.parquet")
    german.current.to_parquet(tmp_path / "cur.parquet")
    expected = DriftMonitor().run(
        german.spec, reference=tmp_path / "ref.parquet", current=tmp_path / "cur.parquet", params=NO_HTML
    )
    got = drift_on(
        "duckdb",
        german.spec,
        reference=tmp_path / "ref.parquet",
        current=tmp_path / "cur.parquet",
        params=NO_HTML,
    )
    assert_same(expected, got)
    spec = ColumnSpec(german.spec.features, target="bad", score="score", sensitive=("sex", "age"))
    params = {"sensitive_bins": {"age": [18, 30, 45, 80]}, "min_group_size": 20}
    a = FairnessMonitor().run(spec, current=tmp_path / "cur.parquet", params=params)
    b = fairness_on("duckdb", spec, current=tmp_path / "cur.parquet", params=params)
    assert_same(a, b)
    # Independent check of one confusion cell: female selection rate at threshold 0.5.
    cur = german.current
    female = cur[cur["sex"] == "female"]
    assert b.value("selection_rate", feature="sex", group="female") == pytest.approx(
        float((female["score"] >= 0.5).mean()), abs=0
    )


# -- fairness -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "variant",
    ["score", "prediction", "no_target", "bins_and_missing"],
)
def test_fairness_equals_pandas_exactly(data: dict, tmp_path, variant: str) -> None:
    frame = pd.read_parquet(data["cur"])
    spec = SPEC
    params: dict = {"bootstrap": 50, "min_group_size": 20}
    if variant == "prediction":
        frame["pred"] = (frame["score"] >= 0.4).astype(int)
        frame.loc[::97, "pred"] = np.nan
        spec = ColumnSpec(
            SPEC.features, target="bad", prediction="pred", score="score", sensitive=("sex", "region")
        )
    elif variant == "no_target":
        spec = ColumnSpec(SPEC.features, score="score", sensitive=("sex", "region"))
    elif variant == "bins_and_missing":
        frame.loc[::53, "region"] = None
        frame.loc[::71, "age"] = np.nan
        frame.loc[::89, "score"] = np.inf
        frame.loc[::101, "bad"] = np.nan
        spec = ColumnSpec(SPEC.features, target="bad", score="score", sensitive=("sex", "region", "age"))
        params["sensitive_bins"] = {"age": [18, 35, 50, 80]}
    path = tmp_path / "fair.parquet"
    frame.to_parquet(path)
    expected = FairnessMonitor().run(spec, current=path, params=params)
    got = fairness_on("duckdb", spec, current=path, params=params)
    assert_same(expected, got)
    assert got.status is MetricStatus.OK
    if variant != "no_target":
        # Per-group AUC against sklearn on the rows pandas kept.
        from sklearn.metrics import roc_auc_score

        ok = frame["bad"].notna() & np.isfinite(frame["score"])
        if "pred" in frame:
            ok &= frame["pred"].notna()
        sub = frame[ok & (frame["sex"] == "F")]
        assert got.value("auc", feature="sex", group="F") == pytest.approx(
            roc_auc_score(sub["bad"] == 1, sub["score"]), abs=1e-12
        )
    if variant == "bins_and_missing":
        assert got.value("n", feature="region", group="__missing__") > 0
        assert "missing target" in " ".join(got.notes)


# -- bad input ------------------------------------------------------------------------------------------------------


def test_bad_inputs_give_invalid_or_insufficient_results(data: dict, tmp_path) -> None:
    ref = data["ref"]
    # Missing column.
    frame = pd.read_parquet(data["cur"]).drop(columns=["cat"])
    frame.to_parquet(tmp_path / "nocat.parquet")
    r = drift_on("duckdb", SPEC, reference=ref, current=tmp_path / "nocat.parquet", params=NO_HTML)
    assert r.status is MetricStatus.INVALID_INPUT and "missing feature column(s) ['cat']" in r.reason
    # Empty (0-byte) file and a file that is not Parquet.
    (tmp_path / "empty.parquet").write_bytes(b"")
    r = drift_on("duckdb", SPEC, reference=ref, current=tmp_path / "empty.parquet", params=NO_HTML)
    assert r.status is MetricStatus.INVALID_INPUT and "empty" in r.reason
    (tmp_path / "junk.parquet").write_bytes(b"not parquet at all")
    r = drift_on("duckdb", SPEC, reference=ref, current=tmp_path / "junk.parquet", params=NO_HTML)
    assert r.status is MetricStatus.INVALID_INPUT and "cannot read" in r.reason
    r = fairness_on("duckdb", SPEC, current=tmp_path / "junk.parquet")
    assert r.status is MetricStatus.INVALID_INPUT
    # Zero rows: insufficient data, as on pandas.
    pd.read_parquet(data["cur"]).iloc[:0].to_parquet(tmp_path / "zero.parquet")
    a = DriftMonitor().run(SPEC, reference=ref, current=tmp_path / "zero.parquet", params=NO_HTML)
    b = drift_on("duckdb", SPEC, reference=ref, current=tmp_path / "zero.parquet", params=NO_HTML)
    assert b.status is MetricStatus.INSUFFICIENT_DATA and b.reason == a.reason
    # A string in a numeric column: the feature and the result are invalid_input, the rest is computed.
    frame = pd.read_parquet(data["cur"])
    frame["x"] = frame["x"].astype(object)
    frame.loc[5, "x"] = "12,5"
    frame["x"] = frame["x"].astype(str).where(frame["x"].notna(), None)
    frame.to_parquet(tmp_path / "str.parquet")
    a = DriftMonitor().run(SPEC, reference=ref, current=tmp_path / "str.parquet", params=NO_HTML)
    b = drift_on("duckdb", SPEC, reference=ref, current=tmp_path / "str.parquet", params=NO_HTML)
    assert b.status is MetricStatus.INVALID_INPUT
    assert b.metric("psi", feature="x").status is MetricStatus.INVALID_INPUT
    assert "'12,5'" in b.metric("psi", feature="x").reason
    assert b.value("psi", feature="cat") == a.value("psi", feature="cat")
    # Missing file, bad duckdb reference, missing table.
    r = drift_on("duckdb", SPEC, reference=ref, current=tmp_path / "nope.parquet", params=NO_HTML)
    assert r.status is MetricStatus.INVALID_INPUT and "does not exist" in r.reason
    r = drift_on("duckdb", SPEC, reference=ref, current=f"duckdb:{data['db']}::logs.nope", params=NO_HTML)
    assert r.status is MetricStatus.INVALID_INPUT and "nope" in r.reason
    # A string in the score column for fairness.
    r = fairness_on("duckdb", SPEC, current=tmp_path / "nocat.parquet", params={"sensitive_bins": {}})
    assert r.status is MetricStatus.OK  # cat is not needed by fairness
    frame = pd.read_parquet(data["cur"])
    frame["score"] = frame["score"].astype(str)
    frame.loc[3, "score"] = "high"
    frame.to_parquet(tmp_path / "strscore.parquet")
    r = fairness_on("duckdb", SPEC, current=tmp_path / "strscore.parquet")
    assert r.status is MetricStatus.INVALID_INPUT and "'high'" in r.reason


# -- engine choice, explanations ------------------------------------------------------------------------------------


def test_choose_engine(data: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    assert choose_engine(pd.DataFrame({"a": [1]})) == "pandas"
    assert choose_engine(data["cur"]) == "pandas"  # 4,000 rows
    assert choose_engine(f"duckdb:{data['db']}::logs.scoring") == "duckdb"
    assert choose_engine("spark:logs.scoring") == "spark"
    monkeypatch.setattr(scale, "AUTO_DUCKDB_ROWS", 3999)
    assert choose_engine(data["folder"]) == "duckdb"
    monkeypatch.setattr(scale, "AUTO_DUCKDB_ROWS", 4000)
    assert choose_engine(data["folder"]) == "pandas"
    monkeypatch.setattr(scale, "AUTO_DUCKDB_BYTES", 10)
    assert choose_engine(data["cur"]) == "duckdb"


def test_explain_sample_is_stratified_seeded_and_noted(data: dict) -> None:
    frame = pd.read_parquet(data["cur"])
    sample, note = explain_sample(data["cur"], 300, seed=3, strata="region", engine="duckdb")
    again, _ = explain_sample(data["cur"], 300, seed=3, strata="region", engine="duckdb")
    pd.testing.assert_frame_equal(sample, again)
    assert len(sample) == 300
    sizes = frame["region"].value_counts()
    for region, size in sizes.items():
        share = 300 * size / len(frame)
        assert abs(int((sample["region"] == region).sum()) - share) < 1
    # Every sampled row is a real row of the data.
    merged = sample.merge(frame, how="left", indicator=True)
    assert (merged["_merge"] == "both").all()
    assert "stratified by region" in note and "seed 3" in note
    pandas_sample, _ = explain_sample(frame, 300, seed=3, strata="region", engine="pandas")
    assert pandas_sample["region"].value_counts().to_dict() == sample["region"].value_counts().to_dict()
    other, _ = explain_sample(data["cur"], 300, seed=4, strata="region", engine="duckdb")
    assert not other.equals(sample)


def test_explain_on_records_sampling(data: dict) -> None:
    from sklearn.linear_model import LogisticRegression

    frame = pd.read_parquet(data["ref"])
    feats = ["count", "age"]
    model = LogisticRegression().fit(frame[feats], frame["bad"])
    spec = ColumnSpec(tuple(Feature(f) for f in feats), target="bad")
    result = explain_on(
        "duckdb",
        spec,
        current=data["cur"],
        model=model,
        n=120,
        seed=1,
        strata="sex",
        params={"background_size": 50},
    )
    assert result.status is MetricStatus.OK
    assert result.notes[0].startswith("explained a seeded sample (seed 1, engine duckdb) of 120 of 4000 rows")
    assert result.value("mean_abs_shap", feature="count") > 0


def test_nan_stored_as_nan_not_null_is_counted(tmp_path) -> None:
    """pyarrow writes numpy NaN as a NaN value (not NULL) and leaves it out of the column statistics; DuckDB
    must still count it as NaN (it folds isnan() to FALSE on those statistics unless told not to)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(3)
    for name, shift in (("ref", 0.0), ("cur", 0.2)):
        v = rng.normal(shift, 1, 5000)
        v[rng.random(5000) < (0.02 if name == "ref" else 0.2)] = np.nan
        pq.write_table(pa.table({"v": v}), tmp_path / f"{name}.parquet")
    assert pq.read_table(tmp_path / "cur.parquet").column("v").null_count == 0  # NaN, not NULL
    spec = ColumnSpec((Feature("v"),))
    a = DriftMonitor().run(
        spec, reference=tmp_path / "ref.parquet", current=tmp_path / "cur.parquet", params=NO_HTML
    )
    b = drift_on(
        "duckdb", spec, reference=tmp_path / "ref.parquet", current=tmp_path / "cur.parquet", params=NO_HTML
    )
    assert_same(a, b)
    assert b.value("missing_share_current", feature="v") > 0.15
    # A caller's connection keeps its own optimizer settings afterwards.
    con = duckdb.connect()
    drift_on(
        "duckdb",
        spec,
        reference=tmp_path / "ref.parquet",
        current=tmp_path / "cur.parquet",
        params=NO_HTML,
        connection=con,
    )
    assert con.execute("SELECT current_setting('disabled_optimizers')").fetchone()[0] == ""


def test_monitor_on_and_spec_from_source(data: dict) -> None:
    from monitors.performance import PerformanceMonitor
    from monitors.scale import monitor_on, spec_from_source

    spec = spec_from_source("duckdb", data["cur"], target="bad", score="score", sensitive=("sex", "region"))
    assert spec.feature_names == ["x", "count", "cat", "big", "age"]
    assert [f.kind.value for f in spec.features] == [
        "numeric",
        "numeric",
        "categorical",
        "categorical",
        "numeric",
    ]
    frame = pd.read_parquet(data["cur"])
    expected = PerformanceMonitor().run(spec, current=frame)
    got = monitor_on("performance", "duckdb", spec, current=data["folder"])
    assert got.value("auc") == expected.value("auc")
    assert got.notes[0].startswith(
        "reduction engine duckdb: only columns ['bad', 'score'] were loaded (4,000 rows)"
    )
    drift = monitor_on("drift", "duckdb", SPEC, current=data["cur"], reference=data["ref"], params=NO_HTML)
    assert_same(DriftMonitor().run(SPEC, reference=data["ref"], current=data["cur"], params=NO_HTML), drift)
    from monitors.base import DataInputError

    with pytest.raises(DataInputError, match="missing column"):
        spec_from_source("duckdb", data["cur"], target="nope")


def test_one_scan_samples_are_uniform_subsets_of_finite_values(tmp_path) -> None:
    from monitors.engines.duckdb import DuckDBBackend

    rng = np.random.default_rng(9)
    n = 40_000
    dense = rng.normal(size=n)
    sparse = rng.exponential(size=n)
    sparse[rng.random(n) < 0.7] = np.nan  # the sparsest column sets the fetched fraction
    pd.DataFrame({"dense": dense, "sparse": sparse}).to_parquet(tmp_path / "s.parquet")
    backend = DuckDBBackend(tmp_path / "s.parquet")
    finite = {"dense": n, "sparse": int(np.isfinite(sparse).sum())}
    k = 1000
    got = backend.samples(["dense", "sparse"], k, seed=1, role=1, finite=finite)
    again = backend.samples(["dense", "sparse"], k, seed=1, role=1, finite=finite)
    other = backend.samples(["dense", "sparse"], k, seed=2, role=1, finite=finite)
    backend.close()
    eps = math.sqrt(math.log(2 / 1e-6) / (2 * k))
    for col, full in (("dense", dense), ("sparse", sparse[np.isfinite(sparse)])):
        s = got[col]
        assert s.size == k and np.all(np.diff(s) >= 0) and np.all(np.isfinite(s))
        assert np.isin(s, full).all()  # real values, no interpolation
        assert np.array_equal(s, again[col]) and not np.array_equal(s, other[col])
        assert (
            stats.ks_1samp(
                s, lambda x, f=np.sort(full): np.searchsorted(f, x, side="right") / f.size
            ).statistic
            <= eps
        )
