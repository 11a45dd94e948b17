"""Users and keys: initialising the registry, adding users with roles, registering public keys."""

from __future__ import annotations

from pathlib import Path

from modelreg import clock
from modelreg.audit import log as audit_log
from modelreg.audit.event_signing import SIGNING_KEY_EVENT
from modelreg.domain.entities import User
from modelreg.domain.roles import Role
from modelreg.domain.stages import values
from modelreg.errors import AlreadyExists, BadInput, NotFound, PermissionDenied
from modelreg.registry.core import RegistryCore, clean
from modelreg.store import repo
from modelreg.store.schema import init_schema

ROLE_NAMES = values(Role)
MSG_MIXED_HASH = (
    "this registry's audit log uses {have} (chosen at init); a log never mixes hashes, so --hash {want} is "
    "refused. Start a new registry for {want}."
)
MSG_MIXED_SUITE = (
    "this registry signs its checkpoints and packs with {have} (chosen at init); --suite {want} is refused. "
    "Users may still register keys of either suite."
)


class UsersMixin(RegistryCore):
    def init(self, *, tree_hash: str | None = None, suite: str | None = None) -> dict:
        """Create or upgrade the schema. ``tree_hash`` (sha256 | sm3) and ``suite`` (ed25519 | sm2) are chosen
        when the registry is created and recorded once; asking an existing registry for others is refused."""
        from sqlalchemy.exc import OperationalError

        from modelreg.store.engine import translate_db_error
        from modelreg.suites import parse_suite, parse_tree_hash

        want_hash = parse_tree_hash(tree_hash) if tree_hash is not None else None
        want_suite = parse_suite(suite) if suite is not None else None

        path = self.engine.url.database if self.engine.dialect.name == "sqlite" else None
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)  # only init creates files
        try:
            before, after = init_schema(self.engine)
        except OperationalError as exc:
            raise translate_db_error(exc, str(self.engine.url)) from None
        self._schema_checked = True
        if before is None:
            # A fresh database has no users to authorise yet: whoever holds it initialises it. Its first event
            # introduces the registry's event key: every event from here on is signed with it.
            with self.change("init", authorize=False) as tx:
                chosen_hash, chosen_suite = want_hash or "sha256", want_suite or "ed25519"
                repo.set_crypto_settings(tx.session, chosen_hash, chosen_suite)
                self._event_signer = self.event_signer(suite=chosen_suite)
                payload = {"schema_revision": after, "event_key": self._event_signer.key_event_payload()}
                if chosen_hash != "sha256" or chosen_suite != "ed25519":
                    payload |= {"tree_hash": chosen_hash, "signing_suite": chosen_suite}
                tx.event("registry.initialized", payload=payload)
                self._key_introduced = True
        else:
            have_hash, have_suite = audit_log.crypto_settings(self.engine)
            if want_hash is not None and want_hash != have_hash:
                raise BadInput(MSG_MIXED_HASH.format(have=have_hash, want=want_hash))
            if want_suite is not None and want_suite != have_suite:
                raise BadInput(MSG_MIXED_SUITE.format(have=have_suite, want=want_suite))
        if before is not None and before != after:
            with self.reading() as rd:
                enabled = audit_log.signing_enabled(rd.session)
            if not enabled:
                # Upgraded from unsigned events: from here on every event is signed with this key.
                with self.change("init", authorize=False) as tx:
                    tx.event(SIGNING_KEY_EVENT, payload=self.event_signer().key_event_payload())
            self._key_introduced = True
        return {
            "before": before,
            "after": after,
            "created": before is None,
            "upgraded": before is not None and before != after,
        }

    def add_user(
        self, name: str, roles: list[str] | tuple[str, ...], *, public_key_pem: str | None = None
    ) -> User:
        name = clean(name, "user name", limit=200)  # type: ignore[assignment]
        roles = tuple(dict.fromkeys(str(getattr(r, "value", r)) for r in roles))
        if not roles:
            raise BadInput("a user needs at least one --role")
        bad = [r for r in roles if r not in ROLE_NAMES]
        if bad:
            raise BadInput(f"role must be one of {', '.join(ROLE_NAMES)}. Got {', '.join(bad)} instead.")
        key_id = key_suite = None
        if public_key_pem is not None:
            from modelreg import signing

            key_id = signing.key_id(signing.load_public_key(public_key_pem.encode()))
            key_suite = signing.suite_of_key_id(key_id)
        # The permission check depends on the table: the first user is created by whoever holds the database
        # (the bootstrap admin), every later one by an admin; both decided inside the same transaction.
        with self.change("user.add", authorize=False) as tx:
            if repo.count_users(tx.session) == 0:
                if Role.ADMIN.value not in roles:
                    raise BadInput(
                        "the first user must have the admin role (modelreg user add NAME --role admin)"
                    )
            else:
                tx.user = self.authorize(tx.session, "user.add")
                self.guard(tx.session)
            if repo.get_user(tx.session, name) is not None:
                raise AlreadyExists(f"user {name!r} already exists")
            user = repo.add_user(
                tx.session,
                name=name,
                roles=list(roles),
                public_key_pem=public_key_pem,
                key_id=key_id,
                key_suite=key_suite,
                created_at=clock.now(),
                created_by=self.actor,
            )
            tx.event("user.added", payload={"user": name, "roles": list(roles), "key_id": key_id})
            return user

    def setup_pg_roles(self, prefix: str = "modelreg") -> dict:
        """Create the least-privilege roles (see modelreg/store/pg_roles.py), audited."""
        from modelreg.store.pg_roles import setup_roles
        from modelreg.store.schema import check_schema

        check_schema(self.engine)  # not ensure_schema: this is the administrator's (superuser's) command
        result = setup_roles(self.engine, prefix)
        with self.change("init", authorize=False) as tx:
            tx.event("registry.roles_configured", payload={"roles": result["roles"]})
        return result

    def set_roles(self, name: str, roles: list[str] | tuple[str, ...]) -> User:
        """Replace a user's roles (an admin's decision, audited). No roles: the user stays on record, for the
        history, but can no longer act."""
        roles = tuple(dict.fromkeys(str(getattr(r, "value", r)) for r in roles))
        bad = [r for r in roles if r not in ROLE_NAMES]
        if bad:
            raise BadInput(f"role must be one of {', '.join(ROLE_NAMES)}. Got {', '.join(bad)} instead.")
        with self.change("user.roles") as tx:
            before = repo.get_user(tx.session, name)
            if before is None:
                raise NotFound(f"user {name!r} is not registered")
            if name == self.actor and Role.ADMIN.value not in roles:
                raise BadInput("an admin cannot take the admin role from themselves; another admin must")
            updated = repo.set_user_roles(tx.session, name, list(roles))
            tx.event(
                "user.roles_changed",
                payload={"user": name, "roles": list(roles), "before": list(before.roles)},
            )
            return updated

    def register_key(self, public_key_pem: str, *, user: str | None = None) -> User:
        from modelreg import signing

        target = user or self.actor
        kid = signing.key_id(signing.load_public_key(public_key_pem.encode()))
        with self.change("keys.register") as tx:
            if target != self.actor and not self.is_admin(tx.user):
                raise PermissionDenied("only an admin may register a key for another user")
            if repo.get_user(tx.session, target) is None:
                raise NotFound(f"user {target!r} is not registered")
            updated = repo.set_user_key(tx.session, target, public_key_pem, kid)
            tx.event(
                "user.key_registered",
                payload={"user": target, "key_id": kid, "suite": signing.suite_of_key_id(kid)},
            )
            return updated

    def users(self) -> list[User]:
        with self.reading() as rd:
            return repo.all_users(rd.session)

    def user(self, name: str) -> User:
        with self.reading() as rd:
            found = repo.get_user(rd.session, name)
            if found is None:
                raise NotFound(f"user {name!r} is not registered")
            return found
