"""The web view over a real registry: a copy of the evidence tests' German-credit registry (register, attach,
pre-check, validate, attestations, waivers, approvals, deploy, monitor: all through the Python API) plus two
more models, a signed checkpoint, a local RS256 issuer (keys generated here) and uvicorn on a loopback port."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.evidence.conftest import env_for, german  # noqa: F401  (the session fixture this builds on)

ISSUER = "https://idp.bank.test"
AUDIENCE = "modelreg"
XSS = "<script>alert('x')</script> 反欺诈规则 fraud rules"


@dataclass
class Issuer:
    private: Any
    public: Any

    def token(
        self, sub: str, roles: list[str], *, exp_in: int = 3600, aud: str = AUDIENCE, key: Any = None
    ) -> str:
        import jwt

        now = int(time.time())
        claims = {"iss": ISSUER, "aud": aud, "sub": sub, "roles": roles, "iat": now, "exp": now + exp_in}
        return jwt.encode(claims, key or self.private, algorithm="RS256")

    def verify(self, token: str) -> tuple[str, frozenset[str]]:
        """A real verification: signature, algorithm allow-list, issuer, audience, expiry."""
        import jwt

        from modelreg.errors import PermissionDenied

        try:
            claims = jwt.decode(
                token,
                self.public,
                algorithms=["RS256"],
                audience=AUDIENCE,
                issuer=ISSUER,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.PyJWTError as exc:
            raise PermissionDenied(f"token rejected: {exc}") from None
        return claims["sub"], frozenset(claims.get("roles") or [])


def new_rsa():
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def issuer() -> Issuer:
    key = new_rsa()
    return Issuer(key, key.public_key())


@dataclass
class Site:
    url: str  # http://127.0.0.1:PORT/ui
    root: Path
    settings: Any
    registry: Any  # admin
    issuer: Issuer


@pytest.fixture(scope="session")
def site(german, issuer, tmp_path_factory):  # noqa: F811
    import uvicorn
    from starlette.applications import Starlette
    from starlette.routing import Mount

    from modelreg import settings as settings_mod
    from modelreg.client import Client, open_registry
    from modelreg.web import create_web_app

    root = tmp_path_factory.mktemp("web") / "german"
    german.registry.engine.dispose()  # no open SQLite handle while the file is copied
    shutil.copytree(german.root, root)
    settings = settings_mod.load(environ=env_for(root, f"sqlite:///{root / 'registry.db'}"))
    admin = open_registry(settings, actor="admin")
    c = Client(admin)
    c.add_user("dev2", ["developer"])
    admin.as_user("dev2").register(
        "fraud_rules", "1", owner="dev2", risk_tier="low", purpose=XSS, business_line="cards"
    )
    admin.as_user("dev").register(
        "collections_pd", "3", owner="dev", risk_tier="medium", purpose="催收违约概率 Collections PD"
    )
    admin.audit_checkpoint(root / "checkpoint.json")
    # one more event after the checkpoint: the page must prove the log extends it, not equals it
    admin.as_user("dev").update_card("collections_pd", "3", {"limitations": "贷后模型 post-loan only"})

    app = create_web_app(
        lambda actor: open_registry(settings, actor=actor), issuer.verify, secure_cookies=False
    )
    outer = Starlette(routes=[Mount("/ui", app=app)])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(outer, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    yield Site(f"http://127.0.0.1:{port}/ui", root, settings, admin, issuer)
    server.should_exit = True
    thread.join(timeout=10)
    admin.engine.dispose()


def login(client, site: Site, token: str):
    """Log in as a browser would: fetch the form (CSRF cookie + field), post the token."""
    import re

    form = client.get(f"{site.url}/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
    return client.post(f"{site.url}/login", data={"csrf": csrf, "token": token})


def csrf_of(html: str) -> str:
    import re

    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)
