"""Issue 12's scene on the generated portfolio (modelreg.demo.portfolio): a million decisions, the online
channel drifted. The segments monitor flags the online channel after the multiple-comparison adjustment;
the whole portfolio, and every region and product, stay under the drift threshold. Per-segment PSI is
recomputed by hand with numpy from the rule the drift monitor documents."""

from __future__ import annotations

import numpy as np
import pytest

from modelreg.demo.portfolio import CHANNELS, FEATURES, PRODUCTS, REGIONS, generate_portfolio
from monitors.base import ColumnSpec, Feature
from monitors.drift import DriftMonitor
from monitors.segments import SegmentMonitor

SPEC = ColumnSpec(tuple(Feature(f) for f in FEATURES), score="score")
N = 1_000_000


@pytest.fixture(scope="module")
def portfolio():
    p = generate_portfolio(N, reference_rows=200_000, seed=3)
    return p.reference.drop(columns=["decided_at"]), p.decisions.drop(columns=["decided_at"])


@pytest.fixture(scope="module")
def result(portfolio):
    ref, cur = portfolio
    params = {
        "segments": ["channel", "region", "product"],
        "kinds": ["drift"],
        "drift": {"evidently_report": False},
    }
    return SegmentMonitor().run(SPEC, current=cur, reference=ref, params=params)


def _psi_by_hand(ref: np.ndarray, cur: np.ndarray, n_bins: int = 10, eps: float = 1e-4) -> float:
    """Deduplicated reference deciles, bin = searchsorted(edges, x, "left"), shares floored at eps."""
    edges = np.unique(np.quantile(ref, np.arange(1, n_bins) / n_bins))
    p = np.bincount(np.searchsorted(edges, ref, side="left"), minlength=edges.size + 1) / ref.size
    q = np.bincount(np.searchsorted(edges, cur, side="left"), minlength=edges.size + 1) / cur.size
    p, q = np.maximum(p, eps), np.maximum(q, eps)
    return float(np.sum((q - p) * np.log(q / p)))


def test_the_online_channel_is_flagged_and_nothing_else_is(portfolio, result):
    ref, cur = portfolio
    assert len(cur) == N
    whole = DriftMonitor().run(SPEC, reference=ref, current=cur, params={"evidently_report": False})
    assert whole.value("max_psi") < 0.1  # diluted by the 80 % of decisions from the other channels
    assert result.value("drift.segment_drifted", group="channel=online") == 1.0
    assert result.value("drift.segment_flagged_psi", group="channel=online") >= 0.25
    others = [f"channel={c}" for c in CHANNELS if c != "online"]
    others += [f"region={r}" for r in REGIONS] + [f"product={p}" for p in PRODUCTS]
    for group in others:
        assert result.value("drift.segment_drifted", group=group) == 0.0, group
    assert result.value("segments_drifted") == 1.0
    assert result.value("segments") == len(CHANNELS) + len(REGIONS) + len(PRODUCTS)


def test_segment_psi_equals_numpy_by_hand(portfolio, result):
    ref, cur = portfolio
    for channel in ("online", "branch"):
        r, c = ref[ref.channel == channel], cur[cur.channel == channel]
        for feature in ("utilisation", "age", "income_k"):
            want = _psi_by_hand(r[feature].to_numpy(float), c[feature].to_numpy(float))
            got = result.value("drift.psi", feature=feature, group=f"channel={channel}")
            assert got == pytest.approx(want, rel=1e-9, abs=1e-12), (channel, feature)
    # The flagged PSI of the online channel is its largest significant one: age moved the most.
    flagged = result.value("drift.segment_flagged_psi", group="channel=online")
    assert flagged == pytest.approx(
        max(result.value("drift.psi", feature=f, group="channel=online") for f in FEATURES)
    )
