"""Fixtures for the gates: a registry with the policy pack plugged in, users with registered Ed25519 keys,
German credit data and two LightGBM models (clean, and one trained on biased historical decisions)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import CAST
from tests.governance.german import FEATURES, german_frame, split

MONOTONE = {"duration": 1}
SCENARIOS = [
    {
        "name": "credit amount +20%",
        "name_zh": "贷款金额上升20%",
        "shocks": [{"feature": "credit_amount", "op": "mul", "value": 1.2}],
    }
]
CARD = {
    "intended_use": "probability of default for consumer instalment loans (application scoring)",
    "excluded_uses": "collections, pricing, employment decisions",
    "limitations": "trained on 1,000 historical applications; thin data for applicants under 21",
    "monotone_constraints": MONOTONE,
    "stress_scenarios": SCENARIOS,
}
MLFLOW_INFO = {
    "run_id": "run-0001",
    "pip_requirements": ["lightgbm==4.7.0", "scikit-learn==1.9.1"],
    "artifact_digest": "a" * 64,
}


@pytest.fixture(scope="session")
def german():
    df = german_frame()
    s = split(df)
    import lightgbm as lgb

    def fit(cols, y):
        mono = [MONOTONE.get(c, 0) for c in cols]
        return lgb.LGBMClassifier(
            n_estimators=60,
            learning_rate=0.05,
            num_leaves=8,
            monotone_constraints=mono,
            verbose=-1,
            random_state=0,
        ).fit(s.train[cols], y)

    rng = np.random.default_rng(11)
    biased_labels = np.where(
        (s.train["channel_code"] == 1) & (rng.random(len(s.train)) < 0.6), 1, s.train["default"]
    )
    return {
        "split": s,
        "clean": fit(FEATURES, s.train["default"]),
        "biased": fit([*FEATURES, "channel_code"], biased_labels),
    }


@pytest.fixture
def governed(db_url, settings_for):
    """A Client with the full plug-ins (policy gates), the usual cast, and a registered key per user."""
    from modelreg.client import Client, open_registry

    reg = open_registry(settings_for(db_url), actor="admin")
    reg.init()
    client = Client(reg)
    for name, roles in CAST.items():
        reg.add_user(name, roles)
    reg.add_user("dv", ["developer", "validator", "approver"])
    for name in [*CAST, "dv"]:
        client.generate_key(name)
    yield client
    reg.engine.dispose()


def sign_attestations(
    client, name: str, version: str, gate: str, tier: str = "high", who: dict | None = None
) -> int:
    from modelreg.governance.service import load_policy

    who = who or {"developer": "dev", "validator": "val", "approver": "app1"}
    pack = load_policy(client.registry)
    n = 0
    for c in pack.controls_for(gate, tier):
        if c.attestation is not None:
            client.as_user(who[c.attestation.role]).attest(
                name, version, control=c.id, comment="checked in test"
            )
            n += 1
    return n


def prepare_for_validation(
    client, german, name="credit_scoring", version="1", *, owner="dev", tier="high", mlflow_info=None
):
    """register (with the MLflow facts the gates ask for, or ``mlflow_info``), card, data, submit
    attestations, submit."""
    dev = client.as_user(owner)
    dev.registry.register(
        name,
        version,
        owner=owner,
        risk_tier=tier,
        purpose="PD scoring for consumer loans",
        mlflow_info=mlflow_info or MLFLOW_INFO,
        model_card=CARD,
    )
    s = german["split"]
    dev.attach_data(name, version, role="training", data=s.train, name_hint="german-train")
    dev.attach_data(name, version, role="holdout", data=s.holdout, name_hint="german-holdout")
    sign_attestations(
        client,
        name,
        version,
        "submit",
        tier,
        who={"developer": owner, "validator": "val", "approver": "app1"},
    )
    dev.submit(name, version)
