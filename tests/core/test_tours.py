"""The README as a newcomer meets it (issue 17): one `modelreg demo --json` in a fresh folder holding only
`mlflow.env` (no MODELREG_* / MLFLOW_* variables: the shipped configuration is the only one), then every command
block of "A tour for each user", in order, against the registry it built. A tour that drifts from what the
demo creates, a command that ignores mlflow.env, or a store created as a side effect (a stray ./mlflow.db,
mlruns/, spark-warehouse/) fails here.

Also on the same registry: unknown acting users, progress only on a terminal, JSON errors, the `show` wording of
a suspension, and the demo's --json keys as the README documents them.
"""

from __future__ import annotations

import json
import os
import pty
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Block:
    lang: str
    code: str
    line: int  # README line of the opening fence


def tour_blocks(text: str = README) -> list[Block]:
    """The fenced blocks of the README section "A tour for each user", in order."""
    start = text.index("\n## A tour for each user")
    end = text.index("\n## ", start + 1)
    section = text[start:end]
    first_line = text[:start].count("\n") + 1
    blocks = []
    for m in re.finditer(r"^```(\w+)\n(.*?)^```", section, flags=re.S | re.M):
        blocks.append(Block(m.group(1), m.group(2), first_line + section[: m.start()].count("\n") + 1))
    return blocks


def commands(code: str) -> list[tuple[str, int]]:
    """(command, expected exit status) per logical line: continuation backslashes joined, comments and blank
    lines skipped; a trailing ``# exit N`` comment on any of its lines gives the expected status (default 0)."""
    out: list[tuple[str, int]] = []
    pending, expected = "", None
    for raw in code.splitlines():
        line = raw.rstrip()
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        body, comment = _split_comment(line)
        expected = _expected(comment) if _expected(comment) is not None else expected
        if body.endswith("\\"):
            pending += body[:-1].strip() + " "
            continue
        out.append(((pending + body.strip()).strip(), 0 if expected is None else expected))
        pending, expected = "", None
    return out


def _split_comment(line: str) -> tuple[str, str]:
    """Split a shell line at its first ``#`` outside quotes (enough for the README's commands)."""
    quote = None
    for i, ch in enumerate(line):
        if ch in "'\"" and quote is None:
            quote = ch
        elif ch == quote:
            quote = None
        elif ch == "#" and quote is None and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip(), line[i + 1 :]
    return line.rstrip(), ""


def _expected(comment: str) -> int | None:
    m = re.match(r"\s*exit (\d)\b", comment)
    return int(m.group(1)) if m else None


def clean_env() -> dict[str, str]:
    """What a newcomer's shell has: no modelreg or MLflow variables, telemetry off, the venv first on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELREG_", "MLFLOW_"))}
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


@dataclass
class Demo:
    folder: Path
    env: dict[str, str]
    report: dict
    stderr: str


@pytest.fixture(scope="session")
def demo(tmp_path_factory) -> Demo:
    """One `modelreg demo --json` in a folder that looks like a fresh checkout: only mlflow.env."""
    pytest.importorskip("dalex")
    pytest.importorskip("lightgbm")
    folder = tmp_path_factory.mktemp("newcomer")
    shutil.copyfile(REPO_ROOT / "mlflow.env", folder / "mlflow.env")
    env = clean_env()
    done = subprocess.run(
        [str(BIN / "modelreg"), "demo", "--json"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"demo failed\nstdout: {done.stdout[-3000:]}\nstderr: {done.stderr[-3000:]}"
    return Demo(folder, env, json.loads(done.stdout), done.stderr)


def modelreg(demo: Demo, *args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "modelreg"), *args],
        cwd=demo.folder,
        env=demo.env,
        capture_output=True,
        text=True,
        timeout=300,
        **kw,
    )


def test_tour_parser_reads_continuations_comments_and_expected_exits():
    code = "# a comment\nmodelreg a \\\n   --b c   # exit 1: why\n\nmodelreg d '#not a comment'\n"
    assert commands(code) == [("modelreg a --b c", 1), ("modelreg d '#not a comment'", 0)]
    langs = [b.lang for b in tour_blocks()]
    assert langs[0] == "python" and langs.count("bash") >= 5


def test_demo_json_is_quiet_on_stderr_and_has_the_keys_the_readme_names(demo):
    """17.6: MLflow's "Successfully registered model" / INFO lines must not reach stderr under --json; the
    README documents the JSON keys the report really has."""
    for noise in ("Successfully registered model", "Created version", "INFO mlflow", "Registered model"):
        assert noise not in demo.stderr, demo.stderr[-2000:]
    line = next(ln for ln in README.splitlines() if ln.startswith("modelreg demo --json"))
    documented = re.findall(r"`([a-z_\[\].]+)`", line)
    assert documented, line
    for key in documented:
        head, _, rest = key.partition("[].")
        assert head in demo.report, (key, sorted(demo.report))
        if rest:
            assert all(rest in item for item in demo.report[head]), key
    assert "timings" not in line


def test_unknown_acting_user_is_refused_for_reads_and_signatures(demo):
    """17.4: `--as val list` must not silently work, and a signature by an unknown user says so (not "no
    private key for val"). Nothing is written either way."""
    before = modelreg(demo, "audit", "verify", "--json")
    for argv in (
        ["--as", "val", "list"],
        ["--as", "val", "show", "credit_scoring", "1"],
        ["--as", "val", "approve", "credit_scoring", "1", "--role", "validator"],
        ["--as", "val", "attest", "credit_scoring", "1", "--control", "CHK-HI-02"],
    ):
        done = modelreg(demo, *argv)
        assert done.returncode == 1, (argv, done.stderr)
        assert done.stdout == "" and "Traceback" not in done.stderr
        lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: unknown user 'val'"), (argv, done.stderr)
        assert "private key" not in done.stderr
    done = modelreg(demo, "--as", "victor", "list")
    assert done.returncode == 0 and "credit_scoring" in done.stdout
    after = modelreg(demo, "audit", "verify", "--json")
    assert json.loads(after.stdout)["size"] == json.loads(before.stdout)["size"]


def test_show_says_suspended_not_deploy_to_deploy(demo):
    """17.6: the demo's v2 was suspended by monitoring, then retired."""
    out = modelreg(demo, "show", "credit_scoring", "2").stdout
    assert "suspended  (stage deploy) by oscar" in out, out
    assert "deploy → deploy" not in out
    assert "deploy     validate → deploy" in out


def _run_on_tty(demo: Demo, *args: str) -> tuple[int, str]:
    """Run with stderr on a pseudo-terminal (stdout stays a pipe, as in `cmd > out.json`)."""
    master, slave = pty.openpty()
    try:
        done = subprocess.run(
            [str(BIN / "modelreg"), *args],
            cwd=demo.folder,
            env=demo.env,
            stdout=subprocess.PIPE,
            stderr=slave,
            text=True,
            timeout=300,
        )
        os.close(slave)
        slave = -1
        chunks = []
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the terminal's other side is closed and drained
                break
            if not data:
                break
            chunks.append(data)
        return done.returncode, b"".join(chunks).decode("utf-8", "replace")
    finally:
        if slave != -1:
            os.close(slave)
        os.close(master)


def test_progress_on_a_terminal_only(demo, tmp_path):
    """17.8: long commands say what they do on a terminal; under --json, or with stderr not a terminal, not."""
    code, tty_err = _run_on_tty(demo, "audit", "verify")
    assert code == 0 and "… recomputing" in tty_err and "leaf hashes" in tty_err, tty_err
    code, tty_err = _run_on_tty(demo, "audit", "verify", "--json")
    assert code == 0 and "…" not in tty_err, tty_err
    piped = modelreg(demo, "audit", "verify")
    assert piped.returncode == 0 and piped.stderr == "", piped.stderr

    out = tmp_path / "p.zip"
    code, tty_err = _run_on_tty(
        demo, "--as", "audrey", "evidence", "pack", "credit_scoring", "2", "-o", str(out)
    )
    assert code == 0 and "… collecting the records of credit_scoring 2" in tty_err and "… signing" in tty_err
    piped = modelreg(demo, "--as", "audrey", "evidence", "pack", "credit_scoring", "2", "-o", str(out))
    assert piped.returncode == 0 and piped.stderr == "", piped.stderr


def test_every_tour_block_runs_on_the_demo_registry(demo):
    """17.4 / 18.1: every block of the tours, in order, with the exit status the README says; MLflow models
    load through mlflow.env alone; afterwards the folder holds no store created as a side effect."""
    env = dict(demo.env)
    before = set(os.listdir(demo.folder))
    for block in tour_blocks():
        if block.lang == "python":
            script = demo.folder / "tour_block.py"
            script.write_text(block.code, encoding="utf-8")
            try:
                done = subprocess.run(
                    [sys.executable, str(script)],
                    cwd=demo.folder,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=600,
                )
            finally:
                script.unlink()
            assert done.returncode == 0, (
                f"README line {block.line}: python block failed\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
            )
            continue
        assert block.lang == "bash", block
        for command, expected in commands(block.code):
            if command.startswith("export "):
                key, _, value = command[len("export ") :].partition("=")
                env[key] = shlex.split(value)[0] if value else ""
                continue
            done = subprocess.run(
                ["bash", "-c", f"set -o pipefail; {command}"],
                cwd=demo.folder,
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
            )
            where = f"README line {block.line}: `{command}` exited {done.returncode}, expected {expected}"
            assert done.returncode == expected, (
                f"{where}\nstdout: {done.stdout[-2000:]}\nstderr: {done.stderr[-2000:]}"
            )
            assert "Traceback" not in done.stderr, f"{where}\n{done.stderr[-2000:]}"
    # What the tours leave: their own outputs, and nothing MLflow or Spark would create in the current folder.
    created = set(os.listdir(demo.folder)) - before
    assert created <= {"cp.json", "cp.json.pub", "pack.zip"}, created
    for stray in ("mlflow.db", "mlruns", "mlartifacts", "spark-warehouse"):
        assert not (demo.folder / stray).exists(), stray
    status = json.loads(modelreg(demo, "show", "credit_scoring", "3", "--json").stdout)
    assert status["version"]["stage"] == "retire"
    actions = [h["action"] for h in status["history"]]
    assert actions == ["submit", "deploy", "suspend", "resume", "suspend", "retire"], actions
