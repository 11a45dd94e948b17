"""The audit log in the database: append (in the caller's transaction) and verify.

Canonical event form (RFC 8785 JSON, UTF-8) — these bytes are the event; the table's other columns are copies
for querying and are checked against them on verification:

    {"actor": ..., "at": "YYYY-MM-DDTHH:MM:SS.ffffffZ", "db_role": ..., "event": ..., "model": ...,
     "payload": {...}, "seq": n, "v": 1, "version": ...}

Leaf i of the RFC 6962 Merkle tree is H(0x00 ‖ canonical bytes of the event with seq i), where H is the log's
tree hash recorded in ``audit_state.tree_hash`` at init: SHA-256, or SM3 for a registry made with
``modelreg init --hash sm3`` (never both in one log). Each row also stores the tree root after its append;
``audit_state`` holds the compact frontier so an append costs O(log n).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime

from sqlalchemy import Connection, Engine, select, text
from sqlalchemy.orm import Session

from modelreg import clock
from modelreg.audit.canonical import canonical_json
from modelreg.audit.event_signing import (
    KEY_EVENTS,
    SIGNING_KEY_EVENT,
    EventSigner,
    KeyChain,
    key_payload,
    verify_event,
)
from modelreg.domain.entities import AuditEvent, VerifyReport
from modelreg.domain.events import EVENTS
from modelreg.store.tables import AuditEventRow, AuditStateRow
from modelreg.suites import hash_constructor

# v1: the original format (unsigned). v2: the same fields, signed by the writer (see audit/event_signing.py).
CANONICAL_VERSION = 2
UNSIGNED_VERSION = 1
_sha256 = hashlib.sha256


def _leaf(data: bytes, h=_sha256) -> bytes:
    return h(b"\x00" + data).digest()


def _node(left: bytes, right: bytes, h=_sha256) -> bytes:
    return h(b"\x01" + left + right).digest()


def frontier_push(frontier: list[bytes], size: int, leaf: bytes, tree_hash: str = "sha256") -> list[bytes]:
    """Add a leaf to the compact range of perfect subtrees (largest first) of a tree of ``size`` leaves."""
    h = hash_constructor(tree_hash)
    frontier = [*frontier, leaf]
    n = size
    while n & 1:  # each trailing 1-bit of the old size is a subtree of equal height to merge with
        right = frontier.pop()
        left = frontier.pop()
        frontier.append(_node(left, right, h))
        n >>= 1
    return frontier


def frontier_root(frontier: list[bytes], tree_hash: str = "sha256") -> bytes:
    h = hash_constructor(tree_hash)
    if not frontier:
        return h(b"").digest()
    root = frontier[-1]
    for left in reversed(frontier[:-1]):
        root = _node(left, root, h)
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
    v: int = CANONICAL_VERSION,
) -> bytes:
    return canonical_json(
        {
            "v": v,
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
    signer: EventSigner | None = None,
) -> AuditEvent:
    """Append one event inside the caller's write transaction (which holds the write lock).

    With a ``signer`` the event is format v2 and signed; without, format v1 (unsigned: only for tools that
    build synthetic logs, such as the benchmarks; the registry always signs)."""
    if event not in EVENTS:
        raise ValueError(f"unknown audit event {event!r}; add it to modelreg.domain.events")
    at = at or clock.now()
    state = session.get(AuditStateRow, 1, with_for_update=True)
    if state is None:
        raise RuntimeError("audit_state row missing: the schema is damaged")
    seq = state.size
    tree_hash = state.tree_hash or "sha256"
    if signer is not None and seq > 0 and event not in KEY_EVENTS:
        check_custody(session, seq - 1, signer)
    data = event_bytes(
        seq=seq,
        event=event,
        actor=actor,
        at=at,
        model=model,
        version=version,
        payload=payload or {},
        db_role=db_role,
        v=CANONICAL_VERSION if signer is not None else UNSIGNED_VERSION,
    )
    leaf = _leaf(data, hash_constructor(tree_hash))
    frontier = frontier_push([bytes.fromhex(h) for h in state.frontier], seq, leaf, tree_hash)
    root = frontier_root(frontier, tree_hash)
    signature = signer.sign(seq, leaf, root) if signer is not None else None
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
            signature=signature,
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


def check_custody(session: Session, prev_seq: int, signer: EventSigner) -> None:
    """Refuse to sign a root that covers an event the registry did not write. Without this, an event appended by
    someone without the key would be vouched for by the next legitimate event's signature (it signs the root)."""
    from modelreg.errors import StateDiverges

    row = session.execute(
        select(
            AuditEventRow.canonical, AuditEventRow.leaf_hash, AuditEventRow.root_hash, AuditEventRow.signature
        ).where(AuditEventRow.seq == prev_seq)
    ).first()
    if row is None:
        raise StateDiverges(
            f"registry state diverges from the audit log at #{prev_seq}: the newest event recorded in audit_state is missing"
        )
    canonical, leaf, root, signature = bytes(row[0]), bytes(row[1]), bytes(row[2]), row[3]
    tree_hash, _suite = crypto_settings(session)
    if _leaf(canonical, hash_constructor(tree_hash or "sha256")) != leaf:
        raise StateDiverges(
            f"registry state diverges from the audit log at #{prev_seq}: the event does not match its leaf hash (edited)"
        )
    if _format_version(canonical) == UNSIGNED_VERSION:
        if not signing_enabled(session):
            return  # a log from before signed events: its first signed write introduces the key
        raise StateDiverges(
            f"registry state diverges from the audit log at #{prev_seq}: an unsigned event after signing was enabled "
            "(written by someone without the registry's key); nothing was written"
        )
    if not verify_event(signer.private_key.public_key(), prev_seq, leaf, root, signature):
        raise StateDiverges(
            f"registry state diverges from the audit log at #{prev_seq}: the event is not signed by the registry's "
            f"event key {signer.key_id} (forged); nothing was written"
        )


def signing_enabled(session: Session) -> bool:
    """Has this log introduced an event key (a signed registry.initialized, or an audit.signing_key event)?"""
    if session.execute(
        select(AuditEventRow.seq).where(AuditEventRow.event == SIGNING_KEY_EVENT).limit(1)
    ).first():
        return True
    first = session.execute(select(AuditEventRow.canonical).where(AuditEventRow.seq == 0)).first()
    return first is not None and _format_version(bytes(first[0])) == CANONICAL_VERSION


def _format_version(canonical: bytes) -> int:
    # Keys are sorted in canonical JSON, so "v" sits just before "version", at the end.
    tail = canonical[-400:] if len(canonical) > 400 else canonical
    i = tail.rfind(b',"v":')
    if i < 0:
        return 0
    j = tail.find(b",", i + 5)
    try:
        return int(tail[i + 5 : j])
    except ValueError:
        return 0


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


def latest_event(session: Session, name: str) -> AuditEvent | None:
    """The newest event called ``name`` (read from its canonical bytes, which the Merkle log covers)."""
    q = (
        select(AuditEventRow.canonical, AuditEventRow.leaf_hash, AuditEventRow.root_hash)
        .where(AuditEventRow.event == name)
        .order_by(AuditEventRow.seq.desc())
        .limit(1)
    )
    row = session.execute(q).first()
    if row is None:
        return None
    ev = decode(*row)
    return ev if ev.event == name else None


def state(session: Session) -> tuple[int, bytes]:
    row = session.get(AuditStateRow, 1)
    if row is None:
        raise RuntimeError("audit_state row missing: the schema is damaged")
    return row.size, bytes(row.root_hash)


ROWS_SQL = "SELECT seq, canonical, leaf_hash, root_hash, event, model, version, signature FROM audit_events ORDER BY seq"


def crypto_settings(source: Session | Engine | Connection) -> tuple[str, str]:
    """(tree hash, registry signing suite) recorded at init."""
    sql = text("SELECT tree_hash, signing_suite FROM audit_state WHERE id = 1")
    if isinstance(source, Engine):
        with source.connect() as conn:
            row = conn.execute(sql).first()
    else:
        row = source.execute(sql).first()
    if row is None:
        raise RuntimeError("audit_state row missing: the schema is damaged")
    return row[0], row[1]


def iter_rows(source: Engine | Connection, batch: int = 20_000) -> Iterator[tuple]:
    """Stream (seq, canonical, leaf_hash, root_hash, event, model, version, signature) in seq order, through the raw
    driver cursor: verification reads every row and the ORM would cost more than the hashing. Given a
    connection, the rows come from its current transaction (the caller's snapshot)."""
    if isinstance(source, Engine):
        with source.connect() as conn:
            yield from iter_rows(conn, batch)
        return
    sql = ROWS_SQL
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


def _counted(rows: Iterable[tuple], total: int, say: Callable[[str], None]) -> Iterator[tuple]:
    """The rows unchanged, with a line about every 10% of the log (every 10k to 100k events) for a person
    watching."""
    step = max(min(100_000, total // 10), 10_000)
    for n, row in enumerate(rows, start=1):
        if n % step == 0:
            say(f"verified {n:,} of {total:,} events")
        yield row


def verify_snapshot(engine: Engine, *, progress: Callable[[str], None] | None = None) -> VerifyReport:
    """Verify the rows against the recorded state as of one snapshot: events committed by writers while
    the rows are read are not there, instead of looking like rows the state does not account for."""
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():  # SQLite (WAL): the read transaction's snapshot starts at its first SELECT
            row = conn.execute(
                text("SELECT size, root_hash, tree_hash FROM audit_state WHERE id = 1")
            ).first()
            if row is None:
                raise AuditStateMissing("audit_state row missing: the schema is damaged")
            source = iter_rows(conn)
            rows = source if progress is None else _counted(source, int(row[0]), progress)
            if progress is not None:
                progress(f"recomputing {row[0]:,} leaf hashes and the Merkle root")
            try:
                report = verify_rows(rows, state_size=row[0], state_root=bytes(row[1]), tree_hash=row[2])
            finally:
                # A failed check stops reading early: close the cursor now, while the connection is open.
                source.close()
            if report.ok or not (report.problem or "").endswith(FORGED_SUFFIX):
                return report
            # The newest signature does not cover the log: name the first event whose own signature does not
            # cover its prefix (a rewritten or forged event), reading the same snapshot once more.
            again = iter_rows(conn)
            try:
                first = _first_unsigned_prefix(again, row[2] or "sha256")
            finally:
                again.close()
            if first is None:
                return report
            seq, kid = first
            from dataclasses import replace

            return replace(
                report,
                first_bad_seq=seq,
                problem=f"event #{seq} is not signed by the registry's event key {kid} (forged or rewritten)",
            )


FORGED_SUFFIX = "(forged)"


def _first_unsigned_prefix(rows: Iterable[tuple], tree_hash: str) -> tuple[int, str] | None:
    """Slow path, failures only: the first signed event whose signature does not verify against the root of the
    log up to it (recomputed), with the event key in force there."""
    h = hash_constructor(tree_hash)
    chain = KeyChain([])
    frontier: list[bytes] = []
    for seq, canonical, _leaf_hash, _root, event, _model, _version, *rest in rows:
        canonical = bytes(canonical)
        leaf = h(b"\x00" + canonical).digest()
        frontier = frontier_push(frontier, seq, leaf, tree_hash)
        if _format_version(canonical) != CANONICAL_VERSION:
            continue
        if event in KEY_EVENTS:
            introduced = key_payload(event, json.loads(canonical)["payload"])
            if introduced is not None and chain.add(seq, introduced):
                return seq, str(introduced.get("key_id"))
        current = chain.key_at(seq)
        if current is None:
            continue
        if not verify_event(
            current[2], seq, leaf, frontier_root(frontier, tree_hash), rest[0] if rest else None
        ):
            return seq, current[1]
    return None


_frontier_root = frontier_root


def leaf_hashes(engine: Engine) -> list[bytes]:
    return [bytes(r[2]) for r in iter_rows(engine)]


def _column_fragments(
    cache: dict, event: str, model: str | None, version: str | None, seq: int
) -> tuple[bytes, bytes, bytes]:
    """The bytes the canonical form must contain for these column values: ``,"event":E,"model":M,"payload":``
    (keys are sorted, so these follow actor/at/db_role, whose values are strings or null and cannot contain an
    unescaped quote) and the ending ``,"seq":N,"v":2,"version":V}`` (or ``"v":1`` for an unsigned event)."""
    key = (event, model, version)
    mid = cache.get(key)
    if mid is None:
        tail = b',"version":' + canonical_json(version) + b"}"
        mid = (
            b',"event":' + canonical_json(event) + b',"model":' + canonical_json(model) + b',"payload":',
            b',"v":' + str(CANONICAL_VERSION).encode() + tail,
            b',"v":' + str(UNSIGNED_VERSION).encode() + tail,
        )
        if len(cache) < 100_000:
            cache[key] = mid
    prefix = b',"seq":' + str(seq).encode()
    return mid[0], prefix + mid[1], prefix + mid[2]


def verify_rows(
    rows: Iterable[tuple],
    *,
    state_size: int | None = None,
    state_root: bytes | None = None,
    tree_hash: str = "sha256",
) -> VerifyReport:
    """Recompute every leaf and the tree root, and check the writers' signatures; report the first entry that
    disagrees.

    Checks: seq numbers contiguous from 0 (deletion, insertion, reordering); canonical bytes hash to the stored
    leaf hash and carry the row's seq and index columns (edits); the root of all leaves equals the stored root
    of the last row and ``audit_state`` (edits that re-hash a leaf; truncation of the tail). Only when the final
    root disagrees are the stored per-row roots recomputed, to name the first entry where the log diverges:
    the common case costs about one hash per leaf instead of log2(n) (a 1M-event log verifies ~5x faster).

    Signatures (format v2): the newest event's signature covers the recomputed root, so it vouches for every
    leaf; each event key is checked where it takes over (the last event of the old key, the rotation event
    itself); the registry refuses to write after an event it cannot verify (``_check_custody``), so a forged
    event cannot hide behind a later signed one. An unsigned (v1) event after the first signed one fails:
    it was written by someone without the key. Events from before signing are counted, not failed.
    """
    started = time.perf_counter()
    frontier: list[bytes] = []
    n = 0
    leaves: list[bytes] = []
    stored_roots: list[bytes] = []
    cache: dict = {}
    sha = hash_constructor(tree_hash)

    def frontier_root(frontier: list[bytes]) -> bytes:  # this log's hash, not the SHA-256 default
        return _frontier_root(frontier, tree_hash)

    def _fail(n: int, frontier: list[bytes], seq: int | None, problem: str) -> VerifyReport:
        return VerifyReport(False, n, frontier_root(frontier).hex(), first_bad_seq=seq, problem=problem)

    chain = KeyChain([])
    signed_from: int | None = None
    last_signature: str | None = None
    previous_signature: str | None = None
    last_format = 0
    for seq, canonical, leaf_hash, root_hash, event, model, version, *rest in rows:
        if not all(isinstance(v, bytes | bytearray | memoryview) for v in (canonical, leaf_hash, root_hash)):
            # SQLite's dynamic typing lets an SQL edit (e.g. replace() on the BLOB) leave TEXT behind: judge it, don't crash
            return _fail(
                n, frontier, seq, f"event #{seq}: stored as text, not as the bytes that were hashed (edited)"
            )
        canonical = bytes(canonical)
        if seq != n:
            return _fail(
                n,
                frontier,
                min(n, seq),
                f"expected event #{n} but found #{seq}: an event was deleted, inserted or reordered",
            )
        leaf = sha(b"\x00" + canonical).digest()
        if leaf != bytes(leaf_hash):
            return _fail(n, frontier, n, f"event #{n}: content does not match its leaf hash (edited)")
        middle, end_signed, end_unsigned = _column_fragments(cache, event, model, version, seq)
        if canonical.endswith(end_signed):
            last_format = CANONICAL_VERSION
        elif canonical.endswith(end_unsigned):
            last_format = UNSIGNED_VERSION
        else:
            last_format = 0
        if not last_format or canonical.find(b',"event":') != canonical.find(middle):
            return _fail(
                n,
                frontier,
                n,
                f"event #{n}: row columns disagree with the signed-over content (edited or moved)",
            )
        last_signature = rest[0] if rest else None
        if last_format == UNSIGNED_VERSION and signed_from is not None:
            return _fail(
                n,
                frontier,
                n,
                f"event #{n} is unsigned, but the log's events are signed since #{signed_from}: "
                "it was written by someone without the registry's event key",
            )
        introduced = (
            key_payload(event, json.loads(canonical)["payload"])
            if event in KEY_EVENTS and last_format == CANONICAL_VERSION
            else None
        )
        if last_format == CANONICAL_VERSION and signed_from is None:
            if introduced is None:
                return _fail(
                    n, frontier, n, f"event #{n} is signed but no event key was introduced before it"
                )
            signed_from = n
        rotation_from = None
        if introduced is not None:
            if chain.keys and n > 0:
                # The old key's last event, checked against the root before this one: the hand-over point.
                rotation_from = (chain.keys[-1], n - 1, frontier_root(frontier), previous_signature)
            problem = chain.add(n, introduced)
            if problem:
                return _fail(n, frontier, n, problem)
        leaves.append(leaf)
        stored_roots.append(bytes(root_hash))
        frontier.append(leaf)
        m = n
        while m & 1:  # merge equal-height subtrees: amortised one node hash per leaf
            r = frontier.pop()
            frontier[-1] = sha(b"\x01" + frontier[-1] + r).digest()
            m >>= 1
        if introduced is not None:
            _, kid, public = chain.keys[-1]
            if not verify_event(public, n, leaf, frontier_root(frontier), last_signature):
                return _fail(
                    n,
                    frontier,
                    n,
                    f"event #{n}: the key introduction is not signed by the key {kid} it introduces",
                )
            if rotation_from is not None:
                (_, old_kid, old_public), old_seq, old_root, old_sig = rotation_from
                if not verify_event(old_public, old_seq, leaves[old_seq], old_root, old_sig):
                    return _fail(
                        n,
                        frontier,
                        old_seq,
                        f"event #{old_seq} is not signed by the event key {old_kid} in force then (forged)",
                    )
        previous_signature = last_signature
        n += 1
    root = frontier_root(frontier)
    elapsed = time.perf_counter() - started
    if n and root != stored_roots[-1]:
        bad = _first_bad_stored_root(leaves, stored_roots, tree_hash)
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
    signatures = {
        "signed_from": signed_from,
        "unsigned_events": n if signed_from is None else signed_from,
        "event_keys": [kid for _, kid, _ in chain.keys],
    }
    if signed_from is not None and n:
        _, kid, public = chain.keys[-1]
        if not verify_event(public, n - 1, leaves[-1], root, last_signature):
            return VerifyReport(
                False,
                n,
                root.hex(),
                first_bad_seq=n - 1,
                problem=f"event #{n - 1} is not signed by the registry's event key {kid} (forged)",
                signatures=signatures,
            )
    return VerifyReport(
        True,
        n,
        root.hex(),
        events_per_second=(n / elapsed) if elapsed > 0 and n else None,
        signatures=signatures,
    )


def _first_bad_stored_root(leaves: list[bytes], stored_roots: list[bytes], tree_hash: str = "sha256") -> int:
    """The first row whose stored root is not the root of the prefix ending there (slow path, failure only)."""
    frontier: list[bytes] = []
    for i, leaf in enumerate(leaves):
        frontier = frontier_push(frontier, i, leaf, tree_hash)
        if frontier_root(frontier, tree_hash) != stored_roots[i]:
            return i
    return len(leaves) - 1
