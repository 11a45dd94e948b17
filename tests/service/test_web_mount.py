"""The service mounts the auditor's web view at /ui and logs auditors in with the same OIDC verifier the API
uses: a token from the bank's issuer opens a session; a token the issuer did not sign, or a role the view
does not serve, does not."""

from __future__ import annotations

import re

import httpx


def _cookies(response: httpx.Response) -> dict[str, str]:
    # The view's cookies are Secure (the service runs behind TLS in production); this test talks plain HTTP
    # on loopback, where httpx would not send them back, so it carries them itself.
    return {c.name: c.value for c in response.cookies.jar}


def _login(srv, token: str) -> tuple[httpx.Response, dict[str, str]]:
    with httpx.Client(follow_redirects=False, timeout=30) as client:
        form = client.get(f"{srv.url}/ui/login")
        assert form.status_code == 200, form.text
        jar = _cookies(form)
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
        done = client.post(
            f"{srv.url}/ui/login",
            data={"csrf": csrf, "token": token},
            headers={"Cookie": "; ".join(f"{k}={v}" for k, v in jar.items())},
        )
        return done, {**jar, **_cookies(done)}


def test_an_auditor_logs_in_to_the_mounted_view_with_the_services_oidc_verifier(service, issuer):
    with httpx.Client(follow_redirects=False, timeout=30) as client:
        anonymous = client.get(f"{service.url}/ui/inventory")
        assert anonymous.status_code in (302, 303, 307) and "/ui/login" in anonymous.headers["location"]

    done, jar = _login(service, issuer.token("aud"))
    assert done.status_code == 303 and done.headers["location"].endswith("/ui/inventory"), done.text
    cookie = "; ".join(f"{k}={v}" for k, v in jar.items())
    with httpx.Client(follow_redirects=False, timeout=30) as client:
        page = client.get(f"{service.url}/ui/inventory", headers={"Cookie": cookie})
        assert page.status_code == 200, page.text
        assert "模型台账 Model inventory" in page.text and "credit_scoring" in page.text
        version = client.get(f"{service.url}/ui/version/credit_scoring/1", headers={"Cookie": cookie})
        assert version.status_code == 200 and "PD scoring" in version.text
        # The auditor's session cannot write, neither through the view nor through the API with its cookie.
        write = client.post(f"{service.url}/ui/version/credit_scoring/1", headers={"Cookie": cookie})
        assert write.status_code in (403, 405)
        api = client.post(
            f"{service.url}/api/v1/models/credit_scoring/versions/1/retire",
            json={"reason": "x"},
            headers={"Cookie": cookie},
        )
        assert api.status_code == 401  # a cookie is not an API credential


def test_tokens_the_issuer_did_not_sign_or_roles_the_view_does_not_serve_open_no_session(service, issuer):
    from cryptography.hazmat.primitives.asymmetric import rsa

    issuer.add_key("rogue", "RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048))
    issuer.published.discard("rogue")  # signed with a key the issuer never published
    forged, _ = _login(service, issuer.token("aud", kid="rogue"))
    assert forged.status_code == 303 and "error=1" in forged.headers["location"], forged.text
    _, jar = _login(service, issuer.token("dev"))
    cookie = "; ".join(f"{k}={v}" for k, v in jar.items())
    with httpx.Client(follow_redirects=False, timeout=30) as client:
        page = client.get(f"{service.url}/ui/inventory", headers={"Cookie": cookie})
    assert page.status_code != 200 and "credit_scoring" not in page.text, page.text


def test_failed_logins_go_to_the_security_log_and_the_limit_is_shared_through_the_database(
    service_registry, issuer
):
    """Two service processes' worth of apps on one registry: failures at either (API or web login) count at
    both, because the count is read from the security log, not from process memory."""
    from modelreg.service.app import create_app
    from modelreg.service.auth import AuthConfig, OidcConfig
    from modelreg.store.engine import make_engine
    from modelreg.store.service_rows import security_events
    from tests.service.conftest import AUDIENCE, ISSUER, Server

    settings = service_registry.settings
    config = AuthConfig(
        oidc=OidcConfig(issuer=ISSUER, audience=AUDIENCE, jwks_url=issuer.jwks_url),
        failure_limit=5,
        failure_period=600,
    )
    bad = issuer.token("aud", aud="elsewhere")
    good = issuer.token("aud")
    with Server(create_app(settings, config)) as a, Server(create_app(settings, config)) as b:
        for _ in range(3):
            r = httpx.get(f"{a.url}/api/v1/whoami", headers={"Authorization": f"Bearer {bad}"})
            assert r.status_code == 401
        for _ in range(2):
            done, _ = _login(b, bad)
            assert done.status_code == 303 and "error=1" in done.headers["location"]
        # five failures in all, two of them at the other app: the API limit (5) is reached at both
        r = httpx.get(f"{b.url}/api/v1/whoami", headers={"Authorization": f"Bearer {good}"})
        assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limited"
        # the web login's own limit (10 in 5 minutes) counts the same failures
        for _ in range(5):
            done, _ = _login(a, bad)
            assert done.status_code == 303
        refused, _ = _login(b, good)
        assert refused.status_code == 429 and "Too many failed logins" in refused.text
    engine = make_engine(settings.database_url)
    try:
        events = security_events(engine)
    finally:
        engine.dispose()
    web = [e for e in events if e["path"] == "/ui/login"]
    assert [e["code"] for e in web] == ["authentication_failed"] * 7 + ["rate_limited"]
    assert all(e["client"] == "127.0.0.1" and e["kind"] in ("authentication", "rate_limit") for e in web)
    assert "audience" in web[0]["detail"]
    api = [e["code"] for e in events if e["path"] == "/api/v1/whoami"]
    assert api == ["authentication_failed"] * 3 + ["rate_limited"]


def test_web_sessions_live_in_the_database_so_every_worker_knows_them_and_logout_ends_them_everywhere(
    service_registry, issuer
):
    import hashlib

    from sqlalchemy import text

    from modelreg.service.app import create_app
    from modelreg.service.auth import AuthConfig, OidcConfig
    from modelreg.store.engine import make_engine
    from tests.service.conftest import AUDIENCE, ISSUER, Server

    settings = service_registry.settings
    config = AuthConfig(oidc=OidcConfig(issuer=ISSUER, audience=AUDIENCE, jwks_url=issuer.jwks_url))

    def stored_sessions() -> list[tuple]:
        engine = make_engine(settings.database_url)
        try:
            with engine.connect() as conn:
                return [tuple(r) for r in conn.execute(text("SELECT sid_sha256, subject FROM web_sessions"))]
        finally:
            engine.dispose()

    with Server(create_app(settings, config)) as a, Server(create_app(settings, config)) as b:
        done, jar = _login(a, issuer.token("aud"))
        assert done.status_code == 303, done.text
        sid = jar["modelreg_session"]
        cookie = "; ".join(f"{k}={v}" for k, v in jar.items())
        # only the SHA-256 of the cookie's random id is stored, never the id itself
        assert stored_sessions() == [(hashlib.sha256(sid.encode()).hexdigest(), "aud")]
        with httpx.Client(follow_redirects=False, timeout=30) as client:
            # signed in at one app, known at the other (another worker or process)
            page = client.get(f"{b.url}/ui/inventory", headers={"Cookie": cookie})
            assert page.status_code == 200 and "credit_scoring" in page.text
            csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
            # logged out at the other app: the first one no longer knows the session either
            out = client.post(f"{b.url}/ui/logout", data={"csrf": csrf}, headers={"Cookie": cookie})
            assert out.status_code == 303
            again = client.get(f"{a.url}/ui/inventory", headers={"Cookie": cookie})
            assert again.status_code == 303 and "/ui/login" in again.headers["location"]
    assert stored_sessions() == []  # the logout deleted it
