"""Champion/challenger over ``MODELREG_URL`` when it succeeds (issue 10, item 4): the service loads both
versions' MLflow models (logged in the safe skops format to a real MLflow store), scores them on the uploaded
data, and the CLI prints what the local CLI prints; the numbers equal sklearn's AUCs computed by hand; the
comparison is stored on both versions, audited, and no version moves. SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from sklearn.metrics import roc_auc_score

from tests.governance.conftest import MLFLOW_INFO, german
from tests.operations.conftest import (
    deploy_after_validation,
    governed,
    now_utc,
    prepare_for_validation,
    validate,
)
from tests.service.conftest import AUDIENCE, ISSUER, Server, audit_size, cli_runner

__all__ = ["german", "governed"]
NAME = "credit_scoring"


def _log(settings, model, split, run_name: str) -> str:
    """The model logged and registered in MLflow the way the demo does it (skops, signature, requirements);
    its runs:/ URI."""
    from modelreg.demo import credit
    from tests.integration.mlflow_fixtures import fluent_mlflow

    with fluent_mlflow(settings.mlflow_tracking_uri, settings.mlflow_registry_uri):
        experiment = credit.ensure_experiment(settings)
        logged = credit.log_model_run(
            model,
            split.train,
            split.holdout,
            run_name=run_name,
            registered_model_name=NAME,
            experiment_id=experiment,
        )
    return logged.model_uri


@pytest.fixture
def served(governed, german, issuer, tmp_path):
    """credit_scoring 1 (the clean model) deployed, 2 (the model trained on biased labels) in validate, both
    with MLflow models the service can load; the service over that registry."""
    from modelreg.service.app import create_app
    from modelreg.service.auth import AuthConfig, OidcConfig

    s = governed.settings
    split = german["split"]
    for version, key in (("1", "clean"), ("2", "biased")):
        uri = _log(s, german[key], split, f"credit-{key}")
        info = {
            **MLFLOW_INFO,
            "run_id": uri.split("/")[1] if uri.startswith("runs:/") else "run",
            "model_uri": uri,
        }
        prepare_for_validation(governed, german, NAME, version, mlflow_info=info)
        if version == "1":
            ev = validate(governed, german, NAME, "1")
            deploy_after_validation(governed, NAME, "1", ev, until=now_utc() + timedelta(days=30))
    data = tmp_path / "monitoring.csv"
    split.holdout.to_csv(data, index=False)
    config = AuthConfig(
        oidc=OidcConfig(issuer=ISSUER, audience=AUDIENCE, jwks_url=issuer.jwks_url), failure_limit=1000
    )
    with Server(create_app(s, config)) as srv:
        srv.settings = s
        srv.registry = governed
        srv.data = data
        yield srv


def test_challenger_comparison_over_http_equals_local_and_sklearn(
    served, german, env_for, db_url, monkeypatch, capsys
):
    ops = cli_runner(served.url, env_for(db_url), monkeypatch, capsys)

    def run(*args: str, over_http: bool) -> tuple[int, str, str]:
        return ops("ops", *args, over_http=over_http)

    client = served.registry
    history = {v: len(client.registry.history(NAME, v)) for v in ("1", "2")}
    args = ["challenger", "run", "--model", NAME, "--champion", "1", "--challenger", "2"]
    args += ["--data", str(served.data), "--target", "default", "--segment", "channel_code"]
    args += ["--min-segment-size", "50"]
    chain = audit_size(served.settings)
    local = run(*args, over_http=False)
    assert local[0] == 0, local
    remote = run(*args, over_http=True)
    assert remote[0] == 0, remote
    # Two runs, two pairs of evaluations: only their ids differ.
    ids = re.compile(r"evaluations #\d+ and #\d+")
    assert ids.sub("evaluations #A and #B", remote[1]) == ids.sub("evaluations #A and #B", local[1])
    assert audit_size(served.settings) == chain + 4  # an evaluation.recorded on each version, per run

    # --json over HTTP: the numbers are sklearn's AUCs of the two models on the same rows
    code, out, err = run(*args, "--json", over_http=True)
    assert code == 0, err
    payload = json.loads(out)
    hold = german["split"].holdout
    y = hold["default"].to_numpy()
    champ = german["clean"].predict_proba(hold[german["clean"].feature_names_in_])[:, 1]
    chall = german["biased"].predict_proba(hold[german["biased"].feature_names_in_])[:, 1]
    rows = {r["segment"]: r for r in payload["comparison"]}
    assert rows[None]["auc_champion"] == pytest.approx(roc_auc_score(y, champ), abs=1e-9)
    assert rows[None]["auc_challenger"] == pytest.approx(roc_auc_score(y, chall), abs=1e-9)
    assert rows[None]["auc_difference"] == pytest.approx(
        roc_auc_score(y, chall) - roc_auc_score(y, champ), abs=1e-9
    )
    assert rows[None]["ci_low"] < rows[None]["auc_difference"] < rows[None]["ci_high"]
    assert any(k and k.startswith("channel_code=") for k in rows)
    # stored on both versions (the models were loaded from MLflow by the service: no model passed in)
    assert (payload["champion"]["version"], payload["challenger"]["version"]) == ("1", "2")
    from modelreg.governance.service import latest

    for role in ("champion", "challenger"):
        stored = latest(client.registry, NAME, payload[role]["version"], "challenger")
        assert stored and stored[-1].id == payload[role]["id"], role
    # no version moved
    assert client.registry.show(NAME, "1").stage.value == "deploy"
    assert client.registry.show(NAME, "2").stage.value == "validate"
    assert {v: len(client.registry.history(NAME, v)) for v in ("1", "2")} == history
