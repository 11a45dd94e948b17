"""The web view over plain HTTP (httpx against uvicorn on loopback): login, sessions, CSRF, refused writes,
headers, escaping, and the pages' content checked against the registry's own functions."""

from __future__ import annotations

import re
import time
import zipfile
from urllib.parse import quote

import httpx
import pytest

from tests.web.conftest import csrf_of, login, new_rsa

PAGES = ["/inventory", "/version/credit_scoring/1", "/audit", "/audit/proof/0", "/audit/checkpoint"]
HEADERS = {
    "content-security-policy": "default-src 'self'; script-src 'none'; frame-ancestors 'none'",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


def audit_size(site) -> int:
    return len(site.registry.audit_leaf_hashes())


@pytest.fixture
def auditor(site):
    with httpx.Client(follow_redirects=False, timeout=120) as c:
        r = login(c, site, site.issuer.token("aud", ["auditor"]))
        assert r.status_code == 303 and r.headers["location"].endswith("/ui/inventory"), r.text
        yield c


def test_no_session_redirects_to_login(site):
    with httpx.Client(follow_redirects=False) as c:
        for p in [*PAGES, "/evidence/credit_scoring/1", "/"]:
            r = c.get(site.url + p)
            assert r.status_code == 303, p
            assert r.headers["location"] == "/ui/login" or r.headers["location"] == "/ui/inventory", p
        assert c.get(site.url + "/inventory").headers["location"] == "/ui/login"


def test_session_cookie_attributes_and_expiry(site):
    with httpx.Client(follow_redirects=False) as c:
        r = login(c, site, site.issuer.token("aud", ["auditor"], exp_in=600))
        cookie = r.headers["set-cookie"]
        assert "modelreg_session=" in cookie
        low = cookie.lower()
        assert "httponly" in low and "samesite=strict" in low and "path=/ui" in low
        max_age = int(re.search(r"max-age=(\d+)", low).group(1))
        assert 590 <= max_age <= 600  # min(token exp, 8 h): the token's 10 minutes
        sid = r.cookies["modelreg_session"]
        assert len(sid) >= 40  # 32 random bytes, url-safe
        r2 = login(c, site, site.issuer.token("aud", ["auditor"], exp_in=24 * 3600))
        max_age = int(re.search(r"max-age=(\d+)", r2.headers["set-cookie"].lower()).group(1))
        assert 8 * 3600 - 10 <= max_age <= 8 * 3600
        assert r2.cookies["modelreg_session"] != sid


def test_secure_cookie_flag_by_default(site):
    """Without ``secure_cookies=False`` both cookies carry Secure (the loopback fixture turns it off)."""
    import asyncio

    from modelreg.client import open_registry
    from modelreg.web import create_web_app

    app = create_web_app(lambda a: open_registry(site.settings, actor=a), site.issuer.verify)

    async def run() -> tuple[str, str]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as c:
            form = await c.get("/login")
            r = await c.post(
                "/login", data={"csrf": csrf_of(form.text), "token": site.issuer.token("aud", ["auditor"])}
            )
            assert r.status_code == 303
            return form.headers["set-cookie"], r.headers["set-cookie"]

    login_cookie, session_cookie = asyncio.run(run())
    assert "secure" in login_cookie.lower() and "modelreg_login_csrf=" in login_cookie
    assert "secure" in session_cookie.lower() and "modelreg_session=" in session_cookie


@pytest.mark.parametrize("case", ["forged", "expired", "audience", "garbage", "empty"])
def test_bad_tokens_get_no_session(site, case):
    before = audit_size(site)
    tok = {
        "forged": lambda: site.issuer.token("aud", ["auditor"], key=new_rsa()),
        "expired": lambda: site.issuer.token("aud", ["auditor"], exp_in=-60),
        "audience": lambda: site.issuer.token("aud", ["auditor"], aud="someone-else"),
        "garbage": lambda: "not.a.jwt",
        "empty": lambda: "",
    }[case]()
    with httpx.Client(follow_redirects=False) as c:
        r = login(c, site, tok)
        assert r.status_code == 303 and r.headers["location"] == "/ui/login?error=1"
        assert "modelreg_session" not in r.cookies
        assert c.get(site.url + "/inventory").status_code == 303
        assert "令牌无效" in c.get(site.url + "/login?error=1").text
    assert audit_size(site) == before


def test_login_needs_csrf(site):
    tok = site.issuer.token("aud", ["auditor"])
    with httpx.Client(follow_redirects=False) as c:
        c.get(f"{site.url}/login")  # sets the CSRF cookie
        assert c.post(f"{site.url}/login", data={"token": tok}).status_code == 403
        assert c.post(f"{site.url}/login", data={"token": tok, "csrf": "wrong"}).status_code == 403
    with httpx.Client(follow_redirects=False) as c:  # field without the cookie
        field = csrf_of(httpx.get(f"{site.url}/login").text)
        assert c.post(f"{site.url}/login", data={"token": tok, "csrf": field}).status_code == 403


def test_oversized_login_refused(site):
    with httpx.Client(follow_redirects=False) as c:
        field = csrf_of(c.get(f"{site.url}/login").text)
        r = c.post(f"{site.url}/login", data={"csrf": field, "token": "x" * 20000})
        assert r.status_code == 413


def test_role_without_view_right_is_refused(site):
    with httpx.Client(follow_redirects=False) as c:
        login(c, site, site.issuer.token("dev", ["developer"]))
        for p in PAGES:
            assert c.get(site.url + p).status_code == 403, p
        assert c.get(site.url + "/evidence/credit_scoring/1").status_code == 403


def test_security_headers_everywhere(site, auditor):
    urls = [*PAGES, "/login", "/no-such-page", "/version/nope/1"]
    for p in urls:
        r = auditor.get(site.url + p)
        for k, v in HEADERS.items():
            assert r.headers.get(k) == v, (p, k)
        assert r.headers.get("cache-control") == "no-store", p
        assert "Traceback" not in r.text
    assert auditor.get(site.url + "/no-such-page").status_code == 404
    assert auditor.get(site.url + "/version/nope/1").status_code == 404
    r = auditor.put(site.url + "/inventory")
    assert r.status_code == 405 and r.headers["x-frame-options"] == "DENY"


def test_writes_refused_and_state_unchanged(site, auditor):
    before = audit_size(site)
    stage = site.registry.show("collections_pd", "3").stage
    page = auditor.get(site.url + "/inventory").text
    csrf = csrf_of(page)
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        for p in [
            "/inventory",
            "/version/collections_pd/3",
            "/audit",
            "/evidence/credit_scoring/1",
            "/submit",
        ]:
            r = auditor.request(method, site.url + p, data={"csrf": csrf, "action": "submit"})
            assert r.status_code == 405, (method, p)
    # logout without / with a wrong CSRF token is refused and the session survives
    assert auditor.post(site.url + "/logout").status_code == 403
    assert auditor.post(site.url + "/logout", data={"csrf": "forged"}).status_code == 403
    assert auditor.get(site.url + "/inventory").status_code == 200
    assert audit_size(site) == before
    assert site.registry.show("collections_pd", "3").stage == stage


def test_logout(site, auditor):
    csrf = csrf_of(auditor.get(site.url + "/inventory").text)
    r = auditor.post(site.url + "/logout", data={"csrf": csrf})
    assert r.status_code == 303 and r.headers["location"] == "/ui/login"
    auditor.cookies.clear()
    assert auditor.get(site.url + "/inventory").status_code == 303


def test_script_in_purpose_is_escaped(site, auditor):
    for p in ["/inventory", "/version/fraud_rules/1"]:
        text = auditor.get(site.url + p).text
        assert "<script>" not in text
        assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; 反欺诈规则" in text


def rows_of(text: str) -> list[tuple[str, str]]:
    return re.findall(r'<tr class="inv-row"><td><a href="/ui/version/([^/]+)/([^"]+)">', text)


def test_inventory_rows_and_filters_match_the_inventory_function(site, auditor):
    from modelreg.operations.inventory import rows

    data = rows(site.registry.as_user("aud"))
    everything = {(r["model"], r["version"]) for r in data}
    assert everything == {("credit_scoring", "1"), ("fraud_rules", "1"), ("collections_pd", "3")}
    assert set(rows_of(auditor.get(site.url + "/inventory").text)) == everything
    cases = {
        "tier=low": {("fraud_rules", "1")},
        "tier=high": {("credit_scoring", "1")},
        "stage=deploy": {("credit_scoring", "1")},
        "stage=develop": {("fraud_rules", "1"), ("collections_pd", "3")},
        "owner=dev": {("credit_scoring", "1"), ("collections_pd", "3")},
        "owner=dev2&stage=develop": {("fraud_rules", "1")},
        "overdue=1": {(r["model"], r["version"]) for r in data if r["due_status"] == "overdue"},
        "stage=retire": set(),
    }
    for q, want in cases.items():
        text = auditor.get(f"{site.url}/inventory?{q}").text
        assert set(rows_of(text)) == want, q
        assert f"显示 {len(want)} / 共 3 个版本" in text


def test_version_page_content(site, auditor):
    from modelreg.governance.service import signed

    text = auditor.get(site.url + "/version/credit_scoring/1").text
    for label in ("模型卡 Model card", "生命周期 Lifecycle history", "审批与声明 Approvals", "豁免 Waivers"):
        assert label in text
    assert "消费分期贷款违约概率评分" in text  # the card's Chinese intended use
    records = signed(site.registry.as_user("aud"), "credit_scoring", "1")
    approvals = [r for r in records if r.kind == "approval"]
    assert {r.actor for r in approvals} == {"val", "app1", "app2"}
    for r in records:
        assert r.signature["key_id"] in text
    waivers = [r for r in records if r.kind == "waiver"]
    assert {r.control_id for r in waivers} == {"CHK-PERF-02", "CHK-ROB-02"}
    assert text.count('<tr class="waiver">') == 2
    for w in waivers:
        assert w.until.isoformat()[:10] in text
    # a finding's clause is shown with its Chinese and English titles from the policy pack
    from modelreg.governance.service import load_policy

    pack = load_policy(site.registry)
    cid = next(c for c in pack.control("CHK-ROB-02").clauses)
    clause = pack.clause(cid)
    assert clause.title_zh in text and clause.title_en.replace("'", "&#x27;") in text
    assert "deploy" in text and "submit" in text  # lifecycle moves
    from modelreg.operations.findings import list_findings

    tracked = list_findings(site.registry.as_user("aud"), model="credit_scoring", version="1")
    assert tracked, "the fixture's failing controls open tracked findings"
    for t in tracked:
        assert f"<tr><td>{t.id}</td><td><code>{t.control_id}</code></td>" in text


def test_audit_pages_and_proofs(site, auditor):
    from modelreg.audit import merkle

    events = site.registry.audit_log()
    total = len(events)
    first = auditor.get(site.url + "/audit").text
    assert f"共 {total} 条事件" in first
    seqs = [int(s) for s in re.findall(r'<tr class="event"><td><a href="/ui/audit/proof/(\d+)"', first)]
    assert seqs == list(range(total - 1, max(-1, total - 51), -1))  # newest first, 50 a page
    pages = -(-total // 50)
    last = auditor.get(f"{site.url}/audit?page={pages}").text
    assert '<a href="/ui/audit/proof/0">' in last
    # the proof page's numbers against an independent recomputation from the leaves
    seq = 7
    text = auditor.get(f"{site.url}/audit/proof/{seq}").text
    assert "已验证：是 / Verified: yes" in text
    leaves = site.registry.audit_leaf_hashes()
    tree = merkle.MerkleTree.from_leaf_hashes(leaves)
    assert events[seq].leaf_hash in text and leaves[seq].hex() in text
    assert tree.root().hex() in text
    for h in tree.inclusion_proof(seq, len(leaves)):
        assert h.hex() in text
    assert auditor.get(f"{site.url}/audit/proof/{total + 5}").status_code == 400
    assert auditor.get(f"{site.url}/audit/proof/abc").status_code == 400


def test_checkpoint_page(site, auditor):
    import json

    cp = json.loads((site.root / "checkpoint.json").read_text())
    text = auditor.get(site.url + "/audit/checkpoint").text
    assert "一致：是 / Consistent: yes" in text
    assert cp["root_hash"] in text and cp["key_id"] in text
    assert cp["size"] < len(site.registry.audit_leaf_hashes())  # events after it: extension, not equality


def test_evidence_download_verifies(site, auditor, tmp_path):
    from modelreg.evidence.verify import verify_pack

    r = auditor.get(site.url + "/evidence/credit_scoring/1")
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    assert 'filename="credit_scoring-1-evidence.zip"' in r.headers["content-disposition"]
    out = tmp_path / "pack.zip"
    out.write_bytes(r.content)
    assert "manifest.json" in zipfile.ZipFile(out).namelist()
    ev_pub = site.settings.evidence_key_path.with_name(site.settings.evidence_key_path.name + ".pub")
    result = verify_pack(out, trusted_keys=[ev_pub])
    assert result.ok, result.text()
    assert auditor.get(site.url + "/evidence/nope/1").status_code == 404


def test_session_expires(site):
    with httpx.Client(follow_redirects=False) as c:
        login(c, site, site.issuer.token("aud", ["auditor"], exp_in=2))
        assert c.get(site.url + "/audit/checkpoint").status_code == 200
        time.sleep(2.5)
        assert c.get(site.url + "/audit/checkpoint").status_code == 303


def test_quoted_names_in_links(site, auditor):
    text = auditor.get(site.url + "/inventory").text
    assert f"/ui/version/{quote('credit_scoring', safe='')}/1" in text


def test_failed_logins_are_rate_limited(site):
    """A fresh app (its own counter): ten bad tokens from one address, then even a good one gets 429."""
    import asyncio

    from modelreg.client import open_registry
    from modelreg.web import create_web_app

    app = create_web_app(
        lambda a: open_registry(site.settings, actor=a), site.issuer.verify, secure_cookies=False
    )

    async def run() -> list[int]:
        transport = httpx.ASGITransport(app=app, client=("10.0.0.9", 4000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            out = []
            for i in range(12):
                form = await c.get("/login")
                tok = "bad.token" if i < 11 else site.issuer.token("aud", ["auditor"])
                r = await c.post("/login", data={"csrf": csrf_of(form.text), "token": tok})
                out.append(r.status_code)
            return out

    codes = asyncio.run(run())
    assert codes[:10] == [303] * 10  # redirected back to the form with an error
    assert codes[10:] == [429, 429]  # the eleventh bad one and then a good one are refused
