"""``modelreg demo``: the main job. Parses options, calls ``modelreg.demo.main_job.run_demo``, formats."""

from __future__ import annotations

import click

from modelreg.cli.common import CliContext, json_option, pass_ctx


@click.command("demo")
@click.option(
    "--fresh",
    is_flag=True,
    help="Delete the embedded default's stores (.modelreg: registry, MLflow, keys) first.",
)
@click.option(
    "--suite",
    type=click.Choice(["ed25519", "sm2"]),
    default="ed25519",
    show_default=True,
    help="Signature suite of every key; sm2 = 国密 SM2 signatures with an SM3 audit log (needs modelreg[gm]).",
)
@json_option
@pass_ctx
def demo_cmd(obj: CliContext, fresh: bool, suite: str, as_json: bool) -> None:
    """Run the whole lifecycle on German credit (模型全生命周期演示).

    Sets up users and keys, trains a clean and a biased credit model, logs them to MLflow and registers
    them, validates both (the biased one fails the fairness controls and is sent back), approves and deploys
    the clean one, monitors a drifted month (breach → automatic suspension), retires it, builds an evidence
    pack and verifies the audit log. The registry is left in place to explore with the CLI and `mlflow ui`.

    Exit status 0 when every expected outcome happened, 1 otherwise (the failed ones are named).
    """
    from modelreg.demo.main_job import report_json, run_demo

    say = (lambda _line: None) if as_json else click.echo
    report = run_demo(fresh=fresh, say=say, settings=obj.settings, debug=obj.debug, suite=suite)
    if as_json:
        click.echo(report_json(report))
    if not report.ok:
        click.get_current_context().exit(1)
