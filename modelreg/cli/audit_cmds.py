"""The audit log: list events, verify the Merkle log, issue signed checkpoints, inclusion proofs."""

from __future__ import annotations

import click

from modelreg.cli.common import CliContext, emit, json_option, pass_ctx, progress


@click.group("audit")
def audit_group() -> None:
    """Tamper-evident audit log (RFC 6962 Merkle log with signed checkpoints)."""


@audit_group.command("log")
@click.argument("name", required=False)
@click.argument("version", required=False)
@click.option("--limit", type=click.IntRange(min=1), help="At most this many events.")
@json_option
@pass_ctx
def audit_log_cmd(
    obj: CliContext, name: str | None, version: str | None, limit: int | None, as_json: bool
) -> None:
    """Audit events, oldest first (all, or one model / version)."""
    events = obj.registry().audit_log(name, version, limit=limit)

    def human(_) -> str:
        if not events:
            return "(no events)"
        lines = []
        for e in events:
            subject = f" {e.model} {e.version}" if e.model else ""
            detail = ", ".join(
                f"{k}={v}" for k, v in sorted(e.payload.items()) if v not in (None, "", [], {})
            )
            lines.append(
                f"#{e.seq:<6} {e.at:%Y-%m-%d %H:%M:%S}  {e.actor:<12} {e.event}{subject}"
                + (f"  ({detail})" if detail else "")
            )
        return "\n".join(lines)

    emit([e.to_dict() for e in events], as_json, human)


@audit_group.command("verify")
@click.option(
    "--checkpoint",
    type=click.Path(exists=True, dir_okay=False),
    help="A signed checkpoint you kept: the log must extend it.",
)
@click.option(
    "--trusted-key",
    type=click.Path(exists=True, dir_okay=False),
    help="Public key to check the checkpoint with (default: the registry's audit key).",
)
@json_option
@pass_ctx
def audit_verify_cmd(obj: CliContext, checkpoint: str | None, trusted_key: str | None, as_json: bool) -> None:
    """Recompute every leaf and root; exit 1 naming the first bad entry on any edit, deletion, insertion,
    reordering or truncation."""
    report = obj.registry().audit_verify(checkpoint, trusted_key=trusted_key, progress=progress(as_json))

    def human(r) -> str:
        if r.ok:
            text = f"audit log OK: {r.size} events, root {r.root_hash}"
            if r.checkpoint:
                text += f"\n  consistent with checkpoint of size {r.checkpoint['size']} signed by {r.checkpoint['key_id']}"
            sig = r.signatures or {}
            if sig.get("signed_from") is not None:
                text += (
                    f"\n  signed since #{sig['signed_from']} by event key(s) {', '.join(sig['event_keys'])}"
                )
                if sig.get("unsigned_events"):
                    text += f"; {sig['unsigned_events']} earlier event(s) from before signing are unsigned"
            elif r.size:
                text += f"\n  all {r.size} events are unsigned (written before signed events; `modelreg init` upgrades)"
            if r.replay:
                text += (
                    f"\n  tables agree with the state the log proves ({r.replay['events']} events replayed)"
                )
            return text
        where = f" (first bad entry: #{r.first_bad_seq})" if r.first_bad_seq is not None else ""
        lines = [f"audit log FAILED verification{where}: {r.problem}"]
        if r.replay and not r.replay["ok"]:
            for d in r.replay["divergences"][1:20]:
                at = f" (event #{d['seq']})" if d["seq"] is not None else ""
                lines.append(f"  - {d['table']} {d['key']}: {d['problem']}{at}")
            if r.replay.get("more_divergences"):
                lines.append(f"  … and {r.replay['more_divergences']} more")
        return "\n".join(lines)

    emit(report, as_json, human)
    if not report.ok:
        click.get_current_context().exit(1)


@audit_group.command("checkpoint")
@click.option(
    "-o",
    "--out",
    required=True,
    type=click.Path(dir_okay=False),
    help="File to write the signed checkpoint to (keep it outside the registry).",
)
@json_option
@pass_ctx
def audit_checkpoint_cmd(obj: CliContext, out: str, as_json: bool) -> None:
    """Write a signed checkpoint (size, root, time, key id) for auditors to keep."""
    result = obj.registry().audit_checkpoint(out)
    cp = result["checkpoint"]
    emit(
        result,
        as_json,
        f"checkpoint: {cp['size']} events, root {cp['root_hash']}, signed by {cp['key_id']} → {out} (public key {result['public_key']})",
    )


@audit_group.command("rotate-key")
@json_option
@pass_ctx
def audit_rotate_key_cmd(obj: CliContext, as_json: bool) -> None:
    """Replace the registry's event signing key (admin): the old key endorses the new one in the log."""
    result = obj.registry().rotate_event_key()
    emit(
        result,
        as_json,
        f"event key rotated at #{result['seq']}: {result['previous_key_id']} → {result['key_id']} "
        f"(old private key kept at {result['retired_key']})",
    )


@audit_group.command("proof")
@click.argument("seq", type=click.IntRange(min=0))
@click.option("--size", type=click.IntRange(min=1), help="Tree size to prove against (default: current).")
@json_option
@pass_ctx
def audit_proof_cmd(obj: CliContext, seq: int, size: int | None, as_json: bool) -> None:
    """RFC 6962 inclusion proof of event SEQ."""
    reg = obj.registry()
    if getattr(reg, "remote", False):
        proof = reg.audit_proof(seq, size)
    else:
        from modelreg.audit.proofs import inclusion_proof

        proof = inclusion_proof(reg, seq, size)
    emit(
        proof,
        as_json,
        lambda p: (
            f"event #{p['seq']} leaf {p['leaf_hash']}\n  tree size {p['tree_size']} root {p['root_hash']}\n  proof: {' '.join(p['proof']) or '(empty)'}"
        ),
    )
