"""Render the validation report. DOCX through python-docx: ``template`` is any .docx a bank supplies (its
styles, letterhead, header and footer are kept; the report's content is appended after what it contains).
PDF: headless Chromium prints the HTML form."""

from __future__ import annotations

import html
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from modelreg.errors import BadInput, MissingExtra, ModelregError

COMPARATOR_SIGNS = {"lt": "<", "le": "≤", "gt": ">", "ge": "≥"}
STATUS_WORDS = {
    "pass": "通过 pass",
    "warn": "预警 warn",
    "fail": "未通过 fail",
    "error": "无法判定 error",
    "waived": "已豁免 waived",
}


def num(value: Any) -> str:
    """Six significant digits: what the document shows and what its tests read back."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (int, float)):
        return f"{float(value):.6g}"
    return str(value)


def _threshold(c: dict) -> str:
    if c.get("threshold") is None:
        return "–"
    return f"{COMPARATOR_SIGNS.get(c.get('comparator') or '', '')} {num(c['threshold'])}".strip()


# -- the sections, shared by both renderers: (heading zh, heading en, kind, content) ---------------------------


def sections(d: dict) -> list[tuple[str, str, str, Any]]:
    m, s = d["model"], d["scope"]
    out: list[tuple[str, str, str, Any]] = [
        (
            "一、范围",
            "1. Scope",
            "pairs",
            [
                ("模型 Model", f"{m['name']} v{m['version']}"),
                ("用途 Purpose", m["purpose"]),
                ("业务条线 Business line", m["business_line"] or "–"),
                ("负责人 Owner", m["owner"]),
                ("风险等级 Risk tier", m["risk_tier"]),
                ("来源 Supplier", m["supplier"]),
                ("模型文件摘要 Model artifact SHA-256", m["artifact_digest"] or "–"),
                ("验证评估 Evaluation", f"#{s['evaluation_id']} {s['evaluation_digest']}"),
                ("验证人 Validated by", f"{s['validated_by']} · {s['validated_at']}"),
                ("政策包 Policy", f"{s['policy']} ({s['policy_digest']})"),
                ("复审状态 Review status", d.get("review_status", "–")),
            ],
        ),
        (
            "二、数据",
            "2. Data",
            "table",
            (
                ["用途 Role", "名称 Name", "行数 Rows", "SHA-256"],
                [[x["role"], x["name"], str(x["rows"]), x["digest"]] for x in d["data"]],
            ),
        ),
    ]
    meth = d["methodology"]
    lines = [
        "独立验证人在留出数据上运行政策包在上线关口的全部机器控制；阈值、依据和条款见下表。",
        "The independent validator ran every machine control of the policy's deploy gate on hold-out data; "
        "thresholds, their basis and clauses are in the table below.",
        f"监测器 Monitors: {', '.join(meth['monitors']) or '–'}",
    ]
    if meth["model_loading"]:
        lines.append(f"模型加载 Model loading: {meth['model_loading']}")
    if meth["vendor"]:
        v = meth["vendor"]
        lines += [f"供应商模型 Vendor model: {v['note_zh']}", v["note_en"]]
        lines += [
            f"不适用 Not applicable: {cid} — {zh} / {en}" for cid, (zh, en) in v["not_applicable"].items()
        ]
        lines.append(f"结果分析 Outcome analysis: {', '.join(v['outcome_analysis'])}")
    out.append(("三、方法", "3. Methodology", "lines", lines))
    out.append(
        (
            "四、控制结果",
            "4. Controls",
            "table",
            (
                [
                    "控制 Control",
                    "结果 Result",
                    "指标 Metric",
                    "数值 Value",
                    "阈值（越限条件）Threshold (breach if)",
                    "依据 Basis",
                    "条款 Clauses",
                ],
                [
                    [
                        f"{c['control_id']} {c['title_zh']}",
                        STATUS_WORDS.get(c["status"], c["status"]),
                        c["metric"] or "–",
                        num(c["value"]),
                        _threshold(c),
                        c["basis"] or "–",
                        ", ".join(c["clause_ids"]),
                    ]
                    for c in d["controls"]
                ],
            ),
        )
    )
    out.append(
        (
            "五、发现问题与整改",
            "5. Findings and remediation",
            "table",
            (
                [
                    "编号 ID",
                    "控制 Control",
                    "严重度 Severity",
                    "状态 Status",
                    "负责人 Owner",
                    "整改期限 Due",
                    "整改 Remediation",
                ],
                [
                    [
                        f"#{f['id']}",
                        f"{f['control_id']} ({f['purpose']})",
                        f["severity"],
                        f["status"] + (f" ({f['closure']})" if f["closure"] else ""),
                        f["owner"],
                        f["due"],
                        f["remediation"] or "–",
                    ]
                    for f in d["findings"]
                ],
            ),
        )
    )
    out.append(
        (
            "六、豁免",
            "6. Waivers",
            "table",
            (
                ["控制 Control", "批准人 By", "有效期至 Until", "理由 Reason", "密钥 Key id"],
                [[w["control_id"], w["by"], w["until"], w["reason"], w["key_id"]] for w in d["waivers"]],
            ),
        )
    )
    c = d["conclusion"]
    out.append(("七、结论", "7. Conclusion", "lines", [c["zh"], c["en"]]))
    out.append(
        (
            "八、签署",
            "8. Approvals",
            "table",
            (
                [
                    "类型 Kind",
                    "角色 Role",
                    "签署人 Signer",
                    "密钥 Key id",
                    "时间 At",
                    "签名有效 Valid",
                    "意见 Comment",
                ],
                [
                    [
                        a["kind"],
                        a["role"],
                        a["signer"],
                        a["key_id"],
                        a["at"],
                        "yes" if a["valid"] else "NO",
                        a["comment"],
                    ]
                    for a in d["approvals"]
                ],
            ),
        )
    )
    ep = d["evidence_pack"]
    out.append(
        (
            "九、证据包",
            "9. Evidence pack",
            "lines",
            [f"{ep['file']} SHA-256 {ep['sha256']}"]
            if ep
            else [
                "未引用证据包 No evidence pack referenced (modelreg report validation --evidence-pack FILE)"
            ],
        )
    )
    out.append(
        (
            "条款",
            "Clauses cited",
            "lines",
            [f"{x['id']}: {x['title_zh']} / {x['title_en']}" for x in d["clauses"]],
        )
    )
    return out


def render_html(d: dict) -> str:
    e = html.escape
    parts = [
        "<!doctype html><html lang='zh-CN'><head><meta charset='utf-8'>",
        f"<title>{e(d['title_zh'])} {e(d['title_en'])}</title><style>",
        "body{font-family:'WenQuanYi Zen Hei','Noto Sans CJK SC',sans-serif;font-size:11px;margin:24px}",
        "table{border-collapse:collapse;width:100%;margin:6px 0}td,th{border:1px solid #888;padding:3px 5px;"
        "vertical-align:top;word-break:break-all}th{background:#eee}h1{font-size:20px}h2{font-size:14px;"
        "border-bottom:2px solid #345;margin-top:16px}.fail{color:#a00;font-weight:bold}</style></head><body>",
        f"<h1>{e(d['title_zh'])} · {e(d['title_en'])}</h1>",
        f"<p>{e(d['model']['name'])} v{e(d['model']['version'])} · 生成时间 Generated {e(d['generated_at'])}</p>",
    ]
    for zh, en, kind, content in sections(d):
        parts.append(f"<h2>{e(zh)} {e(en)}</h2>")
        if kind == "pairs":
            parts.append(
                "<table>"
                + "".join(f"<tr><th>{e(k)}</th><td>{e(str(v))}</td></tr>" for k, v in content)
                + "</table>"
            )
        elif kind == "lines":
            parts.extend(f"<p>{e(str(line))}</p>" for line in content)
        else:
            head, rows = content
            if not rows:
                parts.append("<p>无 None</p>")
                continue
            parts.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in head) + "</tr>")
            for r in rows:
                cls = " class='fail'" if any(str(x).startswith(("未通过", "无法判定")) for x in r) else ""
                parts.append(f"<tr{cls}>" + "".join(f"<td>{e(str(x))}</td>" for x in r) + "</tr>")
            parts.append("</table>")
    parts.append(
        "<h2>验证人签字 Validator's signature</h2><p>签字 Signature: ____________________ "
        "日期 Date: ____________</p></body></html>"
    )
    return "".join(parts)


def write_docx(d: dict, path: Path, *, template: str | Path | None = None) -> None:
    try:
        import docx
    except ImportError:
        raise MissingExtra("python-docx", "reports") from None
    if template is not None and not Path(template).is_file():
        raise BadInput(f"--template {template} is not a file")
    doc = docx.Document(str(template)) if template else docx.Document()
    doc.add_heading(f"{d['title_zh']} {d['title_en']}", level=0)
    doc.add_paragraph(
        f"{d['model']['name']} v{d['model']['version']} · 生成时间 Generated {d['generated_at']}"
    )
    for zh, en, kind, content in sections(d):
        doc.add_heading(f"{zh} {en}", level=1)
        if kind == "pairs":
            table = doc.add_table(rows=0, cols=2)
            table.style = _table_style(doc)
            for k, v in content:
                cells = table.add_row().cells
                cells[0].text, cells[1].text = str(k), str(v)
        elif kind == "lines":
            for line in content:
                doc.add_paragraph(str(line))
        else:
            head, rows = content
            if not rows:
                doc.add_paragraph("无 None")
                continue
            table = doc.add_table(rows=1, cols=len(head))
            table.style = _table_style(doc)
            for cell, h in zip(table.rows[0].cells, head, strict=True):
                cell.text = h
            for r in rows:
                for cell, x in zip(table.add_row().cells, r, strict=True):
                    cell.text = str(x)
    doc.add_heading("验证人签字 Validator's signature", level=1)
    doc.add_paragraph("签字 Signature: ____________________   日期 Date: ____________")
    doc.save(str(path))


def _table_style(doc) -> Any:
    # A bank's template may not define the built-in grid style; fall back to its default table style.
    try:
        return doc.styles["Table Grid"]
    except KeyError:
        return None


def chromium_binary() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise ModelregError(
        "PDF output needs headless Chromium: install it (Debian: apt-get install -y chromium fonts-wqy-zenhei) or write .docx"
    )


def write_pdf(d: dict, path: Path) -> None:
    binary = chromium_binary()
    with tempfile.TemporaryDirectory(prefix="modelreg-report-") as tmp:
        page = Path(tmp) / "report.html"
        page.write_text(render_html(d), encoding="utf-8")
        cmd = [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--no-first-run",
            f"--user-data-dir={Path(tmp) / 'profile'}",
            "--no-pdf-header-footer",
            f"--print-to-pdf={path.resolve()}",
            page.as_uri(),
        ]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)
        except subprocess.TimeoutExpired:
            raise ModelregError("headless Chromium did not finish printing the report within 180 s") from None
        if proc.returncode != 0 or not path.exists() or path.stat().st_size == 0:
            last = (proc.stderr or "").strip().splitlines()
            raise ModelregError(
                f"headless Chromium could not print the report (exit {proc.returncode}): {last[-1] if last else ''}"
            )


def write_report(d: dict, out: str | Path, *, template: str | Path | None = None) -> Path:
    path = Path(out)
    suffix = path.suffix.lower()
    if suffix not in (".docx", ".pdf", ".html"):
        raise BadInput(f"-o must end in .docx, .pdf or .html. Got {path.name!r} instead.")
    if path.is_dir():
        raise BadInput(f"-o {path} is a folder; give a file name")
    if template is not None and suffix != ".docx":
        raise BadInput("--template applies to .docx output only")
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".docx":
        write_docx(d, path, template=template)
    elif suffix == ".pdf":
        write_pdf(d, path)
    else:
        path.write_text(render_html(d), encoding="utf-8")
    return path
