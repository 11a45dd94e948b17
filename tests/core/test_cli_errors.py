"""Bad input on the command line, through the real ``modelreg`` process, on SQLite and PostgreSQL.

The contract: exit 1 when the command ran and the answer is no (refused, wrong stage, unknown acting user),
exit 2 for usage or input errors (unknown model or version, bad URL, unreachable or uninitialised database);
one line on stderr (plus the unmet requirements of a gate refusal), never a traceback; and nothing written
when a command is refused. Every state-changing command is refused for a user with no roles (deny by
default), including commands added later: the test walks the click group instead of listing them.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import pytest
from sqlalchemy import text

from modelreg.domain.roles import PERMISSIONS
from tests.conftest import REPO_ROOT
from tests.core._workers import register, seeded_core_registry

MODELREG = REPO_ROOT / "modelreg"


def run(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "modelreg", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_many(env: dict[str, str], argvs: list[list[str]]) -> list[subprocess.CompletedProcess]:
    # independent read-only or refused commands: run a few at once, the start-up time dominates
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda argv: run(env, *argv), argvs))


def stderr_lines(done: subprocess.CompletedProcess) -> list[str]:
    return [line for line in done.stderr.splitlines() if line.strip()]


def assert_one_line_error(
    done: subprocess.CompletedProcess, status: int, fragment: str, what: str = ""
) -> None:
    where = f"{what}: exit {done.returncode}\nstdout: {done.stdout}\nstderr: {done.stderr}"
    assert done.returncode == status, where
    assert "Traceback" not in done.stderr, where
    lines = stderr_lines(done)
    assert len(lines) == 1, where
    assert lines[0].startswith("error: "), where
    assert fragment in lines[0], where


def audit_size(reg) -> int:
    with reg.engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM audit_events")).scalar_one()


@pytest.fixture
def env(db_url, env_for) -> dict[str, str]:
    return env_for(db_url)


@pytest.fixture
def reg(env):
    """credit_scoring 1 in develop, 2 in validate, 3 deployed; a user 'norole' whose roles were all taken."""
    core = seeded_core_registry(env)
    for v in ("1", "2", "3"):
        register(core, "credit_scoring", v)
    core.as_user("dev").submit("credit_scoring", "2")
    core.as_user("dev").submit("credit_scoring", "3")
    core.as_user("app1").deploy("credit_scoring", "3")
    core.add_user("norole", ["auditor"])
    core.set_roles("norole", [])  # audited: an edit of the users table would be refused as forged state
    assert core.user("norole").roles == ()
    yield core
    core.engine.dispose()


# (argv, exit status, fragment of the one stderr line)
REFUSALS: list[tuple[list[str], int, str]] = [
    # unknown things: input errors
    (["show", "nope", "1"], 2, "model 'nope' is not registered"),
    (["show", "credit_scoring", "9"], 2, "no registered version '9'"),
    (["--as", "dev", "submit", "nope", "1"], 2, "model 'nope' is not registered"),
    (["audit", "log", "nope"], 2, "model 'nope' is not registered"),
    (["audit", "proof", "100000"], 2, "event number must be between"),
    (
        [
            "--as",
            "dev",
            "register",
            "credit_scoring",
            "7",
            "--owner",
            "ghost",
            "--risk-tier",
            "medium",
            "--purpose",
            "p",
        ],
        2,
        "owner 'ghost'",
    ),
    (["--as", "admin", "user", "add", "dev", "--role", "developer"], 2, "already exists"),
    (["--as", "dev", "card", "credit_scoring", "1", "--set", "no-equals-sign"], 2, "FIELD=VALUE"),
    # unknown acting user and missing roles: refusals
    (["--as", "mallory", "submit", "credit_scoring", "1"], 1, "user 'mallory' is not registered"),
    (["--as", "val", "submit", "credit_scoring", "1"], 1, "submit needs the role developer"),
    (["--as", "dev", "deploy", "credit_scoring", "2"], 1, "needs the role"),
    (["--as", "dev", "user", "add", "eve", "--role", "admin"], 1, "user.add needs the role admin"),
    # wrong stage: refusals
    (
        ["--as", "app1", "deploy", "credit_scoring", "1"],
        1,
        "cannot deploy credit_scoring 1: it is in develop",
    ),
    (
        ["--as", "dev", "submit", "credit_scoring", "2"],
        1,
        "cannot submit credit_scoring 2: it is in validate",
    ),
    (["--as", "val", "send-back", "credit_scoring", "1", "--reason", "r"], 1, "it is in develop"),
    (["--as", "ops", "suspend", "credit_scoring", "2", "--reason", "r"], 1, "only a deployed version"),
    (["--as", "app1", "resume", "credit_scoring", "3", "--reason", "r"], 1, "already running"),
    (["--as", "dev", "card", "credit_scoring", "2", "--set", "a=b"], 1, "only change in develop"),
]


def test_refusals_and_input_errors_exit_codes_one_line_nothing_written(reg, env):
    before = audit_size(reg)
    stages = {v.version: (v.stage, v.suspended) for v in reg.list()}
    results = run_many(env, [argv for argv, _, _ in REFUSALS])
    for (argv, status, fragment), done in zip(REFUSALS, results, strict=True):
        assert_one_line_error(done, status, fragment, " ".join(argv))
        assert done.stdout == "", " ".join(argv)
    assert audit_size(reg) == before
    assert {v.version: (v.stage, v.suspended) for v in reg.list()} == stages
    assert reg.audit_verify().ok


def test_usage_errors_exit_2_without_traceback(reg, env):
    """click reports usage errors itself (usage line, hint, ``Error: ...``); they must still exit 2, say
    what is wrong and never show a traceback."""
    before = audit_size(reg)
    cases = [
        (["list", "--stage", "bogus"], "'bogus' is not one of"),
        (["frobnicate"], "No such command 'frobnicate'"),
        (["--as", "app1", "retire", "credit_scoring", "1"], "Missing option '--reason'"),
        (["keys", "register", "/nonexistent/key.pem"], "does not exist"),
        (["audit", "proof", "-3"], "-3"),
    ]
    for (argv, fragment), done in zip(cases, run_many(env, [c[0] for c in cases]), strict=True):
        assert done.returncode == 2, (argv, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr
        errors = [line for line in stderr_lines(done) if line.startswith("Error")]
        assert len(errors) == 1 and fragment in errors[0], (argv, done.stderr)
    assert audit_size(reg) == before


def test_gate_refusal_lists_unmet_requirements_and_writes_nothing(reg, env):
    # The CLI's registry carries the policy pack: a version without model card or attestations is refused at
    # submit, with every unmet requirement listed.
    before = audit_size(reg)
    done = run(env, "--as", "dev", "submit", "credit_scoring", "1")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    lines = stderr_lines(done)
    assert lines[0].startswith("error: submit credit_scoring 1 refused")
    assert sum(line.startswith("  - ") for line in lines[1:]) >= 2, done.stderr
    assert audit_size(reg) == before
    assert reg.show("credit_scoring", "1").stage.value == "develop"


def test_attributes_blanked_behind_the_api_are_refused_as_forged_state(reg, env):
    # Blanking the purpose by SQL used to reach the gate's purpose_stated check; now the command refuses to
    # act on a row the audit log does not prove, names it, and writes nothing.
    with reg.engine.begin() as conn:
        conn.execute(text("UPDATE models SET purpose = '' WHERE name = 'credit_scoring'"))
    before = audit_size(reg)
    done = run(env, "--as", "dev", "submit", "credit_scoring", "1")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    line = stderr_lines(done)[0]
    assert line.startswith("error: registry state diverges from the audit log at models credit_scoring"), line
    assert "purpose is ''" in line
    assert audit_size(reg) == before
    assert reg.show("credit_scoring", "1").stage.value == "develop"


def test_malformed_database_url_is_one_line_exit_2(env_for):
    for url in ("nonsense://", "not a url at all", "mysql://u@h/db"):
        done = run(env_for(url), "list")
        assert_one_line_error(done, 2, "MODELREG_DATABASE_URL", url)


def test_unreachable_database_fails_fast_with_one_line(env_for):
    started = time.monotonic()
    done = run(env_for("postgresql://postgres@127.0.0.1:1/x"), "list", timeout=60)
    elapsed = time.monotonic() - started
    assert_one_line_error(done, 2, "cannot reach the registry database", "unreachable")
    assert "127.0.0.1:1" in done.stderr
    assert elapsed < 10, f"took {elapsed:.1f} s"


def test_uninitialised_database_says_run_init_and_creates_nothing(db_url, env_for, tmp_path):
    env = env_for(db_url)
    commands = [
        ["list"],
        ["show", "m", "1"],
        ["user", "list"],
        ["audit", "log"],
        ["audit", "verify"],
        ["audit", "proof", "0"],
        ["--as", "dev", "submit", "m", "1"],
    ]
    for argv, done in zip(commands, run_many(env, commands), strict=True):
        assert_one_line_error(done, 2, "modelreg init", " ".join(argv))
    if db_url.startswith("sqlite"):
        assert not Path(db_url.removeprefix("sqlite:///")).exists()
    else:
        from sqlalchemy import create_engine, inspect

        engine = create_engine(db_url)
        with engine.connect() as conn:
            assert inspect(conn).get_table_names() == []
        engine.dispose()


def test_unknown_schema_revision_is_refused_and_left_alone(reg, env):
    with reg.engine.begin() as conn:
        conn.execute(text("UPDATE modelreg_alembic_version SET version_num = 'ffff'"))
    before = audit_size(reg)
    argvs = [["list"], ["--as", "dev", "submit", "credit_scoring", "1"], ["audit", "verify"], ["init"]]
    for argv, done in zip(argvs, run_many(env, argvs), strict=True):
        assert_one_line_error(done, 2, "'ffff'", " ".join(argv))
    with reg.engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM modelreg_alembic_version")).scalar_one() == "ffff"
    assert audit_size(reg) == before


def test_init_twice_is_idempotent(db_url, env_for):
    env = env_for(db_url)
    first = run(env, "init", "--json")
    assert first.returncode == 0, first.stderr
    assert '"created": true' in first.stdout
    again = run(env, "init")
    assert again.returncode == 0 and "up to date" in again.stdout, again.stdout + again.stderr
    from tests.core._workers import core_registry

    reg = core_registry(env)
    report = reg.audit_verify()
    # one registry.initialized event, not two
    assert report.ok and report.size == 1 and [e.event for e in reg.audit_log()] == ["registry.initialized"]
    reg.engine.dispose()


# -- deny by default, for every command there is --------------------------------------------------------------
# Commands that change nothing in the registry. Everything else must refuse a user without roles.
READ_ONLY = {
    ("init",),  # idempotent; a fresh database is initialised by whoever holds it
    ("list",),
    ("show",),
    ("user", "list"),
    ("keys", "generate"),  # writes a local key file, never the registry
    ("audit", "log"),
    ("audit", "verify"),
    ("audit", "proof"),
    ("policy", "list"),
    ("policy", "show"),
    ("policy", "lint"),
    ("policy", "test"),
    ("precheck",),  # a dry run: nothing stored
    ("findings",),
    ("evidence", "verify"),
    ("evidence", "recompute"),
    ("demo",),  # runs on its own throw-away registry
    ("due",),
    ("finding", "list"),
    ("finding", "show"),
    ("inventory",),  # writes a local file, never the registry
    ("report", "validation"),  # writes a local file, never the registry
    ("card-lint",),  # reads a local file
    ("serve",),  # refuses --as outright (the service establishes identities: tests/service)
    ("outcomes", "report"),  # reads decisions and outcomes, writes nothing
}


def walk(
    group: click.Group, ctx: click.Context, prefix: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], click.Command]]:
    found = []
    for name in group.list_commands(ctx):
        try:
            cmd = group.get_command(ctx, name)
        except ModuleNotFoundError:  # a command whose module another change has not landed yet
            continue
        if cmd is None:
            continue
        path = (*prefix, name)
        if isinstance(cmd, click.Group):
            found += walk(cmd, click.Context(cmd, parent=ctx, info_name=name), path)
        else:
            found.append((path, cmd))
    return found


# Optional options some commands need to get past their own input checks, and values for required options
# that must name something real (a control of the default policy pack, a date).
EXTRA: dict[tuple[str, ...], list[str]] = {
    ("card",): ["--set", "intended_use=x"],
    ("attest",): [
        "--control",
        "CHK-HI-01",
    ],  # optional since --batch: NAME VERSION --control, or --batch FILE
}
VALUES: dict[tuple[str, ...], dict[str, str]] = {
    ("waive",): {
        "--control": "CHK-HI-01",
        "--until": (datetime.now(UTC) + timedelta(days=30)).date().isoformat(),
    },
}


def synthesize(path: tuple[str, ...], cmd: click.Command, files: dict[str, Path]) -> list[str]:
    """Plausible arguments so the command gets as far as asking who you are."""
    args: list[str] = list(EXTRA.get(path, []))
    for p in cmd.params:
        if isinstance(p, click.Argument):
            name = (p.name or "").lower()
            value = {"name": "credit_scoring", "version": "1", "seq": "0"}.get(name)
            if value is None:
                value = (
                    str(files["pub"] if "key" in name else files["csv"])
                    if isinstance(p.type, click.Path)
                    else "x"
                )
            args.append(value)
            continue
        if not isinstance(p, click.Option) or not p.required:
            continue
        flag = max(p.opts, key=len)
        if flag in VALUES.get(path, {}):
            value = VALUES[path][flag]
        elif isinstance(p.type, click.Choice):
            value = str(p.type.choices[0])
        elif isinstance(p.type, click.Path):
            value = str(
                files["pub"] if "key" in flag else files["out"] if flag in ("--out", "-o") else files["csv"]
            )
        elif isinstance(p.type, click.types.IntParamType | click.types.FloatParamType):
            value = "1"
        else:
            value = {"--owner": "dev", "--reason": "because", "--purpose": "p", "--set": "a=b"}.get(flag, "x")
        args += [flag, value]
    return args


def test_every_state_changing_command_refuses_a_user_without_roles(reg, env, tmp_path):
    from modelreg import signing
    from modelreg.cli.main import cli as root

    files = {
        "csv": tmp_path / "data.csv",
        "pub": tmp_path / "someone.key.pub",
        "out": tmp_path / "out" / "file.json",
    }
    files["csv"].write_text("x,y\n1,0\n2,1\n3,0\n", encoding="utf-8")
    signing.write_key_pair(tmp_path / "someone.key", files["pub"])
    # norole holds a signing key where commands that sign look for it: the refusal must come from the roles
    home_keys = Path(env["MODELREG_HOME"]) / "keys"
    home_keys.mkdir(parents=True, exist_ok=True)
    signing.write_key_pair(home_keys / "norole.key", home_keys / "norole.key.pub")

    commands = walk(root, click.Context(root, info_name="modelreg"))
    names = {path for path, _ in commands}
    # the walk really reaches the lazily loaded commands and the nested groups
    assert {("submit",), ("deploy",), ("user", "add"), ("audit", "checkpoint"), ("keys", "register")} <= names
    changing = [(path, cmd) for path, cmd in commands if path not in READ_ONLY]
    assert len(changing) >= 12

    before = audit_size(reg)
    argvs = [["--as", "norole", *path, *synthesize(path, cmd, files)] for path, cmd in changing]
    wrong = [
        f"{' '.join(argv)}: exit {done.returncode}: {done.stderr.strip()}"
        for argv, done in zip(argvs, run_many(env, argvs), strict=True)
        if done.returncode != 1
        or "Traceback" in done.stderr
        or not ("needs the role" in done.stderr and "'norole' has no roles" in done.stderr)
    ]
    assert not wrong, "not refused for a user without roles:\n" + "\n".join(wrong)
    assert audit_size(reg) == before
    assert not files["out"].exists()


def _checked_actions() -> set[str]:
    """Every action string the code hands to the permission check: ``authorize(session, "x")`` directly,
    the action of a unit of work ``change("x", ...)`` / ``reading("x", ...)``, through a variable assigned
    from constants, or as the action of ``_transition("x", ...)``."""
    actions: set[str] = set()
    for path in MODELREG.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for fn in ast.walk(tree):
            if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            assigned: dict[str, set[str]] = {}
            for node in ast.walk(fn):
                if isinstance(node, ast.Assign):
                    consts = {
                        c.value
                        for c in ast.walk(node.value)
                        if isinstance(c, ast.Constant) and isinstance(c.value, str)
                    }
                    for target in node.targets:
                        if isinstance(target, ast.Name):
                            assigned.setdefault(target.id, set()).update(consts)
            for node in ast.walk(fn):
                if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                    continue
                if node.func.attr in ("_authorize", "authorize") and len(node.args) >= 2:
                    arg = node.args[1]
                elif node.func.attr in ("_transition", "change", "reading") and node.args:
                    arg = node.args[0]
                else:
                    continue
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    actions.add(arg.value)
                elif isinstance(arg, ast.Name):
                    actions.update(assigned.get(arg.id, set()))
    return actions


def test_every_checked_action_has_a_declared_permission():
    actions = _checked_actions()
    # the scan finds the core's checks (guards the scan itself)
    assert {
        "register",
        "submit",
        "send_back",
        "deploy",
        "retire",
        "suspend",
        "resume",
        "user.add",
        "keys.register",
        "audit.checkpoint",
        "update_card",
        "attach_data",
    } <= actions
    missing = sorted(a for a in actions if a not in PERMISSIONS)
    assert not missing, f"actions checked in code with no entry in PERMISSIONS (always refused): {missing}"
    for action, rule in PERMISSIONS.items():
        assert rule == "anyone" or (isinstance(rule, frozenset) and rule), action
