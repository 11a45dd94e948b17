"""The evidence pack's monitor section shows segment / challenger results per group, with insufficient
segments as a status and their reason, never as a number."""

from __future__ import annotations

import pandas as pd

from modelreg.evidence.render import group_table
from monitors.base import ColumnSpec
from monitors.challenger import ChallengerMonitor


def test_challenger_result_is_rendered_per_segment():
    import numpy as np

    rng = np.random.default_rng(0)
    n = 1200
    y = (rng.uniform(size=n) < 0.3).astype(int)
    frame = pd.DataFrame(
        {
            "y": y,
            "a": y + rng.normal(size=n),
            "b": 1.3 * y + rng.normal(size=n),
            "channel": rng.choice(["web", "branch", "tiny"], size=n, p=[0.5, 0.49, 0.01]),
        }
    )
    res = (
        ChallengerMonitor()
        .run(
            ColumnSpec((), target="y"),
            current=frame,
            params={"champion_score": "a", "challenger_score": "b", "segments": ["channel"]},
        )
        .to_dict()
    )
    html = group_table("challenger", res)
    web = next(m for m in res["metrics"] if m["name"] == "auc_difference" and m["group"] == "channel=web")
    assert "channel=web" in html and f"{web['value']:.4g}" in html
    assert "insufficient_data" in html and "fewer than min_segment_size 100" in html
    assert group_table("drift", res) == ""
