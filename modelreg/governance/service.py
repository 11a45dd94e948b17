"""Governance operations: validation, pre-check and monitoring runs; approvals, rejections, attestations and
waivers. Each goes through the registry's permission check and write transaction, with its audit event."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from modelreg import clock
from modelreg.domain.records import StoredEvaluation
from modelreg.domain.stages import EVALUATION_PURPOSES, Stage
from modelreg.errors import (
    BadInput,
    InvalidTransition,
    ModelregError,
    NotFound,
    PermissionDenied,
    SegregationOfDuties,
    SignatureError,
)
from modelreg.governance import records
from modelreg.governance.records import Evaluation
from modelreg.governance.runner import EvaluationInput, digest_of
from modelreg.governance.signatures import build_payload, load_signing_key, sign_payload, verify_presigned
from modelreg.registry import Change, Registry
from modelreg.store import artifacts, repo
from modelreg.store import governance as store

# purpose: (gate, action permission, stage the version must be in), from the transition table
PURPOSES = {p.purpose: (p.gate, p.permission, p.stage) for p in EVALUATION_PURPOSES.values()}
MAX_WAIVER_DAYS = 366


def load_policy(reg: Registry, policy: str | None = None):
    from modelreg.policy import load_pack

    return load_pack(
        policy or reg.settings.policy, search_paths=[p for p in reg.settings.policy_paths if p.exists()]
    )


def _artifact_digest(version) -> str:
    return version.artifact_digest or "unknown"


def run_evaluation(
    reg: Registry,
    name: str,
    version: str,
    inp: EvaluationInput,
    *,
    purpose: str,
    policy: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> Evaluation:
    if getattr(reg, "remote", False):  # MODELREG_URL: the service runs this same function
        return reg.run_evaluation(name, version, inp, purpose=purpose, policy=policy)
    gate, action, stage = PURPOSES[purpose]
    version = str(version)
    # 1. Check who and what before spending minutes computing.
    with reg.reading(action, model=name, version=version) as rd:
        user, target = rd.user, rd.target
        assert target is not None
        mv = target.version
        row_version = target.row_version
        version_id = target.id
        if target.stage != stage.value:
            raise InvalidTransition(
                f"{purpose} needs {name} {version} in {stage.value}; it is in {target.stage}"
            )
        if purpose == "validation" and reg.actor in mv.developers:
            raise SegregationOfDuties(
                f"{reg.actor} developed {name} (owner or registrant) and cannot validate it: another validator must"
            )
        baselines: dict[str, Any] = {}
        profile = None
        profiles: dict[str, Any] = {}
        base_spec: dict | None = None
        if purpose == "monitoring":
            base = records.latest_evaluation_row(rd.session, target.id, "validation")
            if base is None:
                raise NotFound(f"{name} {version} has no validation evaluation to monitor against")
            baselines, profile = _baselines(reg, rd.session, base)
            profiles = _profiles(reg, base)
            base_spec = (base.data or {}).get("spec")
    assert user is not None
    _declared_from_card(inp, mv.model_card)
    # A monitoring run on a scoring log with the card's decision id and time columns records its decisions.
    inp.record_decisions = purpose == "monitoring" and bool(inp.id_column and inp.time_column)
    _declared_schema(inp, mv, base_spec)
    from modelreg.operations import effective_pack

    pack = effective_pack(load_policy(reg, policy), mv)
    tier = mv.risk_tier
    from modelreg.governance import runner

    if inp.report_cache is None and inp.html_report:
        inp.report_cache = reg.settings.report_cache
    if inp.model_uri and inp.execution_grant is None:
        inp.execution_grant = execution_grant(reg, pack, version_id, version)

    # A pre-check is the developer's dry run of what validation will check, plus the submit gate's own checks.
    gates = ("submit", "deploy") if purpose == "precheck" else (gate,)
    # Loading a models:/ URI goes through MLflow's own configuration: give it this registry's stores.
    with reg.settings.mlflow_scope():
        draft = runner.run(
            pack, gates, tier, inp, baselines=baselines, profile=profile, progress=progress, profiles=profiles
        )
    if purpose == "monitoring":
        from modelreg.operations.calendar import overdue_outcome

        # An overdue revalidation blocks or warns at the monitor gate, as the policy says for the tier.
        overdue = overdue_outcome(reg, pack, mv)
        if overdue is not None:
            draft.outcomes.append(overdue)
        if draft.decisions is not None and inp.target is None:
            # No target in the log: the outcomes recorded since for its decisions give realised performance.
            from modelreg.governance.outcomes import realised_section
            from monitors.vintage import MIN_CLASS_COUNT

            with reg.reading() as rd:
                draft.realised = realised_section(
                    reg, rd.session, version_id, draft.decisions, min_class_count=MIN_CLASS_COUNT
                )
    try:
        return _store(reg, name, version, mv, row_version, pack, gate, tier, purpose, draft, inp)
    finally:
        shutil.rmtree(draft.artifacts_dir, ignore_errors=True)


def execution_grant(reg: Registry, pack, version_id: int, version: str):
    """An executable model format may run (in the isolated worker) only when the policy pack enables the
    attestation control CHK-ROB-04.exec (the shipped pack has it switched off; a bank's override switches it
    on) and a validator signed it for this version with a valid signature."""
    from modelreg.errors import NotFound
    from modelreg.integrations.mlflow.worker import EXEC_CONTROL_ID, ExecutionGrant
    from modelreg.policy.model import GRANT_MODEL_EXECUTION

    try:
        control = pack.control(EXEC_CONTROL_ID)
    except NotFound:  # the pack does not define it: executable formats stay refused
        return None
    if control.disabled or control.attestation is None:
        return None
    if control.attestation.role != "validator" or control.attestation.grants != GRANT_MODEL_EXECUTION:
        return None
    with reg.reading() as rd:
        for rec in reversed(records.signed_records(rd.session, version_id, kind="attestation")):
            if rec.control_id == EXEC_CONTROL_ID and rec.valid_signature and rec.role == "validator":
                return ExecutionGrant(EXEC_CONTROL_ID, rec.actor, version)
    return None


def _declared_from_card(inp: EvaluationInput, card: dict) -> None:
    """What the developer declared in the model card feeds the checks: monotone constraints (e.g.
    ``{"duration": 1}``), stress scenarios, bilingual feature labels (``{"age": ["年龄", "age"]}``)."""
    if not inp.monotone and isinstance(card.get("monotone_constraints"), dict):
        try:
            inp.monotone = {str(k): int(v) for k, v in card["monotone_constraints"].items()}
        except (TypeError, ValueError):
            raise BadInput(
                "model card field monotone_constraints must map feature names to -1 or 1"
            ) from None
    if inp.score_bands is None and card.get("score_bands") is not None:
        from modelreg.registry.versions import checked_score_bands

        inp.score_bands = checked_score_bands(card["score_bands"])
    if inp.id_column is None and isinstance(card.get("decision_id_column"), str):
        inp.id_column = card["decision_id_column"]
    if inp.time_column is None and isinstance(card.get("decision_time_column"), str):
        inp.time_column = card["decision_time_column"]
    if not inp.scenarios and isinstance(card.get("stress_scenarios"), list):
        inp.scenarios = list(card["stress_scenarios"])
    if not inp.feature_labels and isinstance(card.get("feature_labels"), dict):
        inp.feature_labels = {
            str(k): (v[0], v[1])
            for k, v in card["feature_labels"].items()
            if isinstance(v, (list, tuple)) and len(v) == 2
        }


def _declared_schema(inp: EvaluationInput, mv, base_spec: dict | None) -> None:
    """The feature schema the data must fit, from the first of: the caller's, the validation baseline's
    (monitoring judges data by what was validated), the MLflow model signature, the model card's
    ``feature_schema`` (``{"age": "numeric", "sex": "categorical"}``). At monitoring the baseline's positive
    class is kept unless the operator names another."""
    if base_spec and inp.positive_label is None and inp.target:
        label = base_spec.get("positive_label")
        if label not in (None, 1):
            inp.positive_label = label
    if inp.schema:
        return
    if base_spec and base_spec.get("features"):
        inp.schema = {str(f["name"]): str(f["kind"]) for f in base_spec["features"]}
        inp.schema_source = "the validation baseline's spec"
        return
    signature = (mv.mlflow or {}).get("signature") or {}
    inputs = signature.get("inputs") if isinstance(signature, dict) else None
    if isinstance(inputs, list) and inputs and all(isinstance(c, dict) and c.get("name") for c in inputs):
        inp.schema = {str(c["name"]): str(c.get("type", "string")) for c in inputs}
        inp.schema_source = "the MLflow model signature"
        return
    card = (mv.model_card or {}).get("feature_schema")
    if card is None:
        return
    if not isinstance(card, dict) or not all(
        str(v).strip().lower() in ("numeric", "categorical", "double", "long", "string", "boolean")
        for v in card.values()
    ):
        raise BadInput(
            "model card field feature_schema must map feature names to numeric or categorical. "
            f"Got {card!r} instead."
        )
    inp.schema = {str(k): str(v) for k, v in card.items()}
    inp.schema_source = "the model card's feature_schema"


def _profiles(reg: Registry, base: StoredEvaluation) -> dict[str, Any]:
    """Reference profiles other than drift's that the validation stored (data_quality ranges)."""
    from monitors.base import ReferenceProfile

    out = {}
    for kind, sha in ((base.data or {}).get("profiles") or {}).items():
        out[kind] = ReferenceProfile.from_json(
            artifacts.read_bytes(reg.settings.artifact_store, sha).decode()
        )
    return out


def _baselines(reg: Registry, session, base: StoredEvaluation) -> tuple[dict, Any]:
    from monitors.base import MonitorResult, ReferenceProfile

    results = records.monitor_results(session, base.id)
    baselines = {
        k: MonitorResult.from_dict(v) for k, v in results.items() if k in ("performance", "explainability")
    }
    profile = None
    sha = (base.data or {}).get("reference_profile")
    if sha:
        profile = ReferenceProfile.from_json(artifacts.read_bytes(reg.settings.artifact_store, sha).decode())
    return baselines, profile


def _store(
    reg: Registry, name, version, mv, row_version, pack, gate, tier, purpose, draft, inp
) -> Evaluation:
    store_root = reg.settings.artifact_store
    now = clock.now()
    stored_files: list[tuple[str, str, str, int, str]] = []  # (kind, name, sha, size, media)
    result_dicts: dict[str, dict] = {}
    for kind, result in draft.results.items():
        result_dicts[kind] = result.to_dict()
        for art in result.artifacts:
            path = draft.artifacts_dir / kind / art.name
            if path.exists():
                sha, size = artifacts.put_file(store_root, path)
                stored_files.append((kind, art.name, sha, size, art.media_type))
    profile_sha = None
    if draft.reference_profile is not None:
        profile_sha, size = artifacts.put_bytes(store_root, draft.reference_profile)
        stored_files.append(("drift", "reference_profile.json", profile_sha, size, "application/json"))
    other_profiles: dict[str, str] = {}
    for kind, blob in sorted(draft.profiles.items()):
        sha, size = artifacts.put_bytes(store_root, blob)
        other_profiles[kind] = sha
        stored_files.append((kind, "reference_profile.json", sha, size, "application/json"))
    outcomes = [o.to_dict() for o in draft.outcomes]
    data = {
        "fingerprints": draft.fingerprints,
        "spec": draft.spec,
        "params": draft.params,
        "model_uri": inp.model_uri,
        "model_loading": draft.model_note,
        "notes": draft.notes,
        "reference_profile": profile_sha,
    }
    if other_profiles:
        data["profiles"] = other_profiles
    if draft.decisions is not None:
        from modelreg.governance.outcomes import decisions_digest

        data["decisions"] = {
            "id_column": inp.id_column,
            "time_column": inp.time_column,
            "rows": len(draft.decisions),
            "digest": decisions_digest(draft.decisions),
        }
    if draft.realised is not None:
        data["realised"] = draft.realised
    content = {
        "model": name,
        "version": version,
        "purpose": purpose,
        "gate": gate,
        "tier": tier,
        "policy": {"id": pack.id, "version": pack.version, "digest": pack.digest},
        "model_artifact_digest": _artifact_digest(mv),
        "data": data,
        "results": {k: digest_of(v) for k, v in sorted(result_dicts.items())},
        "outcomes": outcomes,
        "created_by": reg.actor,
        "created_at": clock.isoformat(now),
    }
    digest = digest_of(content)
    status = draft.status
    suspend = [o for o in draft.outcomes if getattr(o, "suspend", False)]
    _, action, stage = PURPOSES[purpose]
    with reg.change(action, model=name, version=version) as tx:
        target = tx.target
        assert target is not None
        if target.stage != stage.value:
            raise InvalidTransition(
                f"{name} {version} moved to {target.stage} while the {purpose} ran: nothing was stored"
            )
        session = tx.session
        ev_id = store.add_evaluation(
            session,
            version_id=target.id,
            purpose=purpose,
            gate=gate,
            tier=tier,
            policy_id=pack.id,
            policy_version=pack.version,
            policy_digest=pack.digest,
            model_artifact_digest=_artifact_digest(mv),
            data=data,
            status=status,
            digest=digest,
            created_by=reg.actor,
            created_at=now,
        )
        for kind, rd in result_dicts.items():
            store.add_monitor_result(session, ev_id, kind, rd, digest_of(rd))
        decisions_recorded = None
        if draft.decisions is not None:
            from modelreg.store import outcomes as outcome_store

            inserted, already = outcome_store.record_decisions(session, target.id, ev_id, draft.decisions)
            decisions_recorded = {
                "rows": len(draft.decisions),
                "recorded": inserted,
                "already_recorded": already,
            }
        for kind, art_name, sha, size, media in stored_files:
            artifacts.record(session, sha, size, media)
            session.flush()
            store.link_artifact(session, ev_id, kind, art_name, sha)
        for o in draft.outcomes:
            control = pack.control(o.control_id)
            detail = o.to_dict()
            detail.update({"title_zh": control.title_zh, "title_en": control.title_en})
            store.add_finding(
                session,
                evaluation_id=ev_id,
                version_id=target.id,
                control_id=o.control_id,
                status=o.status,
                severity=o.severity or control.severity,
                clause_ids=list(o.clause_ids),
                detail=detail,
            )
        counts: dict[str, int] = {}
        for o in draft.outcomes:
            counts[o.status] = counts.get(o.status, 0) + 1
        tx.event(
            "evaluation.recorded",
            payload={
                "evaluation_id": ev_id,
                "purpose": purpose,
                "gate": gate,
                "policy": f"{pack.id}@{pack.version}",
                "policy_digest": pack.digest,
                "digest": digest,
                "status": status,
                "counts": counts,
                "failed_controls": sorted(
                    o.control_id for o in draft.outcomes if o.status in ("fail", "error")
                ),
                **({"decisions": decisions_recorded} if decisions_recorded is not None else {}),
            },
        )
        from modelreg.operations.findings import record_run

        record_run(tx, pack, purpose, ev_id, digest, draft.outcomes)
        suspended = False
        if purpose == "monitoring" and suspend and not target.suspended:
            waivers = records.active_waivers(session, target.id, gate="monitor")
            really = [o for o in suspend if o.control_id not in waivers]
            if really:
                _suspend_in(reg, tx, really, ev_id)
                suspended = True
        session.flush()
        evaluation = records.to_evaluation(
            session, store.evaluation(session, ev_id), name, version, suspended=suspended
        )
        for hook in reg.evaluation_projections:
            run_id = hook(evaluation, draft, stored_files)
            if run_id:
                store.set_evaluation_run(session, ev_id, run_id)
        session.flush()
        final = records.to_evaluation(session, store.evaluation(session, ev_id), name, version)
        return Evaluation(
            **{
                **final.__dict__,
                "suspended": suspended,
                "extra": {
                    "artifacts": [{"monitor": k, "name": n, "sha256": s} for k, n, s, _, _ in stored_files]
                },
            }
        )


def _suspend_in(reg: Registry, tx: Change, outcomes, evaluation_id: int) -> None:
    """Suspend at once, in the monitoring run's transaction: a breach of an on_breach: suspend control. The
    evaluation's event and the suspension's event commit together (the one change with two events)."""
    reason = "automatic suspension: " + "; ".join(
        f"{o.control_id} {o.metric}={o.value} breaches {o.comparator} {o.threshold}" for o in outcomes
    )
    reg.flag(
        tx,
        "suspend",
        reason=reason,
        extra={
            "automatic": True,
            "evaluation_id": evaluation_id,
            "controls": [o.control_id for o in outcomes],
        },
    )


# -- reading ----------------------------------------------------------------------------------------


def latest(reg: Registry, name: str, version: str, purpose: str | None = None) -> list[Evaluation]:
    """The latest evaluation of each purpose (or of one), with findings and waivers applied."""
    if getattr(reg, "remote", False):  # MODELREG_URL: the service runs this same function
        return reg.latest(name, version, purpose)
    with reg.reading(model=name, version=version) as rd:
        assert rd.target is not None
        out = []
        for p in [purpose] if purpose else list(EVALUATION_PURPOSES):
            ev = records.latest_evaluation_row(rd.session, rd.target.id, p)
            if ev is not None:
                out.append(records.to_evaluation(rd.session, ev, name, str(version)))
        return out


def all_evaluations(reg: Registry, name: str, version: str) -> list[Evaluation]:
    with reg.reading(model=name, version=version) as rd:
        assert rd.target is not None
        return [
            records.to_evaluation(rd.session, ev, name, str(version))
            for ev in records.evaluation_rows(rd.session, rd.target.id)
        ]


def signed(reg: Registry, name: str, version: str, kind: str | None = None):
    if getattr(reg, "remote", False):  # MODELREG_URL: the service runs this same function
        return reg.signed(name, version, kind)
    with reg.reading(model=name, version=version) as rd:
        assert rd.target is not None
        return records.signed_records(rd.session, rd.target.id, kind)


# -- signed records -------------------------------------------------------------------------------


def _key(reg: Registry, key_path: str | Path | None):
    reg.check_actor()  # "unknown user", not "no private key for <typo>"
    path = Path(key_path) if key_path else reg.settings.signing_key_for(reg.actor)
    return load_signing_key(path, reg.actor)


def approve(
    reg: Registry,
    name: str,
    version: str,
    *,
    role: str,
    comment: str | None = None,
    decision: str = "approve",
    key_path: str | Path | None = None,
    presigned: dict | None = None,
) -> dict:
    """Sign and record an approval (or rejection). ``presigned`` (``{"payload", "signature"}``) is a record the
    signer made on their own machine from ``approval_draft`` (the registry service never holds private keys):
    it is accepted only if its payload is exactly what the registry would sign now, its time is within
    ``PRESIGNED_WINDOW`` of the registry's clock, and its signature verifies with the signer's registered key."""
    if getattr(reg, "remote", False):  # MODELREG_URL: the service runs this same function
        return reg.approve(name, version, role=role, comment=comment, decision=decision, key_path=key_path)
    _check_decision(role, decision)
    key = None if presigned is not None else _key(reg, key_path)
    version = str(version)
    with reg.change(decision, model=name, version=version) as tx:
        user, target = tx.user, tx.target
        assert user is not None and target is not None
        now = _presigned_time(presigned) if presigned is not None else clock.now()
        payload, ev = _approval_payload(reg, tx.session, target, user, role, decision, comment, now)
        if presigned is not None and presigned.get("payload") != payload:
            raise SignatureError(
                "the signed approval does not match what the registry would record now (the version, its "
                "evaluation or the request changed): fetch a new draft and sign again"
            )
        return _record_signed(
            tx,
            user,
            key,
            payload,
            kind=payload["kind"],
            role=role,
            control_id=None,
            until=None,
            at=now,
            event="approval.signed",
            event_payload={
                "decision": decision,
                "role": role,
                "evaluation_digest": ev.digest,
                "comment": comment or "",
            },
            name=name,
            version=version,
            presigned=presigned.get("signature") if presigned is not None else None,
        )


PRESIGNED_WINDOW = timedelta(seconds=300)


def approval_draft(
    reg: Registry,
    name: str,
    version: str,
    *,
    role: str,
    comment: str | None = None,
    decision: str = "approve",
) -> dict:
    """The payload ``approve`` would sign now, for a signer who signs on their own machine: same checks, nothing
    written."""
    _check_decision(role, decision)
    version = str(version)
    with reg.reading(decision, model=name, version=version) as rd:
        assert rd.target is not None
        if rd.user is None:
            raise PermissionDenied(reg.unknown_user_message())
        payload, _ = _approval_payload(
            reg, rd.session, rd.target, rd.user, role, decision, comment, clock.now()
        )
        return payload


def _check_decision(role: str, decision: str) -> None:
    if role not in ("validator", "approver"):
        raise BadInput(f"--role must be validator or approver. Got {role!r} instead.")
    if decision not in ("approve", "reject"):
        raise BadInput(f"decision must be approve or reject. Got {decision!r} instead.")


def _presigned_time(presigned: dict) -> datetime:
    payload = presigned.get("payload")
    if not isinstance(payload, dict) or not isinstance(presigned.get("signature"), dict):
        raise BadInput("a signed record needs a payload object and a signature object")
    try:
        at = clock.parse(str(payload.get("at")))
    except ValueError:
        raise BadInput("the signed record's payload has no valid time (at)") from None
    if abs(clock.now() - at) > PRESIGNED_WINDOW:
        raise SignatureError(
            f"the signed record was made at {clock.isoformat(at)}, more than {int(PRESIGNED_WINDOW.total_seconds())} s "
            "from the registry's clock: fetch a new draft and sign again"
        )
    return at


def _approval_payload(reg, session, target, user, role, decision, comment, now) -> tuple[dict, Any]:
    if role not in user.roles:
        raise PermissionDenied(f"{reg.actor} does not hold the {role} role")
    mv = target.version
    name, version = mv.model, mv.version
    if target.stage != Stage.VALIDATE.value:
        raise InvalidTransition(f"approvals are given in validate; {name} {version} is in {target.stage}")
    check_duties(session, mv, target.id, reg.actor, role)
    ev = records.latest_evaluation_row(session, target.id, "validation")
    if ev is None:
        raise InvalidTransition(
            f"{name} {version} has no validation evaluation to approve: a validator runs `modelreg validate` first"
        )
    payload = build_payload(
        "approval" if decision == "approve" else "rejection",
        decision=decision,
        role=role,
        model=name,
        version=version,
        model_artifact_digest=_artifact_digest(mv),
        evaluation_id=ev.id,
        evaluation_digest=ev.digest,
        policy={"id": ev.policy_id, "version": ev.policy_version, "digest": ev.policy_digest},
        signer=reg.actor,
        comment=comment or "",
        at=clock.isoformat(now),
    )
    return payload, ev


def check_duties(session, mv, version_id: int, actor: str, role: str) -> None:
    """Segregation of duties, in the domain: developers never validate or approve their model; whoever
    validated it (ran the validation or signed as validator) does not also approve it. No admin bypass."""
    if actor in mv.developers:
        raise SegregationOfDuties(
            f"{actor} developed {mv.model} (owner or registrant) and cannot sign as {role}"
        )
    if role == "approver":
        validators = {
            e.created_by for e in records.evaluation_rows(session, version_id) if e.purpose == "validation"
        }
        validators |= {
            r.actor for r in records.signed_records(session, version_id, "approval") if r.role == "validator"
        }
        if actor in validators:
            raise SegregationOfDuties(f"{actor} validated {mv.model} {mv.version} and cannot also approve it")


def _attestation_control(pack, control_id: str):
    """The attestation control ``control_id`` of ``pack``, switched on; else the one-line reason why not."""
    control = pack.control(control_id)
    if control.attestation is None:
        raise BadInput(
            f"control {control_id} is not an attestation (it is a {control.kind}); only attestations are signed with `attest`"
        )
    if control.disabled:
        raise BadInput(
            f"control {control_id} is switched off in policy pack {pack.id}@{pack.version}: {control.disabled_reason_en}"
        )
    return control


def _attestation_payload(actor: str, user, target, pack, control, comment, now) -> dict:
    """What ``actor`` would sign for ``control`` on ``target`` at ``now``, after the role and duty checks."""
    control_id = control.id
    mv = target.version
    name, version = mv.model, mv.version
    if control.attestation.role not in user.roles:
        raise PermissionDenied(
            f"{control_id} must be attested by a {control.attestation.role}; {actor} has {', '.join(user.roles)}"
        )
    if target.stage == Stage.RETIRE.value:
        raise InvalidTransition(f"{name} {version} is retired")
    if control.attestation.role in ("validator", "approver") and actor in mv.developers:
        raise SegregationOfDuties(
            f"{actor} developed {name} and cannot attest {control_id} as {control.attestation.role}"
        )
    return build_payload(
        "attestation",
        control_id=control_id,
        statement_zh=control.attestation.statement_zh,
        statement_en=control.attestation.statement_en,
        role=control.attestation.role,
        model=name,
        version=version,
        model_artifact_digest=_artifact_digest(mv),
        policy={"id": pack.id, "version": pack.version},
        signer=actor,
        comment=comment or "",
        at=clock.isoformat(now),
    )


def _attest_in(
    tx: Change, pack, control, key, target, *, comment: str | None, presigned: dict | None = None
) -> dict:
    """Sign (or check the ``presigned`` signature of) and record one attestation of ``target`` in the change
    ``tx``, with its audit event."""
    user = tx.user
    assert user is not None
    now = _presigned_time(presigned) if presigned is not None else clock.now()
    payload = _attestation_payload(tx.actor, user, target, pack, control, comment, now)
    _same_as_draft(presigned, payload)
    mv = target.version
    return _record_signed(
        tx,
        user,
        key,
        payload,
        kind="attestation",
        role=control.attestation.role,
        control_id=control.id,
        until=None,
        at=now,
        event="attestation.signed",
        event_payload={"control_id": control.id},
        name=mv.model,
        version=mv.version,
        presigned=presigned.get("signature") if presigned is not None else None,
        target=target,
    )


def attest(
    reg: Registry,
    name: str,
    version: str,
    *,
    control_id: str,
    comment: str | None = None,
    key_path: str | Path | None = None,
    policy: str | None = None,
    presigned: dict | None = None,
) -> dict:
    """Sign and record an attestation. ``presigned`` is one the signer made on their own machine from
    ``attestation_draft`` (checked like a presigned approval)."""
    if getattr(reg, "remote", False):  # MODELREG_URL: the service runs this same function
        return reg.attest(name, version, control_id=control_id, comment=comment, key_path=key_path)
    pack = load_policy(reg, policy)
    control = _attestation_control(pack, control_id)
    key = None if presigned is not None else _key(reg, key_path)
    version = str(version)
    with reg.change("attest", model=name, version=version) as tx:
        assert tx.user is not None and tx.target is not None
        return _attest_in(tx, pack, control, key, tx.target, comment=comment, presigned=presigned)


def attest_batch(
    reg: Registry,
    source: str | Path | list,
    *,
    key_path: str | Path | None = None,
    policy: str | None = None,
    presigned: list[dict] | None = None,
    name: str | None = None,
    lines: list[int | None] | None = None,
) -> list[dict]:
    """Sign and record many attestations in ONE unit of work: all of them or none.

    ``source`` is a YAML or JSON file (``modelreg.governance.batch`` describes the format) or a list of entry
    mappings (``model``, ``version``, ``control``, optional ``comment``; ``name`` and ``lines``: the file they
    came from, for messages). Each entry is signed on its own with the actor's key, exactly as ``attest``
    signs it, and gets its own ``attestation.signed`` event, so every record verifies alone in an evidence
    pack. An entry that cannot be recorded (unknown control, control switched off, a role the actor lacks, an
    unknown or retired version, a developer attesting as validator, a presigned record that does not verify)
    refuses the whole batch with a ``BadInput`` naming the entry (and its line in the file): nothing is
    written. ``presigned`` (one ``{"payload", "signature"}`` per entry, in order) are records the signer made
    on their own machine from ``attestation_batch_draft``, each checked like a presigned attestation."""
    from modelreg.governance.batch import entry_error, read_entries

    if getattr(reg, "remote", False):  # MODELREG_URL: drafted, signed here, recorded by the service at once
        return reg.attest_batch(source, key_path=key_path, policy=policy)
    entries = read_entries(source, name=name, lines=lines)
    if presigned is not None and len(presigned) != len(entries):
        raise BadInput(
            f"a presigned batch needs one signed record per entry ({len(entries)}). Got {len(presigned)} instead."
        )
    pack = load_policy(reg, policy)
    controls = _batch_controls(pack, entries)
    key = None if presigned is not None else _key(reg, key_path)
    done: list[dict] = []
    with reg.change("attest") as tx:
        assert tx.user is not None
        for i, (entry, control) in enumerate(zip(entries, controls, strict=True)):
            signed_here = presigned[i] if presigned is not None else None
            try:
                tx.require_proven(entry.model, entry.version)
                target = repo.find_version(tx.session, entry.model, entry.version)
                record = _attest_in(
                    tx, pack, control, key, target, comment=entry.comment, presigned=signed_here
                )
            except ModelregError as exc:
                raise entry_error(entry, exc) from None
            done.append({"entry": entry.index, **record})
    return done


def _batch_controls(pack, entries) -> list:
    """Each entry's attestation control, or the batch refused naming the first entry whose control is not one."""
    from modelreg.governance.batch import entry_error

    controls = []
    for entry in entries:
        try:
            controls.append(_attestation_control(pack, entry.control_id))
        except ModelregError as exc:
            raise entry_error(entry, exc) from None
    return controls


def attestation_batch_draft(
    reg: Registry,
    source: str | Path | list,
    *,
    policy: str | None = None,
    name: str | None = None,
    lines: list[int | None] | None = None,
) -> list[dict]:
    """The payload ``attest_batch`` would sign now for each entry (``{"entry", "payload"}``), for a signer who
    signs on their own machine: the same checks per entry, nothing written."""
    from modelreg.governance.batch import entry_error, read_entries

    entries = read_entries(source, name=name, lines=lines)
    pack = load_policy(reg, policy)
    controls = _batch_controls(pack, entries)
    now = clock.now()
    out: list[dict] = []
    with reg.reading("attest") as rd:
        if rd.user is None:
            raise PermissionDenied(reg.unknown_user_message())
        for entry, control in zip(entries, controls, strict=True):
            try:
                target = repo.find_version(rd.session, entry.model, entry.version)
                payload = _attestation_payload(reg.actor, rd.user, target, pack, control, entry.comment, now)
            except ModelregError as exc:
                raise entry_error(entry, exc) from None
            out.append({"entry": entry.index, "payload": payload})
    return out


def attestation_draft(
    reg: Registry,
    name: str,
    version: str,
    *,
    control_id: str,
    comment: str | None = None,
    policy: str | None = None,
) -> dict:
    """The payload ``attest`` would sign now, for a signer who signs on their own machine; nothing written."""
    pack = load_policy(reg, policy)
    control = _attestation_control(pack, control_id)
    with reg.reading("attest", model=name, version=str(version)) as rd:
        assert rd.target is not None
        if rd.user is None:
            raise PermissionDenied(reg.unknown_user_message())
        return _attestation_payload(reg.actor, rd.user, rd.target, pack, control, comment, clock.now())


def _same_as_draft(presigned: dict | None, payload: dict) -> None:
    if presigned is not None and presigned.get("payload") != payload:
        raise SignatureError(
            "the signed record does not match what the registry would record now (the version, the policy "
            "or the request changed): fetch a new draft and sign again"
        )


def _waiver_terms(reg: Registry, control_id: str, until, reason: str, gate: str, policy: str | None):
    if gate not in records.WAIVER_SCOPES:
        raise BadInput(f"--gate must be one of {', '.join(records.WAIVER_SCOPES)}. Got {gate!r} instead.")
    pack = load_policy(reg, policy)
    pack.control(control_id)
    if not reason or not reason.strip():
        raise BadInput("a waiver needs --reason")
    if isinstance(until, str):
        try:
            text = until.strip()
            until_dt = clock.parse(text + ("T23:59:59Z" if len(text) == 10 else ""))
        except ValueError:
            raise BadInput(
                f"--until must be a date (YYYY-MM-DD) or an ISO datetime. Got {until!r} instead."
            ) from None
    else:
        until_dt = clock.to_utc(until)
    now = clock.now()
    if until_dt <= now:
        raise BadInput(f"--until must be in the future. Got {clock.isoformat(until_dt)} instead.")
    if until_dt - now > timedelta(days=MAX_WAIVER_DAYS):
        raise BadInput(f"a waiver may last at most {MAX_WAIVER_DAYS} days; re-approve it when it expires")
    return until_dt


def _waiver_payload(reg, target, control_id, until_dt, reason, gate, now) -> dict:
    mv = target.version
    if reg.actor in mv.developers:
        raise SegregationOfDuties(f"{reg.actor} developed {mv.model} and cannot waive its controls")
    return build_payload(
        "waiver",
        control_id=control_id,
        model=mv.model,
        version=mv.version,
        model_artifact_digest=_artifact_digest(mv),
        reason=reason.strip(),
        gates=["deploy", "monitor"] if gate == "all" else [gate],
        until=clock.isoformat(until_dt),
        signer=reg.actor,
        at=clock.isoformat(now),
    )


def waive(
    reg: Registry,
    name: str,
    version: str,
    *,
    control_id: str,
    until: str | datetime,
    reason: str,
    gate: str = "deploy",
    key_path: str | Path | None = None,
    policy: str | None = None,
    presigned: dict | None = None,
) -> dict:
    """Sign and record a waiver. ``presigned`` is one the signer made on their own machine from
    ``waiver_draft`` (checked like a presigned approval)."""
    if getattr(reg, "remote", False):  # MODELREG_URL: the service runs this same function
        return reg.waive(
            name, version, control_id=control_id, until=until, reason=reason, gate=gate, key_path=key_path
        )
    until_dt = _waiver_terms(reg, control_id, until, reason, gate, policy)
    key = None if presigned is not None else _key(reg, key_path)
    version = str(version)
    with reg.change("waive", model=name, version=version) as tx:
        user, target = tx.user, tx.target
        assert user is not None and target is not None
        now = _presigned_time(presigned) if presigned is not None else clock.now()
        payload = _waiver_payload(reg, target, control_id, until_dt, reason, gate, now)
        _same_as_draft(presigned, payload)
        return _record_signed(
            tx,
            user,
            key,
            payload,
            kind="waiver",
            role="approver",
            control_id=control_id,
            until=until_dt,
            at=now,
            event="waiver.granted",
            event_payload={
                "control_id": control_id,
                "gate": gate,
                "until": clock.isoformat(until_dt),
                "reason": reason.strip(),
            },
            name=name,
            version=version,
            presigned=presigned.get("signature") if presigned is not None else None,
        )


def waiver_draft(
    reg: Registry,
    name: str,
    version: str,
    *,
    control_id: str,
    until: str | datetime,
    reason: str,
    gate: str = "deploy",
    policy: str | None = None,
) -> dict:
    """The payload ``waive`` would sign now, for a signer who signs on their own machine; nothing written."""
    until_dt = _waiver_terms(reg, control_id, until, reason, gate, policy)
    with reg.reading("waive", model=name, version=str(version)) as rd:
        assert rd.target is not None
        if rd.user is None:
            raise PermissionDenied(reg.unknown_user_message())
        return _waiver_payload(reg, rd.target, control_id, until_dt, reason, gate, clock.now())


def _record_signed(
    tx: Change,
    user,
    key,
    payload: dict,
    *,
    kind: str,
    role: str | None,
    control_id: str | None,
    until: datetime | None,
    at: datetime,
    event: str,
    event_payload: dict,
    name: str,
    version: str,
    presigned: dict | None = None,
    target=None,
) -> dict:
    """Sign the payload with the actor's key (checked against their registered key), store the record and its
    audit event in the change's transaction. A ``presigned`` signature (made by the signer elsewhere) is
    verified against the registered key instead. ``target``: the version (default: the change's target)."""
    target = target if target is not None else tx.target
    assert target is not None
    if presigned is not None:
        data, sig = verify_presigned(payload, presigned, user.public_key_pem, tx.actor)
    else:
        data, sig = sign_payload(payload, key, user.public_key_pem, tx.actor)
    record_id = store.add_signed_record(
        tx.session,
        version_id=target.id,
        kind=kind,
        role=role,
        control_id=control_id,
        actor=tx.actor,
        payload=data,
        signature=sig.to_dict(),
        until=until,
        at=at,
    )
    tx.event(
        event,
        model=name,
        version=version,
        payload={"record_id": record_id, **event_payload, "key_id": sig.key_id},
    )
    return {"record_id": record_id, "payload": payload, "signature": sig.to_dict()}


def evaluation_json(ev: Evaluation) -> str:
    return json.dumps(ev.to_dict(), ensure_ascii=False, sort_keys=True)
