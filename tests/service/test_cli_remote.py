"""``modelreg serve`` from the command line, and the CLI over ``MODELREG_URL``: the same output as the local
commands on the same registry."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import pytest

from tests.service.conftest import cli_runner, free_port, make_retirable

sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@sqlite_only
def test_serve_refuses_a_claimed_name(env_for, db_url):
    for extra, args in (({}, ["--as", "admin", "serve"]), ({"MODELREG_USER": "admin"}, ["serve"])):
        out = subprocess.run(
            [sys.executable, "-m", "modelreg", *args],
            env=env_for(db_url, **extra),
            capture_output=True,
            text=True,
        )
        assert out.returncode == 2
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and "refused" in lines[0] and "Traceback" not in out.stderr


def test_serve_in_production_refuses_a_postgresql_superuser(env_for, pg_url):
    out = subprocess.run(
        [sys.executable, "-m", "modelreg", "serve"],
        env=env_for(pg_url, MODELREG_MODE="production"),
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2
    assert "superuser" in out.stderr and "modelreg_app" in out.stderr


@sqlite_only
def test_modelreg_serve_runs_and_the_cli_gives_the_same_output_over_http(
    service_registry, env_for, db_url, capsys, monkeypatch
):
    make_retirable(service_registry, "1")
    env = env_for(db_url)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "modelreg", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                doc = httpx.get(f"{url}/api/v1/openapi.json", timeout=2)
                break
            except httpx.HTTPError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read().decode()
                time.sleep(0.2)
        assert doc.status_code == 200 and "server" not in doc.headers

        run = cli_runner(url, env, monkeypatch, capsys)

        reads = [
            ("aud", "list"),
            ("aud", "list", "--json"),
            ("aud", "show", "credit_scoring", "1"),
            ("aud", "show", "credit_scoring", "1", "--json"),
            ("aud", "audit", "verify"),
            ("aud", "audit", "log", "credit_scoring", "1"),
            ("aud", "show", "credit_scoring", "7"),  # an error: same line, same exit code
        ]

        def same_reads() -> None:
            for user, *args in reads:
                local, over_http = run(user, *args, over_http=False), run(user, *args, over_http=True)
                assert over_http == local, args

        same_reads()
        # a move over HTTP prints what a local move prints: the new state and the audit event it recorded
        code, out, _ = run("app1", "retire", "credit_scoring", "1", "--reason", "superseded", over_http=True)
        assert code == 0
        seq = service_registry.audit_log("credit_scoring", "1")[-1].seq
        assert out.strip() == f"credit_scoring 1: retire (audit event #{seq})"
        assert service_registry.audit_log("credit_scoring", "1")[-1].actor == "app1"
        same_reads()
        # refused over HTTP like locally: a developer cannot retire (exit 1, one line)
        local = run("dev", "retire", "credit_scoring", "2", "--reason", "x", over_http=False)
        over_http = run("dev", "retire", "credit_scoring", "2", "--reason", "x", over_http=True)
        assert over_http[0] == local[0] == 1
        assert over_http[2].startswith("error: retire needs the role") and local[2].startswith(
            "error: retire needs the role"
        )
        # a command that stays local says so in one line
        code, _, err = run("admin", "init", over_http=True)
        assert code == 2 and "runs only where the database's credentials are" in err
        assert len(err.strip().splitlines()) == 1
    finally:
        proc.terminate()
        proc.wait(timeout=10)
