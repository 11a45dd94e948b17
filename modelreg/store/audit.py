"""Read-only queries on the audit tables for evidence packs (the Merkle log itself, ``modelreg.audit.log``,
owns appending). Plain values out, no rows."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from modelreg.store.tables import AuditEventRow, AuditStateRow


def tree_state(session: Session) -> tuple[int, bytes] | None:
    state = session.get(AuditStateRow, 1)
    return (int(state.size), bytes(state.root_hash)) if state is not None else None


def last_seq_at(session: Session, cutoff: datetime) -> int | None:
    last = session.execute(select(func.max(AuditEventRow.seq)).where(AuditEventRow.at <= cutoff)).scalar()
    return int(last) if last is not None else None


def root_after(session: Session, seq: int) -> bytes:
    """The tree root recorded with event ``seq`` (the root of the first seq + 1 leaves)."""
    return bytes(
        session.execute(select(AuditEventRow.root_hash).where(AuditEventRow.seq == seq)).scalar_one()
    )


def leaf_hashes_below(session: Session, size: int) -> list[bytes]:
    q = select(AuditEventRow.leaf_hash).where(AuditEventRow.seq < size).order_by(AuditEventRow.seq)
    return [bytes(h) for h in session.execute(q).scalars()]


def version_events(session: Session, model: str, version: str, size: int) -> list[tuple[int, bytes, bytes]]:
    """(seq, canonical bytes, leaf hash) of one version's events below ``size``, in order."""
    q = (
        select(AuditEventRow.seq, AuditEventRow.canonical, AuditEventRow.leaf_hash)
        .where(AuditEventRow.model == model, AuditEventRow.version == version, AuditEventRow.seq < size)
        .order_by(AuditEventRow.seq)
    )
    return [(int(seq), bytes(c), bytes(leaf)) for seq, c, leaf in session.execute(q)]
