"""The service's data: uploads streamed to disk in chunks (intact, checked against the signed Content-Digest,
nothing left behind when cut short or too large), server-side data references into the operator's data
roots (resolved strictly; the same fingerprint as an uploaded copy), and the retention sweep of uploads and
evidence packs (by last use; logged in the security/operations log, not in the audit chain)."""

from __future__ import annotations

import hashlib
import os
import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.service.conftest import Server, audit_size, remote, signed_headers

sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
UPLOADS = "/api/v1/uploads"
DATA = "/api/v1/models/credit_scoring/versions/1/data"


def _serve(service_registry, *, roots=(), **auth):
    """A service over the registry with these data roots (and auth config overrides)."""
    from modelreg.service.app import create_app
    from modelreg.service.auth import AuthConfig

    settings = service_registry.settings.with_overrides(service_data_roots=tuple(roots))
    app = create_app(settings, AuthConfig(**auth))
    srv = Server(app)
    srv.settings, srv.app = settings, app
    return srv


def _uploads(settings) -> Path:
    return Path(settings.home) / "service" / "uploads"


def _stored(settings) -> list[Path]:
    """Every file under the uploads folder, partial ones included."""
    root = _uploads(settings)
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def _wait_until(cond, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def _signed_post(srv, user: str, path: str, raw: bytes, *, signed_body: bytes | None = None, **kw):
    url = srv.url + path
    headers = signed_headers(srv.settings, user, "POST", url, raw if signed_body is None else signed_body)
    return httpx.post(url, content=raw, headers={**headers, **kw.pop("headers", {})}, **kw)


def _error(r: httpx.Response, status: int, code: str) -> str:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["code"] == code and "\n" not in err["message"]
    return err["message"]


def _sweeps(settings) -> list[dict]:
    from modelreg.store.engine import make_engine
    from modelreg.store.service_rows import security_events

    engine = make_engine(settings.database_url)
    try:
        return [e for e in security_events(engine) if e["code"] == "retention_sweep"]
    finally:
        engine.dispose()


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


# -- streamed uploads -----------------------------------------------------------------------------------------
@sqlite_only
def test_an_upload_larger_than_the_chunk_streams_to_disk_intact(service_registry, tmp_path, monkeypatch):
    from modelreg.service import operations

    monkeypatch.setattr(operations, "UPLOAD_CHUNK_BYTES", 4096)  # ~250 chunks for this file
    data = tmp_path / "scoring.csv"
    data.write_bytes(b"id,score\n" + b"".join(b"%d,0.%04d\n" % (i, i % 9973) for i in range(90_000)))
    want = hashlib.sha256(data.read_bytes()).hexdigest()
    writes: list[int] = []
    take = operations._take

    def counted(fh, hasher, buf: bytes) -> None:
        writes.append(len(buf))
        take(fh, hasher, buf)

    monkeypatch.setattr(operations, "_take", counted)

    # the client streams the file from disk: reading it whole would fail here
    real_read_bytes = Path.read_bytes

    def no_read_bytes(self):
        if self == data:
            raise AssertionError(f"{self} was read into memory whole")
        return real_read_bytes(self)

    monkeypatch.setattr(Path, "read_bytes", no_read_bytes)
    with _serve(service_registry) as srv:
        upload_id = remote(srv, "dev").upload(data)
    monkeypatch.undo()
    assert upload_id == f"sha256:{want}/scoring.csv"
    stored = _uploads(srv.settings) / want / "scoring.csv"
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == want
    assert stored.stat().st_size == data.stat().st_size
    assert _stored(srv.settings) == [stored]  # no partial file left
    # written in pieces of about the chunk's size while it arrived, never as one body
    assert len(writes) > 200 and max(writes) == 4096 and sum(writes) == stored.stat().st_size


@sqlite_only
def test_a_signed_upload_whose_bytes_differ_from_the_signed_digest_is_refused_and_not_kept(service_registry):
    with _serve(service_registry) as srv:
        r = _signed_post(srv, "dev", f"{UPLOADS}?name=x.csv", b"a,b\n6,6\n", signed_body=b"a,b\n1,2\n")
        assert "Content-Digest does not match" in _error(r, 401, "authentication_failed")
        # a malformed digest is refused before a byte is stored
        headers = signed_headers(srv.settings, "dev", "POST", f"{srv.url}{UPLOADS}?name=y.csv", b"a\n1\n")
        headers["Content-Digest"] = "sha-256=:nope:"
        r = httpx.post(f"{srv.url}{UPLOADS}?name=y.csv", content=b"a\n1\n", headers=headers)
        _error(r, 401, "authentication_failed")
        assert _stored(srv.settings) == []
        ok = _signed_post(srv, "dev", f"{UPLOADS}?name=x.csv", b"a,b\n1,2\n")
        assert ok.status_code == 201 and ok.json()["sha256"] == hashlib.sha256(b"a,b\n1,2\n").hexdigest()


@sqlite_only
def test_an_upload_over_the_limit_or_cut_short_leaves_no_file(service_registry):
    limit = 64 * 1024
    with _serve(service_registry, max_upload_bytes=limit) as srv:
        big = b"a\n" * limit
        # announced too large: 413 before any byte is read
        _error(_signed_post(srv, "dev", f"{UPLOADS}?name=big.csv", big), 413, "payload_too_large")

        # streamed without a length: 413 once the limit is passed, and the partial file is deleted
        def chunks():
            for i in range(0, len(big), 8192):
                yield big[i : i + 8192]

        url = f"{srv.url}{UPLOADS}?name=big.csv"
        headers = signed_headers(srv.settings, "dev", "POST", url, big)
        r = httpx.post(url, content=chunks(), headers=headers)
        _error(r, 413, "payload_too_large")
        assert _wait_until(lambda: _stored(srv.settings) == []), _stored(srv.settings)

        # the connection dropped half way: nothing kept
        body = b"a,b\n" + b"1,2\n" * 10_000
        target = f"{srv.url}{UPLOADS}?name=cut.csv"
        signed = signed_headers(srv.settings, "dev", "POST", target, body)
        split = urlsplit(target)
        head = [f"POST {split.path}?{split.query} HTTP/1.1", f"Host: {split.netloc}"]
        head += [f"{k}: {v}" for k, v in signed.items()] + [f"Content-Length: {len(body)}", "", ""]
        with socket.create_connection((split.hostname, split.port)) as s:
            s.sendall("\r\n".join(head).encode() + body[: len(body) // 2])
            partial = _uploads(srv.settings) / ".partial"
            assert _wait_until(lambda: partial.exists() and any(partial.iterdir()))  # it was being written
        assert _wait_until(lambda: _stored(srv.settings) == []), _stored(srv.settings)
        assert not (_uploads(srv.settings) / hashlib.sha256(body).hexdigest()).exists()


# -- server-side data references --------------------------------------------------------------------------------
def _landing(tmp_path: Path) -> Path:
    root = tmp_path / "landing"
    (root / "2026").mkdir(parents=True)
    (root / "2026" / "holdout.csv").write_text("x,y\n1,0\n2,1\n3,0\n4,1\n", encoding="utf-8")
    return root


def test_a_server_reference_records_the_same_fingerprint_as_an_uploaded_copy(service_registry, tmp_path):
    root = _landing(tmp_path)
    with _serve(service_registry, roots=[("landing", root)]) as srv:
        dev = remote(srv, "dev")
        by_upload = dev.attach_file("credit_scoring", "1", role="holdout", path=root / "2026" / "holdout.csv")
        by_ref = dev.attach_file(
            "credit_scoring", "2", role="holdout", path="server:landing/2026/holdout.csv"
        )
    assert by_ref.digest == by_upload.digest and by_ref.rows == by_upload.rows == 4
    assert by_ref.name == by_upload.name == "holdout.csv" and by_ref.columns == by_upload.columns
    reg = service_registry.registry
    stored = {v: reg.datasets("credit_scoring", v)[0] for v in ("1", "2")}
    assert stored["1"].digest == stored["2"].digest and stored["1"].columns == stored["2"].columns
    assert stored["2"].source == str((root / "2026" / "holdout.csv").resolve())
    # only the uploaded one was copied to the service
    assert [p.name for p in _stored(srv.settings)] == ["holdout.csv"]


def test_server_references_are_resolved_strictly_inside_their_root(service_registry, tmp_path):
    root = _landing(tmp_path)
    outside = tmp_path / "secret.csv"
    outside.write_text("x,y\n9,9\n", encoding="utf-8")
    (root / "escape.csv").symlink_to(outside)
    (root / "escape_dir").symlink_to(tmp_path)
    (root / "inside.csv").symlink_to(root / "2026" / "holdout.csv")  # a link that stays inside is fine
    size = audit_size(service_registry.settings)
    with _serve(service_registry, roots=[("landing", root)]) as srv:

        def attach(user: str, ref: str) -> httpx.Response:
            import json

            raw = json.dumps({"role": "holdout", "upload": ref}).encode()
            headers = {"Content-Type": "application/json", "If-Match": "*"}
            return _signed_post(srv, user, DATA, raw, headers=headers)

        msg = _error(attach("dev", "server:warehouse/2026/holdout.csv"), 400, "bad_input")
        assert "no data root 'warehouse'" in msg and "landing" in msg
        for bad in (
            "server:landing/../secret.csv",
            "server:landing/2026/../../secret.csv",
            "server:landing//etc/passwd",
            "server:landing/escape.csv",
            "server:landing/escape_dir/secret.csv",
        ):
            assert "inside the root" in _error(attach("dev", bad), 400, "bad_input"), bad
        _error(attach("dev", "server:landing/2026/missing.csv"), 404, "not_found")
        # the role check: an auditor may not send data (by upload or by reference)
        _error(attach("aud", "server:landing/2026/holdout.csv"), 403, "permission_denied")
        assert audit_size(service_registry.settings) == size  # nothing was recorded
        assert attach("dev", "server:landing/inside.csv").status_code == 201


def test_an_evaluation_reads_its_data_by_server_reference(service_registry, tmp_path):
    root = tmp_path / "landing"
    root.mkdir()
    rows = "".join(f"{i % 2},{0.2 + 0.6 * (i % 2) - 0.01 * (i % 7)}\n" for i in range(200))
    (root / "scored.csv").write_text("default,score\n" + rows, encoding="utf-8")
    with _serve(service_registry, roots=[("landing", root)]) as srv:
        ev = remote(srv, "dev").precheck(
            "credit_scoring", "1", data="server:landing/scored.csv", target="default", score="score"
        )
    assert ev.purpose == "precheck" and ev.findings
    assert _stored(srv.settings) == []  # nothing was uploaded


@sqlite_only
def test_the_cli_passes_a_server_reference_over_http_and_refuses_it_locally(
    service_registry, tmp_path, env_for, db_url, capsys, monkeypatch
):
    from modelreg.cli.main import main

    root = _landing(tmp_path)
    for k, v in env_for(db_url).items():
        monkeypatch.setenv(k, v)
    args = [
        "attach-data",
        "credit_scoring",
        "1",
        "--role",
        "holdout",
        "--data",
        "server:landing/2026/holdout.csv",
    ]
    monkeypatch.delenv("MODELREG_URL", raising=False)
    assert main(["--as", "dev", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "MODELREG_URL" in err[0] and "server:landing/2026/holdout.csv" in err[0]
    with _serve(service_registry, roots=[("landing", root)]) as srv:
        monkeypatch.setenv("MODELREG_URL", srv.url)
        assert main(["--as", "dev", *args]) == 0, capsys.readouterr().err
        assert "attached holdout data holdout.csv: 4 rows" in capsys.readouterr().out
    assert _stored(srv.settings) == []  # passed as a reference, not uploaded
    assert [d.rows for d in service_registry.registry.datasets("credit_scoring", "1")] == [4]


# -- retention ---------------------------------------------------------------------------------------------------
def _pack(packs: Path, token: str, age_hours: float) -> None:
    packs.mkdir(parents=True, exist_ok=True)
    for suffix, text in ((".zip", "PK"), (".json", '{"user": "aud"}')):
        (packs / f"{token}{suffix}").write_text(text, encoding="utf-8")
        _age(packs / f"{token}{suffix}", age_hours * 3600)


def test_the_sweep_removes_what_is_stale_by_last_use_and_keeps_the_rest(tmp_path):
    from modelreg.service import retention

    uploads, packs = retention.folders(tmp_path)
    files = {}
    for name, age_days in (("old", 8), ("fresh", 6), ("pinned", 30)):
        f = uploads / (name[0] * 64) / f"{name}.csv"
        f.parent.mkdir(parents=True)
        f.write_bytes(b"a\n" * 10)
        _age(f, age_days * 86400)
        files[name] = f
    _pack(packs, "o" * 32, 25)
    _pack(packs, "f" * 32, 23)
    (uploads / retention.PARTIAL).mkdir()
    stale, live = uploads / retention.PARTIAL / "a.part", uploads / retention.PARTIAL / "b.part"
    stale.write_bytes(b"x" * 5)
    live.write_bytes(b"y")
    _age(stale, 2 * retention.PARTIAL_STALE_SECONDS)
    with retention.pinned(files["pinned"]):  # a request of this process is reading it
        report = retention.sweep(tmp_path, upload_days=7, pack_hours=24)
    assert (report.uploads, report.upload_bytes, report.packs, report.pack_bytes) == (1, 20, 1, 2)
    assert (report.partials, report.partial_bytes) == (1, 5)
    assert not files["old"].exists() and not files["old"].parent.exists()
    assert files["fresh"].exists() and files["pinned"].exists() and live.exists() and not stale.exists()
    assert not (packs / ("o" * 32 + ".zip")).exists() and not (packs / ("o" * 32 + ".json")).exists()
    assert (packs / ("f" * 32 + ".zip")).exists()
    # unpinned, the next sweep takes it; "used" resets the clock
    retention.touch(files["fresh"])
    _age(files["fresh"], 0)
    assert retention.sweep(tmp_path, upload_days=7, pack_hours=24).uploads == 1
    assert files["fresh"].exists() and not files["pinned"].exists()


def test_the_service_sweeps_at_start_logs_it_outside_the_audit_chain_and_a_swept_id_says_upload_again(
    service_registry, tmp_path
):
    import json

    settings = service_registry.settings
    data, other = tmp_path / "holdout.csv", tmp_path / "other.csv"
    data.write_text("x,y\n1,0\n2,1\n", encoding="utf-8")
    other.write_text("x,y\n5,1\n6,0\n", encoding="utf-8")
    with _serve(service_registry) as srv:
        used_id, old_id = remote(srv, "dev").upload(data), remote(srv, "dev").upload(other)
    used = _uploads(settings) / used_id[7:71] / "holdout.csv"
    old = _uploads(settings) / old_id[7:71] / "other.csv"
    _age(used, 8 * 86400)
    _age(old, 8 * 86400)
    before = audit_size(settings)
    with _serve(service_registry) as srv:  # the start's sweep: both unused for 8 days
        assert not used.exists() and not old.exists()
        sweeps = _sweeps(settings)
        assert len(sweeps) == 1 and sweeps[0]["kind"] == "operations"
        assert "2 upload(s)" in sweeps[0]["detail"] and "0 evidence pack(s)" in sweeps[0]["detail"]

        def attach(upload_id: str) -> httpx.Response:
            raw = json.dumps({"role": "holdout", "upload": upload_id}).encode()
            headers = {"Content-Type": "application/json", "If-Match": "*"}
            return _signed_post(srv, "dev", DATA, raw, headers=headers)

        msg = _error(attach(old_id), 404, "not_found")
        assert "upload it again" in msg and "7 days" in msg
        # uploaded again and then used: the use resets its clock, so the next sweep keeps it
        assert remote(srv, "dev").upload(data) == used_id
        _age(used, 8 * 86400)
        assert attach(used_id).status_code == 201
        assert time.time() - used.stat().st_mtime < 60
        assert srv.app.state.sweeper.run_once().uploads == 0 and used.exists()
    assert len(_sweeps(settings)) == 1  # a sweep that removed nothing is not logged
    assert audit_size(settings) == before + 1  # the attachment; the sweeps are not in the audit chain


@sqlite_only
def test_serve_sweep_runs_once_and_prints_what_it_removed(
    service_registry, env_for, db_url, capsys, monkeypatch
):
    from modelreg.cli.main import main
    from modelreg.service import retention

    uploads, packs = retention.folders(service_registry.settings.home)
    old = uploads / ("a" * 64) / "old.csv"
    old.parent.mkdir(parents=True)
    old.write_bytes(b"a,b\n1,2\n")
    _age(old, 3 * 86400)
    _pack(packs, "p" * 32, 2)
    for k, v in env_for(db_url, MODELREG_SERVICE_UPLOAD_DAYS="2", MODELREG_SERVICE_PACK_HOURS="1").items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("MODELREG_URL", raising=False)
    monkeypatch.delenv("MODELREG_USER", raising=False)
    assert main(["serve", "--sweep"]) == 0
    out = capsys.readouterr().out
    assert f"removed upload sha256:{'a' * 64}/old.csv" in out and f"removed evidence pack {'p' * 32}" in out
    assert "1 upload(s) (8 bytes), 1 evidence pack(s) (2 bytes)" in out
    assert not old.exists() and not (packs / ("p" * 32 + ".zip")).exists()
    sweeps = _sweeps(service_registry.settings)
    assert [s["subject"] for s in sweeps] == ["modelreg serve --sweep"]
