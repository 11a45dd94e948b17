"""The CLI's one error handler and the text it prints (issue 17.5/17.6, issue 19.7), through the real
``modelreg`` process on SQLite and PostgreSQL.

* Under ``--json`` an error is one JSON object on **stderr** (stdout stays empty, so a pipeline that parses
  stdout never mistakes an error for a result): ``{"error": {"code", "message", "exit"[, "details"]}}``.
* ``--debug`` adds the traceback and never changes the exit status.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from datetime import UTC, datetime

import pytest

from modelreg.governance.records import Evaluation, Finding
from modelreg.governance.report import evaluation_text
from tests.conftest import REPO_ROOT
from tests.core._workers import register, seeded_core_registry


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "modelreg", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def env(db_url, env_for) -> dict[str, str]:
    env = env_for(db_url)
    reg = seeded_core_registry(env)
    register(reg, "credit_scoring", "1")
    reg.engine.dispose()
    return env


def _json_error(done: subprocess.CompletedProcess) -> dict:
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    return json.loads(lines[0])


def test_errors_under_json_are_one_json_object_on_stderr(env):
    cases = [
        (["show", "nope", "1", "--json"], 2, "not_found", "model 'nope' is not registered"),
        (["--as", "mallory", "list", "--json"], 1, "permission_denied", "unknown user 'mallory'"),
        (["list", "--stage", "bogus", "--json"], 2, "usage_error", "'bogus' is not one of"),
        (
            ["--as", "val", "submit", "credit_scoring", "1", "--json"],
            1,
            "permission_denied",
            "needs the role",
        ),
    ]
    for argv, status, code, fragment in cases:
        done = run(env, *argv)
        assert done.returncode == status, (argv, done.stderr)
        assert done.stdout == "", argv
        error = _json_error(done)["error"]
        assert error["code"] == code and error["exit"] == status, (argv, error)
        assert fragment in error["message"], (argv, error)


def test_gate_refusal_under_json_carries_every_unmet_requirement(env):
    # The CLI's registry carries the policy pack: a version registered without its model card and attestations
    # is refused at submit, every unmet requirement in the JSON error's details.
    done = run(env, "--as", "dev", "submit", "credit_scoring", "1", "--json")
    assert done.returncode == 1 and done.stdout == ""
    error = _json_error(done)["error"]
    assert error["code"] == "gate_refused" and error["exit"] == 1
    unmet = error["details"]["unmet"]
    assert len(unmet) >= 2 and all(u["message_en"] and u["message_zh"] for u in unmet)
    assert f"{len(unmet)} requirement(s) unmet" in error["message"]


def test_state_edited_behind_the_api_is_a_json_error_too(env):
    from sqlalchemy import create_engine, text

    engine = create_engine(env["MODELREG_DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:  # blank a required attribute behind the API's back
        conn.execute(text("UPDATE models SET purpose = '' WHERE name = 'credit_scoring'"))
    engine.dispose()
    done = run(env, "--as", "dev", "submit", "credit_scoring", "1", "--json")
    assert done.returncode == 1 and done.stdout == ""
    error = _json_error(done)["error"]
    assert error["code"] == "state_diverges" and error["exit"] == 1
    assert "models credit_scoring: purpose is ''" in error["message"]


def test_debug_shows_the_traceback_and_keeps_the_exit_status(env):
    for argv in (["list", "--stage", "bogus"], ["show", "nope", "1"], ["--as", "val", "submit", "nope", "1"]):
        plain = run(env, *argv)
        debug = run(env, "--debug", *argv)
        assert plain.returncode == debug.returncode and plain.returncode in (1, 2), (argv, debug.stderr)
        assert "Traceback" not in plain.stderr
        assert "Traceback (most recent call last)" in debug.stderr, argv
        # the one-line message is still the last thing said
        assert debug.stderr.strip().splitlines()[-1] == plain.stderr.strip().splitlines()[-1], argv


def test_precheck_help_says_it_is_stored_and_audited():
    from modelreg.cli.main import COMMANDS

    assert "nothing stored" not in COMMANDS["precheck"][1]
    assert "stored and audited" in COMMANDS["precheck"][1]
    done = subprocess.run(
        [sys.executable, "-m", "modelreg", "precheck", "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and "nothing stored" not in done.stdout
    assert "stored as a pre-check evaluation" in " ".join(done.stdout.split())


def _finding(control_id: str, status: str, value: float, threshold: float, comparator: str) -> Finding:
    return Finding(
        control_id=control_id,
        status=status,
        severity="major",
        clause_ids=("NFRA-2025-25.6",),
        detail={
            "value": value,
            "threshold": threshold,
            "comparator": comparator,
            "title_en": f"title of {control_id}",
            "reason": f"why {control_id}" if status == "fail" else "",
        },
        raw_status=status,
    )


def test_findings_table_keeps_columns_aligned_and_says_what_a_bound_means():
    findings = (
        _finding("CHK-PERF-01", "pass", 0.7792, 0.7, "lt"),
        _finding("CHK-FAIR-02.opportunity", "warn", 0.05288, 0.05, "gt"),
        _finding("CHK-XAI-01.concentration", "pass", 0.332, 0.4, "gt"),
        _finding("CHK-PERF-02", "fail", 0.1211, 0.1, "gt"),
    )
    ev = Evaluation(
        id=4, model="credit_scoring", version="2", purpose="validation", gate="deploy", tier="high",
        policy_id="cn-fin-algo-risk", policy_version="1.0.0", policy_digest="sha256:x",
        model_artifact_digest=None, data={}, status="fail", digest="d", mlflow_run_id=None,
        created_by="victor", created_at=datetime(2026, 12, 1, tzinfo=UTC), findings=findings,
    )  # fmt: skip
    lines = evaluation_text(ev).splitlines()
    rows = [line for line in lines if line.startswith("  ") and "title of" in line]
    assert len(rows) == 4
    # Every column starts at the same offset in every row, whatever the control id's length.
    for column in ("CHK-", "title of"):
        assert len({row.index(column) for row in rows}) == 1, (column, rows)
    value_starts = {
        row.index(v) for row, v in zip(rows, ("0.7792", "0.05288", "0.332", "0.1211"), strict=True)
    }
    assert len(value_starts) == 1, rows
    text = "\n".join(rows)
    assert "0.7792 (ok ≥ 0.7)" in text  # a pass above a lower bound: on the ok side of it
    assert "0.332 (ok ≤ 0.4)" in text
    assert "0.05288 (warn if > 0.05)" in text
    assert "0.1211 (fail if > 0.1)" in text
    assert "bound" not in text and " lt " not in text and " gt " not in text
    reason = lines[lines.index(rows[3]) + 1]
    assert reason.strip() == "why CHK-PERF-02" and reason.index("why") == rows[3].index("CHK-")


def test_notebooks_extra_installs_the_front_end_the_readme_starts():
    """17.3: the README says `jupyter lab notebooks/` after `pip install -e ".[notebooks]"`."""
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    assert 'pip install -e ".[notebooks]"' in readme and "jupyter lab notebooks/" in readme
    extras = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "optional-dependencies"
    ]
    names = {req.split(">")[0].split("=")[0].split("[")[0].strip().lower() for req in extras["notebooks"]}
    assert "jupyterlab" in names, extras["notebooks"]
    pytest.importorskip("jupyterlab")
    done = subprocess.run(
        [sys.executable, "-m", "jupyterlab", "--version"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and done.stdout.strip()[:1].isdigit(), done.stderr
