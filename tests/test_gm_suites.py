"""国密 suites: SM3 and SM2 against the standards' published examples, and both suites side by side.

Vectors:
* SM3 — GB/T 32905-2016 appendix A (A.1 "abc", A.2 "abcd" × 16).
* SM2 signature — GM/T 0003.5-2012 (GB/T 32918.5-2017) appendix A, the example on the recommended curve
  sm2p256v1: private key d, public key (x, y), ID "1234567812345678", message "message digest", the
  intermediate e = SM3(Z ‖ M) and the signature (r, s). The same values appear in Arm CryptoCell's SM2 test
  vectors and in the gmalg and sm2-with-openssl test suites. (The "ALICE123@YAHOO.COM" example of
  GB/T 32918.2 appendix A is on a 256-bit *test* curve, not sm2p256v1: no production library accepts that
  curve, so it cannot exercise the suite that signs here.)
"""

from __future__ import annotations

import base64
import hashlib

import pytest

from modelreg import signing, suites
from modelreg.errors import BadInput

pytest.importorskip("tongsuopy", reason="the gm extra (tongsuopy) is needed for SM2")

SM3_ABC = "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
SM3_ABCD16 = "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"

# GM/T 0003.5-2012 appendix A (recommended curve).
SM2_D = "3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8"
SM2_X = "09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020"
SM2_Y = "CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13"
SM2_E = "F0B43E94BA45ACCAACE692ED534382EB17E6AB5A19CE7B31F4486FDFC0D28640"
SM2_R = "F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3"
SM2_S = "B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA"
MESSAGE = b"message digest"
# sm2p256v1 (GB/T 32918.5): a, b, Gx, Gy — what Z is computed over, besides the ID and the public key.
CURVE_A = "FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC"
CURVE_B = "28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93"
CURVE_GX = "32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7"
CURVE_GY = "BC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0"


def _vector_public_key():
    from tongsuopy.crypto.asymciphers import ec

    return ec.EllipticCurvePublicNumbers(int(SM2_X, 16), int(SM2_Y, 16), ec.SM2()).public_key()


def _vector_signature(r: str = SM2_R, s: str = SM2_S) -> signing.Signature:
    public = _vector_public_key()
    raw = bytes.fromhex(r) + bytes.fromhex(s)
    return signing.Signature("sm2-sm3", signing.key_id(public), base64.b64encode(raw).decode("ascii"))


@pytest.mark.parametrize(("data", "want"), [(b"abc", SM3_ABC), (b"abcd" * 16, SM3_ABCD16)])
def test_sm3_matches_gbt_32905_appendix_a(data: bytes, want: str) -> None:
    assert suites.sm3_digest(data).hex() == want
    # Both SM3 implementations the code may pick (hashlib's OpenSSL, cryptography's) agree on the vector.
    assert suites._CryptographySM3(data).digest().hex() == want
    assert suites.hash_constructor("sm3")(data).hexdigest() == want


def test_sm2_z_value_and_e_of_the_gmt_0003_5_example() -> None:
    """Z = SM3(ENTL ‖ ID ‖ a ‖ b ‖ Gx ‖ Gy ‖ xA ‖ yA) with the default ID, e = SM3(Z ‖ M): composed by hand here
    and checked against the standard's e, so the signature test below is known to cover the Z value."""
    uid = suites.SM2_DEFAULT_ID
    z = suites.sm3_digest(
        (len(uid) * 8).to_bytes(2, "big")
        + uid
        + bytes.fromhex(CURVE_A + CURVE_B + CURVE_GX + CURVE_GY + SM2_X + SM2_Y)
    )
    assert suites.sm3_digest(z + MESSAGE).hex().upper() == SM2_E


def test_sm2_verifies_the_published_signature_and_nothing_else() -> None:
    public = _vector_public_key()
    assert signing.verify(public, MESSAGE, _vector_signature())
    assert not signing.verify(public, b"message digesT", _vector_signature())
    flipped_s = SM2_S[:-1] + ("B" if SM2_S[-1] != "B" else "C")
    assert not signing.verify(public, MESSAGE, _vector_signature(s=flipped_s))
    # r and s swapped, and s replaced by n - s: neither is the signature.
    n = int("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123", 16)
    assert not signing.verify(public, MESSAGE, _vector_signature(r=SM2_S, s=SM2_R))
    assert not signing.verify(public, MESSAGE, _vector_signature(s=f"{n - int(SM2_S, 16):064X}"))


def test_sm2_private_key_of_the_example_signs_verifiable_signatures() -> None:
    from tongsuopy.crypto.asymciphers import ec

    private = ec.derive_private_key(int(SM2_D, 16), ec.SM2())
    assert signing.key_id(private) == signing.key_id(_vector_public_key())
    sig = signing.sign(private, MESSAGE)
    assert sig.algorithm == "sm2-sm3" and sig.key_id.startswith("sm2:")
    # SM2 signatures are randomised (fresh k): two differ, both verify.
    again = signing.sign(private, MESSAGE)
    assert sig.value != again.value
    assert signing.verify(_vector_public_key(), MESSAGE, sig)
    assert signing.verify(private.public_key(), MESSAGE, again)


def test_key_id_of_sm2_is_sm3_of_the_uncompressed_point() -> None:
    point = bytes.fromhex("04" + SM2_X + SM2_Y)
    assert signing.key_id(_vector_public_key()) == "sm2:" + suites.sm3_digest(point).hex()[:16]


def test_suites_round_trip_through_pem_files(tmp_path) -> None:
    for suite in ("ed25519", "sm2"):
        priv, pub = tmp_path / f"{suite}.key", tmp_path / f"{suite}.key.pub"
        key = signing.write_key_pair(priv, pub, suite=suite)
        loaded, public = signing.load_private_key(priv), signing.load_public_key(pub)
        assert signing.suite_of_key(loaded) == signing.suite_of_key(public) == signing.parse_suite(suite)
        assert signing.key_id(loaded) == signing.key_id(public) == signing.key_id(key)
        sig = signing.sign(loaded, b"payload")
        assert signing.verify(public, b"payload", sig)
        assert sig.algorithm == signing.parse_suite(suite)
        assert (priv.stat().st_mode & 0o777) == 0o600


def test_a_signature_never_crosses_suites(tmp_path) -> None:
    ed = signing.generate_private_key("ed25519")
    sm = signing.generate_private_key("sm2")
    ed_sig, sm_sig = signing.sign(ed, b"x"), signing.sign(sm, b"x")
    # Relabelled to the other suite, or offered to the other suite's key: never verifies.
    assert not signing.verify(
        ed.public_key(), b"x", signing.Signature("sm2-sm3", ed_sig.key_id, ed_sig.value)
    )
    assert not signing.verify(
        sm.public_key(), b"x", signing.Signature("ed25519", sm_sig.key_id, sm_sig.value)
    )
    assert not signing.verify(ed.public_key(), b"x", sm_sig)
    assert not signing.verify(sm.public_key(), b"x", ed_sig)
    # Non-canonical base64 of a valid SM2 signature (the unused low bits of the last character set): it
    # decodes to the same 64 bytes, and is refused (one encoding per signature).
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    last = sm_sig.value[-3]
    varied_value = sm_sig.value[:-3] + alphabet[alphabet.index(last) | 1] + "=="
    assert base64.b64decode(varied_value) == base64.b64decode(sm_sig.value)
    varied = signing.Signature(sm_sig.algorithm, sm_sig.key_id, varied_value)
    assert varied.value != sm_sig.value and not signing.verify(sm.public_key(), b"x", varied)


def test_ensure_key_refuses_a_key_of_another_suite(tmp_path) -> None:
    path = tmp_path / "registry-audit.key"
    first = signing.ensure_key(path, suite="sm2")
    assert signing.suite_of_key(first) == "sm2-sm3"
    assert signing.key_id(signing.ensure_key(path, suite="sm2")) == signing.key_id(first)
    with pytest.raises(BadInput, match="holds a sm2-sm3 key but suite ed25519 was asked for"):
        signing.ensure_key(path, suite="ed25519")


def test_suite_names_are_validated_at_the_boundary() -> None:
    assert signing.parse_suite("SM2") == "sm2-sm3" and signing.parse_suite("ed25519") == "ed25519"
    with pytest.raises(BadInput, match=r"suite must be one of ed25519, sm2\. Got 'rsa' instead\."):
        signing.parse_suite("rsa")
    with pytest.raises(BadInput, match=r"hash must be one of sha256, sm3\. Got 'md5' instead\."):
        suites.parse_tree_hash("md5")


def test_sha256_key_ids_are_unchanged() -> None:
    """Ed25519 key ids stay what they were before suites existed (registries already store them)."""
    ed = signing.generate_private_key()
    raw = ed.public_key().public_bytes_raw()
    assert signing.key_id(ed) == "ed25519:" + hashlib.sha256(raw).hexdigest()[:16]
