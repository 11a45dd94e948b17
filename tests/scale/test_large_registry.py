"""The registry at (small) scale, on SQLite and PostgreSQL: the reads an operator or auditor runs issue a
bounded number of SQL statements whatever the registry's size (no N+1), and every query they issue on the
big tables is answered through an index (no full scan). Statement counts and query plans are asserted, never
times: the timings at full size (10,000 models, 100,000 versions, 1,000,000 events) are in
``benchmarks/bench_scale_registry.py`` and ``benchmarks/RESULTS.md``.

The registry is built the way the benchmark builds it (bulk ``insert`` executemany in ``write_session``
transactions, events through ``append_event`` plus bulk rows from the log's own functions), then grown 40×
with a second batch of models; ``audit_verify`` must stay ok, which checks the bulk rows.
"""

from __future__ import annotations

import gc
import re

import pytest
from sqlalchemy import text

from benchmarks.bench_scale_registry import CAST, StatementCounter, build_large, core_registry, read_ops

pytestmark = [pytest.mark.timeout(300)]

TARGET = ("a_00005", "1")
# Tables that grow with the registry. A read that touches one of them must use an index.
BIG_TABLES = (
    "models",
    "model_versions",
    "evaluations",
    "findings",
    "signed_records",
    "audit_events",
    "transitions",
    "datasets",
    "monitor_results",
    "evaluation_artifacts",
    "users",
)
# Bounded reads (``list`` without a filter and ``audit verify`` read everything by design).
BOUNDED = ("list --model", "show", "findings", "audit log --model", "evidence pack")


@pytest.fixture
def reg(db_url, env_for, tmp_path):
    r = core_registry(env_for(db_url))
    r.init()
    for user, roles in CAST:
        r.add_user(user, list(roles))
    yield r
    r.engine.dispose()


def _counts(reg, tmp_path, tag: str) -> dict[str, int]:
    counter = StatementCounter(reg.engine)
    out: dict[str, int] = {}
    try:
        for label, fn in read_ops(reg, *TARGET, tmp_path / f"packs_{tag}").items():
            if label not in BOUNDED:
                continue
            fn()  # the first call also checks the schema: count the steady state
            with counter.counting() as stmts:
                fn()
            out[label] = len(stmts)
    finally:
        counter.close()
    return out


def test_show_findings_and_pack_issue_the_same_statements_at_40x_the_size(reg, tmp_path):
    small = build_large(
        reg.engine, signer=reg.event_signer(), models=10, versions=30, events=300, api_events=100, prefix="a"
    )
    before = _counts(reg, tmp_path, "small")
    big = build_large(
        reg.engine,
        signer=reg.event_signer(),
        models=400,
        versions=1_200,
        events=12_000,
        api_events=400,
        prefix="b",
    )
    assert big["versions"] == 40 * small["versions"]
    report = reg.audit_verify(tables=False)
    assert report.ok, report.problem
    assert report.size == 8 + 300 + 12_000  # init + 7 users, then both batches: nothing lost, nothing extra
    after = _counts(reg, tmp_path, "big")

    assert set(before) == set(BOUNDED) or "evidence pack" not in before
    assert after == before, f"statement counts grew with the registry: {before} -> {after}"
    # and they are small absolute numbers: no hidden per-row query that the sizes above happen to hide
    assert (
        after["show"] <= 16
        and after["findings"] <= 8
        and after["list --model"] <= 3
        and after["audit log --model"] <= 4
    )

    # the reads return what was built (so the counts are of real work, not of an empty answer)
    findings = read_ops(reg, *TARGET, None)["findings"]()
    assert [e.purpose for e in findings] == ["validation"] and len(findings[0].findings) == 3
    assert {f.status for f in findings[0].findings} == {"pass", "warn", "fail"}
    assert [v.version for v in reg.list(model="a_00005")] == ["1", "2", "3"]
    assert len(reg.list()) == 30 + 1_200


def _plan_lines(reg, statement: str, params) -> list[str]:
    with reg.engine.connect() as conn:
        if reg.engine.dialect.name == "sqlite":
            raw = conn.connection.driver_connection
            return [row[3] for row in raw.execute("EXPLAIN QUERY PLAN " + statement, params)]
        # PostgreSQL: with sequential scans priced out, a Seq Scan in the plan means no usable index exists.
        conn.exec_driver_sql("SET enable_seqscan = off")
        cur = conn.connection.driver_connection.cursor()
        cur.execute("EXPLAIN " + statement, params)
        return [r[0] for r in cur.fetchall()]


def _full_scans(reg, plan: list[str]) -> list[str]:
    bad = []
    for line in plan:
        if reg.engine.dialect.name == "sqlite":
            m = re.match(r"\s*SCAN (\w+)", line)
            # "SCAN t USING [COVERING] INDEX" walks an index in order: fine; a bare "SCAN t" reads every row
            if m and m.group(1) in BIG_TABLES and "USING" not in line:
                bad.append(line.strip())
        else:
            m = re.search(r"Seq Scan on (\w+)", line)
            if m and m.group(1) in BIG_TABLES:
                bad.append(line.strip())
    return bad


def test_bounded_reads_use_indexes_on_every_big_table(reg, tmp_path):
    build_large(
        reg.engine,
        signer=reg.event_signer(),
        models=50,
        versions=200,
        events=2_000,
        api_events=200,
        prefix="a",
    )
    from sqlalchemy import event

    seen: list[tuple[str, object]] = []

    def listener(_conn, _cur, statement, parameters, _ctx, _many):
        seen.append((statement, parameters))

    ops = read_ops(reg, *TARGET, tmp_path / "packs")
    for label in BOUNDED:
        if label in ops:
            ops[label]()  # schema check out of the way
    event.listen(reg.engine, "before_cursor_execute", listener)
    try:
        for label in BOUNDED:
            if label in ops:
                ops[label]()
    finally:
        event.remove(reg.engine, "before_cursor_execute", listener)
    selects = [
        (s, p)
        for s, p in seen
        if s.lstrip().upper().startswith("SELECT") and any(re.search(rf"\b{t}\b", s) for t in BIG_TABLES)
    ]
    assert len(selects) >= 8
    problems = {}
    for statement, params in selects:
        if "leaf_hash" in statement and "seq <" in statement:
            continue  # the evidence pack reads every leaf below the tree size on purpose (an ordered PK range)
        bad = _full_scans(reg, _plan_lines(reg, statement, params))
        if bad:
            problems[statement.split("FROM", 1)[-1][:160]] = bad
    assert problems == {}, problems


def _drop_sqlite_guards(reg) -> None:
    """Tampering needs the append-only triggers out of the way (an attacker with file access can do this)."""
    with reg.engine.begin() as conn:
        names = [
            r[0]
            for r in conn.execute(
                text("SELECT name FROM sqlite_master WHERE type='trigger' AND tbl_name='audit_events'")
            )
        ]
        for name in names:
            conn.execute(text(f'DROP TRIGGER "{name}"'))


def test_bulk_built_log_is_what_append_event_writes(reg):
    """The fast build path is only a benchmark shortcut if its rows are bit-identical to the API's: a verify
    from scratch recomputes every leaf and stored root, and editing one bulk row is caught at that row."""
    build_large(
        reg.engine, signer=reg.event_signer(), models=5, versions=10, events=1_000, api_events=10, prefix="a"
    )
    report = reg.audit_verify(tables=False)
    assert report.ok and report.size == 8 + 1_000
    if reg.engine.dialect.name == "postgresql":
        pytest.skip(
            "the append-only triggers refuse the tampering UPDATE on PostgreSQL (covered in tests/core)"
        )
    _drop_sqlite_guards(reg)
    with reg.engine.begin() as conn:
        data = bytes(conn.execute(text("SELECT canonical FROM audit_events WHERE seq = 508")).scalar_one())
        assert b"bulk 508" in data
        conn.execute(
            text("UPDATE audit_events SET canonical = :c WHERE seq = 508"),
            {"c": data.replace(b"bulk 508", b"bulk 509")},
        )
    bad = reg.audit_verify(tables=False)
    assert not bad.ok and bad.first_bad_seq == 508 and "edited" in (bad.problem or "")


def test_verify_reports_an_event_rewritten_as_text_instead_of_crashing(reg):
    if reg.engine.dialect.name == "postgresql":
        pytest.skip("bytea cannot hold TEXT; SQLite's dynamic typing can")
    build_large(
        reg.engine, signer=reg.event_signer(), models=5, versions=10, events=100, api_events=10, prefix="a"
    )
    _drop_sqlite_guards(reg)
    with reg.engine.begin() as conn:
        # a plain SQL edit: replace() on a BLOB returns TEXT, so the row now holds a string
        conn.execute(
            text(
                "UPDATE audit_events SET canonical = replace(canonical, 'bulk 50', 'bulk 51') WHERE seq = 50"
            )
        )
    crashed = None
    try:
        bad = reg.audit_verify(tables=False)
    except TypeError as exc:
        crashed = str(exc)
    if crashed is not None:
        # drop the traceback (it keeps verify's row generator open) before the fixture closes the engine
        gc.collect()
        raise TypeError(crashed)
    assert not bad.ok and bad.first_bad_seq == 50


def test_verify_reports_an_event_replaced_by_non_json_bytes_instead_of_crashing(reg):
    if reg.engine.dialect.name == "postgresql":
        pytest.skip("the append-only triggers refuse the tampering UPDATE on PostgreSQL")
    import hashlib

    build_large(
        reg.engine, signer=reg.event_signer(), models=5, versions=10, events=100, api_events=10, prefix="a"
    )
    _drop_sqlite_guards(reg)
    with reg.engine.begin() as conn:
        junk = b"not an event"
        conn.execute(
            text("UPDATE audit_events SET canonical = :c, leaf_hash = :h WHERE seq = 60"),
            {"c": junk, "h": hashlib.sha256(b"\x00" + junk).digest()},
        )
    # a tamperer who recomputes the leaf hash still cannot make verify crash on bytes that are not an event
    bad = reg.audit_verify(tables=False)
    assert not bad.ok and bad.first_bad_seq == 60 and "edited" in (bad.problem or "")


def _add_monitoring_runs(reg, name: str, version: str, runs: int) -> None:
    """``runs`` monitoring evaluations (with findings and a monitor result each) on one version, as a year of
    daily ``modelreg monitor`` would leave."""
    from sqlalchemy import insert, select

    from modelreg import clock
    from modelreg.store.engine import write_session
    from modelreg.store.tables import EvaluationRow, FindingRow, ModelRow, MonitorResultRow, VersionRow

    with write_session(reg.engine) as s:
        vid = s.execute(
            select(VersionRow.id)
            .join(ModelRow, ModelRow.id == VersionRow.model_id)
            .where(ModelRow.name == name, VersionRow.version == version)
        ).scalar_one()
        for _ in range(runs):
            eid = s.execute(
                insert(EvaluationRow).returning(EvaluationRow.id),
                [
                    {
                        "version_id": vid,
                        "purpose": "monitoring",
                        "gate": "monitor",
                        "tier": "medium",
                        "policy_id": "cn-fin-algo-risk",
                        "policy_version": "1.0.0",
                        "policy_digest": "sha256:" + "d" * 64,
                        "model_artifact_digest": "c" * 64,
                        "data": {},
                        "status": "pass",
                        "digest": "f" * 64,
                        "mlflow_run_id": None,
                        "created_by": "ops",
                        "created_at": clock.now(),
                    }
                ],
            ).scalar_one()
            s.execute(
                insert(FindingRow),
                [
                    {
                        "evaluation_id": eid,
                        "version_id": vid,
                        "control_id": "CHK-PERF-01",
                        "status": "pass",
                        "severity": "blocking",
                        "clause_ids": [],
                        "detail": {},
                    }
                ],
            )
            s.execute(
                insert(MonitorResultRow),
                [
                    {
                        "evaluation_id": eid,
                        "kind": "performance",
                        "result": {"metrics": []},
                        "digest": "0" * 64,
                    }
                ],
            )


def test_evidence_pack_statements_do_not_grow_with_the_versions_monitoring_history(reg, tmp_path):
    build_large(
        reg.engine, signer=reg.event_signer(), models=10, versions=30, events=100, api_events=30, prefix="a"
    )
    _add_monitoring_runs(reg, *TARGET, runs=2)
    few = _counts(reg, tmp_path, "few")
    _add_monitoring_runs(reg, *TARGET, runs=30)
    many = _counts(reg, tmp_path, "many")
    # show/findings read only the latest evaluation per purpose: bounded already
    assert many["show"] == few["show"] and many["findings"] == few["findings"]
    assert many["evidence pack"] == few["evidence pack"], (few["evidence pack"], many["evidence pack"])
