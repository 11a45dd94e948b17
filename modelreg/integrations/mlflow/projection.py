"""MLflow as a projection of the registry (never the source of truth).

The registry stage is mirrored to the model-version tag ``modelreg.stage`` and a configurable alias (default
``production``) points at the deployed, not-suspended version. A state change queues the projection in the
outbox inside its transaction; it is applied after commit (modelreg/integrations/mlflow/outbox.py), so MLflow
can lag the registry after a crash or an MLflow outage, never lead it. ``sync --check``
reports any divergence (e.g. an alias moved by hand in MLflow); ``sync`` repairs MLflow from the registry,
audited.
"""

from __future__ import annotations

from dataclasses import dataclass

from modelreg.domain.entities import ModelVersion
from modelreg.domain.stages import Stage
from modelreg.integrations.mlflow.gateway import MlflowGateway
from modelreg.registry import Registry

STAGE_TAG = "modelreg.stage"


@dataclass(frozen=True)
class Divergence:
    model: str
    kind: str  # alias | stage_tag | ungoverned_model | ungoverned_version
    expected: str | None
    actual: str | None
    detail: str
    version: str | None = None  # for stage tags

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "version": self.version,
            "kind": self.kind,
            "expected": self.expected,
            "actual": self.actual,
            "detail": self.detail,
        }


def _gateway(reg: Registry) -> MlflowGateway:
    cached = reg.extensions.get("mlflow.gateway")
    if cached is None:
        cached = MlflowGateway.from_settings(reg.settings)
        reg.extensions["mlflow.gateway"] = cached
    return cached


def _linked(version: ModelVersion) -> bool:
    return bool(version.model_uri)


def install(reg: Registry) -> None:
    from modelreg.integrations.mlflow.outbox import drain_quietly

    def evaluation_projection(evaluation, draft, stored_files) -> str | None:
        return log_evaluation(reg, evaluation, draft)

    # Stage tags and the alias follow from the outbox after the registry committed (never before).
    reg.outbox_drainers.append(drain_quietly)
    reg.evaluation_projections.append(evaluation_projection)


def log_evaluation(reg: Registry, evaluation, draft) -> str | None:
    """Each Evaluation is also an MLflow run (metrics with log_batch, artifacts, tags linking the version), so
    a data scientist sees the findings in the MLflow UI."""
    if not evaluation.data.get("model_uri") and not _has_link(reg, evaluation):
        return None
    metrics: dict[str, float] = {}
    for kind, result in draft.results.items():
        for m in result.metrics:
            if m.value is None:
                continue
            key = ".".join(x for x in (kind, m.name, m.feature, m.group) if x)
            metrics[key] = float(m.value)
    for f in evaluation.findings:
        metrics[f"finding.{f.control_id}.failed"] = 1.0 if f.raw_status in ("fail", "error") else 0.0
    tags = {
        "modelreg.model": evaluation.model,
        "modelreg.version": evaluation.version,
        "modelreg.evaluation_id": str(evaluation.id),
        "modelreg.purpose": evaluation.purpose,
        "modelreg.status": evaluation.status,
        "modelreg.policy": f"{evaluation.policy_id}@{evaluation.policy_version}",
        "modelreg.digest": evaluation.digest,
    }
    params = {"gate": evaluation.gate, "tier": evaluation.tier, "policy_digest": evaluation.policy_digest}
    return _gateway(reg).log_evaluation(
        evaluation.model,
        evaluation.version,
        run_name=f"modelreg {evaluation.purpose} #{evaluation.id}",
        metrics=metrics,
        params=params,
        tags=tags,
        artifacts_dir=draft.artifacts_dir,
    )


def _has_link(reg: Registry, evaluation) -> bool:
    try:
        return bool(reg.show(evaluation.model, evaluation.version).model_uri)
    except Exception:
        return False


def check(reg: Registry) -> list[Divergence]:
    if getattr(reg, "remote", False):
        return reg.sync_check(fresh=True)["divergences"]
    gw = _gateway(reg)
    alias = reg.settings.mlflow_alias
    out: list[Divergence] = []
    by_model: dict[str, list[ModelVersion]] = {}
    for v in reg.list():
        if _linked(v):
            by_model.setdefault(v.model, []).append(v)
    for model, versions in sorted(by_model.items()):
        expected = next((v.version for v in versions if v.stage is Stage.DEPLOY and not v.suspended), None)
        actual = gw.get_alias(model, alias)
        if actual != expected:
            out.append(
                Divergence(
                    model,
                    "alias",
                    expected,
                    actual,
                    f"MLflow alias {alias!r} points at version {actual}"
                    if actual
                    else f"MLflow alias {alias!r} is missing",
                )
            )
        tags = gw.stage_tags(model)
        for v in versions:
            want = v.stage.value + (":suspended" if v.suspended else "")
            have = tags.get(v.version)
            if have != want:
                out.append(
                    Divergence(
                        model,
                        "stage_tag",
                        want,
                        have,
                        f"version {v.version} tag {STAGE_TAG}={have!r}, registry says {want!r}",
                        v.version,
                    )
                )
    return out


UNGOVERNED_KINDS = ("ungoverned_model", "ungoverned_version")


def ungoverned(reg: Registry) -> list[Divergence]:
    """MLflow registered models modelreg has never heard of, and versions of governed models created in
    MLflow alone (plain ``mlflow.register_model``). Reported, never repaired: bringing a version under
    governance is a developer's ``modelreg register``, not something sync may decide."""
    if getattr(reg, "remote", False):
        return reg.sync_check()["ungoverned"]
    gw = _gateway(reg)
    known: dict[str, set[str]] = {}
    for v in reg.list():
        known.setdefault(v.model, set()).add(str(v.version))
    out: list[Divergence] = []
    for name in gw.registered_model_names():
        versions = list(gw.stage_tags(name))
        if name not in known:
            out.append(
                Divergence(
                    name,
                    "ungoverned_model",
                    None,
                    ",".join(versions) or None,
                    f"registered in MLflow ({len(versions)} version(s)) but unknown to modelreg",
                )
            )
            continue
        for ver in versions:
            if ver not in known[name]:
                out.append(
                    Divergence(
                        name,
                        "ungoverned_version",
                        None,
                        ver,
                        f"version {ver} exists in MLflow only (not registered with modelreg)",
                        ver,
                    )
                )
    return out


#: At most this many names of MLflow models unknown to modelreg go into the recorded event (their total is
#: kept); every ungoverned version of a governed model is recorded, since the gate reads those.
MAX_RECORDED_MODELS = 500


def _redacted(uri: str) -> str:
    """The MLflow registry URI as an auditor may read it: no user, password or query string."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(uri)
    except ValueError:
        return "?"
    host = parts.hostname or ""
    netloc = host + (f":{parts.port}" if parts.port else "") if parts.netloc else ""
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def record_ungoverned(reg: Registry, loose: list[Divergence]) -> dict:
    """Record what a reconciliation found in MLflow outside governance as one ``mlflow.ungoverned_checked``
    event (the gate cannot reach MLflow: the optional requirement ``mlflow_ungoverned_checked`` reads the
    latest). Recording is for an operator or admin (``sync.record_check``); anyone else still gets the report,
    with ``recorded: false`` and the reason."""
    if getattr(reg, "remote", False):
        return reg.sync_check(consume=True)["record"]  # recorded (or refused) by the service, with its check
    from modelreg.domain.events import UNGOVERNED_CHECKED
    from modelreg.errors import PermissionDenied

    models = sorted(d.model for d in loose if d.kind == "ungoverned_model")
    payload = {
        "mlflow_registry": _redacted(reg.settings.mlflow_registry_uri),
        "ungoverned_versions": sorted(
            ({"model": d.model, "version": d.version} for d in loose if d.kind == "ungoverned_version"),
            key=lambda v: (v["model"], len(v["version"] or ""), v["version"] or ""),
        ),
        "ungoverned_models": models[:MAX_RECORDED_MODELS],
        "ungoverned_models_total": len(models),
    }
    try:
        with reg.change("sync.record_check") as tx:
            ev = tx.event(UNGOVERNED_CHECKED, payload=payload)
    except PermissionDenied as exc:
        return {"recorded": False, "reason": exc.message}
    return {"recorded": True, "seq": ev.seq, "at": ev.at}


def repair(reg: Registry) -> list[Divergence]:
    """Make MLflow agree with the registry; audited as one ``mlflow.synced`` event."""
    from modelreg.integrations.mlflow.outbox import drain

    if getattr(reg, "remote", False):
        return reg.sync_repair()
    with reg.reading("sync"):  # deny by default: refuse before looking, even when nothing would change
        pass
    drain(reg)  # queued projections first (e.g. after a crash): they are not divergences to audit
    found = check(reg)
    if not found:
        return []
    gw = _gateway(reg)
    alias = reg.settings.mlflow_alias
    with reg.change("sync") as tx:
        # Project only what the log proves: a stage edited in the table must not reach MLflow's alias.
        for model in sorted({d.model for d in found}):
            tx.require_proven(model)
        for d in found:
            if d.kind == "alias":
                if d.expected is None:
                    gw.delete_alias(d.model, alias)
                else:
                    gw.set_alias(d.model, alias, d.expected)
            else:
                gw.set_stage_tag(d.model, d.version or "", d.expected or "")
        tx.event("mlflow.synced", payload={"repaired": [d.to_dict() for d in found]})
    return found


def describe(d: Divergence) -> str:
    return f"{d.model}: {d.detail}"
