"""``modelreg``: the entry point. Subcommands are imported only when invoked, so ``modelreg --help`` and
read-only commands start fast (no SQLAlchemy for --help; never mlflow/shap/evidently unless needed)."""

from __future__ import annotations

import importlib
import json
import sys

import click

from modelreg.cli.common import CliContext

# name -> (module:attr, short help). The help text lives here so listing commands imports nothing.
COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("modelreg.cli.lifecycle:init_cmd", "Create or upgrade the registry schema (idempotent)."),
    "user": ("modelreg.cli.users:user_group", "Users and their roles."),
    "keys": ("modelreg.cli.users:keys_group", "Signing keys (Ed25519 or SM2)."),
    "register": ("modelreg.cli.lifecycle:register_cmd", "Register an MLflow model version (stage develop)."),
    "attach-data": (
        "modelreg.cli.lifecycle:attach_data_cmd",
        "Attach a data set's fingerprint to a version.",
    ),
    "card": ("modelreg.cli.lifecycle:card_cmd", "Set model card fields of a version in develop."),
    "list": ("modelreg.cli.lifecycle:list_cmd", "List registered model versions."),
    "show": ("modelreg.cli.lifecycle:show_cmd", "Show one model version with its history."),
    "submit": ("modelreg.cli.lifecycle:submit_cmd", "develop → validate."),
    "send-back": ("modelreg.cli.lifecycle:send_back_cmd", "validate → develop, with a reason."),
    "deploy": ("modelreg.cli.lifecycle:deploy_cmd", "validate → deploy (gate: policy, approvals)."),
    "suspend": (
        "modelreg.cli.lifecycle:suspend_cmd",
        "Suspend a deployed version at once (human intervention).",
    ),
    "resume": ("modelreg.cli.lifecycle:resume_cmd", "Resume a suspended version."),
    "retire": ("modelreg.cli.lifecycle:retire_cmd", "Retire a version, with a reason."),
    "audit": (
        "modelreg.cli.audit_cmds:audit_group",
        "The tamper-evident audit log: log, verify, checkpoint, proof.",
    ),
    "policy": ("modelreg.cli.policy_cmds:policy", "Policy packs: list, show, lint, test."),
    "validate": (
        "modelreg.cli.governance_cmds:validate_cmd",
        "Run the deploy gate's machine controls on hold-out data.",
    ),
    "precheck": (
        "modelreg.cli.governance_cmds:precheck_cmd",
        "Pre-check the policy's machine controls before submitting (stored and audited).",
    ),
    "monitor": ("modelreg.cli.governance_cmds:monitor_cmd", "Run the monitor gate's controls on new data."),
    "findings": ("modelreg.cli.governance_cmds:findings_cmd", "Findings of a version's latest evaluation."),
    "approve": ("modelreg.cli.governance_cmds:approve_cmd", "Sign an approval as validator or approver."),
    "reject": ("modelreg.cli.governance_cmds:reject_cmd", "Sign a rejection."),
    "attest": ("modelreg.cli.governance_cmds:attest_cmd", "Sign an attestation control."),
    "waive": ("modelreg.cli.governance_cmds:waive_cmd", "Grant a time-limited waiver of a control."),
    "sync": ("modelreg.cli.mlflow_cmds:sync_cmd", "Check or repair MLflow aliases/tags from the registry."),
    "card-lint": ("modelreg.cli.card_cmds:card_lint_cmd", "Check a model card file against the card schema."),
    "evidence": ("modelreg.cli.evidence_cmds:evidence_group", "Evidence packs: pack, verify, recompute."),
    "due": (
        "modelreg.cli.operations_cmds:due_cmd",
        "Review calendar: what is overdue or due soon (exit 1 if overdue).",
    ),
    "finding": ("modelreg.cli.operations_cmds:finding_group", "Findings tracked until remediated."),
    "inventory": (
        "modelreg.cli.operations_cmds:inventory_cmd",
        "The model inventory (台账): csv, xlsx, html, json.",
    ),
    "report": ("modelreg.cli.operations_cmds:report_group", "The bilingual validation report (DOCX/PDF)."),
    "serve": (
        "modelreg.cli.serve_cmd:serve_cmd",
        "Serve the registry over HTTP (REST API, OIDC / signed requests; needs modelreg[service]).",
    ),
    "challenger": (
        "modelreg.cli.challenger_cmds:challenger_group",
        "Champion/challenger: score both versions on monitoring data, compare AUCs (DeLong).",
    ),
    "outcomes": (
        "modelreg.cli.outcomes_cmds:outcomes_group",
        "Late outcomes by decision id (add) and realised performance per vintage (report).",
    ),
    "demo": (
        "modelreg.cli.demo_cmd:demo_cmd",
        "Run the whole lifecycle on German credit data (the main job).",
    ),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name, (target, _) in COMMANDS.items() if _module_exists(target)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None or not _module_exists(entry[0]):
            return None
        module, _, attr = entry[0].partition(":")
        cmd = getattr(importlib.import_module(module), attr)
        return cmd

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def _module_exists(target: str) -> bool:
    from importlib.util import find_spec

    module = target.partition(":")[0]
    try:
        return find_spec(module) is not None
    except ModuleNotFoundError:
        return False


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--as",
    "actor",
    metavar="USER",
    envvar="MODELREG_USER",
    help="Act as this registered user (default: $MODELREG_USER or the OS user).",
)
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.version_option(package_name="modelreg")
@click.pass_context
def cli(ctx: click.Context, actor: str | None, debug: bool) -> None:
    """modelreg: model and algorithm risk registry (模型与算法风险登记库).

    Exit codes: 0 done; 1 refused / check failed / verification failed / breach; 2 usage or input error.
    """
    ctx.obj = CliContext(actor=actor, debug=debug)


def main(argv: list[str] | None = None) -> int:
    """Run one command. The one error handler: every failure becomes one line on stderr (a JSON object
    under ``--json``) and an exit status; ``--debug`` adds the traceback but never changes the status."""
    args = list(sys.argv[1:] if argv is None else argv)
    flags = args[: args.index("--")] if "--" in args else args
    debug, as_json = "--debug" in flags, "--json" in flags
    from modelreg.settings import environ_overrides

    try:
        # MLflow 3.17 defaults pickle loading to true: never in a command. Set for the command only, so a
        # process that calls main() (a notebook, the tests) gets its own setting back afterwards.
        # Against an MLflow server, MLflow writes "🏃 View run … at: http://…" to stdout when a run ends:
        # under --json stdout holds the one JSON document and nothing else.
        quiet_urls = {"MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"} if as_json else {}
        with (
            environ_overrides({"MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "false", **quiet_urls}),
            _mlflow_configured(),
            _quiet_under_json(as_json),
        ):
            # Without standalone mode click returns the code of ctx.exit(n) instead of raising it.
            code = cli.main(args=args, prog_name="modelreg", standalone_mode=False)
        if isinstance(code, int) and code:
            return code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except BaseException as exc:
        return _report_error(exc, debug=debug, as_json=as_json)
    return 0


def _quiet_under_json(as_json: bool):
    import contextlib

    if not as_json:
        return contextlib.nullcontext()
    from modelreg.cli.common import quiet_mlflow

    return quiet_mlflow()


def _mlflow_configured():
    """Every command runs with the registry's MLflow stores applied to MLflow before its first call (one
    configuration path: mlflow.env and the environment, read by ``modelreg.settings``). A broken
    configuration is not reported here: the commands that need it raise it themselves, so offline
    commands (``evidence verify``) still work."""
    import contextlib

    from modelreg import settings
    from modelreg.errors import ConfigError

    try:
        return settings.load().mlflow_scope()
    except ConfigError:
        return contextlib.nullcontext()


def _report_error(exc: BaseException, *, debug: bool, as_json: bool) -> int:
    from modelreg.errors import ModelregError

    if isinstance(exc, ModelregError):
        code, message, status = exc.code, exc.message, exc.exit_status
        details = _details(exc)
    elif isinstance(exc, click.Abort):
        code, message, status, details = "aborted", "aborted", 2, []
    elif isinstance(exc, click.ClickException):
        code, message, status, details = "usage_error", _click_message(exc), 2, []
    elif isinstance(exc, KeyboardInterrupt):
        code, message, status, details = "interrupted", "interrupted: nothing more was written", 2, []
    elif isinstance(exc, Exception):  # an unexpected failure: one line, and the traceback only on request
        text = str(exc).strip().splitlines()
        code, status, details = "internal_error", 2, []
        message = f"internal error {type(exc).__name__}: {text[0] if text else ''}"
        if not debug:
            message += " (rerun with --debug for the traceback)"
    else:  # SystemExit and friends are not ours to translate
        raise exc
    if debug:
        import traceback

        traceback.print_exception(exc)
    if as_json:
        payload: dict = {"code": code, "message": message, "exit": status}
        if isinstance(exc, ModelregError) and exc.details:
            payload["details"] = exc.details
        # ``ok: false`` as in the reports of commands whose answer is "no" (audit verify, policy lint), so a
        # script reads one key whichever way a command said no; ``details.unmet`` lists a gate's every requirement.
        click.echo(
            json.dumps({"ok": False, "error": payload}, ensure_ascii=False, sort_keys=True, default=str),
            err=True,
        )
    elif isinstance(exc, click.ClickException):
        exc.show()  # click's own usage line, hint and "Error: ..." (what click users expect)
    elif code in ("aborted", "interrupted"):
        click.echo(message, err=True)
    else:
        click.echo(f"error: {message}", err=True)
        for line in details:
            click.echo(f"  - {line}", err=True)
    return status


def _click_message(exc: click.ClickException) -> str:
    """Click's usage errors as one line, with the command they came from (as click would print it)."""
    message = exc.format_message()
    ctx = getattr(exc, "ctx", None)
    if isinstance(exc, click.UsageError) and ctx is not None:
        message += f" (see: {ctx.command_path} --help)"
    return message


def _details(exc) -> list[str]:
    unmet = getattr(exc, "unmet", None)
    if unmet:
        from modelreg.registry import unmet_lines

        return unmet_lines(unmet)
    return []


def entry() -> None:  # pragma: no cover
    sys.exit(main())
