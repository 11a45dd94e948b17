"""The web view in a real headless Chromium (Debian's chromium + chromedriver, driven by selenium): log in by
pasting a token, the inventory and its filters, a crawl of every link, the proof and checkpoint verdicts, the
evidence download verified offline, and forged writes from an auditor's session refused."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.web.conftest import csrf_of


@pytest.fixture
def browser(tmp_path):
    if shutil.which("chromedriver") is None and not Path("/usr/bin/chromedriver").exists():
        pytest.fail("chromedriver missing: apt-get install chromium-driver (tests/run.sh does)")
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    downloads = tmp_path / "downloads"
    downloads.mkdir()
    opts = Options()
    opts.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1600,1000", "--lang=zh-CN"):
        opts.add_argument(arg)
    opts.add_experimental_option(
        "prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False}
    )
    driver = webdriver.Chrome(options=opts, service=Service("/usr/bin/chromedriver"))
    driver.set_page_load_timeout(180)
    driver.downloads = downloads
    yield driver
    driver.quit()


def sign_in(driver, site, roles=("auditor",)):
    from selenium.webdriver.common.by import By

    driver.get(site.url + "/inventory")
    assert urlsplit(driver.current_url).path == "/ui/login"  # no session: redirected
    driver.find_element(By.ID, "token").send_keys(site.issuer.token("aud", list(roles)))
    driver.find_element(By.ID, "login").click()
    # click() returns before the POST's navigation ends; a driver.get() racing it would load the login form
    # again (a fresh CSRF cookie) and the pending POST would then fail its CSRF check.
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 60).until(lambda d: urlsplit(d.current_url).path == "/ui/inventory")


def click_through(driver, element) -> None:
    """Click a link or submit button and wait until the next page replaced this one: click() returns before
    the navigation ends, and reading elements meanwhile finds the old page's (stale) ones."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    old = driver.find_element(By.TAG_NAME, "html")
    element.click()
    WebDriverWait(driver, 60).until(EC.staleness_of(old))


def inventory_rows(driver) -> set[tuple[str, str]]:
    from selenium.webdriver.common.by import By

    out = set()
    for tr in driver.find_elements(By.CSS_SELECTOR, "tr.inv-row"):
        tds = tr.find_elements(By.TAG_NAME, "td")
        out.add((tds[0].text, tds[1].text))
    return out


def status_of(url: str, cookies: dict) -> int:
    return httpx.get(url, cookies=cookies, follow_redirects=False, timeout=180).status_code


def test_auditor_session_in_chromium(site, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    from modelreg.evidence.verify import verify_pack

    d = browser
    sign_in(d, site)
    assert urlsplit(d.current_url).path == "/ui/inventory"
    assert "模型台账 Model inventory" in d.title
    # the stylesheet applied (the CSP allows only same-origin styles): the header bar is coloured
    header = d.find_element(By.TAG_NAME, "header")
    assert header.value_of_css_property("background-color") == "rgba(18, 58, 92, 1)"
    assert inventory_rows(d) == {("credit_scoring", "1"), ("fraud_rules", "1"), ("collections_pd", "3")}
    d.save_screenshot(str(tmp_path / "inventory.png"))

    # filters are GET forms: choosing a tier and submitting changes the rows
    Select(d.find_element(By.ID, "f-tier")).select_by_value("low")
    click_through(d, d.find_element(By.ID, "apply"))
    assert "tier=low" in d.current_url
    assert inventory_rows(d) == {("fraud_rules", "1")}
    Select(d.find_element(By.ID, "f-tier")).select_by_value("")
    Select(d.find_element(By.ID, "f-stage")).select_by_value("develop")
    Select(d.find_element(By.ID, "f-owner")).select_by_value("dev")
    click_through(d, d.find_element(By.ID, "apply"))
    assert inventory_rows(d) == {("collections_pd", "3")}
    d.get(site.url + "/inventory")

    # crawl: every link on the inventory and on each version page answers 200 with this session
    cookies = {c["name"]: c["value"] for c in d.get_cookies()}
    assert "modelreg_session" in cookies
    hrefs = {a.get_attribute("href") for a in d.find_elements(By.TAG_NAME, "a")}
    version_pages = sorted(h for h in hrefs if "/ui/version/" in h)
    assert len(version_pages) == 3
    for vp in version_pages:
        d.get(vp)
        assert d.find_element(By.TAG_NAME, "h1").text.startswith("版本 Version")
        hrefs |= {a.get_attribute("href") for a in d.find_elements(By.TAG_NAME, "a")}
    assert any("/ui/evidence/" in h for h in hrefs)
    for h in sorted(hrefs):
        assert status_of(h, cookies) == 200, h

    d.get(site.url + "/version/credit_scoring/1")
    assert len(d.find_elements(By.CSS_SELECTOR, "tr.waiver")) == 2
    assert len(d.find_elements(By.CSS_SELECTOR, "#approvals tr.signed")) >= 3
    d.save_screenshot(str(tmp_path / "version.png"))

    # the audit log: follow the first event's proof link; the verifier says yes
    d.get(site.url + "/audit")
    click_through(d, d.find_element(By.CSS_SELECTOR, "tr.event a"))
    assert "/ui/audit/proof/" in d.current_url
    assert d.find_element(By.ID, "verdict").text == "已验证：是 / Verified: yes"
    click_through(d, d.find_element(By.LINK_TEXT, "检查点验证 Checkpoint"))
    assert d.find_element(By.ID, "verdict").text.startswith("一致：是 / Consistent: yes")

    # the evidence pack, downloaded by the browser, verifies offline
    d.get(site.url + "/version/credit_scoring/1")
    d.find_element(By.ID, "evidence").click()
    target = d.downloads / "credit_scoring-1-evidence.zip"
    for _ in range(600):
        if target.exists() and not list(d.downloads.glob("*.crdownload")):
            break
        time.sleep(0.2)
    assert target.exists(), list(d.downloads.iterdir())
    ev_pub = site.settings.evidence_key_path.with_name(site.settings.evidence_key_path.name + ".pub")
    result = verify_pack(target, trusted_keys=[ev_pub])
    assert result.ok, result.text()


FORGE = """
const f = document.createElement('form');
f.method = 'post'; f.action = arguments[0];
for (const [k, v] of Object.entries(arguments[1])) {
  const i = document.createElement('input'); i.type = 'hidden'; i.name = k; i.value = v; f.appendChild(i);
}
document.body.appendChild(f); f.submit();
"""


def forge(driver, action: str, fields: dict) -> None:
    """Submit a hand-made form and wait for its response page (form.submit() returns before it loads)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    old = driver.find_element(By.TAG_NAME, "html")
    driver.execute_script(FORGE, action, fields)
    WebDriverWait(driver, 60).until(EC.staleness_of(old))


def test_forged_forms_from_an_auditor_session_are_refused(site, browser):
    from selenium.webdriver.common.by import By

    d = browser
    sign_in(d, site)
    before = len(site.registry.audit_leaf_hashes())
    stage = site.registry.show("collections_pd", "3").stage
    real_csrf = csrf_of(d.page_source)
    # Selenium's script runs outside the page's CSP (script-src 'none' blocks page scripts, not the driver):
    # it stands in for an auditor hand-crafting a form with the session's own CSRF token.
    for action in (
        "/ui/version/collections_pd/3",
        "/ui/inventory",
        "/ui/submit",
        "/ui/evidence/credit_scoring/1",
    ):
        forge(d, action, {"csrf": real_csrf, "action": "submit", "reason": "forged"})
        body = d.find_element(By.TAG_NAME, "body").text
        assert "405" in d.title and "只读视图不接受此请求" in body, action
        d.back()
    forge(d, "/ui/logout", {"csrf": "forged"})
    assert "403" in d.title and "CSRF" in d.find_element(By.TAG_NAME, "body").text
    d.get(site.url + "/inventory")  # the session survived the forged logout
    assert urlsplit(d.current_url).path == "/ui/inventory"
    assert len(site.registry.audit_leaf_hashes()) == before
    assert site.registry.show("collections_pd", "3").stage == stage
    # the real logout form ends the session
    click_through(d, d.find_element(By.CSS_SELECTOR, "header form button"))
    assert urlsplit(d.current_url).path == "/ui/login"
    d.get(site.url + "/audit")
    assert urlsplit(d.current_url).path == "/ui/login"


def test_page_scripts_do_not_run(site, browser):
    """CSP script-src 'none': even if a script reached a page it would not run (the purpose is escaped too)."""
    from selenium.webdriver.common.by import By

    d = browser
    sign_in(d, site)
    d.get(site.url + "/version/fraud_rules/1")
    assert "<script>alert('x')</script>" in d.find_element(By.TAG_NAME, "main").text  # shown as text
    assert d.execute_script("return document.scripts.length") == 0
