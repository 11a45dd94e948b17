"""Champion/challenger commands: ``modelreg challenger run``."""

from __future__ import annotations

import click

from modelreg.cli.common import (
    CliContext,
    DataPath,
    emit,
    encoding_option,
    json_option,
    pass_ctx,
    progress,
    table,
)


@click.group("challenger")
def challenger_group() -> None:
    """Champion/challenger comparisons (evidence only: never changes the deployment)."""


@challenger_group.command("run")
@click.option("--model", "name", required=True, help="Registered model name.")
@click.option("--champion", required=True, help="The deployed version (the champion).")
@click.option("--challenger", required=True, help="A version in stage validate (the challenger).")
@click.option(
    "--data",
    required=True,
    type=DataPath(exists=True),
    help="Labelled monitoring data (CSV/Parquet; over MODELREG_URL also server:<root>/<path>).",
)
@click.option("--target", required=True, help="Target column (the outcome).")
@click.option("--positive-label", help="The target's positive class when its labels are not 0/1.")
@click.option("--segment", "segments", multiple=True, help="Segment column (repeatable), e.g. channel.")
@click.option(
    "--min-segment-size",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Segments with fewer rows are reported as insufficient data.",
)
@click.option(
    "--confidence",
    type=click.FloatRange(0.5, 0.999),
    default=0.95,
    show_default=True,
    help="Confidence level of the DeLong interval.",
)
@click.option("--policy", help="Policy pack id or file (default: $MODELREG_POLICY).")
@encoding_option
@json_option
@pass_ctx
def run_cmd(obj: CliContext, name: str, as_json: bool, **options) -> None:
    """Score the champion and the challenger on the same data; the AUC difference (challenger − champion)
    with its DeLong interval, overall and per segment, is stored as a challenger evaluation on both
    versions, audited. No version moves."""
    from modelreg.governance.challenger import run_challenger

    reg = obj.registry()
    done = run_challenger(reg, name, progress=progress(as_json), **options)
    emit(done.to_dict(), as_json, _text)


def _fmt(v: object) -> str:
    return "" if v is None else f"{v:.4f}" if isinstance(v, float) else str(v)


def _text(payload: dict) -> str:
    champ, chall = payload["champion"], payload["challenger"]
    rows = [
        [
            r["segment"] or "(all)",
            r.get("rows"),
            _fmt(r.get("auc_champion")),
            _fmt(r.get("auc_challenger")),
            _fmt(r.get("auc_difference")),
            f"[{_fmt(r.get('ci_low'))}, {_fmt(r.get('ci_high'))}]" if r.get("ci_low") is not None else "",
            _fmt(r.get("auc_difference_pvalue")),
            r.get("reason") or "",
        ]
        for r in payload["comparison"]
    ]
    head = (
        f"{champ['model']}: challenger {chall['version']} vs champion {champ['version']} "
        f"(evaluations #{champ['id']} and #{chall['id']}, purpose challenger); no version moved"
    )
    headers = ["segment", "rows", "AUC champion", "AUC challenger", "difference", "DeLong CI", "p", "note"]
    return head + "\n" + table(rows, headers)
