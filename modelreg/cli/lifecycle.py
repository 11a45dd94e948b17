"""Lifecycle commands: init, register, list, show, submit, send-back, deploy, suspend, resume, retire."""

from __future__ import annotations

import click

from modelreg.cli.common import CliContext, DataPath, emit, encoding_option, json_option, pass_ctx, table
from modelreg.domain.stages import REPLACEMENTS, DataRole, RiskTier, Stage, values


def _version_line(v) -> str:
    flag = " (SUSPENDED)" if v.suspended else ""
    return f"{v.model} {v.version}: {v.stage.value}{flag}"


@click.command("init")
@click.option(
    "--hash",
    "tree_hash",
    type=click.Choice(["sha256", "sm3"]),
    help="Leaf and node hash of the audit log's Merkle tree, chosen once when the registry is created "
    "(default sha256; sm3 = 国密 SM3). An existing registry keeps its own.",
)
@click.option(
    "--suite",
    type=click.Choice(["ed25519", "sm2"]),
    help="Signature suite of the registry's own keys (audit checkpoints, evidence packs), chosen once "
    "(default ed25519; sm2 needs modelreg[gm]). Users may register keys of either suite.",
)
@click.option(
    "--pg-roles",
    is_flag=True,
    help="PostgreSQL, as a superuser: also create the owner, application and auditor roles (least privilege).",
)
@click.option(
    "--role-prefix",
    default="modelreg",
    show_default=True,
    help="Names the roles PREFIX_owner, _app, _auditor.",
)
@json_option
@pass_ctx
def init_cmd(
    obj: CliContext, tree_hash: str | None, suite: str | None, pg_roles: bool, role_prefix: str, as_json: bool
) -> None:
    """Create or upgrade the registry schema. Safe to run again. Never over MODELREG_URL: the database is the
    service operator's, who runs init where its credentials are."""
    if obj.settings.url:
        from modelreg.errors import BadInput
        from modelreg.service.client import MSG_INIT_REMOTE

        raise BadInput(MSG_INIT_REMOTE.format(url=obj.settings.url))
    from modelreg.client import open_registry

    reg = open_registry(obj.settings, actor=obj.actor)
    result = reg.init(tree_hash=tree_hash, suite=suite)
    if pg_roles:
        result["pg_roles"] = reg.setup_pg_roles(role_prefix)
    url = obj.settings.database_url

    def human(r: dict) -> str:
        if r["created"]:
            text = f"initialised registry at {url} (schema {r['after']})"
        elif r["upgraded"]:
            text = f"upgraded registry at {url} from schema {r['before']} to {r['after']}"
        else:
            text = f"registry at {url} is up to date (schema {r['after']})"
        if "pg_roles" in r:
            roles = r["pg_roles"]["roles"]
            text += (
                f"\nroles: {roles['owner']} owns the tables (NOLOGIN; never used by the application), "
                f"{roles['app']} is the application's login (INSERT/SELECT on audit_events, no DDL), "
                f"{roles['auditor']} reads only"
            )
        return text

    emit(result, as_json, human)


@click.command("register")
@click.argument("name")
@click.argument("version", required=False)
@click.option("--from-run", "run_id", help="Create the MLflow model version from this run first.")
@click.option(
    "--artifact-path", default="model", show_default=True, help="Model artifact path inside the run."
)
@click.option("--owner", required=True, help="Accountable owner (a registered user).")
@click.option(
    "--risk-tier",
    required=True,
    type=click.Choice(values(RiskTier)),
    help="NFRA 2025 item 24 classification.",
)
@click.option("--purpose", required=True, help="What decisions the model supports.")
@click.option("--business-line", help="Business line using the model.")
@click.option("--vendor", help="Supplier of a vendor (third-party) model: the policy's vendor view applies.")
@json_option
@pass_ctx
def register_cmd(
    obj: CliContext,
    name: str,
    version: str | None,
    run_id: str | None,
    artifact_path: str,
    owner: str,
    risk_tier: str,
    purpose: str,
    business_line: str | None,
    vendor: str | None,
    as_json: bool,
) -> None:
    """Register MLflow model NAME VERSION (or a run with --from-run) in stage develop."""
    from modelreg.errors import BadInput
    from modelreg.integrations.mlflow.registration import register_from_mlflow

    if (version is None) == (run_id is None):
        raise BadInput("give exactly one of VERSION or --from-run RUN_ID")
    mv = register_from_mlflow(
        obj.registry(),
        name,
        version,
        run_id=run_id,
        artifact_path=artifact_path,
        owner=owner,
        risk_tier=risk_tier,
        purpose=purpose,
        business_line=business_line,
        model_card={"vendor": vendor} if vendor else None,
    )
    emit(
        mv,
        as_json,
        lambda v: (
            f"registered {v.model} {v.version} ({v.risk_tier} risk, owner {v.owner}): stage {v.stage.value}"
        ),
    )


@click.command("attach-data")
@click.argument("name")
@click.argument("version")
@click.option(
    "--role",
    required=True,
    type=click.Choice(values(DataRole)),
)
@click.option(
    "--data",
    "path",
    required=True,
    type=DataPath(dir_okay=True),
    help="CSV or Parquet file (over MODELREG_URL also server:<root>/<path> in the service's data roots).",
)
@click.option("--owner", help="Accountable data owner.")
@encoding_option
@json_option
@pass_ctx
def attach_data_cmd(
    obj: CliContext,
    name: str,
    version: str,
    role: str,
    path: str,
    owner: str | None,
    encoding: str | None,
    as_json: bool,
) -> None:
    """Fingerprint a data set (rows, schema, content digest) and attach it to NAME VERSION."""
    from modelreg.datasets import attach_file

    ds = attach_file(obj.registry(), name, version, role=role, path=path, owner=owner, encoding=encoding)
    emit(ds, as_json, lambda d: f"attached {d.role} data {d.name}: {d.rows} rows, sha256 {d.digest[:16]}…")


@click.command("card")
@click.argument("name")
@click.argument("version")
@click.option(
    "--set",
    "pairs",
    multiple=True,
    metavar="FIELD=VALUE",
    help="A model card field, e.g. intended_use=...; repeatable.",
)
@click.option(
    "--file",
    "card_file",
    type=click.Path(exists=True, dir_okay=False),
    help="A YAML/JSON file of model card fields.",
)
@json_option
@pass_ctx
def card_cmd(
    obj: CliContext, name: str, version: str, pairs: tuple[str, ...], card_file: str | None, as_json: bool
) -> None:
    """Set model card fields (intended use, excluded uses, limitations, features...)."""
    from modelreg.errors import BadInput

    fields: dict = {}
    if card_file:
        import yaml

        try:
            with open(card_file, encoding="utf-8") as fh:
                loaded = yaml.safe_load(fh)
        except yaml.YAMLError as exc:
            raise BadInput(f"{card_file}: not valid YAML/JSON: {str(exc).splitlines()[0]}") from None
        if not isinstance(loaded, dict):
            raise BadInput(f"{card_file} must hold a mapping of model card fields")
        fields.update(loaded)
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise BadInput(f"--set must be FIELD=VALUE. Got {pair!r} instead.")
        fields[key.strip()] = value
    mv = obj.registry().update_card(name, version, fields)
    emit(
        mv,
        as_json,
        lambda v: f"model card of {v.model} {v.version} now has: {', '.join(sorted(v.model_card))}",
    )


@click.command("list")
@click.option("--stage", type=click.Choice(values(Stage)))
@click.option("--model", "model_name", help="Only this model.")
@json_option
@pass_ctx
def list_cmd(obj: CliContext, stage: str | None, model_name: str | None, as_json: bool) -> None:
    """List registered model versions."""
    if obj.settings.url:
        versions = obj.registry().list(stage, model_name)
    else:
        from modelreg.store.listing import list_versions

        versions = list_versions(obj.settings, stage, model_name, actor=obj.actor)
    emit(
        [v.to_dict() for v in versions] if as_json else None,  # the dict form only when it is printed
        as_json,
        lambda _: table(
            [
                [
                    v.model,
                    v.version,
                    v.stage.value + (" (suspended)" if v.suspended else ""),
                    v.risk_tier,
                    v.owner,
                    v.updated_at.strftime("%Y-%m-%d %H:%M"),
                ]
                for v in versions
            ],
            ["MODEL", "VERSION", "STAGE", "TIER", "OWNER", "UPDATED (UTC)"],
        ),
    )


@click.command("show")
@click.argument("name")
@click.argument("version")
@json_option
@pass_ctx
def show_cmd(obj: CliContext, name: str, version: str, as_json: bool) -> None:
    """Show NAME VERSION: attributes, data, lifecycle history."""
    reg = obj.registry()
    mv = reg.show(name, version)
    history = reg.history(name, version)
    data = reg.datasets(name, version)
    payload = {
        "version": mv.to_dict(),
        "history": [h.to_dict() for h in history],
        "datasets": [d.to_dict() for d in data],
    }

    def human(_: dict) -> str:
        lines = [
            _version_line(mv),
            f"  owner: {mv.owner}   risk tier: {mv.risk_tier}   business line: {mv.business_line or '-'}",
            f"  purpose: {mv.purpose}",
            f"  registered by {mv.registered_by} at {mv.created_at:%Y-%m-%d %H:%M:%S} UTC",
        ]
        if mv.model_uri:
            lines.append(
                f"  MLflow: {mv.model_uri} (run {mv.mlflow_run_id}, artifact sha256 {str(mv.artifact_digest)[:16]}…)"
            )
        if data:
            lines.append("  data:")
            lines += [f"    {d.role:<10} {d.name} {d.rows} rows sha256 {d.digest[:16]}…" for d in data]
        lines.append("  history:")
        lines += [
            f"    {h.at:%Y-%m-%d %H:%M:%S} {_move(h)} by {h.actor}" + (f": {h.reason}" if h.reason else "")
            for h in history
        ] or ["    (registered, no moves yet)"]
        return "\n".join(lines)

    emit(payload, as_json, human)


def _move(h) -> str:
    """A history entry as words: suspend and resume do not change the stage, so "deploy → deploy" would
    read as a move that did nothing."""
    if h.action == "suspend":
        return f"{'suspended':<10} (stage {h.target})"
    if h.action == "resume":
        return f"{'resumed':<10} (stage {h.target})"
    return f"{h.action:<10} {h.source} → {h.target}"


def _transition_output(result, as_json: bool) -> None:
    def human(r) -> str:
        text = f"{_version_line(r.version)} (audit event #{r.event.seq})"
        if r.replaced is not None:
            text += f"\n  replaced {r.replaced.model} {r.replaced.version} → {r.replaced.stage.value}"
        return text

    emit(result, as_json, human)


@click.command("submit")
@click.argument("name")
@click.argument("version")
@json_option
@pass_ctx
def submit_cmd(obj: CliContext, name: str, version: str, as_json: bool) -> None:
    """develop → validate (gate: submit requirements)."""
    _transition_output(obj.registry().submit(name, version), as_json)


@click.command("send-back")
@click.argument("name")
@click.argument("version")
@click.option("--reason", required=True)
@json_option
@pass_ctx
def send_back_cmd(obj: CliContext, name: str, version: str, reason: str, as_json: bool) -> None:
    """validate → develop, with a reason."""
    _transition_output(obj.registry().send_back(name, version, reason=reason), as_json)


@click.command("deploy")
@click.argument("name")
@click.argument("version")
@click.option(
    "--replace",
    type=click.Choice(list(REPLACEMENTS)),
    is_flag=False,
    flag_value="retire",
    default=None,
    help="Replace the deployed version: retire it (default) or demote it to validate.",
)
@json_option
@pass_ctx
def deploy_cmd(obj: CliContext, name: str, version: str, replace: str | None, as_json: bool) -> None:
    """validate → deploy (gate: policy controls, approvals, attestations)."""
    _transition_output(obj.registry().deploy(name, version, replace=replace), as_json)


@click.command("suspend")
@click.argument("name")
@click.argument("version")
@click.option("--reason", required=True)
@json_option
@pass_ctx
def suspend_cmd(obj: CliContext, name: str, version: str, reason: str, as_json: bool) -> None:
    """Suspend a deployed version at once (NFRA 2025 item 24 人工干预)."""
    _transition_output(obj.registry().suspend(name, version, reason=reason), as_json)


@click.command("resume")
@click.argument("name")
@click.argument("version")
@click.option("--reason", required=True)
@json_option
@pass_ctx
def resume_cmd(obj: CliContext, name: str, version: str, reason: str, as_json: bool) -> None:
    """Resume a suspended version (a person decides; never automatic)."""
    _transition_output(obj.registry().resume(name, version, reason=reason), as_json)


@click.command("retire")
@click.argument("name")
@click.argument("version")
@click.option("--reason", required=True)
@json_option
@pass_ctx
def retire_cmd(obj: CliContext, name: str, version: str, reason: str, as_json: bool) -> None:
    """Retire a version (from develop, validate or deploy), with a reason."""
    _transition_output(obj.registry().retire(name, version, reason=reason), as_json)
