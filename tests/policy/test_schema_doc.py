"""policies/schema.md documents every key, id and metric name the loader accepts (fails when one is added
to the code but not to the documentation)."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelreg.policy import (
    COMPARATORS,
    GATES,
    KNOWN_METRICS,
    ON_BREACH_ACTIONS,
    REQUIREMENT_IDS,
    ROLES,
    SEVERITIES,
    THRESHOLD_BASES,
    loader,
)

SCHEMA = Path(__file__).resolve().parents[2] / "policies" / "schema.md"


@pytest.fixture(scope="module")
def doc() -> str:
    return SCHEMA.read_text(encoding="utf-8")


def test_every_stable_value_is_documented(doc):
    values = [
        *GATES,
        *SEVERITIES,
        *COMPARATORS,
        *ROLES,
        *REQUIREMENT_IDS,
        *THRESHOLD_BASES,
        *ON_BREACH_ACTIONS,
    ]
    assert [v for v in values if f"`{v}`" not in doc] == []


def test_every_metric_name_is_documented_under_its_monitor(doc):
    for kind, names in KNOWN_METRICS.items():
        section = doc.split(f"- `{kind}`:", 1)[1].split("\n- `", 1)[0]
        assert [n for n in sorted(names) if f"`{n}`" not in section] == [], kind


def test_every_key_is_documented(doc):
    keys = {
        *loader._PACK_KEYS_EXT,
        *loader._CONTROL_KEYS,
        *loader._CHECK_KEYS,
        *loader._OVERRIDE_CONTROL_KEYS,
    }
    assert sorted(k for k in keys if f"`{k}`" not in doc and f"{k}:" not in doc) == []
