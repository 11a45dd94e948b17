"""The drift monitor's Evidently HTML report (issue 18.3): switchable, and cached per digest of its inputs (both
samples' bytes, columns and kinds, Evidently and monitor versions, parameters). Real Evidently, no mocks."""

from __future__ import annotations

import json

import pytest

from monitors.drift import HTML_CACHE_NOTE, DriftMonitor

from .conftest import SYNTHETIC_SPEC, synthetic

HTML = "drift_evidently.html"


def _run(tmp_path, run: str, ref, cur, cache, **params):
    out = tmp_path / run
    res = DriftMonitor().run(
        SYNTHETIC_SPEC,
        reference=ref,
        current=cur,
        params={"html_sample_rows": 200, **params},
        artifacts_dir=out,
        report_cache=cache,
    )
    return res, out


def _hit(res) -> bool:
    return any(n.startswith(HTML_CACHE_NOTE) for n in res.notes)


@pytest.fixture(scope="module")
def frames():
    return synthetic(600, seed=1), synthetic(400, seed=2)


def test_a_second_run_on_the_same_data_reuses_the_report(tmp_path, frames):
    ref, cur = frames
    cache = tmp_path / "cache"
    first, out1 = _run(tmp_path, "a", ref, cur, cache)
    assert not _hit(first)
    entries = sorted(p.name for p in cache.iterdir())
    assert len(entries) == 2 and entries[0].endswith(".html") and entries[1].endswith(".json")

    second, out2 = _run(tmp_path, "b", ref, cur, cache)
    assert _hit(second)
    # the same report bytes, artifact digest and notes (plus the one saying it was reused)
    assert (out2 / HTML).read_bytes() == (out1 / HTML).read_bytes()
    (a1,) = [a for a in first.artifacts if a.name == HTML]
    (a2,) = [a for a in second.artifacts if a.name == HTML]
    assert a1.sha256 == a2.sha256
    assert [n for n in second.notes if not n.startswith(HTML_CACHE_NOTE)] == list(first.notes)
    # the metrics do not come from the report: identical either way
    assert [(m.name, m.feature, m.value) for m in second.metrics] == [
        (m.name, m.feature, m.value) for m in first.metrics
    ]
    assert len(list(cache.iterdir())) == 2


def test_other_data_or_parameters_are_a_miss(tmp_path, frames):
    ref, cur = frames
    cache = tmp_path / "cache"
    _run(tmp_path, "a", ref, cur, cache)
    changed = cur.copy()
    changed.loc[0, "x"] = changed.loc[0, "x"] + 1.0  # one value of one row
    res, _ = _run(tmp_path, "b", ref, changed, cache)
    assert not _hit(res)
    res, _ = _run(tmp_path, "c", ref, cur, cache, seed=7)  # a parameter of the report's recipe
    assert not _hit(res)
    assert len(list(cache.glob("*.html"))) == 3
    res, _ = _run(tmp_path, "d", ref, cur, cache)
    assert _hit(res)


def test_an_edited_cache_entry_is_not_served(tmp_path, frames):
    ref, cur = frames
    cache = tmp_path / "cache"
    _run(tmp_path, "a", ref, cur, cache)
    (html,) = cache.glob("*.html")
    html.write_bytes(b"<html>forged</html>")
    res, out = _run(tmp_path, "b", ref, cur, cache)
    assert not _hit(res)
    made = (out / HTML).read_bytes()  # made again (Evidently's element ids differ from run to run)
    assert b"forged" not in made and len(made) > 100_000 and b"<html" in made[:2000].lower()
    meta = json.loads(html.with_suffix(".json").read_text())
    assert html.read_bytes() != b"<html>forged</html>" and meta["notes"]  # and the entry repaired


def test_switched_off_there_is_no_report_and_nothing_cached(tmp_path, frames):
    ref, cur = frames
    cache = tmp_path / "cache"
    res, out = _run(tmp_path, "a", ref, cur, cache, evidently_report=False)
    assert HTML not in {a.name for a in res.artifacts}
    assert not (out / HTML).exists() and not cache.exists()
    assert res.params["evidently_report"] is False
