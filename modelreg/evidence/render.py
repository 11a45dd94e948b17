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
    # A monitor metric's own status only says it could be computed: whether the value is acceptable is the
    # control's verdict (pass/warn/fail/waived), shown where a control checks the metric.
    "ok": "已计算 computed",
    "computed": "已计算 computed",
    "contradicted": "与证据矛盾 contradicted",
    "active": "有效 active",
    "expired": "已过期 expired",
    "insufficient_data": "数据不足 insufficient data",
    "invalid_input": "输入无效 invalid input",
    "not_estimable": "无法估计 not estimable",
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


BASIS_LABEL = {
    "convention": ("行业惯例，非监管数值", "industry convention, not a regulatory number"),
    "suggestion": ("工程建议，非监管数值", "engineering suggestion, not a regulatory number"),
    "seed_text": ("监管文本规定", "set by the regulatory text"),
    "institution": ("本机构校准", "the institution's own calibration"),
}


def basis_text(basis: str | None) -> str:
    zh, en = BASIS_LABEL.get(basis or "", ("依据未记录", "basis not recorded"))
    return f"阈值依据 basis: {zh} / {en}"


def control_basis(policy: Any, control_id: str, detail: dict | None = None) -> str | None:
    """Where the threshold of a check comes from: the outcome's own record, else the policy's check."""
    if detail and detail.get("basis"):
        return detail["basis"]
    if policy is None:
        return None
    try:
        ctl = policy.control(control_id)
    except Exception:  # a control the loaded pack no longer has
        return None
    return ctl.check.basis if getattr(ctl, "check", None) is not None else None


def threshold_text(detail: dict, basis: str | None) -> str:
    """Value, comparator, threshold and its basis, in one line: a threshold is never shown without it."""
    if detail.get("threshold") is None:
        return f"{detail.get('metric') or ''} {num(detail.get('value'))}".strip()
    return (
        f"{detail.get('metric') or ''} = {num(detail.get('value'))} "
        f"({detail.get('comparator') or ''} {num(detail.get('threshold'))}; {basis_text(basis)})"
    )


def state_at(c: Any) -> Any:
    """The time the pack's state reflects: the as-of time, else this version's last audit event (never the
    generation time, so two builds of one state give the same pages)."""
    import json as _json

    if c.as_of is not None:
        return c.as_of
    times = [_json.loads(e.canonical).get("at") for e in c.events]
    times = [t for t in times if t]
    return clock.parse(max(times)) if times else c.version.created_at


def document_line(c: Any, doc_zh: str, doc_en: str) -> str:
    """Document name, version and date for the top of every page."""
    v = c.version
    card_events = sum(1 for e in c.events if b'"version.card_updated"' in e.canonical)
    return (
        f"{doc_zh} {doc_en} · {v.model} v{v.version} · 文档修订 revision r{len(c.events)} "
        f"(模型卡修订 card revision {card_events + 1}) · 状态截至 state as of {clock.isoformat(state_at(c))} · "
        f"政策包 policy {c.policy_ref.get('id')}@{c.policy_ref.get('version')} · 阶段 stage {v.stage.value}"
        + (" (暂停 suspended)" if v.suspended else "")
        + overdue_note(c)
    )


def overdue_note(c: Any) -> str:
    """The review calendar's overdue flag (operations.json), on the document line of every page."""
    ops = getattr(c, "operations", None) or {}
    return f" · {ops['flag']}" if ops.get("overdue") and ops.get("flag") else ""


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
    doc.p(document_line(c, "模型卡", "Model card"))
    decision = decision_summary(ctx)
    doc.h("概况", "Summary")
    doc.table(
        ["项目 Item", "内容 Value"],
        [
            ["模型 Model", f"{v.model} {v.version}"],
            ["阶段 Stage", v.stage.value + (" (暂停 suspended)" if v.suspended else "")],
            [
                "状态 Status",
                f"{decision['verdict_zh']} / {decision['verdict_en']}"
                + (f" ({decision['decided_by']} {decision['decided_at']})" if decision["decided_by"] else "")
                + f"; 未关闭问题 open findings: {len(decision['open_findings'])}",
            ],
            ["登记 Registered", f"{v.registered_by} {clock.isoformat(v.created_at)}"],
            ["用途 Purpose", v.purpose],
            ["负责人 Owner", v.owner],
            ["业务条线 Business line", v.business_line or "–"],
            ["风险等级 Risk tier", v.risk_tier],
            ["模型制品摘要 Model artifact digest", v.artifact_digest or "–"],
        ],
    )
    doc.h("算法、目标与决策阈值", "Algorithm, objective and decision threshold")
    spec = (ev.data or {}).get("spec") if ev else None
    robustness_params = ((c.monitor_results.get(ev.id, {}) if ev else {}).get("robustness") or {}).get(
        "params"
    ) or {}
    threshold = card.get("decision_threshold", robustness_params.get("threshold"))
    doc.table(
        ["项目 Item", "内容 Value"],
        [
            [
                "算法 Algorithm",
                _card_field(card, "algorithm")
                if card.get("algorithm") or card.get("algorithm_zh")
                else _algorithm_guess(v),
            ],
            [
                "目标 Objective",
                _card_field(card, "objective")
                if card.get("objective") or card.get("objective_zh")
                else f"预测 predicts “{(spec or {}).get('target') or '未填写 not stated'}” (score = estimated probability)",
            ],
            [
                "决策阈值 Decision threshold",
                f"{num(threshold)} ({'模型卡 model card' if 'decision_threshold' in card else '稳健性检验参数 robustness-test parameter'})"
                if threshold is not None
                else "未填写 not stated (modelreg card --set decision_threshold=...)",
            ],
            ["训练运行 Training run", f"MLflow {v.mlflow_run_id or '–'}"],
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
    doc.h("模型表现（各指标的评估数据与区间）", "Performance (evaluation data and interval per metric)")
    perf = results.get("performance")
    verdicts = _verdicts(ev)
    data_text = _evaluation_data(ev)
    fps = (ev.data or {}).get("fingerprints") if ev else None
    short = f"{ev.purpose} #{ev.id}, {num((fps or [{}])[0].get('rows'))} rows" if ev else "–"
    doc.table(
        ["指标 Metric", "值 Value", "区间 Interval", "评估数据 Evaluation data", "结论 Verdict"],
        [
            [
                m["name"],
                m.get("value"),
                _interval(m),
                short,
                _verdict_text(verdicts, "performance", m, c.policy),
            ]
            for m in (perf or {}).get("metrics", [])
            if m.get("name") in PERFORMANCE_METRICS and m.get("feature") is None and m.get("group") is None
        ],
    )
    doc.p(f"评估数据 Evaluation data: {data_text}")
    doc.h("公平性", "Fairness")
    fair = results.get("fairness")
    frows = []
    for m in (fair or {}).get("metrics", []):
        if m.get("name") in FAIRNESS_METRICS and m.get("group") is None:
            frows.append(
                [
                    m.get("feature") or "全部 all (worst case)",
                    m["name"],
                    m.get("value"),
                    _interval(m),
                    _verdict_text(verdicts, "fairness", m, c.policy),
                ]
            )
    doc.table(["属性 Attribute", "指标 Metric", "值 Value", "区间 Interval", "结论 Verdict"], frows)
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
    doc.h("版本历史与状态", "Version history and status")
    doc.table(
        ["时间 At", "事件 Event", "执行人 By", "说明 Detail"],
        _history_rows(c),
    )
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
    for k in (
        "intended_use",
        "excluded_uses",
        "limitations",
        "human_review",
        "decision",
        "algorithm",
        "objective",
        "institution",
        "contact",
    )
    for s in ("", "_zh")
} | {"personal_information", "decision_threshold", "categorical_features", "ordinal_features"}


def _algorithm_guess(v: Any) -> str:
    """Without a card entry, what the MLflow record says (the flavour and parameters), marked as such."""
    mlflow = v.mlflow or {}
    params = mlflow.get("params") or {}
    bits = [str(mlflow.get("flavor") or mlflow.get("run_name") or "")] + [
        f"{k}={val}" for k, val in sorted(params.items())
    ]
    text = " ".join(b for b in bits if b)
    return f"未在模型卡填写 not stated in the card (MLflow: {text or '–'}; modelreg card --set algorithm=...)"


def _interval(m: dict) -> str:
    if m.get("ci_low") is None or m.get("ci_high") is None:
        return "–"
    return f"[{num(m['ci_low'])}, {num(m['ci_high'])}]"


def _verdicts(ev: Any) -> dict:
    if ev is None:
        return {}
    return {
        (f.detail.get("monitor"), f.detail.get("metric"), f.detail.get("feature"), f.detail.get("group")): f
        for f in ev.findings
    }


def _verdict_text(verdicts: dict, monitor: str, m: dict, policy: Any) -> str:
    f = verdicts.get((monitor, m.get("name"), m.get("feature"), m.get("group")))
    if f is None:
        return (
            STATUS_LABEL["computed"] + " (无控制项 no control checks it)"
            if m.get("status") in (None, "ok")
            else STATUS_LABEL.get(m.get("status"), m.get("status"))
        )
    return f"{STATUS_LABEL.get(f.status, f.status)} {f.control_id}: {threshold_text(f.detail, control_basis(policy, f.control_id, f.detail))}"


def _evaluation_data(ev: Any) -> str:
    if ev is None:
        return "–"
    fps = (ev.data or {}).get("fingerprints") or []
    data = "; ".join(
        f"{fp.get('role')} {num(fp.get('rows'))} rows sha256 {str(fp.get('digest') or '')[:12]}…"
        for fp in fps
    )
    return f"{ev.purpose} #{ev.id} {clock.isoformat(ev.created_at)} by {ev.created_by}: {data or '–'}"


def _history_rows(c: Any) -> list[list[str]]:
    """Registration, card edits, data, lifecycle moves and evaluations of this version, from its audit events."""
    import json as _json

    rows = []
    for e in c.events:
        d = _json.loads(e.canonical)
        payload = d.get("payload") or {}
        name = d.get("event")
        if name not in (
            "version.registered",
            "version.card_updated",
            "version.data_attached",
            "version.submitted",
            "version.sent_back",
            "version.deployed",
            "version.suspended",
            "version.resumed",
            "version.retired",
            "evaluation.recorded",
        ):
            continue
        detail = payload.get("reason") or ""
        if name == "evaluation.recorded":
            detail = f"{payload.get('purpose')} #{payload.get('evaluation_id')}: {payload.get('status')}"
        elif name == "version.card_updated":
            detail = ", ".join(sorted(payload.get("fields") or payload.get("changed") or []))
        elif name == "version.data_attached":
            detail = f"{payload.get('role')} {payload.get('name') or ''}"
        rows.append([str(d.get("at")), str(name), str(d.get("actor")), str(detail)])
    return rows


# -- algorithm disclosure (算法信息披露) -----------------------------------------------------------------


JRT0287_AREAS = (
    ("portfolio", "算法组合", "Algorithm portfolio"),
    ("logic", "算法逻辑", "Algorithm logic"),
    ("application", "算法应用", "Algorithm application"),
    ("data", "算法数据", "Algorithm data"),
    ("subject", "算法主体", "Algorithm subject (who is responsible)"),
    ("change", "算法变更", "Algorithm changes"),
    ("audit", "算法审计", "Algorithm audit"),
)
ORDERED_MIN_VALUES = 10  # integer codes with fewer distinct values are treated as categories unless declared


def ordered_features(ev: Any, card: dict, reason_codes_csv: bytes | None) -> set[str]:
    """Features whose values have an order, so "a higher value raises the score" means something. Category
    codes (a feature store's integers) have no order: declared in the card's ``categorical_features``, or
    integer-valued with few distinct values and not declared in ``ordinal_features`` or monotone."""
    spec = (ev.data or {}).get("spec") if ev else None
    declared_cat = set(card.get("categorical_features") or [])
    declared_ord = set(card.get("ordinal_features") or [])
    values: dict[str, set[float]] = {}
    if reason_codes_csv:
        for row in csv.DictReader(io.StringIO(reason_codes_csv.decode("utf-8", "replace"))):
            try:
                values.setdefault(row.get("feature", ""), set()).add(float(row["value"]))
            except (KeyError, TypeError, ValueError):
                continue
    out = set()
    for f in (spec or {}).get("features") or []:
        name = f.get("name")
        if f.get("kind") == "categorical" or name in declared_cat:
            continue
        if name in declared_ord or f.get("monotone") or f.get("kind") == "ordinal":
            out.add(name)
            continue
        seen = values.get(name, set())
        coded = seen and all(float(x).is_integer() for x in seen) and len(seen) < ORDERED_MIN_VALUES
        if not coded:
            out.add(name)
    return out


def _plain_direction(d: float | None) -> tuple[str, str]:
    if d is None or abs(d) < 0.05:
        return "影响方向不固定", "no consistent direction"
    if d > 0:
        return "数值越高，评估的风险越高", "higher values raise the score (higher estimated risk)"
    return "数值越高，评估的风险越低", "higher values lower the score (lower estimated risk)"


def institution_fields(card: dict) -> dict:
    """Institution and contact for the disclosure, from the model card fields ``institution``,
    ``institution_zh``, ``contact``, ``contact_zh`` (set with ``modelreg card NAME VERSION --set ...``)."""
    return {
        "institution_zh": card.get("institution_zh") or card.get("institution"),
        "institution_en": card.get("institution") or card.get("institution_zh"),
        "contact_zh": card.get("contact_zh") or card.get("contact"),
        "contact_en": card.get("contact") or card.get("contact_zh"),
    }


def disclosure(ctx: Any) -> Doc:
    """算法信息披露, structured by the seven areas of JR/T 0287-2023 and its disclosure moments (launch,
    major change, termination). Plain Chinese for customers first, English beside it."""
    c = ctx.collected
    v = c.version
    card = v.model_card or {}
    ev = main_evaluation(c.evaluations)
    results = c.monitor_results.get(ev.id, {}) if ev else {}
    spec = (ev.data or {}).get("spec") if ev else None
    target = (spec or {}).get("target") or "目标事件"
    inst = institution_fields(card)
    missing = "未填写（请在模型卡中填写）"
    deployed = next((h for h in c.history if h.action == "deploy"), None)
    retired = next((h for h in reversed(c.history) if h.action == "retire"), None)
    doc = Doc(f"算法信息披露 Algorithm disclosure: {v.model} {v.version}")
    doc.p(document_line(c, "算法信息披露", "Algorithm disclosure"))
    doc.p(
        "本披露按 JR/T 0287-2023《人工智能算法金融应用信息披露指南》的七个方面编写：算法组合、算法逻辑、算法应用、算法数据、算法主体、算法变更、算法审计；"
        "内容依据 PBOC-FTP-2022-24.3（决策机理、运行逻辑、潜在风险），在上线前、重大变更时和终止时更新。"
        " This disclosure follows the seven areas of JR/T 0287-2023 (AI algorithm financial application information-"
        "disclosure guideline; outside the clause catalog's seed set) and is updated before go-live, at a material "
        "change and at termination."
    )

    doc.h("披露时点", "Disclosure moments")
    doc.table(
        ["时点 Moment", "日期 Date", "说明 Note"],
        [
            [
                "上线 Launch",
                clock.isoformat(deployed.at) if deployed else "尚未上线 not deployed",
                "上线前披露本说明 disclosed before first use"
                if deployed
                else "上线时更新 to be updated at launch",
            ],
            [
                "重大变更 Major change",
                _major_change_date(c) or "无 none recorded",
                "算法、特征、阈值或用途的重大变更须重新验证并更新本披露 a material change is re-validated and re-disclosed",
            ],
            [
                "终止 Termination",
                clock.isoformat(retired.at) if retired else "未终止 in use" if deployed else "–",
                f"停止使用，原因：{retired.reason}"
                if retired
                else "终止时发布停用公告 a notice is published at termination",
            ],
        ],
    )
    if retired is not None:
        doc.p(
            f"停用公告：自 {clock.isoformat(retired.at)[:10]} 起，本机构不再使用该模型（{v.model} 第 {v.version} 版）作出决定。原因：{retired.reason}。"
            f" Termination notice: from {clock.isoformat(retired.at)[:10]} this model is no longer used for decisions. Reason: {retired.reason}."
        )

    doc.h("一、算法组合", "1. Algorithm portfolio")
    doc.p(
        f"这项服务使用一个评分模型：{v.model}（第 {v.version} 版）。它用于：{v.purpose}。业务条线：{v.business_line or missing}。"
        f"本行按风险把它定为“{ {'high': '高', 'medium': '中', 'low': '低'}.get(v.risk_tier, v.risk_tier) }”风险等级。"
    )
    doc.p(
        f"This service uses one scoring model, {v.model} version {v.version}, for: {v.purpose}. Business line: "
        f"{v.business_line or 'not stated'}. Risk tier: {v.risk_tier}. Algorithm: "
        f"{_card_field(card, 'algorithm') if card.get('algorithm') or card.get('algorithm_zh') else 'not stated in the model card'}."
    )

    doc.h("二、算法逻辑", "2. Algorithm logic")
    imp = shap_importance(results.get("explainability"))
    codes = ctx.reason_codes.get(ev.id) if ev else None
    dirs = directions(codes)
    ordered = ordered_features(ev, card, codes)
    labels = {r["name"]: r for r in feature_rows(ev, card)}
    total = sum(val for _, val in imp) or 1.0
    rows = []
    for f, val in imp[:10]:
        lab = labels.get(f, {})
        if f in ordered:
            zh, en = _plain_direction(dirs.get(f))
        else:
            zh, en = "类别型因素，不同类别影响不同，不陈述方向", "a category: no direction is stated"
        shown = " / ".join(x for x in (lab.get("label_zh"), lab.get("label_en")) if x)
        rows.append([f + (f"（{shown}）" if shown else ""), f"{val / total:.1%}", f"{zh} / {en}"])
    doc.table(["因素 Factor", "相对重要性 Relative importance", "影响方向 Direction"], rows)
    threshold = card.get(
        "decision_threshold", ((results.get("robustness") or {}).get("params") or {}).get("threshold")
    )
    doc.p(
        f"模型根据上表中的因素算出一个分数，表示“{target}”发生的可能性，分数越高风险越高。"
        f"分数超过{num(threshold) if threshold is not None else '本行设定的界线'}时，系统给出审慎建议；最终决定按本行的审批规定作出。"
        "只对有大小顺序的因素（如金额、期限、年龄）说明方向；类别型因素不说明方向。"
    )
    doc.p(
        f"The model turns these factors into a score, the estimated probability of “{target}”; a higher score means higher "
        f"risk. Above {num(threshold) if threshold is not None else 'the bank’s cut-off'} the system recommends caution; "
        "the decision follows the bank’s credit policy. Directions are stated only for ordered factors (the correlation "
        "between a factor’s value and its SHAP contribution in the per-decision reason codes)."
    )

    doc.h("三、算法应用", "3. Algorithm application")
    doc.ul(
        [
            f"用于 Used for: {_card_field(card, 'intended_use')}",
            f"不用于 Not used for: {_card_field(card, 'excluded_uses')}",
            f"局限 Limitations: {_card_field(card, 'limitations')}",
        ]
    )
    review_zh = card.get("human_review_zh") or (
        "如您对结果有异议，可以通过营业网点、客服热线或手机银行申请人工复核；线上未通过的，可以到线下渠道补充申请（《实施方案》第5条）。"
    )
    review_en = card.get("human_review") or (
        "If you disagree with a decision you can ask for a human review at a branch, through the customer hotline or in the "
        "mobile app; customers declined online can apply through the offline channel (NFRA 2025 item 5)."
    )
    doc.p(f"人工复核：{review_zh}")
    doc.p(f"Human review: {review_en}")

    doc.h("四、算法数据", "4. Algorithm data")
    feats = feature_rows(ev, card)
    inputs = [r for r in feats if r["role"] == "model input"]
    only_fair = [r for r in feats if r["role"] != "model input"]
    doc.p(
        f"模型使用 {len(inputs)} 类信息作出评估，其中个人信息 {sum(1 for r in inputs if r['personal_information'])} 类；"
        + (
            f"{'、'.join(r['name'] for r in only_fair)} 只用于检验模型对不同人群是否公平，不参与评分。"
            if only_fair
            else "没有仅用于公平性检验的信息。"
        )
    )
    doc.table(
        ["信息 Information", "类别 Classification", "用途 Use"],
        [
            [r["name"] + (f"（{r['label_zh']}）" if r["label_zh"] else ""), _pi_text(r), r["role"]]
            for r in feats
        ],
    )
    doc.table(
        ["数据集 Data set", "行数 Rows", "登记时间 Attached", "责任人 Owner"],
        [
            [f"{d.role} {d.name}", d.rows, clock.isoformat(d.at), d.owner or "未登记 not recorded"]
            for d in c.datasets
        ],
    )

    doc.h("五、算法主体", "5. Algorithm subject")
    doc.table(
        ["项目 Item", "内容 Value"],
        [
            [
                "机构 Institution",
                f"{inst['institution_zh'] or missing} / {inst['institution_en'] or 'not stated'}",
            ],
            ["联系方式 Contact", f"{inst['contact_zh'] or missing} / {inst['contact_en'] or 'not stated'}"],
            ["模型负责人 Model owner", v.owner],
            ["业务条线 Business line", v.business_line or "–"],
        ],
    )

    doc.h("六、算法变更", "6. Algorithm changes")
    doc.table(["时间 At", "事件 Event", "执行人 By", "说明 Detail"], _history_rows(c))
    doc.p(
        "每一版模型上线前都经过独立验证；重大变更（特征、算法、训练数据、阈值、用途变化）会重新验证并更新本披露。"
        " Every version is independently validated before use; a material change is re-validated and re-disclosed."
    )

    doc.h("七、算法审计", "7. Algorithm audit")
    perf = results.get("performance") or {}
    audit_items = []
    for e in sorted(c.evaluations, key=lambda e: (e.created_at, e.id)):
        audit_items.append(
            f"{clock.isoformat(e.created_at)[:10]} {e.purpose} #{e.id}（{e.created_by}）：{STATUS_LABEL.get(e.status, e.status)}"
        )
    if ev is not None:
        audit_items.append(
            f"验证结果 Validation: AUC {num(metric_value(perf, 'auc'))}, KS {num(metric_value(perf, 'ks_statistic'))}"
        )
    audit_items.append(
        f"所有操作记入防篡改审计日志（默克尔树，截至 {clock.isoformat(state_at(c))} 共 {c.tree_size} 条）。"
        f" Every action is in a tamper-evident audit log (Merkle tree, size {c.tree_size})."
    )
    risks = []
    if ev is not None:
        for f in ev.findings:
            if f.status in ("fail", "error", "warn", "waived"):
                risks.append(
                    f"{f.detail.get('title_zh', f.control_id)} / {f.detail.get('title_en', '')}: {STATUS_LABEL.get(f.status, f.status)}"
                )
    doc.ul(audit_items + risks)
    return doc


def _major_change_date(c: Any) -> str | None:
    """A material change is a new version: this one replaced another when its deploy event says so."""
    import json as _json

    for e in c.events:
        d = _json.loads(e.canonical)
        if d.get("event") == "version.deployed" and (d.get("payload") or {}).get("replaced"):
            return str(d.get("at"))
    return None


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
                row["basis"] = control_basis(pack, ctl.id, d)
                row["detail"] = f"{threshold_text(d, row['basis'])}; {ev.purpose} #{ev.id}"
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
                against = [x for x in ctx.contradictions if x.record_id == r.id]
                if against:
                    row["result"] = "contradicted"
                    row["detail"] += "; " + "; ".join(f"{x.found_zh} / {x.found_en}" for x in against)
                    row["evidence"] = list(against[0].evidence[:1])
            elif recs:
                row["result"] = "invalid"
                row["detail"] = "attestation present but its signature does not verify"
            else:
                row["result"] = "not_attested"
                row["detail"] = (
                    f"needs a signed attestation by a {ctl.attestation.role}" if ctl.attestation else ""
                )
            row["evidence"] = row["evidence"] + [ctx.paths.signed(r.id, r.kind) for r in recs]
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


# -- the decision summary ----------------------------------------------------------------------------------

OPEN_STATUSES = ("fail", "error", "warn")


def decision_summary(ctx: Any) -> dict:
    """What an auditor reads first: the verdict, who decided, what is still open, what was waived."""
    c = ctx.collected
    v = c.version
    at = state_at(c)
    last = {h.action: h for h in c.history}
    approvals = [
        {
            "kind": r.kind,
            "role": r.role,
            "signer": r.actor,
            "decision": r.payload.get("decision"),
            "at": clock.isoformat(r.at),
            "comment": r.payload.get("comment") or "",
            "signature_valid": r.valid_signature,
            "file": ctx.paths.signed(r.id, r.kind),
        }
        for r in c.signed
        if r.kind in ("approval", "rejection")
    ]
    unmet_deploy = (c.gate_unmet or {}).get("deploy") or []
    stage = v.stage.value
    if stage == "retire":
        h = last.get("retire")
        verdict = ("已退出", "retired", "retired")
        decided = h
    elif stage == "deploy" and v.suspended:
        h = last.get("suspend")
        verdict = ("已上线但暂停使用", "deployed, suspended", "suspended")
        decided = h
    elif stage == "deploy":
        h = last.get("deploy")
        verdict = ("已批准并上线", "approved and deployed", "deployed")
        decided = h
    elif stage == "validate":
        decided = None
        if c.gate_unmet is None:
            verdict = ("验证中", "in validation", "pending")
        elif unmet_deploy:
            verdict = (
                f"未获准上线：{len(unmet_deploy)} 项上线要求未满足",
                f"not approved: {len(unmet_deploy)} deploy requirement(s) unmet",
                "blocked",
            )
        else:
            verdict = (
                "上线要求均已满足，待部署",
                "every deploy requirement met, awaiting deployment",
                "ready",
            )
    else:
        decided = last.get("send_back")
        verdict = (
            ("已退回开发", "sent back to development", "sent_back")
            if decided
            else ("开发中", "in development", "develop")
        )
    open_items: list[dict] = []
    latest = latest_by_purpose(c.evaluations)
    if "validation" in latest:
        latest.pop("precheck", None)  # the developer's dry run is superseded by the independent validation
    for purpose, ev in sorted(latest.items()):
        for f in ev.findings:
            if f.status in OPEN_STATUSES:
                open_items.append(
                    {
                        "kind": "finding",
                        "control_id": f.control_id,
                        "status": f.status,
                        "severity": f.severity,
                        "title_zh": f.detail.get("title_zh", ""),
                        "title_en": f.detail.get("title_en", ""),
                        "detail": threshold_text(f.detail, control_basis(c.policy, f.control_id, f.detail)),
                        "where": f"{purpose} #{ev.id} {clock.isoformat(ev.created_at)}",
                        "file": ctx.paths.evaluation(ev.id),
                    }
                )
    for x in ctx.contradictions:
        open_items.append(
            {
                "kind": "contradiction",
                "control_id": x.control_id,
                "status": "contradicted",
                "severity": "major",
                "title_zh": f"声明与证据矛盾：{x.claim_zh}",
                "title_en": f"attestation contradicted: {x.claim_en}",
                "detail": f"{x.found_zh} / {x.found_en}",
                "where": f"{x.signer} {x.signed_at}",
                "file": x.evidence[0],
            }
        )
    gate = "retire" if stage == "retire" else "deploy" if stage in ("validate", "deploy") else "submit"
    for u in (c.gate_unmet or {}).get(gate) or []:
        open_items.append(
            {
                "kind": "requirement",
                "control_id": u.get("control_id") or u.get("requirement"),
                "status": "unmet",
                "severity": "blocking",
                "title_zh": u.get("message_zh") or "",
                "title_en": u.get("message_en") or "",
                "detail": f"{gate} gate",
                "where": "at packing time" if c.as_of is None else "",
                "file": ctx.paths.version_file,
            }
        )
    waivers = []
    for w in c.signed:
        if w.kind != "waiver":
            continue
        until = w.until
        waivers.append(
            {
                "control_id": w.control_id,
                "by": w.actor,
                "scope": w.payload.get("gates") or [],
                "granted_at": clock.isoformat(w.at),
                "until": clock.isoformat(until) if until else w.payload.get("until"),
                "state": "active" if (until is not None and until > at and w.counts) else "expired",
                "reason": w.payload.get("reason"),
                "file": ctx.paths.signed(w.id, w.kind),
            }
        )
    return {
        "state_as_of": clock.isoformat(at),
        "verdict_zh": verdict[0],
        "verdict_en": verdict[1],
        "verdict": verdict[2],
        "stage": stage,
        "suspended": v.suspended,
        "decided_by": decided.actor if decided else None,
        "decided_at": clock.isoformat(decided.at) if decided else None,
        "decision_reason": decided.reason if decided else None,
        "approvals": approvals,
        "open_findings": open_items,
        "waivers": waivers,
    }


def decision_html(ctx: Any, d: dict) -> str:
    parts = [f'<section class="decision" id="decision"><h2>{bi("决策摘要", "Decision summary")}</h2>']
    who = ""
    if d["decided_by"]:
        who = f" · 决定人 by {esc(d['decided_by'])} · {esc(d['decided_at'])}" + (
            f" · {esc(d['decision_reason'])}" if d["decision_reason"] else ""
        )
    parts.append(
        f'<p class="verdict" id="verdict">{bi(d["verdict_zh"], d["verdict_en"])}{who}</p>'
        f'<p class="note">状态截至 State as of {esc(d["state_as_of"])}</p>'
    )
    parts.append(f"<h3>{bi('决策人', 'Who decided')}</h3>")
    parts.append(
        table(
            [
                bi("角色", "Role"),
                bi("签署人", "Signer"),
                bi("决定", "Decision"),
                bi("时间", "At"),
                bi("意见", "Comment"),
            ],
            [
                [
                    esc(a["role"]),
                    esc(a["signer"]),
                    badge("valid" if a["signature_valid"] else "invalid") + " " + esc(a["decision"]),
                    esc(a["at"]),
                    esc(a["comment"]) + " · " + link(a["file"], "JSON"),
                ]
                for a in d["approvals"]
            ],
        )
    )
    parts.append(
        f"<h3 id='open-findings'>{bi('未关闭问题', 'Open findings')} ({len(d['open_findings'])})</h3>"
    )
    parts.append(
        table(
            [
                bi("控制项", "Control"),
                bi("状态", "Status"),
                bi("严重度", "Severity"),
                bi("内容", "What"),
                bi("来源", "Where"),
            ],
            [
                [
                    f"<code>{esc(o['control_id'])}</code> {esc(o['title_zh'])}<br><span class='en'>{esc(o['title_en'])}</span>",
                    badge(o["status"]),
                    esc(o["severity"]),
                    esc(o["detail"]),
                    esc(o["where"]) + " · " + link(o["file"], "JSON"),
                ]
                for o in d["open_findings"]
            ],
        )
    )
    parts.append(f"<h3>{bi('豁免', 'Waivers')} ({len(d['waivers'])})</h3>")
    parts.append(
        table(
            [
                bi("控制项", "Control"),
                bi("批准人", "By"),
                bi("范围", "Scope"),
                bi("有效期", "Validity"),
                bi("原因", "Reason"),
            ],
            [
                [
                    f"<code>{esc(w['control_id'])}</code>",
                    esc(w["by"]),
                    esc(", ".join(f"{g} gate" for g in w["scope"])),
                    badge(w["state"]) + f" {esc(w['granted_at'][:10])} → {esc(w['until'])}",
                    esc(w["reason"]) + " · " + link(w["file"], "JSON"),
                ]
                for w in d["waivers"]
            ],
        )
    )
    parts.append("</section>")
    return "\n".join(parts)


# -- the index --------------------------------------------------------------------------------------------


def _metric_badge(finding: Any, metric: dict, policy: Any) -> str:
    """The control's verdict on a metric where a control checks it; else only whether it was computed."""
    if finding is not None:
        return (
            badge(finding.status)
            + f" <code>{esc(finding.control_id)}</code> <span class='note'>"
            + esc(threshold_text(finding.detail, control_basis(policy, finding.control_id, finding.detail)))
            + "</span>"
        )
    status = metric.get("status")
    return badge("computed" if status in (None, "ok") else status)


#: Monitors whose results are read by group (a segment, a grade): the columns shown per group.
GROUP_TABLES: dict[str, tuple[str, ...]] = {
    "segments": (
        "rows",
        "drift.max_psi",
        "drift.segment_flagged_psi",
        "drift.segment_drifted",
        "performance.auc",
        "fairness.demographic_parity_ratio",
    ),
    "challenger": (
        "rows",
        "auc_champion",
        "auc_challenger",
        "auc_difference",
        "auc_difference_pvalue",
    ),
    "stability": ("grade_share_reference", "grade_share_current"),
}


def group_table(kind: str, res: dict) -> str:
    """Per segment (or grade) table of a segments, challenger or stability result; undefined cells say why
    (insufficient data) instead of showing a number. Empty for other kinds."""
    columns = GROUP_TABLES.get(kind)
    if not columns:
        return ""
    by_group: dict[str, dict[str, dict]] = {}
    for mm in res.get("metrics", []):
        g = mm.get("group")
        if g is None or "|" in str(g) or mm.get("feature") is not None or mm.get("name") not in columns:
            continue
        by_group.setdefault(str(g), {})[mm["name"]] = mm

    def cell(mm: dict | None) -> str:
        if mm is None:
            return "–"
        if mm.get("status") not in (None, "ok"):
            return badge(mm.get("status")) + f" <span class='note'>{esc(mm.get('reason'))}</span>"
        text = esc(num(mm.get("value")))
        if mm.get("ci_low") is not None:
            text += f" <span class='note'>[{num(mm.get('ci_low'))}, {num(mm.get('ci_high'))}]</span>"
        return text

    if not by_group:
        return ""
    head = bi("分组", "Segment") if kind != "stability" else bi("等级", "Grade")
    return table(
        [head, *[esc(c) for c in columns]],
        [[esc(g), *[cell(metrics.get(c)) for c in columns]] for g, metrics in by_group.items()],
    )


def index_html(ctx: Any, files: dict[str, bytes]) -> str:
    c = ctx.collected
    v = c.version
    m = ctx.matrix
    parts: list[str] = []
    parts.append(f'<p class="docline" id="docline">{esc(document_line(c, "证据包", "Evidence pack"))}</p>')
    parts.append(decision_html(ctx, decision_summary(ctx)))
    toc = [
        ("decision", "决策摘要", "Decision summary"),
        ("summary", "模型概况", "Model summary"),
        ("documents", "文档", "Documents"),
        ("findings", "发现与豁免", "Findings and waivers"),
        ("contradictions", "声明核对", "Attestations checked against the files"),
        ("signed", "审批与声明", "Approvals and attestations"),
        ("matrix", "政策矩阵", "Policy matrix"),
        ("lifecycle", "生命周期", "Lifecycle history"),
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
                        esc(threshold_text(f.detail, control_basis(c.policy, f.control_id, f.detail))),
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

    parts.append(
        f'<h2 id="contradictions">{bi("声明与证据核对", "Attestations checked against the files")}</h2>'
    )
    parts.append(
        '<p class="note">部分声明的内容可由包内文件核对（压力情景数量、影子运行期限、数据集责任人）；矛盾即为发现。'
        " Some attested statements can be checked against files in this pack (number of stress scenarios, shadow-run "
        f"period, data-set owners); a contradiction is a finding. {link('findings/attestation_contradictions.json')}</p>"
    )
    parts.append(
        table(
            [
                bi("控制项", "Control"),
                bi("声明", "Signed claim"),
                bi("包内证据", "What the files show"),
                bi("签署", "Signed"),
                bi("证据文件", "Evidence"),
            ],
            [
                [
                    f"<code>{esc(x.control_id)}</code> " + badge("contradicted"),
                    f"{esc(x.claim_zh)}<br><span class='en'>{esc(x.claim_en)}</span>",
                    f"{esc(x.found_zh)}<br><span class='en'>{esc(x.found_en)}</span>",
                    f"{esc(x.signer)} {esc(x.signed_at)}",
                    "<br>".join(link(e) for e in x.evidence),
                ]
                for x in ctx.contradictions
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
        for key, src in sorted(getattr(c.policy, "sources", {}).items()):
            if getattr(src, "note_zh", "") or getattr(src, "note_en", ""):
                parts.append(
                    f'<p class="note" id="source-note-{esc(key)}"><b>{esc(key)}</b>: {esc(src.note_zh)}<br>{esc(src.note_en)}</p>'
                )
        rows = []
        for r in m["rows"]:
            clause_cell = f'<b>{esc(r["clause_id"])}</b> <span class="note">{esc(r["item"])}</span><br>{esc(r["title_zh"])}<br><span class="en">{esc(r["title_en"])}</span>'
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

    parts.append(f'<h2 id="monitors">{bi("监测结果", "Monitor results")}</h2>')
    for ev in sorted(c.evaluations, key=lambda e: (e.created_at, e.id)):
        kinds = c.monitor_results.get(ev.id, {})
        if not kinds:
            continue
        parts.append(f"<h3>{esc(ev.purpose)} #{ev.id} · {esc(clock.isoformat(ev.created_at))}</h3>")
        verdicts = {
            (
                f.detail.get("monitor"),
                f.detail.get("metric"),
                f.detail.get("feature"),
                f.detail.get("group"),
            ): f
            for f in ev.findings
        }
        for kind, res in sorted(kinds.items()):
            ds = [
                mm for mm in res.get("metrics", []) if mm.get("feature") is None and mm.get("group") is None
            ]
            parts.append(
                f"<h4>{esc(kind)} {badge('computed' if res.get('status') in (None, 'ok') else res.get('status'))} · {link(ctx.paths.result(ev.id, kind), 'MonitorResult JSON')}"
                + (f" <span class='note'>{esc(res.get('reason'))}</span>" if res.get("reason") else "")
                + "</h4>"
            )
            parts.append(
                table(
                    [bi("指标", "Metric"), bi("值（区间）", "Value (interval)"), bi("结论", "Verdict")],
                    [
                        [
                            esc(mm["name"]),
                            esc(num(mm.get("value")))
                            + (
                                f" <span class='note'>[{num(mm.get('ci_low'))}, {num(mm.get('ci_high'))}]</span>"
                                if mm.get("ci_low") is not None
                                else ""
                            ),
                            _metric_badge(verdicts.get((kind, mm["name"], None, None)), mm, c.policy)
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
            parts.append(group_table(kind, res))
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
