"""The SM2 library (tongsuopy, the gm extra) is imported only when an SM2 key or signature is touched: light
commands on an SM3/SM2 registry never load it, and a registry without the extra keeps working."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

SCRIPT = """
import json, sys
from modelreg.cli.main import main
code = main({argv!r})
print("@@" + json.dumps({{"code": code, "sm2": "tongsuopy" in sys.modules}}))
"""


@pytest.fixture
def gm_env(env_for, tmp_path):
    env = env_for(f"sqlite:///{tmp_path / 'reg.db'}")
    for args in (
        ["init", "--hash", "sm3", "--suite", "sm2"],
        ["--as", "boss", "user", "add", "boss", "--role", "admin"],
    ):
        subprocess.run([sys.executable, "-m", "modelreg", *args], env=env, check=True, capture_output=True)
    return env


@pytest.mark.parametrize("argv", [["--help"], ["list"], ["audit", "log"], ["user", "list"]], ids=" ".join)
def test_light_commands_on_an_sm2_registry_do_not_import_tongsuopy(gm_env, argv):
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(argv=argv)],
        env=gm_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    result = json.loads(next(x for x in out.stdout.splitlines() if x.startswith("@@"))[2:])
    assert result == {"code": 0, "sm2": False}, out.stderr


def test_audit_verify_on_an_sm2_registry_checks_the_sm2_event_signatures(gm_env):
    """The log's events are signed with the registry's SM2 key: verifying them needs the SM2 library (and is
    the one read command that loads it)."""
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(argv=["audit", "verify", "--json"])],
        env=gm_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    result = json.loads(next(x for x in out.stdout.splitlines() if x.startswith("@@"))[2:])
    assert result == {"code": 0, "sm2": True}, out.stderr
    report = json.loads(out.stdout.split("@@")[0])
    assert report["ok"] and report["signatures"]["event_keys"][0].startswith("sm2:")


def test_sm2_without_the_extra_is_one_clear_line(gm_env, tmp_path):
    """With tongsuopy unimportable, an SM2 command fails with the install hint (exit 2), never a traceback."""
    code = (
        "import sys; sys.modules['tongsuopy'] = None\n"
        "from modelreg.cli.main import main\n"
        f"sys.exit(main(['keys', 'generate', '--suite', 'sm2', '-o', {str(tmp_path / 'k.key')!r}]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=gm_env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "error: tongsuopy (needed for SM2 keys and signatures) is not installed. Install the extra: "
        "pip install 'modelreg[gm]'"
    ]
    assert not (tmp_path / "k.key").exists()
