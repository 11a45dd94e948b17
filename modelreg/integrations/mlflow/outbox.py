"""Drain the MLflow outbox: project the registry's committed state (stage tag, alias) onto MLflow.

Runs after the registry transaction that queued the work committed, and from the next command when a crash
left rows behind. It holds the registry's write lock (``BEGIN IMMEDIATE`` / the ``audit_state`` row lock)
while it reads the state and writes MLflow, so no registry change can commit in between: what MLflow shows
is always a state the registry committed. A crash before the rows are marked applied only repeats the same
idempotent writes next time.
"""

from __future__ import annotations

import logging

from modelreg.domain.entities import ModelVersion
from modelreg.domain.stages import Stage
from modelreg.store import outbox, repo
from modelreg.store.engine import read_session, write_session

log = logging.getLogger("modelreg.outbox")


def stage_value(version: ModelVersion) -> str:
    return version.stage.value + (":suspended" if version.suspended else "")


def drain(reg) -> int:
    """Apply every pending outbox row; returns how many were applied."""
    from modelreg.integrations.mlflow.projection import _gateway

    # Look before locking: most commands find nothing queued, and a read-only role (the auditor) must not
    # need the write lock just to read.
    with read_session(reg.engine) as session:
        if not outbox.pending_count(session):
            return 0
    with write_session(reg.engine) as session:
        rows = outbox.pending(session)
        if not rows:
            return 0
        gw = _gateway(reg)
        alias = reg.settings.mlflow_alias
        wanted: dict[str, set[str]] = {}
        for r in rows:
            wanted.setdefault(r.model, set()).add(r.version)
        for model, names in sorted(wanted.items()):
            current = {v.version: v for v in repo.list_versions(session, None, model) if v.model_uri}
            for name in sorted(names):
                if name in current:
                    gw.set_stage_tag(model, name, stage_value(current[name]))
            deployed = next(
                (v.version for v in current.values() if v.stage is Stage.DEPLOY and not v.suspended), None
            )
            if deployed is not None and deployed in names:
                gw.set_alias(model, alias, deployed)
            elif deployed is None or deployed not in names:
                # Only take the alias away from a version this work is about (an alias moved by hand to some
                # other version is a divergence for `sync --check`, not something to overwrite silently).
                pointed = gw.get_alias(model, alias)
                if pointed is not None and pointed in names and pointed != deployed:
                    gw.delete_alias(model, alias)
        outbox.mark_applied(session, [r.id for r in rows])
        return len(rows)


def drain_quietly(reg) -> None:
    """The drainer a registry runs after its commits: the registry change is done whatever MLflow says; a
    failure leaves the rows pending (MLflow behind) for the next command or `sync`, and says so."""
    from sqlalchemy.exc import DBAPIError

    from modelreg.errors import ModelregError

    try:
        drain(reg)
    except ModelregError as exc:
        log.warning(
            "MLflow not updated yet (retried by the next command or `modelreg sync`): %s", exc.message
        )
    except DBAPIError as exc:  # e.g. the read-only auditor role cannot take the write lock: a writer will
        first = str(getattr(exc, "orig", exc)).strip().splitlines()
        log.warning("MLflow outbox left for a writer: %s", first[0] if first else type(exc).__name__)
