"""Fixtures for model risk operations: the governance fixtures (German credit, two LightGBM models, a registry
with the policy gates and a keyed cast) and helpers that take a version from registration to deployment."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.governance.conftest import german, governed, prepare_for_validation, sign_attestations

__all__ = ["german", "governed"]

# Files a person looks at (inventory, report pages): $MODELREG_TEST_ARTIFACTS (CI can keep that folder), else a
# temporary folder, never the checkout (tests/conftest.py checks the run leaves it as it found it).
ARTIFACTS = (
    Path(os.environ.get("MODELREG_TEST_ARTIFACTS") or Path(tempfile.gettempdir()) / "modelreg-test-artifacts")
    / "operations"
)


@contextlib.contextmanager
def clock_at(when: datetime) -> Iterator[None]:
    """Run with "now" fixed at ``when`` (advancing a microsecond per call, so event times stay ordered)."""
    from modelreg import clock

    state = {"t": when}

    def now() -> datetime:
        state["t"] += timedelta(microseconds=1)
        return state["t"]

    clock.set_clock(now)
    try:
        yield
    finally:
        clock.set_clock(None)


def validate(client, german, name: str, version: str, model_key: str = "clean", who: str = "val"):
    s = german["split"]
    return client.as_user(who).validate(
        name,
        version,
        data=s.holdout,
        reference=s.train,
        target="default",
        model=german[model_key],
        sensitive=["sex"],
    )


def deploy_after_validation(client, name: str, version: str, evaluation, *, until: datetime) -> None:
    """Waive what still fails, sign the deploy gate's attestations and the tier's approvals, deploy."""
    for f in evaluation.findings:
        if f.status in ("fail", "error"):
            client.as_user("app1").waive(
                name,
                version,
                control=f.control_id,
                until=until.date().isoformat(),
                reason="test: accepted for now",
            )
    sign_attestations(client, name, version, "deploy")
    client.as_user("val").approve(name, version, role="validator", comment="independent validation")
    client.as_user("app1").approve(name, version, role="approver")
    client.as_user("app2").approve(name, version, role="approver")
    client.as_user("app1").deploy(name, version)


def now_utc() -> datetime:
    return datetime.now(UTC)


__all__ += [
    "ARTIFACTS",
    "clock_at",
    "deploy_after_validation",
    "now_utc",
    "prepare_for_validation",
    "validate",
]
