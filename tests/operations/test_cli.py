"""The operations commands as a user runs them: light (no heavy imports), bad input gives one line and exit 2,
an empty calendar exits 0, and a registry at schema 0001 upgrades to 0002_operations with `modelreg init`."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.core.test_imports import HEAVY, SCRIPT


@pytest.fixture
def env(env_for, db_url):
    env = env_for(db_url)
    for args in (["init"], ["--as", "boss", "user", "add", "boss", "--role", "admin"]):
        subprocess.run([sys.executable, "-m", "modelreg", *args], env=env, check=True, capture_output=True)
    from modelreg import settings
    from modelreg.registry import Registry

    reg = Registry(settings.load(environ=env), actor="boss")
    reg.add_user("dev", ["developer"])
    reg.as_user("dev").register("credit_scoring", "1", owner="dev", risk_tier="low", purpose="PD")
    reg.engine.dispose()
    return env


def _run(env, *args):
    return subprocess.run([sys.executable, "-m", "modelreg", *args], env=env, capture_output=True, text=True)


LIGHT = [["due"], ["finding", "list"], ["inventory", "--format", "json"], ["inventory", "--format", "csv"]]


def test_operations_commands_are_light(env):
    for argv in LIGHT:
        out = subprocess.run(
            [sys.executable, "-c", SCRIPT.format(argv=argv, heavy=HEAVY)],
            env=env,
            capture_output=True,
            text=True,
        )
        line = next(x for x in out.stdout.splitlines() if x.startswith("@@"))
        result = json.loads(line[2:])
        assert result["code"] == 0 and result["heavy"] == [], (argv, result)


def test_empty_calendar_and_inventory(env):
    r = _run(env, "due", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["items"] == []
    r = _run(env, "inventory", "--format", "json")
    rows = json.loads(r.stdout)["rows"]
    assert [(x["model"], x["stage"], x["supplier"], x["next_due"]) for x in rows] == [
        ("credit_scoring", "develop", "in-house / 自研", "")
    ]
    csv_text = _run(env, "inventory").stdout
    assert csv_text.splitlines()[0].startswith("模型 Model,版本 Version,用途 Purpose")


BAD = [
    (["due", "--within", "soon"], "--within must be a number of days"),
    (["finding", "show", "999"], "finding #999 does not exist"),
    (["finding", "assign", "999", "--owner", "dev"], "does not exist"),
    (["inventory", "--format", "xlsx"], "needs -o FILE.xlsx"),
    (["report", "validation", "credit_scoring", "1", "-o", "r.txt"], "has no validation"),
    (["report", "validation", "credit_scoring", "9", "-o", "r.docx"], "credit_scoring"),
]


def test_bad_input_is_one_line_and_exit_2(env, tmp_path):
    for args, words in BAD:
        r = subprocess.run(
            [sys.executable, "-m", "modelreg", "--as", "boss", *args],
            env=env,
            capture_output=True,
            text=True,
            cwd=tmp_path,
        )
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], (args, lines)
        assert "Traceback" not in r.stderr
    assert not list(tmp_path.glob("r.*"))  # nothing half-written


def test_report_output_must_be_docx_pdf_or_html():
    from modelreg.errors import BadInput
    from modelreg.operations.report import write_report

    with pytest.raises(BadInput, match=r"must end in \.docx, \.pdf or \.html"):
        write_report({}, "report.txt")


def test_upgrade_from_0001_adds_the_findings_table(db_url, settings_for):
    from alembic import command
    from sqlalchemy import inspect

    from modelreg.registry import Registry
    from modelreg.store import schema

    reg = Registry(settings_for(db_url), actor="admin")
    with reg.engine.begin() as conn:
        command.upgrade(schema._alembic_config(conn), "0001")
    assert schema.current_revision(reg.engine) == "0001"
    assert "tracked_findings" not in inspect(reg.engine).get_table_names()
    result = reg.init()
    assert result["before"] == "0001" and result["after"] == schema.HEAD_REVISION and result["upgraded"]
    assert "tracked_findings" in inspect(reg.engine).get_table_names()
    reg.engine.dispose()
