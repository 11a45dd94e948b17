"""The benchmark suite's smoke run: ``benchmarks/run.py --smoke`` runs every ``benchmarks/bench_*.py`` at its
small size (bounded: under ten minutes in all, eight scripts), exits 0 and prints a ratio for each benchmark. The full
suite is not part of the test command; this keeps the scripts and the runner from rotting."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(660)]


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
        timeout=630,
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


def test_readme_results_table_is_the_one_generated_from_results_md():
    """benchmarks/README.md's results table is derived from benchmarks/RESULTS.md by the suite
    (``run.py --readme``, and every full run): a hand edit or a stale table fails here."""
    from benchmarks import run

    readme = (REPO / "benchmarks" / "README.md").read_text(encoding="utf-8")
    section = run.readme_section((REPO / "benchmarks" / "RESULTS.md").read_text(encoding="utf-8"))
    assert section in readme, "regenerate it: python benchmarks/run.py --readme"
    assert readme.count(run.README_BEGIN) == 1
    results_rows = [
        line
        for line in (REPO / "benchmarks" / "RESULTS.md").read_text(encoding="utf-8").splitlines()
        if line.startswith("| bench_")
    ]
    assert results_rows and all(row in section for row in results_rows)


def test_readme_regeneration_replaces_only_its_section(tmp_path):
    from benchmarks import run

    readme = tmp_path / "README.md"
    readme.write_text(
        f"# B\n\nbefore\n\n{run.README_BEGIN}\nold table\n{run.README_END}\n\nafter\n", encoding="utf-8"
    )
    results = tmp_path / "RESULTS.md"
    results.write_text(
        "Produced by `benchmarks/run.py` on 2026-12-01 10:00 UTC. x\n\n| cores | 2 |\n\n## Ratios\n\n"
        "| benchmark | ratio | measurement | status |\n| --- | ---: | --- | --- |\n"
        "| bench_x | 1.50× | a vs b | ok (3 s) |\n\n## Full output of each script\n",
        encoding="utf-8",
    )
    assert run.update_readme(readme, results) is True
    text = readme.read_text(encoding="utf-8")
    assert text.startswith("# B\n\nbefore\n\n") and text.endswith("\n\nafter\n")
    assert "old table" not in text and "| bench_x | 1.50× | a vs b | ok (3 s) |" in text
    assert "2026-12-01 10:00 UTC" in text and "cores 2" in text
    assert run.update_readme(readme, results) is False  # idempotent
