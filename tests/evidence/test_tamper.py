"""Every edit an attacker (or an accident) could make to a pack is detected, naming the file or entry."""

from __future__ import annotations

import base64
import json
import stat
import sys
import zipfile

import pytest

from tests.evidence._standalone import standalone_module
from tests.evidence.conftest import NAME, VERSION, members, rezip, run_cli

_VERIFY_PACK = None  # the verifier under test, set per test by the ``verifier`` fixture


@pytest.fixture(autouse=True, params=["modelreg", "standalone"])
def verifier(request, monkeypatch):
    """Every case runs against ``modelreg evidence verify``'s function and the standalone file's."""
    from modelreg.evidence import verify_pack

    fn = verify_pack if request.param == "modelreg" else standalone_module().verify_pack
    monkeypatch.setattr(sys.modules[__name__], "_VERIFY_PACK", fn)
    return fn


def _verify(german, path, **kw):
    kw.setdefault("trusted_keys", [german.evidence_pub])
    return _VERIFY_PACK(path, **kw)


def _flip(data: bytes, at: int | None = None) -> bytes:
    if not data:
        return b"\x00"
    i = len(data) // 2 if at is None else at
    return data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1 :]


def test_flipping_a_byte_in_any_file_is_detected(german, pack_path, tmp_path):
    files = members(pack_path)
    checked = 0
    for name in sorted(files):
        out = rezip(pack_path, tmp_path / "t.zip", replace={name: _flip(files[name])})
        result = _verify(german, out)
        assert not result.ok, name
        if name == "manifest.json":
            assert any("does not verify with trusted key" in p for p in result.problems) or any(
                "manifest.json" in p for p in result.problems
            )
        elif name == "manifest.sig.json":
            assert any(p.startswith("manifest.sig.json") for p in result.problems), result.problems
        else:
            assert any(p.startswith(f"{name}: ") and "modified" in p for p in result.problems), (
                name,
                result.problems,
            )
        checked += 1
    assert checked == len(files) > 60


def test_deleted_added_and_renamed_files(german, pack_path, tmp_path):
    victim = f"monitors/{german.validation.id}/fairness/fairness_groups.csv"
    gone = _verify(german, rezip(pack_path, tmp_path / "a.zip", drop={victim}))
    assert gone.problems == [f"{victim}: listed in the manifest but missing from the pack"]

    extra = _verify(german, rezip(pack_path, tmp_path / "b.zip", add={"monitors/extra.csv": b"a,b\n1,2\n"}))
    assert extra.problems == ["monitors/extra.csv: in the pack but not in the manifest (added)"]

    renamed = _verify(german, rezip(pack_path, tmp_path / "c.zip", rename={victim: victim + ".bak"}))
    assert sorted(renamed.problems) == sorted(
        [
            f"{victim}: listed in the manifest but missing from the pack",
            f"{victim}.bak: in the pack but not in the manifest (added)",
        ]
    )

    no_manifest = _verify(german, rezip(pack_path, tmp_path / "d.zip", drop={"manifest.json"}))
    assert no_manifest.problems == [
        "manifest.json is missing: this is not a modelreg evidence pack, or it was stripped"
    ]


def test_editing_the_manifest_breaks_the_signature(german, pack_path, tmp_path):
    files = members(pack_path)
    manifest = json.loads(files["manifest.json"])
    stage = manifest["model"]["stage"]
    manifest["model"]["stage"] = "retire"
    edited = json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False).encode() + b"\n"
    result = _verify(german, rezip(pack_path, tmp_path / "m.zip", replace={"manifest.json": edited}))
    assert result.problems == [
        f"manifest.sig.json: the signature does not verify with trusted key {result.manifest_key_id}: manifest.json or the signature was altered"
    ]
    # Editing a digest to match a modified file: the file now "matches", the signature does not.
    victim = "model_card.md"
    changed = files[victim].replace(b"high", b"low ")
    import hashlib

    for f in manifest["files"]:
        if f["path"] == victim:
            f["sha256"], f["size"] = hashlib.sha256(changed).hexdigest(), len(changed)
    manifest["model"]["stage"] = stage
    edited = json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False).encode() + b"\n"
    result = _verify(
        german, rezip(pack_path, tmp_path / "n.zip", replace={"manifest.json": edited, victim: changed})
    )
    assert [p for p in result.problems if "does not verify with trusted key" in p]


def test_a_signature_from_another_key_is_refused(german, pack_path, tmp_path):
    from modelreg import signing
    from modelreg.evidence.verify import PAYLOAD_TYPE, pae

    files = members(pack_path)
    rogue = signing.generate_private_key()
    sig = signing.sign(rogue, pae(PAYLOAD_TYPE, files["manifest.json"]))
    envelope = json.loads(files["manifest.sig.json"])
    envelope["signature"] = sig.to_dict()
    result = _verify(
        german,
        rezip(pack_path, tmp_path / "r.zip", replace={"manifest.sig.json": json.dumps(envelope).encode()}),
    )
    assert not result.ok
    assert any(f"signed by key {sig.key_id}, which was not given as trusted" in p for p in result.problems)
    assert any(
        f"signed by {sig.key_id} but the manifest names the evidence key" in p for p in result.problems
    )
    # Trusting the rogue key does not help: the manifest names the registry's evidence key.
    pem = tmp_path / "rogue.pub"
    pem.write_bytes(signing.public_key_to_pem(rogue))
    trusted_rogue = _verify(german, tmp_path / "r.zip", trusted_keys=[pem])
    assert not trusted_rogue.ok and any(
        "manifest names the evidence key" in p for p in trusted_rogue.problems
    )


def test_another_packs_valid_signature_does_not_fit(german, pack_path, tmp_path):
    from modelreg import clock
    from modelreg.evidence import build_pack

    other = tmp_path / "other.zip"
    build_pack(german.auditor, NAME, VERSION, other, as_of=clock.isoformat(german.after_precheck))
    assert _verify(german, other).ok
    swapped = rezip(
        pack_path, tmp_path / "s.zip", replace={"manifest.sig.json": members(other)["manifest.sig.json"]}
    )
    result = _verify(german, swapped)
    assert result.problems == [
        f"manifest.sig.json: the signature does not verify with trusted key {result.manifest_key_id}: manifest.json or the signature was altered"
    ]


def _resign(german, pack_path, dest, replace: dict[str, bytes]):
    """Rebuild the manifest over edited files and sign it with the registry's real evidence key: what a
    registry bug or an insider with the key could produce. The deeper checks must still catch it."""
    import hashlib

    from modelreg import signing
    from modelreg.evidence.pack import json_bytes, write_zip
    from modelreg.evidence.verify import PAYLOAD_TYPE, pae

    files = members(pack_path)
    files.update(replace)
    manifest = json.loads(files["manifest.json"])
    for f in manifest["files"]:
        f["sha256"], f["size"] = hashlib.sha256(files[f["path"]]).hexdigest(), len(files[f["path"]])
    files["manifest.json"] = json_bytes(manifest)
    key = signing.load_private_key(german.settings.evidence_key_path)
    envelope = json.loads(files["manifest.sig.json"])
    envelope["signature"] = signing.sign(key, pae(PAYLOAD_TYPE, files["manifest.json"])).to_dict()
    files["manifest.sig.json"] = json_bytes(envelope)
    write_zip(dest, files)
    return dest


def test_an_altered_inclusion_proof_is_detected(german, pack_path, tmp_path):
    files = members(pack_path)
    lines = files["audit/events.jsonl"].decode().splitlines()
    entry = json.loads(lines[3])
    proof = entry["inclusion_proof"]
    proof[0] = proof[0][:-2] + ("00" if proof[0][-2:] != "00" else "11")
    lines[3] = json.dumps(entry, sort_keys=True, ensure_ascii=False)
    edited = ("\n".join(lines) + "\n").encode()
    plain = _verify(german, rezip(pack_path, tmp_path / "p.zip", replace={"audit/events.jsonl": edited}))
    assert plain.problems == ["audit/events.jsonl: SHA-256 " + plain.problems[0].split("SHA-256 ")[1]]
    resigned = _verify(german, _resign(german, pack_path, tmp_path / "q.zip", {"audit/events.jsonl": edited}))
    assert resigned.problems == [
        f"audit/events.jsonl event #{entry['seq']}: the inclusion proof does not lead to the manifest's root (altered proof or event)"
    ]


def test_an_edited_event_or_leaf_list_is_detected_even_when_resigned(german, pack_path, tmp_path):
    files = members(pack_path)
    lines = files["audit/events.jsonl"].decode().splitlines()
    entry = json.loads(lines[0])
    event = json.loads(base64.b64decode(entry["canonical_b64"]))
    event["actor"] = "mallory"
    from modelreg.audit.canonical import canonical_json

    entry["canonical_b64"] = base64.b64encode(canonical_json(event)).decode()
    lines[0] = json.dumps(entry, sort_keys=True, ensure_ascii=False)
    out = _resign(
        german, pack_path, tmp_path / "e.zip", {"audit/events.jsonl": ("\n".join(lines) + "\n").encode()}
    )
    assert _verify(german, out).problems == [
        f"audit/events.jsonl event #{entry['seq']}: its canonical bytes do not hash to the recorded leaf (edited)"
    ]

    leaves = bytearray(files["audit/leaves.bin"])
    leaves[5] ^= 1
    out = _resign(german, pack_path, tmp_path / "l.zip", {"audit/leaves.bin": bytes(leaves)})
    assert any(
        p.startswith("audit/leaves.bin: the leaf hashes do not reproduce the manifest's root")
        for p in _verify(german, out).problems
    )


def test_a_forged_approval_is_detected_even_when_resigned(german, pack_path, tmp_path):
    files = members(pack_path)
    name = next(n for n in sorted(files) if n.endswith("-approval.json"))
    rec = json.loads(files[name])
    payload = dict(rec["payload"], comment="approved without conditions")
    from modelreg.audit.canonical import canonical_json

    rec["payload"], rec["payload_b64"] = payload, base64.b64encode(canonical_json(payload)).decode()
    out = _resign(german, pack_path, tmp_path / "f.zip", {name: json.dumps(rec).encode()})
    problems = _verify(german, out).problems
    assert len(problems) == 1 and problems[0].startswith(
        f"{name}: signature by {rec['signer']} does not verify with keys/signers/"
    )


def _zip_with(dest, name: str, data: bytes = b"x", *, symlink: bool = False):
    with zipfile.ZipFile(dest, "w") as zf:
        info = zipfile.ZipInfo(name)
        if symlink:
            info.create_system = 3
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, data)
        zf.writestr("manifest.json", b"{}")
    return dest


@pytest.mark.parametrize(
    ("member", "symlink", "message"),
    [
        ("../evil.txt", False, "climbs out of the pack with '..'"),
        ("monitors/../../evil.txt", False, "climbs out of the pack with '..'"),
        ("/etc/evil.txt", False, "is an absolute path"),
        ("C:/evil.txt", False, "is an absolute path"),
        ("keys/link.pem", True, "is a symbolic link"),
    ],
)
def test_unsafe_zip_members_are_refused(german, tmp_path, member, symlink, message):
    from modelreg.errors import BadInput
    from modelreg.evidence.verify import extract_pack

    bad = _zip_with(tmp_path / "bad.zip", member, b"/etc/passwd" if symlink else b"x", symlink=symlink)
    result = _verify(german, bad)
    assert not result.ok
    assert result.problems == [f"refused: member {member!r} {message}"]
    with pytest.raises(BadInput, match="refusing to extract"):
        extract_pack(bad, tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "out").exists()
    assert run_cli("evidence", "verify", str(bad), "--trusted-key", str(german.evidence_pub)) == 1


def test_unsafe_members_added_to_a_real_pack(german, pack_path, tmp_path):
    out = rezip(pack_path, tmp_path / "u.zip", add={"../../outside.txt": b"x"})
    result = _verify(german, out)
    assert result.problems == ["refused: member '../../outside.txt' climbs out of the pack with '..'"]
