"""The policy pack's gate requirements, plugged into the registry's one gate mechanism.

For a gate (submit, deploy, retire) and the version's risk tier, every applicable control of the pack is
checked: requirement controls by their predicate, machine checks through the latest evaluation for that gate
(current: same model artifact and same policy digest; no fail or error unless waived), attestations through
valid signatures; at deploy, the tier's validator and approver approvals, valid and bound to the current
evaluation. A refusal lists every unmet item with the clause it comes from.
"""

from __future__ import annotations

from collections.abc import Callable

from modelreg.domain.stages import GATE_EVALUATION, GATES
from modelreg.errors import PolicyError
from modelreg.governance import records
from modelreg.registry import gates
from modelreg.registry.gates import BASIC_REQUIREMENTS, GateContext, Unmet

EVALUATION_FOR_GATE = GATE_EVALUATION
DEFAULT_CARD_FIELDS = ("intended_use", "excluded_uses", "limitations")


def _u(control, message_en: str, message_zh: str, requirement: str | None = None) -> Unmet:
    return Unmet(
        requirement or control.id, message_en, message_zh, tuple(control.clauses), control_id=control.id
    )


# -- requirement predicates (ids fixed by the policy schema) ---------------------------------------


def _req_owner(ctx, control, params) -> list[Unmet]:
    return gates.owner_assigned(ctx, control)


def _req_purpose(ctx, control, params) -> list[Unmet]:
    return gates.purpose_stated(ctx, control)


def _req_tier(ctx, control, params) -> list[Unmet]:
    return gates.risk_tier_assigned(ctx, control)


def _req_card(ctx, control, params) -> list[Unmet]:
    fields = params.get("fields") or DEFAULT_CARD_FIELDS
    missing = [f for f in fields if not str(ctx.version.model_card.get(f, "")).strip()]
    if not missing:
        return []
    return [
        _u(
            control,
            f"the model card lacks {', '.join(missing)} (modelreg card NAME VERSION --set FIELD=...)",
            f"模型卡缺少字段：{'、'.join(missing)}",
        )
    ]


def _req_data(role_names: tuple[str, ...], en: str, zh: str):
    def check(ctx, control, params) -> list[Unmet]:
        if any(d.role in role_names for d in ctx.datasets):
            return []
        return [
            _u(
                control,
                f"no {en} data attached (modelreg attach-data --role {role_names[0]})",
                f"未挂接{zh}数据",
            )
        ]

    return check


def _req_validator_independent(ctx, control, params) -> list[Unmet]:
    ev = records.latest_evaluation_row(ctx.session, ctx.version_id, "validation")
    if ev is None:
        return []  # reported by evaluation_current
    if ev.created_by in ctx.version.developers:
        return [
            _u(
                control,
                f"the validation was run by {ev.created_by}, a developer of the model",
                "验证由模型开发人员执行，缺乏独立性",
            )
        ]
    return []


def _req_evaluation_current(ctx, control, params) -> list[Unmet]:
    purpose = EVALUATION_FOR_GATE.get(ctx.gate, "validation")
    ev = records.latest_evaluation_row(ctx.session, ctx.version_id, purpose)
    if ev is None:
        cmd = "modelreg validate" if purpose == "validation" else "modelreg precheck"
        return [
            _u(control, f"no {purpose} evaluation of this version: run `{cmd}`", "该版本尚无验证评估结果")
        ]
    problems = _stale(ctx, ev)
    return [_u(control, p[0], p[1]) for p in problems]


def _stale(ctx, ev) -> list[tuple[str, str]]:
    from modelreg.governance.service import _artifact_digest

    out = []
    if ev.model_artifact_digest != _artifact_digest(ctx.version):
        out.append(
            (
                "the latest evaluation ran on a different model artifact: re-run it",
                "最近一次评估针对的模型文件已变更，需重新评估",
            )
        )
    pack = ctx.options.get("_pack") or load_policy_for(ctx)
    if ev.policy_digest != pack.digest:
        out.append(
            (
                f"the latest evaluation used policy {ev.policy_id}@{ev.policy_version} ({ev.policy_digest[:15]}…), not the current one: re-run it",
                "最近一次评估所用政策包已变更，需重新评估",
            )
        )
    return out


def _req_mlflow_run(ctx, control, params) -> list[Unmet]:
    return (
        []
        if ctx.version.mlflow_run_id
        else [_u(control, "no MLflow run is linked to this version", "未关联 MLflow 训练记录")]
    )


def _req_pip(ctx, control, params) -> list[Unmet]:
    reqs = (ctx.version.mlflow or {}).get("pip_requirements")
    return (
        []
        if reqs
        else [
            _u(
                control,
                "the model's open-source components (pip requirements) are not recorded",
                "未记录模型所用开源组件",
            )
        ]
    )


def _req_retire_reason(ctx, control, params) -> list[Unmet]:
    if str(ctx.options.get("reason") or "").strip():
        return []
    # Re-checked after the move (an evidence pack of a retired version): the reason is the one the retire
    # transition recorded, not an option only the retire command itself passes.
    if ctx.version.stage.value == "retire" and _recorded_retire_reason(ctx):
        return []
    return [_u(control, "retirement needs a reason", "退出需说明原因")]


def _recorded_retire_reason(ctx) -> str | None:
    from modelreg.store import repo

    return repo.retire_reason(ctx.session, ctx.version_id)


def _req_audit(ctx, control, params) -> list[Unmet]:
    from modelreg.audit import log as audit_log

    size, root = audit_log.state(ctx.session)
    rows = audit_log.iter_rows(ctx.session.connection())  # the gate's own snapshot
    tree_hash, _ = audit_log.crypto_settings(ctx.session)
    report = audit_log.verify_rows(rows, state_size=size, state_root=root, tree_hash=tree_hash)
    return (
        []
        if report.ok
        else [_u(control, f"the audit log does not verify: {report.problem}", "审计日志校验失败")]
    )


DEFAULT_UNGOVERNED_MAX_AGE_DAYS = 31  # the catalog's CHK-LC-01: inventory reconciled monthly


def _req_mlflow_ungoverned(ctx, control, params) -> list[Unmet]:
    """The gate cannot reach MLflow; ``sync`` / ``sync --check`` record what they found there
    (``mlflow.ungoverned_checked``). Unmet when no such record is recent enough, or when the latest lists a
    version of this model that exists in MLflow only."""
    from datetime import timedelta

    from modelreg import clock
    from modelreg.audit import log as audit_log
    from modelreg.domain.events import UNGOVERNED_CHECKED

    try:
        max_age = float(params.get("max_age_days", DEFAULT_UNGOVERNED_MAX_AGE_DAYS))
    except (TypeError, ValueError):
        max_age = -1.0
    if not max_age > 0:
        return [
            _u(
                control,
                f"max_age_days must be a positive number. Got {params.get('max_age_days')!r}",
                "参数错误",
            )
        ]
    ev = audit_log.latest_event(ctx.session, UNGOVERNED_CHECKED)
    how = "an operator runs `modelreg sync --check` (it records what it finds)"
    if ev is None:
        return [
            _u(
                control,
                f"no reconciliation of MLflow against the registry is recorded: {how}",
                "尚无 MLflow 与登记库的核对记录：请运维人员运行 modelreg sync --check",
            )
        ]
    age = clock.now() - ev.at
    if age > timedelta(days=max_age):
        return [
            _u(
                control,
                f"the latest reconciliation of MLflow (#{ev.seq}, {clock.isoformat(ev.at)}) is {age.days} day(s) old, "
                f"more than {max_age:g}: {how}",
                f"最近一次 MLflow 核对已超过 {max_age:g} 天：请重新运行 modelreg sync --check",
            )
        ]
    name = ctx.version.model
    loose = sorted(
        {str(v.get("version")) for v in ev.payload.get("ungoverned_versions", []) if v.get("model") == name},
        key=lambda v: (len(v), v),
    )
    if not loose:
        return []
    return [
        _u(
            control,
            f"MLflow holds version(s) {', '.join(loose)} of {name} that are not registered with modelreg "
            f"(reconciliation #{ev.seq}, {clock.isoformat(ev.at)}): register them (`modelreg register {name} "
            "VERSION`) or delete them in MLflow, then run `modelreg sync --check` again",
            f"MLflow 中存在未纳入治理的 {name} 版本 {', '.join(loose)}：请登记或在 MLflow 中删除后重新核对",
        )
    ]


def _req_approvals(ctx, control, params) -> list[Unmet]:
    if ctx.gate != "deploy":
        return []
    return approval_unmet(ctx, control)


PREDICATES: dict[str, Callable] = {
    "owner_assigned": _req_owner,
    "purpose_stated": _req_purpose,
    "risk_tier_assigned": _req_tier,
    "model_card_complete": _req_card,
    "training_data_attached": _req_data(("training",), "training", "训练"),
    "validation_data_attached": _req_data(("validation", "holdout"), "validation/hold-out", "验证/留出"),
    "validator_independent": _req_validator_independent,
    "approvals_by_tier": _req_approvals,
    "evaluation_current": _req_evaluation_current,
    "mlflow_run_linked": _req_mlflow_run,
    "pip_requirements_recorded": _req_pip,
    "retirement_reason_recorded": _req_retire_reason,
    "audit_log_verifies": _req_audit,
    "mlflow_ungoverned_checked": _req_mlflow_ungoverned,
}


def load_policy_for(ctx: GateContext):
    from modelreg.governance.service import load_policy

    reg = ctx.options.get("_registry")
    pack = load_policy(reg) if reg is not None else None
    if pack is None:
        raise PolicyError("no policy pack configured")
    from modelreg.operations import effective_pack

    pack = effective_pack(pack, ctx.version)
    ctx.options["_pack"] = pack
    return pack


def approval_unmet(ctx: GateContext, control=None) -> list[Unmet]:
    """The tier's approvals: valid signatures, bound to the current evaluation and artifact, distinct people,
    none by a developer, approvers not validators. A valid rejection on the current evaluation blocks."""
    from modelreg.governance.service import _artifact_digest

    pack = ctx.options.get("_pack") or load_policy_for(ctx)
    need = pack.required_approvals(ctx.version.risk_tier)
    clauses = tuple(control.clauses) if control is not None else ("CBIRC-2022-13.1",)
    cid = control.id if control is not None else "approvals_by_tier"
    ev = records.latest_evaluation_row(ctx.session, ctx.version_id, "validation")
    if ev is None:
        return [
            Unmet(
                "approvals_by_tier",
                "approvals need a validation evaluation first",
                "审批须基于验证评估",
                clauses,
                cid,
            )
        ]
    recs = records.signed_records(ctx.session, ctx.version_id)
    devs = ctx.version.developers
    validators = {
        e.created_by
        for e in records.evaluation_rows(ctx.session, ctx.version_id)
        if e.purpose == "validation"
    }
    from modelreg.store import repo

    good: dict[str, set[str]] = {"validator": set(), "approver": set()}
    out: list[Unmet] = []
    for r in recs:
        if r.kind not in ("approval", "rejection"):
            continue
        p = r.payload
        current = (
            r.valid_signature
            and p.get("evaluation_digest") == ev.digest
            and p.get("model_artifact_digest") == _artifact_digest(ctx.version)
            and p.get("model") == ctx.version.model
            and p.get("version") == ctx.version.version
            and p.get("signer") == r.actor
            and p.get("role") == r.role
        )
        if not current:
            continue
        if r.kind == "rejection":
            out.append(
                Unmet(
                    "rejected",
                    f"{r.actor} rejected this version as {r.role}: {p.get('comment') or 'no comment'}",
                    f"{r.actor} 以{r.role}身份否决",
                    clauses,
                    cid,
                )
            )
            continue
        signer = repo.get_user(ctx.session, r.actor)
        if signer is None or r.role not in signer.roles or r.actor in devs:
            continue
        if r.role == "approver" and (r.actor in validators or r.actor in good["validator"]):
            continue
        good[str(r.role)].add(r.actor)
    good["approver"] -= good["validator"]
    for role, n in need.items():
        have = len(good.get(role, set()))
        if have < n:
            out.append(
                Unmet(
                    f"approvals_{role}",
                    f"{n} valid {role} approval(s) needed for a {ctx.version.risk_tier}-risk model, {have} present"
                    + (f" ({', '.join(sorted(good.get(role, set())))})" if have else ""),
                    f"{ctx.version.risk_tier} 风险等级需 {n} 个有效{'验证人' if role == 'validator' else '审批人'}签署，现有 {have} 个",
                    clauses,
                    cid,
                )
            )
    return out


def policy_gate(ctx: GateContext) -> list[Unmet]:
    pack = ctx.options.get("_pack") or load_policy_for(ctx)
    tier = ctx.version.risk_tier if ctx.version.risk_tier in pack.tier_ids else None
    out: list[Unmet] = []
    seen: set[str] = set()
    # The basic requirements always hold, whatever the pack says.
    for basic in BASIC_REQUIREMENTS.get(ctx.gate, []):
        for u in basic(ctx):
            seen.add(u.requirement)
            out.append(u)
    if tier is None:
        return out
    controls = pack.controls_for(ctx.gate, tier)
    evaluation = None
    purpose = EVALUATION_FOR_GATE.get(ctx.gate)
    checks = [c for c in controls if c.check is not None]
    if checks and purpose:
        evaluation = records.latest_evaluation_row(ctx.session, ctx.version_id, purpose)
        if evaluation is None:
            cmd = "modelreg validate" if purpose == "validation" else "modelreg precheck --record"
            out.append(
                Unmet(
                    "evaluation_missing",
                    f"{len(checks)} machine control(s) need a {purpose} evaluation: run `{cmd}`",
                    "机器检查项尚无评估结果",
                    tuple(sorted({cl for c in checks for cl in c.clauses})),
                )
            )
        else:
            for msg in _stale(ctx, evaluation):
                out.append(Unmet("evaluation_stale", msg[0], msg[1], ("CBIRC-2022-26.4",)))
            waivers = records.active_waivers(ctx.session, ctx.version_id, gate="deploy")
            findings = {f.control_id: f for f in records.findings_for(ctx.session, evaluation, waivers)}
            for c in checks:
                f = findings.get(c.id)
                if f is None:
                    out.append(
                        _u(
                            c,
                            f"{c.title_en}: not evaluated by the latest {purpose} (policy changed?)",
                            f"{c.title_zh}：最近一次评估未覆盖",
                        )
                    )
                elif f.status in records.BLOCKING_STATUSES:
                    detail = f.detail
                    what = detail.get("reason") or ""
                    out.append(
                        _u(
                            c,
                            f"{c.title_en}: {f.status} — {what}",
                            f"{c.title_zh}：{'未通过' if f.status == 'fail' else '无法判定'}",
                        )
                    )
    # An attestation that grants something (CHK-ROB-04.exec) is a permission the version may never need.
    attestations = [c for c in controls if c.attestation is not None and c.attestation.grants is None]
    if attestations:
        signed = records.signed_records(ctx.session, ctx.version_id, "attestation")
        for c in attestations:
            ok = any(
                r.counts
                and r.control_id == c.id
                and r.payload.get("control_id") == c.id
                and r.payload.get("model") == ctx.version.model
                and r.payload.get("version") == ctx.version.version
                for r in signed
            )
            if not ok:
                out.append(
                    _u(
                        c,
                        f"{c.title_en}: needs a signed attestation by a {c.attestation.role} (modelreg attest NAME VERSION --control {c.id})",
                        f"{c.title_zh}：需{c.attestation.role}签署声明",
                    )
                )
    for c in controls:
        if c.requirement is None:
            continue
        fn = PREDICATES.get(c.requirement.id)
        if fn is None:
            out.append(_u(c, f"unknown requirement {c.requirement.id}", "未知要求"))
            continue
        if c.requirement.id in seen:
            continue
        for u in fn(ctx, c, c.requirement_params(tier)):
            key = (u.requirement, u.message_en)
            if key in {(x.requirement, x.message_en) for x in out}:
                continue
            out.append(u)
    if ctx.gate == "deploy" and not any(
        c.requirement is not None and c.requirement.id == "approvals_by_tier" for c in controls
    ):
        out.extend(approval_unmet(ctx))
    if ctx.gate == "deploy":
        from modelreg.operations.findings import blocking_unmet

        out.extend(blocking_unmet(ctx, pack, {u.control_id for u in out if u.control_id}))
    return out


def install(registry) -> None:
    def gate(ctx: GateContext) -> list[Unmet]:
        ctx.options.setdefault("_registry", registry)
        return policy_gate(ctx)

    for name in GATES:
        registry.requirements[name] = [gate]
