"""The benchmark suite's smoke run: ``benchmarks/run.py --smoke`` runs every ``benchmarks/bench_*.py`` at its
small size (bounded: under three minutes in all), exits 0 and prints a ratio for each benchmark. The full
suite is not part of the test command; this keeps the scripts and the runner from rotting."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(240)]


def test_suite_smoke_run_exits_0_with_a_ratio_per_benchmark(tmp_path, pg_available):
    scripts = sorted(p.stem for p in (REPO / "benchmarks").glob("bench_*.py"))
    assert "bench_scale_registry" in scripts and len(scripts) >= 2
    results = tmp_path / "RESULTS.md"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELREG_", "MLFLOW_"))}
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    if "MODELREG_TEST_PG_URL" in os.environ:
        env["MODELREG_TEST_PG_URL"] = os.environ["MODELREG_TEST_PG_URL"]
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "run.py"), "--smoke", "--results", str(results)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=230,
    )
    out = done.stdout
    assert done.returncode == 0, out[-4000:] + done.stderr[-2000:]

    table = out[out.index("measurement (against its baseline") :]
    for name in scripts:
        # each benchmark's first table row carries its name and a ratio "<number>x"
        row = re.search(rf"^{name}\s+(\d+\.\d+)x\s+\S", table, flags=re.M)
        assert row, f"no ratio printed for {name}:\n{table}"
        assert float(row.group(1)) > 0
    assert "FAILED" not in out

    report = results.read_text(encoding="utf-8")
    assert (
        "## Machine" in report
        and "cores" in report
        and "load average" in report
        and "python" in report.lower()
    )
    for name in scripts:
        assert f"| {name} |" in report and f"### {name}" in report
    # the default report is the full run's: a smoke run never overwrites it unless asked to
    assert (
        not (REPO / "benchmarks" / "RESULTS.md").exists()
        or "--smoke" not in (REPO / "benchmarks" / "RESULTS.md").read_text(encoding="utf-8")[:300]
    )
