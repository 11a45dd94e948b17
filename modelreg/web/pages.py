"""The HTML of the web view. Every value goes through ``e`` (html.escape, quotes included) before it reaches the
page; labels are bilingual (中文 English); every page shows the date and time it was rendered (UTC)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from html import escape
from typing import Any
from urllib.parse import quote, urlencode

from modelreg import clock
from modelreg.domain.stages import RiskTier, Stage
from modelreg.operations.inventory import COLUMNS

STAGES = tuple(s.value for s in Stage)
TIERS = tuple(t.value for t in RiskTier)

# Served as /style.css: the CSP (default-src 'self') refuses inline <style>, on purpose.
CSS = """
body{font-family:"WenQuanYi Zen Hei","Noto Sans CJK SC","Microsoft YaHei",sans-serif;margin:0;color:#1b1f24;background:#f6f7f9}
header{background:#123a5c;color:#fff;padding:.6em 1.2em;display:flex;gap:1.5em;align-items:center;flex-wrap:wrap}
header a{color:#fff;text-decoration:none}header .who{margin-left:auto}
main{padding:1em 1.2em}h1{font-size:1.35em}h2{font-size:1.1em;margin-top:1.6em}
table{border-collapse:collapse;background:#fff;font-size:.86em;margin:.4em 0}
th,td{border:1px solid #cfd6de;padding:.3em .5em;text-align:left;vertical-align:top}th{background:#e8edf2}
.ok{color:#0a6b2b;font-weight:bold}.bad{color:#a4161a;font-weight:bold}.muted{color:#5b6570}
form.inline{display:inline}code{font-size:.85em;word-break:break-all}footer{padding:1em 1.2em;color:#5b6570;font-size:.8em}
textarea{width:100%;max-width:48em;height:8em}
"""


def e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def when(value: datetime | None) -> str:
    return clock.isoformat(value)[:19].replace("T", " ") + " UTC" if value else ""


@dataclass(frozen=True)
class Ctx:
    base: str  # the mount prefix, e.g. /ui
    user: str | None
    csrf: str | None
    now: datetime

    def url(self, path: str, **params: Any) -> str:
        q = urlencode({k: v for k, v in params.items() if v not in (None, "")})
        return f"{self.base}{path}" + (f"?{q}" if q else "")


def layout(ctx: Ctx, title: str, body: str) -> str:
    nav = ""
    if ctx.user:
        nav = (
            f'<a href="{e(ctx.url("/inventory"))}">模型台账 Inventory</a>'
            f'<a href="{e(ctx.url("/audit"))}">审计日志 Audit log</a>'
            f'<a href="{e(ctx.url("/audit/checkpoint"))}">检查点验证 Checkpoint</a>'
            f'<span class="who">用户 User: {e(ctx.user)} '
            f'<form class="inline" method="post" action="{e(ctx.url("/logout"))}">'
            f'<input type="hidden" name="csrf" value="{e(ctx.csrf)}">'
            f'<button type="submit">退出 Log out</button></form></span>'
        )
    return (
        '<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8">'
        f'<title>{e(title)} · modelreg</title><link rel="stylesheet" href="{e(ctx.url("/style.css"))}">'
        "</head><body>"
        f"<header><strong>modelreg 模型风险登记 Model risk registry</strong>{nav}</header>"
        f"<main><h1>{e(title)}</h1>{body}</main>"
        f"<footer>只读视图 Read-only view · 生成时间 Generated {e(when(ctx.now))}</footer></body></html>"
    )


def error_page(status: str, message: str, ctx: Ctx | None = None) -> str:
    ctx = ctx or Ctx("", None, None, clock.now())
    return layout(ctx, f"错误 Error {status}", f"<p>{e(message)}</p>")


def login_page(ctx: Ctx, csrf: str, error: str | None) -> str:
    msg = '<p class="bad">令牌无效或已过期 / The token is invalid or expired</p>' if error else ""
    body = (
        f"{msg}<p>粘贴从本行身份认证系统获取的令牌。 / Paste a bearer token from the bank's identity provider.</p>"
        f'<form method="post" action="{e(ctx.url("/login"))}">'
        f'<input type="hidden" name="csrf" value="{e(csrf)}">'
        '<label for="token">令牌 Bearer token</label><br>'
        '<textarea id="token" name="token" required autocomplete="off"></textarea><br>'
        '<button type="submit" id="login">登录 Log in</button></form>'
    )
    return layout(ctx, "登录 Log in", body)


def _select(name: str, label: str, options: tuple[str, ...] | list[str], current: str) -> str:
    opts = '<option value="">全部 All</option>' + "".join(
        f'<option value="{e(o)}"{" selected" if o == current else ""}>{e(o)}</option>' for o in options
    )
    return f'<label>{e(label)} <select name="{e(name)}" id="f-{e(name)}">{opts}</select></label> '


def version_url(ctx: Ctx, model: str, version: str) -> str:
    return ctx.url(f"/version/{quote(model, safe='')}/{quote(version, safe='')}")


def inventory_page(ctx: Ctx, rows: list[dict], total: int, f: dict[str, str], owners: list[str]) -> str:
    form = (
        f'<form method="get" action="{e(ctx.url("/inventory"))}" id="filters">'
        + _select("stage", "阶段 Stage", STAGES, f["stage"])
        + _select("tier", "风险等级 Tier", TIERS, f["tier"])
        + _select("owner", "负责人 Owner", owners, f["owner"])
        + '<label><input type="checkbox" name="overdue" value="1" id="f-overdue"'
        + (" checked" if f["overdue"] else "")
        + "> 仅逾期重新验证 Overdue review only</label> "
        + '<button type="submit" id="apply">筛选 Filter</button></form>'
    )
    head = "".join(f"<th>{e(zh)}<br>{e(en)}</th>" for _, zh, en in COLUMNS)
    body = []
    for r in rows:
        cells = []
        for key, _, _ in COLUMNS:
            v = r[key]
            if key == "model":
                cells.append(f'<td><a href="{e(version_url(ctx, r["model"], r["version"]))}">{e(v)}</a></td>')
            elif key == "suspended":
                cells.append(f"<td>{'是 yes' if v else '否 no'}</td>")
            else:
                cells.append(f"<td>{e(v)}</td>")
        body.append(f'<tr class="inv-row">{"".join(cells)}</tr>')
    table = f'<table id="inventory"><tr>{head}</tr>{"".join(body)}</table>'
    count = (
        f'<p id="count">显示 {len(rows)} / 共 {total} 个版本 · Showing {len(rows)} of {total} versions</p>'
    )
    return layout(ctx, "模型台账 Model inventory", form + count + table)


def _kv(pairs: list[tuple[str, Any]]) -> str:
    return "<table>" + "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in pairs) + "</table>"


def _clause_cell(pack: Any, clause_ids: tuple[str, ...] | list[str]) -> str:
    out = []
    for cid in clause_ids:
        try:
            c = pack.clause(cid)
        except Exception:  # a clause of an older pack: show the id alone
            out.append(f"<div><code>{e(cid)}</code></div>")
            continue
        out.append(
            f'<div class="clause"><code>{e(cid)}</code> {e(c.source)} {e(c.item)}<br>'
            f"{e(c.title_zh)} / {e(c.title_en)}</div>"
        )
    return "".join(out)


def version_page(ctx: Ctx, view: Any, pack: Any, records: list[Any], tracked: list[Any]) -> str:
    v = view.version
    stage = getattr(v.stage, "value", v.stage)
    title = f"{v.model} {v.version}"
    pack_url = ctx.url("/evidence/" + quote(v.model, safe="") + "/" + quote(v.version, safe=""))
    parts = [
        f'<p><a id="evidence" href="{e(pack_url)}">'
        "下载证据包 Download evidence pack (zip)</a> · "
        f'<a href="{e(ctx.url("/inventory"))}">返回台账 Back to inventory</a></p>',
        "<h2>基本信息 Summary</h2>",
        _kv(
            [
                ("阶段 Stage", stage + (" (已暂停 suspended)" if v.suspended else "")),
                ("负责人 Owner", v.owner),
                ("风险等级 Risk tier", v.risk_tier),
                ("用途 Purpose", v.purpose),
                ("业务条线 Business line", v.business_line or ""),
                ("登记人 Registered by", v.registered_by),
                ("登记时间 Registered at", when(v.created_at)),
                ("模型地址 Model URI", v.model_uri or ""),
                ("制品摘要 Artifact digest", v.artifact_digest or ""),
            ]
        ),
        "<h2>模型卡 Model card</h2>",
        _kv(
            [
                (k, json.dumps(val, ensure_ascii=False) if not isinstance(val, str) else val)
                for k, val in sorted(v.model_card.items())
            ]
        )
        if v.model_card
        else '<p class="muted">无 None</p>',
        "<h2>生命周期 Lifecycle history</h2><table><tr><th>时间 Time</th><th>操作 Action</th>"
        "<th>阶段变化 Move</th><th>操作人 By</th><th>原因 Reason</th></tr>"
        + "".join(
            f"<tr><td>{e(when(h.at))}</td><td>{e(h.action)}</td><td>{e(h.source)} → {e(h.target)}</td>"
            f"<td>{e(h.actor)}</td><td>{e(h.reason or '')}</td></tr>"
            for h in view.history
        )
        + "</table>",
    ]
    parts.append("<h2>评估结论及发现 Evaluations and findings</h2>")
    for ev in view.evaluations:
        rows = "".join(
            f'<tr class="finding"><td><code>{e(f.control_id)}</code></td><td>{e(f.status)}</td>'
            f"<td>{e(f.severity)}</td><td>{_clause_cell(pack, f.clause_ids)}</td>"
            f"<td>{e(_waiver_text(f.waiver))}</td></tr>"
            for f in ev.findings
            if f.status != "pass"
        )
        parts.append(
            f"<h3>{e(ev.purpose)} #{e(ev.id)}: {e(ev.status)} · {e(when(getattr(ev, 'created_at', None)))}"
            f" · 政策 policy {e(ev.policy_id)}@{e(ev.policy_version)}</h3>"
            + (
                "<table><tr><th>控制项 Control</th><th>结果 Result</th><th>严重性 Severity</th>"
                f"<th>条款 Clauses (中文 / English)</th><th>豁免 Waiver</th></tr>{rows}</table>"
                if rows
                else '<p class="muted">全部通过 All controls passed</p>'
            )
        )
    parts.append(
        "<h2>跟踪问题 Tracked findings</h2>"
        + (
            "<table><tr><th>编号 No.</th><th>控制项 Control</th><th>标题 Title</th><th>状态 Status</th>"
            "<th>严重性 Severity</th><th>条款 Clauses</th><th>责任人 Owner</th><th>到期 Due</th></tr>"
            + "".join(
                f"<tr><td>{e(t.id)}</td><td><code>{e(t.control_id)}</code></td><td>{e(t.title_zh)} / {e(t.title_en)}</td>"
                f"<td>{e(t.status)}</td><td>{e(t.severity)}</td><td>{_clause_cell(pack, t.clause_ids)}</td>"
                f"<td>{e(t.owner)}</td><td>{e(when(t.due_at))}</td></tr>"
                for t in tracked
            )
            + "</table>"
            if tracked
            else '<p class="muted">无 None</p>'
        )
    )
    sig_rows = "".join(_record_row(r) for r in records if r.kind in ("approval", "rejection", "attestation"))
    parts.append(
        '<h2>审批与声明 Approvals and attestations</h2><table id="approvals"><tr><th>类型 Kind</th><th>角色 Role</th>'
        "<th>控制项 Control</th><th>签署人 Signer</th><th>密钥 Key id</th><th>时间 Time</th>"
        f"<th>签名有效 Signature valid</th><th>意见 Comment</th></tr>{sig_rows}</table>"
    )
    waivers = "".join(
        f'<tr class="waiver"><td><code>{e(r.control_id)}</code></td><td>{e(", ".join(r.payload.get("gates") or []))}</td>'
        f"<td>{e(when(r.until))}</td><td>{e(r.actor)}</td><td><code>{e(_key_id(r))}</code></td>"
        f"<td>{_valid(r.counts)}</td><td>{e(r.payload.get('reason'))}</td></tr>"
        for r in records
        if r.kind == "waiver"
    )
    parts.append(
        '<h2>豁免 Waivers</h2><table id="waivers"><tr><th>控制项 Control</th><th>范围 Scope</th><th>到期 Expires</th>'
        f"<th>签署人 Signer</th><th>密钥 Key id</th><th>有效 Valid</th><th>理由 Reason</th></tr>{waivers}</table>"
    )
    return layout(ctx, f"版本 Version {title}", "".join(parts))


def _key_id(r: Any) -> str:
    return str((r.signature or {}).get("key_id", ""))


def _valid(ok: bool) -> str:
    return '<span class="ok">是 yes</span>' if ok else '<span class="bad">否 no</span>'


def _record_row(r: Any) -> str:
    return (
        f'<tr class="signed"><td>{e(r.kind)}</td><td>{e(r.role or "")}</td><td><code>{e(r.control_id or "")}</code></td>'
        f"<td>{e(r.actor)}</td><td><code>{e(_key_id(r))}</code></td><td>{e(when(r.at))}</td>"
        f"<td>{_valid(r.valid_signature)}</td><td>{e(r.payload.get('comment') or '')}</td></tr>"
    )


def _waiver_text(w: dict | None) -> str:
    if not w:
        return ""
    return f"{w.get('by')} → {str(w.get('until'))[:10]}: {w.get('reason') or ''}"


def audit_page(ctx: Ctx, events: list[Any], page: int, pages: int, total: int) -> str:
    rows = "".join(
        f'<tr class="event"><td><a href="{e(ctx.url(f"/audit/proof/{ev.seq}"))}">#{e(ev.seq)}</a></td>'
        f"<td>{e(when(ev.at))}</td><td>{e(ev.event)}</td><td>{e(ev.actor)}</td>"
        f"<td>{e(ev.model or '')} {e(ev.version or '')}</td>"
        f'<td><a href="{e(ctx.url(f"/audit/proof/{ev.seq}"))}">包含证明 Inclusion proof</a></td></tr>'
        for ev in events
    )
    nav = []
    if page > 1:
        nav.append(f'<a id="prev" href="{e(ctx.url("/audit", page=page - 1))}">上一页 Newer</a>')
    if page < pages:
        nav.append(f'<a id="next" href="{e(ctx.url("/audit", page=page + 1))}">下一页 Older</a>')
    body = (
        f"<p>共 {total} 条事件，第 {page}/{pages} 页 · {total} events, page {page} of {pages} (newest first)</p>"
        f"<p>{' · '.join(nav)}</p>"
        '<table id="events"><tr><th>序号 Seq</th><th>时间 Time</th><th>事件 Event</th><th>操作人 Actor</th>'
        f"<th>模型 Model</th><th>证明 Proof</th></tr>{rows}</table>"
    )
    return layout(ctx, "审计日志 Audit log", body)


def proof_page(ctx: Ctx, p: dict, ok: bool, tree_hash: str) -> str:
    path = (
        "".join(f"<li><code>{e(h)}</code></li>" for h in p["proof"])
        or "<li>(空 empty: single-leaf tree)</li>"
    )
    body = (
        _kv(
            [
                ("事件序号 Event seq", p["seq"]),
                ("叶哈希 Leaf hash", p["leaf_hash"]),
                ("树大小 Tree size", p["tree_size"]),
                ("根哈希 Root hash", p["root_hash"]),
                ("哈希算法 Tree hash", tree_hash),
            ]
        )
        + f"<h2>审计路径 Audit path</h2><ol>{path}</ol>"
    )
    verdict = (
        '<p id="verdict" class="ok">已验证：是 / Verified: yes</p>'
        if ok
        else '<p id="verdict" class="bad">已验证：否 / Verified: no</p>'
    )
    back = f'<p><a href="{e(ctx.url("/audit"))}">返回审计日志 Back to the audit log</a></p>'
    return layout(ctx, f"包含证明 Inclusion proof #{p['seq']}", verdict + body + back)


def checkpoint_page(ctx: Ctx, body: dict | None, report: Any) -> str:
    if body is None:
        return layout(
            ctx,
            "检查点验证 Checkpoint verification",
            '<p id="verdict" class="muted">尚无签名检查点 / No signed checkpoint has been issued yet '
            "(<code>modelreg audit checkpoint</code>)</p>",
        )
    verdict = (
        f'<p id="verdict" class="ok">一致：是 / Consistent: yes — 当前日志 {e(report.size)} 条事件扩展了该检查点 '
        f"/ the current log of {e(report.size)} events extends this checkpoint</p>"
        if report.ok
        else f'<p id="verdict" class="bad">一致：否 / Consistent: no — {e(report.problem)}</p>'
    )
    info = _kv(
        [
            ("检查点大小 Checkpoint size", body.get("size")),
            ("检查点根哈希 Checkpoint root", body.get("root_hash")),
            ("签发时间 Issued at", body.get("time")),
            ("签名密钥 Key id", body.get("key_id")),
            ("当前根哈希 Current root", report.root_hash),
        ]
    )
    return layout(ctx, "检查点验证 Checkpoint verification", verdict + info)
