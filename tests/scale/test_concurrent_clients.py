"""16 client processes against one PostgreSQL registry (loopback, fixed op counts, a time limit).

Each client runs register / submit / attest / validation evaluation (tiny data, performance checks only) /
validator and approver approvals / deploy / suspend / resume on its own model, flips one shared deployed
version (contended: most flips are refused as already done), and finally all 16 race to deploy one version
each of the same model. ``check_load`` then proves: every acknowledged operation is in the audit log exactly
once at the seq it was given, the log holds exactly the acknowledged events (nothing lost, nothing extra),
seq is contiguous and ``audit_verify`` is ok, stored evaluations / signed records match the acknowledged
counts, the shared row's compare-and-set counter equals 3 + acknowledged flips (no lost update), and the race
has exactly one winner while every loser gets a typed refusal. Any non-modelreg exception (a raw deadlock or
serialization error) fails the test.
"""

from __future__ import annotations

import pytest

from benchmarks.bench_scale_registry import check_load, load_table, run_load

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(400)]

CLIENTS = 16
ROUNDS = 2
OPS_PER_ROUND = 11  # 9 on the client's own model + 2 contended flips of the shared version


@pytest.fixture
def env(pg_url, env_for) -> dict[str, str]:
    return env_for(pg_url, MODELREG_USER="admin")


def test_sixteen_clients_on_postgresql_lose_nothing_and_keep_one_log(env):
    report = run_load(env, clients=CLIENTS, rounds=ROUNDS, timeout=300)
    print("\n" + load_table(report))
    assert not report.crashes, report.crashes
    # no raw database error escaped: a deadlock / serialization failure would show up here
    assert report.unexpected == [], report.unexpected
    problems = check_load(env, report)
    assert problems == [], "\n".join(problems)

    own_ops = [a for a in report.acked if a["model"].startswith("load_")]
    # the uncontended mix always succeeds: 9 ops per round per client
    assert len(own_ops) == CLIENTS * ROUNDS * 9
    # every contended flip either succeeded or was refused with a typed error, none vanished
    flips = [x for x in [*report.acked, *report.refused] if x["op"] in ("shared_suspend", "shared_resume")]
    assert len(flips) == CLIENTS * ROUNDS * 2
    assert {e["error"] for e in report.refused if e["op"].startswith("shared_")} <= {
        "InvalidTransition",
        "ConcurrentModification",
    }
    assert sum(1 for a in report.acked if a["op"] == "shared_suspend") >= 1
    races = [x for x in [*report.acked, *report.refused] if x["op"] == "race_deploy"]
    assert len(races) == CLIENTS and sum(1 for a in report.acked if a["op"] == "race_deploy") == 1

    lat = report.latency_ms()
    assert (
        lat["all"]["n"] == len(report.acked) and lat["all"]["p50"] <= lat["all"]["p95"] <= lat["all"]["p99"]
    )
    assert report.ops_per_s > 0
