"""Late outcomes: ``modelreg outcomes add`` and ``modelreg outcomes report``."""

from __future__ import annotations

import click

from modelreg.cli.common import CliContext, DataPath, emit, encoding_option, json_option, pass_ctx, table


@click.group("outcomes")
def outcomes_group() -> None:
    """Late outcomes (e.g. defaults) keyed by decision id, and realised performance per vintage."""


def _local(obj: CliContext):
    return obj.registry()  # the registry database, or the service at MODELREG_URL (the same output)


def _pct(value) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _num(value) -> str:
    return "-" if value is None else f"{value:.4f}"


@outcomes_group.command("add")
@click.argument("name")
@click.argument("version")
@click.argument("file", type=DataPath(exists=True, dir_okay=True))
@click.option("--id-column", help="Decision id column (default: the model card's decision_id_column).")
@click.option("--outcome-column", help="Outcome column (default: the model card's outcome_column).")
@click.option(
    "--time-column", help="When each outcome was observed (default: the model card's outcome_time_column)."
)
@click.option(
    "--positive-label",
    help="The outcome's positive class (e.g. bad, 违约, Y) when its labels are not 0/1.",
)
@click.option(
    "--strict",
    is_flag=True,
    help="Refuse the whole file (exit 2, nothing recorded) if any id is unknown or observed before its decision.",
)
@encoding_option
@json_option
@pass_ctx
def add_cmd(obj: CliContext, name: str, version: str, file: str, as_json: bool, **options) -> None:
    """Record the outcomes in FILE (CSV or Parquet) for NAME VERSION, all or nothing, audited.

    Duplicate ids in the file, or an outcome contradicting one already recorded: exit 2, nothing recorded.
    Unknown ids (never scored for this version) and outcomes observed before their decision are refused and
    counted (exit 1, the rest recorded; --strict refuses the file). Re-sending recorded outcomes is harmless."""
    from modelreg.governance.outcomes import add_outcomes

    done = add_outcomes(_local(obj), name, version, file, **options)

    def human(d: dict) -> str:
        lines = [
            f"{d['model']} {d['version']}: outcomes batch #{d['batch_id']} from {d['source']} "
            f"(sha256 {d['digest'][:16]}…)",
            f"  rows {d['rows']:,}: recorded {d['matched']:,}, already recorded {d['already_recorded']:,}, "
            f"refused {d['refused']:,} (unknown id {d['unknown']:,}, observed before the decision "
            f"{d['before_decision']:,})",
        ]
        if d["unknown"]:
            lines.append(f"  unknown ids, e.g. {', '.join(d['unknown_sample'])}")
        if d["before_decision"]:
            lines.append(f"  observed before their decision, e.g. {', '.join(d['before_decision_sample'])}")
        lines.append(
            f"  recorded for this version: {d['totals']['outcomes']:,} outcomes of {d['totals']['decisions']:,} decisions"
        )
        return "\n".join(lines)

    emit(done, as_json, human)
    if done["refused"]:
        click.get_current_context().exit(1)


@outcomes_group.command("report")
@click.argument("name")
@click.argument("version")
@click.option(
    "--min-class-count",
    type=click.IntRange(min=1),
    help="Events and non-events needed for a realised AUC (default 30).",
)
@json_option
@pass_ctx
def report_cmd(obj: CliContext, name: str, version: str, min_class_count: int | None, as_json: bool) -> None:
    """Realised performance per decision month (vintage): decisions, outcomes known, coverage, default rate,
    realised AUC; and each monitoring run's label-free estimate against the realised AUC on its decisions."""
    from modelreg.governance.outcomes import outcomes_report

    report = outcomes_report(_local(obj), name, version, min_class_count=min_class_count)

    def human(r: dict) -> str:
        rows = [
            [
                v["vintage"],
                f"{v['decisions']:,}",
                f"{v['outcomes_known']:,}",
                _pct(v["coverage"]),
                _pct(v["default_rate"]),
                _num(v["realised_auc"]) if v["status"] == "ok" else "insufficient data",
            ]
            for v in [*r["vintages"], {"vintage": "all", **r["overall"]}]
        ]
        out = [
            f"{r['model']} {r['version']}: realised performance per vintage",
            table(rows, ["vintage", "decisions", "known", "coverage", "default rate", "realised AUC"]),
        ]
        if r["comparison"]:
            comp = [
                [
                    f"#{c['evaluation_id']}",
                    f"{c['outcomes_known']:,}/{c['decisions']:,}",
                    _num(c["estimated_auc"]),
                    "-"
                    if c["estimated_auc_low"] is None
                    else f"[{c['estimated_auc_low']:.4f}, {c['estimated_auc_high']:.4f}]",
                    _num(c["realised_auc"]),
                    {True: "inside", False: "OUTSIDE", None: c["status"].replace("_", " ")}[c["inside_band"]]
                    + (" (partial)" if c["partial"] and c["inside_band"] is not None else ""),
                ]
                for c in r["comparison"]
            ]
            out += [
                "estimate (at scoring) against realised, per monitoring run",
                table(comp, ["evaluation", "known", "estimated AUC", "band", "realised AUC", "result"]),
            ]
        return "\n".join(out)

    emit(report, as_json, human)
