"""The audit log in the database: append (in the caller's transaction) and verify.

Canonical event form (RFC 8785 JSON, UTF-8) — these bytes are the event; the table's other columns are copies
for querying and are checked against them on verification:

    {"actor": ..., "at": "YYYY-MM-DDTHH:MM:SS.ffffffZ", "db_role": ..., "event": ..., "model": ...,
     "payload": {...}, "seq": n, "v": 1, "version": ...}

Leaf i of the RFC 6962 Merkle tree is SHA-256(0x00 ‖ canonical bytes of the event with seq i). Each row also
stores the tree root after its append; ``audit_state`` holds the compact frontier so an append costs O(log n).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Iterator
from datetime import datetime

from sqlalchemy import Connection, Engine, select, text
from sqlalchemy.orm import Session

from modelreg import clock
from modelreg.audit.canonical import canonical_json
from modelreg.domain.entities import AuditEvent, VerifyReport
from modelreg.domain.events import EVENTS
from modelreg.store.tables import AuditEventRow, AuditStateRow

CANONICAL_VERSION = 1
_sha256 = hashlib.sha256


def _leaf(data: bytes) -> bytes:
    return _sha256(b"\x00" + data).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return _sha256(b"\x01" + left + right).digest()


def frontier_push(frontier: list[bytes], size: int, leaf: bytes) -> list[bytes]:
    """Add a leaf to the compact range of perfect subtrees (largest first) of a tree of ``size`` leaves."""
    frontier = [*frontier, leaf]
    n = size
    while n & 1:  # each trailing 1-bit of the old size is a subtree of equal height to merge with
        right = frontier.pop()
        left = frontier.pop()
        frontier.append(_node(left, right))
        n >>= 1
    return frontier


def frontier_root(frontier: list[bytes]) -> bytes:
    if not frontier:
        return _sha256(b"").digest()
    root = frontier[-1]
    for h in reversed(frontier[:-1]):
        root = _node(h, root)
    return root


def event_bytes(
    *,
    seq: int,
    event: str,
    actor: str,
    at: datetime,
    model: str | None,
    version: str | None,
    payload: dict,
    db_role: str | None,
) -> bytes:
    return canonical_json(
        {
            "v": CANONICAL_VERSION,
            "seq": seq,
            "event": event,
            "actor": actor,
            "db_role": db_role,
            "at": clock.isoformat(at),
            "model": model,
            "version": version,
            "payload": payload,
        }
    )


def append_event(
    session: Session,
    event: str,
    *,
    actor: str,
    model: str | None = None,
    version: str | None = None,
    payload: dict | None = None,
    db_role: str | None = None,
    at: datetime | None = None,
) -> AuditEvent:
    """Append one event inside the caller's write transaction (which holds the write lock)."""
    if event not in EVENTS:
        raise ValueError(f"unknown audit event {event!r}; add it to modelreg.domain.events")
    at = at or clock.now()
    state = session.get(AuditStateRow, 1, with_for_update=True)
    if state is None:
        raise RuntimeError("audit_state row missing: the schema is damaged")
    seq = state.size
    data = event_bytes(
        seq=seq,
        event=event,
        actor=actor,
        at=at,
        model=model,
        version=version,
        payload=payload or {},
        db_role=db_role,
    )
    leaf = _leaf(data)
    frontier = frontier_push([bytes.fromhex(h) for h in state.frontier], seq, leaf)
    root = frontier_root(frontier)
    session.add(
        AuditEventRow(
            seq=seq,
            event=event,
            actor=actor,
            db_role=db_role,
            at=at,
            model=model,
            version=version,
            canonical=data,
            leaf_hash=leaf,
            root_hash=root,
        )
    )
    state.size = seq + 1
    state.frontier = [h.hex() for h in frontier]
    state.root_hash = root
    session.flush()
    return AuditEvent(
        seq=seq,
        event=event,
        actor=actor,
        at=at,
        model=model,
        version=version,
        payload=payload or {},
        db_role=db_role,
        leaf_hash=leaf.hex(),
        root_hash=root.hex(),
    )


def decode(row_canonical: bytes, leaf_hash: bytes, root_hash: bytes) -> AuditEvent:
    d = json.loads(row_canonical)
    return AuditEvent(
        seq=d["seq"],
        event=d["event"],
        actor=d["actor"],
        at=clock.parse(d["at"]),
        model=d["model"],
        version=d["version"],
        payload=d["payload"],
        db_role=d["db_role"],
        leaf_hash=bytes(leaf_hash).hex(),
        root_hash=bytes(root_hash).hex(),
    )


def list_events(
    session: Session, model: str | None = None, version: str | None = None, *, limit: int | None = None
) -> list[AuditEvent]:
    q = select(AuditEventRow.canonical, AuditEventRow.leaf_hash, AuditEventRow.root_hash).order_by(
        AuditEventRow.seq
    )
    if model is not None:
        q = q.where(AuditEventRow.model == model)
    if version is not None:
        q = q.where(AuditEventRow.version == version)
    if limit is not None:
        q = q.limit(limit)
    return [decode(*row) for row in session.execute(q)]


def state(session: Session) -> tuple[int, bytes]:
    row = session.get(AuditStateRow, 1)
    if row is None:
        raise RuntimeError("audit_state row missing: the schema is damaged")
    return row.size, bytes(row.root_hash)


def iter_rows(source: Engine | Connection, batch: int = 20_000) -> Iterator[tuple]:
    """Stream (seq, canonical, leaf_hash, root_hash, event, model, version) in seq order, through the raw
    driver cursor: verification reads every row and the ORM would cost more than the hashing. Given a
    connection, the rows come from its current transaction (the caller's snapshot)."""
    if isinstance(source, Engine):
        with source.connect() as conn:
            yield from iter_rows(conn, batch)
        return
    sql = "SELECT seq, canonical, leaf_hash, root_hash, event, model, version FROM audit_events ORDER BY seq"
    # The DBAPI cursor of the caller's connection (same transaction): SQLAlchemy's Row objects cost more than
    # the hashing when every one of a million rows is read (148k rows/s through Result vs several times that).
    dbapi = source.connection.dbapi_connection
    if source.dialect.name == "postgresql":
        cursor = dbapi.cursor(name="modelreg_audit_verify")  # server-side: bounded memory
        cursor.itersize = batch
    else:
        cursor = dbapi.cursor()
    try:
        cursor.execute(sql)
        while True:
            rows = cursor.fetchmany(batch)
            if not rows:
                return
            yield from rows
    finally:
        cursor.close()


class AuditStateMissing(RuntimeError):
    """The recorded state of the log is gone: verification fails, it does not crash."""


def verify_snapshot(engine: Engine) -> VerifyReport:
    """Verify the rows against the recorded state as of one snapshot: events committed by writers while
    the rows are read are not there, instead of looking like rows the state does not account for."""
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():  # SQLite (WAL): the read transaction's snapshot starts at its first SELECT
            row = conn.execute(text("SELECT size, root_hash FROM audit_state WHERE id = 1")).first()
            if row is None:
                raise AuditStateMissing("audit_state row missing: the schema is damaged")
            return verify_rows(iter_rows(conn), state_size=row[0], state_root=bytes(row[1]))


def leaf_hashes(engine: Engine) -> list[bytes]:
    return [bytes(r[2]) for r in iter_rows(engine)]


def _column_fragments(
    cache: dict, event: str, model: str | None, version: str | None, seq: int
) -> tuple[bytes, bytes]:
    """The bytes the canonical form must contain for these column values: ``,"event":E,"model":M,"payload":``
    (keys are sorted, so these follow actor/at/db_role, whose values are strings or null and cannot contain an
    unescaped quote) and the ending ``,"seq":N,"v":1,"version":V}``."""
    key = (event, model, version)
    mid = cache.get(key)
    if mid is None:
        mid = (
            b',"event":' + canonical_json(event) + b',"model":' + canonical_json(model) + b',"payload":',
            b',"v":' + str(CANONICAL_VERSION).encode() + b',"version":' + canonical_json(version) + b"}",
        )
        if len(cache) < 100_000:
            cache[key] = mid
    return mid[0], b',"seq":' + str(seq).encode() + mid[1]


def verify_rows(
    rows: Iterable[tuple], *, state_size: int | None = None, state_root: bytes | None = None
) -> VerifyReport:
    """Recompute every leaf and the tree root; report the first entry that disagrees.

    Checks: seq numbers contiguous from 0 (deletion, insertion, reordering); canonical bytes hash to the stored
    leaf hash and carry the row's seq and index columns (edits); the root of all leaves equals the stored root
    of the last row and ``audit_state`` (edits that re-hash a leaf; truncation of the tail). Only when the final
    root disagrees are the stored per-row roots recomputed, to name the first entry where the log diverges:
    the common case costs about one hash per leaf instead of log2(n) (a 1M-event log verifies ~5x faster).
    """
    started = time.perf_counter()
    frontier: list[bytes] = []
    n = 0
    leaves: list[bytes] = []
    stored_roots: list[bytes] = []
    cache: dict = {}
    sha = _sha256
    for seq, canonical, leaf_hash, root_hash, event, model, version in rows:
        if not all(isinstance(v, bytes | bytearray | memoryview) for v in (canonical, leaf_hash, root_hash)):
            # SQLite's dynamic typing lets an SQL edit (e.g. replace() on the BLOB) leave TEXT behind: judge it, don't crash
            problem = f"event #{seq}: stored as text, not as the bytes that were hashed (edited)"
            return VerifyReport(False, n, frontier_root(frontier).hex(), first_bad_seq=seq, problem=problem)
        canonical = bytes(canonical)
        if seq != n:
            problem = f"expected event #{n} but found #{seq}: an event was deleted, inserted or reordered"
            return VerifyReport(
                False, n, frontier_root(frontier).hex(), first_bad_seq=min(n, seq), problem=problem
            )
        leaf = sha(b"\x00" + canonical).digest()
        if leaf != bytes(leaf_hash):
            return VerifyReport(
                False,
                n,
                frontier_root(frontier).hex(),
                first_bad_seq=n,
                problem=f"event #{n}: content does not match its leaf hash (edited)",
            )
        middle, end = _column_fragments(cache, event, model, version, seq)
        if not canonical.endswith(end) or canonical.find(b',"event":') != canonical.find(middle):
            return VerifyReport(
                False,
                n,
                frontier_root(frontier).hex(),
                first_bad_seq=n,
                problem=f"event #{n}: row columns disagree with the signed-over content (edited or moved)",
            )
        leaves.append(leaf)
        stored_roots.append(bytes(root_hash))
        frontier.append(leaf)
        m = n
        while m & 1:  # merge equal-height subtrees: amortised one node hash per leaf
            r = frontier.pop()
            frontier[-1] = sha(b"\x01" + frontier[-1] + r).digest()
            m >>= 1
        n += 1
    root = frontier_root(frontier)
    elapsed = time.perf_counter() - started
    if n and root != stored_roots[-1]:
        bad = _first_bad_stored_root(leaves, stored_roots)
        return VerifyReport(
            False,
            n,
            root.hex(),
            first_bad_seq=bad,
            problem=f"event #{bad}: stored tree root differs from the recomputed one (log rewritten)",
        )
    if state_size is not None and n > state_size:
        return VerifyReport(
            False,
            n,
            root.hex(),
            first_bad_seq=state_size,
            problem=f"the log holds {n} events but the registry recorded {state_size}: event #{state_size} and later were added outside the registry",
        )
    if state_size is not None and state_size != n:
        return VerifyReport(
            False,
            n,
            root.hex(),
            first_bad_seq=n,
            problem=f"the log holds {n} events but the registry recorded {state_size}: events were removed from the end",
        )
    if state_root is not None and state_root != root:
        return VerifyReport(
            False,
            n,
            root.hex(),
            first_bad_seq=n - 1 if n else 0,
            problem="the log's root differs from the registry's recorded root",
        )
    return VerifyReport(True, n, root.hex(), events_per_second=(n / elapsed) if elapsed > 0 and n else None)


def _first_bad_stored_root(leaves: list[bytes], stored_roots: list[bytes]) -> int:
    """The first row whose stored root is not the root of the prefix ending there (slow path, failure only)."""
    frontier: list[bytes] = []
    for i, leaf in enumerate(leaves):
        frontier = frontier_push(frontier, i, leaf)
        if frontier_root(frontier) != stored_roots[i]:
            return i
    return len(leaves) - 1
