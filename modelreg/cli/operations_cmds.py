"""Model risk operations commands: due, finding, inventory, report. Each parses, calls one function of
``modelreg.operations``, formats."""

from __future__ import annotations

import click

from modelreg.cli.common import CliContext, emit, emit_json, json_option, pass_ctx, table

# -- review calendar -------------------------------------------------------------------------------------


@click.command("due")
@click.option(
    "--within", help="Also list reviews due within this window (e.g. 30d, 6w); default: the policy's."
)
@json_option
@pass_ctx
def due_cmd(obj: CliContext, within: str | None, as_json: bool) -> None:
    """Deployed versions overdue or due soon for revalidation, periodic review or audit. Exit 1 when any is
    overdue (for cron)."""
    from modelreg.operations.calendar import calendar, parse_within

    cal = calendar(obj.registry(), within_days=parse_within(within))
    payload = {
        "as_of": cal["as_of"],
        "within_days": cal["within_days"],
        "policy": cal["policy"],
        "overdue": len(cal["overdue"]),
        "items": [i.to_dict() for i in cal["items"]],
    }

    def human(_) -> str:
        head = f"review calendar as of {cal['as_of']:%Y-%m-%d} (policy {cal['policy']}, due within {cal['within_days']} days)"
        rows = [
            [
                i.status.upper(),
                f"{i.model} {i.version}",
                i.risk_tier,
                f"{i.review} {i.title_zh}",
                i.last_at.strftime("%Y-%m-%d") if i.last_at else "never",
                i.due_at.strftime("%Y-%m-%d"),
                str(i.days_left),
                f"{i.interval_days}d {i.basis}",
                i.owner,
            ]
            for i in cal["items"]
        ]
        return (
            head
            + "\n"
            + table(
                rows,
                ["STATUS", "MODEL", "TIER", "REVIEW", "LAST", "DUE", "DAYS LEFT", "INTERVAL", "OWNER"],
            )
        )

    emit(payload, as_json, human)
    if cal["overdue"]:
        raise click.exceptions.Exit(1)


# -- findings ----------------------------------------------------------------------------------------------


def _finding_line(f) -> list[str]:
    return [
        f"#{f.id}",
        f"{f.model} {f.version}",
        f.control_id,
        f.purpose,
        f.severity,
        f.status + (" (OVERDUE)" if f.overdue() else ""),
        f.owner,
        f.due_at.strftime("%Y-%m-%d"),
    ]


@click.group("finding")
def finding_group() -> None:
    """Findings tracked until remediated: list, show, assign, propose, close."""


@finding_group.command("list")
@click.argument("name", required=False)
@click.argument("version", required=False)
@click.option(
    "--status",
    default="unclosed",
    show_default=True,
    type=click.Choice(["unclosed", "open", "remediation_proposed", "closed", "all"]),
)
@click.option("--owner", help="Only findings owned by this user.")
@json_option
@pass_ctx
def finding_list(
    obj: CliContext, name: str | None, version: str | None, status: str, owner: str | None, as_json: bool
) -> None:
    """Findings (of one model or version, or all)."""
    from modelreg.operations.findings import list_findings

    found = list_findings(
        obj.registry(), model=name, version=version, status=None if status == "all" else status, owner=owner
    )
    emit(
        {"findings": [f.to_dict() for f in found]},
        as_json,
        lambda _: table(
            [_finding_line(f) for f in found],
            ["ID", "MODEL", "CONTROL", "FROM", "SEVERITY", "STATUS", "OWNER", "DUE"],
        ),
    )


@finding_group.command("show")
@click.argument("finding_id")
@json_option
@pass_ctx
def finding_show(obj: CliContext, finding_id: str, as_json: bool) -> None:
    """One finding with its evidence."""
    from modelreg.operations.findings import get_finding

    f = get_finding(obj.registry(), finding_id)

    def human(_) -> str:
        r = f.last_result
        lines = [
            f"finding #{f.id}: {f.model} {f.version} {f.control_id} — {f.title_zh} / {f.title_en}",
            f"  status {f.status}   severity {f.severity}   owner {f.owner}   due {f.due_at:%Y-%m-%d}"
            + ("  OVERDUE" if f.overdue() else ""),
            f"  from {f.purpose} run #{f.opened_evaluation_id} at {f.opened_at:%Y-%m-%d %H:%M} UTC; "
            f"seen {f.occurrences} time(s), last in run #{f.last_evaluation_id}",
            f"  last result: {r.get('status')} {r.get('metric') or ''} = {r.get('value')} (threshold {r.get('threshold')}): {r.get('reason') or ''}",
            f"  clauses: {', '.join(f.clause_ids)}",
        ]
        if f.remediation:
            lines.append(f"  remediation proposed: {f.remediation}")
        if f.closure:
            lines.append(f"  closed by {f.closed_by} at {f.closed_at:%Y-%m-%d %H:%M} UTC: {f.closure}")
        return "\n".join(lines)

    emit(f.to_dict(), as_json, human)


@finding_group.command("assign")
@click.argument("finding_id")
@click.option("--owner", help="New owner (a registered user).")
@click.option("--due", help="New due date (YYYY-MM-DD); needs --reason.")
@click.option("--reason", default="", help="Why the deadline moves.")
@json_option
@pass_ctx
def finding_assign(
    obj: CliContext, finding_id: str, owner: str | None, due: str | None, reason: str, as_json: bool
) -> None:
    """Assign a finding to an owner and/or move its due date."""
    from modelreg.operations.findings import assign

    f = assign(obj.registry(), finding_id, owner=owner, due=due, reason=reason)
    emit(f.to_dict(), as_json, lambda _: f"finding #{f.id}: owner {f.owner}, due {f.due_at:%Y-%m-%d}")


@finding_group.command("propose")
@click.argument("finding_id")
@click.option("--remediation", required=True, help="The remediation plan.")
@json_option
@pass_ctx
def finding_propose(obj: CliContext, finding_id: str, remediation: str, as_json: bool) -> None:
    """Record a remediation plan (open → remediation_proposed)."""
    from modelreg.operations.findings import propose

    f = propose(obj.registry(), finding_id, remediation=remediation)
    emit(f.to_dict(), as_json, lambda _: f"finding #{f.id}: {f.status}")


@finding_group.command("close")
@click.argument("finding_id")
@click.option("--accept", is_flag=True, help="Accept it (signed; the policy's acceptance role).")
@click.option("--reason", default="", help="Why it is accepted.")
@click.option("--key", "key_path", type=click.Path(dir_okay=False), help="Your private key.")
@json_option
@pass_ctx
def finding_close(
    obj: CliContext, finding_id: str, accept: bool, reason: str, key_path: str | None, as_json: bool
) -> None:
    """Close a finding: with a later passing run of its control as evidence, or --accept (signed)."""
    from modelreg.operations.findings import close

    f = close(obj.registry(), finding_id, accept=accept, reason=reason, key_path=key_path)
    emit(f.to_dict(), as_json, lambda _: f"finding #{f.id}: closed ({(f.closure or {}).get('kind')})")


# -- inventory and report -------------------------------------------------------------------------------


@click.command("inventory")
@click.option(
    "--format", "fmt", default="csv", show_default=True, type=click.Choice(["csv", "xlsx", "html", "json"])
)
@click.option("-o", "--output", "out", type=click.Path(), help="Write to this file (xlsx needs it).")
@pass_ctx
def inventory_cmd(obj: CliContext, fmt: str, out: str | None) -> None:
    """The model inventory (台账): every model and version, bilingual headers."""
    from modelreg.operations.inventory import export

    result = export(obj.registry(), fmt, out)
    if out is None:
        text = result["text"] or ""
        click.echo(text if text.endswith("\n") else text + "\n", nl=False)
    else:
        click.echo(f"wrote {len(result['rows'])} row(s) to {out}", err=True)


@click.group("report")
def report_group() -> None:
    """Documents a validator signs."""


@report_group.command("validation")
@click.argument("name")
@click.argument("version")
@click.option("-o", "--output", "out", required=True, type=click.Path(), help="report.docx, .pdf or .html")
@click.option(
    "--template", type=click.Path(dir_okay=False), help="A bank's .docx template (styles, letterhead)."
)
@click.option(
    "--evidence-pack", type=click.Path(dir_okay=False), help="The evidence pack the report refers to."
)
@json_option
@pass_ctx
def report_validation(
    obj: CliContext,
    name: str,
    version: str,
    out: str,
    template: str | None,
    evidence_pack: str | None,
    as_json: bool,
) -> None:
    """The bilingual validation report of NAME VERSION."""
    from modelreg.operations.report import report_data, write_report

    data = report_data(obj.registry(), name, version, evidence_pack=evidence_pack)
    path = write_report(data, out, template=template)
    if as_json:
        emit_json({"file": str(path), "report": data})
    else:
        click.echo(f"wrote {path} ({data['conclusion']['en']})")
