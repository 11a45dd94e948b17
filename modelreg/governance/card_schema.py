"""The model card's schema: every field modelreg itself reads, its type, and who reads it.

The card stays an open mapping (a bank's policy pack may ask for more text fields through
``model_card_complete``'s ``fields``), but a field the checks read with the wrong type used to be skipped
silently (a ``monotone_constraints`` list meant no monotonicity test at all). ``lint`` names the first
problem in one line; ``modelreg card-lint FILE`` exits 2 on it. README "Model card fields" documents the
same table (tests/integration/test_card_schema.py keeps the two in step).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class CardField:
    name: str
    type: str  # as documented
    read_by: str
    valid: Callable[[Any], bool]


def _text(v: Any) -> bool:
    return isinstance(v, str)


def _names(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) and x for x in v)


def _bands(v: Any) -> bool:
    from monitors.bands import parse_bands
    from monitors.base import ParameterError

    try:
        parse_bands(v, "score_bands")
    except ParameterError:
        return False
    return True


def _threshold(v: Any) -> bool:
    if isinstance(v, str):  # `card --set decision_threshold=0.5` stores text
        try:
            v = float(v)
        except ValueError:
            return False
    return isinstance(v, (int, float)) and not isinstance(v, bool) and 0.0 <= float(v) <= 1.0


def _monotone(v: Any) -> bool:
    return isinstance(v, dict) and all(
        isinstance(k, str) and isinstance(x, int) and not isinstance(x, bool) and x in (-1, 0, 1)
        for k, x in v.items()
    )


def _labels(v: Any) -> bool:
    return isinstance(v, dict) and all(
        isinstance(k, str) and isinstance(x, list) and len(x) == 2 and all(isinstance(s, str) for s in x)
        for k, x in v.items()
    )


def _scenarios(v: Any) -> bool:
    # The robustness monitor's own rule (names unique, shocks of feature/op/value): one definition.
    from monitors.robustness import _valid_scenarios

    return _valid_scenarios(v)


_TEXT = (
    ("intended_use", "policy: model_card_complete; evidence pack"),
    ("excluded_uses", "policy: model_card_complete; evidence pack"),
    ("limitations", "policy: model_card_complete; evidence pack"),
    ("human_review", "evidence pack (human review of decisions)"),
    ("decision", "evidence pack (what the score decides)"),
    ("algorithm", "evidence pack (algorithm filing)"),
    ("objective", "evidence pack (algorithm filing)"),
    ("institution", "evidence pack (filing)"),
    ("contact", "evidence pack (filing)"),
    ("features", "evidence pack (free text list of inputs)"),
)

FIELDS: dict[str, CardField] = {
    **{f"{n}{s}": CardField(f"{n}{s}", "text", r, _text) for n, r in _TEXT for s in ("", "_zh")},
    "personal_information": CardField(
        "personal_information", "list of feature names", "evidence pack (PI flags, NFRA 2025 item 26)", _names
    ),
    "decision_threshold": CardField(
        "decision_threshold", "number in [0, 1]", "evidence pack (decision rule)", _threshold
    ),
    "categorical_features": CardField(
        "categorical_features", "list of feature names", "evidence pack (integer codes without order)", _names
    ),
    "ordinal_features": CardField(
        "ordinal_features", "list of feature names", "evidence pack (integer codes with order)", _names
    ),
    "monotone_constraints": CardField(
        "monotone_constraints",
        "mapping feature → -1, 0 or 1",
        "robustness monitor (monotonicity test), CHK-XAI-04",
        _monotone,
    ),
    "stress_scenarios": CardField(
        "stress_scenarios",
        "list of {name, name_zh?, shocks: [{feature, op, value}]}",
        "robustness monitor (stress scenarios), CHK-ROB-01",
        _scenarios,
    ),
    "feature_labels": CardField(
        "feature_labels",
        "mapping feature → [label_zh, label_en]",
        "explainability reason codes, evidence pack",
        _labels,
    ),
    "score_bands": CardField(
        "score_bands",
        "list of {grade, lower, upper} (best grade first, contiguous)",
        "stability monitor (score-band PSI, grade migration), CHK-DRIFT-02.score_bands",
        _bands,
    ),
    "decision_id_column": CardField(
        "decision_id_column",
        "text (a column name)",
        "stability monitor (grade migration per account); decisions recorded by monitoring, outcomes add",
        _text,
    ),
    "decision_time_column": CardField(
        "decision_time_column",
        "text (a column name)",
        "monitoring records the scoring log's decisions (with decision_id_column); vintages",
        _text,
    ),
    "outcome_column": CardField(
        "outcome_column",
        "text (a column name)",
        "outcomes add (default --outcome-column)",
        _text,
    ),
    "outcome_time_column": CardField(
        "outcome_time_column",
        "text (a column name)",
        "outcomes add (default --time-column: when the outcome was observed)",
        _text,
    ),
}


def lint(card: Mapping[str, Any], extra_fields: Iterable[str] = ()) -> list[str]:
    """One line per problem: an unknown field (not in the schema nor asked for by the policy pack), or a
    known field of the wrong type."""
    allowed = set(FIELDS) | set(extra_fields)
    problems = []
    for key in sorted(card, key=str):
        value = card[key]
        spec = FIELDS.get(key) if isinstance(key, str) else None
        if spec is None:
            if key not in allowed:
                problems.append(f"unknown model card field {key!r} (known: see README 'Model card fields')")
            elif not _text(value):
                problems.append(f"model card field {key!r} must be text. Got {type(value).__name__} instead.")
        elif not spec.valid(value):
            problems.append(
                f"model card field {key!r} must be a {spec.type}. Got {type(value).__name__} {value!r:.60} instead."
            )
    return problems


def policy_fields(pack: Any) -> set[str]:
    """Text fields a pack's ``model_card_complete`` controls ask for (a bank may require its own)."""
    out: set[str] = set()
    for c in pack.controls:
        req = getattr(c, "requirement", None)
        if req is not None and getattr(req, "id", None) == "model_card_complete":
            out.update((getattr(req, "params", None) or {}).get("fields") or ())
    return out
