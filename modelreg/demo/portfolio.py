"""A generated credit portfolio for late-label monitoring: decisions now, defaults months later.

Real credit outcomes mature: a loan booked in January is known to be good only after its performance
window (12 months here), while some defaults show up after two months. Monitoring must therefore work on
decisions whose outcomes are partly or wholly unknown. No public data set has a million scored decisions
with decision times, channels and outcome dates, so the tests, the benchmarks and the demo generate one
here, seeded, with numpy only (1M rows in about a second).

The data-generating process (everything is simulated and says so):

* features ``income_k``, ``debt_ratio``, ``utilisation``, ``tenure_months``, ``age``, ``inquiries`` and the
  segment columns ``channel`` (branch / partner / online), ``region`` (north / east / south / west) and
  ``product`` (card / personal / auto); the channel mix is 50 / 30 / 20 % in both periods;
* the true probability of default is a logistic function of the features (``true_pd``); the model's
  ``score`` is that probability seen through a small seeded distortion, so the model is calibrated on the
  reference period up to sampling noise (confidence-based estimation needs that);
* outcomes: ``default`` ~ Bernoulli(true_pd); a default is observed at a month drawn from 1..12 after the
  decision (earlier months likelier), a good loan is confirmed at the end of the 12-month window;
* the drifted channel (``online`` by default) changes in the current period only: its applicants are
  younger, more utilised and have more inquiries (covariate shift: the score stays calibrated, so the
  estimate can follow it). Diluted by the other 80 % of decisions, the portfolio as a whole moves much less.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

ID_COLUMN = "decision_id"
TIME_COLUMN = "decided_at"
OUTCOME_TIME_COLUMN = "observed_at"
TARGET = "default"
SCORE = "score"
FEATURES: tuple[str, ...] = ("income_k", "debt_ratio", "utilisation", "tenure_months", "age", "inquiries")
SEGMENTS: tuple[str, ...] = ("channel", "region", "product")
CHANNELS: tuple[str, ...] = ("branch", "partner", "online")
REGIONS: tuple[str, ...] = ("north", "east", "south", "west")
PRODUCTS: tuple[str, ...] = ("card", "personal", "auto")
WINDOW_MONTHS = 12
# The coefficients of the true log-odds; the intercept puts the portfolio default rate near 6 %.
_INTERCEPT = -1.9
_COEF = {
    "income_k": -0.025,
    "debt_ratio": 2.2,
    "utilisation": 1.6,
    "tenure_months": -0.012,
    "age": -0.015,
    "inquiries": 0.25,
}


@dataclass(frozen=True)
class Portfolio:
    """The reference period (labels known, for calibration and the confidence band), the current
    period's scoring log (decision id, time, segments, features, score; no label) and the current period's
    outcomes, a separate table keyed by decision id that arrives over the following 12 months."""

    reference: pd.DataFrame
    decisions: pd.DataFrame
    outcomes: pd.DataFrame

    def outcomes_known_at(self, as_of: datetime) -> pd.DataFrame:
        """The outcomes observed by ``as_of`` (what a bank's data warehouse would hand over that day)."""
        return self.outcomes[self.outcomes[OUTCOME_TIME_COLUMN] <= as_of].reset_index(drop=True)

    def labelled_current(self) -> pd.DataFrame:
        """The scoring log joined with every outcome: the realised truth once all loans have matured."""
        return self.decisions.merge(self.outcomes[[ID_COLUMN, TARGET]], on=ID_COLUMN, how="left")


def _period(
    rng: np.random.Generator, n: int, *, drifted: str | None, start: datetime, months: int, id_prefix: str
) -> pd.DataFrame:
    # The channel mix stays put: the drift is inside one channel, not a change of mix.
    channel = rng.choice(np.array(CHANNELS), size=n, p=[0.5, 0.3, 0.2])
    region = rng.choice(np.array(REGIONS), size=n, p=[0.3, 0.3, 0.25, 0.15])
    product = rng.choice(np.array(PRODUCTS), size=n, p=[0.5, 0.35, 0.15])
    income = rng.lognormal(mean=np.log(60.0), sigma=0.45, size=n)
    debt = np.clip(rng.beta(2.0, 5.0, size=n), 0.0, 1.0)
    util = np.clip(rng.beta(2.0, 3.0, size=n), 0.0, 1.0)
    tenure = rng.gamma(shape=2.0, scale=24.0, size=n)
    age = np.clip(rng.normal(42.0, 11.0, size=n), 18.0, 80.0)
    inquiries = rng.poisson(1.2, size=n).astype(float)
    if drifted is not None:
        hit = channel == drifted
        k = int(hit.sum())
        # Younger, more utilised, more inquiries: a covariate shift confined to one channel.
        age[hit] = np.clip(rng.normal(33.0, 8.0, size=k), 18.0, 80.0)
        util[hit] = np.clip(rng.beta(3.0, 2.5, size=k), 0.0, 1.0)
        inquiries[hit] = rng.poisson(2.0, size=k).astype(float)
    frame = pd.DataFrame(
        {
            "channel": channel,
            "region": region,
            "product": product,
            "income_k": np.round(income, 2),
            "debt_ratio": np.round(debt, 4),
            "utilisation": np.round(util, 4),
            "tenure_months": np.round(tenure, 1),
            "age": np.round(age).astype(int),
            "inquiries": inquiries.astype(int),
        }
    )
    logit = _INTERCEPT + sum(coef * frame[name].to_numpy(dtype=float) for name, coef in _COEF.items())
    true_pd = 1.0 / (1.0 + np.exp(-logit))
    # The model is the truth seen through a little noise on the log-odds: calibrated, not perfect.
    score = 1.0 / (1.0 + np.exp(-(logit + rng.normal(0.0, 0.15, size=n))))
    frame[SCORE] = np.round(score, 6)
    frame["true_pd"] = true_pd
    seconds = rng.uniform(0.0, months * 30 * 86400.0, size=n)
    decided = pd.Timestamp(start) + pd.to_timedelta(np.sort(seconds).round(), unit="s")
    frame.insert(0, TIME_COLUMN, decided)
    frame.insert(0, ID_COLUMN, [f"{id_prefix}{i:08d}" for i in range(n)])
    frame[TARGET] = (rng.random(n) < true_pd).astype(int)
    return frame


def generate_portfolio(
    n: int = 1_000_000,
    *,
    reference_rows: int | None = None,
    seed: int = 0,
    drifted_channel: str | None = "online",
    start: datetime = datetime(2025, 1, 1),
    months: int = 1,
) -> Portfolio:
    """``n`` current decisions made over ``months`` months from ``start``, with ``reference_rows``
    (default ``n // 5``, at least 5,000) labelled decisions from the year before as the reference.

    ``drifted_channel=None`` gives a current period drawn like the reference (no drift anywhere)."""
    if n < 1:
        raise ValueError("a portfolio needs at least one decision")
    if drifted_channel is not None and drifted_channel not in CHANNELS:
        raise ValueError(f"drifted_channel must be one of {', '.join(CHANNELS)}. Got {drifted_channel!r}")
    rng = np.random.default_rng(seed)
    ref_n = reference_rows if reference_rows is not None else max(n // 5, 5_000)
    reference = _period(rng, ref_n, drifted=None, start=start - timedelta(days=365), months=12, id_prefix="R")
    current = _period(rng, n, drifted=drifted_channel, start=start, months=months, id_prefix="D")
    # When each outcome becomes known: defaults after 1..12 months (earlier likelier), goods at the end.
    defaulted = current[TARGET].to_numpy() == 1
    month = np.where(
        defaulted,
        np.minimum(rng.geometric(0.18, size=n), WINDOW_MONTHS),
        WINDOW_MONTHS,
    )
    observed = current[TIME_COLUMN] + pd.to_timedelta(month * 30, unit="D")
    outcomes = pd.DataFrame(
        {ID_COLUMN: current[ID_COLUMN], OUTCOME_TIME_COLUMN: observed, TARGET: current[TARGET]}
    )
    decisions = current.drop(columns=[TARGET, "true_pd"])
    return Portfolio(reference=reference.drop(columns=["true_pd"]), decisions=decisions, outcomes=outcomes)
