"""Helpers for the standalone verifier's tests: load the committed file as a module, and a clean virtual
environment (no modelreg, only ``cryptography`` and ``tongsuopy`` from the package index) to run it in."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from functools import cache
from pathlib import Path
from types import ModuleType

import pytest

from modelreg.evidence.standalone import COMMITTED


@cache
def standalone_module() -> ModuleType:
    """The committed standalone file, imported under its own name (its classes are not modelreg's)."""
    name = "modelreg_standalone_verify_under_test"
    spec = importlib.util.spec_from_file_location(name, COMMITTED)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is created
    spec.loader.exec_module(module)
    return module


def _clean_env(home: Path) -> dict[str, str]:
    keep = (
        "PATH",
        "PIP_INDEX_URL",
        "PIP_EXTRA_INDEX_URL",
        "PIP_FIND_LINKS",
        "PIP_CONFIG_FILE",
        "SSL_CERT_FILE",
    )
    env = {k: v for k, v in os.environ.items() if k in keep}
    env["HOME"] = str(home)
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


@pytest.fixture(scope="session")
def clean_venv(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """(python of a fresh venv without modelreg, the environment to run it with)."""
    root = tmp_path_factory.mktemp("clean-venv")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    env = _clean_env(root)
    proc = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "cryptography", "tongsuopy"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, f"pip install in the clean venv failed:\n{proc.stderr[-3000:]}"
    probe = subprocess.run(
        [str(python), "-c", "import modelreg"], env=env, cwd=root, capture_output=True, text=True, check=False
    )
    assert probe.returncode != 0 and "No module named 'modelreg'" in probe.stderr
    return python, env


def run_standalone(
    clean: tuple[Path, dict[str, str]],
    script: Path,
    *args: str,
    block_sm2: bool = False,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess:
    python, env = clean
    if block_sm2:
        # As if tongsuopy were not installed: an import of it fails.
        code = (
            "import runpy, sys; sys.modules['tongsuopy'] = None; "
            f"sys.argv = [{str(script)!r}, *{list(args)!r}]; runpy.run_path({str(script)!r}, run_name='__main__')"
        )
        cmd = [str(python), "-c", code]
    else:
        cmd = [str(python), str(script), *args]
    return subprocess.run(
        cmd, env=env, cwd=cwd or script.parent, capture_output=True, text=True, timeout=300, check=False
    )
