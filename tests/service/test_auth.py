"""Authentication the service establishes: OIDC bearer tokens against a real issuer the test runs, and RFC 9421
request signatures with the user's registered Ed25519 key. Every refusal is 401/403, changes nothing and
lands in the security log."""

from __future__ import annotations

import json
import time

import httpx
import jwt
import pytest

from tests.service.conftest import AUDIENCE, ISSUER, Server, audit_size, make_retirable, signed_headers

sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def _whoami(srv, token: str) -> httpx.Response:
    return httpx.get(f"{srv.url}/api/v1/whoami", headers={"Authorization": f"Bearer {token}"})


def _security_codes(settings) -> list[str]:
    from modelreg.store.engine import make_engine
    from modelreg.store.service_rows import security_events

    engine = make_engine(settings.database_url)
    try:
        return [e["code"] for e in security_events(engine)]
    finally:
        engine.dispose()


def test_a_valid_token_names_the_registry_user_and_its_roles(service, issuer):
    r = _whoami(service, issuer.token("app1"))
    assert r.status_code == 200, r.text
    assert r.json() == {"user": "app1", "roles": ["approver"], "method": "oidc", "key_id": None}
    r = _whoami(service, issuer.token("val", kid="ec-1"))  # ES256 as well
    assert r.json()["user"] == "val"


BAD_TOKENS = [
    "wrong issuer",
    "wrong audience",
    "expired",
    "not yet valid",
    "alg none",
    "hs256 with the public key",
    "forged",
]


def test_bad_tokens_are_refused_with_401_change_nothing_and_are_logged(service, issuer):
    before = audit_size(service.settings)
    for case in BAD_TOKENS:
        _refused_token(service, issuer, case)
    assert audit_size(service.settings) == before
    assert _security_codes(service.settings).count("authentication_failed") == 2 * len(BAD_TOKENS)


def _refused_token(service, issuer, case: str) -> None:
    if case == "wrong issuer":
        token = issuer.token("app1", iss="https://evil.example/")
    elif case == "wrong audience":
        token = issuer.token("app1", aud="another-service")
    elif case == "expired":
        token = issuer.token("app1", exp=int(time.time()) - 120)
    elif case == "not yet valid":
        token = issuer.token("app1", nbf=int(time.time()) + 600)
    elif case == "alg none":
        claims = jwt.decode(issuer.token("app1"), options={"verify_signature": False})
        token = jwt.encode(claims, None, algorithm="none", headers={"kid": "rsa-1"})
    elif case == "hs256 with the public key":
        # The classic confusion attack: HMAC "signed" with the issuer's public key, which anyone can fetch.
        from cryptography.hazmat.primitives import serialization

        pub = (
            issuer.keys["rsa-1"][1]
            .public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        )
        claims = jwt.decode(issuer.token("app1"), options={"verify_signature": False})
        import base64
        import hashlib
        import hmac

        def b64(b: bytes) -> str:
            return base64.urlsafe_b64encode(b).rstrip(b"=").decode()

        head = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}).encode())
        body = b64(json.dumps(claims).encode())
        sig = b64(hmac.new(pub, f"{head}.{body}".encode(), hashlib.sha256).digest())
        token = f"{head}.{body}.{sig}"
    else:  # a token signed by a key the issuer never published, claiming the issuer's kid
        from cryptography.hazmat.primitives.asymmetric import rsa

        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        claims = jwt.decode(issuer.token("app1"), options={"verify_signature": False})
        token = jwt.encode(claims, other, algorithm="RS256", headers={"kid": "rsa-1"})
    r = _whoami(service, token)
    assert r.status_code == 401, (case, r.text)
    err = r.json()["error"]
    assert err["code"] == "authentication_failed", case
    assert "Traceback" not in r.text
    assert r.headers["www-authenticate"].startswith("Bearer")
    # a refused token cannot move a version either
    w = httpx.post(
        f"{service.url}/api/v1/models/credit_scoring/versions/1/retire",
        json={"reason": "x"},
        headers={"Authorization": f"Bearer {token}", "If-Match": "*"},
    )
    assert w.status_code == 401, case


@sqlite_only
def test_an_unknown_kid_refetches_the_jwks_once_and_a_never_published_kid_is_refused(service, issuer):
    from cryptography.hazmat.primitives.asymmetric import ec

    assert _whoami(service, issuer.token("app1")).status_code == 200
    fetches = issuer.fetches
    # the issuer rotates: a new key appears after the service cached the JWKS
    issuer.add_key("ec-2", "ES256", ec.generate_private_key(ec.SECP256R1()))
    from modelreg.service import auth

    saved = auth.JWKS_MIN_REFRESH
    auth.JWKS_MIN_REFRESH = 0.0  # the refetch throttle is time-based; the rotation is what is tested here
    try:
        assert _whoami(service, issuer.token("app1", kid="ec-2")).status_code == 200
        assert issuer.fetches == fetches + 1
        issuer.keys["ghost"] = ("ES256", ec.generate_private_key(ec.SECP256R1()))  # never published
        r = _whoami(service, issuer.token("app1", kid="ghost"))
    finally:
        auth.JWKS_MIN_REFRESH = saved
    assert r.status_code == 401
    assert "ghost" in r.json()["error"]["message"]


def test_roles_are_the_idp_groups_mapped_and_capped_by_the_registry(service_registry, issuer):
    from modelreg.service.app import create_app
    from modelreg.service.auth import AuthConfig, OidcConfig

    config = AuthConfig(
        oidc=OidcConfig(
            issuer=ISSUER,
            audience=AUDIENCE,
            jwks_url=issuer.jwks_url,
            role_map=(("cn=mrm-approvers", "approver"), ("cn=ops", "operator")),
        )
    )
    with Server(create_app(service_registry.settings, config)) as srv:
        # mapped: the IdP group cn=mrm-approvers is the approver role app1 holds in the registry
        r = _whoami(srv, issuer.token("app1", ["cn=mrm-approvers", "cn=ops", "approver"]))
        assert r.json()["roles"] == ["approver"]  # cn=ops: not a registry role of app1; "approver": unmapped
        # the IdP grants a role the registry does not record for the user: it is not used
        token = issuer.token("dev", ["cn=mrm-approvers"])
        assert _whoami(srv, token).json()["roles"] == []
        before = audit_size(service_registry.settings)
        r = httpx.post(
            f"{srv.url}/api/v1/models/credit_scoring/versions/1/retire",
            json={"reason": "not allowed"},
            headers={"Authorization": f"Bearer {token}", "If-Match": "*"},
        )
        assert r.status_code == 403, r.text
        assert r.json()["error"]["code"] == "permission_denied"
        assert audit_size(service_registry.settings) == before
        # a user the registry does not know: 403, whatever the IdP says
        r = _whoami(srv, issuer.token("mallory", ["cn=mrm-approvers"]))
        assert r.status_code == 403
        assert "mallory" in r.json()["error"]["message"]


@sqlite_only
def test_the_web_view_can_use_the_oidc_verifier(service_registry, issuer):
    from modelreg.errors import AuthenticationFailed
    from modelreg.service.app import create_app
    from modelreg.service.auth import AuthConfig, OidcConfig

    app = create_app(
        service_registry.settings,
        AuthConfig(oidc=OidcConfig(issuer=ISSUER, audience=AUDIENCE, jwks_url=issuer.jwks_url)),
    )
    verify_token = app.state.oidc
    assert verify_token(issuer.token("aud")) == ("aud", frozenset({"auditor"}))
    with pytest.raises(AuthenticationFailed):
        verify_token(issuer.token("aud", aud="other"))


# -- request signatures ------------------------------------------------------------------------------------
def _signed_get(srv, user: str, **kw) -> httpx.Response:
    url = f"{srv.url}/api/v1/whoami"
    return httpx.get(url, headers=signed_headers(srv.settings, user, "GET", url, **kw))


@sqlite_only
def test_a_signed_request_is_the_key_owner_whatever_name_is_claimed(service):
    url = f"{service.url}/api/v1/whoami"
    headers = signed_headers(service.settings, "ops", "GET", url)
    r = httpx.get(url, headers={**headers, "X-Modelreg-User": "admin", "X-Remote-User": "admin"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["user"], body["roles"], body["method"]) == ("ops", ["operator"], "signature")
    assert body["key_id"].startswith("ed25519:")


def test_a_replayed_signed_request_is_refused_even_by_a_restarted_service(service):
    from modelreg.service.app import create_app

    make_retirable(service.registry, "1")

    url = f"{service.url}/api/v1/models/credit_scoring/versions/1"
    etag = httpx.get(url, headers=signed_headers(service.settings, "app1", "GET", url)).headers["etag"]
    move = f"{url}/retire"
    raw = json.dumps({"reason": "replaced by v2"}).encode()
    headers = {
        **signed_headers(service.settings, "app1", "POST", move, raw),
        "If-Match": etag,
        "Content-Type": "application/json",
    }
    first = httpx.post(move, content=raw, headers=headers)
    assert first.status_code == 200, first.text
    size = audit_size(service.settings)
    again = httpx.post(move, content=raw, headers=headers)
    assert again.status_code == 401
    assert "replay" in again.json()["error"]["message"]
    # the same captured request against a fresh service process on the same database (same host:port URL
    # cannot be reused, so the request is re-targeted only in the Host the signature covers: it must fail)
    service.__exit__()
    with Server(create_app(service.settings)) as fresh:
        fresh_url = f"{fresh.url}/api/v1/whoami"
        h = signed_headers(service.settings, "app1", "GET", fresh_url)
        assert httpx.get(fresh_url, headers=h).status_code == 200
        assert httpx.get(fresh_url, headers=h).status_code == 401  # the nonce is in the database
    assert audit_size(service.settings) == size


def test_stale_tampered_and_foreign_signatures_are_refused(service):
    from modelreg import signing

    assert _signed_get(service, "val", created=time.time() - 400).status_code == 401
    assert _signed_get(service, "val", created=time.time() + 400).status_code == 401
    assert _signed_get(service, "val", created=time.time() - 200).status_code == 200  # inside ±300 s

    move = f"{service.url}/api/v1/models/credit_scoring/versions/1/retire"
    before = audit_size(service.settings)
    signed_body = json.dumps({"reason": "routine"}).encode()
    tampered = json.dumps({"reason": "routine!"}).encode()
    h = signed_headers(service.settings, "app1", "POST", move, signed_body)
    r = httpx.post(move, content=tampered, headers={**h, "If-Match": "*", "Content-Type": "application/json"})
    assert r.status_code == 401 and "Content-Digest" in r.json()["error"]["message"]
    # the digest recomputed for the tampered body, but the signature still covers the old digest
    from modelreg.service import httpsig

    h2 = {**h, "Content-Digest": httpsig.content_digest(tampered)}
    r = httpx.post(
        move, content=tampered, headers={**h2, "If-Match": "*", "Content-Type": "application/json"}
    )
    assert r.status_code == 401

    # a key nobody registered
    stray = signing.generate_private_key()
    assert _signed_get(service, "app1", key=stray).status_code == 401
    # val's key, claiming app1's key id: the signature does not verify with app1's registered key
    app1_kid = signing.key_id(signing.load_private_key(service.settings.signing_key_for("app1")))
    val_key = signing.load_private_key(service.settings.signing_key_for("val"))
    r = _signed_get(service, "val", key=val_key, key_id=app1_kid)
    assert r.status_code == 401 and "does not verify" in r.json()["error"]["message"]
    # the target URI is covered: a signature for another path is refused
    other = f"{service.url}/api/v1/versions"
    h = signed_headers(service.settings, "app1", "GET", other)
    assert httpx.get(f"{service.url}/api/v1/whoami", headers=h).status_code == 401
    assert audit_size(service.settings) == before
