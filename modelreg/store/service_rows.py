"""Rows the registry service keeps beside the registry: accepted request-signature nonces and the security log.

Neither is a registry state change, so neither goes through the unit of work nor the audit chain: a flood of
refused requests must not bloat the chain, and a replay check must not need a user with a role. Each
function commits its own short transaction.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from modelreg import clock
from modelreg.domain.entities import User
from modelreg.store import repo
from modelreg.store.tables import (
    AuditEventRow,
    SecurityEventRow,
    ServiceNonceRow,
    UserRow,
    WebSessionRow,
)


def claim_nonce(engine: Engine, key_id: str, nonce: str, created: datetime, expires_at: datetime) -> bool:
    """Record a nonce as used; False if this key already used it (a replay). Expired nonces are dropped on
    the way: the signature window refuses their requests anyway."""
    with Session(engine) as session:
        session.execute(delete(ServiceNonceRow).where(ServiceNonceRow.expires_at < clock.now()))
        session.add(ServiceNonceRow(key_id=key_id, nonce=nonce, created=created, expires_at=expires_at))
        try:
            session.commit()
        except IntegrityError:
            session.rollback()
            return False
    return True


def record_security_event(
    engine: Engine,
    *,
    kind: str,
    code: str,
    client: str | None,
    subject: str | None,
    method: str | None,
    path: str | None,
    detail: str | None,
) -> None:
    with Session(engine) as session:
        session.add(
            SecurityEventRow(
                at=clock.now(),
                kind=kind,
                code=code,
                client=(client or "")[:100] or None,
                subject=(subject or "")[:200] or None,
                method=method,
                path=(path or "")[:1000] or None,
                detail=(detail or "")[:2000] or None,
            )
        )
        session.commit()


def recent_failures(engine: Engine, client: str, since: datetime) -> tuple[int, datetime | None]:
    """Authentication failures from ``client`` in the security log since ``since``: how many, and the oldest.
    Every worker and process of the service writes the same log, so a limit read from it is shared."""
    with Session(engine) as session:
        count, oldest = session.execute(
            select(func.count(SecurityEventRow.id), func.min(SecurityEventRow.at)).where(
                SecurityEventRow.at >= since,
                SecurityEventRow.kind == "authentication",
                SecurityEventRow.client == client[:100],
            )
        ).one()
    return int(count or 0), (clock.to_utc(oldest) if oldest is not None else None)


def security_events(engine: Engine, limit: int = 1000) -> list[dict]:
    with Session(engine) as session:
        rows = session.execute(select(SecurityEventRow).order_by(SecurityEventRow.id).limit(limit)).scalars()
        return [
            {
                "id": r.id,
                "at": clock.isoformat(clock.to_utc(r.at)),
                "kind": r.kind,
                "code": r.code,
                "client": r.client,
                "subject": r.subject,
                "method": r.method,
                "path": r.path,
                "detail": r.detail,
            }
            for r in rows
        ]


def user_named(engine: Engine, name: str) -> User | None:
    with Session(engine) as session:
        return repo.get_user(session, name)


def user_by_key_id(engine: Engine, key_id: str) -> User | None:
    """The user whose registered key has this id (key ids are unique per registered key)."""
    with Session(engine) as session:
        name = session.execute(select(UserRow.name).where(UserRow.key_id == key_id)).scalars().first()
        return repo.get_user(session, name) if name is not None else None


def version_revision(session: Session, model: str, version: str) -> int:
    """The newest audit event about this version: approvals, evaluations and waivers change what a version's
    gate sees without touching its row, so the service's ETag includes this as well as the row version."""
    seq = session.execute(
        select(func.max(AuditEventRow.seq)).where(
            AuditEventRow.model == model, AuditEventRow.version == version
        )
    ).scalar()
    return -1 if seq is None else int(seq)


# -- the web view's sessions ---------------------------------------------------------------------------------


def _sid_hash(sid: str) -> str:
    import hashlib

    return hashlib.sha256(sid.encode("utf-8")).hexdigest()


def add_web_session(
    engine: Engine, sid: str, *, subject: str, roles: list[str], csrf: str, expires_at: datetime
) -> None:
    """Store a session (by the SHA-256 of its id); expired ones are dropped on the way."""
    with Session(engine) as session:
        session.execute(delete(WebSessionRow).where(WebSessionRow.expires_at < clock.now()))
        session.add(
            WebSessionRow(
                sid_sha256=_sid_hash(sid),
                subject=subject,
                roles=sorted(roles),
                csrf=csrf,
                created_at=clock.now(),
                expires_at=expires_at,
            )
        )
        session.commit()


def web_session(engine: Engine, sid: str) -> dict | None:
    """The live session with this id, or None (unknown, logged out or expired)."""
    with Session(engine) as session:
        row = session.execute(
            select(WebSessionRow).where(WebSessionRow.sid_sha256 == _sid_hash(sid))
        ).scalar_one_or_none()
        if row is None or clock.to_utc(row.expires_at) <= clock.now():
            return None
        return {
            "subject": row.subject,
            "roles": list(row.roles),
            "csrf": row.csrf,
            "expires_at": clock.to_utc(row.expires_at),
        }


def drop_web_session(engine: Engine, sid: str) -> None:
    with Session(engine) as session:
        session.execute(delete(WebSessionRow).where(WebSessionRow.sid_sha256 == _sid_hash(sid)))
        session.commit()
