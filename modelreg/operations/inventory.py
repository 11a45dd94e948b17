"""The model inventory (模型台账): every model and version with its purpose, business line, owner, tier, stage,
supplier, last validation, next due date, open findings by severity, active waivers and monitoring status, in a
form a supervisor can be handed (CSV, XLSX, HTML, JSON). Headers are bilingual."""

from __future__ import annotations

import csv
import html
import io
import json
from pathlib import Path
from typing import Any

from modelreg import clock
from modelreg.errors import BadInput, MissingExtra

FORMATS = ("csv", "xlsx", "html", "json")

# (key, 中文, English): the column order of every format.
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("model", "模型", "Model"),
    ("version", "版本", "Version"),
    ("purpose", "用途", "Purpose"),
    ("business_line", "业务条线", "Business line"),
    ("owner", "负责人", "Owner"),
    ("risk_tier", "风险等级", "Risk tier"),
    ("stage", "阶段", "Stage"),
    ("suspended", "已暂停", "Suspended"),
    ("supplier", "来源", "Supplier"),
    ("last_validation", "最近验证日期", "Last validation"),
    ("last_validation_result", "最近验证结论", "Last validation result"),
    ("next_due", "下次重新验证日期", "Next revalidation due"),
    ("due_status", "到期状态", "Due status"),
    ("open_blocking", "未关闭问题（阻断）", "Open findings (blocking)"),
    ("open_major", "未关闭问题（重要）", "Open findings (major)"),
    ("open_minor", "未关闭问题（一般）", "Open findings (minor)"),
    ("active_waivers", "有效豁免及到期", "Active waivers (expiry)"),
    ("monitoring_status", "监测状态", "Monitoring status"),
    ("last_monitoring", "最近监测日期", "Last monitoring"),
)
IN_HOUSE = "in-house / 自研"


def header(key: str) -> str:
    zh, en = next((z, e) for k, z, e in COLUMNS if k == key)
    return f"{zh} {en}"


def _date(value) -> str:
    return clock.isoformat(value)[:10] if value is not None else ""


def rows(reg: Any, *, policy: str | None = None) -> list[dict]:
    """One row per registered version, oldest model first."""
    from modelreg.governance import records
    from modelreg.governance.service import load_policy
    from modelreg.operations import effective_pack, vendor_of
    from modelreg.operations.calendar import revalidation_item
    from modelreg.operations.findings import open_counts
    from modelreg.store import repo

    base = load_policy(reg, policy)
    out = []
    with reg.reading() as rd:
        session = rd.session
        for state in repo.version_states(session):
            mv = state.version
            pack = effective_pack(base, mv)
            val = records.latest_evaluation_row(session, state.id, "validation")
            mon = records.latest_evaluation_row(session, state.id, "monitoring")
            due = revalidation_item(session, pack, state) if state.stage == "deploy" else None
            counts = open_counts(session, state.id)
            waivers = records.active_waivers(session, state.id)
            vendor = vendor_of(mv)
            out.append(
                {
                    "model": mv.model,
                    "version": mv.version,
                    "purpose": mv.purpose,
                    "business_line": mv.business_line or "",
                    "owner": mv.owner,
                    "risk_tier": mv.risk_tier,
                    "stage": state.stage,
                    "suspended": bool(mv.suspended),
                    "supplier": f"vendor / 供应商: {vendor}" if vendor else IN_HOUSE,
                    "last_validation": _date(val.created_at) if val else "",
                    "last_validation_result": val.status if val else "",
                    "next_due": _date(due.due_at) if due else "",
                    "due_status": due.status if due else "",
                    "open_blocking": counts.get("blocking", 0),
                    "open_major": counts.get("major", 0),
                    "open_minor": counts.get("minor", 0),
                    "active_waivers": "; ".join(
                        f"{cid} → {_date(w.until)}" for cid, w in sorted(waivers.items())
                    ),
                    "monitoring_status": ("suspended" if mv.suspended else mon.status) if mon else "",
                    "last_monitoring": _date(mon.created_at) if mon else "",
                }
            )
    return out


def _cells(r: dict) -> list[Any]:
    return [r[k] for k, _, _ in COLUMNS]


def to_csv(data: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([f"{zh} {en}" for _, zh, en in COLUMNS])
    for r in data:
        w.writerow(["yes" if v is True else "no" if v is False else v for v in _cells(r)])
    return buf.getvalue()


def to_html(data: list[dict], *, as_of: str) -> str:
    head = "".join(f"<th>{html.escape(zh)}<br><small>{html.escape(en)}</small></th>" for _, zh, en in COLUMNS)
    body = []
    for r in data:
        cls = " class='overdue'" if r["due_status"] == "overdue" else ""
        cells = "".join(f"<td>{html.escape(str(v))}</td>" for v in _cells(r))
        body.append(f"<tr{cls}>{cells}</tr>")
    overdue = [f"{r['model']} {r['version']}" for r in data if r["due_status"] == "overdue"]
    banner = (
        f"<p class='flag'>逾期未重新验证 Overdue for revalidation: {html.escape(', '.join(overdue))}</p>"
        if overdue
        else ""
    )
    return (
        "<!doctype html><html lang='zh-CN'><head><meta charset='utf-8'><title>模型台账 Model inventory</title>"
        "<style>body{font-family:'WenQuanYi Zen Hei',sans-serif}table{border-collapse:collapse;font-size:12px}"
        "td,th{border:1px solid #999;padding:3px 6px}.overdue{background:#fdd}.flag{color:#a00;font-weight:bold}"
        "</style></head><body>"
        f"<h1>模型台账 Model inventory</h1><p>截至 As of {html.escape(as_of)}</p>{banner}"
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></body></html>"
    )


def write_xlsx(data: list[dict], path: Path, *, as_of: str) -> None:
    try:
        from openpyxl import Workbook
        from openpyxl.styles import Alignment, Font, PatternFill
    except ImportError:
        raise MissingExtra("openpyxl", "reports") from None
    wb = Workbook()
    ws = wb.active
    ws.title = "模型台账 Inventory"
    ws.append([zh for _, zh, _ in COLUMNS])
    ws.append([en for _, _, en in COLUMNS])
    bold = Font(bold=True)
    for row in ws.iter_rows(min_row=1, max_row=2):
        for cell in row:
            cell.font = bold
            cell.alignment = Alignment(wrap_text=True, vertical="top")
    red = PatternFill("solid", fgColor="FFDDDD")
    for r in data:
        ws.append(_cells(r))
        if r["due_status"] == "overdue":
            for cell in ws[ws.max_row]:
                cell.fill = red
    for i, (_, _zh, en) in enumerate(COLUMNS, start=1):
        ws.column_dimensions[ws.cell(1, i).column_letter].width = max(10, min(40, len(en) + 4))
    ws.freeze_panes = "C3"
    meta = wb.create_sheet("说明 About")
    meta.append(["截至 As of", as_of])
    meta.append(["行数 Rows", len(data)])
    wb.save(path)


def export(reg: Any, fmt: str, out: str | Path | None = None, *, policy: str | None = None) -> dict:
    """Write the inventory in ``fmt`` to ``out`` (csv/html/json may go to stdout: out None)."""
    if fmt not in FORMATS:
        raise BadInput(f"--format must be one of {', '.join(FORMATS)}. Got {fmt!r} instead.")
    if fmt == "xlsx" and out is None:
        raise BadInput("--format xlsx needs -o FILE.xlsx")
    path = Path(out) if out is not None else None
    if path is not None and path.is_dir():
        raise BadInput(f"-o {path} is a folder; give a file name")
    if getattr(reg, "remote", False):
        return reg.inventory_export(fmt, path, policy=policy)
    data = rows(reg, policy=policy)
    as_of = clock.isoformat(clock.now())
    text: str | None = None
    if fmt == "csv":
        text = to_csv(data)
    elif fmt == "html":
        text = to_html(data, as_of=as_of)
    elif fmt == "json":
        text = json.dumps(
            {"as_of": as_of, "columns": [list(c) for c in COLUMNS], "rows": data},
            ensure_ascii=False,
            indent=2,
            sort_keys=True,
        )
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "xlsx":
            write_xlsx(data, path, as_of=as_of)
        else:
            path.write_text(text or "", encoding="utf-8")
    return {"format": fmt, "file": str(path) if path else None, "rows": data, "text": text, "as_of": as_of}
