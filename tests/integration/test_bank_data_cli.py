"""Data as a Chinese bank exports it, through the CLI against a real MLflow model (issue 19): a GBK hold-out with
Chinese column names, a target labelled 违约/正常, an Excel UTF-8 file with a byte-order mark, dirty numeric
cells, a half-missing hold-out and 1e300 values. Every bad input is one line on stderr with exit 2 and leaves
the registry exactly as it was (every table's row count); every data problem that is not an input error is
a finding with its clauses, and what the monitors excluded is in --json and `findings`. SQLite and
PostgreSQL."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from tests.integration.mlflow_fixtures import log_and_register_model, training_data


@pytest.fixture
def cli(env_for, db_url, monkeypatch, capsys):
    env = env_for(db_url)
    for key, value in env.items():
        if key.startswith(("MODELREG_", "MLFLOW_")):
            monkeypatch.setenv(key, value)
    from modelreg.cli.main import main

    def run(*args: str, expect: int | tuple[int, ...] = 0) -> tuple[str, str]:
        code = main(list(args))
        out = capsys.readouterr()
        assert code in (expect if isinstance(expect, tuple) else (expect,)), (
            f"modelreg {' '.join(args)} exited {code}, expected {expect}\nstdout: {out.out[-2000:]}\nstderr: {out.err[-2000:]}"
        )
        assert "Traceback" not in out.err
        return out.out, out.err

    run.env = env  # type: ignore[attr-defined]
    run.db_url = db_url  # type: ignore[attr-defined]
    return run


def _counts(db_url: str) -> dict[str, int]:
    from sqlalchemy import create_engine, inspect, text
    from sqlalchemy.pool import NullPool

    engine = create_engine(db_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            names = sorted(inspect(conn).get_table_names())
            return {n: conn.execute(text(f'SELECT COUNT(*) FROM "{n}"')).scalar_one() for n in names}
    finally:
        engine.dispose()


def _frames(estimator):
    X, y = training_data(seed=0, n=600)
    rng = np.random.default_rng(5)
    frame = X.assign(
        违约=np.where(y == 1, "违约", "正常"),
        性别=np.where(rng.random(len(X)) < 0.5, "女", "男"),
        score=estimator.predict_proba(X[["income", "debt_ratio", "age"]])[:, 1],
    )
    return frame.iloc[:360].reset_index(drop=True), frame.iloc[360:].reset_index(drop=True)


def _refused(cli, *args: str, contains: tuple[str, ...]) -> str:
    """Exit 2, one line on stderr naming the problem, and no row added anywhere."""
    before = _counts(cli.db_url)
    _, err = cli(*args, expect=2)
    after = _counts(cli.db_url)
    assert after == before, "an input error changed the registry"
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    line = lines[0]
    if "--json" in args:  # under --json the one line is a JSON error object (issue 19 item 7)
        import json

        error = json.loads(line)["error"]
        assert error["exit"] == 2 and error["code"] == "bad_input", error
        line = "error: " + error["message"]
    assert line.startswith("error: "), err
    for word in contains:
        assert word in line, (word, line)
    return line


def test_bank_exports_through_validate(cli, tmp_path):
    from modelreg.integrations.mlflow import MlflowGateway

    env = cli.env
    gw = MlflowGateway(
        env["MLFLOW_TRACKING_URI"],
        env["MLFLOW_REGISTRY_URI"],
        artifact_root=Path(env["MLFLOW_ARTIFACT_ROOT"]),
    )
    logged = log_and_register_model(
        env["MLFLOW_TRACKING_URI"], experiment_id=gw.ensure_experiment("dev"), name="credit_scoring"
    )
    train, hold = _frames(logged.estimator)
    train_csv, hold_csv = tmp_path / "train_excel.csv", tmp_path / "holdout_gbk.csv"
    train.to_csv(train_csv, index=False, encoding="utf-8-sig")  # what Excel writes: a UTF-8 BOM
    hold.to_csv(hold_csv, index=False, encoding="gbk")  # what a core system exports
    assert train_csv.read_bytes()[:3] == b"\xef\xbb\xbf" and "性别".encode("gbk") in hold_csv.read_bytes()

    cli("init")
    cli("--as", "boss", "user", "add", "boss", "--role", "admin")
    for user, role in [("dev", "developer"), ("val", "validator"), ("app1", "approver")]:
        cli("--as", "boss", "user", "add", user, "--role", role)
        key = tmp_path / "keys" / f"{user}.key"
        cli("keys", "generate", "-o", str(key))
        cli("--as", user, "keys", "register", f"{key}.pub")
    v = logged.version
    cli(
        "--as",
        "dev",
        "register",
        "credit_scoring",
        v,
        "--owner",
        "dev",
        "--risk-tier",
        "high",
        "--purpose",
        "PD",
    )
    card = ("intended_use=application scoring", "excluded_uses=pricing", "limitations=synthetic data")
    cli("--as", "dev", "card", "credit_scoring", v, *[a for c in card for a in ("--set", c)])

    # attach-data: the BOM file is read without flags; the GBK file needs --encoding and says so
    cli("--as", "dev", "attach-data", "credit_scoring", v, "--role", "training", "--data", str(train_csv))
    _refused(
        cli,
        *("--as", "dev", "attach-data", "credit_scoring", v, "--role", "holdout", "--data", str(hold_csv)),
        contains=("not valid utf-8", "--encoding gbk or gb18030", "utf-8, utf-8-sig, gbk, gb18030"),
    )
    _refused(
        cli,
        *("--as", "dev", "attach-data", "credit_scoring", v, "--role", "holdout", "--data", str(hold_csv)),
        *("--encoding", "big5"),
        contains=("--encoding must be one of utf-8, utf-8-sig, gbk, gb18030. Got 'big5' instead.",),
    )
    out, _ = cli(
        *("--as", "dev", "attach-data", "credit_scoring", v, "--role", "holdout", "--data", str(hold_csv)),
        *("--encoding", "gbk", "--json"),
    )
    assert json.loads(out)["rows"] == len(hold)

    from modelreg import settings
    from modelreg.governance.service import load_policy
    from modelreg.registry import Registry

    pack = load_policy(Registry(settings.load()))
    who = {"developer": "dev", "validator": "val", "approver": "app1"}
    for c in pack.controls_for("submit", "high", kind="attestation"):
        role = who[c.attestation.role]
        cli(
            "--as",
            role,
            "attest",
            "credit_scoring",
            v,
            "--control",
            c.id,
            "--key",
            str(tmp_path / "keys" / f"{role}.key"),
        )
    cli("--as", "dev", "submit", "credit_scoring", v)

    base = (
        "--as",
        "val",
        "validate",
        "credit_scoring",
        v,
        "--reference",
        str(train_csv),
        "--sensitive",
        "性别",
    )
    # 1. GBK without --encoding: one line naming the options
    _refused(
        cli,
        *base,
        *("--data", str(hold_csv), "--target", "违约", "--json"),
        contains=("--data", "holdout_gbk.csv is not valid utf-8", "byte 0x", "gbk", "gb18030"),
    )
    # 2. a string-labelled target without --positive-label is refused, not read as all-negative
    _refused(
        cli,
        *base,
        *("--data", str(hold_csv), "--encoding", "gbk", "--target", "违约"),
        contains=("--target 违约 must be binary", "'违约'", "'正常'", "--positive-label"),
    )
    _refused(
        cli,
        *base,
        *("--data", str(hold_csv), "--encoding", "gbk", "--target", "违约", "--positive-label", "bad"),
        contains=("--positive-label 'bad' is not a label of --target 违约",),
    )
    # 3. ten 'abc' cells in a numeric feature: the MLflow signature says double, so it is bad input (also with
    #    --score, where the model is not run and nothing else would notice)
    dirty = hold.astype({"income": object})
    dirty.loc[dirty.index[:10], "income"] = "abc"
    dirty_csv = tmp_path / "dirty.csv"
    dirty.to_csv(dirty_csv, index=False, encoding="gb18030")
    _refused(
        cli,
        *base,
        *("--data", str(dirty_csv), "--encoding", "gb18030", "--target", "违约", "--positive-label", "违约"),
        *("--score", "score"),
        contains=(
            "does not fit the feature schema (the MLflow model signature)",
            "income has 10 non-numeric",
            "'abc'",
        ),
    )

    # 4. the same GBK hold-out, declared: validated, AUC equal to sklearn's with 违约 as the positive class
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out, err = cli(
            *base,
            *(
                "--data",
                str(hold_csv),
                "--encoding",
                "gbk",
                "--target",
                "违约",
                "--positive-label",
                "违约",
                "--json",
            ),
            expect=(0, 1),
        )
    assert not [w for w in caught if "Glyph" in str(w.message)] and "Glyph" not in err
    report = json.loads(out)
    assert report["data"]["spec"]["positive_label"] == "违约"
    assert any("违约: '违约' is the positive class" in n for n in report["data"]["notes"])
    assert "feature schema from the MLflow model signature" in report["data"]["notes"]
    from sklearn.metrics import roc_auc_score

    auc = next(f for f in report["findings"] if f["control_id"] == "CHK-PERF-01")
    expected = roc_auc_score(
        hold["违约"] == "违约", logged.estimator.predict_proba(hold[["income", "debt_ratio", "age"]])[:, 1]
    )
    assert auc["value"] == pytest.approx(expected, abs=1e-12)
    completeness = next(f for f in report["findings"] if f["control_id"] == "CHK-DQ-01.holdout_completeness")
    assert completeness["status"] == "pass" and completeness["value"] == 0.0

    # 5. a half-missing hold-out with 1e300 incomes: findings (not numbers computed on the rest silently)
    broken = hold.copy()
    broken.loc[broken.index[::2], "debt_ratio"] = np.nan
    broken.loc[broken.index[1:4], "income"] = 1e300
    broken_csv = tmp_path / "broken.csv"
    broken.to_csv(broken_csv, index=False, encoding="gbk")
    before = _counts(cli.db_url)
    out, _ = cli(
        *base,
        *("--data", str(broken_csv), "--encoding", "gbk", "--target", "违约", "--positive-label", "违约"),
        *("--score", "score", "--model", f"models:/credit_scoring/{v}", "--json"),
        expect=1,
    )
    assert _counts(cli.db_url)["evaluations"] == before["evaluations"] + 1
    report = json.loads(out)
    by_id = {f["control_id"]: f for f in report["findings"]}
    missing = by_id["CHK-DQ-01.holdout_completeness"]
    assert missing["status"] == "fail" and missing["feature"] == "debt_ratio"
    assert missing["value"] == pytest.approx(broken["debt_ratio"].isna().mean())
    assert set(missing["clause_ids"]) == {"NFRA-2025-19.2", "PBOC7-2024-5.1", "CBIRC-2022-16.1"}
    plausible = by_id["CHK-DQ-01.plausibility"]
    assert plausible["status"] == "fail" and plausible["feature"] == "income"
    assert plausible["value"] == pytest.approx(3 / len(broken))
    notes = report["data"]["notes"]
    nan_rows = int(broken[["income", "debt_ratio", "age"]].isna().any(axis=1).sum())
    assert f"explainability: current: {nan_rows} row(s) with NaN/inf features excluded" in notes
    assert any(n.startswith("data_quality: income: 3 implausible value(s) (e.g. 1e+300)") for n in notes)

    # the stored evaluation shows the same notes to whoever reads the findings later
    findings = json.loads(cli("findings", "credit_scoring", v, "--purpose", "validation", "--json")[0])
    assert (
        f"explainability: current: {nan_rows} row(s) with NaN/inf features excluded"
        in findings["evaluations"][0]["data"]["notes"]
    )
    text, _ = cli("findings", "credit_scoring", v, "--purpose", "validation")
    assert "notes / 说明:" in text and f"{nan_rows} row(s) with NaN/inf features excluded" in text
