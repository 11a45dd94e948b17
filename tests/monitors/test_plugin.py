"""A bank's own monitor, from a package outside ``monitors/``: registered only through the
``modelreg.monitors`` entry point (a ``*.dist-info/entry_points.txt`` on ``PYTHONPATH``), used by a control
of the bank's policy file that extends the shipped pack, and run by ``modelreg validate`` with no edit to
modelreg. An entry point may not shadow a built-in kind."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from monitors.base import MonitorPluginError, check_declaration, discover

PLUGIN = '''\
"""The bank's missing-value monitor: the share of missing values per feature and the worst one."""

from monitors.base import Metric, Monitor, MonitorResult, ParamSpec, fingerprint, load_frame


class MissingRateMonitor(Monitor):
    kind = "missing_rate"
    version = "7"
    metrics = ("missing_rate", "max_missing_rate")
    needs = frozenset()
    params = (ParamSpec("seed", 0, "an integer", lambda v: isinstance(v, int)),)

    def run(self, spec, *, current, params=None, artifacts_dir=None):
        p = self.validate_params(params)
        frame = load_frame(current)
        rates = {f: float(frame[f].isna().mean()) for f in spec.feature_names}
        metrics = [Metric("missing_rate", r, feature=f) for f, r in rates.items()]
        metrics.append(Metric("max_missing_rate", max(rates.values())))
        return MonitorResult(
            kind=self.kind,
            monitor_version=self.version,
            params=p,
            metrics=tuple(metrics),
            fingerprints=(fingerprint(frame, "current"),),
            seed=p["seed"],
        )
'''

BANK_PACK = """\
extends: cn-fin-algo-risk@1.0.0
pack:
  id: acme-bank
  version: "2026.1"
  title_zh: 某银行模型风险政策
  title_en: ACME Bank model risk policy
overrides:
  controls:
    CHK-DRIFT-01:
      severity: blocking
clauses:
  - id: ACME-DQ-1
    source: NFRA-2025
    item: "内部 2"
    title_zh: 本行数据质量要求
    title_en: ACME data quality rule
    text_zh: 模型输入的缺失值比例不得超过百分之五。
    text_en: No model input may have more than five per cent missing values.
controls:
  - id: ACME-MISS
    title_zh: 输入缺失率
    title_en: Input missing rate
    clauses: [ACME-DQ-1]
    gates: [deploy]
    severity: major
    check:
      monitor: missing_rate
      metric: max_missing_rate
      comparator: gt
      thresholds: {high: {fail: 0.05}, medium: {fail: 0.05}, low: {fail: 0.05}}
      basis: institution
      note_zh: 本行标准
      note_en: Bank standard
  - id: ACME-MISS-AGE
    title_zh: 年龄缺失率
    title_en: Missing rate of age
    clauses: [ACME-DQ-1]
    gates: [deploy]
    severity: minor
    check:
      monitor: missing_rate
      metric: missing_rate
      feature: age
      comparator: gt
      thresholds: {high: {fail: 0.05}, medium: {fail: 0.05}, low: {fail: 0.05}}
      basis: institution
      note_zh: 本行标准
      note_en: Bank standard
"""


def write_plugin(root: Path, entry_points: str) -> Path:
    """A distribution the way pip would leave it: the module and its dist-info with the entry points."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "acme_checks.py").write_text(PLUGIN, encoding="utf-8")
    info = root / "acme_checks-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: acme-checks\nVersion: 1.0\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(entry_points, encoding="utf-8")
    return root


@pytest.fixture
def versioned(registry, tmp_path):
    """credit_scoring 1 (low risk) in stage validate, and a hold-out file with known missing values."""
    from tests.conftest import register_version

    register_version(registry, tier="low")
    registry.as_user("dev").submit("credit_scoring", "1")
    rng = np.random.default_rng(3)
    n = 400
    frame = pd.DataFrame(
        {
            "income": rng.normal(50, 10, n),
            "age": rng.integers(20, 70, n).astype(float),
            "score": rng.random(n),
            "default": (rng.random(n) < 0.3).astype(int),
        }
    )
    frame.loc[rng.choice(n, 34, replace=False), "income"] = np.nan  # 8.5 % missing: above the bank's 5 %
    frame.loc[rng.choice(n, 6, replace=False), "age"] = np.nan
    hold = tmp_path / "holdout.csv"
    frame.to_csv(hold, index=False)
    pack = tmp_path / "acme.yaml"
    pack.write_text(BANK_PACK, encoding="utf-8")
    return hold, pack, frame


def _modelreg(env: dict, plugin: Path | None, *args: str) -> subprocess.CompletedProcess:
    env = dict(env)
    if plugin is not None:
        env["PYTHONPATH"] = str(plugin)
    return subprocess.run(
        [sys.executable, "-m", "modelreg", *args], env=env, capture_output=True, text=True, timeout=300
    )


def _validate(hold: Path, pack: Path) -> list[str]:
    data = ["--data", str(hold), "--target", "default", "--score", "score"]
    return ["--as", "val", "validate", "credit_scoring", "1", *data, "--policy", str(pack), "--json"]


def test_a_bank_monitor_from_an_entry_point_runs_in_validate(versioned, env_for, db_url, tmp_path):
    hold, pack, frame = versioned
    plugin = write_plugin(
        tmp_path / "site", "[modelreg.monitors]\nmissing_rate = acme_checks:MissingRateMonitor\n"
    )
    env = env_for(db_url)
    out = _modelreg(env, plugin, *_validate(hold, pack))
    assert out.returncode == 1, out.stderr  # the bank's control fails (and shipped model controls error)
    assert "Traceback" not in out.stderr
    report = json.loads(out.stdout)
    (finding,) = [f for f in report["findings"] if f["control_id"] == "ACME-MISS"]
    expected = max(frame["income"].isna().mean(), frame["age"].isna().mean())  # 34 / 400
    assert expected == pytest.approx(0.085)
    assert finding["status"] == "fail"
    assert finding["value"] == pytest.approx(expected, abs=1e-12)
    assert finding["clause_ids"] == ["ACME-DQ-1"]
    assert (finding["monitor"], finding["metric"], finding["threshold"]) == (
        "missing_rate",
        "max_missing_rate",
        0.05,
    )
    (age,) = [f for f in report["findings"] if f["control_id"] == "ACME-MISS-AGE"]
    assert (age["status"], age["feature"]) == ("pass", "age")
    assert age["value"] == pytest.approx(frame["age"].isna().mean(), abs=1e-12)  # 6 / 400


def test_without_the_plugin_the_bank_pack_names_the_unknown_monitor(versioned, env_for, db_url):
    hold, pack, _ = versioned
    out = _modelreg(env_for(db_url), None, *_validate(hold, pack))
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr
    assert "monitor must be one of" in lines[0] and "'missing_rate'" in lines[0]


def test_an_entry_point_may_not_shadow_a_built_in_kind(versioned, env_for, db_url, tmp_path):
    hold, pack, _ = versioned
    plugin = write_plugin(tmp_path / "site", "[modelreg.monitors]\ndrift = acme_checks:MissingRateMonitor\n")
    out = _modelreg(env_for(db_url), plugin, *_validate(hold, pack))
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr
    assert "shadows the built-in drift monitor" in lines[0]


def test_discover_checks_every_declaration(tmp_path, monkeypatch):
    write_plugin(tmp_path, "")
    monkeypatch.syspath_prepend(str(tmp_path))
    found = discover([("missing_rate", "acme_checks:MissingRateMonitor")])
    assert found["missing_rate"].metrics == ("missing_rate", "max_missing_rate")
    assert {"drift", "fairness", "explainability", "performance", "robustness"} <= set(found)
    # the installed distribution registers the built-ins under their own names: not a shadow
    assert "drift" in discover([("drift", "monitors.drift:DriftMonitor")])
    with pytest.raises(MonitorPluginError, match="shadows the built-in fairness monitor"):
        discover([("fairness", "acme_checks:MissingRateMonitor")])
    with pytest.raises(MonitorPluginError, match="kind must equal its entry point name 'missing'"):
        discover([("missing", "acme_checks:MissingRateMonitor")])
    with pytest.raises(MonitorPluginError, match="cannot be loaded: ModuleNotFoundError"):
        discover([("other", "no_such_module:Monitor")])

    from acme_checks import MissingRateMonitor

    class NeedsTheWeather(MissingRateMonitor):
        needs = frozenset({"weather"})

    with pytest.raises(MonitorPluginError, match=r"needs must be a frozenset drawn from \["):
        check_declaration(NeedsTheWeather)

    class NoMetrics(MissingRateMonitor):
        metrics = ()

    with pytest.raises(MonitorPluginError, match="metrics must be a non-empty tuple"):
        check_declaration(NoMetrics)


def test_reading_the_declarations_imports_no_heavy_library():
    script = textwrap.dedent(
        """
        import sys
        from modelreg.policy import KNOWN_METRICS
        assert "max_psi" in KNOWN_METRICS["drift"]
        print(sorted(m for m in ("pandas", "scipy", "sklearn", "shap", "evidently", "mlflow") if m in sys.modules))
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
