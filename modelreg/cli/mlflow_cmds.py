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
    # Ungoverned models/versions are reported (by --check and by a repair alike) but never repaired and
    # do not change the exit code: which MLflow models a bank governs is its own policy decision.
    loose = mlflow_sync.ungoverned(reg)
    # What was found outside governance is recorded (an audit event the policy's optional control reads),
    # by an operator or admin; for anyone else the report says it was not recorded, and why.
    record = mlflow_sync.record_ungoverned(reg, loose)
    verb = "diverges" if check_only else "repaired"

    def text(_: object) -> str:
        lines = [f"{verb}: {mlflow_sync.describe(d)}" for d in found]
        lines += [f"ungoverned: {mlflow_sync.describe(d)}" for d in loose]
        if not found:
            lines.insert(0, "MLflow agrees with the registry")
        if record["recorded"]:
            lines.append(f"recorded: {len(loose)} ungoverned item(s), audit event #{record['seq']}")
        else:
            lines.append(f"not recorded in the registry: {record['reason']}")
        return "\n".join(lines)

    emit(
        {
            "divergences": [d.to_dict() for d in found],
            "ungoverned": [d.to_dict() for d in loose],
            "repaired": not check_only,
            "record": record,
        },
        as_json,
        text,
    )
    if check_only and found:
        click.get_current_context().exit(1)
