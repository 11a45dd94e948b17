"""Issue 18 item 6: the model-card fields the checks read are documented (README) and linted
(``modelreg card-lint FILE``: unknown field or wrong type → one line, exit 2)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from modelreg.governance.card_schema import FIELDS

ROOT = Path(__file__).resolve().parents[2]


def _fields_read_in_code() -> set[str]:
    """Every ``card.get("x")`` / ``card["x"]`` in the sources, found independently of the schema."""
    pattern = re.compile(r"card(?:\.get\(|\[)\s*[\"']([a-z_]+)[\"']")
    found: set[str] = set()
    for folder in ("modelreg", "monitors"):
        for path in (ROOT / folder).rglob("*.py"):
            found |= set(pattern.findall(path.read_text(encoding="utf-8")))
    return found


def test_every_field_the_code_reads_is_in_the_schema_and_documented():
    read = _fields_read_in_code()
    assert {"monotone_constraints", "stress_scenarios", "feature_labels"} <= read
    assert read <= set(FIELDS), sorted(read - set(FIELDS))
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Model card fields") :]
    section = section[: section.index("\n## ", 4)]
    assert [f for f in FIELDS if f"| `{f}` |" not in section] == []


@pytest.fixture
def lint(env_for, tmp_path, monkeypatch, capsys):
    env = env_for(f"sqlite:///{tmp_path / 'reg.db'}")
    for key, value in env.items():
        if key.startswith(("MODELREG_", "MLFLOW_")):
            monkeypatch.setenv(key, value)
    from modelreg.cli.main import main

    def run(card: dict, *extra: str) -> tuple[int, str, str]:
        path = tmp_path / "card.yaml"
        path.write_text(yaml.safe_dump(card, allow_unicode=True), encoding="utf-8")
        code = main(["card-lint", str(path), *extra])
        out = capsys.readouterr()
        assert "Traceback" not in out.err
        return code, out.out, out.err

    return run


def test_card_lint_accepts_the_demo_card_and_refuses_bad_ones(lint):
    from modelreg.demo import credit

    card = credit.model_card()
    code, out, _ = lint(card)
    assert code == 0 and out.strip().endswith("card.yaml: OK")
    code, out, _ = lint(card, "--json")
    assert code == 0 and json.loads(out)["fields"] == sorted(card)

    bad_cases = {
        "unknown field": ({**card, "intended_usage": "typo"}, "unknown model card field 'intended_usage'"),
        "monotone list": ({**card, "monotone_constraints": ["duration"]}, "'monotone_constraints' must be"),
        "monotone 2": ({**card, "monotone_constraints": {"duration": 2}}, "'monotone_constraints' must be"),
        "labels": ({**card, "feature_labels": {"age": "年龄"}}, "'feature_labels' must be"),
        "scenario op": (
            {
                **card,
                "stress_scenarios": [{"name": "s", "shocks": [{"feature": "age", "op": "pow", "value": 2}]}],
            },
            "'stress_scenarios' must be",
        ),
        "threshold": ({**card, "decision_threshold": 1.5}, "'decision_threshold' must be"),
        "pi": ({**card, "personal_information": "age"}, "'personal_information' must be"),
    }
    for label, (bad, message) in bad_cases.items():
        code, out, err = lint(bad)
        assert code == 2, label
        assert message in err and len(err.strip().splitlines()) == 1, (label, err)
