"""Every number of the segments, stability and challenger monitors against an independent computation:
statsmodels' multipletests (or a by-hand step-up/step-down), a pairwise DeLong on a worked example and a
paired bootstrap, numpy PSI/CSI by hand, a migration matrix counted with pandas."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from monitors.bands import StabilityMonitor, assign_grades, parse_bands, stability_index
from monitors.base import ColumnSpec, Feature, ParameterError
from monitors.challenger import ChallengerMonitor, compare_auc, delong, midrank
from monitors.segments import adjust_pvalues


def _by_hand(p: np.ndarray, method: str) -> np.ndarray:
    m = len(p)
    order = np.argsort(p)
    out = np.empty(m)
    if method == "bh":
        running = 1.0
        for rank in range(m, 0, -1):
            i = order[rank - 1]
            running = min(running, p[i] * m / rank)
            out[i] = running
    else:
        running = 0.0
        for rank in range(1, m + 1):
            i = order[rank - 1]
            running = max(running, min(1.0, p[i] * (m - rank + 1)))
            out[i] = running
    return out


@pytest.mark.parametrize("method,sm", [("bh", "fdr_bh"), ("holm", "holm")])
def test_adjusted_pvalues_match_statsmodels_or_a_hand_computation(method, sm):
    rng = np.random.default_rng(3)
    p = np.concatenate([rng.uniform(size=30) ** 4, [0.01, 0.01, 0.5, 1.0]])  # ties and a 1 included
    got = adjust_pvalues(p, method)
    try:
        from statsmodels.stats.multitest import multipletests

        want = multipletests(p, method=sm)[1]
    except ImportError:
        want = _by_hand(p, method)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-15)
    np.testing.assert_allclose(got, _by_hand(p, method), rtol=0, atol=1e-15)
    assert (got >= p).all()


def test_adjustment_rejects_an_unknown_method():
    with pytest.raises(ParameterError, match="p_adjust must be one of"):
        adjust_pvalues([0.1], "bonferroni")


def _delong_pairwise(scores: list[np.ndarray], y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DeLong, DeLong & Clarke-Pearson (1988) directly: the O(m·n) Heaviside kernel per pair."""
    pos, neg = y == 1, y == 0
    v10, v01, aucs = [], [], []
    for s in scores:
        x, z = s[pos], s[neg]
        psi = (x[:, None] > z[None, :]) + 0.5 * (x[:, None] == z[None, :])
        aucs.append(psi.mean())
        v10.append(psi.mean(axis=1))
        v01.append(psi.mean(axis=0))
    m, n = pos.sum(), neg.sum()
    cov = np.cov(np.array(v10)) / m + np.cov(np.array(v01)) / n
    return np.array(aucs), cov


def test_delong_on_a_worked_example_equals_the_pairwise_definition():
    # 6 positives, 6 negatives, ties inside and across models.
    y = np.array([1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    a = np.array([0.9, 0.8, 0.7, 0.7, 0.4, 0.3, 0.7, 0.5, 0.3, 0.2, 0.2, 0.1])
    b = np.array([0.6, 0.9, 0.5, 0.8, 0.7, 0.6, 0.4, 0.6, 0.2, 0.5, 0.1, 0.3])
    d = delong([a, b], y)
    aucs, cov = _delong_pairwise([a, b], y)
    np.testing.assert_allclose(d.aucs, aucs, atol=1e-15)
    np.testing.assert_allclose(d.covariance, cov, atol=1e-15)
    assert d.aucs[0] == pytest.approx(roc_auc_score(y, a)) and d.aucs[1] == pytest.approx(roc_auc_score(y, b))
    # AUC_a by hand over 36 pairs: 0.9 and 0.8 beat all 6 (12); each 0.7 beats 5 and ties 1 (11); 0.4 beats 4;
    # 0.3 beats 3 and ties 1 (3.5): 30.5 / 36
    assert d.aucs[0] == pytest.approx(30.5 / 36)
    c = compare_auc(a, b, y)
    se = np.sqrt(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    from scipy import stats

    assert c.se == pytest.approx(se)
    assert c.ci_low == pytest.approx(c.difference - stats.norm.ppf(0.975) * se)
    assert c.pvalue == pytest.approx(2 * stats.norm.sf(abs(aucs[1] - aucs[0]) / se))


def test_midrank_equals_scipy_rankdata():
    from scipy.stats import rankdata

    x = np.random.default_rng(0).integers(0, 20, 500).astype(float)
    np.testing.assert_array_equal(midrank(x), rankdata(x, method="average"))


def test_delong_interval_agrees_with_a_paired_bootstrap():
    rng = np.random.default_rng(7)
    n = 3000
    y = (rng.uniform(size=n) < 0.3).astype(int)
    a = y * 0.9 + rng.normal(size=n)
    b = a * 0.5 + y * 0.6 + rng.normal(size=n) * 0.8  # correlated with the champion
    c = compare_auc(a, b, y)
    diffs = []
    for _ in range(400):
        i = rng.integers(0, n, n)
        diffs.append(roc_auc_score(y[i], b[i]) - roc_auc_score(y[i], a[i]))
    boot_se = float(np.std(diffs, ddof=1))
    assert c.difference == pytest.approx(roc_auc_score(y, b) - roc_auc_score(y, a), abs=1e-12)
    assert c.se == pytest.approx(boot_se, rel=0.15)  # 400 replicates: the SE itself is known to ~4%
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    assert abs(c.ci_low - lo) < 0.01 and abs(c.ci_high - hi) < 0.01


def _challenger_frame(seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 4000
    channel = rng.choice(["web", "branch", "tiny"], size=n, p=[0.6, 0.395, 0.005])
    y = (rng.uniform(size=n) < 0.25).astype(int)
    champ = y * 0.6 + rng.normal(size=n)
    chall = y * np.where(channel == "web", 1.2, 0.6) + rng.normal(size=n)
    return pd.DataFrame({"y": y, "champ": champ, "chall": chall, "channel": channel})


def test_challenger_monitor_per_segment_with_insufficient_data():
    frame = _challenger_frame()
    spec = ColumnSpec((), target="y")
    r = ChallengerMonitor().run(
        spec,
        current=frame,
        params={"champion_score": "champ", "challenger_score": "chall", "segments": ["channel"]},
    )
    for label in ("web", "branch"):
        sub = frame[frame.channel == label]
        want = roc_auc_score(sub.y, sub.chall) - roc_auc_score(sub.y, sub.champ)
        m = r.metric("auc_difference", group=f"channel={label}")
        assert m.value == pytest.approx(want, abs=1e-12)
        assert m.counts["rows"] == len(sub)
    web = r.metric("auc_difference_ci_low", group="channel=web")
    assert web.value > 0  # the challenger is better on web, significantly
    tiny = r.metric("auc_difference", group="channel=tiny")
    assert (
        tiny.value is None and tiny.status.value == "insufficient_data" and "min_segment_size" in tiny.reason
    )
    assert r.metric("rows", group="channel=tiny").value == (frame.channel == "tiny").sum()


def test_score_band_psi_and_csi_against_numpy_by_hand():
    bands = parse_bands(
        [
            {"grade": "A", "lower": 0.0, "upper": 0.1},
            {"grade": "B", "lower": 0.1, "upper": 0.3},
            {"grade": "C", "lower": 0.3, "upper": 1.0},
        ]
    )
    ref = pd.DataFrame({"score": [0.05] * 50 + [0.2] * 30 + [0.5] * 20, "income": np.arange(100.0)})
    cur = pd.DataFrame(
        {"score": [0.05] * 30 + [0.2] * 30 + [0.5] * 38 + [1.0, np.nan], "income": np.arange(100.0) + 30}
    )
    spec = ColumnSpec((Feature("income"),), score="score")
    r = StabilityMonitor().run(
        spec,
        current=cur,
        reference=ref,
        params={"score_bands": [b.__dict__ for b in bands], "feature_bins": {"income": [25, 50, 75]}},
    )
    p = np.array([50, 30, 20]) / 100
    q = np.array([30, 30, 39]) / 99  # 1.0 is in C (closed on the right); NaN is ungraded
    assert r.value("score_band_psi") == pytest.approx(float(np.sum((q - p) * np.log(q / p))), abs=1e-12)
    assert r.value("out_of_band_share") == pytest.approx(0.01)
    assert r.value("grade_share_current", group="C") == pytest.approx(39 / 99)
    # income bins (-inf,25], (25,50], (50,75], (75,inf), missing (empty on both sides → floored)
    rc = np.array([26, 25, 25, 24, 0]) / 100
    cc = np.array([0, 21, 25, 54, 0]) / 100
    rc, cc = np.maximum(rc, 1e-4), np.maximum(cc, 1e-4)
    assert r.value("csi", feature="income") == pytest.approx(
        float(np.sum((cc - rc) * np.log(cc / rc))), abs=1e-12
    )
    assert r.value("max_csi") == r.value("csi", feature="income")
    assert r.metric("migration_stay_share").status.value == "insufficient_data"  # no id column
    assert stability_index([1, 1], [1, 1]) == 0.0


def test_grade_migration_matrix_matches_a_pandas_crosstab():
    rng = np.random.default_rng(2)
    ids = np.arange(500)
    ref = pd.DataFrame({"id": ids, "score": rng.uniform(size=500)})
    cur = pd.DataFrame({"id": ids[50:], "score": np.clip(ref.score[50:] + rng.normal(0, 0.1, 450), 0, 1)})
    cur = pd.concat([cur, pd.DataFrame({"id": [9999], "score": [0.5]})])  # an id the reference never had
    raw = [
        {"grade": g, "lower": lo, "upper": hi}
        for g, lo, hi in (("A", 0, 0.3), ("B", 0.3, 0.7), ("C", 0.7, 1.0))
    ]
    bands = parse_bands(raw)
    r = StabilityMonitor().run(
        ColumnSpec((), score="score"),
        current=cur,
        reference=ref,
        params={"score_bands": raw, "id_column": "id"},
    )
    joined = ref.merge(cur, on="id", suffixes=("_r", "_c"))
    gr = assign_grades(joined.score_r.to_numpy(), bands)
    gc = assign_grades(joined.score_c.to_numpy(), bands)
    want = pd.crosstab(gr, gc).reindex(index=range(3), columns=range(3), fill_value=0).to_numpy()
    m = r.metric("migration_stay_share")
    assert np.array_equal(np.array(m.counts["matrix"]), want)
    assert m.value == pytest.approx(np.trace(want) / want.sum())
    assert r.value("migration_downgrade_share") == pytest.approx(np.triu(want, 1).sum() / want.sum())
    assert m.counts["reference_only_ids"] == 50 and m.counts["current_only_ids"] == 1


@pytest.mark.parametrize(
    "raw,message",
    [
        ([{"grade": "A", "lower": 0, "upper": 0.5}], "at least 2 bands"),
        ([{"grade": "A", "lower": 0, "upper": 0.5}, {"grade": "B", "lower": 0.6, "upper": 1}], "contiguous"),
        ([{"grade": "A", "lower": 0, "upper": 0.5}, {"grade": "A", "lower": 0.5, "upper": 1}], "distinct"),
        (
            [{"grade": "A", "lower": 0.5, "upper": 0.5}, {"grade": "B", "lower": 0.5, "upper": 1}],
            "lower < upper",
        ),
        ([{"grade": "A", "lower": 0}, {"grade": "B", "lower": 0.5, "upper": 1}], "keys grade, lower, upper"),
    ],
)
def test_score_bands_are_linted(raw, message):
    with pytest.raises(ParameterError, match=message):
        parse_bands(raw)
