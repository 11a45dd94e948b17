"""Governance commands: validate, precheck, monitor, findings, approve, reject, attest, waive."""

from __future__ import annotations

from collections.abc import Callable

import click

from modelreg.cli.common import (
    CliContext,
    DataPath,
    emit,
    encoding_option,
    json_option,
    pass_ctx,
    progress,
)
from modelreg.domain.roles import Role
from modelreg.domain.stages import EVALUATION_PURPOSES

SIGNING_ROLES = (Role.VALIDATOR.value, Role.APPROVER.value)  # who signs approvals and rejections

_POSITIVE_HELP = (
    "The target's positive class (e.g. bad, 违约, Y) when its labels are not 0/1; the target must then have "
    "two labels."
)


_html_option = click.option(
    "--html-report/--no-html-report",
    "html_report",
    default=True,
    show_default=True,
    help="Write the drift monitor's Evidently HTML report (for people; no metric comes from it). It is cached "
    "under <home>/cache/evidently per digest of its inputs, so a rerun on the same data reuses it.",
)

_segment_options = [
    click.option(
        "--segment",
        "segments",
        multiple=True,
        help="Segment column (repeatable), e.g. channel: drift, performance and fairness also per segment, "
        "with counts, a minimum segment size and Benjamini-Hochberg adjusted drift p-values.",
    ),
    click.option(
        "--cross-segments",
        is_flag=True,
        default=False,
        help="With several --segment columns, also every combination of their values.",
    ),
]


def _data_options(fn: Callable) -> Callable:
    options = [
        click.option(
            "--data",
            "data",
            required=True,
            type=DataPath(exists=True),
            help="Hold-out / scoring data (CSV or Parquet; over MODELREG_URL also server:<root>/<path>).",
        ),
        click.option(
            "--reference",
            type=DataPath(exists=True),
            help="Training / reference data for drift and explanation stability.",
        ),
        click.option("--target", help="Target column (1 = the positive class, e.g. default)."),
        click.option("--positive-label", help=_POSITIVE_HELP),
        click.option("--prediction", help="Column with the model's hard predictions."),
        click.option("--score", help="Column with the model's scores (probability of the positive class)."),
        click.option(
            "--model",
            "model_uri",
            help="MLflow model URI to run (default: the version's own model, when registered from MLflow).",
        ),
        click.option(
            "--sensitive", multiple=True, help="Sensitive attribute column (repeatable), e.g. sex, age_group."
        ),
        click.option("--policy", help="Policy pack id or file (default: $MODELREG_POLICY)."),
        *_segment_options,
        _html_option,
        encoding_option,
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _evaluate(
    obj: CliContext,
    purpose: str,
    name: str,
    version: str,
    as_json: bool,
    *,
    data,
    policy=None,
    sensitive=(),
    model_uri=None,
    score=None,
    prediction=None,
    engine: str = "pandas",
    **columns,
) -> None:
    """Build the input, run the evaluation, report it; exit 1 when any finding fails or errors (not waived)."""
    from modelreg.governance.report import evaluation_text
    from modelreg.governance.runner import EvaluationInput
    from modelreg.governance.service import run_evaluation

    reg = obj.registry()
    if model_uri is None and score is None and prediction is None:
        model_uri = reg.show(name, version).model_uri  # the version's own MLflow model
    inp = EvaluationInput(
        data=data,
        score=score,
        prediction=prediction,
        model_uri=model_uri,
        sensitive=tuple(sensitive),
        engine=engine,
        **columns,
    )
    ev = run_evaluation(reg, name, version, inp, purpose=purpose, policy=policy, progress=progress(as_json))
    emit(ev, as_json, evaluation_text)
    if any(f.status in ("fail", "error") for f in ev.findings):
        click.get_current_context().exit(1)


@click.command("validate")
@click.argument("name")
@click.argument("version")
@_data_options
@json_option
@pass_ctx
def validate_cmd(obj: CliContext, name: str, version: str, as_json: bool, **options) -> None:
    """Run every machine control of the deploy gate and store the Evaluation (exit 1 if any fails)."""
    _evaluate(obj, "validation", name, version, as_json, **options)


@click.command("precheck")
@click.argument("name")
@click.argument("version")
@_data_options
@json_option
@pass_ctx
def precheck_cmd(obj: CliContext, name: str, version: str, as_json: bool, **options) -> None:
    """Run the deploy gate's machine controls (and the submit gate's) before submitting. The result is
    stored as a pre-check evaluation, with its audit event, and the submit gate reads it; it never moves
    the version (exit 1 if any control fails)."""
    _evaluate(obj, "precheck", name, version, as_json, **options)


@click.command("monitor")
@click.argument("name")
@click.argument("version")
@click.option(
    "--data",
    "data",
    required=True,
    type=DataPath(check_path=False),
    help="Scoring data: a CSV or Parquet file, a Parquet folder or glob, duckdb:PATH::TABLE or spark:TABLE "
    "(over MODELREG_URL: a file to upload or server:<root>/<path> in the service's data roots).",
)
@click.option(
    "--engine",
    type=click.Choice(["auto", "pandas", "duckdb", "spark"]),
    default="auto",
    show_default=True,
    help="Where the monitors reduce the data (auto: pandas for small files, duckdb above 2M rows or 1 GB, "
    "spark for spark: tables).",
)
@click.option("--target", help="Target column, once outcomes are known.")
@click.option("--positive-label", help=_POSITIVE_HELP + " Default: the one validation used.")
@click.option("--score", help="Score column (else the model is run).")
@click.option("--prediction", help="Prediction column.")
@click.option("--model", "model_uri", help="MLflow model URI (default: the version's own).")
@click.option("--sensitive", multiple=True)
@click.option("--policy")
@click.option(
    "--reference-period",
    "period_reference",
    type=DataPath(exists=True),
    help="Reference period data (CSV/Parquet) for per-segment drift and score-band stability; drift keeps "
    "the profile stored at validation.",
)
@_segment_options[0]
@_segment_options[1]
@_html_option
@encoding_option
@json_option
@pass_ctx
def monitor_cmd(obj: CliContext, name: str, version: str, as_json: bool, **options) -> None:
    """Evaluate the monitor gate's controls on new data against the validation baseline. A breach exits 1;
    controls with on_breach: suspend suspend the version at once. The data path is checked after the
    permission check (deny first), by the engine that reads it."""
    _evaluate(obj, "monitoring", name, version, as_json, **options)


@click.command("findings")
@click.argument("name")
@click.argument("version")
@click.option(
    "--purpose",
    type=click.Choice(list(EVALUATION_PURPOSES)),
    help="Only this kind of evaluation.",
)
@json_option
@pass_ctx
def findings_cmd(obj: CliContext, name: str, version: str, purpose: str | None, as_json: bool) -> None:
    """Findings of the latest evaluations (waived findings show as waived, never pass) and waivers."""
    from modelreg.governance.report import evaluation_text
    from modelreg.governance.service import latest, signed

    reg = obj.registry()
    evs = latest(reg, name, version, purpose)
    waivers = [w for w in signed(reg, name, version, "waiver")]
    payload = {"evaluations": [e.to_dict() for e in evs], "waivers": [w.to_dict() for w in waivers]}

    def human(_) -> str:
        if not evs:
            return f"{name} {version} has no evaluations yet"
        text = "\n\n".join(evaluation_text(e) for e in evs)
        if waivers:
            text += "\n\nwaivers:\n" + "\n".join(
                f"  {w.control_id} by {w.actor} until {w.payload.get('until')}: {w.payload.get('reason')}"
                + ("" if w.counts else " (INVALID SIGNATURE)")
                for w in waivers
            )
        return text

    emit(payload, as_json, human)


def _sign_output(result: dict, as_json: bool, what: str) -> None:
    emit(
        result,
        as_json,
        lambda r: (
            f"{what}: record #{r['record_id']} signed with {r['signature']['key_id']} ({r['signature']['algorithm']})"
        ),
    )


def _approve(obj: CliContext, name: str, version: str, **kw) -> dict:
    """Locally: sign and record in one transaction. Over MODELREG_URL: sign here what the service would record."""
    reg = obj.registry()
    if getattr(reg, "remote", False):
        return reg.approve(name, version, **kw)
    from modelreg.governance.service import approve

    return approve(reg, name, version, **kw)


@click.command("approve")
@click.argument("name")
@click.argument("version")
@click.option("--role", required=True, type=click.Choice(SIGNING_ROLES))
@click.option("--comment")
@click.option(
    "--key",
    "key_path",
    type=click.Path(dir_okay=False),
    help="Your private key (default: $MODELREG_SIGNING_KEY or <home>/keys/<user>.key).",
)
@json_option
@pass_ctx
def approve_cmd(obj: CliContext, name, version, role, comment, key_path, as_json) -> None:
    """Sign an approval bound to the version's artifact and latest validation evaluation."""
    _sign_output(
        _approve(obj, name, version, role=role, comment=comment, key_path=key_path),
        as_json,
        f"approved {name} {version} as {role}",
    )


@click.command("reject")
@click.argument("name")
@click.argument("version")
@click.option("--role", required=True, type=click.Choice(SIGNING_ROLES))
@click.option("--comment", required=True)
@click.option("--key", "key_path", type=click.Path(dir_okay=False))
@json_option
@pass_ctx
def reject_cmd(obj: CliContext, name, version, role, comment, key_path, as_json) -> None:
    """Sign a rejection: the version cannot deploy on this evaluation."""
    _sign_output(
        _approve(obj, name, version, role=role, comment=comment, decision="reject", key_path=key_path),
        as_json,
        f"rejected {name} {version} as {role}",
    )


@click.command("attest")
@click.argument("name", required=False)
@click.argument("version", required=False)
@click.option("--control", "control_id", help="Attestation control id, e.g. CHK-HI-01.")
@click.option("--comment")
@click.option(
    "--batch",
    "batch",
    type=click.Path(dir_okay=False),
    help="A YAML or JSON file of entries (model, version, control, comment): each is signed like a single "
    "attestation, all are recorded in one transaction or none (instead of NAME VERSION --control).",
)
@click.option("--key", "key_path", type=click.Path(dir_okay=False))
@json_option
@pass_ctx
def attest_cmd(obj: CliContext, name, version, control_id, comment, batch, key_path, as_json) -> None:
    """Sign an attestation control's statement (zh/en) for NAME VERSION, or every entry of --batch FILE."""
    from modelreg.errors import BadInput

    if batch is not None:
        if name or version or control_id or comment:
            raise BadInput(
                "--batch takes the entries from its file: give no NAME VERSION, --control or --comment"
            )
        from modelreg.governance.service import attest_batch

        done = attest_batch(obj.registry(), batch, key_path=key_path)
        emit(
            {"attestations": done},
            as_json,
            lambda r: (
                "\n".join(
                    f"attested {a['payload']['control_id']} for {a['payload']['model']} {a['payload']['version']}: "
                    f"record #{a['record_id']} signed with {a['signature']['key_id']} ({a['signature']['algorithm']})"
                    for a in r["attestations"]
                )
                + f"\n{len(done)} attestation(s) recorded from {batch}"
            ),
        )
        return
    if not (name and version and control_id):
        raise BadInput("attest needs NAME VERSION --control ID, or --batch FILE")
    from modelreg.governance.service import attest

    _sign_output(
        attest(obj.registry(), name, version, control_id=control_id, comment=comment, key_path=key_path),
        as_json,
        f"attested {control_id} for {name} {version}",
    )


@click.command("waive")
@click.argument("name")
@click.argument("version")
@click.option("--control", "control_id", required=True)
@click.option("--until", required=True, help="Expiry date (YYYY-MM-DD, end of day UTC) or ISO datetime.")
@click.option("--reason", required=True)
@click.option(
    "--gate",
    type=click.Choice(["deploy", "monitor", "all"]),
    default="deploy",
    show_default=True,
    help="Which findings it covers: validation (deploy), monitoring, or both.",
)
@click.option("--key", "key_path", type=click.Path(dir_okay=False))
@json_option
@pass_ctx
def waive_cmd(obj: CliContext, name, version, control_id, until, reason, gate, key_path, as_json) -> None:
    """Grant a time-limited waiver of one control (approver, not a developer). Waived shows as waived."""
    from modelreg.governance.service import waive

    _sign_output(
        waive(
            obj.registry(),
            name,
            version,
            control_id=control_id,
            until=until,
            reason=reason,
            gate=gate,
            key_path=key_path,
        ),
        as_json,
        f"waived {control_id} for {name} {version} ({gate}) until {until}",
    )
