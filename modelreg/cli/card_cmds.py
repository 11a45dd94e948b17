"""``modelreg card-lint FILE``: a model card file checked against the card schema before it is set."""

from __future__ import annotations

import click

from modelreg.cli.common import CliContext, emit, json_option, pass_ctx


@click.command("card-lint")
@click.argument("card_file", type=click.Path(exists=True, dir_okay=False))
@json_option
@pass_ctx
def card_lint_cmd(obj: CliContext, card_file: str, as_json: bool) -> None:
    """Check a YAML/JSON model card file: unknown fields or wrong types exit 2 (README "Model card fields")."""
    import yaml

    from modelreg.errors import BadInput
    from modelreg.governance.card_schema import lint, policy_fields
    from modelreg.policy import load_pack

    try:
        with open(card_file, encoding="utf-8") as fh:
            card = yaml.safe_load(fh)
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise BadInput(f"{card_file}: not valid YAML/JSON: {str(exc).splitlines()[0]}") from None
    if not isinstance(card, dict):
        raise BadInput(f"{card_file} must hold a mapping of model card fields")
    # Text fields the pack in force asks for (a bank's own) are known too.
    # No registry needed: the pack comes from the settings alone (a card can be linted before `init`).
    s = obj.settings
    pack = load_pack(s.policy, search_paths=[p for p in s.policy_paths if p.exists()])
    problems = lint(card, policy_fields(pack))
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise BadInput(f"{card_file}: {problems[0]}{more}")
    emit({"file": card_file, "fields": sorted(card), "ok": True}, as_json, f"{card_file}: OK")
