"""Replay: derive from the audit log the state the registry's tables must hold, and report every row that
disagrees, is missing, or has no event behind it.

Why: the Merkle log and its signatures prove the *events*; the tables (stage, roles, signed records, …) are what
commands act on, and anyone with write access to the database can edit them without touching the log. Replay
closes that gap: it folds the events, from the first, into the users and their roles and keys, each version's
stage and suspension flag, its registration facts and model card digest, the data sets attached, the
transitions, the signed approvals / attestations / waivers (by record id, key id, control and expiry) and the
evaluations (by id and digest — the digest is recomputed from the evaluation's rows, its monitor results and its
findings, so a finding flipped from fail to pass is seen even when the evaluation row is left alone).
The tracked findings (status, owner, due date, occurrences, remediation, who closed them) are folded from
the ``finding.*`` events, so a deadline moved or a finding closed by a table edit is seen too.

Memory stays bounded on a long log: events are streamed; the high-volume tables (evaluations, signed records,
transitions) are streamed beside them in id order and joined as they go (ids grow in log order because writers
are serialised), so only rows still waiting for their event are held. Users, models, versions and data sets are
held whole: they grow with the registry, not with the log.

``replay(session)`` checks everything; ``replay(session, model=M, version=V)`` folds only the events of that
model and the registry-level ones (users, keys) and checks only the rows of that version and the users: that is
what a guarded command runs before it acts (``guard``), and what an evidence pack records for its version.
Events this module does not know (added by later features) are counted and passed over, never guessed at.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, text
from sqlalchemy.orm import Session

from modelreg import clock

_VERSION_EVENTS_TO = {
    "version.submitted": "validate",
    "version.sent_back": "develop",
    "version.deployed": "deploy",
    "version.retired": "retire",
}
_SIGNED_EVENTS = {"approval.signed", "attestation.signed", "waiver.granted"}
_STREAM_BATCH = 5_000
_FINDING_EVENTS = {
    "finding.opened",
    "finding.updated",
    "finding.assigned",
    "finding.remediation_proposed",
    "finding.closed",
}


@dataclass(frozen=True)
class Divergence:
    """One row that the log does not prove: which table, which key, what is wrong, and the event that should
    have produced it (or set it last)."""

    table: str
    key: str
    problem: str
    seq: int | None = None

    def line(self) -> str:
        at = f" (event #{self.seq})" if self.seq is not None else ""
        return f"{self.table} {self.key}: {self.problem}{at}"

    def to_dict(self) -> dict:
        return {"table": self.table, "key": self.key, "problem": self.problem, "seq": self.seq}


@dataclass
class ReplayReport:
    ok: bool
    events: int
    divergences: list[Divergence] = field(default_factory=list)
    more: int = 0  # divergences beyond the ones listed
    skipped_events: dict[str, int] = field(
        default_factory=dict
    )  # event names replay does not derive state from
    scope: dict | None = None
    seconds: float = 0.0

    @property
    def events_per_second(self) -> float | None:
        return self.events / self.seconds if self.seconds > 0 and self.events else None

    def first_line(self) -> str:
        if self.ok:
            return f"tables agree with the audit log ({self.events} events replayed)"
        first = self.divergences[0]
        total = len(self.divergences) + self.more
        return f"registry state diverges from the audit log at {first.line()}" + (
            f" (+{total - 1} more)" if total > 1 else ""
        )

    def to_dict(self) -> dict:
        return {
            "ok": self.ok,
            "events": self.events,
            "divergences": [d.to_dict() for d in self.divergences],
            "more_divergences": self.more,
            "skipped_events": dict(sorted(self.skipped_events.items())),
            "scope": self.scope,
            "seconds": round(self.seconds, 4),
            "events_per_second": round(self.events_per_second) if self.events_per_second else None,
        }


class _Collector:
    def __init__(self, limit: int) -> None:
        self.items: list[Divergence] = []
        self.more = 0
        self.limit = limit

    def add(self, table: str, key: str, problem: str, seq: int | None = None) -> None:
        if len(self.items) < self.limit:
            self.items.append(Divergence(table, key, problem, seq))
        else:
            self.more += 1


# -- streaming helpers ------------------------------------------------------------------------------


def _cursor_rows(conn: Connection, sql: str, params: dict | None = None) -> Iterator[tuple]:
    """Rows of one query through the driver's own cursor (named, server-side on PostgreSQL: bounded memory),
    so several streams can be read side by side in the caller's transaction. The DBAPI is used directly
    because SQLAlchemy's streaming options, set through a session's connection, stay on that connection and
    would turn the session's later INSERTs into cursor declarations."""
    dbapi = conn.connection.dbapi_connection
    params = dict(params or {})
    if conn.dialect.name == "postgresql":
        for name in params:
            sql = sql.replace(f":{name}", f"%({name})s")
        cursor = dbapi.cursor(name=f"modelreg_replay_{next(_cursor_ids)}")
        cursor.itersize = _STREAM_BATCH
    else:
        cursor = dbapi.cursor()
    try:
        cursor.execute(sql, params)
        while True:
            batch = cursor.fetchmany(_STREAM_BATCH)
            if not batch:
                return
            yield from batch
    finally:
        cursor.close()


_cursor_ids = itertools.count(1)


class _OrderedJoin:
    """Expected items (from events) against table rows streamed in key order. Because writers are serialised,
    both sides arrive in increasing key order, and each side waits only for rows the other has not reached."""

    def __init__(
        self,
        table: str,
        rows: Iterator[tuple[Any, Any]],
        compare: Callable[[Any, Any, Any, int], None],
        out: _Collector,
        describe: Callable[[Any], str] = str,
    ) -> None:
        self.table = table
        self.rows = rows
        self.compare = compare
        self.out = out
        self.describe = describe
        self.waiting_rows: dict[Any, Any] = {}
        self.waiting_expected: dict[Any, tuple[Any, int]] = {}
        self._head: tuple[Any, Any] | None = None
        self._done = False
        self._advance()

    def _advance(self) -> None:
        try:
            self._head = next(self.rows)
        except StopIteration:
            self._head, self._done = None, True

    def expect(self, key: Any, expected: Any, seq: int) -> None:
        while self._head is not None and self._head[0] <= key:
            rkey, value = self._head
            if rkey == key:
                self.compare(key, expected, value, seq)
                self._advance()
                return
            pending = self.waiting_expected.pop(rkey, None)
            if pending is not None:
                self.compare(rkey, pending[0], value, pending[1])
            else:
                self.waiting_rows[rkey] = value
            self._advance()
        value = self.waiting_rows.pop(key, None)
        if value is not None:
            self.compare(key, expected, value, seq)
        else:
            self.waiting_expected[key] = (expected, seq)

    def finish(self) -> None:
        while self._head is not None:
            rkey, value = self._head
            pending = self.waiting_expected.pop(rkey, None)
            if pending is not None:
                self.compare(rkey, pending[0], value, pending[1])
            else:
                self.waiting_rows[rkey] = value
            self._advance()
        for key, (_, seq) in sorted(self.waiting_expected.items(), key=lambda kv: kv[1][1]):
            self.out.add(
                self.table, self.describe(key), "missing: the log records it but the table has no row", seq
            )
        for key in sorted(self.waiting_rows, key=str):
            self.out.add(self.table, self.describe(key), "row has no audit event behind it")


# -- the fold -----------------------------------------------------------------------------------------


def _digest_of(obj: Any) -> str:
    # The same digest the governance layer records (canonical JSON, with its fallback for odd values).
    from modelreg.governance.runner import digest_of

    return digest_of(obj)


def card_digest(card: dict | None) -> str:
    from modelreg.audit.canonical import canonical_json

    return hashlib.sha256(canonical_json(dict(card or {}))).hexdigest()


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = clock.parse(value)
    return clock.isoformat(value)


def _as_json(value: Any) -> Any:
    # JSON columns come back as text from the raw SQLite cursor and as objects from psycopg.
    if isinstance(value, (str, bytes, bytearray)):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def replay(
    source: Session | Connection | Engine,
    *,
    model: str | None = None,
    version: str | None = None,
    users_only: bool = False,
    limit: int = 200,
) -> ReplayReport:
    """Replay the log (whole; or scoped to one model's events plus the registry-level ones; or, with
    ``users_only``, the registry-level events and the users table) and check the tables against it, in one
    snapshot."""
    if isinstance(source, Engine):
        with source.connect() as conn:
            if source.dialect.name == "postgresql":
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                return replay(conn, model=model, version=version, users_only=users_only, limit=limit)
    conn = source.connection() if isinstance(source, Session) else source
    return _Replay(conn, model, None if version is None else str(version), limit, users_only).run()


class _Replay:
    def __init__(
        self, conn: Connection, model: str | None, version: str | None, limit: int, users_only: bool = False
    ) -> None:
        self.users_only = users_only
        self.conn = conn
        self.model = model
        self.version = version
        self.out = _Collector(limit)
        self.users: dict[str, dict] = {}
        self.models: dict[str, dict] = {}
        self.versions: dict[tuple[str, str], dict] = {}
        self.datasets: dict[tuple, list[int]] = {}
        self.skipped: dict[str, int] = {}
        self.findings: dict[int, dict] = {}
        self.version_names: dict[int, tuple[str, str]] = {}

    # which rows are in scope
    def _in_scope(self, mv: tuple[str, str] | None) -> bool:
        if self.model is None:
            return True
        if mv is None or mv[0] != self.model:
            return False
        return self.version is None or mv[1] == self.version

    def _version_filter(self) -> tuple[str, dict]:
        if self.model is None:
            return "", {}
        sql = " AND v.id IN (SELECT v2.id FROM model_versions v2 JOIN models m2 ON m2.id = v2.model_id WHERE m2.name = :m"
        params: dict[str, Any] = {"m": self.model}
        if self.version is not None:
            sql += " AND v2.version = :v"
            params["v"] = self.version
        return sql + ")", params

    def run(self) -> ReplayReport:
        if self.users_only:
            return self._run_users()
        started = time.perf_counter()
        conn = self.conn
        for vid, name, ver in conn.execute(
            text(
                "SELECT v.id, m.name, v.version FROM model_versions v JOIN models m ON m.id = v.model_id"
                + (" WHERE m.name = :m" if self.model is not None else "")
            ),
            {"m": self.model} if self.model is not None else {},
        ):
            self.version_names[int(vid)] = (name, ver)
        vf, vparams = self._version_filter()
        evaluations = _OrderedJoin(
            "evaluations",
            self._evaluation_rows(vf, vparams),
            self._compare_evaluation,
            self.out,
            lambda k: f"#{k}",
        )
        signed = _OrderedJoin(
            "signed_records",
            (
                (int(r[0]), r[1:])
                for r in _cursor_rows(
                    conn,
                    "SELECT s.id, s.version_id, s.kind, s.role, s.control_id, s.actor, s.signature, s.until "
                    "FROM signed_records s JOIN model_versions v ON v.id = s.version_id WHERE 1=1"
                    + vf
                    + " ORDER BY s.id",
                    vparams,
                )
            ),
            self._compare_signed,
            self.out,
            lambda k: f"#{k}",
        )
        transitions = _OrderedJoin(
            "transitions",
            self._transition_groups(vf, vparams),
            self._compare_transitions,
            self.out,
            lambda k: f"of event #{k}",
        )
        where, params = "", {}
        if self.model is not None:
            where, params = " WHERE model = :m OR model IS NULL", {"m": self.model}
        n = 0
        for seq, canonical in _cursor_rows(
            conn, "SELECT seq, canonical FROM audit_events" + where + " ORDER BY seq", params
        ):
            n += 1
            d = json.loads(bytes(canonical))
            try:
                self._fold(int(seq), d, evaluations, signed, transitions)
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                # a payload the registry never writes: name it, never crash on it
                self.out.add(
                    "audit_events",
                    f"#{seq}",
                    f"{d.get('event')} event with a malformed payload ({exc!r})",
                    int(seq),
                )
        evaluations.finish()
        signed.finish()
        transitions.finish()
        self._check_users()
        self._check_models_and_versions()
        self._check_datasets(vf, vparams)
        self._check_findings(vf, vparams)
        return ReplayReport(
            ok=not self.out.items,
            events=n,
            divergences=self.out.items,
            more=self.out.more,
            skipped_events=self.skipped,
            scope=None if self.model is None else {"model": self.model, "version": self.version},
            seconds=time.perf_counter() - started,
        )

    def _run_users(self) -> ReplayReport:
        started = time.perf_counter()
        n = 0
        for seq, canonical in _cursor_rows(
            self.conn,
            "SELECT seq, canonical FROM audit_events "
            "WHERE event IN ('user.added', 'user.key_registered', 'user.roles_changed') ORDER BY seq",
        ):
            n += 1
            d = json.loads(bytes(canonical))
            if d.get("model") is None:
                self._fold(int(seq), d, None, None, None)  # type: ignore[arg-type]
        self._check_users()
        return ReplayReport(
            ok=not self.out.items,
            events=n,
            divergences=self.out.items,
            more=self.out.more,
            scope={"users": True},
            seconds=time.perf_counter() - started,
        )

    # -- events --------------------------------------------------------------------------------------
    def _fold(self, seq: int, d: dict, evaluations: _OrderedJoin, signed: _OrderedJoin, transitions) -> None:
        event, p = d["event"], d.get("payload") or {}
        mv = (d["model"], d["version"]) if d.get("model") is not None else None
        if event == "user.added":
            self.users[p["user"]] = {
                "roles": sorted(p.get("roles") or []),
                "key_id": p.get("key_id"),
                "seq": seq,
            }
        elif event == "user.roles_changed":
            u = self.users.setdefault(p["user"], {"key_id": None, "seq": seq})
            u["roles"], u["seq"] = sorted(p.get("roles") or []), seq
        elif event == "user.key_registered":
            u = self.users.setdefault(p["user"], {"roles": None, "seq": seq})
            u["key_id"], u["seq"] = p.get("key_id"), seq
        elif event == "version.registered" and mv:
            self.models.setdefault(
                mv[0],
                {
                    "owner": p.get("owner"),
                    "risk_tier": p.get("risk_tier"),
                    "purpose": p.get("purpose"),
                    "business_line": p.get("business_line"),
                    "seq": seq,
                },
            )
            self.versions[mv] = {
                "stage": "develop",
                "suspended": False,
                "mlflow_run_id": p.get("mlflow_run_id"),
                "model_uri": p.get("model_uri"),
                "artifact_digest": p.get("artifact_digest"),
                "card_digest": p.get("card_digest"),
                "seq": seq,
            }
        elif event == "version.card_updated" and mv:
            v = self._version(mv, seq)
            v["card_digest"], v["seq"] = p.get("card_digest"), seq
        elif event == "version.data_attached" and mv:
            if self._in_scope(mv):
                key = (mv, p.get("role"), p.get("name"), p.get("digest"), int(p.get("rows") or 0))
                self.datasets.setdefault(key, []).append(seq)
        elif event in _VERSION_EVENTS_TO and mv:
            moves = [(mv, p.get("from"), p.get("to") or _VERSION_EVENTS_TO[event])]
            replaced = p.get("replaced")
            if isinstance(replaced, dict) and replaced.get("version") is not None:
                rmv = (mv[0], str(replaced["version"]))
                moves.insert(0, (rmv, self._version(rmv, seq).get("stage"), replaced.get("to")))
            for which, _source, target in moves:
                v = self._version(which, seq)
                v["stage"], v["seq"] = target, seq
                if target != "deploy":
                    v["suspended"] = False
            if any(self._in_scope(m) for m, _, _ in moves):
                transitions.expect(seq, sorted((m, s, t) for m, s, t in moves if self._in_scope(m)), seq)
        elif event in ("version.suspended", "version.resumed") and mv:
            v = self._version(mv, seq)
            v["suspended"], v["seq"] = event == "version.suspended", seq
            if self._in_scope(mv):
                transitions.expect(seq, [(mv, v["stage"], v["stage"])], seq)
        elif event == "evaluation.recorded" and mv:
            if self._in_scope(mv):
                evaluations.expect(int(p["evaluation_id"]), (mv, p), seq)
        elif event in _SIGNED_EVENTS and mv:
            if self._in_scope(mv):
                signed.expect(int(p["record_id"]), (mv, event, p, d.get("actor")), seq)
        elif event in _FINDING_EVENTS and mv:
            if self._in_scope(mv):
                self._fold_finding(seq, event, mv, p, d.get("actor"))
                if event == "finding.closed" and p.get("kind") == "accepted":
                    # a finding closed by a signed acceptance: the event proves the acceptance's signed record
                    signed.expect(int(p["record_id"]), (mv, event, p, d.get("actor")), seq)
        elif event in (
            "registry.initialized",
            "audit.checkpoint",
            "audit.signing_key",
            "mlflow.synced",
            "mlflow.ungoverned_checked",
        ):
            pass  # no table state of their own (checkpoints are verified by the Merkle log itself)
        else:
            self.skipped[event] = self.skipped.get(event, 0) + 1

    def _fold_finding(self, seq: int, event: str, mv: tuple[str, str], p: dict, actor: str | None) -> None:
        fid = int(p["finding_id"])
        if event == "finding.opened":
            self.findings[fid] = {
                "mv": mv,
                "control_id": p.get("control_id"),
                "purpose": p.get("purpose"),
                "severity": p.get("severity"),
                "status": p.get("status"),
                "owner": p.get("owner"),
                "due_at": _iso(p.get("due_at")),
                "occurrences": 1,
                "remediation": None,
                "closed_by": None,
                "seq": seq,
            }
            return
        f = self.findings.get(fid)
        if f is None:
            self.out.add(
                "tracked_findings", f"#{fid}", f"the log has {event} for a finding it never opened", seq
            )
            f = self.findings[fid] = {"mv": mv, "_orphan": True}
        f["seq"] = seq
        if p.get("status") is not None:
            f["status"] = p["status"]
        if event == "finding.updated" and p.get("occurrences") is not None:
            f["occurrences"] = int(p["occurrences"])
        elif event == "finding.assigned":
            f["owner"], f["due_at"] = p.get("owner"), _iso(p.get("due_at"))
        elif event == "finding.remediation_proposed":
            f["remediation"] = p.get("remediation")
        elif event == "finding.closed":
            f["closed_by"] = actor

    def _check_findings(self, vf: str, params: dict) -> None:
        """Tracked findings are what the model-risk team's deadlines and the inventory's overdue counts read: a
        finding closed, reassigned or re-dated by a table edit must show, as must one with no event behind it."""
        seen: set[int] = set()
        for (
            fid,
            vid,
            control_id,
            purpose,
            severity,
            status,
            owner,
            due_at,
            occurrences,
            remediation,
            closed_by,
        ) in self.conn.execute(
            text(
                "SELECT f.id, f.version_id, f.control_id, f.purpose, f.severity, f.status, f.owner, f.due_at, "
                "f.occurrences, f.remediation, f.closed_by FROM tracked_findings f "
                "JOIN model_versions v ON v.id = f.version_id WHERE 1=1" + vf + " ORDER BY f.id"
            ),
            params,
        ):
            fid = int(fid)
            seen.add(fid)
            key = f"#{fid}"
            want = self.findings.get(fid)
            if want is None:
                self.out.add("tracked_findings", key, "row has no audit event behind it (never opened)")
                continue
            if want.get("_orphan"):
                continue
            mv = self.version_names.get(int(vid))
            if mv != want["mv"]:
                self.out.add(
                    "tracked_findings",
                    key,
                    f"belongs to {_mv(mv)}, the log opened it for {_mv(want['mv'])}",
                    want["seq"],
                )
                continue
            got = {
                "control_id": control_id,
                "purpose": purpose,
                "severity": severity,
                "status": status,
                "owner": owner,
                "due_at": _iso(due_at),
                "occurrences": int(occurrences or 0),
                "remediation": remediation,
                "closed_by": closed_by,
            }
            for column, value in got.items():
                if value != want.get(column):
                    self.out.add(
                        "tracked_findings",
                        key,
                        f"{column} is {value!r}, the log recorded {want.get(column)!r}",
                        want["seq"],
                    )
        for fid, want in self.findings.items():
            if fid not in seen and not want.get("_orphan"):
                self.out.add(
                    "tracked_findings", f"#{fid}", "missing: the log opened this finding", want["seq"]
                )

    def _version(self, mv: tuple[str, str], seq: int) -> dict:
        v = self.versions.get(mv)
        if v is None:
            # A move of a version whose registration the log does not hold: report it once, keep folding.
            if self._in_scope(mv):
                self.out.add(
                    "model_versions", f"{mv[0]} {mv[1]}", "the log moves a version it never registered", seq
                )
            v = self.versions[mv] = {"stage": None, "suspended": False, "seq": seq, "_orphan": True}
        return v

    # -- streamed tables -------------------------------------------------------------------------------
    def _evaluation_rows(self, vf: str, params: dict) -> Iterator[tuple[int, dict]]:
        conn = self.conn
        evals = _cursor_rows(
            conn,
            "SELECT e.id, e.version_id, e.purpose, e.gate, e.tier, e.policy_id, e.policy_version, e.policy_digest, "
            "e.model_artifact_digest, e.data, e.status, e.digest, e.created_by, e.created_at "
            "FROM evaluations e JOIN model_versions v ON v.id = e.version_id WHERE 1=1"
            + vf
            + " ORDER BY e.id",
            params,
        )
        findings = _Groups(
            _cursor_rows(
                conn,
                "SELECT f.evaluation_id, f.id, f.status, f.detail FROM findings f "
                "JOIN model_versions v ON v.id = f.version_id WHERE 1=1"
                + vf
                + " ORDER BY f.evaluation_id, f.id",
                params,
            )
        )
        results = _Groups(
            _cursor_rows(
                conn,
                "SELECT r.evaluation_id, r.kind, r.result FROM monitor_results r "
                "JOIN evaluations e ON e.id = r.evaluation_id JOIN model_versions v ON v.id = e.version_id "
                "WHERE 1=1" + vf + " ORDER BY r.evaluation_id, r.id",
                params,
            )
        )
        for row in evals:
            eid = int(row[0])
            mv = self.version_names.get(int(row[1]))
            f_rows, r_rows = findings.take(eid), results.take(eid)
            outcomes, flipped = [], []
            for _, fid, status, detail in f_rows:
                detail = _as_json(detail) or {}
                if detail.get("status") != status:
                    flipped.append((fid, status, detail.get("status")))
                outcomes.append({k: v for k, v in detail.items() if k not in ("title_zh", "title_en")})
            content = {
                "model": mv[0] if mv else None,
                "version": mv[1] if mv else None,
                "purpose": row[2],
                "gate": row[3],
                "tier": row[4],
                "policy": {"id": row[5], "version": row[6], "digest": row[7]},
                "model_artifact_digest": row[8],
                "data": _as_json(row[9]),
                "results": {k: _digest_of(_as_json(r)) for _, k, r in sorted(r_rows, key=lambda x: x[1])},
                "outcomes": outcomes,
                "created_by": row[12],
                "created_at": _iso(row[13]),
            }
            yield (
                eid,
                {
                    "mv": mv,
                    "purpose": row[2],
                    "gate": row[3],
                    "policy_digest": row[7],
                    "status": row[10],
                    "digest": row[11],
                    "recomputed": _digest_of(content),
                    "flipped": flipped,
                },
            )

    def _transition_groups(self, vf: str, params: dict) -> Iterator[tuple[int, list]]:
        rows = _cursor_rows(
            self.conn,
            "SELECT t.audit_seq, t.version_id, t.source, t.target FROM transitions t "
            "JOIN model_versions v ON v.id = t.version_id WHERE 1=1" + vf + " ORDER BY t.audit_seq, t.id",
            params,
        )
        current: int | None = None
        group: list = []
        for seq, vid, source, target in rows:
            if current is not None and int(seq) != current:
                yield current, sorted(group)
                group = []
            current = int(seq)
            group.append((self.version_names.get(int(vid)), source, target))
        if current is not None:
            yield current, sorted(group)

    # -- comparisons -----------------------------------------------------------------------------------
    def _compare_evaluation(self, eid: int, expected: tuple, row: dict, seq: int) -> None:
        mv, p = expected
        key = f"#{eid}"
        if row["mv"] != mv:
            self.out.add(
                "evaluations", key, f"belongs to {_mv(row['mv'])}, the log recorded it for {_mv(mv)}", seq
            )
            return
        for column, want in (
            ("digest", p.get("digest")),
            ("status", p.get("status")),
            ("purpose", p.get("purpose")),
            ("gate", p.get("gate")),
            ("policy_digest", p.get("policy_digest")),
        ):
            if want is not None and row[column] != want:
                self.out.add(
                    "evaluations", key, f"{column} is {row[column]!r}, the log recorded {want!r}", seq
                )
        for fid, status, recorded in row["flipped"]:
            self.out.add(
                "findings", f"#{fid}", f"status is {status!r}, the evaluation recorded {recorded!r}", seq
            )
        if p.get("digest") is not None and row["recomputed"] != p["digest"]:
            self.out.add(
                "evaluations",
                key,
                "its rows (results, findings, data) no longer hash to the digest the log recorded",
                seq,
            )

    def _compare_signed(self, rid: int, expected: tuple, row: tuple, seq: int) -> None:
        mv, event, p, actor = expected
        vid, kind, role, control_id, row_actor, signature, until = row
        key = f"#{rid}"
        got_mv = self.version_names.get(int(vid))
        if got_mv != mv:
            self.out.add(
                "signed_records", key, f"belongs to {_mv(got_mv)}, the log signed it for {_mv(mv)}", seq
            )
            return
        want_kind = {
            "attestation.signed": "attestation",
            "waiver.granted": "waiver",
            "finding.closed": "acceptance",
        }.get(event)
        if event == "approval.signed":
            want_kind = "approval" if p.get("decision") == "approve" else "rejection"
        if kind != want_kind:
            self.out.add("signed_records", key, f"kind is {kind!r}, the log recorded {want_kind!r}", seq)
        if row_actor != actor:
            self.out.add("signed_records", key, f"signer is {row_actor!r}, the log recorded {actor!r}", seq)
        sig = _as_json(signature) or {}
        if p.get("key_id") is not None and sig.get("key_id") != p.get("key_id"):
            self.out.add(
                "signed_records",
                key,
                f"signed with key {sig.get('key_id')!r}, the log recorded {p['key_id']!r}",
                seq,
            )
        if event == "approval.signed" and p.get("role") is not None and role != p["role"]:
            self.out.add("signed_records", key, f"role is {role!r}, the log recorded {p['role']!r}", seq)
        if event != "approval.signed" and control_id != p.get("control_id"):
            self.out.add(
                "signed_records",
                key,
                f"control is {control_id!r}, the log recorded {p.get('control_id')!r}",
                seq,
            )
        if event == "waiver.granted" and _iso(until) != _iso(p.get("until")):
            self.out.add(
                "signed_records", key, f"expires {_iso(until)}, the log recorded {_iso(p.get('until'))}", seq
            )

    def _compare_transitions(self, seq: int, expected: list, rows: list, _seq: int) -> None:
        if rows != expected:
            got = ", ".join(f"{_mv(m)} {s}→{t}" for m, s, t in rows)
            want = ", ".join(f"{_mv(m)} {s}→{t}" for m, s, t in expected)
            self.out.add("transitions", f"of event #{seq}", f"rows say {got}; the log says {want}", seq)

    def _check_users(self) -> None:
        from modelreg import signing

        seen = set()
        for name, roles, key_id, pem in self.conn.execute(
            text("SELECT name, roles, key_id, public_key_pem FROM users ORDER BY name")
        ):
            seen.add(name)
            want = self.users.get(name)
            if want is None:
                self.out.add("users", name, "row has no audit event behind it (user never added)")
                continue
            roles = sorted(_as_json(roles) or [])
            if want.get("roles") is not None and roles != want["roles"]:
                self.out.add(
                    "users", name, f"roles are {roles}, the log granted {want['roles']}", want["seq"]
                )
            if key_id != want.get("key_id"):
                self.out.add(
                    "users",
                    name,
                    f"key is {key_id!r}, the log registered {want.get('key_id')!r}",
                    want["seq"],
                )
            elif pem:
                try:
                    actual = signing.key_id(signing.load_public_key(pem.encode()))
                except Exception:
                    actual = None
                if actual != key_id:
                    self.out.add(
                        "users", name, f"public key is {actual!r}, not the registered {key_id!r}", want["seq"]
                    )
        for name, want in self.users.items():
            if name not in seen:
                self.out.add("users", name, "missing: the log added this user", want["seq"])

    def _check_models_and_versions(self) -> None:
        rows = self.conn.execute(
            text(
                "SELECT m.name, m.owner, m.risk_tier, m.purpose, m.business_line, v.version, v.stage, v.suspended, "
                "v.mlflow_run_id, v.model_uri, v.artifact_digest, v.model_card "
                "FROM model_versions v JOIN models m ON m.id = v.model_id"
                + (" WHERE m.name = :m" if self.model is not None else "")
            ),
            {"m": self.model} if self.model is not None else {},
        )
        seen_models: set[str] = set()
        seen: set[tuple[str, str]] = set()
        for name, owner, tier, purpose, line, ver, stage, suspended, run_id, uri, digest, card in rows:
            mv = (name, ver)
            if name not in seen_models:
                seen_models.add(name)
                want_m = self.models.get(name)
                if want_m is None:
                    self.out.add("models", name, "row has no audit event behind it (never registered)")
                else:
                    for column, got in (
                        ("owner", owner),
                        ("risk_tier", tier),
                        ("purpose", purpose),
                        ("business_line", line),
                    ):
                        if got != want_m[column]:
                            self.out.add(
                                "models",
                                name,
                                f"{column} is {got!r}, the log recorded {want_m[column]!r}",
                                want_m["seq"],
                            )
            if not self._in_scope(mv):
                continue
            seen.add(mv)
            want = self.versions.get(mv)
            key = f"{name} {ver}"
            if want is None or want.get("_orphan"):
                self.out.add("model_versions", key, "row has no audit event behind it (never registered)")
                continue
            if stage != want["stage"]:
                self.out.add(
                    "model_versions", key, f"stage is {stage}, the log says {want['stage']}", want["seq"]
                )
            if bool(suspended) != want["suspended"]:
                flag = "suspended" if suspended else "not suspended"
                self.out.add(
                    "model_versions",
                    key,
                    f"{flag}, the log says {'suspended' if want['suspended'] else 'running'}",
                    want["seq"],
                )
            for column, got in (("mlflow_run_id", run_id), ("model_uri", uri), ("artifact_digest", digest)):
                if got != want.get(column):
                    self.out.add(
                        "model_versions",
                        key,
                        f"{column} is {got!r}, the log recorded {want.get(column)!r}",
                        want["seq"],
                    )
            if want.get("card_digest") is not None and card_digest(_as_json(card)) != want["card_digest"]:
                self.out.add(
                    "model_versions", key, "model card differs from the one the log recorded", want["seq"]
                )
        for mv, want in self.versions.items():
            if mv not in seen and self._in_scope(mv) and not want.get("_orphan"):
                self.out.add(
                    "model_versions",
                    f"{mv[0]} {mv[1]}",
                    "missing: the log registered this version",
                    want["seq"],
                )

    def _check_datasets(self, vf: str, params: dict) -> None:
        expected = {k: list(v) for k, v in self.datasets.items()}
        for vid, role, name, digest, rows in self.conn.execute(
            text(
                "SELECT d.version_id, d.role, d.name, d.digest, d.rows FROM datasets d "
                "JOIN model_versions v ON v.id = d.version_id WHERE 1=1" + vf + " ORDER BY d.id"
            ),
            params,
        ):
            mv = self.version_names.get(int(vid))
            key = (mv, role, name, digest, int(rows))
            seqs = expected.get(key)
            if seqs:
                seqs.pop(0)
            else:
                self.out.add(
                    "datasets", f"{_mv(mv)} {role} {name}", "row has no audit event behind it (or was edited)"
                )
        for (mv, role, name, _d, _r), seqs in expected.items():
            for seq in seqs:
                self.out.add(
                    "datasets", f"{_mv(mv)} {role} {name}", "missing or edited: the log attached it", seq
                )


class _Groups:
    """Rows sorted by their first column, handed out one key at a time in increasing order."""

    def __init__(self, rows: Iterator[tuple]) -> None:
        self.rows = rows
        self.head: tuple | None = next(rows, None)

    def take(self, key: int) -> list[tuple]:
        out = []
        while self.head is not None and int(self.head[0]) < key:
            self.head = next(
                self.rows, None
            )  # rows of an evaluation that is not in the table: judged elsewhere
        while self.head is not None and int(self.head[0]) == key:
            out.append(self.head)
            self.head = next(self.rows, None)
        return out


def _mv(mv: tuple[str, str] | None) -> str:
    return f"{mv[0]} {mv[1]}" if mv else "(no version)"


def guard(session: Session, *, model: str | None = None, version: str | None = None) -> None:
    """Before a command acts: the rows it relies on (the version's stage, users and roles, the signed records
    and evaluations it counts) must be what the log proves; else refuse, naming the first divergence.

    Without a model only the users are checked (a registry-level command such as adding a user)."""
    from modelreg.errors import StateDiverges

    report = replay(session, model=model, version=version, users_only=model is None, limit=5)
    if not report.ok:
        raise StateDiverges(report.first_line() + "; nothing was done (run `modelreg audit verify`)")
