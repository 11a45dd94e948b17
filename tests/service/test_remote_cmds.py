"""The commands that used to stay on the registry database, over ``MODELREG_URL``: ``report validation`` (the
data from the service, the document written here), ``attest --batch`` (drafted by the service, signed here, all
or none), ``sync`` (the repair, on the service's MLflow), ``audit verify --checkpoint`` (judged by the client),
``audit rotate-key`` (admin) and ``init`` (refused in one line: it needs the database's credentials). Each
prints what the local command prints on the same registry state; a user without the role gets 403 and nothing
changes. A real uvicorn over SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime

import httpx
import pytest

from tests.governance.conftest import german, governed, prepare_for_validation
from tests.operations.conftest import validate
from tests.service.conftest import AUDIENCE, ISSUER, Server, audit_size, cli_runner

__all__ = ["german", "governed"]

NAME = "credit_scoring"


class still_clock:
    """The clock held still, so what prints "now" prints the same locally and over HTTP."""

    def __enter__(self) -> None:
        from modelreg import clock

        when = datetime.now(UTC).replace(microsecond=0)
        clock.set_clock(lambda: when)

    def __exit__(self, *exc) -> None:
        from modelreg import clock

        clock.set_clock(None)


def _serve(client, issuer) -> Server:
    from modelreg.service.app import create_app
    from modelreg.service.auth import AuthConfig, OidcConfig

    config = AuthConfig(
        oidc=OidcConfig(issuer=ISSUER, audience=AUDIENCE, jwks_url=issuer.jwks_url), failure_limit=1000
    )
    srv = Server(create_app(client.settings, config))
    srv.settings = client.settings
    srv.registry = client
    return srv


def _refused(result: tuple[int, str, str], what: str) -> None:
    code, out, err = result
    assert (code, out) == (1, ""), result
    assert len(err.strip().splitlines()) == 1 and what in err, err
    if err.startswith("{"):  # under --json the error is JSON on stderr
        assert json.loads(err)["error"]["code"] == "permission_denied", err
    else:
        assert err.startswith("error: "), err


@pytest.fixture
def validated(governed, german, issuer, env_for, db_url, monkeypatch, capsys):
    """credit_scoring 1 validated (in validate), 2 and 3 registered in develop with card and data; the service
    over that registry and ``run(user, *args, over_http=...)``."""
    from tests.governance.test_attest_batch import _register

    prepare_for_validation(governed, german, NAME, "1")
    validate(governed, german, NAME, "1")
    _register(governed, german, "2")
    with _serve(governed, issuer) as srv:
        srv.run = cli_runner(srv.url, env_for(db_url), monkeypatch, capsys)
        yield srv


# -- report validation ------------------------------------------------------------------------------------
def test_report_validation_over_modelreg_url(validated, tmp_path):
    run = validated.run
    pack = tmp_path / "evidence-credit_scoring-1.zip"
    pack.write_bytes(b"PK\x03\x04 an evidence pack the validator keeps")
    with still_clock():
        for extra in ([], ["--evidence-pack", str(pack)]):
            mine, theirs = tmp_path / "local.html", tmp_path / "remote.html"
            local = run("val", "report", "validation", NAME, "1", "-o", str(mine), *extra, over_http=False)
            remote = run("val", "report", "validation", NAME, "1", "-o", str(theirs), *extra, over_http=True)
            assert local[0] == 0 and local[1].startswith(f"wrote {mine} ("), local
            assert remote == (local[0], local[1].replace(str(mine), str(theirs)), local[2])
            assert theirs.read_bytes() == mine.read_bytes()  # the same document, written here
            args = ["report", "validation", NAME, "1", *extra, "--json"]
            local = run("val", *args, "-o", str(mine), over_http=False)
            remote = run("val", *args, "-o", str(theirs), over_http=True)
            assert remote[0] == local[0] == 0
            assert remote[1].replace(str(theirs), "F") == local[1].replace(str(mine), "F")
            report = json.loads(remote[1])["report"]
            assert report["scope"]["validated_by"] == "val" and report["controls"]
            if extra:
                assert report["evidence_pack"] == {
                    "file": pack.name,
                    "sha256": hashlib.sha256(pack.read_bytes()).hexdigest(),
                }
                assert pack.name in theirs.read_text(encoding="utf-8")
            else:
                assert report["evidence_pack"] is None
    # refusals alike: no validation yet, an unknown version, a pack that is not a file
    for args in (
        ("report", "validation", NAME, "2", "-o", str(tmp_path / "r.html")),
        ("report", "validation", NAME, "9", "-o", str(tmp_path / "r.html")),
        (
            "report",
            "validation",
            NAME,
            "1",
            "-o",
            str(tmp_path / "r.html"),
            "--evidence-pack",
            str(tmp_path / "no.zip"),
        ),
    ):
        local = run("aud", *args, over_http=False)
        assert local[0] == 2 and len(local[2].strip().splitlines()) == 1, local
        assert run("aud", *args, over_http=True) == local, args
    r = httpx.get(f"{validated.url}/api/v1/models/{NAME}/versions/1/report")
    assert r.status_code == 401 and r.json()["error"]["code"] == "authentication_failed"


# -- attest --batch -------------------------------------------------------------------------------------------
def _batch_file(tmp_path, name: str, entries: list[dict]):
    from tests.governance.test_attest_batch import _yaml

    path = tmp_path / name
    path.write_text(_yaml(entries), encoding="utf-8")
    return path


def _records(client) -> tuple[int, int]:
    from modelreg.governance.service import signed

    n = sum(len(signed(client.registry, NAME, v, "attestation")) for v in ("1", "2"))
    return n, len(client.audit_log())


def _normal(text: str) -> str:
    text = re.sub(r"record #\d+", "record #N", text)
    text = re.sub(r'"(record_id|entry)": \d+', r'"\1": N', text)
    return re.sub(r'"(at|value)": "[^"]+"', r'"\1": X', text)


def test_attest_batch_over_modelreg_url(validated, tmp_path):
    from tests.governance.test_attest_batch import _developer_controls

    srv, run = validated, validated.run
    client = srv.registry
    controls = _developer_controls(client)
    entries = [
        {"model": NAME, "version": "2", "control": c, "comment": f"MD-{i}"} for i, c in enumerate(controls)
    ]
    good = _batch_file(tmp_path, "attest.yaml", entries)
    for extra in ([], ["--json"]):
        before = _records(client)
        local = run("dev", "attest", "--batch", str(good), *extra, over_http=False)
        mid = _records(client)
        remote = run("dev", "attest", "--batch", str(good), *extra, over_http=True)
        assert local[0] == 0 and (extra or f"{len(controls)} attestation(s) recorded from {good}" in local[1])
        assert (remote[0], _normal(remote[1]), remote[2]) == (local[0], _normal(local[1]), local[2])
        n = len(controls)
        assert mid == (before[0] + n, before[1] + n) and _records(client) == (mid[0] + n, mid[1] + n)
    new = client.audit_log()[-len(controls) :]
    assert [(e.event, e.actor) for e in new] == [("attestation.signed", "dev")] * len(controls)
    # every record signed over HTTP verifies with dev's own registered key
    from modelreg.governance.service import signed

    mine = [
        r
        for r in signed(client.registry, NAME, "2", "attestation")
        if r.id in {e.payload["record_id"] for e in new}
    ]
    assert len(mine) == len(controls) and all(r.counts for r in mine)

    # one bad entry (an unknown control; a control dev may not attest; a version that does not exist):
    # refused alike, one line naming the entry, and nothing recorded, not even the good entries before it
    for bad in ({"control": "CHK-NOPE-99"}, {"control": "CHK-HI-01"}, {"version": "99"}):
        rows = [*entries[:2], {**entries[0], **bad, "comment": "bad"}, *entries[2:]]
        path = _batch_file(tmp_path, "bad.yaml", rows)
        before, chain = _records(client), audit_size(srv.settings)
        local = run("dev", "attest", "--batch", str(path), over_http=False)
        remote = run("dev", "attest", "--batch", str(path), over_http=True)
        assert remote == local and local[0] == 2, (bad, local, remote)
        assert f"{path} entry 3 (line 4): " in local[2] and "nothing was recorded" in local[2]
        assert len(local[2].strip().splitlines()) == 1
        assert _records(client) == before and audit_size(srv.settings) == chain
    # an auditor may not attest: 403 before anything is drafted
    chain = audit_size(srv.settings)
    _refused(run("aud", "attest", "--batch", str(good), over_http=True), "attest needs the role")
    assert audit_size(srv.settings) == chain


def test_a_tampered_signature_in_one_entry_refuses_the_whole_batch(validated, tmp_path):
    from modelreg.errors import BadInput
    from modelreg.service.client import RemoteRegistry
    from tests.governance.test_attest_batch import _developer_controls
    from tests.service.conftest import remote

    client = validated.registry
    controls = _developer_controls(client)
    entries = [{"model": NAME, "version": "2", "control": c} for c in controls]
    path = _batch_file(tmp_path, "attest.yaml", entries)
    dev = remote(validated, "dev")
    signed_so_far = []

    def sign_then_tamper(self, payload, expected, key_path):
        sig = RemoteRegistry._sign_draft(self, payload, expected, key_path)
        signed_so_far.append(sig)
        if len(signed_so_far) == 2:  # the second entry's signature: one byte changed
            value = sig["value"]
            sig = {**sig, "value": ("A" if value[0] != "A" else "B") + value[1:]}
        return sig

    dev._sign_draft = sign_then_tamper.__get__(dev)
    before, chain = _records(client), audit_size(validated.settings)
    with pytest.raises(BadInput) as refused:
        dev.attest_batch(path)
    assert (
        f"{path} entry 2 (line 3): " in refused.value.message
        and "nothing was recorded" in refused.value.message
    )
    assert len(signed_so_far) == len(controls)  # every entry was signed; the one request recorded none
    assert _records(client) == before and audit_size(validated.settings) == chain
    # the same batch honestly signed is recorded whole
    done = remote(validated, "dev").attest_batch(path)
    assert [d["entry"] for d in done] == list(range(1, len(controls) + 1))
    assert _records(client) == (before[0] + len(controls), before[1] + len(controls))


# -- sync (the repair) ----------------------------------------------------------------------------------------
@pytest.fixture
def mlflow_served(service_registry, issuer, env_for, db_url, monkeypatch, capsys):
    """shadow_pd logged to the service's MLflow store and registered with modelreg (develop): the service over
    that registry and its MLflow gateway (whose artifacts stay in the test's folder)."""
    from modelreg.integrations.mlflow import MlflowGateway
    from tests.integration.mlflow_fixtures import log_and_register_model

    s = service_registry.settings
    gw = MlflowGateway(s.mlflow_tracking_uri, s.mlflow_registry_uri, artifact_root=s.mlflow_artifact_root)
    logged = log_and_register_model(
        s.mlflow_tracking_uri, experiment_id=gw.ensure_experiment("dev"), name="shadow_pd"
    )
    with _serve(service_registry, issuer) as srv:
        srv.run = cli_runner(srv.url, env_for(db_url), monkeypatch, capsys)
        capsys.readouterr()
        code, out, err = srv.run("dev", "register", "shadow_pd", logged.version, "--owner", "dev",
                                 "--risk-tier", "low", "--purpose", "PD", over_http=False)  # fmt: skip
        assert code == 0, out + err
        srv.gw, srv.version = gw, str(logged.version)
        yield srv


def test_sync_repair_over_modelreg_url(mlflow_served):
    srv, run, gw = mlflow_served, mlflow_served.run, mlflow_served.gw
    alias = srv.settings.mlflow_alias

    def normal(result: tuple[int, str, str]) -> tuple[int, str, str]:
        code, out, err = result
        out = re.sub(r"audit event #\d+", "audit event #N", out)
        return code, re.sub(r'"seq": \d+', '"seq": N', re.sub(r'"at": "[^"]+"', '"at": T', out)), err

    def diverge() -> None:  # someone points the alias at the develop version by hand in MLflow
        gw.set_alias("shadow_pd", alias, srv.version)
        assert gw.get_alias("shadow_pd", alias) == srv.version

    assert run("ops", "sync", "--check", over_http=True)[0] == 0
    for extra in ([], ["--json"]):
        diverge()
        check = run("ops", "sync", "--check", *extra, over_http=True)
        assert check[0] == 1 and "shadow_pd" in check[1] and ("points at version" in check[1] or extra), check
        assert normal(check) == normal(run("ops", "sync", "--check", *extra, over_http=False))
        # a user without the role: 403, one line, MLflow unchanged, nothing recorded
        chain = audit_size(srv.settings)
        _refused(run("aud", "sync", *extra, over_http=True), "sync needs the role")
        _refused(run("dev", "sync", *extra, over_http=True), "sync needs the role")
        assert gw.get_alias("shadow_pd", alias) == srv.version and audit_size(srv.settings) == chain
        # the local repair, then the same divergence again and the repair over HTTP: the same output
        local = run("ops", "sync", *extra, over_http=False)
        assert local[0] == 0 and gw.get_alias("shadow_pd", alias) is None, local
        assert "repaired: shadow_pd: MLflow alias" in local[1] or '"repaired": true' in local[1]
        diverge()
        remote = run("ops", "sync", *extra, over_http=True)
        assert normal(remote) == normal(local)
        assert gw.get_alias("shadow_pd", alias) is None  # repaired in MLflow, by the service
        synced = [e for e in srv.registry.audit_log() if e.event == "mlflow.synced"]
        assert synced[-1].actor == "ops" and synced[-1].payload["repaired"][0]["model"] == "shadow_pd"
        agree = run("ops", "sync", "--check", over_http=True)
        assert agree[0] == 0 and agree[1].startswith("MLflow agrees with the registry"), agree
    r = httpx.post(f"{srv.url}/api/v1/sync/repair", json={})
    assert r.status_code == 401 and r.json()["error"]["code"] == "authentication_failed"


# -- audit verify --checkpoint, audit rotate-key, init ------------------------------------------------------------
@pytest.fixture
def served(service, env_for, db_url, monkeypatch, capsys):
    service.run = cli_runner(service.url, env_for(db_url), monkeypatch, capsys)
    return service


def _eps(text: str) -> str:
    """Timings (events per second, the replay's seconds) differ from run to run."""
    return re.sub(r'"(events_per_second|\w*seconds)": [0-9.e+-]+', r'"\1": R', text)


def test_audit_verify_checkpoint_over_modelreg_url(served, tmp_path):
    from modelreg import signing
    from modelreg.audit.checkpoint import Checkpoint, sign_checkpoint

    run, reg = served.run, served.registry.registry
    cp_file = tmp_path / "kept" / "checkpoint.json"
    code, _, err = run("aud", "audit", "checkpoint", "-o", str(cp_file), over_http=True)
    assert code == 0, err
    kept = Checkpoint.load(cp_file)
    reg.as_user("admin").add_user("later", ["auditor"])  # the log grows after the checkpoint
    reg.as_user("dev").register(NAME, "3", owner="dev", risk_tier="low", purpose="PD scoring")
    assert audit_size(served.settings) > kept.size + 2
    pub = str(cp_file) + ".pub"
    for extra in ([], ["--trusted-key", pub], ["--json"], ["--trusted-key", pub, "--json"]):
        args = ["audit", "verify", "--checkpoint", str(cp_file), *extra]
        local = run("aud", *args, over_http=False)
        assert local[0] == 0 and (
            f"consistent with checkpoint of size {kept.size}" in local[1] or "--json" in extra
        )
        assert _eps(run("aud", *args, over_http=True)[1]) == _eps(local[1]), extra

    # a checkpoint of a forked log (signed with the registry's own audit key, another root), a tampered root,
    # one that saw more events than the log holds, one signed by another key: refused alike, exit 1
    key = signing.load_private_key(served.settings.audit_key_path)
    fork = tmp_path / "fork.json"
    sign_checkpoint(kept.size, hashlib.sha256(b"another history").digest(), key, time=kept.time).save(fork)
    tampered = tmp_path / "tampered.json"
    tampered.write_text(
        json.dumps({**kept.to_dict(), "root_hash": hashlib.sha256(b"x").hexdigest()}), encoding="utf-8"
    )
    ahead = tmp_path / "ahead.json"
    sign_checkpoint(kept.size + 1000, kept.root, key, time=kept.time).save(ahead)
    stranger = tmp_path / "stranger.json"
    sign_checkpoint(kept.size, kept.root, signing.generate_private_key(), time=kept.time).save(stranger)
    cases = {
        fork: "the log is not an extension of the checkpoint",
        tampered: "the checkpoint's signature does not verify",
        ahead: "were removed",
        stranger: "the checkpoint's signature does not verify",
    }
    for path, message in cases.items():
        for extra in ([], ["--trusted-key", pub], ["--json"]):
            args = ["audit", "verify", "--checkpoint", str(path), *extra]
            local = run("aud", *args, over_http=False)
            assert local[0] == 1 and message in local[1], (path, local)
            remote = run("aud", *args, over_http=True)
            assert (remote[0], _eps(remote[1]), remote[2]) == (local[0], _eps(local[1]), local[2]), path


def test_the_client_judges_the_checkpoint_itself(served, tmp_path):
    """A service that sends a proof that does not hold (or a current checkpoint that is not what it verified)
    is caught by the client, not believed."""
    from tests.service.conftest import remote

    cp_file = tmp_path / "checkpoint.json"
    remote(served, "aud").audit_checkpoint(cp_file)
    served.registry.registry.as_user("admin").add_user("later", ["auditor"])
    served.registry.registry.as_user("admin").add_user("later2", ["auditor"])
    honest = remote(served, "aud").audit_verify(str(cp_file))
    assert honest.ok and honest.checkpoint["size"] > 0

    def lying(change):
        client = remote(served, "aud")
        real = client._get

        def get(path, **params):
            d = real(path, **params)
            return change(d) if path.endswith("/consistency") else d

        client._get = get
        return client.audit_verify(str(cp_file))

    def bad_proof(d):
        return {**d, "proof": [hashlib.sha256(b"forged").hexdigest(), *d["proof"][1:]]}

    def other_root(d):
        return {**d, "report": {**d["report"], "root_hash": "0" * 64}}

    got = lying(bad_proof)
    assert not got.ok and "is not an extension of the checkpoint" in got.problem
    got = lying(other_root)
    assert not got.ok and "its answer cannot be trusted" in got.problem


def test_audit_rotate_key_over_modelreg_url(served):
    run = served.run

    def normal(text: str) -> str:
        text = re.sub(r"#\d+", "#N", text)
        return re.sub(r"ed25519:[0-9a-f]{16}", "KEY", re.sub(r"\.[0-9a-f]{16}\.retired", ".K.retired", text))

    chain = audit_size(served.settings)
    _refused(run("aud", "audit", "rotate-key", over_http=True), "audit.rotate_key needs the role")
    assert audit_size(served.settings) == chain
    before = served.registry.registry.event_signer().key_id
    remote = run("admin", "audit", "rotate-key", over_http=True)
    assert remote[0] == 0 and remote[1].startswith(f"event key rotated at #{chain}: {before} → "), remote
    retired = remote[1].rsplit("old private key kept at ", 1)[1].rstrip(")\n")
    assert (
        retired.endswith(".retired") and str(served.settings.audit_key_path) in retired
    )  # the service's path
    # the service writes with the new key at once: a checkpoint over HTTP, then the whole log verifies
    from tests.service.conftest import remote as remote_client

    remote_client(served, "aud").audit_checkpoint(served.settings.home / "cp.json")
    assert run("aud", "audit", "verify", over_http=False)[0] == 0
    local = run("admin", "audit", "rotate-key", over_http=False)
    assert (remote[0], normal(remote[1]), remote[2]) == (local[0], normal(local[1]), local[2])
    for extra in ([], ["--json"]):
        assert run("aud", "audit", "verify", *extra, over_http=False)[0] == 0


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_init_over_modelreg_url_is_refused_in_one_line(env_for, db_url, tmp_path, monkeypatch, capsys):
    from modelreg.cli.main import main
    from modelreg.service.client import MSG_INIT_REMOTE

    fresh = tmp_path / "never-created.db"
    for k, v in env_for(f"sqlite:///{fresh}", MODELREG_URL="http://127.0.0.1:9").items():
        monkeypatch.setenv(k, v)
    for args in (["init"], ["init", "--json"], ["--as", "admin", "init"]):
        code = main(args)
        out = capsys.readouterr()
        assert (code, out.out) == (2, ""), (args, out)
        message = MSG_INIT_REMOTE.format(url="http://127.0.0.1:9")
        if "--json" in args:  # the error as JSON on stderr, one line, the same message
            assert json.loads(out.err)["error"] == {"code": "bad_input", "exit": 2, "message": message}
        else:
            assert out.err == f"error: {message}\n"
        assert len(out.err.strip().splitlines()) == 1 and "database's credentials" in out.err
    assert not fresh.exists()  # nothing was initialised, locally or anywhere
