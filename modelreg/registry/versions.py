"""Model versions: registration, model card, attached data sets, and the reads (list, show, history)."""

from __future__ import annotations

from typing import Any

from modelreg import clock
from modelreg.audit.replay import card_digest
from modelreg.domain.entities import Dataset, ModelVersion, TransitionRecord
from modelreg.domain.stages import DataRole, RiskTier, Stage, values
from modelreg.errors import AlreadyExists, BadInput, InvalidTransition, NotFound
from modelreg.registry.core import RegistryCore, clean
from modelreg.store import repo

TIER_NAMES = values(RiskTier)
DATA_ROLES = values(DataRole)
STAGE_NAMES = values(Stage)


def _tier(risk_tier: Any) -> str:
    tier = str(getattr(risk_tier, "value", risk_tier))
    if tier not in TIER_NAMES:
        raise BadInput(f"--risk-tier must be one of {', '.join(TIER_NAMES)}. Got {risk_tier!r} instead.")
    return tier


class VersionsMixin(RegistryCore):
    def register(
        self,
        name: str,
        version: str,
        *,
        owner: str,
        risk_tier: str,
        purpose: str,
        business_line: str | None = None,
        mlflow_info: dict | None = None,
        model_card: dict | None = None,
    ) -> ModelVersion:
        """Record an MLflow model version in the registry, stage ``develop``.

        The model's owner, purpose and tier belong to the registered model (the first registration sets them;
        a later version must agree or the caller must change them deliberately)."""
        name = clean(name, "model name")  # type: ignore[assignment]
        version = clean(str(version), "model version", limit=100)  # type: ignore[assignment]
        owner = clean(owner, "--owner", limit=200)  # type: ignore[assignment]
        purpose = clean(purpose, "--purpose", limit=4000)  # type: ignore[assignment]
        business_line = clean(business_line, "--business-line", required=False, limit=200)
        risk_tier = _tier(risk_tier)
        info = dict(mlflow_info or {})
        _lint_card(dict(model_card or {}))
        with self.change("register", model=name) as tx:
            if repo.get_user(tx.session, owner) is None:
                raise NotFound(
                    f"owner {owner!r} is not a registered user: add them first with `modelreg user add`"
                )
            now = clock.now()
            model = repo.get_model(tx.session, name)
            if model is None:
                model_id = repo.add_model(
                    tx.session,
                    name=name,
                    owner=owner,
                    purpose=purpose,
                    business_line=business_line,
                    risk_tier=risk_tier,
                    created_at=now,
                    created_by=self.actor,
                )
            else:
                changed = {
                    k: (getattr(model, k), v)
                    for k, v in (("owner", owner), ("risk_tier", risk_tier))
                    if getattr(model, k) != v
                }
                if changed:
                    what = ", ".join(f"{k} {old!r} → {new!r}" for k, (old, new) in changed.items())
                    raise BadInput(
                        f"model {name!r} is registered with different attributes ({what}); a version inherits them"
                    )
                model_id = repo.model_id(tx.session, name)  # type: ignore[assignment]
            if repo.version_exists(tx.session, model_id, version):
                raise AlreadyExists(f"model {name!r} version {version!r} is already registered")
            state = repo.add_version(
                tx.session,
                model_id=model_id,
                version=version,
                registered_by=self.actor,
                at=now,
                mlflow_info=info,
                model_card=dict(model_card or {}),
            )
            tx.event(
                "version.registered",
                model=name,
                version=version,
                payload={
                    "owner": owner,
                    "risk_tier": risk_tier,
                    "purpose": purpose,
                    "business_line": business_line,
                    "mlflow_run_id": info.get("run_id"),
                    "model_uri": info.get("model_uri"),
                    "artifact_digest": info.get("artifact_digest"),
                    "card_digest": card_digest(state.version.model_card),
                },
            )
            tx.project("register", state.version)
            return state.version

    def preflight_register(self, name: str, *, owner: str, risk_tier: str) -> None:
        """Refuse early (before anything is created in MLflow) what ``register`` would refuse."""
        clean(name, "model name")
        risk_tier = _tier(risk_tier)
        with self.reading("register") as rd:
            if repo.get_user(rd.session, owner) is None:
                raise NotFound(
                    f"owner {owner!r} is not a registered user: add them first with `modelreg user add`"
                )
            model = repo.get_model(rd.session, name)
            if model is not None and (model.owner != owner or model.risk_tier != risk_tier):
                raise BadInput(
                    f"model {name!r} is registered with owner {model.owner!r} and tier {model.risk_tier!r}; a version inherits them"
                )

    def update_card(self, name: str, version: str, fields: dict[str, Any]) -> ModelVersion:
        if not isinstance(fields, dict) or not fields:
            raise BadInput("model card fields must be a non-empty mapping")
        _lint_card(fields)
        with self.change("update_card", model=name, version=version) as tx:
            assert tx.target is not None
            if tx.target.stage != Stage.DEVELOP.value:
                raise InvalidTransition(
                    f"the model card can only change in develop; {name} {version} is in {tx.target.stage}"
                )
            updated = repo.update_card(tx.session, tx.target, fields)
            tx.event(
                "version.card_updated",
                payload={"fields": sorted(fields), "card_digest": card_digest(updated.version.model_card)},
            )
            return updated.version

    def attach_data(
        self,
        name: str,
        version: str,
        *,
        role: str,
        dataset_name: str,
        digest: str,
        rows: int,
        columns: list,
        source: str | None = None,
        owner: str | None = None,
    ) -> Dataset:
        role = str(getattr(role, "value", role))
        if role not in DATA_ROLES:
            raise BadInput(f"data role must be one of {', '.join(DATA_ROLES)}. Got {role!r} instead.")
        if rows <= 0:
            raise BadInput(f"data set {dataset_name!r} is empty: {rows} rows")
        with self.change("attach_data", model=name, version=version) as tx:
            assert tx.target is not None
            if tx.target.stage == Stage.RETIRE.value:
                raise InvalidTransition(f"{name} {version} is retired: no data can be attached")
            ds = repo.add_dataset(
                tx.session,
                tx.target,
                role=role,
                name=dataset_name,
                digest=digest,
                rows=int(rows),
                columns=list(columns),
                source=source,
                owner=owner,
                attached_by=self.actor,
                at=clock.now(),
            )
            tx.event(
                "version.data_attached",
                payload={
                    "role": role,
                    "name": dataset_name,
                    "digest": digest,
                    "rows": int(rows),
                    "source": source,
                    "owner": owner,
                },
            )
            return ds

    # -- reads --------------------------------------------------------------------------------------
    def list(self, stage: str | None = None, model: str | None = None) -> list[ModelVersion]:
        if stage is not None:
            stage = str(getattr(stage, "value", stage))
            if stage not in STAGE_NAMES:
                raise BadInput(f"--stage must be one of {', '.join(STAGE_NAMES)}. Got {stage!r} instead.")
        with self.reading() as rd:
            return repo.list_versions(rd.session, stage, model)

    def show(self, name: str, version: str) -> ModelVersion:
        with self.reading(model=name, version=version) as rd:
            assert rd.target is not None
            return rd.target.version

    def history(self, name: str, version: str) -> list[TransitionRecord]:
        with self.reading(model=name, version=version) as rd:
            assert rd.target is not None
            return repo.transitions(rd.session, rd.target)

    def datasets(self, name: str, version: str) -> list[Dataset]:
        with self.reading(model=name, version=version) as rd:
            assert rd.target is not None
            return repo.datasets(rd.session, rd.target)


def checked_score_bands(raw: Any) -> list[dict]:
    """The model card's ``score_bands`` (see monitors.bands), checked; BadInput names the broken rule."""
    from monitors.bands import parse_bands
    from monitors.base import ParameterError

    try:
        return [b.__dict__.copy() for b in parse_bands(raw, "model card field score_bands")]
    except ParameterError as exc:
        raise BadInput(str(exc)) from None


def _lint_card(card: dict[str, Any]) -> None:
    """Card fields a monitor reads are checked when they are written: ``score_bands`` (monitors.bands)."""
    if card.get("score_bands") is not None:
        checked_score_bands(card["score_bands"])
