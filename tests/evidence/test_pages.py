"""What an auditor and a customer read: the decision summary on the first screen (measured in headless
Chromium), honest badges, the basis beside every threshold, attestations checked against the files, the
disclosure by JR/T 0287-2023's seven areas, and a model card with its evaluation data and history."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.evidence.conftest import ARTIFACTS, members
from tests.evidence.test_render import _chromium

SCREEN = (1280, 900)
PROBE = """
<script>
const out = {};
for (const id of ["decision", "verdict", "open-findings", "policy-matrix", "findings"]) {
  const el = document.getElementById(id);
  out[id] = el ? Math.round(el.getBoundingClientRect().top + window.scrollY) : null;
}
const v = document.getElementById("verdict");
out["verdict-bottom"] = v ? Math.round(v.getBoundingClientRect().bottom) : null;
document.body.insertAdjacentHTML("beforeend", "<pre id='probe'>" + JSON.stringify(out) + "</pre>");
</script>
"""


@pytest.fixture(scope="module")
def unzipped(pack_path, tmp_path_factory) -> Path:
    from modelreg.evidence.verify import extract_pack

    return extract_pack(pack_path, tmp_path_factory.mktemp("pages"))


def _positions(page: Path, tmp_path: Path) -> dict:
    """Layout positions measured by Chromium at the first-screen size, on a copy of the page with a probe
    script appended (the pack's pages carry no script)."""
    probe = page.with_name("probe-" + page.name)
    probe.write_text(page.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"), encoding="utf-8")
    dom = _chromium(["--dump-dom", f"--window-size={SCREEN[0]},{SCREEN[1]}", probe.as_uri()], tmp_path)
    assert dom.returncode == 0, dom.stderr[-2000:]
    match = re.search(r"<pre id=\"probe\">(.*?)</pre>", dom.stdout)
    assert match, dom.stdout[-2000:]
    probe.unlink()
    return json.loads(match.group(1).replace("&quot;", '"'))


def test_decision_summary_is_in_the_first_screen(unzipped, tmp_path):
    pos = _positions(unzipped / "index.html", tmp_path)
    assert pos["decision"] is not None and pos["decision"] < SCREEN[1] / 2
    assert pos["verdict-bottom"] < SCREEN[1]  # the verdict is readable without scrolling
    assert pos["open-findings"] < SCREEN[1]
    # The policy matrix (thousands of pixels) comes after the findings, waivers and approvals.
    assert pos["findings"] < pos["policy-matrix"]
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "evidence_first_screen.png"
    shot.unlink(missing_ok=True)
    r = _chromium(
        [
            f"--screenshot={shot}",
            f"--window-size={SCREEN[0]},{SCREEN[1]}",
            (unzipped / "index.html").as_uri(),
        ],
        tmp_path,
    )
    assert r.returncode == 0 and shot.read_bytes().startswith(b"\x89PNG")
    for page in ("model_card.html", "disclosure.html"):
        out = ARTIFACTS / f"evidence_{page.replace('.html', '')}_full.png"
        out.unlink(missing_ok=True)
        _chromium([f"--screenshot={out}", "--window-size=1280,3000", (unzipped / page).as_uri()], tmp_path)
        assert out.exists()


def test_decision_summary_content(german, pack_path):
    files = members(pack_path)
    d = json.loads(files["decision_summary.json"])
    assert d["verdict"] == "deployed" and d["decided_by"] == "app1"
    assert {(a["role"], a["signer"]) for a in d["approvals"]} == {
        ("validator", "val"),
        ("approver", "app1"),
        ("approver", "app2"),
    }
    waivers = {w["control_id"]: w for w in d["waivers"]}
    assert set(waivers) == {"CHK-PERF-02", "CHK-ROB-02"}
    assert waivers["CHK-ROB-02"]["by"] == "app2" and waivers["CHK-ROB-02"]["scope"] == ["deploy"]
    assert all(w["state"] == "active" for w in waivers.values())
    # Open findings are exactly the unwaived warn/fail/error of the latest evaluation of each purpose,
    # plus the contradicted attestations.
    # The evaluation objects returned when they ran carry raw statuses; the waivers (deploy scope) came later.
    scope = {"precheck": "deploy", "validation": "deploy", "monitoring": "monitor"}
    expected = sorted(
        f.control_id
        for ev in (german.validation, german.monitoring)  # the pre-check is superseded by the validation
        for f in ev.findings
        if f.raw_status in ("warn", "fail", "error")
        and not (f.control_id in waivers and scope[ev.purpose] in waivers[f.control_id]["scope"])
    )
    found = sorted(o["control_id"] for o in d["open_findings"] if o["kind"] == "finding")
    assert found == expected
    index = files["index.html"].decode()
    assert index.index('id="decision"') < index.index('id="findings"') < index.index('id="policy-matrix"')


def test_every_page_carries_dates_and_document_version(pack_path):
    files = members(pack_path)
    for page in ("index.html", "model_card.html", "disclosure.html", "model_card.md", "disclosure.md"):
        text = files[page].decode()
        assert re.search(r"状态截至 state as of 20\d\d-\d\d-\d\dT", text), page
        assert re.search(r"文档修订 revision r\d+", text), page


def test_badges_mean_a_verdict_and_computed_is_never_ok(german, pack_path):
    index = members(pack_path)["index.html"].decode()
    assert "正常 ok" not in index and "status s-ok" not in index
    assert "已计算 computed" in index
    # A failing control's metric carries the fail badge in the monitor table, not a green one.
    failing = [
        f for f in german.validation.findings if f.raw_status == "fail" and f.detail.get("feature") is None
    ]
    assert failing
    f = failing[0]
    assert re.search(
        rf'<span class="status s-(fail|waived)">[^<]+</span> <code>{re.escape(f.control_id)}</code>', index
    ), f.control_id


def test_every_threshold_shows_its_basis(pack_path):
    files = members(pack_path)
    matrix = json.loads(files["policy/matrix.json"])
    shown = 0
    for row in matrix["rows"]:
        for ctl in row["controls"]:
            if ctl["kind"] == "check" and ctl["result"] not in ("n/a", "not_run") and "(" in ctl["detail"]:
                assert "阈值依据 basis:" in ctl["detail"], ctl
                shown += 1
    assert shown > 10
    index = files["index.html"].decode()
    # Every rendered threshold comparison ("lt 0.65", "gt 0.1") is followed by its basis.
    for m in re.finditer(r"\((lt|le|gt|ge) [-0-9.e]+;", index):
        assert index[m.end() : m.end() + 40].strip().startswith("阈值依据 basis:"), index[
            m.start() : m.end() + 40
        ]
    assert "行业惯例，非监管数值" in index and "not a regulatory number" in index


def test_attestations_contradicted_by_the_files_are_findings(german, pack_path):
    """The fixture signs CHK-ROB-01.review (≥ 3 stress scenarios) with one scenario run, CHK-ROB-05 (four-week
    shadow run) seconds after registration, and CHK-DQ-05 (data owners named) with owner null."""
    files = members(pack_path)
    doc = json.loads(files["findings/attestation_contradictions.json"])
    by = {x["control_id"]: x for x in doc["contradictions"]}
    assert set(by) == {"CHK-ROB-01.review", "CHK-ROB-05", "CHK-DQ-05"}
    assert "declares 1 scenario(s), 1 scored" in by["CHK-ROB-01.review"]["found_en"]
    version = json.loads(files["model/version.json"])
    registered = version["version"]["created_at"]
    assert registered in by["CHK-ROB-05"]["found_en"]
    nulls = [d for d in version["datasets"] if not d["owner"]]
    assert f"{len(nulls)} data set(s) record no owner" in by["CHK-DQ-05"]["found_en"] and len(nulls) == 2
    matrix = json.loads(files["policy/matrix.json"])
    results = {c["control_id"]: c["result"] for r in matrix["rows"] for c in r["controls"]}
    assert all(results[cid] == "contradicted" for cid in by)
    summary = json.loads(files["decision_summary.json"])
    assert {o["control_id"] for o in summary["open_findings"] if o["kind"] == "contradiction"} == set(by)
    assert "与证据矛盾 contradicted" in files["index.html"].decode()


def test_no_contradiction_when_the_files_agree(german):
    """The rules themselves: three scored scenarios, a deploy 30 days after registration and named owners
    give no contradiction (the same functions, fed with agreeing facts)."""
    from dataclasses import replace
    from datetime import timedelta

    from modelreg.evidence import attestation_checks as ac
    from modelreg.evidence.collect import collect
    from modelreg.evidence.pack import PackContext

    c = collect(german.auditor, "credit_scoring", "1")
    ctx = PackContext(collected=c, evidence_key_id="k")
    rec = {r.control_id: r for r in c.signed if r.kind == "attestation"}
    ev = max((e for e in c.evaluations if e.purpose == "validation"), key=lambda e: e.id)
    rob = dict(c.monitor_results[ev.id]["robustness"])
    one = next(m for m in rob["metrics"] if m["name"] == "stress_approval_rate_change")
    rob["metrics"] = rob["metrics"] + [dict(one, group=g) for g in ("g2", "g3")]
    c.monitor_results[ev.id] = {**c.monitor_results[ev.id], "robustness": rob}
    assert ac._stress(ctx, rec["CHK-ROB-01.review"]) is None
    late = replace(rec["CHK-ROB-05"], at=c.version.created_at + timedelta(days=30))
    c.history = [replace(h, at=c.version.created_at + timedelta(days=31)) for h in c.history]
    assert ac._shadow(ctx, late) is None
    c.datasets = [replace(d, owner="data-office") for d in c.datasets]
    assert ac._owners(ctx, rec["CHK-DQ-05"]) is None


def test_disclosure_has_a_section_per_jrt0287_area_and_the_moments(german, pack_path, retired):
    from modelreg.evidence.render import JRT0287_AREAS

    for path in (pack_path, retired.pack):
        text = members(path)["disclosure.md"].decode()
        headings = [line[3:] for line in text.splitlines() if line.startswith("## ")]
        for _, zh, _en in JRT0287_AREAS:
            assert any(zh in h for h in headings), (zh, headings)
        areas = [next(k for k, h in enumerate(headings) if zh in h) for _, zh, _ in JRT0287_AREAS]
        assert areas == sorted(areas)  # in the standard's order
        assert any("披露时点" in h for h in headings)
        for moment in ("上线 Launch", "重大变更 Major change", "终止 Termination"):
            assert moment in text
    retired_text = members(retired.pack)["disclosure.md"].decode()
    assert "停用公告" in retired_text and retired.reason in retired_text


def test_disclosure_states_directions_only_for_ordered_factors(pack_path):
    from tests.evidence.conftest import CATEGORICAL

    text = members(pack_path)["disclosure.md"].decode()
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 3 and "%" in cells[1]:
            rows[cells[0].split("（")[0]] = cells[2]
    coded = [f for f in CATEGORICAL if f in rows]
    assert coded, rows  # category codes are among the main factors
    for f in coded:
        assert "不陈述方向" in rows[f] and "raise" not in rows[f] and "lower" not in rows[f], f
    assert any("raise the score" in v or "lower the score" in v for v in rows.values())
    assert "机构 Institution" in text and "联系方式 Contact" in text


def test_model_card_has_algorithm_objective_threshold_intervals_history(german, pack_path):
    card = members(pack_path)["model_card.md"].decode()
    for text in (
        "算法 Algorithm",
        "目标 Objective",
        "决策阈值 Decision threshold",
        "版本历史与状态",
        "状态 Status",
    ):
        assert text in card, text
    perf = next(r for r in german.validation.findings if r.control_id == "CHK-PERF-01")
    auc_line = next(line for line in card.splitlines() if line.startswith("| auc |"))
    assert f"#{german.validation.id}" in auc_line and "rows" in auc_line
    assert perf.control_id in auc_line and "阈值依据 basis:" in auc_line
    # Interval: the stored CI of the AUC, where the monitor computed one.
    from modelreg.evidence.render import num

    result = json.loads(members(pack_path)[f"monitors/{german.validation.id}/performance.json"])
    auc = next(m for m in result["metrics"] if m["name"] == "auc" and m.get("feature") is None)
    if auc.get("ci_low") is not None:
        assert f"[{num(auc['ci_low'])}, {num(auc['ci_high'])}]" in auc_line
    history = card.split("版本历史与状态")[1]
    for event in ("version.registered", "version.submitted", "version.deployed", "evaluation.recorded"):
        assert event in history, event


def test_cbirc_clauses_carry_the_official_numbering_and_the_caveat(pack_path):
    files = members(pack_path)
    matrix = json.loads(files["policy/matrix.json"])
    row = next(r for r in matrix["rows"] if r["clause_id"] == "CBIRC-2022-13.1")
    assert row["item"] == "三、（十三）"
    index = files["index.html"].decode()
    assert 'id="source-note-CBIRC-2022"' in index and "官方编号" in index
    assert "were not checked against the primary text" in index
