"""Gather everything an evidence pack holds for one model version, read-only, in one read session.

With ``as_of`` the state is reconstructed as it was then: the audit tree is cut at the last event at or before
that time, and only the evaluations, signed records, transitions and data sets recorded by then are taken.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from modelreg import clock
from modelreg.domain.entities import Dataset, ModelVersion, TransitionRecord
from modelreg.domain.stages import GATES, Stage
from modelreg.errors import BadInput, NotFound, VerificationFailed
from modelreg.governance import records
from modelreg.governance.records import Evaluation
from modelreg.governance.signatures import SignedRecord
from modelreg.registry import Registry
from modelreg.store import artifacts

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
    # The version's rows against the state the audit log proves, in the pack's own snapshot (None: as-of pack)
    replay: dict | None = None
    tree_hash: str = "sha256"  # the log's leaf/node hash, recorded at init
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
    from modelreg.audit.merkle import root_from_leaf_hashes
    from modelreg.store import audit as audit_store
    from modelreg.store import governance as gov_store
    from modelreg.store import repo
    from modelreg.store.schema import HEAD_REVISION

    cutoff = parse_as_of(as_of)
    version = str(version)
    notes: list[str] = []
    with registry.reading(PERMISSION, model=name, version=version) as rd:
        session, target = rd.session, rd.target
        assert target is not None
        current = target.version
        if cutoff is not None and current.created_at > cutoff:
            raise BadInput(
                f"{name} {version} was registered at {clock.isoformat(current.created_at)}, after --as-of {clock.isoformat(cutoff)}: nothing to pack"
            )
        ref_time = cutoff or clock.now()

        # -- the audit tree: size and root first; events below that size never change (append-only).
        state = audit_store.tree_state(session)
        if state is None:
            raise VerificationFailed("the registry has no audit state: the schema is damaged")
        size, root = state
        from modelreg.audit import log as audit_log
        from modelreg.audit.merkle import leaf_hash, root_from_leaf_hashes

        tree_hash, _ = audit_log.crypto_settings(session)
        if cutoff is not None:
            last = audit_store.last_seq_at(session, cutoff)
            if last is None:
                raise BadInput(f"the audit log has no event at or before --as-of {clock.isoformat(cutoff)}")
            size = min(size, last + 1)
            root = audit_store.root_after(session, size - 1)
        leaves = audit_store.leaf_hashes_below(session, size)
        if len(leaves) != size or root_from_leaf_hashes(leaves, tree_hash) != root:
            raise VerificationFailed(
                f"the audit log's first {size} leaves do not reproduce its recorded root: run `modelreg audit verify` before packing"
            )
        events = []
        for seq, canonical, leaf in audit_store.version_events(session, name, version, size):
            if leaf_hash(canonical, tree_hash) != leaf:
                raise VerificationFailed(
                    f"audit event #{seq} does not match its leaf hash (edited): refusing to pack it"
                )
            events.append(AuditEntry(seq, canonical, leaf))

        # -- lifecycle, data, evaluations, signed records (as of the cut-off).
        history = [h for h in repo.transitions(session, target) if cutoff is None or h.at <= cutoff]
        datasets = [d for d in repo.datasets(session, target) if cutoff is None or d.at <= cutoff]
        mv = current
        if cutoff is not None:
            stage, suspended = _stage_as_of(current, history)
            from dataclasses import replace

            mv = replace(current, stage=stage, suspended=suspended)
            notes.append(
                "as-of pack: the model card and MLflow metadata are the version's current values "
                "(card edits are only possible in develop and are logged as version.card_updated events)"
            )
        signed = [s for s in records.signed_records(session, target.id) if s.at <= ref_time]
        waivers = {
            k: w
            for k, w in records.active_waivers(session, target.id, now=ref_time).items()
            if w.at <= ref_time
        }
        ev_rows = [
            e for e in records.evaluation_rows(session, target.id) if cutoff is None or e.created_at <= cutoff
        ]
        # two queries for all of the version's evaluations, not two per evaluation
        ids = [e.id for e in ev_rows]
        finding_rows = records.finding_rows_by_evaluation(session, target.id, ids)
        evaluations = [
            records.to_evaluation(session, e, name, version, waivers, finding_rows=finding_rows[e.id])
            for e in ev_rows
        ]
        results = records.monitor_results_by_evaluation(session, target.id, ids)
        stored: list[StoredArtifact] = []
        for link in gov_store.artifact_links(session, ids):
            try:
                data = artifacts.read_bytes(registry.settings.artifact_store, link.sha256)
            except NotFound as exc:
                raise NotFound(
                    f"evaluation #{link.evaluation_id} {link.monitor_kind}/{link.name}: {exc.message}"
                ) from None
            stored.append(
                StoredArtifact(
                    link.evaluation_id, link.monitor_kind, link.name, link.sha256, link.media_type, data
                )
            )
        keys = repo.user_keys(session, sorted({s.actor for s in signed}))

        # -- gate requirements as they stand now (an as-of pack cannot re-run them for the past).
        gate_unmet = None
        replayed = None
        if cutoff is None:
            gate_unmet = {}
            from modelreg.audit.replay import replay as replay_log

            replayed = replay_log(session, model=name, version=str(version)).to_dict()
            gates = [g for g in GATES if g != "retire"]
            if current.stage is Stage.RETIRE:
                # Before retirement the retire gate has not been reached: its requirements are not "unmet".
                gates.append("retire")
            for gate in gates:
                try:
                    gate_unmet[gate] = [u.to_dict() for u in registry.unmet(session, gate, gate, target, {})]
                except Exception as exc:  # a broken plug-in must not stop the auditor getting the rest
                    notes.append(
                        f"gate {gate} requirements could not be evaluated: {type(exc).__name__}: {exc}"
                    )
        operations = None
        if cutoff is None:
            from modelreg.operations.evidence import section

            operations = section(registry, session, target)
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
        tree_hash=tree_hash,
        policy=policy,
        policy_ref=policy_ref,
        gate_unmet=gate_unmet,
        registry_info=info,
        as_of=cutoff,
        notes=notes,
        replay=replayed,
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
