"""Model risk operations on a registry built by the lifecycle (SQLite and PostgreSQL, real monitors on German
credit): a failing validation opens findings with owners and due dates, a later passing run closes them; a
second model validated 13 months ago is overdue (`modelreg due` exits 1 naming it; the monitor gate blocks it);
the inventory xlsx lists both with the right due dates; the validation report's numbers equal `findings --json`;
the PDF prints and is not blank."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from modelreg.errors import GateRefused
from tests.operations.conftest import (
    ARTIFACTS,
    clock_at,
    deploy_after_validation,
    now_utc,
    prepare_for_validation,
    validate,
)

NEW, OLD = "credit_scoring", "legacy_scorecard"


def _cli(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "modelreg", *args], env=env, capture_output=True, text=True, timeout=300
    )


def _events(client, name: str) -> list:
    return [e for e in client.audit_log(name) if e.event.startswith("finding.")]


def test_operations_on_a_governed_registry(governed, german, db_url, env_for, tmp_path):
    from modelreg.operations.findings import list_findings
    from modelreg.policy import load_pack

    client = governed
    pack = load_pack("cn-fin-algo-risk")
    days = {s: i.days for s, i in pack.findings_policy.remediation.items()}

    # -- an older model, validated and deployed 13 months ago -------------------------------------------
    old_time = now_utc() - timedelta(days=396)
    with clock_at(old_time):
        prepare_for_validation(client, german, name=OLD)
        ev_old = validate(client, german, OLD, "1")
        deploy_after_validation(client, OLD, "1", ev_old, until=old_time + timedelta(days=90))
    old_validated = ev_old.created_at

    # -- a new model: the biased one fails validation, findings open ------------------------------------
    prepare_for_validation(client, german, name=NEW)
    bad = validate(client, german, NEW, "1", "biased")
    failed = {f.control_id: f for f in bad.findings if f.raw_status in ("fail", "error")}
    assert {"CHK-FAIR-01", "CHK-FAIR-02"} <= set(failed)
    opened = list_findings(client.registry, model=NEW, version="1")
    assert {f.control_id for f in opened} == set(failed)
    for f in opened:
        assert f.status == "open" and f.owner == "dev" and f.purpose == "validation"
        assert f.severity == failed[f.control_id].severity
        assert f.clause_ids == failed[f.control_id].clause_ids
        # the due date is the opening plus the severity's remediation deadline from the policy
        assert f.due_at - f.opened_at == timedelta(days=days[f.severity])
        assert f.opened_evaluation_id == bad.id
    fair = next(f for f in opened if f.control_id == "CHK-FAIR-01")
    assert "NFRA-2025-25.6" in fair.clause_ids and fair.severity == "blocking"
    assert fair.last_result["value"] == pytest.approx(failed["CHK-FAIR-01"].detail["value"])
    assert [e.event for e in _events(client, NEW)] == ["finding.opened"] * len(failed)

    # an open blocking finding keeps deployment blocked (the gate names it with its clause)
    with pytest.raises(GateRefused) as info:
        client.as_user("app1").deploy(NEW, "1")
    assert "CHK-FAIR-01" in {u["control_id"] for u in info.value.unmet}

    # -- a later passing run of the same controls closes them ----------------------------------------------
    good = validate(client, german, NEW, "1", "clean")
    passed = {f.control_id for f in good.findings if f.raw_status in ("pass", "warn")}
    assert "CHK-FAIR-01" in passed  # the clean model's demographic parity ratio is within the policy
    after = {f.control_id: f for f in list_findings(client.registry, model=NEW, version="1", status=None)}
    for cid in failed:
        f = after[cid]
        if cid in passed:
            assert f.status == "closed" and f.closure == {
                "kind": "passed",
                "evaluation_id": good.id,
                "evaluation_digest": good.digest,
            }
        else:  # still failing: the same finding, seen twice
            assert f.status == "open" and f.occurrences == 2 and f.last_evaluation_id == good.id
    closed_events = [e for e in _events(client, NEW) if e.event == "finding.closed"]
    assert sorted(e.payload["control_id"] for e in closed_events) == sorted(set(failed) & passed)
    deploy_after_validation(client, NEW, "1", good, until=now_utc() + timedelta(days=90))

    # -- the calendar: the old model is overdue; `modelreg due` exits 1 naming it ------------------------------
    env = env_for(db_url)
    proc = _cli(env, "due", "--json")
    assert proc.returncode == 1, proc.stderr
    due = json.loads(proc.stdout)
    overdue = [i for i in due["items"] if i["status"] == "overdue"]
    assert {(i["model"], i["review"]) for i in overdue} >= {(OLD, "revalidation")}
    assert all(i["model"] != NEW or i["review"] != "revalidation" for i in overdue)
    reval = next(i for i in overdue if i["model"] == OLD and i["review"] == "revalidation")
    assert reval["interval_days"] == 365 and reval["basis"] == "seed_text"
    assert reval["due_at"][:10] == (old_validated + timedelta(days=365)).date().isoformat()
    assert reval["days_left"] == pytest.approx(-(396 - 365), abs=1)
    human = _cli(env, "due")
    assert human.returncode == 1 and OLD in human.stdout and "OVERDUE" in human.stdout

    # ... and its evidence pack flags it on every page (the document line) and in operations.json
    import zipfile

    from modelreg.evidence.pack import build_pack

    pack_zip = tmp_path / "old-pack.zip"
    build_pack(client.as_user("aud").registry, OLD, "1", pack_zip)
    with zipfile.ZipFile(pack_zip) as zf:
        ops = json.loads(zf.read("operations.json"))
        assert ops["overdue"] is True and "revalidation" in ops["flag"]
        for page in ("index.html", "model_card.html", "disclosure.html", "model_card.md", "disclosure.md"):
            assert "逾期 OVERDUE" in zf.read(page).decode("utf-8"), page

    # -- the inventory lists both models with the right due dates (read back with openpyxl) --------------------
    xlsx = tmp_path / "inventory.xlsx"
    proc = _cli(env, "inventory", "--format", "xlsx", "-o", str(xlsx))
    assert proc.returncode == 0, proc.stderr
    import openpyxl

    ws = openpyxl.load_workbook(xlsx).active
    zh = [c.value for c in ws[1]]
    en = [c.value for c in ws[2]]
    assert zh[:2] == ["模型", "版本"] and en[:2] == ["Model", "Version"]
    rows = {(r[0], r[1]): dict(zip(en, r, strict=True)) for r in ws.iter_rows(min_row=3, values_only=True)}
    assert set(rows) == {(NEW, "1"), (OLD, "1")}
    assert (
        rows[(OLD, "1")]["Next revalidation due"] == (old_validated + timedelta(days=365)).date().isoformat()
    )
    assert rows[(OLD, "1")]["Due status"] == "overdue"
    assert (
        rows[(NEW, "1")]["Next revalidation due"]
        == (good.created_at + timedelta(days=365)).date().isoformat()
    )
    assert rows[(NEW, "1")]["Due status"] == "ok" and rows[(NEW, "1")]["Stage"] == "deploy"
    assert rows[(NEW, "1")]["Last validation result"] == good.status
    still_open = [f for f in after.values() if f.status != "closed"]
    assert rows[(NEW, "1")]["Open findings (blocking)"] == sum(f.severity == "blocking" for f in still_open)
    assert rows[(NEW, "1")]["Open findings (major)"] == sum(f.severity == "major" for f in still_open)
    shutil.copy(
        xlsx, ARTIFACTS.mkdir(parents=True, exist_ok=True) or ARTIFACTS / f"inventory-{db_url[:6]}.xlsx"
    )

    # -- the validation report: the DOCX's numbers equal `findings --json` -------------------------------------
    docx_path = tmp_path / "report.docx"
    proc = _cli(env, "report", "validation", NEW, "1", "-o", str(docx_path))
    assert proc.returncode == 0, proc.stderr
    registry = json.loads(_cli(env, "findings", NEW, "1", "--purpose", "validation", "--json").stdout)
    expected = {f["control_id"]: f for f in registry["evaluations"][0]["findings"]}
    import docx

    document = docx.Document(str(docx_path))
    text = "\n".join(p.text for p in document.paragraphs)
    assert "模型验证报告" in text and "Model validation report" in text
    controls = next(t for t in document.tables if t.rows[0].cells[0].text == "控制 Control")
    head = [c.text for c in controls.rows[0].cells]
    seen = {}
    for row in controls.rows[1:]:
        cells = dict(zip(head, (c.text for c in row.cells), strict=True))
        seen[cells["控制 Control"].split(" ", 1)[0]] = cells
    assert set(seen) == set(expected)
    for cid, f in expected.items():
        cells = seen[cid]
        if f["value"] is None:
            assert cells["数值 Value"] == "–"
        else:
            assert float(cells["数值 Value"]) == pytest.approx(f["value"], rel=1e-5), cid
        if f.get("threshold") is not None:
            assert float(cells["阈值（越限条件）Threshold (breach if)"].split(" ")[-1]) == pytest.approx(
                f["threshold"], rel=1e-5
            ), cid
        assert cells["条款 Clauses"] == ", ".join(f["clause_ids"])
        assert cells["结果 Result"].endswith(f["status"])
    approvals = next(t for t in document.tables if t.rows[0].cells[0].text == "类型 Kind")
    signers = {(r.cells[1].text, r.cells[2].text) for r in approvals.rows[1:]}
    assert {("validator", "val"), ("approver", "app1"), ("approver", "app2")} <= signers
    key_ids = {r.cells[3].text for r in approvals.rows[1:]}
    assert all(k.startswith(("ed25519:", "sha256:")) or len(k) >= 16 for k in key_ids)

    # -- the PDF (headless Chromium printing the HTML) is rasterised and is not blank --------------------------
    pdf = tmp_path / "report.pdf"
    proc = _cli(env, "report", "validation", NEW, "1", "-o", str(pdf))
    assert proc.returncode == 0, proc.stderr
    assert pdf.read_bytes()[:5] == b"%PDF-"
    if shutil.which("pdftoppm") is None:
        pytest.fail("pdftoppm is not installed: apt-get install -y poppler-utils (tests/run.sh does it)")
    subprocess.run(
        ["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1", str(pdf), str(tmp_path / "page")], check=True
    )
    page = next(tmp_path.glob("page*.png"))
    from PIL import Image

    pixels = Image.open(page).convert("L")
    dark = sum(1 for v in pixels.getdata() if v < 128)
    assert dark > 0.01 * pixels.width * pixels.height, "the report's first page is blank"
    shutil.copy(page, ARTIFACTS / f"validation-report-{db_url[:6]}-p1.png")
    shutil.copy(pdf, ARTIFACTS / f"validation-report-{db_url[:6]}.pdf")

    # the overdue model's report says so on its first page; the new one is on schedule
    from modelreg.operations.report import report_data

    assert report_data(client.registry, OLD, "1")["review_status"].startswith("逾期 OVERDUE: revalidation")
    assert report_data(client.registry, NEW, "1")["review_status"] == "按期 on schedule"

    # -- the monitor gate blocks the overdue high-risk model (policy: block), and opens a finding ----------------
    s = german["split"]
    mon = client.as_user("ops").monitor(
        OLD, "1", data=s.holdout, target="default", model=german["clean"], sensitive=["sex"]
    )
    lc07 = next(f for f in mon.findings if f.control_id == "CHK-LC-07")
    assert lc07.status == "fail" and mon.status in ("fail", "error")
    assert lc07.detail["value"] == pytest.approx(396 - 365, abs=1)
    tracked = [f for f in list_findings(client.registry, model=OLD) if f.control_id == "CHK-LC-07"]
    assert len(tracked) == 1 and tracked[0].purpose == "monitoring" and tracked[0].owner == "dev"
    assert tracked[0].severity == "major" and tracked[0].due_at - tracked[0].opened_at == timedelta(days=90)

    # -- the finding's life cycle by people: assign, propose, close (each one audit event) ---------------------
    fid = str(tracked[0].id)
    n0 = len(client.audit_log())
    assert _cli(env, "--as", "dev", "finding", "assign", fid, "--owner", "val").returncode == 1  # role
    assert _cli(env, "--as", "app1", "finding", "assign", fid, "--owner", "val").returncode == 0
    r = _cli(env, "--as", "app1", "finding", "assign", fid, "--due", "2030-01-31")
    assert r.returncode == 2 and "--reason" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = _cli(env, "--as", "val", "finding", "propose", fid, "--remediation", "revalidate on 2026 data as v2")
    assert r.returncode == 0, r.stderr
    # no later passing run of CHK-LC-07: closing needs a signed acceptance
    r = _cli(env, "--as", "app1", "finding", "close", fid)
    assert r.returncode == 1 and "--accept" in r.stderr
    r = _cli(env, "--as", "val", "finding", "close", fid, "--accept", "--reason", "x")
    assert r.returncode == 1 and "approver" in r.stderr  # the policy names the acceptance role
    r = _cli(
        env,
        "--as",
        "app2",
        "finding",
        "close",
        fid,
        "--accept",
        "--reason",
        "v2 revalidation scheduled",
        "--json",
    )
    assert r.returncode == 0, r.stderr
    done = json.loads(r.stdout)
    assert (
        done["status"] == "closed" and done["closure"]["kind"] == "accepted" and done["closed_by"] == "app2"
    )
    names = [e.event for e in client.audit_log()[n0:]]
    assert names == ["finding.assigned", "finding.remediation_proposed", "finding.closed"]
    from modelreg.governance.service import signed

    acceptance = [x for x in signed(client.registry, OLD, "1") if x.kind == "acceptance"]
    assert len(acceptance) == 1 and acceptance[0].counts and acceptance[0].actor == "app2"
    assert acceptance[0].payload["finding_id"] == tracked[0].id
    assert acceptance[0].signature["key_id"] == done["closure"]["key_id"]
    shown = json.loads(_cli(env, "finding", "show", fid, "--json").stdout)
    assert shown["owner"] == "val" and shown["remediation"].startswith("revalidate")
    assert client.audit_verify().ok

    # -- replay proves the tracked findings: a deadline moved or a finding reopened by a table edit shows --------
    report = client.registry.replay()
    assert report.ok, report.first_line()
    assert not any(k.startswith("finding.") for k in report.skipped_events)
    from sqlalchemy import text

    engine = client.registry.engine
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE tracked_findings SET due_at = :d WHERE id = :i"),
            {"d": datetime(2099, 1, 1, tzinfo=UTC).isoformat(), "i": tracked[0].id},
        )
        other = conn.execute(
            text("SELECT id FROM tracked_findings WHERE status != 'closed' ORDER BY id LIMIT 1")
        ).scalar()
        conn.execute(text("UPDATE tracked_findings SET status = 'closed' WHERE id = :i"), {"i": other})
    report = client.registry.replay()
    problems = {(d.table, d.key): d.problem for d in report.divergences}
    assert not report.ok
    assert problems[("tracked_findings", f"#{tracked[0].id}")].startswith("due_at is "), problems
    assert problems[("tracked_findings", f"#{other}")].startswith("status is 'closed', the log recorded "), problems
