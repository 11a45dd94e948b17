"""Bilingual (zh/en) pages of an evidence pack: the index, the model card and the algorithm disclosure.

Plain string templates (``string.Template``, ``templates/page.html`` and ``style.css``), no jinja2: the pages
must be self-contained (no script, font or image from outside the pack) and every link relative. The model
card and the disclosure are built once as a small block list and written both as Markdown and as HTML, so
the two never say different things.
"""

from __future__ import annotations

import csv
import html
import io
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from string import Template
from typing import Any
from urllib.parse import quote

from modelreg import clock

STATUS_LABEL = {
    "pass": "通过 pass",
    "warn": "预警 warn",
    "fail": "未通过 fail",
    "error": "错误 error",
    "waived": "已豁免 waived",
    "attested": "已声明 attested",
    "not_attested": "未声明 not attested",
    "met": "已满足 met",
    "unmet": "未满足 unmet",
    "not_assessed": "未评估 not assessed",
    "not_run": "未运行 not run",
    "n/a": "不适用 n/a",
    "valid": "签名有效 valid",
    "invalid": "签名无效 invalid",
    "ok": "正常 ok",
    "insufficient_data": "数据不足 insufficient data",
    "invalid_input": "输入无效 invalid input",
}
PERFORMANCE_METRICS = (
    "auc",
    "gini",
    "ks_statistic",
    "accuracy",
    "precision",
    "recall",
    "brier",
    "positive_rate",
)
FAIRNESS_METRICS = (
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equalized_odds_difference",
    "equal_opportunity_difference",
)


def _template(name: str) -> str:
    return resources.files("modelreg.evidence").joinpath("templates", name).read_text(encoding="utf-8")


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def href(path: str) -> str:
    """A relative link to a file in the pack (each segment percent-encoded)."""
    return "/".join(quote(part) for part in path.split("/"))


def link(path: str, text: str | None = None) -> str:
    return f'<a href="{href(path)}">{esc(text or path)}</a>'


def badge(status: str | None) -> str:
    s = status or "n/a"
    return f'<span class="status s-{esc(s)}">{esc(STATUS_LABEL.get(s, s))}</span>'


def num(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.4g}"
    return str(value)


def bi(zh: str, en: str) -> str:
    return f'{esc(zh)} <span class="en">{esc(en)}</span>'


def page(title: str, kicker: str, body: str, footer: str) -> str:
    return Template(_template("page.html")).substitute(
        title=esc(title), kicker=esc(kicker), body=body, footer=footer, style=_template("style.css")
    )


def table(headers: list[str], rows: Iterable[Iterable[str]], cls: str = "") -> str:
    """``headers`` and cells are HTML already (escape before)."""
    head = "".join(f"<th>{h}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    if not body:
        body = f'<tr><td colspan="{len(headers)}" class="note">无 none</td></tr>'
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def kv(rows: list[tuple[str, str]]) -> str:
    return (
        '<table class="kv"><tbody>'
        + "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
        + "</tbody></table>"
    )


# -- documents written both as Markdown and HTML -------------------------------------------------------


@dataclass
class Doc:
    title: str
    blocks: list[tuple] = field(default_factory=list)

    def h(self, zh: str, en: str) -> None:
        self.blocks.append(("h", zh, en))

    def p(self, text: str) -> None:
        self.blocks.append(("p", text))

    def ul(self, items: list[str]) -> None:
        self.blocks.append(("ul", items))

    def table(self, headers: list[str], rows: list[list[Any]]) -> None:
        self.blocks.append(("table", headers, rows))

    def markdown(self) -> str:
        out = [f"# {self.title}", ""]
        for b in self.blocks:
            if b[0] == "h":
                out += [f"## {b[1]} / {b[2]}", ""]
            elif b[0] == "p":
                out += [b[1], ""]
            elif b[0] == "ul":
                out += [f"- {i}" for i in b[1]] + [""]
            elif b[0] == "table":
                cell = lambda v: num(v).replace("|", "\\|").replace("\n", " ")  # noqa: E731
                out.append("| " + " | ".join(cell(h) for h in b[1]) + " |")
                out.append("|" + "---|" * len(b[1]))
                out += ["| " + " | ".join(cell(v) for v in r) + " |" for r in b[2]] or [
                    "| " + " | ".join("–" for _ in b[1]) + " |"
                ]
                out.append("")
        return "\n".join(out).rstrip() + "\n"

    def html(self, kicker: str, footer: str) -> str:
        parts = []
        for b in self.blocks:
            if b[0] == "h":
                parts.append(f"<h2>{bi(b[1], b[2])}</h2>")
            elif b[0] == "p":
                parts.append(f"<p>{esc(b[1])}</p>")
            elif b[0] == "ul":
                parts.append("<ul>" + "".join(f"<li>{esc(i)}</li>" for i in b[1]) + "</ul>")
            elif b[0] == "table":
                parts.append(table([esc(h) for h in b[1]], [[esc(num(v)) for v in r] for r in b[2]]))
        return page(self.title, kicker, "\n".join(parts), footer)


# -- facts shared by the pages ---------------------------------------------------------------------------


def latest_by_purpose(evaluations: list) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for ev in sorted(evaluations, key=lambda e: (e.created_at, e.id)):
        out[ev.purpose] = ev
    return out


def main_evaluation(evaluations: list) -> Any | None:
    """The evaluation whose numbers describe the model: the latest validation, else monitoring, else pre-check."""
    latest = latest_by_purpose(evaluations)
    for purpose in ("validation", "monitoring", "precheck"):
        if purpose in latest:
            return latest[purpose]
    return None


def metric_value(
    result: dict | None, name: str, feature: str | None = None, group: str | None = None
) -> float | None:
    for m in (result or {}).get("metrics", []):
        if m.get("name") == name and m.get("feature") == feature and m.get("group") == group:
            return m.get("value")
    return None


def shap_importance(result: dict | None) -> list[tuple[str, float]]:
    rows = [
        (m["feature"], m["value"])
        for m in (result or {}).get("metrics", [])
        if m.get("name") == "mean_abs_shap" and m.get("value") is not None
    ]
    return sorted(rows, key=lambda r: -r[1])


def directions(reason_codes_csv: bytes | None) -> dict[str, float]:
    """Per feature, the correlation between its value and its SHAP contribution in the reason codes: > 0
    means a higher value raises the score, < 0 lowers it (the sign of a linear model's coefficient)."""
    if not reason_codes_csv:
        return {}
    pairs: dict[str, list[tuple[float, float]]] = {}
    for row in csv.DictReader(io.StringIO(reason_codes_csv.decode("utf-8", "replace"))):
        try:
            x, c = float(row["value"]), float(row["contribution"])
        except (KeyError, TypeError, ValueError):
            continue
        if math.isfinite(x) and math.isfinite(c):
            pairs.setdefault(row.get("feature", ""), []).append((x, c))
    out = {}
    for feat, pts in pairs.items():
        if len(pts) < 3:
            continue
        n = len(pts)
        mx = sum(p[0] for p in pts) / n
        mc = sum(p[1] for p in pts) / n
        sxx = sum((p[0] - mx) ** 2 for p in pts)
        scc = sum((p[1] - mc) ** 2 for p in pts)
        if sxx == 0 or scc == 0:
            continue
        out[feat] = sum((p[0] - mx) * (p[1] - mc) for p in pts) / math.sqrt(sxx * scc)
    return out


def feature_rows(ev: Any, card: dict) -> list[dict]:
    """Features of the evaluated column spec with their data classification (NFRA 2025 item 26)."""
    if ev is None:
        return []
    spec = (ev.data or {}).get("spec") or {}
    sensitive = set(spec.get("sensitive") or [])
    declared_pi = (
        set(card.get("personal_information") or [])
        if isinstance(card.get("personal_information"), list)
        else set()
    )
    out = []
    for f in spec.get("features") or []:
        name = f.get("name")
        pi = bool(f.get("personal_information")) or name in declared_pi or name in sensitive
        out.append(
            {
                "name": name,
                "label_zh": f.get("label_zh") or "",
                "label_en": f.get("label_en") or "",
                "kind": f.get("kind"),
                "monotone": f.get("monotone"),
                "personal_information": pi,
                "sensitive": name in sensitive,
                "role": "model input",
            }
        )
    for name in sorted(sensitive - {r["name"] for r in out}):
        out.append(
            {
                "name": name,
                "label_zh": "",
                "label_en": "",
                "kind": "categorical",
                "monotone": None,
                "personal_information": True,
                "sensitive": True,
                "role": "fairness analysis only",
            }
        )
    return out


def _pi_text(r: dict) -> str:
    if r["sensitive"]:
        return "敏感个人信息 sensitive PI"
    return "个人信息 PI" if r["personal_information"] else "非个人信息 not PI"


# -- model card -----------------------------------------------------------------------------------------


def _card_field(card: dict, key: str) -> str:
    zh, en = card.get(f"{key}_zh"), card.get(key)
    if zh and en:
        return f"{zh} / {en}"
    return str(zh or en or "未填写 not stated")


def model_card(ctx: Any) -> Doc:
    c = ctx.collected
    v = c.version
    card = v.model_card or {}
    ev = main_evaluation(c.evaluations)
    doc = Doc(f"模型卡 Model card: {v.model} {v.version}")
    doc.h("概况", "Summary")
    doc.table(
        ["项目 Item", "内容 Value"],
        [
            ["模型 Model", f"{v.model} {v.version}"],
            ["阶段 Stage", v.stage.value + (" (暂停 suspended)" if v.suspended else "")],
            ["用途 Purpose", v.purpose],
            ["负责人 Owner", v.owner],
            ["业务条线 Business line", v.business_line or "–"],
            ["风险等级 Risk tier", v.risk_tier],
            ["模型制品摘要 Model artifact digest", v.artifact_digest or "–"],
        ],
    )
    doc.h("预期用途与排除用途", "Intended and excluded uses")
    doc.ul(
        [
            f"预期用途 Intended use: {_card_field(card, 'intended_use')}",
            f"排除用途 Excluded uses: {_card_field(card, 'excluded_uses')}",
        ]
    )
    doc.h("训练与评估数据", "Training and evaluation data")
    rows = [[d.role, d.name, d.rows, d.digest, clock.isoformat(d.at)] for d in c.datasets]
    for e in c.evaluations:
        for fp in (e.data or {}).get("fingerprints") or []:
            rows.append(
                [
                    f"{e.purpose} #{e.id} {fp.get('role')}",
                    "(evaluation input)",
                    fp.get("rows"),
                    fp.get("digest"),
                    clock.isoformat(e.created_at),
                ]
            )
    doc.table(["角色 Role", "名称 Name", "行数 Rows", "SHA-256 指纹 Fingerprint", "时间 At"], rows)
    doc.h("特征与数据分类（个人信息标注）", "Features and data classification (personal-information flags)")
    feats = feature_rows(ev, card)
    doc.table(
        [
            "特征 Feature",
            "中文名 Label (zh)",
            "Label (en)",
            "类型 Kind",
            "单调性 Monotone",
            "分类 Classification",
            "用途 Use",
        ],
        [
            [
                r["name"],
                r["label_zh"] or "–",
                r["label_en"] or "–",
                r["kind"],
                r["monotone"] if r["monotone"] else "–",
                _pi_text(r),
                r["role"],
            ]
            for r in feats
        ],
    )
    doc.p(
        "依据《实施方案》第26条，个人信息与敏感个人信息特征已标注。Personal-information features are flagged per NFRA 2025 item 26 (column-spec flag, the model card's personal_information list, and every sensitive attribute)."
    )
    results = c.monitor_results.get(ev.id, {}) if ev else {}
    doc.h("模型表现", "Performance")
    perf = results.get("performance")
    doc.table(
        ["指标 Metric", "值 Value"],
        [[m, metric_value(perf, m)] for m in PERFORMANCE_METRICS if metric_value(perf, m) is not None],
    )
    doc.h("公平性", "Fairness")
    fair = results.get("fairness")
    frows = []
    for m in (fair or {}).get("metrics", []):
        if m.get("name") in FAIRNESS_METRICS:
            frows.append(
                [m.get("feature") or "全部 all (worst case)", m["name"], m.get("value"), m.get("status")]
            )
    doc.table(["属性 Attribute", "指标 Metric", "值 Value", "状态 Status"], frows)
    doc.h("可解释性", "Explainability")
    imp = shap_importance(results.get("explainability"))
    total = sum(v for _, v in imp) or 1.0
    doc.table(
        ["特征 Feature", "平均|SHAP| Mean |SHAP|", "占比 Share"],
        [[f, val, f"{val / total:.1%}"] for f, val in imp],
    )
    doc.h("局限性", "Limitations")
    lim = [f"{_card_field(card, 'limitations')}"]
    if ev is not None:
        for f in ev.findings:
            if f.status in ("fail", "error", "warn", "waived"):
                lim.append(
                    f"{f.control_id} ({f.status}): {f.detail.get('title_zh', '')} / {f.detail.get('title_en', '')} — {f.detail.get('reason', '')}"
                )
    doc.ul(lim)
    extra = {k: v for k, v in card.items() if k not in CARD_KNOWN}
    if extra:
        doc.h("其他模型卡字段", "Other model card fields")
        doc.table(
            ["字段 Field", "值 Value"],
            [
                [
                    k,
                    v
                    if not isinstance(v, list | dict)
                    else ", ".join(map(str, v))
                    if isinstance(v, list)
                    else str(v),
                ]
                for k, v in sorted(extra.items())
            ],
        )
    return doc


CARD_KNOWN = {
    f"{k}{s}"
    for k in ("intended_use", "excluded_uses", "limitations", "human_review", "decision")
    for s in ("", "_zh")
} | {"personal_information"}


# -- algorithm disclosure (算法信息披露) -----------------------------------------------------------------


def disclosure(ctx: Any) -> Doc:
    c = ctx.collected
    v = c.version
    card = v.model_card or {}
    ev = main_evaluation(c.evaluations)
    results = c.monitor_results.get(ev.id, {}) if ev else {}
    spec = (ev.data or {}).get("spec") if ev else None
    target = (spec or {}).get("target") or "目标事件 the target event"
    doc = Doc(f"算法信息披露 Algorithm disclosure: {v.model} {v.version}")
    doc.h("模型做出什么决定", "What decisions the model makes")
    doc.p(f"本模型用于：{v.purpose}。业务条线：{v.business_line or '未填写'}。风险等级：{v.risk_tier}。")
    doc.p(
        f"The model is used for: {v.purpose}. Business line: {v.business_line or 'not stated'}. Risk tier: {v.risk_tier}."
    )
    doc.p(f"预期用途 / Intended use: {_card_field(card, 'intended_use')}")
    doc.p(f"不得用于 / Not used for: {_card_field(card, 'excluded_uses')}")
    doc.h("主要因素及其影响方向", "Main factors and how they move a decision")
    imp = shap_importance(results.get("explainability"))
    dirs = directions(ctx.reason_codes.get(ev.id) if ev else None)
    labels = {r["name"]: r for r in feature_rows(ev, card)}
    total = sum(val for _, val in imp) or 1.0
    rows = []
    for f, val in imp[:10]:
        d = dirs.get(f)
        lab = labels.get(f, {})
        if lab.get("kind") == "categorical":
            zh, en = "因类别而异（见原因码）", "depends on the category (see the reason codes)"
        elif d is None or abs(d) < 0.05:
            zh, en = "方向不一致或不明显", "no consistent direction"
        elif d > 0:
            zh, en = "数值越高，评分越高", "higher values raise the score"
        else:
            zh, en = "数值越高，评分越低", "higher values lower the score"
        shown = " / ".join(x for x in (lab.get("label_zh"), lab.get("label_en")) if x)
        name = f + (f"（{shown}）" if shown else "")
        rows.append([name, f"{val / total:.1%}", f"{zh} / {en}"])
    doc.table(["因素 Factor", "相对重要性 Relative importance", "影响方向 Direction"], rows)
    doc.p(
        f"评分是模型估计的“{target}”发生概率；评分越高，风险越高。重要性为SHAP全局平均绝对贡献，方向由各决定的原因码中特征值与贡献的相关性得出。"
    )
    doc.p(
        f"The score is the model's estimated probability of “{target}”; a higher score means higher risk. Importance is the mean "
        "absolute SHAP contribution; the direction is the correlation between a factor's value and its contribution in the "
        "per-decision reason codes."
    )
    doc.h("运行逻辑", "Operating logic")
    perf = results.get("performance") or {}
    threshold = ((results.get("robustness") or {}).get("params") or {}).get("threshold")
    doc.ul(
        [
            f"模型对每位申请人计算评分，并按阈值{num(threshold) if threshold is not None else '（由业务设定）'}形成建议；"
            "最终决定按本行审批政策作出。",
            f"The model computes a score for each applicant and compares it with the threshold {num(threshold) if threshold is not None else '(set by the business)'}; "
            "the final decision follows the bank's credit policy.",
            f"验证结果 Validation: AUC {num(metric_value(perf, 'auc'))}, KS {num(metric_value(perf, 'ks_statistic'))}, "
            f"样本数 rows {num(((ev.data or {}).get('fingerprints') or [{}])[0].get('rows')) if ev else '–'}.",
            "模型在上线后持续监测数据漂移、表现与公平性；触发阈值时自动生成问题单，必要时暂停模型。"
            " After deployment the model is monitored for drift, performance and fairness; breaches raise findings and can suspend it.",
        ]
    )
    doc.h("已知风险与局限", "Known risks and limitations")
    risks = [_card_field(card, "limitations")]
    if ev is not None:
        for f in ev.findings:
            if f.status in ("fail", "error", "warn", "waived"):
                risks.append(
                    f"{f.detail.get('title_zh', f.control_id)} / {f.detail.get('title_en', '')}: {f.status}"
                )
    doc.ul(risks)
    doc.h("如何申请人工复核", "How to ask for human review")
    review_zh = card.get("human_review_zh") or (
        "如您对结果有异议，可通过营业网点、客服热线或手机银行提出人工复核申请；未通过线上审批的客户可申请线下补充渠道（《实施方案》第5条）。"
    )
    review_en = card.get("human_review") or (
        "If you disagree with a decision you can ask for a human review at a branch, through the customer hotline or in the "
        "mobile app; customers declined online can apply through the offline channel (NFRA 2025 item 5)."
    )
    doc.p(review_zh)
    doc.p(review_en)
    doc.p(f"模型负责人 Model owner: {v.owner}; 业务条线 business line: {v.business_line or '–'}.")
    return doc


# -- the policy matrix ------------------------------------------------------------------------------------


def policy_matrix(ctx: Any) -> dict:
    """Clause → control → result → evidence file, with coverage figures."""
    c = ctx.collected
    pack = c.policy
    if pack is None:
        return {"available": False, "rows": [], "summary": {}}
    tier = c.version.risk_tier
    # The latest finding per control (a later evaluation supersedes an earlier one).
    latest_finding: dict[str, tuple[Any, Any]] = {}
    for ev in sorted(c.evaluations, key=lambda e: (e.created_at, e.id)):
        for f in ev.findings:
            latest_finding[f.control_id] = (ev, f)
    attested: dict[str, list] = {}
    for rec in c.signed:
        if rec.kind == "attestation" and rec.control_id:
            attested.setdefault(rec.control_id, []).append(rec)
    unmet_by_control: dict[str, list[str]] = {}
    for gate, items in (c.gate_unmet or {}).items():
        for u in items:
            if u.get("control_id"):
                unmet_by_control.setdefault(u["control_id"], []).append(
                    f"{gate}: {u.get('message_zh')} / {u.get('message_en')}"
                )

    def control_row(ctl) -> dict:
        row: dict[str, Any] = {
            "control_id": ctl.id,
            "title_zh": ctl.title_zh,
            "title_en": ctl.title_en,
            "kind": ctl.kind,
            "gates": list(ctl.gates),
            "severity": ctl.severity,
            "applies": (tier in ctl.tiers) and not ctl.disabled,
            "result": "n/a",
            "detail": "",
            "evidence": [],
        }
        if not row["applies"]:
            row["detail"] = "disabled" if ctl.disabled else f"not required for tier {tier}"
            return row
        if ctl.kind == "check":
            hit = latest_finding.get(ctl.id)
            if hit is None:
                row["result"] = "not_run"
                row["detail"] = "no evaluation of this version ran this check"
            else:
                ev, f = hit
                row["result"] = f.status
                d = f.detail
                row["detail"] = (
                    f"{d.get('metric')} = {num(d.get('value'))} ({d.get('comparator') or ''} {num(d.get('threshold'))}); {ev.purpose} #{ev.id}"
                )
                if f.waiver:
                    row["detail"] += f"; waived by {f.waiver.get('by')} until {f.waiver.get('until')}"
                row["evidence"] = [ctx.paths.evaluation(ev.id)]
                monitor = d.get("monitor") or (ctl.check.monitor if ctl.check else None)
                if monitor and monitor in c.monitor_results.get(ev.id, {}):
                    row["evidence"].append(ctx.paths.result(ev.id, monitor))
        elif ctl.kind == "attestation":
            recs = attested.get(ctl.id, [])
            good = [r for r in recs if r.counts]
            if good:
                r = good[-1]
                row["result"] = "attested"
                row["detail"] = f"{r.actor} ({r.role}) {clock.isoformat(r.at)}"
            elif recs:
                row["result"] = "invalid"
                row["detail"] = "attestation present but its signature does not verify"
            else:
                row["result"] = "not_attested"
                row["detail"] = (
                    f"needs a signed attestation by a {ctl.attestation.role}" if ctl.attestation else ""
                )
            row["evidence"] = [ctx.paths.signed(r.id, r.kind) for r in recs]
        else:
            assessed = sorted(set(ctl.gates) & set(c.gate_unmet or {}))
            if c.gate_unmet is None:
                row["result"] = "not_assessed"
                row["detail"] = "gate requirements are not re-run for an as-of pack"
            elif not assessed:
                row["result"] = "not_assessed"
                row["detail"] = (
                    "checked at the " + ", ".join(ctl.gates) + " gate only, which a pack does not run"
                )
            elif ctl.id in unmet_by_control:
                row["result"] = "unmet"
                row["detail"] = "; ".join(unmet_by_control[ctl.id])
            else:
                row["result"] = "met"
                row["detail"] = "requirement met at packing time (gates " + ", ".join(assessed) + ")"
            row["evidence"] = [ctx.paths.version_file]
        return row

    rows = []
    covered = out_of_scope = 0
    for clause in pack.clauses:
        ctls = [
            ctl
            for ctl in pack.controls
            if (clause.id in ctl.clauses or clause.id in ctl.secondary_clauses) and not ctl.disabled
        ]
        oos = pack.out_of_scope.get(clause.id)
        if oos is not None:
            scope = "out_of_scope"
            out_of_scope += 1
        elif ctls:
            scope = "covered"
            covered += 1
        else:
            scope = "uncovered"
        rows.append(
            {
                "clause_id": clause.id,
                "source": clause.source,
                "item": clause.item,
                "title_zh": clause.title_zh,
                "title_en": clause.title_en,
                "scope": scope,
                "out_of_scope_reason_zh": oos.reason_zh if oos else None,
                "out_of_scope_reason_en": oos.reason_en if oos else None,
                "controls": [control_row(ctl) for ctl in ctls],
            }
        )
    results: dict[str, int] = {}
    seen = set()
    for r in rows:
        for ctl in r["controls"]:
            if ctl["control_id"] not in seen and ctl["applies"]:
                seen.add(ctl["control_id"])
                results[ctl["result"]] = results.get(ctl["result"], 0) + 1
    summary = {
        "policy": f"{pack.id}@{pack.version}",
        "tier": tier,
        "clauses_total": len(rows),
        "clauses_covered": covered,
        "clauses_out_of_scope": out_of_scope,
        "clauses_uncovered": len(rows) - covered - out_of_scope,
        "controls_applicable": len(seen),
        "control_results": dict(sorted(results.items())),
    }
    return {"available": True, "summary": summary, "rows": rows}


# -- the index --------------------------------------------------------------------------------------------


def index_html(ctx: Any, files: dict[str, bytes]) -> str:
    c = ctx.collected
    v = c.version
    m = ctx.matrix
    parts: list[str] = []
    toc = [
        ("summary", "模型概况", "Model summary"),
        ("documents", "文档", "Documents"),
        ("lifecycle", "生命周期", "Lifecycle history"),
        ("matrix", "政策矩阵", "Policy matrix"),
        ("findings", "发现与豁免", "Findings and waivers"),
        ("signed", "审批与声明", "Approvals and attestations"),
        ("monitors", "监测结果", "Monitor results"),
        ("audit", "审计记录", "Audit trail"),
        ("provenance", "来源信息", "Provenance"),
        ("files", "文件清单", "Files"),
        ("verify", "如何验证", "How to verify"),
    ]
    parts.append(
        "<nav><ul>"
        + "".join(f'<li><a href="#{i}">{bi(zh, en)}</a></li>' for i, zh, en in toc)
        + "</ul></nav>"
    )

    parts.append(f'<h2 id="summary">{bi("模型概况", "Model summary")}</h2>')
    parts.append(
        kv(
            [
                (bi("模型", "Model"), f'<b id="model-name">{esc(v.model)}</b> {esc(v.version)}'),
                (
                    bi("阶段", "Stage"),
                    esc(v.stage.value) + (" " + badge("fail") + " 暂停 suspended" if v.suspended else ""),
                ),
                (bi("用途", "Purpose"), esc(v.purpose)),
                (bi("负责人", "Owner"), esc(v.owner)),
                (bi("业务条线", "Business line"), esc(v.business_line or "–")),
                (bi("风险等级", "Risk tier"), esc(v.risk_tier)),
                (bi("登记", "Registered"), f"{esc(v.registered_by)} {esc(clock.isoformat(v.created_at))}"),
                (bi("MLflow 运行", "MLflow run"), f"<code>{esc(v.mlflow_run_id or '–')}</code>"),
                (bi("模型地址", "Model URI"), f"<code>{esc(v.model_uri or '–')}</code>"),
                (bi("模型制品摘要", "Artifact digest"), f"<code>{esc(v.artifact_digest or '–')}</code>"),
                (
                    bi("政策包", "Policy pack"),
                    esc(f"{c.policy_ref.get('id')}@{c.policy_ref.get('version')}")
                    + f" <code>{esc(c.policy_ref.get('digest'))}</code>",
                ),
                (bi("审计日志", "Audit log"), f"size {c.tree_size}, root <code>{c.root_hash.hex()}</code>"),
                (
                    bi("截至时间", "As of"),
                    esc(clock.isoformat(c.as_of)) if c.as_of else "打包时 at packing time",
                ),
            ]
        )
    )
    parts.append(f'<h2 id="documents">{bi("文档", "Documents")}</h2>')
    parts.append(
        "<ul>"
        + f"<li>{link('model_card.html', '模型卡 Model card (HTML)')} · {link('model_card.md', 'Markdown')}</li>"
        + f"<li>{link('disclosure.html', '算法信息披露 Algorithm disclosure (HTML)')} · {link('disclosure.md', 'Markdown')}</li>"
        + f"<li>{link('policy/matrix.json', '政策矩阵 Policy matrix (JSON)')} · {link(ctx.paths.policy_file, '政策包 Policy pack (JSON)')}</li>"
        + f"<li>{link('provenance.json', '来源信息 Provenance (JSON)')} · {link(ctx.paths.version_file, '版本记录 Version record (JSON)')}</li>"
        + "</ul>"
    )

    parts.append(f'<h2 id="lifecycle">{bi("生命周期", "Lifecycle history")}</h2>')
    parts.append(
        table(
            [
                bi("时间", "At"),
                bi("动作", "Action"),
                bi("迁移", "Move"),
                bi("执行人", "By"),
                bi("原因", "Reason"),
            ],
            [
                [
                    esc(clock.isoformat(h.at)),
                    esc(h.action),
                    f"{esc(h.source)} → {esc(h.target)}",
                    esc(h.actor),
                    esc(h.reason or ""),
                ]
                for h in c.history
            ],
        )
    )

    parts.append(f'<h2 id="matrix">{bi("政策矩阵", "Policy matrix")}</h2>')
    if not m["available"]:
        parts.append(
            '<p class="note">政策包不可用 the policy pack could not be loaded: '
            + esc("; ".join(c.notes))
            + "</p>"
        )
    else:
        s = m["summary"]
        parts.append(
            '<div class="figures">'
            + f'<div class="figure" id="clauses-covered"><b>{s["clauses_covered"]} / {s["clauses_total"]}</b>{bi("条款已覆盖", "clauses covered")}</div>'
            + f'<div class="figure" id="clauses-out-of-scope"><b>{s["clauses_out_of_scope"]}</b>{bi("不适用条款", "out of scope")}</div>'
            + f'<div class="figure"><b>{s["clauses_uncovered"]}</b>{bi("未覆盖", "uncovered")}</div>'
            + f'<div class="figure"><b>{s["controls_applicable"]}</b>{bi("适用控制项", "applicable controls")} ({esc(s["tier"])})</div>'
            + "</div>"
        )
        parts.append("<p>" + " ".join(f"{badge(k)} {n}" for k, n in s["control_results"].items()) + "</p>")
        rows = []
        for r in m["rows"]:
            clause_cell = f'<b>{esc(r["clause_id"])}</b><br>{esc(r["title_zh"])}<br><span class="en">{esc(r["title_en"])}</span>'
            if r["scope"] == "out_of_scope":
                rows.append(
                    [
                        clause_cell,
                        badge("out_of_scope"),
                        esc(f"{r['out_of_scope_reason_zh']} / {r['out_of_scope_reason_en']}"),
                        "",
                        "",
                    ]
                )
                continue
            if not r["controls"]:
                rows.append([clause_cell, badge("uncovered"), "", "", ""])
                continue
            for i, ctl in enumerate(r["controls"]):
                rows.append(
                    [
                        clause_cell if i == 0 else "",
                        f'<code>{esc(ctl["control_id"])}</code><br>{esc(ctl["title_zh"])}<br><span class="en">{esc(ctl["title_en"])}</span>',
                        badge(ctl["result"]) + f'<br><span class="note">{esc(ctl["detail"])}</span>',
                        esc(ctl["kind"]) + " · " + esc(ctl["severity"]),
                        "<br>".join(link(p) for p in ctl["evidence"]),
                    ]
                )
        parts.append(
            '<table id="policy-matrix"><thead><tr>'
            + "".join(
                f"<th>{h}</th>"
                for h in [
                    bi("条款", "Clause"),
                    bi("控制项", "Control"),
                    bi("结果", "Result"),
                    bi("类型", "Kind"),
                    bi("证据文件", "Evidence"),
                ]
            )
            + "</tr></thead><tbody>"
            + "".join("<tr>" + "".join(f"<td>{x}</td>" for x in r) + "</tr>" for r in rows)
            + "</tbody></table>"
        )

    parts.append(f'<h2 id="findings">{bi("发现与豁免", "Findings and waivers")}</h2>')
    for ev in sorted(c.evaluations, key=lambda e: (e.created_at, e.id)):
        counts = ", ".join(f"{k} {n}" for k, n in sorted(ev.counts().items())) or "–"
        parts.append(
            f"<h3>{esc(ev.purpose)} #{ev.id} · {esc(clock.isoformat(ev.created_at))} · {esc(ev.created_by)} · {badge(ev.status)} <span class='note'>{esc(counts)}</span> · {link(ctx.paths.evaluation(ev.id), 'JSON')}</h3>"
        )
        parts.append(
            table(
                [
                    bi("控制项", "Control"),
                    bi("状态", "Status"),
                    bi("严重度", "Severity"),
                    bi("值", "Value"),
                    bi("条款", "Clauses"),
                    bi("说明", "Reason"),
                ],
                [
                    [
                        f"<code>{esc(f.control_id)}</code> {esc(f.detail.get('title_zh', ''))}",
                        badge(f.status),
                        esc(f.severity),
                        esc(
                            f"{f.detail.get('metric') or ''} {num(f.detail.get('value'))} {f.detail.get('comparator') or ''} {num(f.detail.get('threshold'))}"
                        ),
                        esc(", ".join(f.clause_ids)),
                        esc(f.detail.get("reason", ""))
                        + (
                            f"<br>豁免 waived by {esc(f.waiver.get('by'))} until {esc(f.waiver.get('until'))}: {esc(f.waiver.get('reason'))}"
                            if f.waiver
                            else ""
                        ),
                    ]
                    for f in ev.findings
                ],
            )
        )
    waivers = [r for r in c.signed if r.kind == "waiver"]
    parts.append(f"<h3>{bi('豁免', 'Waivers')}</h3>")
    parts.append(
        table(
            [
                bi("控制项", "Control"),
                bi("批准人", "By"),
                bi("有效期至", "Until"),
                bi("原因", "Reason"),
                bi("签名", "Signature"),
                bi("文件", "File"),
            ],
            [
                [
                    esc(w.control_id),
                    esc(w.actor),
                    esc(w.payload.get("until")),
                    esc(w.payload.get("reason")),
                    badge("valid" if w.valid_signature else "invalid")
                    + f" <code>{esc(w.signature.get('key_id'))}</code>",
                    link(ctx.paths.signed(w.id, w.kind)),
                ]
                for w in waivers
            ],
        )
    )

    parts.append(f'<h2 id="signed">{bi("审批与声明", "Approvals and attestations")}</h2>')
    parts.append(
        table(
            [
                bi("类型", "Kind"),
                bi("签署人", "Signer"),
                bi("角色", "Role"),
                bi("对象", "Subject"),
                bi("时间", "At"),
                bi("签名", "Signature"),
                bi("文件", "File"),
            ],
            [
                [
                    esc(r.kind),
                    esc(r.actor),
                    esc(r.role or ""),
                    esc(r.control_id or r.payload.get("decision") or ""),
                    esc(clock.isoformat(r.at)),
                    badge("valid" if r.valid_signature else "invalid")
                    + f" <code>{esc(r.signature.get('key_id'))}</code>",
                    link(ctx.paths.signed(r.id, r.kind)),
                ]
                for r in c.signed
                if r.kind != "waiver"
            ],
        )
    )
    parts.append(
        '<p class="note">签名状态为打包时登记库的核验结果；`modelreg evidence verify` 会离线重新核验每个签名。 Signature status as checked by the registry at packing time; `modelreg evidence verify` re-checks every signature offline.</p>'
    )

    parts.append(f'<h2 id="monitors">{bi("监测结果", "Monitor results")}</h2>')
    for ev in sorted(c.evaluations, key=lambda e: (e.created_at, e.id)):
        kinds = c.monitor_results.get(ev.id, {})
        if not kinds:
            continue
        parts.append(f"<h3>{esc(ev.purpose)} #{ev.id}</h3>")
        for kind, res in sorted(kinds.items()):
            ds = [
                mm for mm in res.get("metrics", []) if mm.get("feature") is None and mm.get("group") is None
            ]
            parts.append(
                f"<h4>{esc(kind)} {badge(res.get('status'))} · {link(ctx.paths.result(ev.id, kind), 'MonitorResult JSON')}"
                + (f" <span class='note'>{esc(res.get('reason'))}</span>" if res.get("reason") else "")
                + "</h4>"
            )
            parts.append(
                table(
                    [bi("指标", "Metric"), bi("值", "Value"), bi("状态", "Status")],
                    [
                        [
                            esc(mm["name"]),
                            esc(num(mm.get("value"))),
                            badge(mm.get("status"))
                            + (
                                f" <span class='note'>{esc(mm.get('reason'))}</span>"
                                if mm.get("reason")
                                else ""
                            ),
                        ]
                        for mm in ds
                    ],
                )
            )
            arts = [a for a in c.artifacts if a.evaluation_id == ev.id and a.monitor == kind]
            for a in arts:
                p = ctx.paths.artifact(a.evaluation_id, a.monitor, a.name)
                if p.endswith(".png"):
                    parts.append(f'<img class="plot" src="{href(p)}" alt="{esc(kind)}: {esc(a.name)}">')
            if arts:
                parts.append(
                    "<p>"
                    + " · ".join(
                        link(ctx.paths.artifact(a.evaluation_id, a.monitor, a.name), a.name) for a in arts
                    )
                    + "</p>"
                )

    parts.append(f'<h2 id="audit">{bi("审计记录", "Audit trail")}</h2>')
    parts.append(
        f"<p>审计日志为 RFC 6962 默克尔树；本版本的每条事件附包含证明，指向清单中的根哈希。The audit log is an RFC 6962 Merkle tree; each event of this version carries an inclusion proof to the manifest's root. {link('audit/events.jsonl')} · {link('audit/leaves.bin')} · {link('audit/tree.json')}</p>"
    )
    import json as _json

    ev_rows = []
    for e in c.events:
        d = _json.loads(e.canonical)
        ev_rows.append(
            [
                str(d.get("seq")),
                esc(d.get("at")),
                esc(d.get("event")),
                esc(d.get("actor")),
                f"<code>{esc(e.leaf_hash.hex()[:16])}…</code>",
            ]
        )
    parts.append(
        table(
            ["#", bi("时间", "At"), bi("事件", "Event"), bi("执行人", "Actor"), bi("叶哈希", "Leaf hash")],
            ev_rows,
        )
    )

    parts.append(f'<h2 id="provenance">{bi("来源信息", "Provenance")}</h2>')
    mlflow = v.mlflow or {}
    parts.append(
        kv(
            [
                ("MLflow run", f"<code>{esc(mlflow.get('run_id') or v.mlflow_run_id or '–')}</code>"),
                ("pip requirements", esc(", ".join(map(str, mlflow.get("pip_requirements") or [])) or "–")),
                (
                    bi("数据指纹", "Data fingerprints"),
                    "<br>".join(
                        f"{esc(d.role)} {esc(d.name)}: <code>{esc(d.digest)}</code>" for d in c.datasets
                    )
                    or "–",
                ),
                (bi("详见", "Details"), link("provenance.json")),
            ]
        )
    )

    parts.append(f'<h2 id="files">{bi("文件清单", "Files")}</h2>')
    parts.append(
        table(
            [bi("文件", "File"), bi("字节", "Bytes"), "SHA-256"],
            [
                [link(name), f"{len(data):,}", f"<code>{ctx.sha256(data)}</code>"]
                for name, data in sorted(files.items())
            ],
        )
    )
    parts.append(
        '<p class="note">index.html 本身及 manifest.json 的摘要见 manifest.json（已签名）。The digests of index.html itself are in the signed manifest.json.</p>'
    )
    parts.append(f'<h2 id="verify">{bi("如何验证", "How to verify")}</h2>')
    parts.append(
        "<p>离线验证（无需网络与登记库）：Offline, with no network and no registry:</p>"
        "<pre><code>modelreg evidence verify PACK.zip --trusted-key registry-evidence.pub [--trusted-key audit.pub --checkpoint checkpoint.json]</code></pre>"
        "<p>未安装 modelreg 时，用包内自带的单文件验证器（仅需 Python 与 cryptography；SM2 证据包另需 tongsuopy），"
        "检查与结论相同。Without modelreg, the single-file verifier shipped in this pack (Python and cryptography; "
        "tongsuopy too for an SM2 pack) runs the same checks with the same verdicts:</p>"
        "<pre><code>python3 verify_pack.py PACK.zip --trusted-key registry-evidence.pub [--trusted-key audit.pub --checkpoint checkpoint.json]</code></pre>"
        f"<p>清单签名密钥 Manifest signing key: <code>{esc(ctx.evidence_key_id)}</code> ({link(ctx.paths.evidence_key, 'public key')}); "
        "只信任从登记库运营方获得的公钥。Trust only a public key obtained from the registry's operator, never the copy in the pack.</p>"
    )
    if c.notes:
        parts.append(
            "<h3>"
            + bi("说明", "Notes")
            + "</h3><ul>"
            + "".join(f"<li>{esc(n)}</li>" for n in c.notes)
            + "</ul>"
        )
    title = f"证据包 Evidence pack: {v.model} {v.version}"
    footer = f"modelreg {esc(c.registry_info.get('modelreg_version'))} · schema {esc(c.registry_info.get('schema_revision'))} · audit size {c.tree_size}"
    return page(title, "模型与算法风险登记库 modelreg", "\n".join(parts), footer)
