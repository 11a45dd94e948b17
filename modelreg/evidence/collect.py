"""Gather everything an evidence pack holds for one model version, read-only, in one read session.

With ``as_of`` the state is reconstructed as it was then: the audit tree is cut at the last event at or before
that time, and only the evaluations, signed records, transitions and data sets recorded by then are taken.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from modelreg import artifacts, clock
from modelreg.domain.entities import Dataset, ModelVersion, TransitionRecord
from modelreg.domain.stages import Stage
from modelreg.errors import BadInput, NotFound, VerificationFailed
from modelreg.governance import records
from modelreg.governance.records import Evaluation
from modelreg.governance.signatures import SignedRecord
from modelreg.registry import Registry

PERMISSION = "evidence.pack"


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    canonical: bytes  # the exact bytes the leaf hash is over
    leaf_hash: bytes


@dataclass(frozen=True)
class StoredArtifact:
    evaluation_id: int
    monitor: str
    name: str
    sha256: str
    media_type: str
    data: bytes


@dataclass
class Collected:
    version: ModelVersion
    history: list[TransitionRecord]
    datasets: list[Dataset]
    evaluations: list[Evaluation]
    monitor_results: dict[int, dict[str, dict]]  # evaluation id -> kind -> MonitorResult dict
    artifacts: list[StoredArtifact]
    signed: list[SignedRecord]
    signer_keys: dict[str, str]  # user name -> public key PEM registered for them
    events: list[AuditEntry]  # this version's events, in log order
    leaves: list[bytes]  # every leaf hash of the log up to tree_size
    tree_size: int
    root_hash: bytes
    policy: Any  # PolicyPack or None when it could not be loaded
    policy_ref: dict  # id, version, digest (of the evaluated pack when there is one)
    gate_unmet: dict[str, list[dict]] | None  # gate -> unmet requirements now (None for an as-of pack)
    registry_info: dict
    as_of: datetime | None
    notes: list[str] = field(default_factory=list)
    operations: dict | None = None  # calendar, tracked findings, vendor view (None for an as-of pack)


def parse_as_of(value: str | datetime | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        if isinstance(value, datetime) and value.tzinfo is None:
            raise BadInput(
                "--as-of must carry a time zone (e.g. 2026-01-31T12:00:00Z). Got a naive datetime instead."
            )
        return clock.to_utc(value) if value is not None else None
    text = value.strip()
    try:
        # A bare date means the end of that day (UTC): "as of 2026-01-31" includes the whole day.
        return clock.parse(text + "T23:59:59.999999Z") if len(text) == 10 else clock.parse(text)
    except ValueError:
        raise BadInput(
            f"--as-of must be an ISO date or datetime (UTC if no offset). Got {value!r} instead."
        ) from None


def _modelreg_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("modelreg")
    except metadata.PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"


def _stage_as_of(current: ModelVersion, history: list[TransitionRecord]) -> tuple[Stage, bool]:
    stage, suspended = Stage.DEVELOP, False
    for h in history:
        if h.action == "suspend":
            suspended = True
        elif h.action == "resume":
            suspended = False
        else:
            stage = Stage(h.target)
            suspended = False if stage is not Stage.DEPLOY else suspended
    return stage, suspended


def collect(registry: Registry, name: str, version: str, *, as_of: str | datetime | None = None) -> Collected:
    from sqlalchemy import func, select

    from modelreg.store import repo
    from modelreg.store.schema import HEAD_REVISION
    from modelreg.store.tables import AuditEventRow, AuditStateRow, EvaluationArtifactRow, UserRow

    cutoff = parse_as_of(as_of)
    version = str(version)
    notes: list[str] = []
    with registry._read() as session:
        registry._authorize(session, PERMISSION)
        model_row, row = repo.version_rows(session, name, version)
        current = repo.to_version(row, model_row)
        if cutoff is not None and current.created_at > cutoff:
            raise BadInput(
                f"{name} {version} was registered at {clock.isoformat(current.created_at)}, after --as-of {clock.isoformat(cutoff)}: nothing to pack"
            )
        ref_time = cutoff or clock.now()

        # -- the audit tree: size and root first; events below that size never change (append-only).
        state = session.get(AuditStateRow, 1)
        if state is None:
            raise VerificationFailed("the registry has no audit state: the schema is damaged")
        size = int(state.size)
        root = bytes(state.root_hash)
        if cutoff is not None:
            last = session.execute(
                select(func.max(AuditEventRow.seq)).where(AuditEventRow.at <= cutoff)
            ).scalar()
            if last is None:
                raise BadInput(f"the audit log has no event at or before --as-of {clock.isoformat(cutoff)}")
            size = min(size, int(last) + 1)
            root = bytes(
                session.execute(
                    select(AuditEventRow.root_hash).where(AuditEventRow.seq == size - 1)
                ).scalar_one()
            )
        leaves = [
            bytes(h)
            for h in session.execute(
                select(AuditEventRow.leaf_hash).where(AuditEventRow.seq < size).order_by(AuditEventRow.seq)
            ).scalars()
        ]
        from modelreg.audit.merkle import root_from_leaf_hashes

        if len(leaves) != size or root_from_leaf_hashes(leaves) != root:
            raise VerificationFailed(
                f"the audit log's first {size} leaves do not reproduce its recorded root: run `modelreg audit verify` before packing"
            )
        events = []
        q = (
            select(AuditEventRow.seq, AuditEventRow.canonical, AuditEventRow.leaf_hash)
            .where(AuditEventRow.model == name, AuditEventRow.version == version, AuditEventRow.seq < size)
            .order_by(AuditEventRow.seq)
        )
        for seq, canonical, leaf in session.execute(q):
            canonical, leaf = bytes(canonical), bytes(leaf)
            if hashlib.sha256(b"\x00" + canonical).digest() != leaf:
                raise VerificationFailed(
                    f"audit event #{seq} does not match its leaf hash (edited): refusing to pack it"
                )
            events.append(AuditEntry(int(seq), canonical, leaf))

        # -- lifecycle, data, evaluations, signed records (as of the cut-off).
        history = [
            h for h in repo.transitions(session, row, model_row.name) if cutoff is None or h.at <= cutoff
        ]
        datasets = [
            d for d in repo.datasets(session, row, model_row.name) if cutoff is None or d.at <= cutoff
        ]
        mv = current
        if cutoff is not None:
            stage, suspended = _stage_as_of(current, history)
            from dataclasses import replace

            mv = replace(current, stage=stage, suspended=suspended)
            notes.append(
                "as-of pack: the model card and MLflow metadata are the version's current values "
                "(card edits are only possible in develop and are logged as version.card_updated events)"
            )
        signed = [s for s in records.signed_records(session, row.id) if s.at <= ref_time]
        waivers = {
            k: w for k, w in records.active_waivers(session, row.id, now=ref_time).items() if w.at <= ref_time
        }
        ev_rows = [
            e
            for e in records.evaluation_rows(session, row.id)
            if cutoff is None or clock.to_utc(e.created_at) <= cutoff
        ]
        # two queries for all of the version's evaluations, not two per evaluation
        ids = [e.id for e in ev_rows]
        finding_rows = records.finding_rows_by_evaluation(session, row.id, ids)
        evaluations = [
            records.to_evaluation(session, e, name, version, waivers, finding_rows=finding_rows[e.id])
            for e in ev_rows
        ]
        results = records.monitor_results_by_evaluation(session, row.id, ids)
        stored: list[StoredArtifact] = []
        ids = [e.id for e in ev_rows]
        if ids:
            from modelreg.store.tables import ArtifactRow

            q2 = (
                select(EvaluationArtifactRow, ArtifactRow.media_type)
                .join(ArtifactRow, ArtifactRow.sha256 == EvaluationArtifactRow.sha256)
                .where(EvaluationArtifactRow.evaluation_id.in_(ids))
                .order_by(
                    EvaluationArtifactRow.evaluation_id,
                    EvaluationArtifactRow.monitor_kind,
                    EvaluationArtifactRow.name,
                )
            )
            for link, media in session.execute(q2):
                try:
                    data = artifacts.read_bytes(registry.settings.artifact_store, link.sha256)
                except NotFound as exc:
                    raise NotFound(
                        f"evaluation #{link.evaluation_id} {link.monitor_kind}/{link.name}: {exc.message}"
                    ) from None
                stored.append(
                    StoredArtifact(link.evaluation_id, link.monitor_kind, link.name, link.sha256, media, data)
                )
        actors = sorted({s.actor for s in signed})
        keys = {}
        if actors:
            for user, pem in session.execute(
                select(UserRow.name, UserRow.public_key_pem).where(UserRow.name.in_(actors))
            ):
                if pem:
                    keys[user] = pem

        # -- gate requirements as they stand now (an as-of pack cannot re-run them for the past).
        gate_unmet = None
        if cutoff is None:
            gate_unmet = {}
            for gate, action in (("submit", "submit"), ("deploy", "deploy"), ("retire", "retire")):
                try:
                    gate_unmet[gate] = [
                        u.to_dict() for u in registry._unmet(session, gate, action, model_row, row, {})
                    ]
                except Exception as exc:  # a broken plug-in must not stop the auditor getting the rest
                    notes.append(
                        f"gate {gate} requirements could not be evaluated: {type(exc).__name__}: {exc}"
                    )
        operations = None
        if cutoff is None:
            from modelreg.operations.evidence import section

            operations = section(registry, session, model_row, row)
    policy, policy_ref = _policy(registry, evaluations, notes, current)
    info = {
        "modelreg_version": _modelreg_version(),
        "schema_revision": HEAD_REVISION,
        "database": registry.engine.dialect.name,
    }
    return Collected(
        version=mv,
        history=history,
        datasets=datasets,
        evaluations=evaluations,
        monitor_results=results,
        artifacts=stored,
        signed=signed,
        signer_keys=keys,
        events=events,
        leaves=leaves,
        tree_size=size,
        root_hash=root,
        policy=policy,
        policy_ref=policy_ref,
        gate_unmet=gate_unmet,
        registry_info=info,
        as_of=cutoff,
        notes=notes,
        operations=operations,
    )


def _policy(
    registry: Registry, evaluations: list[Evaluation], notes: list[str], version: Any = None
) -> tuple[Any, dict]:
    """The pack the latest evaluation ran with (checked by digest), else the configured one."""
    from modelreg.errors import ModelregError
    from modelreg.governance.service import load_policy

    latest = max(evaluations, key=lambda e: (e.created_at, e.id)) if evaluations else None
    wanted = latest.policy_id if latest else None
    try:
        from modelreg.operations import effective_pack

        pack = effective_pack(load_policy(registry, wanted), version)
    except ModelregError as exc:
        if latest is None:
            notes.append(f"policy pack could not be loaded: {exc.message}")
            return None, {"id": None, "version": None, "digest": None}
        notes.append(
            f"policy pack {latest.policy_id}@{latest.policy_version} could not be loaded: {exc.message}"
        )
        return None, {
            "id": latest.policy_id,
            "version": latest.policy_version,
            "digest": latest.policy_digest,
        }
    if latest is not None and pack.digest != latest.policy_digest:
        notes.append(
            f"the evaluations ran with {latest.policy_id}@{latest.policy_version} ({latest.policy_digest}); the pack "
            f"available now is {pack.id}@{pack.version} ({pack.digest}): the policy matrix shows the one available now"
        )
        return pack, {
            "id": latest.policy_id,
            "version": latest.policy_version,
            "digest": latest.policy_digest,
        }
    return pack, {"id": pack.id, "version": pack.version, "digest": pack.digest}
