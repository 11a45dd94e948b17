"""Ed25519 keys and signatures: known answers, round trips, tampering, garbage, key files."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from modelreg import signing
from modelreg.errors import BadInput

# RFC 8032 §7.1, TEST 1 (empty message).
RFC8032_SECRET = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC8032_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
RFC8032_SIGNATURE = bytes.fromhex(
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065"
    "224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
)


@pytest.fixture(scope="module")
def rfc_key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.from_private_bytes(RFC8032_SECRET)


@pytest.fixture(scope="module")
def key() -> ed25519.Ed25519PrivateKey:
    return signing.generate_private_key()


@pytest.fixture(scope="module")
def other_key() -> ed25519.Ed25519PrivateKey:
    return signing.generate_private_key()


def test_rfc8032_known_answer(rfc_key) -> None:
    sig = signing.sign(rfc_key, b"")
    assert sig.algorithm == "ed25519"
    assert base64.b64decode(sig.value) == RFC8032_SIGNATURE
    assert sig.key_id == "ed25519:" + hashlib.sha256(RFC8032_PUBLIC).hexdigest()[:16]
    public = ed25519.Ed25519PublicKey.from_public_bytes(RFC8032_PUBLIC)
    assert signing.verify(public, b"", sig)


def test_key_id_format_and_either_half(key) -> None:
    kid = signing.key_id(key)
    assert kid == signing.key_id(key.public_key())
    assert kid.startswith("ed25519:") and len(kid) == len("ed25519:") + 16
    int(kid.split(":")[1], 16)
    with pytest.raises(BadInput, match="Ed25519 key"):
        signing.key_id("not a key")  # type: ignore[arg-type]


def test_round_trip(key) -> None:
    payload = b'{"event":"deploy","version":3}'
    sig = signing.sign(key, payload)
    assert signing.verify(key.public_key(), payload, sig)
    assert signing.verify(key, payload, sig)  # a private key is accepted for its public half
    assert signing.verify(key.public_key(), bytearray(payload), sig)
    assert signing.Signature.from_dict(sig.to_dict()) == sig
    assert sig.to_dict() == {"algorithm": "ed25519", "key_id": signing.key_id(key), "value": sig.value}
    assert signing.verify(key.public_key(), payload, sig.to_dict())  # type: ignore[arg-type]


def test_wrong_key(key, other_key) -> None:
    sig = signing.sign(key, b"payload")
    assert not signing.verify(other_key.public_key(), b"payload", sig)
    # Even with the key id forged to match the other key, the signature itself does not verify.
    forged = signing.Signature("ed25519", signing.key_id(other_key), sig.value)
    assert not signing.verify(other_key.public_key(), b"payload", forged)


def test_bit_flips(key) -> None:
    payload = b"the model was approved by two approvers"
    sig = signing.sign(key, payload)
    raw = base64.b64decode(sig.value)
    for bit in range(len(payload) * 8):
        flipped = bytearray(payload)
        flipped[bit // 8] ^= 1 << (bit % 8)
        assert not signing.verify(key.public_key(), bytes(flipped), sig)
    for bit in range(len(raw) * 8):
        flipped = bytearray(raw)
        flipped[bit // 8] ^= 1 << (bit % 8)
        bad = signing.Signature(sig.algorithm, sig.key_id, base64.b64encode(bytes(flipped)).decode())
        assert not signing.verify(key.public_key(), payload, bad)


def test_recorded_algorithm_and_key_id_are_checked(key) -> None:
    sig = signing.sign(key, b"x")
    assert not signing.verify(key.public_key(), b"x", signing.Signature("ed448", sig.key_id, sig.value))
    assert not signing.verify(key.public_key(), b"x", signing.Signature("ED25519", sig.key_id, sig.value))
    assert not signing.verify(key.public_key(), b"x", signing.Signature("ed25519", "ed25519:0", sig.value))


@pytest.mark.parametrize(
    "value",
    [
        "",
        "not base64!",
        "AAAA",  # valid base64, wrong length
        "==",
        "\u00e9\u00e9",
    ],
)
def test_malformed_signature_values(key, value: str) -> None:
    assert (
        signing.verify(key.public_key(), b"x", signing.Signature("ed25519", signing.key_id(key), value))
        is False
    )


def test_only_the_exact_base64_encoding_verifies(key) -> None:
    sig = signing.sign(key, b"x")
    for variant in (sig.value + "\n", " " + sig.value, sig.value.rstrip("="), sig.value + "=="):
        assert not signing.verify(key.public_key(), b"x", signing.Signature("ed25519", sig.key_id, variant))
    # 64 bytes leave 4 unused bits in the last base64 digit: a different string that decodes to the same
    # bytes must still be refused, or a signature could be re-spelled while staying "valid".
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    assert sig.value.endswith("==")
    last = alphabet.index(sig.value[-3])
    respelled = sig.value[:-3] + alphabet[last ^ 0b0001] + "=="
    assert base64.b64decode(respelled) == base64.b64decode(sig.value)
    assert not signing.verify(key.public_key(), b"x", signing.Signature("ed25519", sig.key_id, respelled))


@pytest.mark.parametrize("junk", [None, "", "abc", 5, b"\x00" * 32, [], {}, object()], ids=repr)
def test_garbage_never_raises(key, junk: object) -> None:
    sig = signing.sign(key, b"x")
    assert signing.verify(junk, b"x", sig) is False  # type: ignore[arg-type]
    assert signing.verify(key.public_key(), junk, sig) is False  # type: ignore[arg-type]
    assert signing.verify(key.public_key(), b"x", junk) is False  # type: ignore[arg-type]
    assert signing.verify(key.public_key(), b"x", signing.Signature(junk, sig.key_id, sig.value)) is False  # type: ignore[arg-type]
    assert signing.verify(key.public_key(), b"x", signing.Signature(sig.algorithm, junk, sig.value)) is False  # type: ignore[arg-type]
    assert signing.verify(key.public_key(), b"x", signing.Signature(sig.algorithm, sig.key_id, junk)) is False  # type: ignore[arg-type]


def test_sign_argument_errors(key) -> None:
    with pytest.raises(BadInput, match="Ed25519 private key"):
        signing.sign(key.public_key(), b"x")  # type: ignore[arg-type]
    with pytest.raises(BadInput, match="must be bytes"):
        signing.sign(key, "text")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "data",
    [
        None,
        [],
        {"algorithm": "ed25519"},
        {"algorithm": "ed25519", "key_id": "k", "value": 1},
        {"a": 1, "b": 2, "c": 3},
    ],
    ids=repr,
)
def test_signature_from_dict_malformed(data: object) -> None:
    with pytest.raises(BadInput, match="signature must be an object"):
        signing.Signature.from_dict(data)


# -- PEM -----------------------------------------------------------------------------------------------------


def test_pem_round_trip(key) -> None:
    priv_pem = signing.private_key_to_pem(key)
    pub_pem = signing.public_key_to_pem(key.public_key())
    assert priv_pem.startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8, unencrypted
    assert pub_pem.startswith(b"-----BEGIN PUBLIC KEY-----")
    assert signing.public_key_to_pem(key) == pub_pem
    assert signing.key_id(signing.load_private_key(priv_pem)) == signing.key_id(key)
    assert signing.key_id(signing.load_public_key(pub_pem)) == signing.key_id(key)
    sig = signing.sign(signing.load_private_key(priv_pem), b"m")
    assert signing.verify(signing.load_public_key(pub_pem), b"m", sig)


def _pem_of_other_kinds() -> dict[str, bytes]:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    ed = signing.generate_private_key()
    return {
        "ec_private": ec_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
        "ec_public": ec_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        "encrypted": ed.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        ),
        "ed_public": signing.public_key_to_pem(ed),
        "ed_private": signing.private_key_to_pem(ed),
    }


@pytest.fixture(scope="module")
def other_pems() -> dict[str, bytes]:
    return _pem_of_other_kinds()


def _one_line_bad_input(fn, arg, match: str) -> str:
    with pytest.raises(BadInput, match=match) as info:
        fn(arg)
    assert "\n" not in str(info.value)
    return str(info.value)


def test_load_private_key_errors(tmp_path: Path, other_pems: dict[str, bytes]) -> None:
    load = signing.load_private_key
    msg = _one_line_bad_input(load, tmp_path / "missing.pem", "private key file not found")
    assert str(tmp_path / "missing.pem") in msg
    _one_line_bad_input(load, tmp_path, "it is a directory")
    cases = {
        "empty.pem": (b"", "not a PEM private key. Got an empty file"),
        "garbage.pem": (b"hello world", "not a PEM private key. Got no PEM block"),
        "truncated.pem": (other_pems["ed_private"][:60], "not a PEM private key"),
        "ec.pem": (other_pems["ec_private"], "holds a key of type EC; modelreg signs with Ed25519 only"),
        "encrypted.pem": (other_pems["encrypted"], "is encrypted"),
        "public.pem": (other_pems["ed_public"], "Got a public key"),
    }
    for name, (content, match) in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        msg = _one_line_bad_input(load, path, match)
        assert str(path) in msg
    _one_line_bad_input(load, b"garbage", "the given private key data is not a PEM private key")
    _one_line_bad_input(load, 42, "must be a file path or PEM bytes")


def test_load_public_key_errors(tmp_path: Path, other_pems: dict[str, bytes]) -> None:
    load = signing.load_public_key
    _one_line_bad_input(load, tmp_path / "missing.pub", "public key file not found")
    cases = {
        "empty.pub": (b"  \n", "not a PEM public key. Got an empty file"),
        "ec.pub": (other_pems["ec_public"], "holds a key of type EC"),
        "private.pub": (other_pems["ed_private"], "Got a private key"),
        "bad.pub": (b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "does not parse"),
    }
    for name, (content, match) in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        _one_line_bad_input(load, path, match)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_key_file(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    path.write_bytes(b"x")
    path.chmod(0)
    _one_line_bad_input(signing.load_private_key, path, "cannot read private key file")


# -- key files -----------------------------------------------------------------------------------------------


def test_write_key_pair(tmp_path: Path) -> None:
    priv, pub = tmp_path / "keys" / "audit.pem", tmp_path / "keys" / "audit.pub"
    key = signing.write_key_pair(priv, pub)
    assert stat.S_IMODE(priv.stat().st_mode) == 0o600
    assert signing.key_id(signing.load_private_key(priv)) == signing.key_id(key)
    assert signing.key_id(signing.load_public_key(pub)) == signing.key_id(key)
    assert sorted(p.name for p in priv.parent.iterdir()) == ["audit.pem", "audit.pub"]  # no temp files


def test_write_key_pair_refuses_to_overwrite(tmp_path: Path) -> None:
    priv, pub = tmp_path / "a.pem", tmp_path / "a.pub"
    signing.write_key_pair(priv, pub)
    before = priv.read_bytes(), pub.read_bytes()
    with pytest.raises(BadInput, match="refusing to overwrite the existing key file"):
        signing.write_key_pair(priv, tmp_path / "b.pub")
    with pytest.raises(BadInput, match="refusing to overwrite"):
        signing.write_key_pair(tmp_path / "b.pem", pub)
    assert (priv.read_bytes(), pub.read_bytes()) == before
    assert not (tmp_path / "b.pem").exists() and not (tmp_path / "b.pub").exists()


def test_ensure_key_creates_then_reuses(tmp_path: Path) -> None:
    path = tmp_path / "state" / "audit_ed25519.pem"
    first = signing.ensure_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    pub = signing.public_key_path_for(path)
    assert pub.name == "audit_ed25519.pem.pub"
    assert signing.key_id(signing.load_public_key(pub)) == signing.key_id(first)
    second = signing.ensure_key(path)
    assert signing.key_id(second) == signing.key_id(first)
    pub.unlink()  # a lost public half is re-derived
    signing.ensure_key(path)
    assert signing.key_id(signing.load_public_key(pub)) == signing.key_id(first)


def test_ensure_key_refuses_mismatched_public_key(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    signing.ensure_key(path)
    signing.public_key_path_for(path).write_bytes(signing.public_key_to_pem(signing.generate_private_key()))
    with pytest.raises(BadInput, match="does not belong to private key"):
        signing.ensure_key(path)


def test_ensure_key_on_malformed_file(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    path.write_text("corrupted")
    with pytest.raises(BadInput, match="not a PEM private key"):
        signing.ensure_key(path)
    assert path.read_text() == "corrupted"  # never replaced behind the user's back


def test_ensure_key_concurrent_callers_agree(tmp_path: Path) -> None:
    path = tmp_path / "race.pem"
    results: list[str] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            results.append(signing.key_id(signing.ensure_key(path)))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(set(results)) == 1 and len(results) == 8
    assert results[0] == signing.key_id(signing.load_private_key(path))


def test_modules_import_without_heavy_dependencies() -> None:
    # The CLI's start-up path: these modules must not pull in cryptography (until used), SQLAlchemy,
    # mlflow, pandas or numpy.
    code = (
        "import sys, modelreg.signing, modelreg.audit, modelreg.audit.checkpoint;"
        "heavy = [m for m in ('cryptography', 'sqlalchemy', 'mlflow', 'pandas', 'numpy') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == ""
