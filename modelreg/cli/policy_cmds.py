"""``modelreg policy …``: list, show, lint and test policy packs. A thin layer over ``modelreg.policy``.

The lead's main group mounts ``policy`` and turns ``ModelregError`` into one-line messages and exit codes.
Exit statuses: 0 clean / all tests passed; 1 lint errors or failed policy tests; 2 usage or input errors.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from modelreg.errors import BadInput
from modelreg.policy import (
    DEFAULT_PACK_ID,
    LEVEL_ERROR,
    PolicyPack,
    default_tests_file,
    lint,
    list_packs,
    load_pack,
    run_policy_tests,
)

_META_KEY = "modelreg.policy.search_paths"


def _search_paths(ctx: click.Context) -> tuple[str, ...]:
    """Folders holding a bank's own packs: ``--search-path`` options, else ``$MODELREG_HOME/policies``."""
    given = ctx.meta.get(_META_KEY)
    if given:
        return tuple(given)
    from modelreg import settings

    return (str(settings.load().home / "policies"),)


def _emit_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, sort_keys=False))


def _load(ref: str, ctx: click.Context) -> PolicyPack:
    return load_pack(ref, search_paths=_search_paths(ctx))


@click.group("policy")
@click.option(
    "--search-path",
    "search_paths",
    multiple=True,
    type=click.Path(file_okay=False),
    help="A folder of your own policy packs (repeatable). Default: $MODELREG_HOME/policies.",
)
@click.pass_context
def policy(ctx: click.Context, search_paths: tuple[str, ...]) -> None:
    """Policy packs: the regulators' algorithm-risk clauses as controls and thresholds."""
    # ctx.meta is shared by the whole context tree and leaves the main group's ctx.obj alone.
    ctx.meta[_META_KEY] = tuple(search_paths)


@policy.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def list_cmd(ctx: click.Context, as_json: bool) -> None:
    """List the shipped packs and those in the search paths."""
    packs = list_packs(_search_paths(ctx))
    if as_json:
        _emit_json({"packs": [p.to_dict() for p in packs]})
        return
    if not packs:
        click.echo("No policy packs found.")
        return
    for p in packs:
        extends = f"  extends {p.extends}" if p.extends else ""
        click.echo(f"{p.id}@{p.version}  [{p.origin}]  {p.title_zh} / {p.title_en}{extends}")
        click.echo(f"    {p.path}")


def _threshold_text(pack: PolicyPack, control: Any) -> list[str]:
    check = control.check
    out = []
    for tier in control.tiers:
        th = check.thresholds[tier]
        warn = "" if th.warn is None else f"warn {check.comparator} {th.warn:g}, "
        out.append(f"{tier}: {warn}fail {check.comparator} {th.fail:g}")
    return out


@policy.command("show")
@click.argument("ref", default=DEFAULT_PACK_ID, required=False)
@click.option(
    "--json", "as_json", is_flag=True, help="Machine-readable output (the canonical content and digest)."
)
@click.pass_context
def show_cmd(ctx: click.Context, ref: str, as_json: bool) -> None:
    """Show a pack (by id, id@version or file): tiers, controls and clauses, in Chinese and English."""
    pack = _load(ref, ctx)
    if as_json:
        data = pack.to_dict()
        data["digest"] = pack.digest
        data["path"] = None if pack.path is None else str(pack.path)
        _emit_json(data)
        return
    echo = click.echo
    echo(f"{pack.ref}  {pack.title_zh} / {pack.title_en}")
    echo(f"digest: {pack.digest}")
    if pack.extends is not None:
        echo(f"extends: {pack.extends.id}@{pack.extends.version} ({pack.extends.digest})")
    echo("")
    echo("Risk tiers / 风险等级")
    for t in pack.tiers:
        approvals = ", ".join(f"{role} x{n}" for role, n in t.approvals.items())
        echo(f"  {t.id}: {t.title_zh} / {t.title_en}; approvals: {approvals}")
    echo("")
    echo(f"Controls / 控制 ({len(pack.controls)})")
    for c in pack.controls:
        state = "  [disabled]" if c.disabled else ""
        echo(
            f"  {c.id}  [{c.kind}, {c.severity}] gates: {', '.join(c.gates)}; tiers: {', '.join(c.tiers)}{state}"
        )
        echo(f"    {c.title_zh}")
        echo(f"    {c.title_en}")
        if c.check is not None:
            sel = c.check.feature if c.check.feature is not None else "dataset"
            echo(f"    check: {c.check.monitor}.{c.check.metric} ({sel}); basis: {c.check.basis}")
            for line in _threshold_text(pack, c):
                echo(f"      {line}")
            suspend = [t for t in c.tiers if c.on_breach_for(t) == "suspend"]
            if suspend:
                echo(f"      on fail: suspend ({', '.join(suspend)})")
        elif c.attestation is not None:
            echo(f"    attestation by {c.attestation.role}: {c.attestation.statement_zh}")
            echo(f"      {c.attestation.statement_en}")
        elif c.requirement is not None:
            echo(f"    requirement: {c.requirement.id}")
        if c.disabled:
            echo(f"    disabled: {c.disabled_reason_zh} / {c.disabled_reason_en}")
        echo(f"    clauses: {', '.join(c.clauses) or '-'}")
        if c.secondary_clauses:
            echo(f"    secondary: {', '.join(c.secondary_clauses)}")
    echo("")
    echo(f"Clauses / 条款 ({len(pack.clauses)})")
    for cl in pack.clauses:
        oos = "  [out of scope]" if cl.id in pack.out_of_scope else ""
        echo(f"  {cl.id}  {cl.source} {cl.item}  {cl.title_zh} / {cl.title_en}{oos}")
        echo(f"    {cl.text_zh}")
        echo(f"    {cl.text_en}")
        if cl.id in pack.out_of_scope:
            o = pack.out_of_scope[cl.id]
            echo(f"    out of scope: {o.reason_zh} / {o.reason_en}")


@policy.command("lint")
@click.argument("ref", metavar="FILE|PACK_ID")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def lint_cmd(ctx: click.Context, ref: str, as_json: bool) -> None:
    """Check a pack, given as a file or as a pack id (``cn-fin-algo-risk``, ``id@version``: the pack's own
    file is linted); prints ``file:line: message`` and exits 1 when it has errors."""
    file = _lint_target(ref, ctx)
    messages = lint(file, search_paths=_search_paths(ctx))
    errors = [m for m in messages if m.level == LEVEL_ERROR]
    if as_json:
        _emit_json(
            {
                "file": str(file),
                "ok": not errors,
                "errors": len(errors),
                "warnings": len(messages) - len(errors),
                "messages": [m.to_dict() for m in messages],
            }
        )
    else:
        for m in messages:
            click.echo(str(m))
        if errors:
            click.echo(
                f"{len(errors)} error(s), {len(messages) - len(errors)} warning(s) in {file}", err=True
            )
        else:
            click.echo(f"{file}: OK ({len(messages)} warning(s))" if messages else f"{file}: OK")
    if errors:
        sys.exit(1)


def _lint_target(ref: str, ctx: click.Context) -> Path:
    from modelreg.errors import PolicyError
    from modelreg.policy.loader import find_pack_file

    path = Path(ref)
    if path.is_file():
        return path
    if path.is_dir():
        raise click.BadParameter(
            f"{ref} is a folder: give a pack file or a pack id", param_hint="FILE|PACK_ID"
        )
    try:
        return find_pack_file(ref, _search_paths(ctx))
    except PolicyError as exc:
        raise click.BadParameter(
            f"{ref!r} is neither an existing file nor a known pack id: {exc.message}",
            param_hint="FILE|PACK_ID",
        ) from None


@policy.command("test")
@click.argument("ref", default=DEFAULT_PACK_ID, required=False)
@click.option(
    "--tests",
    "tests_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The policy tests file. Default: tests/<pack file stem>.tests.yaml beside the pack.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("-v", "--verbose", is_flag=True, help="List passing cases too.")
@click.pass_context
def test_cmd(ctx: click.Context, ref: str, tests_file: Path | None, as_json: bool, verbose: bool) -> None:
    """Run a pack's policy unit tests (like ``conftest verify``); exits 1 when any case fails."""
    pack = _load(ref, ctx)
    if tests_file is None:
        tests_file = default_tests_file(pack)
        if tests_file is None:
            raise BadInput(
                f"no policy tests file found for {pack.ref} (looked for tests/<stem>.tests.yaml beside {pack.path}). "
                "Pass one with --tests FILE."
            )
    outcomes = run_policy_tests(pack, tests_file)
    failed = [o for o in outcomes if not o.passed]
    if as_json:
        _emit_json(
            {
                "pack": pack.ref,
                "digest": pack.digest,
                "tests_file": str(tests_file),
                "passed": len(outcomes) - len(failed),
                "failed": len(failed),
                "cases": [o.to_dict() for o in outcomes],
            }
        )
    else:
        for o in outcomes:
            if not o.passed:
                click.echo(f"{o.file}:{o.line}: FAIL {o.name}: {o.message}")
            elif verbose:
                click.echo(f"{o.file}:{o.line}: ok   {o.name}")
        click.echo(f"{pack.ref}: {len(outcomes) - len(failed)} passed, {len(failed)} failed ({tests_file})")
    if failed:
        sys.exit(1)
