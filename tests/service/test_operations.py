"""The rest of the operations over HTTP: data uploads (their own size limit), attestations and waivers signed on
the signer's machine, the model card, users and keys (admin), findings and evidence packs; refusals are one-line
JSON errors with the stable codes, written to the security log and never to the audit chain."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.service.conftest import Server, audit_size, cli_runner, remote, signed_headers

sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def _signed(srv, user: str, method: str, path: str, body=None, *, raw: bytes | None = None, **headers):
    url = srv.url + path
    if raw is None:
        raw = b"" if body is None else json.dumps(body).encode()
    h = {**signed_headers(srv.settings, user, method, url, raw), **headers}
    if body is not None:
        h["Content-Type"] = "application/json"
    return httpx.request(method, url, content=raw, headers=h)


def _security_codes(settings) -> list[tuple[str, str | None]]:
    from modelreg.store.engine import make_engine
    from modelreg.store.service_rows import security_events

    engine = make_engine(settings.database_url)
    try:
        return [(e["code"], e["subject"]) for e in security_events(engine)]
    finally:
        engine.dispose()


def _one_line_error(r: httpx.Response, status: int, code: str) -> str:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["code"] == code and "\n" not in err["message"] and "Traceback" not in r.text
    return err["message"]


def _retire_attestation(client) -> str:
    from modelreg.governance.service import load_policy

    pack = load_policy(client.registry)
    return next(c.id for c in pack.controls_for("retire", "low") if c.attestation is not None)


def test_uploads_have_their_own_size_limit_and_refuse_the_unentitled(service_registry, tmp_path):
    from modelreg.service.app import create_app
    from modelreg.service.auth import AuthConfig

    config = AuthConfig(max_body_bytes=2048, max_upload_bytes=64 * 1024)
    with Server(create_app(service_registry.settings, config)) as srv:
        srv.settings = service_registry.settings
        csv = ("a,b\n" + "1,2\n" * 2000).encode()  # 8 kB: over the JSON limit, under the upload limit
        r = _signed(srv, "dev", "POST", "/api/v1/uploads?name=train.csv", raw=csv)
        assert r.status_code == 201, r.text
        got = r.json()
        assert got["bytes"] == len(csv) and got["upload"] == f"sha256:{got['sha256']}/train.csv"
        stored = service_registry.settings.home / "service" / "uploads" / got["sha256"] / "train.csv"
        assert stored.read_bytes() == csv
        # over the upload limit: 413 before the body is read, in the security log
        big = b"a\n" * 40_000
        _one_line_error(
            _signed(srv, "dev", "POST", "/api/v1/uploads?name=big.csv", raw=big), 413, "payload_too_large"
        )
        # the JSON routes keep the small limit
        _one_line_error(
            _signed(srv, "admin", "POST", "/api/v1/users", {"name": "x" * 3000, "roles": ["auditor"]}),
            413,
            "payload_too_large",
        )
        # an auditor may not upload data; a path-like name is bad input; no authentication: 401
        _one_line_error(
            _signed(srv, "aud", "POST", "/api/v1/uploads?name=x.csv", raw=b"a\n1\n"), 403, "permission_denied"
        )
        msg = _one_line_error(
            _signed(srv, "dev", "POST", "/api/v1/uploads?name=../etc.csv", raw=b"a\n1\n"), 400, "bad_input"
        )
        assert "plain file name" in msg
        _one_line_error(
            httpx.post(f"{srv.url}/api/v1/uploads?name=x.csv", content=b"a\n"), 401, "authentication_failed"
        )
        codes = _security_codes(service_registry.settings)
        assert ("permission_denied", "aud") in codes and codes.count(("payload_too_large", None)) == 2


@sqlite_only
def test_attach_data_over_http_fingerprints_the_uploaded_copy(service, tmp_path):
    data = tmp_path / "holdout.csv"
    data.write_text("x,y\n1,0\n2,1\n3,0\n", encoding="utf-8")
    ds = remote(service, "dev").attach_file("credit_scoring", "1", role="holdout", path=data)
    local = service.registry.registry.datasets("credit_scoring", "1")
    assert [(d.role, d.name, d.rows, d.digest) for d in local] == [("holdout", "holdout.csv", 3, ds.digest)]
    assert service.registry.audit_log("credit_scoring", "1")[-1].actor == "dev"
    # the same bytes under another name: the upload id names the file, so the data set keeps its own name
    copy = tmp_path / "copy.csv"
    copy.write_bytes(data.read_bytes())
    remote(service, "dev").attach_file("credit_scoring", "1", role="training", path=copy)
    names = [(d.role, d.name) for d in service.registry.registry.datasets("credit_scoring", "1")]
    assert sorted(names) == [("holdout", "holdout.csv"), ("training", "copy.csv")]
    # an id that is not an upload's is bad input, naming what is expected; a path on the server is never read
    path = "/api/v1/models/credit_scoring/versions/1/data"
    msg = _one_line_error(
        _signed(
            service, "dev", "POST", path, {"role": "holdout", "upload": "/etc/passwd"}, **{"If-Match": "*"}
        ),
        400,
        "bad_input",
    )
    assert "sha256:<64 hex digits>/<name>" in msg
    _one_line_error(
        _signed(service, "dev", "POST", path, {"role": "holdout", "upload": "sha256:" + "0" * 64 + "/x.csv"}),
        404,
        "not_found",
    )


@sqlite_only
def test_an_evaluation_refuses_a_model_uri_that_is_not_mlflow(service, tmp_path):
    up = _signed(service, "val", "POST", "/api/v1/uploads?name=d.csv", raw=b"a,b\n1,0\n").json()["upload"]
    path = "/api/v1/models/credit_scoring/versions/1/validate"
    size = audit_size(service.settings)
    msg = _one_line_error(
        _signed(service, "val", "POST", path, {"data": up, "model_uri": "file:///etc"}, **{"If-Match": "*"}),
        400,
        "bad_input",
    )
    assert "models:/ or runs:/" in msg
    # a developer may not validate (the route's role check, before anything is read)
    _one_line_error(
        _signed(service, "dev", "POST", path, {"data": up}, **{"If-Match": "*"}), 403, "permission_denied"
    )
    assert audit_size(service.settings) == size


@sqlite_only
def test_attestations_and_waivers_are_signed_by_the_signer_and_counted(service):
    from modelreg import signing
    from modelreg.audit.canonical import canonical_json
    from modelreg.errors import PermissionDenied, SignatureError
    from modelreg.governance.service import signed

    client = service.registry
    control = _retire_attestation(client)
    app1 = remote(service, "app1")
    base = app1._vpath("credit_scoring", "1")
    size = audit_size(service.settings)
    # no If-Match: 428; an altered payload: refused, nothing recorded
    draft = app1.request("POST", f"{base}/attestations/draft", json={"control_id": control}).json()
    assert draft["kind"] == "attestation" and draft["signer"] == "app1" and draft["control_id"] == control
    sig = signing.sign(app1._signing_key(), canonical_json(draft)).to_dict()
    body = {"control_id": control, "payload": draft, "signature": sig}
    _one_line_error(
        _signed(service, "app1", "POST", f"{base}/attestations", body), 428, "precondition_required"
    )
    forged = {**draft, "comment": "all fine"}
    with pytest.raises(SignatureError):
        app1.request("POST", f"{base}/attestations", json={**body, "comment": "all fine", "payload": forged},
                     headers={"If-Match": "*"})  # fmt: skip
    assert audit_size(service.settings) == size

    result = app1.attest("credit_scoring", "1", control_id=control, comment="checked")
    assert result["payload"]["comment"] == "checked"
    (rec,) = signed(client.registry, "credit_scoring", "1", "attestation")
    assert (rec.actor, rec.control_id, rec.counts) == ("app1", control, True)
    assert rec.signature["key_id"] == signing.key_id(app1._signing_key())

    # a waiver: the developer is refused (the route's role check), an approver's counts
    with pytest.raises(PermissionDenied):
        remote(service, "dev").waive(
            "credit_scoring", "1", control_id=control, until="2026-12-31", reason="x"
        )
    app1.waive(
        "credit_scoring", "1", control_id=control, until="2026-12-31", reason="sampling noise", gate="all"
    )
    (w,) = signed(client.registry, "credit_scoring", "1", "waiver")
    assert (w.actor, w.counts, w.payload["gates"], w.payload["reason"]) == (
        "app1",
        True,
        ["deploy", "monitor"],
        "sampling noise",
    )
    events = [e.event for e in client.audit_log("credit_scoring", "1")][-2:]
    assert events == ["attestation.signed", "waiver.granted"]
    assert audit_size(service.settings) == size + 2
    codes = _security_codes(service.settings)
    assert ("signature_error", "app1") in codes and ("permission_denied", "dev") in codes


@sqlite_only
def test_users_and_keys_are_administered_over_http_by_an_admin_only(service, tmp_path):
    from modelreg import signing
    from modelreg.errors import PermissionDenied

    admin, dev = remote(service, "admin"), remote(service, "dev")
    size = audit_size(service.settings)
    with pytest.raises(PermissionDenied):
        dev.add_user("mallory", ["admin"])
    with pytest.raises(PermissionDenied):
        dev.set_roles("val", ["admin"])
    added = admin.add_user("carol", ["validator"])
    assert (added.name, added.roles) == ("carol", ("validator",))
    assert admin.set_roles("carol", ["validator", "auditor"]).roles == ("validator", "auditor")
    key = tmp_path / "carol.key"
    signing.write_key_pair(key, tmp_path / "carol.key.pub")
    pem = (tmp_path / "carol.key.pub").read_text(encoding="utf-8")
    with pytest.raises(PermissionDenied):  # only an admin registers someone else's key
        dev.register_key(pem, user="carol")
    assert admin.register_key(pem, user="carol").key_id == signing.key_id(signing.load_private_key(key))
    assert {u.name for u in dev.users()} >= {"admin", "dev", "carol"}
    events = [e.event for e in service.registry.audit_log()][-3:]
    assert events == ["user.added", "user.roles_changed", "user.key_registered"]
    assert audit_size(service.settings) == size + 3
    # a bad PEM is bad input, not an internal error
    _one_line_error(
        _signed(service, "admin", "POST", "/api/v1/users/carol/key", {"public_key_pem": "not a key"}),
        400,
        "bad_input",
    )
    refused = [s for c, s in _security_codes(service.settings) if c == "permission_denied"]
    assert refused.count("dev") == 3


@sqlite_only
def test_the_model_card_and_a_checkpoint_over_http(service, tmp_path):
    dev = remote(service, "dev")
    mv = dev.update_card("credit_scoring", "1", {"intended_use": "application scoring"})
    assert mv.model_card["intended_use"] == "application scoring"
    assert (
        service.registry.registry.show("credit_scoring", "1").model_card["intended_use"]
        == "application scoring"
    )
    from modelreg.errors import PermissionDenied

    with pytest.raises(PermissionDenied):
        remote(service, "dev").audit_checkpoint(tmp_path / "cp.json")
    out = remote(service, "aud").audit_checkpoint(tmp_path / "cp.json")
    report = service.registry.registry.audit_verify(out["file"])
    assert report.ok and report.checkpoint["size"] == out["checkpoint"]["size"]
    assert service.registry.audit_log()[-1].event == "audit.checkpoint"


@sqlite_only
def test_the_cli_over_modelreg_url_prints_what_the_local_cli_prints_for_the_new_commands(
    service, env_for, db_url, capsys, monkeypatch, tmp_path
):
    run = cli_runner(service.url, env_for(db_url), monkeypatch, capsys)

    control = _retire_attestation(service.registry)
    code, out, _ = run("app1", "attest", "credit_scoring", "1", "--control", control, over_http=True)
    assert code == 0 and out.startswith(f"attested {control} for credit_scoring 1: record #")
    code, out, _ = run("app1", "waive", "credit_scoring", "1", "--control", control, "--until", "2026-12-31",
                       "--reason", "noise", over_http=True)  # fmt: skip
    assert code == 0 and "waived" in out
    data = tmp_path / "train.csv"
    data.write_text("x,y\n1,0\n2,1\n", encoding="utf-8")
    code, out, _ = run("dev", "attach-data", "credit_scoring", "2", "--role", "training", "--data", str(data),
                       over_http=True)  # fmt: skip
    assert code == 0 and out.startswith("attached training data train.csv: 2 rows")
    for user, *args in [
        ("aud", "findings", "credit_scoring", "1"),
        ("aud", "findings", "credit_scoring", "1", "--json"),
        ("aud", "finding", "list"),
        ("aud", "user", "list"),
        ("aud", "user", "list", "--json"),
        ("aud", "show", "credit_scoring", "2"),
    ]:
        assert run(user, *args, over_http=True) == run(user, *args, over_http=False), args
    # refused alike: exit 1, one line (the service names the action it refused)
    for over_http in (True, False):
        code, out, err = run("dev", "user", "add", "eve", "--role", "auditor", over_http=over_http)
        assert (code, out) == (1, "") and err.startswith("error: ") and len(err.strip().splitlines()) == 1


@sqlite_only
def test_precheck_evidence_pack_and_findings_commands_over_modelreg_url(
    service, env_for, db_url, capsys, monkeypatch, tmp_path
):
    """The evaluation runs on the service with the uploaded data; the pack built there downloads, verifies
    offline, and the commands print the lines the local commands print (ids, paths and digests aside)."""
    import re

    import numpy as np
    import pandas as pd

    run = cli_runner(service.url, env_for(db_url), monkeypatch, capsys)

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=400), "sex": rng.choice(["f", "m"], 400)})
    frame["default"] = (rng.random(400) < 0.3).astype(int)
    frame["score"] = np.clip(0.3 + 0.2 * frame["default"] + rng.normal(0, 0.1, 400), 0, 1)
    data = tmp_path / "holdout.csv"
    frame.to_csv(data, index=False)
    args = ["--data", str(data), "--target", "default", "--score", "score", "--sensitive", "sex"]

    def normal(text: str, version: str) -> str:
        text = text.replace(f"credit_scoring {version}", "credit_scoring V")
        return re.sub(r"#\d+", "#N", text)

    local = run("dev", "precheck", "credit_scoring", "1", *args, over_http=False)
    over_http = run("dev", "precheck", "credit_scoring", "2", *args, over_http=True)
    assert over_http[0] == local[0] and normal(over_http[1], "2") == normal(local[1], "1")
    assert over_http[1].strip() and over_http[2] == local[2]
    (ev,) = service.registry.registry.audit_log("credit_scoring", "2")[-1:]
    assert (ev.event, ev.actor) == ("evaluation.recorded", "dev")

    out = tmp_path / "pack.zip"
    code, text, err = run("aud", "evidence", "pack", "credit_scoring", "2", "-o", str(out), over_http=True)
    assert code == 0, err
    assert text.startswith(f"wrote {out}: ") and "audit tree size" in text
    from modelreg import signing

    trusted = tmp_path / "evidence.pub"
    trusted.write_bytes(
        signing.public_key_to_pem(signing.ensure_key(service.settings.evidence_key_path).public_key())
    )
    code, text, err = run(
        "aud", "evidence", "verify", str(out), "--trusted-key", str(trusted), over_http=False
    )
    assert code == 0 and text.startswith("OK"), text + err
    # another user cannot fetch that pack, even knowing its address
    from modelreg.errors import NotFound

    token = sorted((service.settings.home / "service" / "evidence").glob("*.zip"))[0].stem
    with pytest.raises(NotFound):
        remote(service, "val").request("GET", f"/api/v1/evidence/{token}")
    # the finding commands over HTTP print what they print locally
    for user, *cmd in [("aud", "finding", "list", "--status", "all"), ("aud", "finding", "list", "--json")]:
        assert run(user, *cmd, over_http=True) == run(user, *cmd, over_http=False), cmd
