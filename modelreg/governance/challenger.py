"""Champion/challenger: the deployed version and a version in validation scored on the same monitoring data,
their AUC difference with a DeLong interval (overall and per segment, ``monitors.challenger``), stored as a
``challenger`` evaluation on *both* versions in one registry change (one ``evaluation.recorded`` event per
version). It never moves a version: no transition, no alias, no suspension — the comparison is evidence
for the people who decide a promotion.

Models load through the evaluation path (``modelreg.integrations.mlflow.models.load_model``): executable
formats run only in the isolated worker, with the version's own execution grant.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from modelreg import clock
from modelreg.domain.stages import Stage
from modelreg.errors import BadInput, NotFound
from modelreg.governance import records
from modelreg.governance.records import Evaluation
from modelreg.governance.runner import SCORE_COLUMN, EvaluationInput, digest_of
from modelreg.registry import Registry
from modelreg.store import governance as store

PURPOSE = "challenger"
GATE = "monitor"
ACTION = "monitor"  # operators and validators run it, like monitoring
CHAMPION_SCORE = "__modelreg_champion_score__"
CHALLENGER_SCORE = "__modelreg_challenger_score__"


@dataclass(frozen=True)
class ChallengerRun:
    champion: Evaluation  # the evaluation stored on the champion
    challenger: Evaluation  # the same comparison stored on the challenger
    result: Any  # the challenger MonitorResult

    def comparison(self) -> list[dict[str, Any]]:
        """One row per group (None = all rows): counts, both AUCs, the difference, its interval, p-value."""
        rows: dict[Any, dict[str, Any]] = {}
        for m in self.result.metrics:
            row = rows.setdefault(m.group, {"segment": m.group})
            if m.name == "rows":
                row.update(m.counts)
            row[m.name] = m.value
            if m.name == "auc_difference":
                row["ci_low"], row["ci_high"] = m.ci_low, m.ci_high
            if m.status.value != "ok":
                row["status"], row["reason"] = m.status.value, m.reason
        return list(rows.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "champion": self.champion.to_dict(),
            "challenger": self.challenger.to_dict(),
            "comparison": self.comparison(),
            "notes": list(self.result.notes),
        }


def run_challenger(
    reg: Registry,
    name: str,
    *,
    champion: str,
    challenger: str,
    data: Any,
    target: str,
    segments: tuple[str, ...] = (),
    positive_label: Any = None,
    min_segment_size: int = 100,
    confidence: float = 0.95,
    policy: str | None = None,
    encoding: str | None = None,
    progress: Callable[[str], None] | None = None,
    models: dict[str, Any] | None = None,
) -> ChallengerRun:
    """Score both versions on ``data``, compare their AUCs, store the comparison on both versions.
    ``models`` (Python API): already-loaded model objects by version, used instead of the versions' MLflow
    models (as ``EvaluationInput.model``)."""
    if getattr(reg, "remote", False):
        return reg.run_challenger(name, champion=champion, challenger=challenger, data=data, target=target,
                                  segments=segments, positive_label=positive_label,
                                  min_segment_size=min_segment_size, confidence=confidence, policy=policy,
                                  encoding=encoding, progress=progress, models=models)  # fmt: skip
    models = {str(k): v for k, v in (models or {}).items()}
    from modelreg.governance import runner
    from modelreg.governance.service import (
        _declared_from_card,
        _declared_schema,
        execution_grant,
        load_policy,
    )
    from modelreg.operations import effective_pack

    say = progress or (lambda _m: None)
    champion, challenger = str(champion), str(challenger)
    # Deny first: the permission check comes before anything about the input is said.
    with reg.reading(ACTION, model=name, version=champion) as rd:
        if champion == challenger:
            raise BadInput(
                f"--champion and --challenger must be different versions. Got {champion} twice instead."
            )
        champ = _version_in(rd, name, champion, Stage.DEPLOY, "--champion", "the deployed champion")
        chall = _version_in(rd, name, challenger, Stage.VALIDATE, "--challenger", "a challenger in validate")
        bases = {}
        for role, target_state in (("champion", champ), ("challenger", chall)):
            base = records.latest_evaluation_row(rd.session, target_state.id, "validation")
            bases[role] = (base.data or {}).get("spec") if base is not None else None
    frame = runner._load(data, "--data", encoding)
    for col in (target, *segments):
        if col not in frame.columns:
            what = "--target" if col == target else "--segment"
            raise BadInput(
                f"{what} {col} is not a column of --data (it has {', '.join(map(str, frame.columns[:15]))})"
            )
    pack = effective_pack(load_policy(reg, policy), champ.version)
    scored = frame.copy()
    spec = None
    notes: list[str] = []
    model_notes: dict[str, str | None] = {}
    for role, state, column in (("champion", champ, CHAMPION_SCORE), ("challenger", chall, CHALLENGER_SCORE)):
        mv = state.version
        given = models.get(mv.version)
        if given is None and not mv.model_uri:
            raise BadInput(
                f"{name} {mv.version} ({role}) has no MLflow model to score: register it from MLflow"
            )
        inp = EvaluationInput(
            data=frame,
            target=target,
            model_uri=None if given is not None else mv.model_uri,
            model=given,
            positive_label=positive_label,
            encoding=encoding,
        )
        _declared_from_card(inp, mv.model_card)
        _declared_schema(inp, mv, bases[role])
        if given is None:
            inp.execution_grant = execution_grant(reg, pack, state.id, mv.version)
        say(f"scoring {name} {mv.version} ({role}) on {len(frame):,} rows")
        with reg.settings.mlflow_scope():
            spec_r, current, _ref, _model, note = runner.build(inp, notes)
        scored[column] = current[SCORE_COLUMN].to_numpy()
        model_notes[role] = note
        spec = spec_r if spec is None else spec
    assert spec is not None
    from monitors.base import ColumnSpec
    from monitors.challenger import ChallengerMonitor

    cspec = ColumnSpec((), target=target, positive_label=spec.positive_label)
    params = {
        "champion_score": CHAMPION_SCORE,
        "challenger_score": CHALLENGER_SCORE,
        "segments": list(segments),
        "min_segment_size": int(min_segment_size),
        "confidence": float(confidence),
    }
    from monitors.base import ParameterError

    try:
        result = ChallengerMonitor().run(cspec, current=scored, params=params)
    except ParameterError as exc:
        raise BadInput(str(exc)) from None
    from monitors.base import fingerprint

    fps = [fingerprint(frame, "current").to_dict()]
    from modelreg.policy import evaluate_results

    outcomes = [
        o
        for o in evaluate_results(pack, GATE, champ.version.risk_tier, {"challenger": result})
        if o.monitor == "challenger"
    ]
    result_dict = result.to_dict()
    data_doc = {
        "fingerprints": fps,
        "spec": cspec.to_dict(),
        "params": {"challenger": params},
        "notes": [*notes, *result.notes],
        "champion": {
            "version": champion,
            "model_uri": champ.version.model_uri,
            "model_loading": model_notes["champion"],
        },
        "challenger": {
            "version": challenger,
            "model_uri": chall.version.model_uri,
            "model_loading": model_notes["challenger"],
        },
        "never_changes_deployment": True,
    }
    from modelreg.policy import worst_status

    status = worst_status(outcomes)
    now = clock.now()
    out: dict[str, Evaluation] = {}
    with reg.change(ACTION, model=name, version=champion) as tx:
        tx.require_proven(name, challenger)
        from modelreg.store import repo

        rows = {"champion": tx.target, "challenger": repo.find_version(tx.session, name, challenger)}
        for role, stage in (("champion", Stage.DEPLOY), ("challenger", Stage.VALIDATE)):
            state = rows[role]
            if state is None or state.stage != stage.value:
                raise BadInput(
                    f"{name} {champion if role == 'champion' else challenger} left {stage.value} while the "
                    "comparison ran: nothing was stored"
                )
        for role, state in rows.items():
            assert state is not None
            mv = state.version
            content = {
                "model": name,
                "version": mv.version,
                "purpose": PURPOSE,
                "gate": GATE,
                "tier": mv.risk_tier,
                "policy": {"id": pack.id, "version": pack.version, "digest": pack.digest},
                "model_artifact_digest": mv.artifact_digest or "unknown",
                "data": {**data_doc, "role": role},
                "results": {"challenger": digest_of(result_dict)},
                "outcomes": [o.to_dict() for o in outcomes],
                "created_by": reg.actor,
                "created_at": clock.isoformat(now),
            }
            digest = digest_of(content)
            ev_id = store.add_evaluation(
                tx.session,
                version_id=state.id,
                purpose=PURPOSE,
                gate=GATE,
                tier=mv.risk_tier,
                policy_id=pack.id,
                policy_version=pack.version,
                policy_digest=pack.digest,
                model_artifact_digest=mv.artifact_digest or "unknown",
                data=content["data"],
                status=status,
                digest=digest,
                created_by=reg.actor,
                created_at=now,
            )
            store.add_monitor_result(tx.session, ev_id, "challenger", result_dict, digest_of(result_dict))
            for o in outcomes:
                control = pack.control(o.control_id)
                detail = o.to_dict()
                detail.update({"title_zh": control.title_zh, "title_en": control.title_en})
                store.add_finding(
                    tx.session,
                    evaluation_id=ev_id,
                    version_id=state.id,
                    control_id=o.control_id,
                    status=o.status,
                    severity=o.severity or control.severity,
                    clause_ids=list(o.clause_ids),
                    detail=detail,
                )
            overall = result.metric("auc_difference")
            tx.event(
                "evaluation.recorded",
                model=name,
                version=mv.version,
                payload={
                    "evaluation_id": ev_id,
                    "purpose": PURPOSE,
                    "gate": GATE,
                    "policy": f"{pack.id}@{pack.version}",
                    "policy_digest": pack.digest,
                    "digest": digest,
                    "status": status,
                    "counts": _counts(outcomes),
                    "failed_controls": sorted(
                        o.control_id for o in outcomes if o.status in ("fail", "error")
                    ),
                    "role": role,
                    "champion": champion,
                    "challenger": challenger,
                    "auc_difference": overall.value,
                },
            )
            tx.session.flush()
            out[role] = records.to_evaluation(
                tx.session, store.evaluation(tx.session, ev_id), name, mv.version
            )
    return ChallengerRun(out["champion"], out["challenger"], result)


def _counts(outcomes: list) -> dict[str, int]:
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.status] = counts.get(o.status, 0) + 1
    return counts


def _version_in(rd: Any, name: str, version: str, stage: Stage, option: str, what: str) -> Any:
    from modelreg.store import repo

    state = repo.find_version(rd.session, name, version)
    if state is None:
        raise NotFound(f"{option} {name} {version} is not registered")
    if state.stage != stage.value:
        raise BadInput(
            f"{option} {version} must be {what} (stage {stage.value}). Got stage {state.stage} instead."
        )
    if stage is Stage.DEPLOY and state.suspended:
        raise BadInput(f"{option} {version} is suspended: a suspended version is no champion")
    return state


__all__ = ["PURPOSE", "ChallengerRun", "run_challenger"]
