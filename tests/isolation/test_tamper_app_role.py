"""The tamper suite of tests/core/test_tamper.py with the registry connected as the least-privilege
application role (``modelreg init --pg-roles``) on PostgreSQL.

The registry, its CLI and ``audit verify`` run as the application role; the edits that need the guards out of
the way are made by a superuser (the application role cannot make them: see test_pg_roles.py). Every edit is
still detected, as the application role. The database-guard test is replaced by its least-privilege form:
the application role is refused by privileges before any trigger is reached."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from tests.core._workers import register, seeded_core_registry
from tests.core.test_tamper import (  # noqa: F401  (collected here, with this module's `log` fixture)
    Log,
    test_consistent_rewrite_is_detected_by_the_event_signatures,
    test_deleted_event_in_the_middle_is_detected,
    test_edited_canonical_bytes_are_detected,
    test_edited_copied_columns_are_detected,
    test_edited_event_with_its_leaf_rehashed_is_detected_by_the_stored_roots,
    test_forged_event_appended_past_the_recorded_size_is_named,
    test_forged_event_inserted_in_the_middle_is_detected,
    test_swapped_events_are_detected,
    test_truncated_tail_is_detected_against_state_then_against_the_checkpoint,
    test_untouched_log_passes_on_the_cli_with_and_without_checkpoint,
)
from tests.isolation.test_pg_roles import roles  # noqa: F401  (fixture)


@pytest.fixture
def log(roles, env_for, tmp_path) -> Iterator[Log]:  # noqa: F811
    env = env_for(roles.url_as(roles.app))
    reg = seeded_core_registry(env)
    for v in ("1", "2", "3"):
        register(reg, "credit_scoring", v)
        reg.as_user("dev").submit("credit_scoring", v)
    reg.as_user("app1").deploy("credit_scoring", "1")
    reg.as_user("app1").deploy("credit_scoring", "2", replace="retire")
    reg.as_user("ops").suspend("credit_scoring", "2", reason="PSI breach")
    reg.as_user("app1").resume("credit_scoring", "2", reason="investigated")
    checkpoint = tmp_path / "kept" / "checkpoint.json"
    cp = reg.as_user("aud").audit_checkpoint(checkpoint)["checkpoint"]
    register(reg, "fraud_rules", "1", tier="high")
    reg.as_user("dev").submit("fraud_rules", "1")
    report = reg.audit_verify(checkpoint)
    assert report.ok, report.problem
    with reg.engine.connect() as conn:
        assert conn.execute(text("SELECT current_user")).scalar_one() == roles.app
    superuser = create_engine(roles.admin_url, poolclass=NullPool)
    yield Log(reg, env, checkpoint, cp["size"], report.size, owner_engine=superuser)
    superuser.dispose()
    reg.engine.dispose()


def test_application_role_is_refused_every_change_to_audit_events(log):
    for sql in (
        "UPDATE audit_events SET actor = 'mallory' WHERE seq = 3",
        "DELETE FROM audit_events WHERE seq = 3",
        "TRUNCATE audit_events",
        "ALTER TABLE audit_events DISABLE TRIGGER ALL",
        "DELETE FROM audit_state",
        "TRUNCATE audit_state",
    ):
        with (
            pytest.raises(DBAPIError, match=r"permission denied|must be owner"),
            log.reg.engine.begin() as conn,
        ):
            conn.execute(text(sql))
    with pytest.raises(DBAPIError, match="audit_state only moves forward"), log.reg.engine.begin() as conn:
        conn.execute(text("UPDATE audit_state SET size = size - 1"))  # UPDATE is granted: the trigger refuses
    report = log.reg.audit_verify(log.checkpoint)
    assert report.ok and report.size == log.size
