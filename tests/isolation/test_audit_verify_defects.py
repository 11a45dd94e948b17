"""``audit verify`` is a read-only command that reports the truth: it never creates a key, a dropped audit table
is a verification failure (exit 1) and an emptied log against a checkpoint says so."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from sqlalchemy import text

from tests.core._workers import register, seeded_core_registry
from tests.core.test_tamper import cli


def _seeded(db_url, env_for, tmp_path):
    env = env_for(db_url)
    reg = seeded_core_registry(env)
    register(reg, "credit_scoring", "1")
    reg.as_user("dev").submit("credit_scoring", "1")
    checkpoint = tmp_path / "kept" / "cp.json"
    reg.as_user("aud").audit_checkpoint(checkpoint)
    return env, reg, checkpoint


def test_verify_with_checkpoint_and_no_key_writes_no_key(db_url, env_for, tmp_path):
    env, reg, checkpoint = _seeded(db_url, env_for, tmp_path)
    key = Path(env["MODELREG_AUDIT_KEY"])
    # The auditor's machine: the registry's audit key is not here.
    shutil.move(key, tmp_path / "elsewhere.key")
    key.with_name(key.name + ".pub").unlink()
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    done = cli(env, "audit", "verify", "--checkpoint", str(checkpoint))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert "--trusted-key" in done.stdout and "FAILED" in done.stdout
    after = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    new = [p for p in after if p not in before and not str(p).endswith(("-wal", "-shm"))]
    assert not key.exists() and new == [], new
    # with the checkpoint's own public key kept beside it, the same log verifies
    ok = cli(env, "audit", "verify", "--checkpoint", str(checkpoint), "--trusted-key", f"{checkpoint}.pub")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert not key.exists()
    reg.engine.dispose()


def test_missing_audit_table_is_a_verification_failure(db_url, env_for, tmp_path):
    env, reg, _ = _seeded(db_url, env_for, tmp_path)
    with reg.engine.begin() as conn:
        conn.execute(
            text("DROP TABLE audit_events" + (" CASCADE" if reg.engine.dialect.name == "postgresql" else ""))
        )
    done = cli(env, "audit", "verify", "--json")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "internal error" not in done.stderr and "Traceback" not in done.stderr
    body = json.loads(done.stdout)
    assert body["ok"] is False and "audit table missing" in body["problem"]
    reg.engine.dispose()


def test_emptied_log_against_a_checkpoint_reports_every_event_removed(db_url, env_for, tmp_path):
    env, reg, checkpoint = _seeded(db_url, env_for, tmp_path)
    size = json.loads(checkpoint.read_text())["size"]
    pg = reg.engine.dialect.name == "postgresql"
    with reg.engine.begin() as conn:  # the owner bypasses the guards, empties the log and rewinds its state
        if pg:
            conn.execute(text("ALTER TABLE audit_events DISABLE TRIGGER ALL"))
            conn.execute(text("ALTER TABLE audit_state DISABLE TRIGGER ALL"))
        else:
            for trigger in (
                conn.execute(
                    text("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name LIKE 'audit_%'")
                )
                .scalars()
                .all()
            ):
                conn.execute(text(f"DROP TRIGGER {trigger}"))
        conn.execute(text("DELETE FROM audit_events"))
        conn.execute(
            text("UPDATE audit_state SET size = 0, frontier = :f, root_hash = :r WHERE id = 1"),
            {
                "f": "[]",
                "r": bytes.fromhex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
            },
        )
    assert reg.audit_verify(tables=False).ok  # alone, an empty log is consistent with itself
    # (the tables still hold what the removed events did: the replay names rows with no event behind them)
    assert "has no audit event behind it" in reg.audit_verify().problem
    done = cli(env, "audit", "verify", "--checkpoint", str(checkpoint))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "#-1" not in done.stdout
    assert f"the log is empty but the checkpoint saw {size} events" in done.stdout
    reg.engine.dispose()
