"""The ``policy`` click group: outputs and exit codes (0 clean, 1 lint errors / failed tests, 2 usage)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from modelreg.errors import BadInput, PolicyError
from modelreg.policy import DEFAULT_PACK_ID, load_pack

from .test_lint import MINI, line_of, write
from .test_overrides import BANK
from .test_policy_tests import TESTS


@pytest.fixture
def run(tmp_path, monkeypatch):
    from modelreg.cli.policy_cmds import policy

    # $MODELREG_HOME/policies is the default search path; keep it inside the test's folder.
    monkeypatch.setenv("MODELREG_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MODELREG_CONFIG", "")
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(policy, list(args), catch_exceptions=True)

    return invoke


def test_list(run, tmp_path):
    result = run("list")
    assert result.exit_code == 0
    assert f"{DEFAULT_PACK_ID}@1.0.0  [shipped]" in result.output
    result = run("list", "--json")
    packs = json.loads(result.output)["packs"]
    assert [p["id"] for p in packs] == [DEFAULT_PACK_ID]


def test_bank_packs_from_modelreg_home_and_search_path(run, tmp_path):
    home_policies = tmp_path / "home" / "policies"
    home_policies.mkdir(parents=True)
    write(home_policies, BANK, "acme.yaml")
    assert "acme-bank@2026.1  [search_path]" in run("list").output
    shown = json.loads(run("show", "acme-bank", "--json").output)
    assert shown["extends"]["id"] == DEFAULT_PACK_ID
    other = tmp_path / "elsewhere"
    other.mkdir()
    write(other, BANK.replace("acme-bank", "other-bank"), "other.yaml")
    result = run("--search-path", str(other), "list", "--json")
    assert {p["id"] for p in json.loads(result.output)["packs"]} == {"other-bank", DEFAULT_PACK_ID}


def test_show(run):
    result = run("show")
    assert result.exit_code == 0
    pack = load_pack(DEFAULT_PACK_ID)
    assert pack.digest in result.output
    assert "CHK-FAIR-01  [check, blocking] gates: deploy, monitor" in result.output
    assert "群体间人口均等比率" in result.output and "Demographic parity ratio" in result.output
    assert "high: warn lt 0.9, fail lt 0.8" in result.output
    assert pack.clause("NFRA-2025-25.6").text_zh in result.output
    data = json.loads(run("show", DEFAULT_PACK_ID, "--json").output)
    assert data["digest"] == pack.digest
    assert len(data["clauses"]) == 97 and data["pack"]["version"] == "1.0.0"


def test_show_unknown_pack_raises_policy_error(run):
    result = run("show", "no-such-pack")
    assert isinstance(result.exception, PolicyError)
    assert "no policy pack with id 'no-such-pack'" in result.exception.message


def test_lint_clean_and_broken(run, tmp_path):
    clean = write(tmp_path, MINI)
    result = run("lint", str(clean))
    assert (result.exit_code, result.output.strip()) == (0, f"{clean}: OK")
    text = MINI.replace("metric: max_psi", "metric: max_pis").replace("role: approver", "role: boss")
    broken = write(tmp_path, text, "broken.yaml")
    result = run("lint", str(broken))
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.startswith(str(broken.resolve()))]
    assert [int(line.split(":")[1]) for line in lines] == [
        line_of(text, "max_pis"),
        line_of(text, "role: boss"),
    ]
    data = json.loads(run("lint", str(broken), "--json").output)
    assert (data["ok"], data["errors"]) == (False, 2)
    assert data["messages"][0]["line"] == line_of(text, "max_pis")


def test_lint_shipped_pack_is_clean(run):
    result = run("lint", str(load_pack(DEFAULT_PACK_ID).path))
    assert result.exit_code == 0 and result.output.strip().endswith(": OK")


def test_lint_missing_file_is_a_usage_error(run, tmp_path):
    assert run("lint", str(tmp_path / "nope.yaml")).exit_code == 2


def test_test_command(run, tmp_path):
    result = run("test")
    assert result.exit_code == 0
    import yaml

    # Counted from the shipped tests file, not a literal: every branch that adds controls adds cases.
    shipped = load_pack(DEFAULT_PACK_ID).path.parent / "tests" / "cn-fin-algorithm-risk.tests.yaml"
    n = len(yaml.safe_load(shipped.read_text(encoding="utf-8"))["tests"])
    assert n >= 210 and f"{n} passed, 0 failed" in result.output
    pack_file = write(tmp_path, MINI)
    tests = write(tmp_path, TESTS, "my.tests.yaml")
    result = run("test", str(pack_file), "--tests", str(tests))
    assert result.exit_code == 1
    assert f"{tests}:{line_of(TESTS, 'name: wrong expectation')}: FAIL wrong expectation" in result.output
    assert "2 passed, 3 failed" in result.output
    data = json.loads(run("test", str(pack_file), "--tests", str(tests), "--json").output)
    assert (data["passed"], data["failed"]) == (2, 3)
    assert data["cases"][0]["outcome"]["status"] == "fail"


def test_test_without_a_tests_file_is_bad_input(run, tmp_path):
    result = run("test", str(write(tmp_path, MINI)))
    assert isinstance(result.exception, BadInput)
    assert "Pass one with --tests FILE" in result.exception.message


def test_lint_takes_a_pack_id_as_well_as_a_file(run):
    """Issue 17.5: the README names packs by id; lint accepts the id (and id@version) and lints its file."""
    for ref in (DEFAULT_PACK_ID, f"{DEFAULT_PACK_ID}@{load_pack(DEFAULT_PACK_ID).version}"):
        result = run("lint", ref)
        assert result.exit_code == 0, result.output
        assert result.output.strip() == f"{load_pack(DEFAULT_PACK_ID).path}: OK"
    result = run("lint", "no-such-pack")
    assert result.exit_code == 2
    assert "neither an existing file nor a known pack id" in result.output
