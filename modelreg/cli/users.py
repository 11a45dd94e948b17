"""Users, roles and signing keys."""

from __future__ import annotations

from pathlib import Path

import click

from modelreg.cli.common import CliContext, emit, json_option, pass_ctx, table
from modelreg.domain.roles import Role
from modelreg.domain.stages import values


@click.group("user")
def user_group() -> None:
    """Users and their roles (developer, validator, approver, operator, auditor, admin)."""


@user_group.command("add")
@click.argument("name")
@click.option(
    "--role",
    "roles",
    multiple=True,
    required=True,
    type=click.Choice(values(Role)),
)
@click.option(
    "--public-key",
    type=click.Path(exists=True, dir_okay=False),
    help="The user's Ed25519 or SM2 public key (PEM).",
)
@json_option
@pass_ctx
def user_add(
    obj: CliContext, name: str, roles: tuple[str, ...], public_key: str | None, as_json: bool
) -> None:
    """Add a user. The first user of a registry must be an admin."""
    pem = Path(public_key).read_text(encoding="utf-8") if public_key else None
    user = obj.registry().add_user(name, list(roles), public_key_pem=pem)
    emit(
        user,
        as_json,
        lambda u: (
            f"added user {u.name} with role(s) {', '.join(u.roles)}"
            + (f", key {u.key_id}" if u.key_id else "")
        ),
    )


@user_group.command("roles")
@click.argument("name")
@click.option(
    "--role",
    "roles",
    multiple=True,
    type=click.Choice(["developer", "validator", "approver", "operator", "auditor", "admin"]),
    help="The user's roles from now on (repeat); none: the user can no longer act.",
)
@json_option
@pass_ctx
def user_roles(obj: CliContext, name: str, roles: tuple[str, ...], as_json: bool) -> None:
    """Replace a user's roles (admin only, audited)."""
    user = obj.registry().set_roles(name, list(roles))
    emit(user, as_json, lambda u: f"user {u.name} now has role(s) {', '.join(u.roles) or '(none)'}")


@user_group.command("list")
@json_option
@pass_ctx
def user_list(obj: CliContext, as_json: bool) -> None:
    """List users, roles and key ids."""
    users = obj.registry().users()
    emit(
        [u.to_dict() for u in users],
        as_json,
        lambda _: table(
            [[u.name, ",".join(u.roles), u.key_id or "-"] for u in users], ["USER", "ROLES", "KEY"]
        ),
    )


@click.group("keys")
def keys_group() -> None:
    """Signing keys (Ed25519, or SM2): the private key stays with the user, the public key is registered."""


@keys_group.command("generate")
@click.option(
    "-o",
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False),
    help="Private key file to create (mode 0600); the public key goes to OUT.pub.",
)
@click.option(
    "--suite",
    type=click.Choice(["ed25519", "sm2"]),
    default="ed25519",
    show_default=True,
    help="Signature suite: Ed25519, or 国密 SM2 with SM3 (needs modelreg[gm]).",
)
@json_option
def keys_generate(out: str, suite: str, as_json: bool) -> None:
    """Generate a key pair. Never overwrites an existing key."""
    from modelreg import signing

    priv = Path(out)
    pub = priv.with_name(priv.name + ".pub")
    signing.write_key_pair(priv, pub, suite=signing.parse_suite(suite))
    kid = signing.key_id(signing.load_public_key(pub))
    emit(
        {
            "private_key": str(priv),
            "public_key": str(pub),
            "key_id": kid,
            "suite": signing.suite_of_key_id(kid),
        },
        as_json,
        f"wrote {priv} (private, keep it) and {pub} (public); key id {kid}",
    )


@keys_group.command("register")
@click.argument("public_key", type=click.Path(exists=True, dir_okay=False))
@click.option("--user", help="Register for another user (admin only).")
@json_option
@pass_ctx
def keys_register(obj: CliContext, public_key: str, user: str | None, as_json: bool) -> None:
    """Register PUBLIC_KEY (PEM) for yourself (or --user, as admin)."""
    u = obj.registry().register_key(Path(public_key).read_text(encoding="utf-8"), user=user)
    emit(u, as_json, lambda x: f"registered key {x.key_id} for {x.name}")
