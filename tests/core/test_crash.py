"""SIGKILL in the middle of commands, many times, on SQLite and PostgreSQL: every acknowledged event survives,
nothing is half written, and the audit log verifies after every kill."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.conftest import REPO_ROOT
from tests.core._workers import CRASH_MODEL, seeded_core_registry

ITERATIONS = 30
MIN_ITERATIONS = 10
BUDGET_SECONDS = 20.0  # per backend; the loop stops early (after MIN_ITERATIONS) when it runs out


class Child:
    """The crash-loop worker as a real process, its acknowledgements read by a thread as they arrive."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.acks: list[dict] = []
        self.ready = threading.Event()
        self._stderr = log.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.core._workers", "crash-loop"],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode().strip()
            # a line cut by the kill is not an acknowledgement: the child never finished writing it
            if not line.endswith("}"):
                continue
            record = json.loads(line)
            if record.get("ready"):
                self.ready.set()
            else:
                self.acks.append(record)

    def kill(self) -> int:
        self.proc.send_signal(signal.SIGKILL)
        code = self.proc.wait(timeout=30)
        self._reader.join(timeout=30)
        self._stderr.close()
        return code


def _check_state(reg, acked: list[dict]) -> None:
    report = reg.audit_verify()
    assert report.ok, report.problem
    with reg.engine.connect() as conn:
        events = {
            seq: (event, model, version, json.loads(bytes(canonical)))
            for seq, event, model, version, canonical in conn.execute(
                text("SELECT seq, event, model, version, canonical FROM audit_events")
            )
        }
        versions = {
            version: (vid, stage, bool(suspended))
            for vid, version, stage, suspended in conn.execute(
                text(
                    "SELECT v.id, v.version, v.stage, v.suspended FROM model_versions v JOIN models m ON m.id = v.model_id WHERE m.name = :m"
                ),
                {"m": CRASH_MODEL},
            )
        }
        transitions = conn.execute(
            text(
                "SELECT t.version_id, t.action, t.source, t.target, t.audit_seq FROM transitions t ORDER BY t.id"
            )
        ).all()
    by_id = {vid: version for version, (vid, _, _) in versions.items()}

    # 1. every acknowledged (committed) event is there, as acknowledged
    for ack in acked:
        assert ack["seq"] in events, f"acknowledged event #{ack['seq']} is missing"
        event, model, version, _ = events[ack["seq"]]
        assert (event, model, version) == (ack["event"], CRASH_MODEL, ack["version"])

    # 2. every transitions row has its audit event, about that version (or naming it as the replaced one)
    last_target: dict[str, str] = {}
    suspended: dict[str, bool] = {}
    for vid, action, source, target, seq in transitions:
        version = by_id[vid]
        assert seq in events, f"transition {action} of {version} points at missing audit event #{seq}"
        _, _, ev_version, body = events[seq]
        named = ev_version == version or body["payload"].get("replaced", {}).get("version") == version
        assert named, f"transition {action} of {version} points at #{seq} about {ev_version}"
        assert last_target.get(version, "develop") == source, (
            f"{version}: {action} from {source} after {last_target.get(version)}"
        )
        last_target[version] = target
        if action in ("suspend", "resume"):
            suspended[version] = action == "suspend"
        elif target != "deploy":
            suspended[version] = False

    # 3. every state-changing event has its rows, and each version's stage agrees with its last transition
    for seq, (event, model, version, _) in events.items():
        if model != CRASH_MODEL:
            continue
        assert version in versions, f"event #{seq} {event} about {version}, which has no row"
        if event != "version.registered":
            assert any(t[4] == seq for t in transitions), f"event #{seq} {event} has no transitions row"
    for version, (_, stage, is_suspended) in versions.items():
        assert stage == last_target.get(version, "develop"), (
            f"{version} is in {stage} but its history ends in {last_target.get(version)}"
        )
        assert is_suspended == suspended.get(version, False)
    assert sum(1 for _, stage, _ in versions.values() if stage == "deploy") <= 1


@pytest.mark.timeout(240)
def test_sigkill_mid_command_leaves_no_half_state(db_url, env_for, tmp_path):
    env = env_for(db_url)
    reg = seeded_core_registry(env)
    rng = random.Random(int(os.environ.get("MODELREG_CRASH_SEED", "20261125")))
    acked: list[dict] = []
    started = time.monotonic()
    iterations = 0
    while iterations < ITERATIONS and (
        iterations < MIN_ITERATIONS or time.monotonic() - started < BUDGET_SECONDS
    ):
        child = Child(env, tmp_path / f"child_{iterations}.err")
        try:
            assert child.ready.wait(timeout=60), "the crash-loop child never became ready"
            time.sleep(rng.uniform(0.0, 0.6))
        finally:
            code = child.kill()
        # -9: killed by us, not exited on its own (an exception in the child would be a failure)
        assert code == -signal.SIGKILL, (tmp_path / f"child_{iterations}.err").read_text()
        acked.extend(child.acks)
        _check_state(reg, acked)
        iterations += 1
    assert iterations >= MIN_ITERATIONS
    # the kills hit a child that was working: it acknowledged many events across the runs
    assert len(acked) > iterations
    assert len({a["seq"] for a in acked}) == len(acked)
    reg.engine.dispose()
