"""Late outcomes on a real registry (SQLite and PostgreSQL): a monitoring run records the scoring log's
decisions; outcome batches arriving over 12 months raise each vintage's coverage; bad joins are explicit and
write nothing; the realised AUC per vintage is sklearn's on the same joined rows; the tables are append-only."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from sqlalchemy import text

from modelreg.demo.portfolio import OUTCOME_TIME_COLUMN, TARGET
from modelreg.errors import BadInput
from tests.outcomes.conftest import NAME, deployed, governed, portfolio

__all__ = ["deployed", "governed", "portfolio"]


def counts(client) -> dict[str, int]:
    with client.registry.engine.connect() as conn:
        return {
            t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
            for t in ("decisions", "outcomes", "outcome_batches", "audit_events")
        }


def months_after(ts, months: int) -> pd.Timestamp:
    return pd.Timestamp(ts) + pd.DateOffset(months=months)


@pytest.fixture
def monitored(deployed, portfolio):
    """The deployed version's first monitoring run on the three-month scoring log (no outcomes yet)."""
    ev = deployed.as_user("ops").monitor(NAME, "1", data=portfolio.decisions, score="score")
    return deployed, ev


@pytest.fixture
def cli(monitored, env_for, db_url, monkeypatch, capsys):
    for key, value in env_for(db_url).items():
        if key.startswith(("MODELREG_", "MLFLOW_")):
            monkeypatch.setenv(key, value)
    from modelreg.cli.main import main

    def run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        out = capsys.readouterr()
        assert "Traceback" not in out.err
        return code, out.out, out.err

    return run


def test_monitoring_records_the_logs_decisions_once(monitored, portfolio):
    client, ev = monitored
    n = len(portfolio.decisions)
    assert ev.data["decisions"]["rows"] == n and ev.data["decisions"]["time_column"] == "decided_at"
    assert "realised" not in ev.data  # nothing matured yet
    # the id and time columns are bookkeeping, never features of the drift checks
    assert {f["name"] for f in ev.data["spec"]["features"]}.isdisjoint({"decision_id", "decided_at"})
    assert counts(client)["decisions"] == n
    with client.registry.engine.connect() as conn:
        stored = conn.execute(
            text("SELECT decision_id, score, evaluation_id FROM decisions ORDER BY decision_id LIMIT 3")
        ).all()
    first = portfolio.decisions.sort_values("decision_id").head(3)
    assert [r[0] for r in stored] == first["decision_id"].tolist()
    assert [r[1] for r in stored] == pytest.approx(first["score"].tolist())
    assert {r[2] for r in stored} == {ev.id}
    # the same log again: nothing recorded twice, the event says so
    again = client.as_user("ops").monitor(NAME, "1", data=portfolio.decisions, score="score")
    assert counts(client)["decisions"] == n
    event = [e for e in client.audit_log(NAME, "1") if e.event == "evaluation.recorded"][-1]
    assert event.payload["evaluation_id"] == again.id
    assert event.payload["decisions"] == {"rows": n, "recorded": 0, "already_recorded": n}


def test_batches_over_twelve_months_raise_coverage_per_vintage(monitored, portfolio):
    client, first_run = monitored
    ops = client.as_user("ops")
    end = portfolio.decisions["decided_at"].max()
    cut_offs = [months_after(end, m) for m in (2, 5, 8, 13)]
    previous = pd.Timestamp.min
    coverage: list[dict[str, float]] = []
    total = 0
    for cut in cut_offs:
        known = portfolio.outcomes
        batch = known[(known[OUTCOME_TIME_COLUMN] > previous) & (known[OUTCOME_TIME_COLUMN] <= cut)]
        done = ops.add_outcomes(NAME, "1", batch)
        total += len(batch)
        assert (done["rows"], done["matched"], done["refused"]) == (len(batch), len(batch), 0)
        assert done["totals"]["outcomes"] == total == counts(client)["outcomes"]
        report = ops.outcomes_report(NAME, "1")
        coverage.append({v["vintage"]: v["coverage"] for v in report["vintages"]})
        previous = cut
    assert list(coverage[0]) == ["2025-01", "2025-02", "2025-03"]
    for month in coverage[0]:
        series = [c[month] for c in coverage]
        assert all(a < b for a, b in itertools.pairwise(series)), (month, series)
        assert series[-1] == 1.0
    assert total == len(portfolio.outcomes)

    # realised per vintage = sklearn on the same joined rows
    report = ops.outcomes_report(NAME, "1")
    joined = portfolio.labelled_current()
    months = joined["decided_at"].dt.strftime("%Y-%m")
    for v in report["vintages"]:
        part = joined[months == v["vintage"]]
        assert v["decisions"] == v["outcomes_known"] == len(part)
        assert v["default_rate"] == pytest.approx(part[TARGET].mean())
        assert v["status"] == "ok"
        assert v["realised_auc"] == pytest.approx(roc_auc_score(part[TARGET], part["score"]), abs=1e-12)
    assert report["overall"]["realised_auc"] == pytest.approx(
        roc_auc_score(joined[TARGET], joined["score"]), abs=1e-12
    )
    assert [b["counts"]["matched"] for b in report["batches"]] == [
        int(
            (
                (portfolio.outcomes[OUTCOME_TIME_COLUMN] > lo)
                & (portfolio.outcomes[OUTCOME_TIME_COLUMN] <= hi)
            ).sum()
        )
        for lo, hi in zip([pd.Timestamp.min, *cut_offs[:-1]], cut_offs, strict=True)
    ]
    # the first run (no outcomes yet) recorded the label-free estimate (monitor estimated_performance, branch
    # latelabels); the report puts the realised AUC on the same decisions against it and its band
    from modelreg.governance import records
    from monitors.vintage import estimate_of

    with client.registry.reading() as rd:
        stored = records.monitor_results(rd.session, first_run.id)["estimated_performance"]
    estimate = estimate_of(stored)
    assert estimate is not None, stored
    (row,) = report["comparison"]
    assert row["evaluation_id"] == first_run.id and row["status"] == "ok"
    realised = roc_auc_score(joined[TARGET], joined["score"])
    assert row["realised_auc"] == pytest.approx(realised, abs=1e-12)
    assert (row["estimated_auc"], row["estimated_auc_low"], row["estimated_auc_high"]) == (
        estimate["estimated_auc"],
        estimate["low"],
        estimate["high"],
    )
    assert row["inside_band"] is (estimate["low"] <= realised <= estimate["high"])
    assert row["coverage"] == 1.0 and row["partial"] is False
    print(f"estimate {estimate}, realised {realised:.4f}, inside {row['inside_band']}")

    # a monitoring run on the log without a target joins the outcomes into its evaluation
    ev = ops.monitor(NAME, "1", data=portfolio.decisions, score="score")
    realised = ev.data["realised"]
    assert realised["vintages"] == report["vintages"] and realised["overall"] == report["overall"]
    assert client.audit_verify().ok


def test_partial_maturity_is_insufficient_data_not_a_number(monitored, portfolio):
    client, _ = monitored
    ops = client.as_user("ops")
    early = portfolio.outcomes_known_at(months_after(portfolio.decisions["decided_at"].max(), 3))
    ops.add_outcomes(NAME, "1", early)
    report = ops.outcomes_report(NAME, "1")
    for v in report["vintages"]:  # only early defaults are known: no non-events
        assert v["non_events"] == 0 and v["realised_auc"] is None and v["status"] == "insufficient_data"
        assert "needs at least 30 of each" in v["reason"]
        assert 0 < v["coverage"] < 0.2 and v["default_rate"] == 1.0


def test_bad_joins_are_explicit_and_write_nothing(cli, portfolio, tmp_path, db_url):
    name = NAME
    outcomes = portfolio.outcomes.copy()
    decisions = portfolio.decisions.set_index("decision_id")

    def write(frame: pd.DataFrame, file: str) -> str:
        path = tmp_path / file
        frame.to_csv(path, index=False) if file.endswith(".csv") else frame.to_parquet(path, index=False)
        return str(path)

    def state() -> dict[str, int]:
        from sqlalchemy import create_engine

        engine = create_engine(db_url.replace("postgresql://", "postgresql+psycopg://", 1))
        try:
            with engine.connect() as conn:
                return {
                    t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
                    for t in ("decisions", "outcomes", "outcome_batches", "audit_events")
                }
        finally:
            engine.dispose()

    before = state()

    # duplicate ids in the file: exit 2, the count and a sample id, nothing recorded
    dup = pd.concat([outcomes.head(50), outcomes.iloc[[3, 7, 7]]])
    code, _out, err = cli("--as", "ops", "outcomes", "add", name, "1", write(dup, "dup.csv"))
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    sample = outcomes["decision_id"].iloc[3]
    assert "has 2 decision id(s) that occur more than once" in err and repr(sample) in err
    assert state() == before

    # unknown ids and an outcome observed before its decision: refused, counted, the rest recorded (exit 1)
    good = outcomes.head(100).copy()
    unknown = pd.DataFrame(
        {
            "decision_id": ["NOPE-1", "NOPE-2"],
            OUTCOME_TIME_COLUMN: [good[OUTCOME_TIME_COLUMN].iloc[0]] * 2,
            TARGET: [0, 1],
        }
    )
    early = outcomes.iloc[[200]].copy()
    early[OUTCOME_TIME_COLUMN] = decisions.loc[early["decision_id"].iloc[0], "decided_at"] - pd.Timedelta(
        days=1
    )
    mixed = write(pd.concat([good, unknown, early]), "mixed.parquet")

    # --strict refuses the whole file first
    code, _out, err = cli("--as", "ops", "outcomes", "add", name, "1", mixed, "--strict")
    assert code == 2 and "--strict: 2 unknown decision id(s)" in err and "1 outcome(s) observed before" in err
    assert state() == before

    code, out, err = cli("--as", "ops", "outcomes", "add", "--json", name, "1", mixed)
    assert code == 1, err
    done = json.loads(out)
    assert (done["rows"], done["matched"], done["unknown"], done["before_decision"], done["refused"]) == (
        103,
        100,
        2,
        1,
        3,
    )
    assert done["unknown_sample"] == ["NOPE-1", "NOPE-2"]
    assert done["before_decision_sample"] == [early["decision_id"].iloc[0]]
    after = state()
    assert after["outcomes"] == before["outcomes"] + 100
    assert after["outcome_batches"] == before["outcome_batches"] + 1
    assert after["audit_events"] == before["audit_events"] + 1
    code, out, _ = cli("audit", "log", "--json")
    events = json.loads(out)
    events = events if isinstance(events, list) else events["events"]
    added = [e for e in events if e["event"] == "outcomes.added"]
    assert len(added) == 1 and added[0]["actor"] == "ops"
    payload = added[0]["payload"]
    assert {k: payload[k] for k in ("rows", "matched", "unknown", "before_decision", "duplicates")} == {
        "rows": 103,
        "matched": 100,
        "unknown": 2,
        "before_decision": 1,
        "duplicates": 0,
    }
    assert len(payload["digest"]) == 64 and payload["source"] == "mixed.parquet"
    # the same file again, human output: nothing new, the refused rows named again (exit 1)
    code, out, err = cli("--as", "ops", "outcomes", "add", name, "1", mixed)
    assert code == 1, err
    assert "recorded 0, already recorded 100, refused 3 (unknown id 2, observed before the decision 1)" in out
    assert "unknown ids, e.g. NOPE-1, NOPE-2" in out and early["decision_id"].iloc[0] in out

    # the same good rows again: already recorded, nothing new (exit 0)
    code, out, err = cli("--as", "ops", "outcomes", "add", "--json", name, "1", write(good, "again.csv"))
    assert code == 0, err
    assert json.loads(out)["already_recorded"] == 100 and json.loads(out)["matched"] == 0
    settled = state()

    # an outcome contradicting a recorded one: exit 2, nothing recorded (not even the new rows beside it)
    flipped = pd.concat([good.head(5), outcomes.iloc[300:310]]).copy()
    flipped.iloc[2, flipped.columns.get_loc(TARGET)] = 1 - flipped.iloc[2][TARGET]
    code, _out, err = cli("--as", "ops", "outcomes", "add", name, "1", write(flipped, "flip.csv"))
    assert code == 2 and "1 outcome(s) contradict outcomes already recorded" in err, err
    assert repr(flipped["decision_id"].iloc[2]) in err and len(err.strip().splitlines()) == 1
    assert state() == settled

    # labels other than 0/1 need --positive-label; a missing column, an unknown model: exit 2
    labelled = outcomes.iloc[400:420].copy()
    labelled[TARGET] = np.where(labelled[TARGET] == 1, "bad", "good")
    path = write(labelled, "labels.csv")
    code, _out, err = cli("--as", "ops", "outcomes", "add", name, "1", path)
    assert code == 2 and "--outcome-column default must be binary with 1 = the positive class" in err, err
    code, _out, err = cli("--as", "ops", "outcomes", "add", name, "1", path, "--time-column", "when")
    assert code == 2 and "has no column 'when'" in err
    code, _out, err = cli("--as", "ops", "outcomes", "add", "nope", "1", path)
    assert code == 2 and "model 'nope' is not registered" in err
    assert state() == settled
    code, out, err = cli(
        "--as", "ops", "outcomes", "add", "--json", name, "1", path, "--positive-label", "bad"
    )
    assert code == 0, err
    assert json.loads(out)["matched"] == 20
    with_label = state()
    from sqlalchemy import bindparam, create_engine

    engine = create_engine(db_url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect() as conn:
        stored = dict(
            conn.execute(
                text("SELECT decision_id, outcome FROM outcomes WHERE decision_id IN :ids").bindparams(
                    bindparam("ids", expanding=True)
                ),
                {"ids": labelled["decision_id"].tolist()},
            ).all()
        )
    engine.dispose()
    assert stored == dict(zip(labelled["decision_id"], (labelled[TARGET] == "bad").astype(int), strict=True))

    # who may: an operator or a validator, never the developer
    code, _out, err = cli("--as", "dev", "outcomes", "add", name, "1", path)
    assert code == 1 and "outcomes.add needs the role operator or validator" in err
    assert state() == with_label

    # the report command, human and --json
    code, out, err = cli("outcomes", "report", name, "1")
    assert code == 0, err
    assert "realised performance per vintage" in out and "2025-01" in out and "insufficient data" in out
    code, out, _ = cli("outcomes", "report", name, "1", "--json")
    assert sum(v["outcomes_known"] for v in json.loads(out)["vintages"]) == with_label["outcomes"]


def test_decisions_and_outcomes_are_append_only(monitored, portfolio):
    client, _ = monitored
    client.as_user("ops").add_outcomes(NAME, "1", portfolio.outcomes.head(10))
    engine = client.registry.engine
    for sql in (
        "UPDATE outcomes SET outcome = 1 - outcome",
        "DELETE FROM outcomes",
        "UPDATE decisions SET score = 0",
        "DELETE FROM decisions",
        "DELETE FROM outcome_batches",
        "UPDATE outcome_batches SET added_by = 'someone'",
    ):
        with pytest.raises(Exception, match="append-only"), engine.begin() as conn:
            conn.execute(text(sql))
    if engine.dialect.name == "postgresql":
        for table in ("outcomes", "decisions", "outcome_batches"):
            with pytest.raises(Exception, match="append-only"), engine.begin() as conn:
                conn.execute(text(f"TRUNCATE {table} CASCADE"))
    else:  # INSERT OR REPLACE deletes the old row: the DELETE guard fires (recursive_triggers)
        with pytest.raises(Exception, match="append-only"), engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT OR REPLACE INTO outcomes (version_id, decision_id, outcome, observed_at, batch_id) "
                    "SELECT version_id, decision_id, 1 - outcome, observed_at, batch_id FROM outcomes LIMIT 1"
                )
            )
    assert counts(client)["outcomes"] == 10


def test_scoring_log_with_bad_decision_columns_is_refused(deployed, portfolio):
    ops = deployed.as_user("ops")
    log = portfolio.decisions.head(500)
    cases = [
        (
            log.drop(columns=["decided_at"]),
            "--data has no column 'decided_at', the model card's decision_time_column",
        ),
        (
            pd.concat([log, log.head(2)]),
            "has 2 decision id(s) that occur more than once in column 'decision_id'",
        ),
        (
            log.assign(decided_at=["not a time"] + [str(t) for t in log["decided_at"].iloc[1:]]),
            "unreadable time",
        ),
    ]
    for data, message in cases:
        with pytest.raises(BadInput) as info:
            ops.monitor(NAME, "1", data=data, score="score")
        assert message in str(info.value), str(info.value)
    assert counts(deployed)["decisions"] == 0


def _monitor_with_estimate(client, data: pd.DataFrame, estimate: tuple[float, float, float]):
    """A monitoring run stored through the service's own path (runner, then ``_store``), whose results also
    hold an ``estimated_performance`` result with the other branch's contract metrics (``estimated_auc``,
    ``estimated_auc_low``, ``estimated_auc_high``), as that monitor records them."""
    from modelreg.governance import runner, service
    from modelreg.governance.runner import EvaluationInput
    from modelreg.operations import effective_pack
    from monitors.base import Metric, MetricStatus, MonitorResult

    reg = client.as_user("ops").registry
    with reg.reading("monitor", model=NAME, version="1") as rd:
        mv, row_version = rd.target.version, rd.target.row_version
    inp = EvaluationInput(data=data, score="score")
    service._declared_from_card(inp, mv.model_card)
    inp.record_decisions = True
    pack = effective_pack(service.load_policy(reg), mv)
    draft = runner.run(pack, ("monitor",), mv.risk_tier, inp)
    auc, low, high = estimate
    draft.results["estimated_performance"] = MonitorResult(
        kind="estimated_performance",
        monitor_version="contract",
        params={},
        metrics=tuple(
            Metric(name=name, value=value)
            for name, value in (
                ("estimated_auc", auc),
                ("estimated_auc_low", low),
                ("estimated_auc_high", high),
            )
        ),
        status=MetricStatus.OK,
    )
    return service._store(
        reg, NAME, "1", mv, row_version, pack, "monitor", mv.risk_tier, "monitoring", draft, inp
    )


def test_realised_against_the_earlier_estimate_contract(deployed, portfolio, tmp_path):
    """Written against the estimate's contract: each earlier run's estimate and band next to the realised AUC
    on the very decisions it scored, inside or outside."""
    log = portfolio.decisions
    january = log[log["decided_at"] < pd.Timestamp("2025-02-01")]
    later = log[log["decided_at"] >= pd.Timestamp("2025-02-01")]
    truth = portfolio.labelled_current().set_index("decision_id")
    auc_jan = roc_auc_score(truth.loc[january["decision_id"], TARGET], january["score"])
    auc_later = roc_auc_score(truth.loc[later["decision_id"], TARGET], later["score"])
    ev_jan = _monitor_with_estimate(deployed, january, (auc_jan + 0.01, auc_jan - 0.03, auc_jan + 0.04))
    ev_later = _monitor_with_estimate(deployed, later, (auc_later + 0.2, auc_later + 0.1, auc_later + 0.3))
    assert counts(deployed)["decisions"] == len(log)

    ops = deployed.as_user("ops")
    ops.add_outcomes(NAME, "1", portfolio.outcomes)
    rows = {c["evaluation_id"]: c for c in ops.outcomes_report(NAME, "1")["comparison"]}
    assert set(rows) == {ev_jan.id, ev_later.id}
    jan, lat = rows[ev_jan.id], rows[ev_later.id]
    assert jan["realised_auc"] == pytest.approx(auc_jan, abs=1e-12) and jan["decisions"] == len(january)
    assert jan["estimated_auc"] == pytest.approx(auc_jan + 0.01) and jan["inside_band"] is True
    assert lat["realised_auc"] == pytest.approx(auc_later, abs=1e-12) and lat["inside_band"] is False
    assert jan["coverage"] == lat["coverage"] == 1.0 and not jan["partial"]

    # the next monitoring run on the whole log records the same comparison in its evaluation
    ev = ops.monitor(NAME, "1", data=log, score="score")
    stored = {c["evaluation_id"]: c for c in ev.data["realised"]["comparison"]}
    assert stored == rows
    assert deployed.audit_verify().ok  # the evaluations' digests cover these rows

    # and the auditor's evidence pack carries it with the evaluation
    import zipfile

    from modelreg.evidence.pack import build_pack

    pack = build_pack(deployed.as_user("aud").registry, NAME, "1", tmp_path / "pack.zip")
    del pack
    with zipfile.ZipFile(tmp_path / "pack.zip") as zf:
        member = next(n for n in zf.namelist() if n.endswith(f"evaluations/{ev.id}.json"))
        packed = json.loads(zf.read(member))
    assert {c["evaluation_id"]: c for c in packed["data"]["realised"]["comparison"]} == rows


def test_duckdb_engine_records_the_same_decisions(deployed, portfolio, tmp_path):
    """On a reduction engine only the id, time and score columns come to pandas; the same rows are recorded."""
    path = tmp_path / "log.parquet"
    portfolio.decisions.to_parquet(path, index=False)
    ev = deployed.as_user("ops").monitor(NAME, "1", data=str(path), score="score", engine="duckdb")
    assert "reduction engine: duckdb" in ev.data["notes"]
    assert ev.data["decisions"]["rows"] == len(portfolio.decisions) == counts(deployed)["decisions"]
    from modelreg.governance.outcomes import decisions_digest, decisions_of

    want = decisions_of(portfolio.decisions, "decision_id", "decided_at", "score")
    assert ev.data["decisions"]["digest"] == decisions_digest(want)
