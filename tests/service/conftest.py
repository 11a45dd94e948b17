"""Fixtures for the registry service: a real uvicorn on a free loopback port over a real registry (SQLite and
PostgreSQL), a real OIDC issuer (keys generated here, JWKS served over loopback HTTP) and signed requests."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.conftest import CAST

ISSUER = "https://idp.bank.example/realms/risk"
AUDIENCE = "modelreg"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """uvicorn in a thread, started and stopped by the test."""

    def __init__(self, app) -> None:
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", server_header=False, lifespan="off"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


class Issuer:
    """An OIDC issuer of the test's own: RSA and EC keys, a JWKS document over loopback HTTP, tokens by pyjwt."""

    def __init__(self) -> None:
        from cryptography.hazmat.primitives.asymmetric import ec, rsa

        self.keys = {
            "rsa-1": ("RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048)),
            "ec-1": ("ES256", ec.generate_private_key(ec.SECP256R1())),
        }
        self.published = set(self.keys)
        self.fetches = 0
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                issuer.fetches += 1
                data = json.dumps(issuer.jwks()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.jwks_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/jwks.json"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def add_key(self, kid: str, alg: str, key) -> None:
        self.keys[kid] = (alg, key)
        self.published.add(kid)

    def jwks(self) -> dict:
        import jwt

        out = []
        for kid in sorted(self.published):
            alg, key = self.keys[kid]
            algo = jwt.get_algorithm_by_name(alg)
            jwk = json.loads(algo.to_jwk(key.public_key()))
            out.append({**jwk, "kid": kid, "use": "sig", "alg": alg})
        return {"keys": out}

    def token(self, user: str, groups=None, *, kid: str = "rsa-1", lifetime: int = 300, **overrides) -> str:
        import jwt

        alg, key = self.keys[kid]
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": f"id-{user}",
            "preferred_username": user,
            "groups": list(groups if groups is not None else CAST.get(user, [])),
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
        }
        claims.update(overrides)
        return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid})

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def issuer():
    iss = Issuer()
    yield iss
    iss.close()


@pytest.fixture
def service_registry(db_url, settings_for):
    """A registry with the plug-ins (policy gates), the usual cast, and a registered Ed25519 key per user."""
    from modelreg.client import Client, open_registry

    settings = settings_for(db_url)
    reg = open_registry(settings, actor="admin")
    reg.init()
    client = Client(reg)
    for name, roles in CAST.items():
        reg.add_user(name, roles)
    reg.add_user("nobody", ["developer"])
    for name in [*CAST, "nobody"]:
        client.generate_key(name)
    reg.set_roles("nobody", [])  # registered, with a key, and no role left
    reg.as_user("dev").register("credit_scoring", "1", owner="dev", risk_tier="low", purpose="PD scoring")
    reg.as_user("dev").register("credit_scoring", "2", owner="dev", risk_tier="low", purpose="PD scoring")
    yield client
    reg.engine.dispose()


def make_retirable(client, *versions: str) -> None:
    """Sign what the policy's retire gate asks people to sign (the reason comes with the move itself)."""
    from tests.governance.conftest import sign_attestations

    for v in versions:
        sign_attestations(client, "credit_scoring", v, "retire", "low")


@pytest.fixture
def service(service_registry, issuer):
    """The running service (OIDC with the test's issuer, request signatures on), and its settings."""
    from modelreg.service.app import create_app
    from modelreg.service.auth import AuthConfig, OidcConfig

    settings = service_registry.settings
    config = AuthConfig(
        oidc=OidcConfig(issuer=ISSUER, audience=AUDIENCE, jwks_url=issuer.jwks_url),
        failure_limit=1000,
    )
    with Server(create_app(settings, config)) as srv:
        srv.settings = settings
        srv.registry = service_registry
        yield srv


def remote(srv, user: str):
    """The remote client of ``user``, signing with their key file (where the CLI finds it)."""
    from modelreg.service.client import RemoteRegistry

    return RemoteRegistry(srv.settings.with_overrides(url=srv.url), actor=user)


def signed_headers(
    settings, user: str, method: str, url: str, body: bytes = b"", *, created=None, key=None, key_id=None
):
    """The RFC 9421 headers ``user``'s key file gives a request (or ``key``/``key_id`` to forge one)."""
    from modelreg import signing
    from modelreg.service import httpsig

    key = key or signing.load_private_key(settings.signing_key_for(user))
    return httpsig.sign_request(
        key, key_id or signing.key_id(key), method, url, body, created=int(created or time.time())
    )


def audit_size(settings) -> int:
    from modelreg.client import open_registry

    reg = open_registry(settings, actor="admin")
    try:
        return reg.audit_verify().size
    finally:
        reg.engine.dispose()


def cli_runner(url: str, env: dict[str, str], monkeypatch, capsys):
    """``run(user, *args, over_http=...)``: the CLI as ``user``, on the registry database or over
    ``MODELREG_URL`` (the service at ``url``), with the test's settings in the environment; answers (exit
    code, stdout, stderr). A traceback on stderr fails the test: bad input is one line, never a crash."""
    from modelreg.cli.main import main

    def run(user: str, *args: str, over_http: bool) -> tuple[int, str, str]:
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        if over_http:
            monkeypatch.setenv("MODELREG_URL", url)
        else:
            monkeypatch.delenv("MODELREG_URL", raising=False)
        code = main(["--as", user, *args])
        out = capsys.readouterr()
        assert "Traceback" not in out.err
        return code, out.out, out.err

    return run
