"""Human-readable renderings of evaluations (terminal table and Jupyter HTML), bilingual."""

from __future__ import annotations

import html

STATUS_MARK = {"pass": "PASS", "warn": "WARN", "fail": "FAIL", "error": "ERROR", "waived": "WAIVED"}


_SYMBOL = {"lt": "<", "le": "≤", "gt": ">", "ge": "≥"}
# The passing side of a bound: a control breaches when ``value <comparator> bound``.
_PASSING = {"lt": "≥", "le": ">", "gt": "≤", "ge": "<"}


def _value(f) -> str:
    """The value and the bound that decided, said as what it means: "fail if > 0.1", "warn if < 0.9", and
    for a pass the side it is on ("ok ≥ 0.7"), never a bare comparator id."""
    d = f.detail
    v, t, c = d.get("value"), d.get("threshold"), d.get("comparator")
    if v is None:
        return "-"
    text = f"{v:.4g}"
    if t is None or c not in _SYMBOL:
        return text
    if f.raw_status == "fail":
        return f"{text} (fail if {_SYMBOL[c]} {t:.4g})"
    if f.raw_status == "warn":
        return f"{text} (warn if {_SYMBOL[c]} {t:.4g})"
    if f.raw_status == "pass":
        return f"{text} (ok {_PASSING[c]} {t:.4g})"
    return text


def _width(text: str) -> int:
    """Terminal columns: CJK characters take two."""
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * max(0, width - _width(text))


def evaluation_text(ev, *, only_problems: bool = False) -> str:
    counts = ev.counts()
    head = (
        f"{ev.purpose} #{ev.id} of {ev.model} {ev.version} ({ev.tier} risk) with {ev.policy_id}@{ev.policy_version}: "
        f"{ev.status.upper()}  [" + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) + "]"
    )
    lines = [head]
    if getattr(ev, "suspended", False):
        lines.append("  !! the deployed version was SUSPENDED by this run (on_breach: suspend) / 已自动暂停")
    shown = [f for f in ev.findings if not (only_problems and f.status == "pass")]
    cells = [
        (
            STATUS_MARK.get(f.status, f.status),
            f.control_id,
            _value(f),
            f"{f.detail.get('title_en', '')} [{', '.join(f.clause_ids[:3])}{'…' if len(f.clause_ids) > 3 else ''}]",
        )
        for f in shown
    ]
    # Widths from the longest cell of each column, so long control ids (CHK-FAIR-02.opportunity) and
    # values never push the later columns out of line.
    widths = [max((_width(row[i]) for row in cells), default=0) for i in range(3)]
    indent = " " * (2 + widths[0] + 1)
    rows = []
    for f, row in zip(shown, cells, strict=True):
        rows.append(
            "  " + "  ".join(_pad(c, w) for c, w in zip(row[:3], widths, strict=True)) + "  " + row[3]
        )
        if f.status in ("fail", "error", "waived") and f.detail.get("reason"):
            rows.append(f"{indent} {f.detail['reason']}")
        if f.waiver:
            rows.append(
                f"{indent} waived by {f.waiver['by']} until {f.waiver['until']}: {f.waiver['reason']}"
            )
    lines += rows or ["  (no findings)"]
    notes = (getattr(ev, "data", None) or {}).get("notes") or []
    if notes and not only_problems:
        # What was left out of the numbers (rows excluded, samples, schema source) belongs with them.
        lines.append("  notes / 说明:")
        lines += [f"    - {n}" for n in notes]
    return "\n".join(lines)


def evaluation_html(ev) -> str:
    colour = {
        "pass": "#1a7f37",
        "warn": "#9a6700",
        "fail": "#cf222e",
        "error": "#8250df",
        "waived": "#57606a",
    }
    rows = "".join(
        "<tr>"
        f"<td style='color:{colour.get(f.status, '#000')};font-weight:bold'>{html.escape(f.status)}</td>"
        f"<td>{html.escape(f.control_id)}</td>"
        f"<td>{html.escape(f.detail.get('title_zh', ''))}<br>{html.escape(f.detail.get('title_en', ''))}</td>"
        f"<td>{html.escape(_value(f))}</td>"
        f"<td>{html.escape(', '.join(f.clause_ids))}</td>"
        f"<td>{html.escape(str(f.detail.get('reason') or ''))}</td>"
        "</tr>"
        for f in ev.findings
    )
    return (
        f"<div><b>{html.escape(ev.purpose)} #{ev.id}</b> — {html.escape(ev.model)} {html.escape(ev.version)} "
        f"({html.escape(ev.tier)}) · {html.escape(ev.policy_id)}@{html.escape(ev.policy_version)} · "
        f"<b>{html.escape(ev.status.upper())}</b>"
        "<table><thead><tr><th>状态 status</th><th>控制 control</th><th>标题 title</th><th>值 value</th>"
        f"<th>条款 clauses</th><th>说明 reason</th></tr></thead><tbody>{rows}</tbody></table></div>"
    )
