"""benchmarks/bench_estimated.py at its smoke size: it runs, gives a ratio per engine against the numpy
baseline, agrees with the exact estimate, and the estimate lies in its band of the realised AUC."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import REPO_ROOT


def test_bench_estimated_smoke_run():
    env = {k: v for k, v in os.environ.items() if k != "MODELREG_NANNYML_PYTHON"}
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_estimated", "--smoke", "--json", "--repeat", "1"],
        cwd=REPO_ROOT,
        env={**env, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout)
    assert set(out["ratios"]) == {"pandas_vs_numpy_50000", "duckdb_vs_numpy_50000"}
    assert all(v > 0 for v in out["ratios"].values())
    (row,) = out["sizes"].values()
    assert abs(row["duckdb_minus_pandas_auc"]) < 1e-6
    assert row["realised_in_band"] is True
