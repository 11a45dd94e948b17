"""The pack's pages: rendered by a real headless Chromium from the unzipped folder, offline, with every
local link resolving to a file in the pack and nothing loaded from outside."""

from __future__ import annotations

import html.parser
import shutil
import subprocess
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from tests.evidence.conftest import ARTIFACTS, NAME, members

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def _chromium(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed: apt-get install -y chromium (tests/run.sh does it)")
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


class _Links(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str]] = []
        self.scripts = 0

    def handle_starttag(self, tag, attrs):
        if tag == "script":
            self.scripts += 1
        for name, value in attrs:
            if name in ("href", "src") and value:
                self.refs.append((tag, value))


@pytest.fixture(scope="module")
def unzipped(pack_path, tmp_path_factory) -> Path:
    from modelreg.evidence.verify import extract_pack

    return extract_pack(pack_path, tmp_path_factory.mktemp("unzipped"))


def test_index_renders_in_headless_chromium(german, unzipped, tmp_path):
    index = unzipped / "index.html"
    dom = _chromium(["--dump-dom", index.as_uri()], tmp_path)
    assert dom.returncode == 0, dom.stderr[-2000:]
    text = dom.stdout
    assert f'<b id="model-name">{NAME}</b>' in text
    assert '<table id="policy-matrix">' in text
    assert text.count("<tr>") > 100
    assert "CHK-PERF-02" in text and "已豁免 waived" in text
    assert "条款已覆盖" in text and "clauses covered" in text
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "evidence_index.png"
    shot.unlink(missing_ok=True)
    result = _chromium([f"--screenshot={shot}", "--window-size=1280,2000", index.as_uri()], tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 50_000
    card = ARTIFACTS / "evidence_model_card.png"
    card.unlink(missing_ok=True)
    _chromium(
        [f"--screenshot={card}", "--window-size=1280,1600", (unzipped / "model_card.html").as_uri()], tmp_path
    )
    assert card.exists()


def test_every_local_link_resolves_and_nothing_is_external(pack_path):
    files = members(pack_path)
    pages = [n for n in files if n.endswith(".html") and not n.startswith("monitors/")]
    assert {"index.html", "model_card.html", "disclosure.html"} <= set(pages)
    checked = 0
    for page in pages:
        parser = _Links()
        parser.feed(files[page].decode("utf-8"))
        assert parser.scripts == 0, page
        base = Path(page).parent
        for tag, ref in parser.refs:
            url = urlparse(ref)
            assert not url.scheme and not url.netloc, f"{page}: external reference {ref}"
            if ref.startswith("#"):
                continue
            target = (base / unquote(url.path)).as_posix()
            assert target in files, f"{page}: {tag} {ref} does not resolve to a file in the pack"
            checked += 1
    assert checked > len(files)  # the file list links every file, the sections link the evidence again


def test_index_links_every_file_and_shows_the_plots(german, pack_path):
    files = members(pack_path)
    index = files["index.html"].decode()
    parser = _Links()
    parser.feed(index)
    linked = {unquote(r) for _, r in parser.refs if not r.startswith("#")}
    assert set(files) - {"index.html", "manifest.json", "manifest.sig.json"} <= linked
    pngs = {r for t, r in parser.refs if t == "img"}
    assert f"monitors/{german.validation.id}/fairness/fairness_groups.png" in pngs
    assert f"monitors/{german.validation.id}/explainability/shap_importance.png" in pngs
