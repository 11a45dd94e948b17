"""Typed, immutable policy-pack objects and the stable strings they use.

Everything here is plain data: no I/O, no YAML, no monitors (the metric names per monitor kind are read
from the monitors' own declarations, on first use). The loader (``loader.py``) is the only way
these objects are built from files, and it validates once, so code that receives a ``PolicyPack`` can
trust it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Any

# -- stable strings (persisted by the registry; never rename) -------------------------------------------

GATE_SUBMIT = "submit"
GATE_DEPLOY = "deploy"
GATE_MONITOR = "monitor"
GATE_RETIRE = "retire"
GATES: tuple[str, ...] = (GATE_SUBMIT, GATE_DEPLOY, GATE_MONITOR, GATE_RETIRE)

# The clause catalog names lifecycle gates by the transition; packs use the registry's short names.
CATALOG_GATES: Mapping[str, str] = MappingProxyType(
    {
        "develop_to_validate": GATE_SUBMIT,
        "validate_to_deploy": GATE_DEPLOY,
        "ongoing_monitoring": GATE_MONITOR,
        "retire": GATE_RETIRE,
    }
)

TIER_HIGH = "high"
TIER_MEDIUM = "medium"
TIER_LOW = "low"
DEFAULT_TIERS: tuple[str, ...] = (TIER_HIGH, TIER_MEDIUM, TIER_LOW)

STATUS_PASS = "pass"
STATUS_WARN = "warn"
STATUS_FAIL = "fail"
STATUS_ERROR = "error"
OUTCOME_STATUSES: tuple[str, ...] = (STATUS_PASS, STATUS_WARN, STATUS_FAIL, STATUS_ERROR)

SEVERITY_BLOCKING = "blocking"
SEVERITY_MAJOR = "major"
SEVERITY_MINOR = "minor"
SEVERITIES: tuple[str, ...] = (SEVERITY_BLOCKING, SEVERITY_MAJOR, SEVERITY_MINOR)

KIND_CHECK = "check"
KIND_ATTESTATION = "attestation"
KIND_REQUIREMENT = "requirement"
CONTROL_KINDS: tuple[str, ...] = (KIND_CHECK, KIND_ATTESTATION, KIND_REQUIREMENT)

# What happens, beyond a finding, when a check fails. Only monitor-gate controls may suspend.
ON_BREACH_FINDING = "finding"
ON_BREACH_SUSPEND = "suspend"
ON_BREACH_ACTIONS: tuple[str, ...] = (ON_BREACH_FINDING, ON_BREACH_SUSPEND)

# Comparators describe the breach: ``lt`` means "warn when value < warn, fail when value < fail".
COMPARATORS: tuple[str, ...] = ("lt", "le", "gt", "ge")
COMPARATOR_WORDS: Mapping[str, str] = MappingProxyType(
    {"lt": "below", "le": "at or below", "gt": "above", "ge": "at or above"}
)

# Where a threshold number comes from. ``seed_text`` is the only basis that a regulator's text sets;
# ``institution`` is a bank's own calibration in its override file.
BASIS_CONVENTION = "convention"
BASIS_SUGGESTION = "suggestion"
BASIS_SEED_TEXT = "seed_text"
BASIS_INSTITUTION = "institution"
THRESHOLD_BASES: tuple[str, ...] = (BASIS_CONVENTION, BASIS_SUGGESTION, BASIS_SEED_TEXT, BASIS_INSTITUTION)

ROLES: tuple[str, ...] = ("developer", "validator", "approver", "owner", "compliance")

# What a signed attestation may permit (persisted in packs; never rename). ``model_execution``: a model format
# that can execute code when loaded may run, in the isolated worker only, for the attested version.
GRANT_MODEL_EXECUTION = "model_execution"
ATTESTATION_GRANTS: tuple[str, ...] = (GRANT_MODEL_EXECUTION,)

# Predicates the registry evaluates at a gate (implemented in the registry, named here).
REQUIREMENT_IDS: tuple[str, ...] = (
    "owner_assigned",
    "purpose_stated",
    "risk_tier_assigned",
    "model_card_complete",
    "training_data_attached",
    "validation_data_attached",
    "validator_independent",
    "approvals_by_tier",
    "evaluation_current",
    "mlflow_run_linked",
    "pip_requirements_recorded",
    "retirement_reason_recorded",
    "audit_log_verifies",
    "mlflow_ungoverned_checked",
)


class _DeclaredMetrics(Mapping[str, frozenset[str]]):
    """Metric names per monitor kind, as the installed monitors declare them (``Monitor.metrics``; a bank's
    own monitor registered through the ``modelreg.monitors`` entry point included). Read on first use, not
    at import, so that importing the policy layer imports no monitor; raises
    ``monitors.base.MonitorPluginError`` when an installed monitor is unusable."""

    def _read(self) -> Mapping[str, frozenset[str]]:
        from monitors.base import known_metrics

        return known_metrics()

    def __getitem__(self, kind: str) -> frozenset[str]:
        return self._read()[kind]

    def __iter__(self) -> Iterator[str]:
        return iter(self._read())

    def __len__(self) -> int:
        return len(self._read())

    def __repr__(self) -> str:
        return f"KNOWN_METRICS({dict(self._read())!r})"


class _DeclaredKinds(Sequence[str]):
    """The installed monitor kinds, sorted (read like ``KNOWN_METRICS``)."""

    def _read(self) -> tuple[str, ...]:
        return tuple(KNOWN_METRICS)

    def __getitem__(self, i):  # type: ignore[override]
        return self._read()[i]

    def __len__(self) -> int:
        return len(self._read())

    def __contains__(self, kind: object) -> bool:
        return kind in self._read()

    def __repr__(self) -> str:
        return f"MONITOR_KINDS({self._read()!r})"


# The metric-name contract between monitors and packs: a pack naming a metric its monitor does not declare
# is an error.
KNOWN_METRICS: Mapping[str, frozenset[str]] = _DeclaredMetrics()
MONITOR_KINDS: Sequence[str] = _DeclaredKinds()

# Selector meaning "every feature (or group): the worst one decides".
ANY = "*"


def _freeze(mapping: Mapping | None) -> Mapping:
    return MappingProxyType(dict(mapping or {}))


def _thaw(value: Any) -> Any:
    """Plain JSON-able copy (MappingProxyType and tuples become dict and list)."""
    if isinstance(value, Mapping):
        return {str(k): _thaw(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_thaw(v) for v in value]
    return value


# -- pack content ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tier:
    id: str
    title_zh: str
    title_en: str
    approvals: Mapping[str, int]
    description_zh: str = ""
    description_en: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "approvals", _freeze(self.approvals))

    def to_dict(self) -> dict:
        d: dict[str, Any] = {
            "title_zh": self.title_zh,
            "title_en": self.title_en,
            "approvals": dict(self.approvals),
        }
        if self.description_zh or self.description_en:
            d["description_zh"] = self.description_zh
            d["description_en"] = self.description_en
        return d


@dataclass(frozen=True)
class Source:
    key: str
    title_zh: str
    title_en: str
    issuer_zh: str = ""
    issuer_en: str = ""
    date: str = ""
    doc_no: str = ""
    # A caveat about the source's numbering or verification (zh/en), shown wherever its clauses are cited.
    note_zh: str = ""
    note_en: str = ""

    def to_dict(self) -> dict:
        keys = ("title_zh", "title_en", "issuer_zh", "issuer_en", "date", "doc_no")
        out = {k: getattr(self, k) for k in keys}
        if self.note_zh or self.note_en:  # absent for other sources: their canonical bytes do not change
            out.update(note_zh=self.note_zh, note_en=self.note_en)
        return out


@dataclass(frozen=True)
class Clause:
    """One regulatory passage, quoted. ``id`` is the catalog id and is never renumbered."""

    id: str
    source: str
    item: str
    title_zh: str
    title_en: str
    text_zh: str
    text_en: str
    gist: str = ""
    relevance: str = ""
    force: str = ""
    item_as_in_seed: str = ""  # where the seed compilation numbers the item differently (CBIRC-2022)

    def to_dict(self) -> dict:
        extra = {"item_as_in_seed": self.item_as_in_seed} if self.item_as_in_seed else {}
        return {
            **extra,
            "id": self.id,
            "source": self.source,
            "item": self.item,
            "title_zh": self.title_zh,
            "title_en": self.title_en,
            "gist": self.gist,
            "relevance": self.relevance,
            "force": self.force,
            "text_zh": self.text_zh,
            "text_en": self.text_en,
        }


@dataclass(frozen=True)
class Threshold:
    """``fail`` decides a breach; ``warn`` (optional) an early signal. Both read with the check's comparator."""

    fail: float
    warn: float | None = None

    def to_dict(self) -> dict:
        return {"warn": self.warn, "fail": self.fail}


@dataclass(frozen=True)
class Check:
    monitor: str
    metric: str
    comparator: str
    thresholds: Mapping[str, Threshold]
    feature: str | None = None
    group: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    basis: str = BASIS_SUGGESTION
    note_zh: str = ""
    note_en: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "thresholds", _freeze(self.thresholds))
        object.__setattr__(self, "params", _freeze(self.params))

    def to_dict(self) -> dict:
        return {
            "monitor": self.monitor,
            "metric": self.metric,
            "feature": self.feature,
            "group": self.group,
            "comparator": self.comparator,
            "thresholds": {t: th.to_dict() for t, th in self.thresholds.items()},
            "params": _thaw(self.params),
            "basis": self.basis,
            "note_zh": self.note_zh,
            "note_en": self.note_en,
        }


@dataclass(frozen=True)
class Attestation:
    """A statement a person of ``role`` signs. With ``grants`` it is a permission, not a gate requirement: it
    lets the registry do something for that version it otherwise refuses (``ATTESTATION_GRANTS``)."""

    role: str
    statement_zh: str
    statement_en: str
    grants: str | None = None

    def to_dict(self) -> dict:
        out = {"role": self.role, "statement_zh": self.statement_zh, "statement_en": self.statement_en}
        if self.grants is not None:  # absent otherwise: existing packs keep their digests
            out["grants"] = self.grants
        return out


@dataclass(frozen=True)
class Requirement:
    """A registry-evaluated predicate, named by a stable id from ``REQUIREMENT_IDS``."""

    id: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", _freeze(self.params))

    def to_dict(self) -> dict:
        return {"id": self.id, "params": _thaw(self.params)}


@dataclass(frozen=True)
class Control:
    """A check, an attestation or a requirement that implements ``clauses``.

    ``secondary_clauses`` are cited as support only (analogous or context passages): a failure of the
    control is not a breach of them.
    """

    id: str
    title_zh: str
    title_en: str
    clauses: tuple[str, ...]
    gates: tuple[str, ...]
    severity: str
    tiers: tuple[str, ...]
    check: Check | None = None
    attestation: Attestation | None = None
    requirement: Requirement | None = None
    secondary_clauses: tuple[str, ...] = ()
    on_breach: Mapping[str, str] = field(default_factory=dict)  # tier -> action; missing tier = "finding"
    catalog_check: str | None = None
    disabled: bool = False
    disabled_reason_zh: str = ""
    disabled_reason_en: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "on_breach", _freeze(self.on_breach))
        given = [x for x in (self.check, self.attestation, self.requirement) if x is not None]
        if len(given) != 1:
            raise ValueError(f"control {self.id} must have exactly one of check, attestation, requirement")

    def __hash__(self) -> int:  # the mapping fields are not hashable; the canonical content is
        return hash(json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False))

    @property
    def kind(self) -> str:
        if self.check is not None:
            return KIND_CHECK
        if self.attestation is not None:
            return KIND_ATTESTATION
        return KIND_REQUIREMENT

    def applies(self, gate: str, tier: str) -> bool:
        return not self.disabled and gate in self.gates and tier in self.tiers

    def on_breach_for(self, tier: str) -> str:
        return self.on_breach.get(tier, ON_BREACH_FINDING)

    def threshold_for(self, tier: str) -> Threshold | None:
        return None if self.check is None else self.check.thresholds.get(tier)

    def requirement_params(self, tier: str) -> dict[str, Any]:
        """Requirement parameters with per-tier values (a mapping keyed by tier ids) resolved for ``tier``."""
        if self.requirement is None:
            return {}
        out: dict[str, Any] = {}
        for name, value in self.requirement.params.items():
            if isinstance(value, Mapping) and value and set(value) <= set(self.tiers) | set(DEFAULT_TIERS):
                if tier in value:
                    out[name] = value[tier]
            else:
                out[name] = _thaw(value)
        return out

    def to_dict(self) -> dict:
        d: dict[str, Any] = {
            "id": self.id,
            "title_zh": self.title_zh,
            "title_en": self.title_en,
            "catalog_check": self.catalog_check,
            "kind": self.kind,
            "clauses": list(self.clauses),
            "secondary_clauses": list(self.secondary_clauses),
            "gates": list(self.gates),
            "severity": self.severity,
            "tiers": list(self.tiers),
            "on_breach": dict(self.on_breach),
        }
        if self.check is not None:
            d["check"] = self.check.to_dict()
        if self.attestation is not None:
            d["attestation"] = self.attestation.to_dict()
        if self.requirement is not None:
            d["requirement"] = self.requirement.to_dict()
        if self.disabled:
            d["disabled"] = {"reason_zh": self.disabled_reason_zh, "reason_en": self.disabled_reason_en}
        return d


@dataclass(frozen=True)
class OutOfScope:
    clause_id: str
    reason_zh: str
    reason_en: str

    def to_dict(self) -> dict:
        return {"reason_zh": self.reason_zh, "reason_en": self.reason_en}


# -- model risk operations: review calendar, findings, vendor models ----------------------------------------

REVIEW_ANCHORS: tuple[str, ...] = ("validation", "monitoring")  # or "attestation:<control id>"
OVERDUE_ACTIONS: tuple[str, ...] = ("block", "warn")
SPECIAL_AUDIT_TRIGGERS: tuple[str, ...] = ("suspension",)


@dataclass(frozen=True)
class Interval:
    """A number of days and where the number comes from (``basis``, as for thresholds)."""

    days: int
    basis: str
    note_zh: str = ""
    note_en: str = ""

    def to_dict(self) -> dict:
        return {"days": self.days, "basis": self.basis, "note_zh": self.note_zh, "note_en": self.note_en}


@dataclass(frozen=True)
class ReviewKind:
    """One kind of periodic review (revalidation, periodic review, audit) and its interval per tier.
    ``by_model_type`` overrides the tier's interval for models whose card names that ``model_type``."""

    id: str
    title_zh: str
    title_en: str
    anchor: str
    clauses: tuple[str, ...]
    intervals: Mapping[str, Interval]
    secondary_clauses: tuple[str, ...] = ()
    by_model_type: Mapping[str, Mapping[str, Interval]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "intervals", _freeze(self.intervals))
        object.__setattr__(
            self, "by_model_type", _freeze({k: _freeze(v) for k, v in dict(self.by_model_type).items()})
        )

    def interval(self, tier: str, model_type: str | None = None) -> Interval | None:
        if model_type and model_type in self.by_model_type and tier in self.by_model_type[model_type]:
            return self.by_model_type[model_type][tier]
        return self.intervals.get(tier)

    def to_dict(self) -> dict:
        return {
            "title_zh": self.title_zh,
            "title_en": self.title_en,
            "anchor": self.anchor,
            "clauses": list(self.clauses),
            "secondary_clauses": list(self.secondary_clauses),
            "intervals": {t: i.to_dict() for t, i in self.intervals.items()},
            "by_model_type": {
                m: {t: i.to_dict() for t, i in v.items()} for m, v in self.by_model_type.items()
            },
        }


@dataclass(frozen=True)
class SpecialAudit:
    title_zh: str
    title_en: str
    trigger: str
    interval: Interval
    clauses: tuple[str, ...]
    secondary_clauses: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {
            "title_zh": self.title_zh,
            "title_en": self.title_en,
            "trigger": self.trigger,
            **self.interval.to_dict(),
            "clauses": list(self.clauses),
            "secondary_clauses": list(self.secondary_clauses),
        }


@dataclass(frozen=True)
class ReviewCalendar:
    due_soon: Interval
    reviews: tuple[ReviewKind, ...]
    overdue_at_monitor_gate: Mapping[str, str]  # tier -> block | warn
    overdue_control: str | None = None
    special_audit: SpecialAudit | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "overdue_at_monitor_gate", _freeze(self.overdue_at_monitor_gate))

    def review(self, review_id: str) -> ReviewKind | None:
        return next((r for r in self.reviews if r.id == review_id), None)

    def to_dict(self) -> dict:
        return {
            "due_soon_days": self.due_soon.days,
            "due_soon_basis": self.due_soon.basis,
            "reviews": {r.id: r.to_dict() for r in self.reviews},
            "overdue_at_monitor_gate": dict(self.overdue_at_monitor_gate),
            "overdue_control": self.overdue_control,
            "special_audit": None if self.special_audit is None else self.special_audit.to_dict(),
        }


@dataclass(frozen=True)
class FindingsPolicy:
    remediation: Mapping[str, Interval]  # severity -> deadline
    acceptance_role: str
    blocking_severities: tuple[str, ...]
    clauses: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "remediation", _freeze(self.remediation))

    def to_dict(self) -> dict:
        return {
            "remediation_days": {s: i.to_dict() for s, i in self.remediation.items()},
            "acceptance_role": self.acceptance_role,
            "blocking_severities": list(self.blocking_severities),
            "clauses": list(self.clauses),
        }


@dataclass(frozen=True)
class VendorPolicy:
    """What changes for a vendor-supplied version: controls that need model internals or training data do
    not apply (each with its reason); outcome analysis stays; vendor attestations are added."""

    title_zh: str
    title_en: str
    clauses: tuple[str, ...]
    note_zh: str
    note_en: str
    not_applicable: Mapping[str, OutOfScope]
    outcome_analysis: tuple[str, ...]
    attestations: tuple[Control, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "not_applicable", _freeze(self.not_applicable))

    def to_dict(self) -> dict:
        return {
            "title_zh": self.title_zh,
            "title_en": self.title_en,
            "clauses": list(self.clauses),
            "note_zh": self.note_zh,
            "note_en": self.note_en,
            "not_applicable": {k: v.to_dict() for k, v in self.not_applicable.items()},
            "outcome_analysis": list(self.outcome_analysis),
            "attestations": [c.to_dict() for c in self.attestations],
        }


@dataclass(frozen=True)
class BaseRef:
    """The pack a bank's file extends, recorded in the merged pack."""

    id: str
    version: str
    digest: str

    def to_dict(self) -> dict:
        return {"id": self.id, "version": self.version, "digest": self.digest}


@dataclass(frozen=True)
class PolicyPack:
    id: str
    version: str
    title_zh: str
    title_en: str
    tiers: tuple[Tier, ...]
    clauses: tuple[Clause, ...]
    controls: tuple[Control, ...]
    out_of_scope: Mapping[str, OutOfScope] = field(default_factory=dict)
    sources: Mapping[str, Source] = field(default_factory=dict)
    catalog_version: str | None = None
    extends: BaseRef | None = None
    review_calendar: ReviewCalendar | None = None
    findings_policy: FindingsPolicy | None = None
    vendor_models: VendorPolicy | None = None
    vendor_view: bool = False  # the effective pack of a vendor-supplied version (see ``for_vendor``)
    # Where it was read from; not part of the content (two copies of one pack have one digest).
    path: Path | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "out_of_scope", _freeze(self.out_of_scope))
        object.__setattr__(self, "sources", _freeze(self.sources))

    def __hash__(self) -> int:
        return hash(self.digest)

    # -- lookups -----------------------------------------------------------------------------------
    @cached_property
    def _clause_index(self) -> dict[str, Clause]:
        return {c.id: c for c in self.clauses}

    @cached_property
    def _control_index(self) -> dict[str, Control]:
        return {c.id: c for c in self.controls}

    @property
    def tier_ids(self) -> tuple[str, ...]:
        return tuple(t.id for t in self.tiers)

    def tier(self, tier_id: str) -> Tier:
        for t in self.tiers:
            if t.id == tier_id:
                return t
        from modelreg.errors import PolicyError

        raise PolicyError(f"risk tier must be one of {list(self.tier_ids)}. Got {tier_id!r} instead.")

    def clause(self, clause_id: str) -> Clause:
        try:
            return self._clause_index[clause_id]
        except KeyError:
            from modelreg.errors import NotFound

            raise NotFound(f"clause {clause_id!r} is not in policy pack {self.id}@{self.version}") from None

    def control(self, control_id: str) -> Control:
        try:
            return self._control_index[control_id]
        except KeyError:
            # The vendor attestations are controls too (they apply through ``for_vendor``).
            for c in self.vendor_models.attestations if self.vendor_models else ():
                if c.id == control_id:
                    return c
            from modelreg.errors import NotFound

            raise NotFound(f"control {control_id!r} is not in policy pack {self.id}@{self.version}") from None

    def controls_for(self, gate: str, tier: str, *, kind: str | None = None) -> list[Control]:
        """The enabled controls that apply at ``gate`` to a model of risk ``tier``, in pack order."""
        from modelreg.errors import PolicyError

        if gate not in GATES:
            raise PolicyError(f"gate must be one of {list(GATES)}. Got {gate!r} instead.")
        self.tier(tier)
        if kind is not None and kind not in CONTROL_KINDS:
            raise PolicyError(f"control kind must be one of {list(CONTROL_KINDS)}. Got {kind!r} instead.")
        return [c for c in self.controls if c.applies(gate, tier) and (kind is None or c.kind == kind)]

    def required_approvals(self, tier: str) -> dict[str, int]:
        return dict(self.tier(tier).approvals)

    def monitors_for(self, gate: str, tier: str) -> dict[str, dict[str, Any]]:
        """Monitor kinds the checks at ``gate`` need, with the parameters their controls ask for.

        The loader refuses packs where two controls give one monitor different values for one
        parameter, so merging is unambiguous.
        """
        out: dict[str, dict[str, Any]] = {}
        for c in self.controls_for(gate, tier, kind=KIND_CHECK):
            assert c.check is not None
            out.setdefault(c.check.monitor, {}).update(_thaw(c.check.params))
        return out

    # -- identity ----------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "pack": {
                "id": self.id,
                "version": self.version,
                "title_zh": self.title_zh,
                "title_en": self.title_en,
                "catalog_version": self.catalog_version,
            },
            "extends": None if self.extends is None else self.extends.to_dict(),
            "tiers": {t.id: t.to_dict() for t in self.tiers},
            "sources": {k: s.to_dict() for k, s in self.sources.items()},
            "clauses": [c.to_dict() for c in self.clauses],
            "controls": [c.to_dict() for c in self.controls],
            "out_of_scope": {k: o.to_dict() for k, o in self.out_of_scope.items()},
            # Operations sections only when present, so packs without them keep their digest.
            **({"review_calendar": self.review_calendar.to_dict()} if self.review_calendar else {}),
            **({"findings": self.findings_policy.to_dict()} if self.findings_policy else {}),
            **({"vendor_models": self.vendor_models.to_dict()} if self.vendor_models else {}),
            **({"vendor_view": True} if self.vendor_view else {}),
        }

    def for_vendor(self) -> PolicyPack:
        """The effective pack for a vendor-supplied version: the controls that need model internals or
        training data disabled with the pack's reason, the vendor attestations added. Its digest differs from
        the base pack's, so an evaluation records exactly which controls applied."""
        from dataclasses import replace

        if self.vendor_models is None or self.vendor_view:
            return self
        vm = self.vendor_models
        controls = []
        for c in self.controls:
            na = vm.not_applicable.get(c.id)
            if na is not None:
                c = replace(
                    c,
                    disabled=True,
                    disabled_reason_zh=f"供应商模型不适用：{na.reason_zh}",
                    disabled_reason_en=f"not applicable to a vendor model: {na.reason_en}",
                )
            controls.append(c)
        controls.extend(vm.attestations)
        return replace(self, controls=tuple(controls), vendor_view=True)

    def canonical_bytes(self) -> bytes:
        return json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode(
            "utf-8"
        )

    @cached_property
    def digest(self) -> str:
        """``sha256:<hex>`` of the canonical content, so an Evaluation records exactly which policy ran."""
        return "sha256:" + hashlib.sha256(self.canonical_bytes()).hexdigest()

    @property
    def ref(self) -> str:
        return f"{self.id}@{self.version}"


@dataclass(frozen=True)
class PackSummary:
    id: str
    version: str
    title_zh: str
    title_en: str
    path: Path
    origin: str  # "shipped" | "search_path" | "file"
    extends: str | None = None

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "version": self.version,
            "title_zh": self.title_zh,
            "title_en": self.title_en,
            "path": str(self.path),
            "origin": self.origin,
            "extends": self.extends,
        }


# -- results ------------------------------------------------------------------------------------------


LEVEL_ERROR = "error"
LEVEL_WARNING = "warning"


@dataclass(frozen=True)
class LintMessage:
    file: str
    line: int
    column: int
    level: str  # "error" | "warning"
    message: str

    def __str__(self) -> str:
        return (
            f"{self.file}:{self.line}: {self.message}"
            if self.level == LEVEL_ERROR
            else (f"{self.file}:{self.line}: warning: {self.message}")
        )

    def to_dict(self) -> dict:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "level": self.level,
            "message": self.message,
        }


@dataclass(frozen=True)
class ControlOutcome:
    """What one machine check concluded for one tier. ``threshold`` is the bound that decided:
    the fail bound for ``fail``, the warn bound for ``warn``, and for ``pass`` the warn bound when the
    control has one (else the fail bound)."""

    control_id: str
    status: str
    value: float | None
    threshold: float | None
    comparator: str | None
    metric: str | None
    feature: str | None
    group: str | None
    reason: str
    clause_ids: tuple[str, ...]
    secondary_clause_ids: tuple[str, ...] = ()
    severity: str | None = None
    tier: str | None = None
    monitor: str | None = None
    on_breach: str = ON_BREACH_FINDING
    basis: str | None = None

    @property
    def suspend(self) -> bool:
        """True when this outcome asks the registry to suspend the model (a fail of a suspend control)."""
        return self.status == STATUS_FAIL and self.on_breach == ON_BREACH_SUSPEND

    def to_dict(self) -> dict:
        return {
            "control_id": self.control_id,
            "status": self.status,
            "value": self.value,
            "threshold": self.threshold,
            "comparator": self.comparator,
            "metric": self.metric,
            "feature": self.feature,
            "group": self.group,
            "reason": self.reason,
            "clause_ids": list(self.clause_ids),
            "secondary_clause_ids": list(self.secondary_clause_ids),
            "severity": self.severity,
            "tier": self.tier,
            "monitor": self.monitor,
            "on_breach": self.on_breach,
            "basis": self.basis,
        }


@dataclass(frozen=True)
class PolicyTestOutcome:
    name: str
    control_id: str
    tier: str
    expected: str
    actual: str
    passed: bool
    file: str
    line: int
    message: str = ""
    outcome: ControlOutcome | None = None

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "control_id": self.control_id,
            "tier": self.tier,
            "expected": self.expected,
            "actual": self.actual,
            "passed": self.passed,
            "file": self.file,
            "line": self.line,
            "message": self.message,
            "outcome": None if self.outcome is None else self.outcome.to_dict(),
        }
