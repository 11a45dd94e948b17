"""Segmented drift, performance and fairness: per-segment numbers equal the monitors run on each segment's
rows alone, on pandas, DuckDB and Spark alike; a small segment is insufficient data; the drifted channel is
flagged after the multiple-comparison adjustment while the whole portfolio is not."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from monitors.base import ColumnSpec, Feature, ParameterError
from monitors.drift import DriftMonitor
from monitors.performance import PerformanceMonitor
from monitors.segments import SegmentMonitor, adjust_pvalues

SPEC = ColumnSpec(
    (Feature("x1"), Feature("x2", "categorical")), target="y", score="score", sensitive=("sex",)
)


def _portfolio(n: int, shift: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ch = rng.choice(["web", "branch", "phone", "tiny"], size=n, p=[0.15, 0.55, 0.29, 0.01])
    x1 = rng.normal(size=n) + np.where(ch == "web", shift, 0.0)
    x2 = rng.choice(["a", "b", "c"], size=n)
    score = 1 / (1 + np.exp(-x1))
    y = (rng.uniform(size=n) < score).astype(int)
    return pd.DataFrame(
        {"x1": x1, "x2": x2, "score": score, "y": y, "channel": ch, "sex": rng.choice(["F", "M"], size=n)}
    )


@pytest.fixture(scope="module")
def data():
    return _portfolio(8000, 0.0, 1), _portfolio(8000, 0.9, 2)


@pytest.fixture(scope="module")
def result(data):
    ref, cur = data
    return SegmentMonitor().run(SPEC, current=cur, reference=ref, params={"segments": ["channel"]})


def test_per_segment_metrics_equal_the_monitors_on_the_segment_alone(data, result):
    ref, cur = data
    for ch in ("web", "branch", "phone"):
        r, c = ref[ref.channel == ch], cur[cur.channel == ch]
        drift = DriftMonitor().run(SPEC, reference=r, current=c, params={"evidently_report": False})
        for name in ("psi", "ks_pvalue"):
            assert result.value(f"drift.{name}", feature="x1", group=f"channel={ch}") == drift.value(
                name, feature="x1"
            )
        assert result.value("drift.max_psi", group=f"channel={ch}") == drift.value("max_psi")
        perf = PerformanceMonitor().run(SPEC, current=c)
        assert result.value("performance.auc", group=f"channel={ch}") == pytest.approx(
            perf.value("auc"), abs=1e-15
        )
        rows = result.metric("rows", group=f"channel={ch}")
        assert rows.value == len(c) and rows.counts["reference_rows"] == len(r)
        rate = c[c.sex == "F"].score.ge(0.5).mean()
        assert result.value(
            "fairness.selection_rate", feature="sex", group=f"channel={ch}|F"
        ) == pytest.approx(rate)


def test_small_segment_is_insufficient_data_never_a_number(data, result):
    tiny = result.metric("drift.max_psi", group="channel=tiny")
    assert (
        tiny.value is None
        and tiny.status.value == "insufficient_data"
        and "min_segment_size 100" in tiny.reason
    )
    assert result.metric("performance.auc", group="channel=tiny").value is None
    assert result.value("rows", group="channel=tiny") == (data[1].channel == "tiny").sum()
    assert result.value("segments_insufficient") == 1


def test_adjusted_pvalues_cover_every_segment_feature_test(result):
    raw = [
        m
        for m in result.metrics
        if m.name in ("drift.ks_pvalue", "drift.chi2_pvalue") and m.value is not None
    ]
    adj = {(m.feature, m.group): m for m in result.metrics if m.name.endswith("_adjusted")}
    want = adjust_pvalues([m.value for m in raw], "bh")
    assert len(adj) == len(raw) == 6  # 3 judged segments x 2 features
    for m, w in zip(raw, want, strict=True):
        a = adj[(m.feature, m.group)]
        assert a.value == pytest.approx(w) and a.counts["method"] == "benjamini-hochberg"
        assert a.counts["family_size"] == 6 and a.counts["raw"] == m.value


def test_the_drifted_channel_is_flagged_while_the_portfolio_is_not(data, result):
    ref, cur = data
    whole = DriftMonitor().run(SPEC, reference=ref, current=cur, params={"evidently_report": False})
    assert whole.value("max_psi") < 0.1  # the web channel is 15% of the book: diluted
    assert result.value("drift.segment_drifted", group="channel=web") == 1.0
    assert result.value("drift.segment_flagged_psi", group="channel=web") >= 0.25
    for ch in ("branch", "phone"):
        assert result.value("drift.segment_drifted", group=f"channel={ch}") == 0.0
    assert result.value("segments_drifted") == 1.0


def test_holm_is_selectable_and_stated(data):
    ref, cur = data
    r = SegmentMonitor().run(
        SPEC, current=cur, reference=ref, params={"segments": ["channel"], "p_adjust": "holm"}
    )
    raw = [m for m in r.metrics if m.name in ("drift.ks_pvalue", "drift.chi2_pvalue") and m.value is not None]
    got = [r.metric(f"{m.name}_adjusted", feature=m.feature, group=m.group) for m in raw]
    np.testing.assert_allclose([g.value for g in got], adjust_pvalues([m.value for m in raw], "holm"))
    assert {g.counts["method"] for g in got} == {"holm"} and "holm" in r.notes[0]


def test_cross_segments(data):
    ref, cur = data
    r = SegmentMonitor().run(
        SPEC,
        current=cur,
        reference=ref,
        params={"segments": ["channel", "sex"], "cross": True, "kinds": ["performance"]},
    )
    sub = cur[(cur.channel == "web") & (cur.sex == "F")]
    from sklearn.metrics import roc_auc_score

    assert r.value("performance.auc", group="channel=web&sex=F") == pytest.approx(
        roc_auc_score(sub.y, sub.score)
    )
    assert r.value("rows", group="sex=M") == (cur.sex == "M").sum()


def test_unknown_segment_column_and_bad_parameters(data):
    ref, cur = data
    r = SegmentMonitor().run(SPEC, current=cur, reference=ref, params={"segments": ["region"]})
    assert r.status.value == "invalid_input" and "region" in r.reason
    with pytest.raises(ParameterError, match="p_adjust must be one of"):
        SegmentMonitor().run(
            SPEC, current=cur, reference=ref, params={"segments": ["channel"], "p_adjust": "bonf"}
        )
    with pytest.raises(ParameterError, match="segments must name at least one segment column"):
        SegmentMonitor().run(SPEC, current=cur, reference=ref, params={})


def _same(a, b):
    av = {(m.name, m.feature, m.group): m.value for m in a.metrics}
    bv = {(m.name, m.feature, m.group): m.value for m in b.metrics}
    assert av.keys() == bv.keys()
    for k, v in av.items():
        if v is None:
            assert bv[k] is None, k
        else:
            assert bv[k] == pytest.approx(v, rel=1e-9, abs=1e-12), k


def test_duckdb_filters_segments_in_the_engine_with_the_same_numbers(data, result, tmp_path):
    import duckdb  # noqa: F401  (part of `.[all]`: a missing engine fails, it is not skipped)

    ref, cur = data
    ref.to_parquet(tmp_path / "ref.parquet")
    cur.to_parquet(tmp_path / "cur.parquet")
    r = SegmentMonitor().run(
        SPEC,
        current=str(tmp_path / "cur.parquet"),
        reference=str(tmp_path / "ref.parquet"),
        params={"segments": ["channel"]},
        engine="duckdb",
    )
    assert any("segments filtered on the engine" in n for n in r.notes)
    _same(result, r)


def test_spark_filters_segments_in_the_engine_with_the_same_numbers(data, result):
    import pyspark  # noqa: F401  (part of `.[all]`)

    from monitors.engines.spark import local_session

    spark = local_session("modelreg-segments", cores=2, shuffle_partitions=2)
    ref, cur = data
    r = SegmentMonitor().run(
        SPEC,
        current=spark.createDataFrame(cur),
        reference=spark.createDataFrame(ref),
        params={"segments": ["channel"], "kinds": ["drift", "fairness"]},
        engine="spark",
        spark=spark,
    )
    keep = {"drift", "fairness", "rows", "segments"}
    pruned = type(result)(
        **{
            **result.__dict__,
            "metrics": tuple(
                m for m in result.metrics if m.name.split(".")[0] in keep or m.name.startswith("segments")
            ),
        }
    )
    _same(pruned, r)
