"""The Evidently HTML report of a validation (issue 18.3), through the registry: a second validation on the same
data reuses the report from the cache under the registry's home; ``html_report=False`` (``--no-html-report``)
stores no HTML artifact and records the switch in the evaluation's parameters. Real SQLite, real Evidently."""

from __future__ import annotations

import subprocess
import sys

import pytest

from monitors.drift import HTML_CACHE_NOTE
from tests.conftest import REPO_ROOT
from tests.governance.conftest import prepare_for_validation

HTML = "drift_evidently.html"
pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def _validate(client, german, **kw):
    s = german["split"]
    return client.as_user("val").validate(
        "credit_scoring",
        "1",
        data=s.holdout,
        reference=s.train,
        target="default",
        model=german["clean"],
        sensitive=["sex"],
        **kw,
    )


def _drift(client, evaluation_id: int) -> dict:
    from modelreg.governance import records

    with client.registry.reading() as rd:
        return records.monitor_results(rd.session, evaluation_id)["drift"]


def _drift_artifacts(client, evaluation_id: int) -> dict[str, str]:
    return {a["name"]: a["sha256"] for a in _drift(client, evaluation_id)["artifacts"]}


def _cache_notes(ev) -> list[str]:
    return [n for n in ev.data["notes"] if HTML_CACHE_NOTE in n]


def test_a_second_validation_on_the_same_data_reuses_the_cached_report(governed, german, db_url):
    client = governed
    prepare_for_validation(client, german)
    cache = client.settings.report_cache
    assert not cache.exists()

    first = _validate(client, german)
    assert not _cache_notes(first)
    assert len(list(cache.glob("*.html"))) == 1  # under <home>/cache/evidently
    second = _validate(client, german)
    (note,) = _cache_notes(second)
    assert note.startswith("drift: ")
    a1, a2 = _drift_artifacts(client, first.id), _drift_artifacts(client, second.id)
    assert HTML in a1 and a1[HTML] == a2[HTML]  # the same report, by digest, in both evaluations
    assert first.data["params"]["drift"].get("evidently_report", True) is True


def test_no_html_report_stores_no_html_and_says_so_in_the_parameters(governed, german, db_url):
    client = governed
    prepare_for_validation(client, german)
    ev = _validate(client, german, html_report=False)
    assert HTML not in _drift_artifacts(client, ev.id)
    assert {"drift_features.csv", "drift_summary.json"} <= set(_drift_artifacts(client, ev.id))
    assert ev.data["params"]["drift"]["evidently_report"] is False
    assert not client.settings.report_cache.exists()
    # the drift metrics are computed all the same
    assert any(m["name"] == "psi" and m["value"] is not None for m in _drift(client, ev.id)["metrics"])


def test_the_cli_switch(governed, german, db_url, env_for, tmp_path):
    client = governed
    prepare_for_validation(client, german)
    s = german["split"]
    model = german["clean"]
    holdout = s.holdout.assign(score=model.predict_proba(s.holdout[model.feature_name_])[:, 1])
    holdout.to_csv(tmp_path / "holdout.csv", index=False)
    s.train.to_csv(tmp_path / "train.csv", index=False)
    argv = [
        sys.executable,
        "-m",
        "modelreg",
        "--as",
        "val",
        "validate",
        "credit_scoring",
        "1",
        "--data",
        str(tmp_path / "holdout.csv"),
        "--reference",
        str(tmp_path / "train.csv"),
        "--target",
        "default",
        "--score",
        "score",
        "--sensitive",
        "sex",
        "--no-html-report",
    ]
    done = subprocess.run(
        argv, cwd=REPO_ROOT, env=env_for(db_url), capture_output=True, text=True, timeout=300
    )
    assert done.returncode in (0, 1) and "Traceback" not in done.stderr, done.stderr
    (ev,) = [e for e in client.findings("credit_scoring", "1") if e.purpose == "validation"]
    assert ev.data["params"]["drift"]["evidently_report"] is False
    assert HTML not in _drift_artifacts(client, ev.id)
