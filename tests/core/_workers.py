"""Worker code for the multi-process tests: functions started with ``multiprocessing`` (spawn) and a small
command-line entry point (``python -m tests.core._workers crash-loop``) for the process the crash test kills.

Workers build a plain ``Registry`` (the core, without the governance plug-ins) so these tests exercise the
registry's transactions and audit log, not the policy gates that later plug into deploy.
"""

from __future__ import annotations

import json
import sys
import traceback
from typing import Any

CAST: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("admin", ("admin",)),
    ("dev", ("developer",)),
    ("val", ("validator",)),
    ("app1", ("approver",)),
    ("app2", ("approver",)),
    ("ops", ("operator",)),
    ("aud", ("auditor",)),
)


def core_registry(env: dict[str, str], actor: str = "admin"):
    """A core Registry (no plug-ins) on the database named by ``env``."""
    from modelreg import settings
    from modelreg.registry import Registry

    return Registry(settings.load(environ=env), actor=actor)


def seeded_core_registry(env: dict[str, str]):
    """Initialise the database and add the usual cast (same users as the ``registry`` fixture)."""
    reg = core_registry(env, "admin")
    reg.init()
    for name, roles in CAST:
        reg.add_user(name, list(roles))
    return reg


def register(reg, name: str, version: str, *, tier: str = "medium"):
    return reg.as_user("dev").register(
        name, version, owner="dev", risk_tier=tier, purpose="PD scoring for consumer loans"
    )


def _error(exc: BaseException) -> dict[str, Any]:
    return {"error": type(exc).__name__, "message": getattr(exc, "message", str(exc))}


# -- test 1: two deployers racing -----------------------------------------------------------------------------
def deploy_racer(env: dict[str, str], actor: str, jobs: list[tuple[str, str]], barrier, results) -> None:
    """For each (model, version) in ``jobs``: wait at the barrier with the other racer, then deploy.

    The registry and its schema check are warmed up before the first barrier so both processes reach the
    deploy call at the same moment instead of one still importing or connecting."""
    try:
        reg = core_registry(env, actor)
        reg.show(*jobs[0])
        for model, version in jobs:
            barrier.wait(timeout=60)
            try:
                result = reg.deploy(model, version)
                results.put({"model": model, "version": version, "ok": True, "seq": result.event.seq})
            except Exception as exc:  # the loser's refusal is the point of the test: report it, typed
                results.put({"model": model, "version": version, "ok": False, **_error(exc)})
        reg.engine.dispose()
    except BaseException:  # anything else (barrier broken, crash) must show up in the parent's assertion
        results.put(
            {"model": None, "version": None, "ok": False, "error": "crash", "message": traceback.format_exc()}
        )


# -- test 2: many appenders -----------------------------------------------------------------------------------
def appender(env: dict[str, str], worker: int, versions: int, barrier, results) -> None:
    """Register ``versions`` versions of the worker's own model, submit each, and add one user: every call
    appends one audit event. Reports the seq of every event it appended."""
    try:
        admin = core_registry(env, "admin")
        dev = admin.as_user("dev")
        admin.users()  # connect and check the schema before the start line
        seqs: list[int] = []
        barrier.wait(timeout=60)
        model = f"worker_{worker}"
        for i in range(versions):
            dev.register(model, str(i + 1), owner="dev", risk_tier="low", purpose="concurrency test")
            seqs.append(_last_seq_of(admin, model, str(i + 1), "version.registered"))
            seqs.append(dev.submit(model, str(i + 1)).event.seq)
        admin.add_user(f"user_of_worker_{worker}", ["auditor"])
        seqs.append(_user_added_seq(admin, f"user_of_worker_{worker}"))
        results.put({"worker": worker, "ok": True, "seqs": seqs})
        admin.engine.dispose()
    except BaseException:
        results.put({"worker": worker, "ok": False, "message": traceback.format_exc()})


def _last_seq_of(reg, model: str, version: str, event: str) -> int:
    # register() returns the version, not the event: read the event back (it is ours: nobody else writes
    # events about this worker's own model)
    return next(e.seq for e in reversed(reg.audit_log(model, version)) if e.event == event)


def _user_added_seq(reg, user: str) -> int:
    return next(
        e.seq for e in reversed(reg.audit_log()) if e.event == "user.added" and e.payload.get("user") == user
    )


# -- test 3: the process that gets SIGKILLed ------------------------------------------------------------------
CRASH_MODEL = "crash_model"


def crash_loop(env: dict[str, str], rounds: int = 10_000) -> None:
    """Run state changes in a loop; after each one returns (committed), print ``{"seq", "event", "version"}``.

    Each pass: retire what a previous (killed) child left in develop, then register the next version, submit
    it, deploy it replacing the deployed one, suspend and resume it."""
    admin = core_registry(env, "admin")
    dev, app, ops = admin.as_user("dev"), admin.as_user("app1"), admin.as_user("ops")
    versions = admin.list(model=CRASH_MODEL)
    out = sys.stdout

    def ack(result_or_seq, event: str, version: str) -> None:
        seq = result_or_seq if isinstance(result_or_seq, int) else result_or_seq.event.seq
        out.write(json.dumps({"seq": seq, "event": event, "version": version}) + "\n")
        out.flush()

    for v in versions:
        if v.stage.value == "develop":
            ack(
                app.retire(CRASH_MODEL, v.version, reason="abandoned after a crash"),
                "version.retired",
                v.version,
            )
        elif v.stage.value == "deploy" and v.suspended:
            ack(
                app.resume(CRASH_MODEL, v.version, reason="resumed after a crash"),
                "version.resumed",
                v.version,
            )
    out.write(json.dumps({"ready": True}) + "\n")
    out.flush()
    number = max((int(v.version) for v in versions), default=0)
    for _ in range(rounds):
        number += 1
        version = str(number)
        dev.register(CRASH_MODEL, version, owner="dev", risk_tier="low", purpose="crash test")
        ack(_last_seq_of(admin, CRASH_MODEL, version, "version.registered"), "version.registered", version)
        ack(dev.submit(CRASH_MODEL, version), "version.submitted", version)
        ack(app.deploy(CRASH_MODEL, version, replace="retire"), "version.deployed", version)
        ack(ops.suspend(CRASH_MODEL, version, reason="drill"), "version.suspended", version)
        ack(app.resume(CRASH_MODEL, version, reason="drill over"), "version.resumed", version)


def main(argv: list[str]) -> int:
    import os

    if argv[:1] == ["crash-loop"]:
        crash_loop(dict(os.environ))
        return 0
    print(f"unknown worker command {argv!r}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
