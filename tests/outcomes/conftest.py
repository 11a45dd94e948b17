"""Fixtures for late outcomes: a governed registry (tests/governance) with a deployed version of the generated
credit portfolio's model (modelreg.demo.portfolio), whose model card names the decision id and time columns
of its scoring log and the columns of its outcome files."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from modelreg.demo.portfolio import FEATURES, generate_portfolio
from tests.governance.conftest import CARD, MLFLOW_INFO, governed, sign_attestations
from tests.operations.conftest import clock_at, deploy_after_validation

__all__ = ["clock_at", "governed"]

NAME = "pd_portfolio"
START = datetime(2025, 1, 1)
OUTCOME_CARD = {
    **{k: v for k, v in CARD.items() if k not in ("monotone_constraints", "stress_scenarios")},
    "decision_id_column": "decision_id",
    "decision_time_column": "decided_at",
    "outcome_column": "default",
    "outcome_time_column": "observed_at",
}


@pytest.fixture(scope="session")
def portfolio():
    """6,000 decisions over three months from 2025-01-01, outcomes maturing over the following 12 months."""
    return generate_portfolio(6_000, seed=7, months=3, reference_rows=5_000)


def deploy_portfolio_version(client, portfolio, version: str = "1") -> None:
    """Registered, validated on the reference period's labelled rows (scores from the log, no model object:
    the model-dependent controls error and are waived), approved and deployed."""
    dev = client.as_user("dev")
    dev.registry.register(
        NAME,
        version,
        owner="dev",
        risk_tier="high",
        purpose="PD scoring for consumer loans (generated portfolio)",
        mlflow_info=MLFLOW_INFO,
        model_card=OUTCOME_CARD,
    )
    ref = portfolio.reference
    dev.attach_data(NAME, version, role="training", data=ref, name_hint="portfolio-reference")
    dev.attach_data(NAME, version, role="holdout", data=ref, name_hint="portfolio-reference")
    sign_attestations(client, NAME, version, "submit", "high")
    dev.submit(NAME, version)
    ev = client.as_user("val").validate(
        NAME, version, data=ref, reference=ref, target="default", score="score", features=list(FEATURES)
    )
    deploy_after_validation(client, NAME, version, ev, until=datetime.now().astimezone() + timedelta(days=30))


@pytest.fixture
def deployed(governed, portfolio):
    deploy_portfolio_version(governed, portfolio)
    return governed
