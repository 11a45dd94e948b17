"""Concurrent writers in separate processes, on SQLite and PostgreSQL: racing deployers (exactly one wins, the
database never holds two deployed versions) and many appenders (the Merkle log stays one contiguous,
unforked sequence)."""

from __future__ import annotations

import multiprocessing as mp
import queue

import pytest
from sqlalchemy import text

from modelreg.audit.merkle import root_from_leaf_hashes
from modelreg.domain.stages import Stage
from tests.core._workers import appender, deploy_racer, register, seeded_core_registry

SPAWN = mp.get_context("spawn")


@pytest.fixture
def env(db_url, env_for) -> dict[str, str]:
    return env_for(db_url)


@pytest.fixture
def core(env):
    reg = seeded_core_registry(env)
    yield reg
    reg.engine.dispose()


def _collect(results, expected: int, procs: list, timeout: float = 120.0) -> list[dict]:
    got: list[dict] = []
    for _ in range(expected):
        try:
            got.append(results.get(timeout=timeout))
        except queue.Empty:
            break
    for p in procs:
        p.join(timeout=30)
        if p.is_alive():  # never leave a stray worker behind a failed test
            p.kill()
            p.join()
    crashed = [r["message"] for r in got if r.get("error") == "crash" or (not r.get("ok") and "worker" in r)]
    assert not crashed, "a worker crashed:\n" + "\n".join(crashed)
    assert len(got) == expected, f"expected {expected} results, got {len(got)}"
    return got


def _verify_against_recomputation(reg) -> None:
    report = reg.audit_verify()
    assert report.ok, report.problem
    with reg.engine.connect() as conn:
        rows = conn.execute(text("SELECT seq, leaf_hash FROM audit_events ORDER BY seq")).all()
        size, root = conn.execute(text("SELECT size, root_hash FROM audit_state")).one()
    assert [r[0] for r in rows] == list(range(len(rows)))
    recomputed = root_from_leaf_hashes([bytes(r[1]) for r in rows])
    assert size == len(rows) == report.size
    assert recomputed == bytes(root) == bytes.fromhex(report.root_hash)


ROUNDS = 6


def test_two_processes_deploying_two_versions_exactly_one_wins(core, env):
    """Round r: model race_r has versions 1 and 2 in validate; app1 deploys 1 while app2 deploys 2, released
    together by a barrier. Without --replace exactly one may win; the other must be refused, not both
    deployed (the partial unique index would then raise) and not both refused."""
    jobs_a, jobs_b = [], []
    for r in range(ROUNDS):
        model = f"race_{r}"
        for v in ("1", "2"):
            register(core, model, v)
            core.as_user("dev").submit(model, v)
        jobs_a.append((model, "1"))
        jobs_b.append((model, "2"))
    before = core.audit_verify().size

    barrier = SPAWN.Barrier(2)
    results = SPAWN.Queue()
    procs = [
        SPAWN.Process(target=deploy_racer, args=(env, "app1", jobs_a, barrier, results)),
        SPAWN.Process(target=deploy_racer, args=(env, "app2", jobs_b, barrier, results)),
    ]
    for p in procs:
        p.start()
    got = _collect(results, 2 * ROUNDS, procs)

    for r in range(ROUNDS):
        model = f"race_{r}"
        outcome = [g for g in got if g["model"] == model]
        winners = [g for g in outcome if g["ok"]]
        losers = [g for g in outcome if not g["ok"]]
        assert len(winners) == 1 and len(losers) == 1, outcome
        # the loser is told why, as a refusal (exit 1), never a database error
        assert losers[0]["error"] == "InvalidTransition", losers[0]
        assert "is deployed" in losers[0]["message"] or "already deployed" in losers[0]["message"]
        deployed = core.list(stage="deploy", model=model)
        assert [d.version for d in deployed] == [winners[0]["version"]]
        loser_version = core.show(model, losers[0]["version"])
        assert loser_version.stage is Stage.VALIDATE and not loser_version.suspended
        events = [e for e in core.audit_log(model) if e.event == "version.deployed"]
        assert [(e.seq, e.version) for e in events] == [(winners[0]["seq"], winners[0]["version"])]
        assert [h.action for h in core.history(model, losers[0]["version"])] == ["submit"]
    # one event per winning deploy, nothing for the refusals
    assert core.audit_verify().size == before + ROUNDS
    _verify_against_recomputation(core)


WORKERS = 8
VERSIONS_PER_WORKER = 4


def test_eight_processes_appending_keep_one_contiguous_log(core, env):
    before = core.audit_verify().size
    barrier = SPAWN.Barrier(WORKERS)
    results = SPAWN.Queue()
    procs = [
        SPAWN.Process(target=appender, args=(env, w, VERSIONS_PER_WORKER, barrier, results))
        for w in range(WORKERS)
    ]
    for p in procs:
        p.start()
    got = _collect(results, WORKERS, procs, timeout=180)

    per_worker = 2 * VERSIONS_PER_WORKER + 1
    expected = WORKERS * per_worker
    all_seqs = sorted(s for g in got for s in g["seqs"])
    assert all(len(g["seqs"]) == per_worker for g in got)
    # every acknowledged append got its own seq, and together they fill the log without gaps
    assert all_seqs == list(range(before, before + expected))
    for g in got:  # each worker's own events are in the order it made them
        assert g["seqs"] == sorted(g["seqs"])

    report = core.audit_verify()
    assert report.ok, report.problem
    assert report.size == before + expected
    _verify_against_recomputation(core)

    # the registry's own state agrees with the log: every version registered and submitted
    for w in range(WORKERS):
        versions = core.list(model=f"worker_{w}")
        assert [v.version for v in versions] == [str(i + 1) for i in range(VERSIONS_PER_WORKER)]
        assert {v.stage for v in versions} == {Stage.VALIDATE}
    users = {u.name for u in core.users()}
    assert {f"user_of_worker_{w}" for w in range(WORKERS)} <= users


def test_verify_during_concurrent_appends_never_raises_a_false_alarm(core, env):
    """An auditor runs ``audit verify`` while writers commit. Every report must describe one consistent
    snapshot: the recorded state and the rows read together. Reading the state, then the rows in a later
    transaction, would see events committed in between and report them as an inconsistency."""
    writers = 2
    barrier = SPAWN.Barrier(writers + 1)
    results = SPAWN.Queue()
    procs = [SPAWN.Process(target=appender, args=(env, w, 10, barrier, results)) for w in range(writers)]
    for p in procs:
        p.start()
    barrier.wait(timeout=120)
    reports = []
    while any(p.is_alive() for p in procs) and len(reports) < 200:
        reports.append(core.audit_verify())
    _collect(results, writers, procs, timeout=180)
    bad = [r.problem for r in reports if not r.ok]
    assert len(reports) >= 3
    assert not bad, f"{len(bad)} of {len(reports)} verifications failed while writers appended: {bad[0]}"
    sizes = [r.size for r in reports]
    assert sizes == sorted(sizes)  # later snapshots never show fewer events
