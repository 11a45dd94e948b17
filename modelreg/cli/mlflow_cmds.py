"""``modelreg sync``: MLflow aliases and stage tags against the registry."""

from __future__ import annotations

import click

from modelreg.cli.common import CliContext, emit, json_option, pass_ctx


@click.command("sync")
@click.option("--check", "check_only", is_flag=True, help="Only report divergences (exit 1 if any).")
@json_option
@pass_ctx
def sync_cmd(obj: CliContext, check_only: bool, as_json: bool) -> None:
    """Report (--check) or repair MLflow aliases/tags that diverge from the registry (audited)."""
    from modelreg.integrations.mlflow import projection as mlflow_sync

    reg = obj.registry()
    found = mlflow_sync.check(reg) if check_only else mlflow_sync.repair(reg)
    verb = "diverges" if check_only else "repaired"
    emit(
        {"divergences": [d.to_dict() for d in found], "repaired": not check_only},
        as_json,
        lambda _: (
            "MLflow agrees with the registry"
            if not found
            else "\n".join(f"{verb}: {mlflow_sync.describe(d)}" for d in found)
        ),
    )
    if check_only and found:
        click.get_current_context().exit(1)
