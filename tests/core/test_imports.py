"""Commands that do not run a model or a monitor must not import the heavy libraries: measured by running the
command in a fresh interpreter and looking at ``sys.modules``."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("mlflow", "shap", "evidently", "fairlearn", "sklearn", "pandas", "lightgbm", "duckdb", "pyspark")

SCRIPT = """
import json, sys
from modelreg.cli.main import main
code = main({argv!r})
print("@@" + json.dumps({{"code": code, "heavy": sorted(m for m in {heavy!r} if m in sys.modules)}}))
"""


@pytest.fixture
def initialised_env(env_for, tmp_path):
    env = env_for(f"sqlite:///{tmp_path / 'reg.db'}")
    for args in (["init"], ["--as", "boss", "user", "add", "boss", "--role", "admin"]):
        subprocess.run([sys.executable, "-m", "modelreg", *args], env=env, check=True, capture_output=True)
    from modelreg import settings
    from modelreg.registry import Registry

    reg = Registry(settings.load(environ=env), actor="boss")
    reg.add_user("dev", ["developer"])
    reg.as_user("dev").register("credit_scoring", "1", owner="dev", risk_tier="low", purpose="PD")
    reg.engine.dispose()
    return env


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["list"],
        ["list", "--json"],
        ["show", "credit_scoring", "1"],
        ["audit", "log"],
        ["audit", "verify"],
        ["user", "list"],
        ["policy", "list"],
        ["findings", "credit_scoring", "1"],
        ["--as", "dev", "submit", "credit_scoring", "1"],
    ],
    ids=lambda a: " ".join(a),
)
def test_light_commands_do_not_import_heavy_libraries(initialised_env, argv):
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(argv=argv, heavy=HEAVY)],
        env=initialised_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    line = next(x for x in out.stdout.splitlines() if x.startswith("@@"))
    result = json.loads(line[2:])
    assert result["heavy"] == [], f"{' '.join(argv)} imported {result['heavy']}"
