"""The REST API's contract: every route refuses the unauthenticated and the role-less, JSON errors with the
stable codes, ETag / If-Match (428, 412, and one winner among racing clients), security headers, the request
size limit, the authentication-failure rate limit and the security log."""

from __future__ import annotations

import json
import re
import threading

import httpx
import pytest

from tests.service.conftest import Server, audit_size, make_retirable, remote, signed_headers

sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def _security_events(settings) -> list[dict]:
    from modelreg.store.engine import make_engine
    from modelreg.store.service_rows import security_events

    engine = make_engine(settings.database_url)
    try:
        return security_events(engine)
    finally:
        engine.dispose()


def _signed(srv, user: str, method: str, path: str, body: dict | None = None, **headers) -> httpx.Response:
    url = srv.url + path
    raw = b"" if body is None else json.dumps(body).encode()
    h = {**signed_headers(srv.settings, user, method, url, raw), **headers}
    if body is not None:
        h["Content-Type"] = "application/json"
    return httpx.request(method, url, content=raw, headers=h)


def _concrete(path: str) -> str:
    return re.sub(
        r"\{[^}]+\}",
        lambda m: "0" if m.group(0) == "{seq}" else "credit_scoring" if m.group(0) == "{model}" else "1",
        path,
    )


@sqlite_only
def test_every_route_of_the_openapi_document_refuses_without_authentication_and_without_a_role(service):
    doc = httpx.get(f"{service.url}/api/v1/openapi.json")
    assert doc.status_code == 200
    routes = [(m.upper(), p) for p, ops in doc.json()["paths"].items() for m in ops]
    tags = {
        (m.upper(), p): op.get("tags", []) for p, ops in doc.json()["paths"].items() for m, op in ops.items()
    }
    # A POST tagged "read" (sync --check) changes nothing for a user without a role: it is walked as a read.
    reads = [(m, p) for m, p in routes if m == "GET" or "read" in tags[(m, p)]]
    writes = [(m, p) for m, p in routes if (m, p) not in reads]
    assert len(routes) >= 18 and len(writes) >= 9  # the walk sees the whole API
    before = audit_size(service.settings)
    for method, path in routes:
        r = httpx.request(method, service.url + _concrete(path), json={} if method != "GET" else None)
        assert r.status_code == 401, (method, path, r.status_code, r.text)
        assert r.json()["error"]["code"] == "authentication_failed"
    for method, path in writes:
        body = {"reason": "r", "role": "approver", "payload": {}, "signature": {}, "owner": "dev",
                "risk_tier": "low", "purpose": "p", "version": "9"}  # fmt: skip
        r = _signed(service, "nobody", method, _concrete(path), body, **{"If-Match": "*"})
        assert r.status_code == 403, (method, path, r.status_code, r.text)
        assert r.json()["error"]["code"] == "permission_denied"
    for method, path in reads:  # reads are open to every registered, authenticated user
        r = _signed(service, "nobody", method, _concrete(path), {} if method != "GET" else None)
        assert r.status_code in (200, 404), (path, r.text)
    assert audit_size(service.settings) == before
    refused = [e for e in _security_events(service.settings) if e["code"] == "permission_denied"]
    assert len(refused) == len(writes) and {e["subject"] for e in refused} == {"nobody"}


def test_etag_if_match_and_one_winner_among_racing_clients(service):
    make_retirable(service.registry, "1")
    path = "/api/v1/models/credit_scoring/versions/1"
    shown = _signed(service, "app1", "GET", path)
    etag = shown.headers["etag"]
    assert shown.json()["version"]["stage"] == "develop"
    # no If-Match: 428; a stale one: 412; nothing moved
    r = _signed(service, "app1", "POST", f"{path}/retire", {"reason": "old"})
    assert r.status_code == 428 and r.json()["error"]["code"] == "precondition_required"
    r = _signed(service, "app1", "POST", f"{path}/retire", {"reason": "old"}, **{"If-Match": '"0000"'})
    assert r.status_code == 412 and r.json()["error"]["code"] == "precondition_failed"
    size = audit_size(service.settings)

    # 16 clients read the same ETag and race to retire the version
    results: list[httpx.Response] = []
    lock = threading.Lock()
    barrier = threading.Barrier(16)

    def racer(i: int) -> None:
        user = "app1" if i % 2 else "app2"
        url = f"{service.url}{path}/retire"
        raw = json.dumps({"reason": f"racer {i}"}).encode()
        h = {
            **signed_headers(service.settings, user, "POST", url, raw),
            "If-Match": etag,
            "Content-Type": "application/json",
        }
        barrier.wait()
        resp = httpx.post(url, content=raw, headers=h, timeout=60)
        with lock:
            results.append(resp)

    threads = [threading.Thread(target=racer, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = sorted(r.status_code for r in results)
    assert codes == [200] + [412] * 15, [r.text for r in results if r.status_code not in (200, 412)]
    winner = next(r for r in results if r.status_code == 200)
    assert winner.headers["etag"] != etag
    assert audit_size(service.settings) == size + 1  # exactly one move recorded
    after = _signed(service, "aud", "GET", path).json()
    assert after["version"]["stage"] == "retire"
    assert after["history"][-1]["reason"] == winner.json()["event"]["payload"]["reason"]
    report = _signed(service, "aud", "GET", "/api/v1/audit/verify").json()
    assert report["ok"] is True and report["size"] == size + 1


@sqlite_only
def test_errors_are_json_with_stable_codes_and_no_traceback(service):
    r = _signed(service, "aud", "GET", "/api/v1/models/credit_scoring/versions/99")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found" and "99" in r.json()["error"]["message"]
    r = _signed(service, "aud", "GET", "/api/v1/nothing-here")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = _signed(service, "aud", "GET", "/api/v1/versions?stage=flying")
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_input"
    # a move the gate refuses: 409 with every unmet requirement
    etag = _signed(service, "dev", "GET", "/api/v1/models/credit_scoring/versions/2").headers["etag"]
    r = _signed(
        service, "dev", "POST", "/api/v1/models/credit_scoring/versions/2/submit", {}, **{"If-Match": etag}
    )
    assert r.status_code == 409 and r.json()["error"]["code"] == "gate_refused"
    assert len(r.json()["error"]["details"]["unmet"]) >= 5
    # malformed JSON body
    url = f"{service.url}/api/v1/models/credit_scoring/versions/2/retire"
    raw = b'{"reason": '
    h = {
        **signed_headers(service.settings, "app1", "POST", url, raw),
        "If-Match": "*",
        "Content-Type": "application/json",
    }
    r = httpx.post(url, content=raw, headers=h)
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_input"
    for resp in (r,):
        assert "Traceback" not in resp.text and 'File "' not in resp.text


@sqlite_only
def test_security_headers_and_no_server_details(service):
    r = _signed(service, "aud", "GET", "/api/v1/versions")
    assert r.status_code == 200
    assert r.headers["content-security-policy"].startswith("default-src 'none'")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert r.headers["cache-control"] == "no-store"
    assert "server" not in r.headers
    unauth = httpx.get(f"{service.url}/api/v1/versions")
    assert unauth.headers["x-content-type-options"] == "nosniff" and "server" not in unauth.headers


@sqlite_only
def test_request_bodies_over_the_limit_are_refused_with_413(service_registry):
    from modelreg.service.app import create_app
    from modelreg.service.auth import AuthConfig

    with Server(create_app(service_registry.settings, AuthConfig(max_body_bytes=2048))) as srv:
        srv.settings = service_registry.settings
        big = {"reason": "x" * 5000}
        r = _signed(
            srv, "app1", "POST", "/api/v1/models/credit_scoring/versions/1/retire", big, **{"If-Match": "*"}
        )
        assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"

        def chunks():  # no Content-Length: counted while it streams
            for _ in range(10):
                yield b"y" * 1000

        r = httpx.post(f"{srv.url}/api/v1/models/credit_scoring/versions/1/retire", content=chunks(),
                       headers={"Signature-Input": "x", "Signature": "y"})  # fmt: skip
        assert r.status_code == 413
    codes = [e["code"] for e in _security_events(service_registry.settings)]
    assert codes.count("payload_too_large") == 2


@sqlite_only
def test_authentication_failures_are_rate_limited_per_client_address(service_registry, issuer):
    from modelreg.service.app import create_app
    from modelreg.service.auth import AuthConfig, OidcConfig
    from tests.service.conftest import AUDIENCE, ISSUER

    config = AuthConfig(
        oidc=OidcConfig(issuer=ISSUER, audience=AUDIENCE, jwks_url=issuer.jwks_url),
        failure_limit=3,
        failure_period=600,
    )
    with Server(create_app(service_registry.settings, config)) as srv:
        bad = {"Authorization": f"Bearer {issuer.token('app1', aud='elsewhere')}"}
        good = {"Authorization": f"Bearer {issuer.token('app1')}"}
        assert httpx.get(f"{srv.url}/api/v1/whoami", headers=good).status_code == 200
        for _ in range(3):
            assert httpx.get(f"{srv.url}/api/v1/whoami", headers=bad).status_code == 401
        r = httpx.get(f"{srv.url}/api/v1/whoami", headers=good)
        assert r.status_code == 429
        assert r.json()["error"]["code"] == "rate_limited"
        assert 1 <= int(r.headers["retry-after"]) <= 601
    events = _security_events(service_registry.settings)
    assert [e["code"] for e in events] == ["authentication_failed"] * 3 + ["rate_limited"]
    assert all(e["client"] == "127.0.0.1" and e["path"] == "/api/v1/whoami" for e in events)


@sqlite_only
def test_the_remote_client_maps_service_errors_to_the_same_errors(service):
    from modelreg.errors import GateRefused, NotFound, PermissionDenied

    with pytest.raises(NotFound):
        remote(service, "aud").show("credit_scoring", "99")
    with pytest.raises(GateRefused) as refused:
        remote(service, "dev").submit("credit_scoring", "2")
    assert refused.value.exit_status == 1 and refused.value.unmet
    with pytest.raises(PermissionDenied):
        remote(service, "nobody").retire("credit_scoring", "2", reason="no role")
