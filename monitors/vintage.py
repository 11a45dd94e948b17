"""Realised performance per maturity window (vintage): decisions joined with their late outcomes.

Pure computation (pandas and numpy only, never ``modelreg``): a frame of decisions with ``decided_at``
(UTC), ``score`` and ``outcome`` (1 = the positive class, e.g. default; NaN while not yet observed) in, a
JSON-able report out. Per decision month: decisions, outcomes known, coverage (the share matured), the
default rate observed among the known outcomes, and the realised AUC where at least ``min_class_count``
events and as many non-events are known, else ``insufficient_data`` with the reason (never a silent number).

``compare_with_estimates`` puts the realised AUC on the decisions an earlier monitoring run scored next to
that run's label-free estimate (monitor ``estimated_performance``: ``estimated_auc`` and its band
``estimated_auc_low`` .. ``estimated_auc_high``): inside or outside the band. While coverage is below 1 the
realised AUC is on the matured part only (early defaults and confirmed goods), and the comparison says so.
"""

from __future__ import annotations

from typing import Any

VERSION = "1"
MIN_CLASS_COUNT = 30
ESTIMATE_KIND = "estimated_performance"
ESTIMATE_METRICS = ("estimated_auc", "estimated_auc_low", "estimated_auc_high")


def auc(outcome: Any, score: Any) -> float:
    """ROC AUC by the Mann-Whitney statistic with average ranks for ties (equals sklearn's roc_auc_score)."""
    import numpy as np
    import pandas as pd

    y = np.asarray(outcome, dtype=float)
    ranks = pd.Series(np.asarray(score, dtype=float)).rank(method="average").to_numpy()
    pos = y == 1
    n1, n0 = int(pos.sum()), int((~pos).sum())
    return float((ranks[pos].sum() - n1 * (n1 + 1) / 2.0) / (n1 * n0))


def _cell(frame: Any, min_class_count: int) -> dict:
    import numpy as np

    decisions = len(frame)
    known = frame[frame["outcome"].notna()]
    n_known = len(known)
    events = int((known["outcome"] == 1).sum())
    non_events = n_known - events
    out: dict[str, Any] = {
        "decisions": decisions,
        "outcomes_known": n_known,
        "coverage": (n_known / decisions) if decisions else None,
        "events": events,
        "non_events": non_events,
        "default_rate": (events / n_known) if n_known else None,
        "realised_auc": None,
        "status": "ok",
        "reason": None,
    }
    scored = known[known["score"].notna()]
    if len(scored) < n_known:
        out["unscored"] = n_known - len(scored)
    s_events = int((scored["outcome"] == 1).sum())
    s_non = len(scored) - s_events
    if s_events < min_class_count or s_non < min_class_count:
        out["status"] = "insufficient_data"
        out["reason"] = (
            f"{s_events} event(s) and {s_non} non-event(s) known with a score; the realised AUC needs at "
            f"least {min_class_count} of each"
        )
    else:
        out["realised_auc"] = auc(scored["outcome"].to_numpy(), scored["score"].to_numpy(dtype=np.float64))
    return out


def vintage_report(frame: Any, *, min_class_count: int = MIN_CLASS_COUNT) -> dict:
    """Per decision month (``YYYY-MM``, UTC) and overall. ``frame``: decided_at, score, outcome."""
    import pandas as pd

    if min_class_count < 1:
        raise ValueError(f"min_class_count must be at least 1. Got {min_class_count} instead.")
    at = pd.DatetimeIndex(frame["decided_at"]).tz_convert("UTC")
    months = at.year * 100 + at.month  # (strftime costs seconds a million rows)
    vintages = []
    for month, part in frame.groupby(months, sort=True):
        label = f"{int(month) // 100:04d}-{int(month) % 100:02d}"
        vintages.append({"vintage": label, **_cell(part, min_class_count)})
    return {
        "version": VERSION,
        "min_class_count": min_class_count,
        "vintages": vintages,
        "overall": _cell(frame, min_class_count),
    }


def estimate_of(result: dict | None) -> dict | None:
    """The overall estimate and band from a stored ``estimated_performance`` MonitorResult dict, or None."""
    if not result:
        return None
    found: dict[str, float] = {}
    for m in result.get("metrics") or ():
        overall = m.get("group") is None and m.get("feature") is None
        if m.get("name") in ESTIMATE_METRICS and overall and m.get("value") is not None:
            found[m["name"]] = float(m["value"])
    if set(found) != set(ESTIMATE_METRICS):
        return None
    return {
        "estimated_auc": found["estimated_auc"],
        "low": found["estimated_auc_low"],
        "high": found["estimated_auc_high"],
    }


def compare_with_estimates(
    frame: Any, estimates: dict[int, dict | None], *, min_class_count: int = MIN_CLASS_COUNT
) -> list[dict]:
    """One row per earlier evaluation that scored some of ``frame``'s decisions (column ``evaluation_id``):
    its estimate (None when it recorded none), the realised AUC on the same decisions, inside/outside."""
    rows = []
    scored = frame[frame["evaluation_id"].notna()]
    for eid, part in scored.groupby(scored["evaluation_id"].astype(int), sort=True):
        cell = _cell(part, min_class_count)
        est = estimates.get(int(eid))
        row: dict[str, Any] = {
            "evaluation_id": int(eid),
            "decisions": cell["decisions"],
            "outcomes_known": cell["outcomes_known"],
            "coverage": cell["coverage"],
            "realised_auc": cell["realised_auc"],
            "estimated_auc": None,
            "estimated_auc_low": None,
            "estimated_auc_high": None,
            "inside_band": None,
            "status": cell["status"],
            "reason": cell["reason"],
            "partial": cell["coverage"] is not None and cell["coverage"] < 1.0,
        }
        if est is None:
            row["status"] = "no_estimate"
            row["reason"] = f"evaluation #{int(eid)} recorded no {ESTIMATE_KIND} estimate"
        else:
            row.update(
                estimated_auc=est["estimated_auc"],
                estimated_auc_low=est["low"],
                estimated_auc_high=est["high"],
            )
            if cell["realised_auc"] is not None:
                row["inside_band"] = bool(est["low"] <= cell["realised_auc"] <= est["high"])
        rows.append(row)
    return rows
