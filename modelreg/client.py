"""The Python API for notebooks: the same functions the CLI calls, with objects that render in Jupyter.

import modelreg
reg = modelreg.connect()                       # reads mlflow.env like the CLI
reg.register("credit_scoring", "1", owner="alice", risk_tier="high", purpose="...")
reg.attach_data("credit_scoring", "1", role="training", data=train_df)
reg.precheck("credit_scoring", "1", data=holdout_df, target="default", sensitive=["sex"])
reg.submit("credit_scoring", "1")
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelreg.domain.entities import AuditEvent, Dataset, ModelVersion, TransitionRecord, User, VerifyReport
from modelreg.domain.stages import GATES, gate_of
from modelreg.registry import Registry, TransitionResult, Unmet
from modelreg.settings import Settings

if TYPE_CHECKING:
    from modelreg.governance.records import Evaluation

__all__ = ["Client", "VersionView", "open_registry"]


def open_registry(settings: Settings, *, actor: str | None = None) -> Registry:
    """A Registry with its plug-ins: the CLI and the Python API both come through here."""
    registry = Registry(settings, actor=actor)
    _install_plugins(registry)
    return registry


def _install_plugins(registry: Registry) -> None:
    """Governance gate requirements (policy controls, approvals, attestations) and the MLflow projection plug
    into the registry's one gate mechanism; each is optional so the core works on its own."""
    from modelreg import governance
    from modelreg.integrations.mlflow import projection

    governance.install(registry)
    projection.install(registry)


class VersionView:
    """A version with its history, data and latest evaluations; ``_repr_html_`` for Jupyter."""

    def __init__(
        self,
        version: ModelVersion,
        history: list[TransitionRecord],
        datasets: list[Dataset],
        evaluations: list[Evaluation],
    ) -> None:
        self.version = version
        self.history = history
        self.datasets = datasets
        self.evaluations = evaluations

    def to_dict(self) -> dict:
        return {
            "version": self.version.to_dict(),
            "history": [h.to_dict() for h in self.history],
            "datasets": [d.to_dict() for d in self.datasets],
            "evaluations": [e.to_dict() for e in self.evaluations],
        }

    def __repr__(self) -> str:
        v = self.version
        return f"<{v.model} {v.version}: {v.stage.value}{' (suspended)' if v.suspended else ''}, {v.risk_tier} risk, owner {v.owner}>"

    def _repr_html_(self) -> str:
        import html

        v = self.version
        hist = "".join(
            f"<tr><td>{h.at:%Y-%m-%d %H:%M}</td><td>{html.escape(h.action)}</td><td>{h.source} → {h.target}</td><td>{html.escape(h.actor)}</td><td>{html.escape(h.reason or '')}</td></tr>"
            for h in self.history
        )
        data = "".join(
            f"<tr><td>{d.role}</td><td>{html.escape(d.name)}</td><td>{d.rows}</td><td><code>{d.digest[:16]}…</code></td></tr>"
            for d in self.datasets
        )
        evs = "".join(e._repr_html_() for e in self.evaluations)
        return (
            f"<h4>{html.escape(v.model)} {html.escape(v.version)} — {v.stage.value}{' (暂停 suspended)' if v.suspended else ''}</h4>"
            f"<p>负责人 owner: {html.escape(v.owner)} · 风险等级 tier: {v.risk_tier} · 用途 purpose: {html.escape(v.purpose)}</p>"
            f"<table><tr><th>time</th><th>action</th><th>move</th><th>by</th><th>reason</th></tr>{hist}</table>"
            f"<table><tr><th>role</th><th>data</th><th>rows</th><th>sha256</th></tr>{data}</table>{evs}"
        )


class Client:
    """The typed public client: ``modelreg.connect()`` returns one. Each method is one registry call."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    @property
    def settings(self) -> Settings:
        return self.registry.settings

    def as_user(self, name: str) -> Client:
        return Client(self.registry.as_user(name))

    # -- setup ---------------------------------------------------------------------------------------
    def init(self, *, tree_hash: str | None = None, suite: str | None = None) -> dict:
        return self.registry.init(tree_hash=tree_hash, suite=suite)

    def add_user(self, name: str, roles: list[str], *, public_key: str | Path | None = None) -> User:
        pem = Path(public_key).read_text(encoding="utf-8") if public_key else None
        return self.registry.add_user(name, roles, public_key_pem=pem)

    def generate_key(self, user: str | None = None, *, suite: str = "ed25519") -> Path:
        """Create the user's key pair (Ed25519, or ``suite="sm2"``) at the default place and register the
        public half."""
        from modelreg import signing

        user = user or self.registry.actor
        path = self.settings.signing_key_for(user)
        signing.write_key_pair(path, signing.public_key_path_for(path), suite=signing.parse_suite(suite))
        self.registry.as_user(user).register_key(
            signing.public_key_path_for(path).read_text(encoding="utf-8")
        )
        return path

    # -- lifecycle -----------------------------------------------------------------------------------
    def register(
        self,
        name: str,
        version: str | None = None,
        *,
        run_id: str | None = None,
        artifact_path: str = "model",
        owner: str,
        risk_tier: str,
        purpose: str,
        business_line: str | None = None,
        model_card: dict | None = None,
    ) -> ModelVersion:
        from modelreg.integrations.mlflow.registration import register_from_mlflow

        return register_from_mlflow(
            self.registry,
            name,
            version,
            run_id=run_id,
            artifact_path=artifact_path,
            owner=owner,
            risk_tier=risk_tier,
            purpose=purpose,
            business_line=business_line,
            model_card=model_card,
        )

    def users(self) -> list[User]:
        """The registry's users with their roles and key ids."""
        return self.registry.users()

    def policy(self, policy: str | None = None) -> Any:
        """The policy pack in force (or ``policy``, an id or id@version): its controls say what a gate asks."""
        from modelreg.governance.service import load_policy

        return load_policy(self.registry, policy)

    def log_and_register(self, model: Any, *, name: str, **kw: Any) -> ModelVersion:
        """Log ``model`` to MLflow and register that version with modelreg in one call
        (modelreg.integrations.mlflow.log_and_register)."""
        from modelreg.integrations.mlflow.registration import log_and_register

        return log_and_register(self.registry, model, name=name, **kw)

    def update_card(self, name: str, version: str, **fields: Any) -> ModelVersion:
        return self.registry.update_card(name, version, fields)

    def attach_data(
        self,
        name: str,
        version: str,
        *,
        role: str,
        data: Any,
        name_hint: str | None = None,
        owner: str | None = None,
    ) -> Dataset:
        import pandas as pd

        from modelreg.datasets import attach_file, attach_frame

        if isinstance(data, pd.DataFrame):
            return attach_frame(
                self.registry,
                name,
                version,
                role=role,
                frame=data,
                dataset_name=name_hint or f"{role}-dataframe",
                owner=owner,
            )
        return attach_file(self.registry, name, version, role=role, path=data, owner=owner)

    def submit(self, name: str, version: str) -> TransitionResult:
        return self.registry.submit(name, version)

    def send_back(self, name: str, version: str, *, reason: str) -> TransitionResult:
        return self.registry.send_back(name, version, reason=reason)

    def deploy(self, name: str, version: str, *, replace: str | None = None) -> TransitionResult:
        return self.registry.deploy(name, version, replace=replace)

    def suspend(self, name: str, version: str, *, reason: str) -> TransitionResult:
        return self.registry.suspend(name, version, reason=reason)

    def resume(self, name: str, version: str, *, reason: str) -> TransitionResult:
        return self.registry.resume(name, version, reason=reason)

    def retire(self, name: str, version: str, *, reason: str) -> TransitionResult:
        return self.registry.retire(name, version, reason=reason)

    def list(self, stage: str | None = None) -> list[ModelVersion]:
        return self.registry.list(stage)

    def show(self, name: str, version: str) -> VersionView:
        from modelreg.governance.service import latest

        return VersionView(
            self.registry.show(name, version),
            self.registry.history(name, version),
            self.registry.datasets(name, version),
            latest(self.registry, name, version),
        )

    # -- governance ----------------------------------------------------------------------------------
    def _evaluate(self, purpose: str, name: str, version: str, data: Any, **kw: Any) -> Evaluation:
        from modelreg.governance.runner import EvaluationInput
        from modelreg.governance.service import run_evaluation

        policy = kw.pop("policy", None)
        if (
            kw.get("model_uri") is None
            and kw.get("model") is None
            and kw.get("score") is None
            and kw.get("prediction") is None
        ):
            kw["model_uri"] = self.registry.show(name, version).model_uri
        if "sensitive" in kw:
            kw["sensitive"] = tuple(kw["sensitive"])
        if "segments" in kw:
            kw["segments"] = tuple(kw["segments"])
        return run_evaluation(
            self.registry, name, version, EvaluationInput(data=data, **kw), purpose=purpose, policy=policy
        )

    def precheck(self, name: str, version: str, *, data: Any, **kw: Any) -> Evaluation:
        """Run the submit gate's machine controls now; the returned evaluation shows what would fail, with
        the clauses, as a table in Jupyter."""
        return self._evaluate("precheck", name, version, data, **kw)

    def validate(self, name: str, version: str, *, data: Any, **kw: Any) -> Evaluation:
        return self._evaluate("validation", name, version, data, **kw)

    def monitor(self, name: str, version: str, *, data: Any, **kw: Any) -> Evaluation:
        return self._evaluate("monitoring", name, version, data, **kw)

    def add_outcomes(self, name: str, version: str, data: Any, **kw: Any) -> dict:
        """Record late outcomes (a CSV/Parquet path or a DataFrame) keyed by decision id: see
        ``modelreg.governance.outcomes.add_outcomes``."""
        from modelreg.governance.outcomes import add_outcomes

        return add_outcomes(self.registry, name, version, data, **kw)

    def outcomes_report(self, name: str, version: str, *, min_class_count: int | None = None) -> dict:
        """Realised performance per vintage and against the earlier estimates (read-only)."""
        from modelreg.governance.outcomes import outcomes_report

        return outcomes_report(self.registry, name, version, min_class_count=min_class_count)

    def findings(self, name: str, version: str) -> list[Evaluation]:
        from modelreg.governance.service import latest

        return latest(self.registry, name, version)

    def approve(
        self,
        name: str,
        version: str,
        *,
        role: str,
        comment: str | None = None,
        key_path: str | Path | None = None,
    ) -> dict:
        from modelreg.governance.service import approve

        return approve(self.registry, name, version, role=role, comment=comment, key_path=key_path)

    def reject(
        self, name: str, version: str, *, role: str, comment: str, key_path: str | Path | None = None
    ) -> dict:
        from modelreg.governance.service import approve

        return approve(
            self.registry, name, version, role=role, comment=comment, decision="reject", key_path=key_path
        )

    def attest(
        self,
        name: str,
        version: str,
        *,
        control: str,
        comment: str | None = None,
        key_path: str | Path | None = None,
    ) -> dict:
        from modelreg.governance.service import attest

        return attest(self.registry, name, version, control_id=control, comment=comment, key_path=key_path)

    def attest_batch(
        self, source: str | Path | list[dict], *, key_path: str | Path | None = None
    ) -> list[dict]:
        """Sign many attestations (a YAML/JSON file, or a list of ``{model, version, control, comment}``), each
        on its own like ``attest``, recorded in one transaction: all of them or none."""
        from modelreg.governance.service import attest_batch

        return attest_batch(self.registry, source, key_path=key_path)

    def waive(
        self,
        name: str,
        version: str,
        *,
        control: str,
        until: Any,
        reason: str,
        gate: str = "deploy",
        key_path: str | Path | None = None,
    ) -> dict:
        from modelreg.governance.service import waive

        return waive(
            self.registry,
            name,
            version,
            control_id=control,
            until=until,
            reason=reason,
            gate=gate,
            key_path=key_path,
        )

    def gate_check(self, name: str, version: str, action: str = "deploy") -> list[Unmet]:
        gate = gate_of(action)
        if gate not in GATES:
            from modelreg.errors import BadInput

            raise BadInput(f"action must be one of {', '.join(GATES)}. Got {action!r} instead.")
        return self.registry.gate_check(name, version, gate, action)

    # -- audit ---------------------------------------------------------------------------------------
    def audit_log(self, name: str | None = None, version: str | None = None) -> list[AuditEvent]:
        return self.registry.audit_log(name, version)

    def audit_verify(self, checkpoint: str | Path | None = None) -> VerifyReport:
        return self.registry.audit_verify(checkpoint)
