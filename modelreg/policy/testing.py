"""Policy unit tests (like ``conftest verify``): given metrics, a control must reach the expected status.

A tests file::

    pack: cn-fin-algo-risk            # optional: the pack these tests were written for
    tests:
      - name: four-fifths breach on sex
        control: CHK-FAIR-01
        tier: high
        metrics:
          - {name: demographic_parity_ratio, feature: sex, value: 0.75}
        expect: fail
        expect_feature: sex           # optional further expectations
        expect_threshold: 0.8
      - name: undefined metric is an error
        control: CHK-PERF-01
        tier: high
        metrics:
          - {name: auc, status: insufficient_data, reason: only one class}
        expect: error
      - name: invalid input result
        control: CHK-DRIFT-01
        tier: low
        result: {status: invalid_input, reason: no rows}
        metrics: []
        expect: error
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelreg.errors import PolicyError
from modelreg.policy.evaluate import evaluate_check
from modelreg.policy.loader import LSeq, _Checker, _read_tree, _tname
from modelreg.policy.model import OUTCOME_STATUSES, LintMessage, PolicyPack, PolicyTestOutcome

_RESULT_STATUSES = ("ok", "insufficient_data", "invalid_input", "not_estimable")
_CASE_KEYS = (
    "name",
    "control",
    "tier",
    "metrics",
    "result",
    "expect",
    "expect_feature",
    "expect_group",
    "expect_threshold",
)


@dataclass(frozen=True)
class _Metric:
    name: str
    value: float | None
    status: str = "ok"
    reason: str | None = None
    feature: str | None = None
    group: str | None = None


@dataclass(frozen=True)
class _Result:
    """The duck-typed shape of ``monitors.base.MonitorResult`` that ``evaluate_check`` reads."""

    kind: str
    metrics: tuple[_Metric, ...]
    status: str = "ok"
    reason: str | None = None
    params: dict = field(default_factory=dict)


def _fail(pos_file: str, line: int, message: str) -> PolicyError:
    return PolicyError(f"{pos_file}:{line}: {message}")


def _parse_metric(seq: LSeq, i: int, item: Any, ck: _Checker, where: str) -> _Metric | None:
    m = ck.mapping(seq, i, item, f"{where}: metrics[{i}]")
    if m is None:
        return None
    w = f"{where}: metrics[{i}]"
    ck.keys(m, w, ["name"], ["value", "status", "reason", "feature", "group"])
    status = m.get("status", "ok")
    if status not in _RESULT_STATUSES:
        ck.error(
            m.vpos("status"), f"{w}: status must be one of {list(_RESULT_STATUSES)}. Got {status!r} instead."
        )
        return None
    value = m.get("value")
    if status == "ok":
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            ck.error(
                m.vpos("value") if "value" in m else m.pos,
                f"{w}: an ok metric needs a numeric value. Got {value!r} instead.",
            )
            return None
    elif value is not None:
        ck.error(m.vpos("value"), f"{w}: a metric with status {status} has no value (it is undefined)")
        return None
    elif not m.get("reason"):
        ck.error(m.pos, f"{w}: a metric with status {status} needs a reason")
        return None
    for key in ("feature", "group"):
        if m.get(key) is not None and not isinstance(m.get(key), str):
            ck.error(m.vpos(key), f"{w}: {key} must be a string or null. Got {m.get(key)!r} instead.")
            return None
    return _Metric(
        name=str(m["name"]),
        value=None if value is None else float(value),
        status=status,
        reason=m.get("reason"),
        feature=m.get("feature"),
        group=m.get("group"),
    )


def run_policy_tests(pack: PolicyPack, tests_file: str | Path) -> list[PolicyTestOutcome]:
    """Run every case in ``tests_file`` against ``pack``. Malformed files raise ``PolicyError`` (file:line)."""
    path = Path(tests_file)
    messages: list[LintMessage] = []
    tree = _read_tree(path, messages)
    ck = _Checker(messages)
    ck.keys(tree, "the policy tests file", ["tests"], ["pack"])
    cases = tree.get("tests")
    if not isinstance(cases, LSeq):
        ck.error(
            tree.vpos("tests") if "tests" in tree else tree.pos,
            f"tests must be a list of cases. Got a {_tname(cases)} instead.",
        )
        cases = LSeq(tree.pos)
    parsed = []
    for i, body in enumerate(cases):
        c = ck.mapping(cases, i, body, f"tests[{i}]")
        if c is None:
            continue
        where = f"test {c.get('name') or i}"
        ck.keys(
            c,
            where,
            ["control", "tier", "metrics", "expect"],
            [k for k in _CASE_KEYS if k not in ("control", "tier", "metrics", "expect")],
        )
        expect = c.get("expect")
        if expect not in OUTCOME_STATUSES:
            ck.error(
                c.vpos("expect"),
                f"{where}: expect must be one of {list(OUTCOME_STATUSES)}. Got {expect!r} instead.",
            )
        metrics = c.get("metrics")
        parsed_metrics: list[_Metric] = []
        if not isinstance(metrics, LSeq):
            ck.error(c.vpos("metrics"), f"{where}: metrics must be a list. Got a {_tname(metrics)} instead.")
        else:
            for j, item in enumerate(metrics):
                metric = _parse_metric(metrics, j, item, ck, where)
                if metric is not None:
                    parsed_metrics.append(metric)
        result_status, result_reason = "ok", None
        if "result" in c:
            r = ck.mapping(c, "result", c["result"], f"{where}: result")
            if r is not None:
                ck.keys(r, f"{where}: result", ["status"], ["reason"])
                result_status = r.get("status")
                result_reason = r.get("reason")
                if result_status not in _RESULT_STATUSES:
                    ck.error(
                        r.vpos("status"),
                        f"{where}: result status must be one of {list(_RESULT_STATUSES)}. Got {result_status!r} instead.",
                    )
                elif result_status != "ok" and not result_reason:
                    ck.error(r.pos, f"{where}: a result with status {result_status} needs a reason")
        parsed.append((c, cases.ipos(i), where, parsed_metrics, result_status, result_reason))
    errors = [m for m in messages if m.level == "error"]
    if errors:
        raise _fail(errors[0].file, errors[0].line, errors[0].message)

    out = []
    for c, pos, where, metrics, result_status, result_reason in parsed:
        name = str(c.get("name") or where)
        control_id, tier, expect = str(c.get("control")), str(c.get("tier")), str(c.get("expect"))

        def failed(
            message: str, *, name=name, control_id=control_id, tier=tier, expect=expect, pos=pos
        ) -> PolicyTestOutcome:
            return PolicyTestOutcome(
                name, control_id, tier, expect, "n/a", False, pos.file, pos.line, message
            )

        try:
            control = pack.control(control_id)
        except LookupError:
            out.append(failed(f"unknown control {control_id!r} in pack {pack.ref}"))
            continue
        if control.check is None:
            out.append(
                failed(f"control {control_id} is a {control.kind}; only machine checks can be unit-tested")
            )
            continue
        if tier not in control.check.thresholds:
            out.append(failed(f"control {control_id} has no thresholds for tier {tier!r}"))
            continue
        result = _Result(
            kind=control.check.monitor, metrics=tuple(metrics), status=result_status, reason=result_reason
        )
        outcome = evaluate_check(control, tier, result)
        problems = []
        if outcome.status != expect:
            problems.append(f"expected {expect}, got {outcome.status}: {outcome.reason}")
        for key, actual in (("expect_feature", outcome.feature), ("expect_group", outcome.group)):
            if key in c and c[key] != actual:
                problems.append(f"{key}: expected {c[key]!r}, got {actual!r}")
        if "expect_threshold" in c and c["expect_threshold"] != outcome.threshold:
            problems.append(
                f"expect_threshold: expected {c['expect_threshold']!r}, got {outcome.threshold!r}"
            )
        out.append(
            PolicyTestOutcome(
                name=name,
                control_id=control_id,
                tier=tier,
                expected=expect,
                actual=outcome.status,
                passed=not problems,
                file=pos.file,
                line=pos.line,
                message="; ".join(problems),
                outcome=outcome,
            )
        )
    return out


def default_tests_file(pack: PolicyPack) -> Path | None:
    """The tests file that goes with a pack: ``tests/<stem>.tests.yaml`` beside it, else ``<stem>.tests.yaml``."""
    if pack.path is None:
        return None
    for candidate in (
        pack.path.parent / "tests" / f"{pack.path.stem}.tests.yaml",
        pack.path.parent / f"{pack.path.stem}.tests.yaml",
    ):
        if candidate.is_file():
            return candidate
    return None


__all__ = ["default_tests_file", "run_policy_tests"]
