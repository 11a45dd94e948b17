"""The demo: German credit through the whole lifecycle (``modelreg demo``) and the notebooks' helpers.

``CAST`` is the demo's cast of users, one per duty, so segregation of duties can be shown: the developer
never validates, the validator never approves, and a high-risk model needs two distinct approvers.
"""

from __future__ import annotations

from typing import Any

#: user name -> (roles, what they do in the story)
CAST: dict[str, tuple[tuple[str, ...], str]] = {
    "admin": (("admin",), "sets up the registry and its users / 系统管理员"),
    "dana": (("developer",), "data scientist: trains and submits the models / 模型开发"),
    "victor": (("validator",), "independent validator / 独立验证"),
    "amy": (("approver",), "model risk committee member / 模型风险委员会"),
    "alan": (("approver",), "model risk committee member / 模型风险委员会"),
    "oscar": (("operator",), "runs deployment and monitoring / 运维与监测"),
    "audrey": (("auditor",), "internal audit / 内部审计"),
}
DEVELOPER, VALIDATOR, APPROVERS, OPERATOR, AUDITOR = "dana", "victor", ("amy", "alan"), "oscar", "audrey"


def setup_cast(
    client: Any, *, keys: bool = True, suite: str = "ed25519", tree_hash: str | None = None
) -> dict[str, str | None]:
    """Initialise the registry if needed, add the cast (idempotent) and give everyone a key of ``suite``
    (Ed25519, or SM2 with ``suite="sm2"``, whose registry is then also initialised with ``tree_hash``).

    Returns user -> key id. ``client`` is a ``modelreg.Client``; users are added by ``admin``."""
    import contextlib

    from modelreg.errors import AlreadyExists
    from modelreg.suites import SUITE_ED25519, parse_suite

    suite = parse_suite(suite)
    if suite == SUITE_ED25519 and tree_hash is None:
        client.init()
    else:
        client.init(tree_hash=tree_hash, suite=suite)
    # Read as admin: the client's own user (e.g. dana in a notebook) may be one of those still to be added.
    admin = client.as_user("admin")
    existing = {u.name: u for u in admin.registry.users()}
    for name, (roles, _) in CAST.items():
        if name not in existing:
            with contextlib.suppress(AlreadyExists):  # someone else added them in between: fine
                admin.add_user(name, list(roles))
    out: dict[str, str | None] = {}
    users = {u.name: u for u in admin.registry.users()}
    for name in CAST:
        if keys:
            _ensure_key(admin, name, users[name].key_id, suite)
        out[name] = admin.registry.user(name).key_id
    return out


def _ensure_key(client: Any, name: str, key_id: str | None, suite: str = "ed25519") -> None:
    """A key pair of ``suite`` on disk whose public half is the one registered for ``name``."""
    from modelreg import signing
    from modelreg.errors import BadInput

    private = client.settings.signing_key_for(name)
    public = signing.public_key_path_for(private)
    if private.is_file() and public.is_file():
        pem = public.read_text(encoding="utf-8")
        have = signing.suite_of_key(signing.load_public_key(pem.encode()))
        if have != suite:
            raise BadInput(
                f"{name}'s key at {private} is {have}, not {suite}: run the demo with --fresh, or move the key away"
            )
        if key_id != signing.key_id(signing.load_public_key(pem.encode())):
            client.registry.as_user(name).register_key(pem)
        return
    if private.exists() or public.exists():
        raise BadInput(f"half a key pair for {name} at {private}: remove it or restore the other half")
    client.generate_key(name, suite=suite)
