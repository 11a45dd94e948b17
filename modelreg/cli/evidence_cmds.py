"""Evidence commands: pack (needs the registry), verify and recompute (need only the zip)."""

from __future__ import annotations

import click

from modelreg.cli.common import CliContext, emit, encoding_option, json_option, pass_ctx, progress


@click.group("evidence")
def evidence_group() -> None:
    """Evidence packs for auditors: build, verify offline, re-derive the numbers."""


@evidence_group.command("pack")
@click.argument("name")
@click.argument("version")
@click.option(
    "-o", "--output", "out", required=True, type=click.Path(dir_okay=False), help="The zip to write."
)
@click.option(
    "--as-of",
    "as_of",
    metavar="DATETIME",
    help="Pack the state as of this time (ISO 8601; a date means the end of that day, UTC).",
)
@json_option
@pass_ctx
def pack_cmd(obj: CliContext, name: str, version: str, out: str, as_of: str | None, as_json: bool) -> None:
    """Build a signed evidence pack of NAME VERSION (permission evidence.pack)."""
    from modelreg.evidence.pack import build_pack

    summary = build_pack(obj.registry(), name, version, out, as_of=as_of, progress=progress(as_json))

    def human(s) -> str:
        cov = s.coverage or {}
        lines = [
            f"wrote {s.path}: {s.files} files, {s.bytes:,} bytes",
            f"  {s.model} {s.version} ({s.stage}); {s.evaluations} evaluation(s), {s.signed_records} signed record(s), {s.audit_events} audit event(s)",
            f"  audit tree size {s.tree_size}, root {s.root_hash}",
            f"  manifest sha256 {s.manifest_sha256}, signed with evidence key {s.key_id}",
        ]
        if cov:
            lines.append(
                f"  policy {cov.get('policy')}: {cov.get('clauses_covered')}/{cov.get('clauses_total')} clauses covered, {cov.get('clauses_out_of_scope')} out of scope"
            )
        lines += [f"  note: {n}" for n in s.notes]
        return "\n".join(lines)

    emit(summary, as_json, human)


@evidence_group.command("verify")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option(
    "--trusted-key",
    "trusted",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="A trusted Ed25519 or SM2 public key (PEM); repeatable: the evidence key, and the audit key for --checkpoint.",
)
@click.option(
    "--checkpoint",
    type=click.Path(dir_okay=False),
    help="A signed audit checkpoint the pack's log must be consistent with.",
)
@click.option(
    "--trusted-signer",
    "signers",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="A public key (PEM) of a person whose signature may appear on approvals, attestations and waivers; "
    "repeatable. Given once or more, a record signed by any other key fails.",
)
@json_option
def verify_cmd(
    path: str, trusted: tuple[str, ...], checkpoint: str | None, signers: tuple[str, ...], as_json: bool
) -> None:
    """Verify a pack offline: signature, file digests, signed records, audit proofs, and signed records and
    evaluations against the audit events (exit 1 on any problem)."""
    from modelreg.evidence.verify import verify_pack

    result = verify_pack(path, trusted_keys=trusted, checkpoint=checkpoint, trusted_signers=signers or None)

    emit(result, as_json, lambda r: r.text())  # the same text as the standalone verify_pack.py prints
    if not result.ok:
        click.get_current_context().exit(1)


@evidence_group.command("recompute")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option(
    "--data",
    "data",
    required=True,
    type=click.Path(exists=True),
    help="The data the evaluation ran on (CSV or Parquet).",
)
@click.option(
    "--reference",
    type=click.Path(exists=True),
    help="The reference / training data (for drift and explanation stability).",
)
@click.option(
    "--model",
    "model_uri",
    help="MLflow model URI, to recompute scores and the explainability/robustness monitors.",
)
@click.option("--evaluation", type=int, help="Evaluation id in the pack (default: the latest validation).")
@click.option(
    "--tolerance", type=float, default=1e-9, show_default=True, help="Largest absolute difference accepted."
)
@encoding_option
@json_option
@pass_ctx
def recompute_cmd(
    obj: CliContext,
    path: str,
    data: str,
    reference: str | None,
    model_uri: str | None,
    evaluation: int | None,
    tolerance: float,
    encoding: str | None,
    as_json: bool,
) -> None:
    """Re-derive the pack's monitor metrics from the same data and parameters (exit 1 on any difference)."""
    import contextlib

    from modelreg.evidence.recompute import recompute

    # A models:/ URI resolves in the registry's MLflow (mlflow.env), never in a fresh ./mlflow.db; without
    # --model the command stays offline and needs no configuration at all.
    scope = obj.settings.mlflow_scope() if model_uri else contextlib.nullcontext()
    with scope:
        result = recompute(
            path, data, reference, tolerance, evaluation=evaluation, model=model_uri, encoding=encoding
        )

    def human(r) -> str:
        if r.verdict == "not_recomputed":
            lines = [
                f"NOT RECOMPUTED: evaluation #{r.evaluation_id} ({r.purpose}): no metric could be re-derived, "
                "so nothing was compared (this is not a difference)"
            ]
            lines += [f"  not recomputed {k}: {why}" for k, why in sorted(r.skipped.items())]
            lines.append(
                "  to compare: pass --model (the version's MLflow model URI) or --data with the score column"
            )
            return "\n".join(lines)
        lines = [
            f"{'OK' if r.ok else 'DIFFERENT'}: evaluation #{r.evaluation_id} ({r.purpose}), {r.compared} metric(s) compared, tolerance {r.tolerance:g}"
        ]
        lines += [f"  {k}: {n} metric(s) reproduced" for k, n in sorted(r.monitors.items())]
        lines += [f"  skipped {k}: {why}" for k, why in sorted(r.skipped.items())]
        for d in r.differences:
            where = " ".join(
                str(x) for x in (d.get("monitor"), d.get("metric"), d.get("feature"), d.get("group")) if x
            )
            lines.append(
                f"  ✗ {where or 'data'}: packed {d.get('packed')} vs recomputed {d.get('recomputed')} — {d.get('note')}"
            )
        return "\n".join(lines)

    emit(result, as_json, human)
    # Exit 1 only for a real difference; nothing comparable is missing input (exit 2), not a "no".
    if result.verdict == "different":
        click.get_current_context().exit(1)
    if result.verdict == "not_recomputed":
        click.get_current_context().exit(2)
