"""Monitor results → control outcomes. Pure: no I/O, no monitors import (results are duck-typed).

A result is anything with ``.status``, ``.reason`` and ``.metrics`` (objects with ``name``, ``value``,
``status``, ``reason``, ``feature``, ``group``), and optionally ``.kind``: ``monitors.base.MonitorResult``
fits. A check never passes on what it cannot see: an invalid or insufficient result, a missing metric or
an undefined one gives ``error`` with the reason.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from modelreg.errors import PolicyError
from modelreg.policy.model import (
    ANY,
    COMPARATOR_WORDS,
    KIND_CHECK,
    STATUS_ERROR,
    STATUS_FAIL,
    STATUS_PASS,
    STATUS_WARN,
    Control,
    ControlOutcome,
    PolicyPack,
    Threshold,
)

if TYPE_CHECKING:  # only for readers and type checkers: importing monitors pulls in pandas
    from monitors.base import Metric, MonitorResult  # noqa: F401

_OK = "ok"


def _status_text(status: Any) -> str:
    return str(getattr(status, "value", status))


def breaches(value: float, comparator: str, bound: float) -> bool:
    """True when ``value`` is on the breach side of ``bound`` (``lt``: value < bound, and so on)."""
    if comparator == "lt":
        return value < bound
    if comparator == "le":
        return value <= bound
    if comparator == "gt":
        return value > bound
    if comparator == "ge":
        return value >= bound
    raise PolicyError(f"comparator must be one of lt, le, gt, ge. Got {comparator!r} instead.")


def classify(value: float, comparator: str, threshold: Threshold) -> tuple[str, float]:
    """(status, the bound that decided) for one defined value."""
    if breaches(value, comparator, threshold.fail):
        return STATUS_FAIL, threshold.fail
    if threshold.warn is not None and breaches(value, comparator, threshold.warn):
        return STATUS_WARN, threshold.warn
    return STATUS_PASS, threshold.warn if threshold.warn is not None else threshold.fail


def _selector_text(feature: str | None, group: str | None) -> str:
    parts = []
    if feature is not None:
        parts.append(f"feature={feature!r}")
    if group is not None:
        parts.append(f"group={group!r}")
    return f" ({', '.join(parts)})" if parts else " (dataset-level)"


def _matches(selector: str | None, actual: Any) -> bool:
    if selector == ANY:
        return actual is not None
    return actual == selector


def _fmt(value: float) -> str:
    return f"{value:.6g}"


def evaluate_check(control: Control, tier: str, result: Any) -> ControlOutcome:
    """The outcome of one machine-check control on one monitor result, for a model of risk ``tier``."""
    check = control.check
    if check is None:
        raise PolicyError(
            f"control {control.id} is not a machine check (its kind is {control.kind}); the registry evaluates it"
        )
    threshold = check.thresholds.get(tier)
    if threshold is None:
        raise PolicyError(
            f"control {control.id} has no thresholds for tier {tier!r}; it applies to tiers {list(control.tiers)}"
        )

    def outcome(
        status: str,
        reason: str,
        value: float | None = None,
        bound: float | None = None,
        feature: str | None = check.feature,
        group: str | None = check.group,
    ) -> ControlOutcome:
        return ControlOutcome(
            control_id=control.id,
            status=status,
            value=value,
            threshold=bound,
            comparator=check.comparator,
            metric=check.metric,
            feature=feature,
            group=group,
            reason=reason,
            clause_ids=control.clauses,
            secondary_clause_ids=control.secondary_clauses,
            severity=control.severity,
            tier=tier,
            monitor=check.monitor,
            on_breach=control.on_breach_for(tier),
            basis=check.basis,
        )

    if result is None:
        return outcome(STATUS_ERROR, f"no {check.monitor} result was given")
    kind = getattr(result, "kind", None)
    if kind is not None and kind != check.monitor:
        return outcome(
            STATUS_ERROR, f"control {control.id} reads a {check.monitor} result. Got a {kind} result instead."
        )
    result_status = _status_text(getattr(result, "status", _OK))
    if result_status != _OK:
        why = getattr(result, "reason", None) or "no reason given"
        return outcome(STATUS_ERROR, f"the {check.monitor} result is {result_status}: {why}")

    where = _selector_text(check.feature, check.group)
    matched = [
        m
        for m in (getattr(result, "metrics", None) or ())
        if m.name == check.metric and _matches(check.feature, m.feature) and _matches(check.group, m.group)
    ]
    if not matched:
        return outcome(
            STATUS_ERROR, f"metric {check.metric}{where} is missing from the {check.monitor} result"
        )

    defined: list[tuple[float, Any]] = []
    undefined: list[tuple[Any, str]] = []
    for m in matched:
        status = _status_text(getattr(m, "status", _OK))
        value = getattr(m, "value", None)
        if status != _OK or value is None:
            undefined.append((m, f"{status}: {getattr(m, 'reason', None) or 'no reason given'}"))
            continue
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(float(value)):
            undefined.append((m, f"value {value!r} is not a number"))
            continue
        defined.append((float(value), m))

    # A known failure is reported even when some other feature could not be judged; otherwise an
    # undefined metric means the control cannot pass.
    graded = [(classify(v, check.comparator, threshold), v, m) for v, m in defined]
    fails = [g for g in graded if g[0][0] == STATUS_FAIL]
    if not fails and undefined:
        first, why = undefined[0]
        others = f" (and {len(undefined) - 1} more undefined)" if len(undefined) > 1 else ""
        return outcome(
            STATUS_ERROR,
            f"metric {check.metric}{_selector_text(first.feature, first.group)} is undefined: {why}{others}",
            feature=first.feature,
            group=first.group,
        )
    pool = fails or graded
    # The worst value is the one furthest on the breach side.
    lower_is_worse = check.comparator in ("lt", "le")
    (status, bound), value, metric = (min if lower_is_worse else max)(pool, key=lambda g: g[1])
    word = COMPARATOR_WORDS[check.comparator]
    subject = f"{check.metric}{_selector_text(metric.feature, metric.group)} = {_fmt(value)}"
    if check.feature == ANY or check.group == ANY:
        subject = f"{subject} (the worst of {len(matched)})"
    if status == STATUS_PASS:
        reason = f"{subject} is not {word} the {'warn' if threshold.warn is not None else 'fail'} threshold {_fmt(bound)}"
    else:
        reason = f"{subject} is {word} the {status} threshold {_fmt(bound)}"
    if undefined:
        reason += f"; {len(undefined)} more could not be computed"
    return outcome(status, reason, value, bound, metric.feature, metric.group)


def evaluate_results(
    pack: PolicyPack, gate: str, tier: str, results: Mapping[str, Any] | Sequence[Any]
) -> list[ControlOutcome]:
    """Outcomes of every machine check at ``gate`` for ``tier``. ``results`` maps monitor kind → result (or is
    a list of results with ``.kind``). A check whose monitor has no result gives ``error``."""
    if not isinstance(results, Mapping):
        by_kind: dict[str, Any] = {}
        for r in results:
            by_kind[getattr(r, "kind", "")] = r
        results = by_kind
    return [
        evaluate_check(c, tier, results.get(c.check.monitor))  # type: ignore[union-attr]
        for c in pack.controls_for(gate, tier, kind=KIND_CHECK)
    ]


def worst_status(outcomes: Sequence[ControlOutcome]) -> str:
    """The overall status of outcomes: error > fail > warn > pass (an empty list passes)."""
    order = {STATUS_PASS: 0, STATUS_WARN: 1, STATUS_FAIL: 2, STATUS_ERROR: 3}
    return max((o.status for o in outcomes), key=order.__getitem__, default=STATUS_PASS)
