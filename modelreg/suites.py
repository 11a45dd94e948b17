"""Signature suites and tree hashes: Ed25519 with SHA-256 (the default) and SM2 with SM3 (国密).

A suite id is recorded with every key (its ``key_id`` prefix) and every signature (``Signature.algorithm``),
so one registry holds keys and signatures of both suites and verifies each with its own algorithm.

* ``ed25519``: Ed25519 (RFC 8032) through ``cryptography``; key id ``ed25519:`` + the first 16 hex digits of
  SHA-256(raw 32-byte public key).
* ``sm2-sm3``: SM2 signatures (GB/T 32918.2) over SM3 (GB/T 32905), with the signer's Z value computed from
  the default user ID ``1234567812345678`` (GB/T 35276 / GM/T 0009 §10 — the ID to use when none was agreed);
  key id ``sm2:`` + the first 16 hex digits of SM3(0x04 ‖ x ‖ y). The value is r ‖ s, 32 bytes each,
  big-endian: a fixed-length encoding, so a signature string cannot be varied (DER's can) while verifying.

SM2 comes from ``tongsuopy`` (the Tongsuo project's binding, the ``gm`` extra), chosen over the pure-Python
``gmssl`` and ``gmalg``: all three verify the GM/T 0003.5 example, but tongsuopy signs ~2,400/s and
verifies ~2,200/s against gmssl's ~115/~86 and gmalg's ~74/~41 (measured here), its nonces come from
Tongsuo's CSPRNG (gmssl draws the SM2 nonce k with ``random.choice``: a Mersenne Twister, whose outputs
can be predicted, and a predictable k reveals the private key), and it is constant-time C. ``cryptography``
itself has SM3 but refuses the SM2 curve ("Curve 1.2.156.10197.1.301 is not supported").

This module imports only the standard library and ``cryptography`` (tongsuopy lazily, for SM2 keys only):
it is one of the sources of the standalone pack verifier (``modelreg.evidence.standalone``), so it imports
names, never modules, from modelreg.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any

from modelreg.errors import BadInput, MissingExtra

SUITE_ED25519 = "ed25519"
SUITE_SM2 = "sm2-sm3"
SUITES = (SUITE_ED25519, SUITE_SM2)
# What a user may type for --suite; the recorded id is always the canonical one.
SUITE_NAMES = {"ed25519": SUITE_ED25519, "sm2": SUITE_SM2, "sm2-sm3": SUITE_SM2}
SUITE_KEY_PREFIX = {SUITE_ED25519: "ed25519:", SUITE_SM2: "sm2:"}
SUITE_LABEL = {SUITE_ED25519: "Ed25519", SUITE_SM2: "SM2 (SM3)"}
SM2_DEFAULT_ID = b"1234567812345678"
TREE_HASHES = ("sha256", "sm3")
# The DER of the SM2 curve OID 1.2.156.10197.1.301: how an SM2 PEM is told apart before parsing it.
_SM2_CURVE_OID_DER = bytes.fromhex("06082a811ccf5501822d")
_SIG_BYTES = {SUITE_ED25519: 64, SUITE_SM2: 64}

MSG_SUITE = "suite must be one of ed25519, sm2. Got {got!r} instead."
MSG_TREE_HASH = "hash must be one of sha256, sm3. Got {got!r} instead."
MSG_KEY_MISSING = "{what} file not found: {path}. Check the path, or create a key pair first."
MSG_KEY_UNREADABLE = "cannot read {what} file {path}: {reason}"
MSG_KEY_MALFORMED = "{source} is not a PEM {expected}. Got {got} instead."
MSG_KEY_WRONG_TYPE = "{source} holds a key of type {got}; modelreg signs with Ed25519 only by default, or with SM2 (suite sm2)."
MSG_KEY_ENCRYPTED = "{source} is encrypted; modelreg needs an unencrypted PKCS#8 private key."
MSG_SIGNATURE_MALFORMED = (
    "signature must be an object with string fields algorithm, key_id and value. Got {got} instead."
)
MSG_NOT_A_KEY = "expected an Ed25519 key or an SM2 key. Got {got} instead."
MSG_SIGN_KEY = "signing needs an Ed25519 private key or an SM2 private key. Got {got} instead."


def parse_suite(value: Any) -> str:
    """The canonical suite id for what a user typed (``ed25519``, ``sm2`` or ``sm2-sm3``)."""
    if isinstance(value, str) and value.lower() in SUITE_NAMES:
        return SUITE_NAMES[value.lower()]
    raise BadInput(MSG_SUITE.format(got=value))


def parse_tree_hash(value: Any) -> str:
    if isinstance(value, str) and value.lower() in TREE_HASHES:
        return value.lower()
    raise BadInput(MSG_TREE_HASH.format(got=value))


# -- hashes ---------------------------------------------------------------------------------------------


class _CryptographySM3:
    """hashlib-shaped SM3 from ``cryptography``, for a Python whose OpenSSL leaves SM3 out of hashlib."""

    __slots__ = ("_h",)

    def __init__(self, data: bytes = b"") -> None:
        from cryptography.hazmat.primitives import hashes

        self._h = hashes.Hash(hashes.SM3())
        self._h.update(data)

    def update(self, data: bytes) -> None:
        self._h.update(data)

    def digest(self) -> bytes:
        return self._h.copy().finalize()

    def hexdigest(self) -> str:
        return self.digest().hex()


def _hashlib_sm3(data: bytes = b"") -> Any:
    return hashlib.new("sm3", data)


def hash_constructor(name: str) -> Any:
    """``hashlib.sha256``-like constructor for a tree hash (``ctor(data).digest()``)."""
    if name == "sha256":
        return hashlib.sha256
    if name == "sm3":
        # hashlib's OpenSSL SM3 has the least call overhead (the Merkle loops call it once per node).
        return _hashlib_sm3 if "sm3" in hashlib.algorithms_available else _CryptographySM3
    raise BadInput(MSG_TREE_HASH.format(got=name))


def sm3_digest(data: bytes) -> bytes:
    return hash_constructor("sm3")(data).digest()


# -- keys -----------------------------------------------------------------------------------------------


def _ed25519() -> Any:
    from cryptography.hazmat.primitives.asymmetric import ed25519

    return ed25519


def _serialization() -> Any:
    from cryptography.hazmat.primitives import serialization

    return serialization


def _dss() -> Any:
    # DER SEQUENCE{r, s} <-> integers; tongsuopy lacks the decoder, cryptography's is plain ASN.1.
    from cryptography.hazmat.primitives.asymmetric import utils

    return utils


@cache  # the registry signs and verifies in loops: import once (a failed import is not cached)
def _tongsuo() -> Any:
    """tongsuopy's modules, or MissingExtra: SM2 is optional (``pip install 'modelreg[gm]'``)."""
    try:
        from tongsuopy.crypto import exceptions, hashes, serialization
        from tongsuopy.crypto.asymciphers import ec
    except ImportError:
        raise MissingExtra("tongsuopy (needed for SM2 keys and signatures)", "gm") from None
    return _TongsuoModules(ec=ec, hashes=hashes, serialization=serialization, exc=exceptions)


@dataclass(frozen=True)
class _TongsuoModules:
    ec: Any
    hashes: Any
    serialization: Any
    exc: Any


def _is_sm2_key(key: Any) -> bool:
    # Checked by module name first so an Ed25519 key never triggers the optional import.
    if not type(key).__module__.startswith("tongsuopy"):
        return False
    ec = _tongsuo().ec
    return isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) and isinstance(
        key.curve, ec.SM2
    )


def suite_of_key(key: Any) -> str:
    """Which suite a private or public key belongs to (BadInput if it is neither)."""
    ed = _ed25519()
    if isinstance(key, ed.Ed25519PrivateKey | ed.Ed25519PublicKey):
        return SUITE_ED25519
    if _is_sm2_key(key):
        return SUITE_SM2
    raise BadInput(MSG_NOT_A_KEY.format(got=type(key).__name__))


def is_private_key(key: Any) -> bool:
    if isinstance(key, _ed25519().Ed25519PrivateKey):
        return True
    return _is_sm2_key(key) and isinstance(key, _tongsuo().ec.EllipticCurvePrivateKey)


def generate_private_key(suite: str = SUITE_ED25519) -> Any:
    suite = parse_suite(suite)
    if suite == SUITE_SM2:
        gm = _tongsuo()
        return gm.ec.generate_private_key(gm.ec.SM2())
    return _ed25519().Ed25519PrivateKey.generate()


def public_of(key: Any) -> Any:
    suite_of_key(key)  # BadInput if it is not a key at all
    return key.public_key() if is_private_key(key) else key


def _public_point(public: Any) -> bytes:
    """The bytes a key id is taken over: raw 32 bytes (Ed25519), 0x04 ‖ x ‖ y (SM2)."""
    if suite_of_key(public) == SUITE_SM2:
        ser = _tongsuo().serialization
        return public.public_bytes(ser.Encoding.X962, ser.PublicFormat.UncompressedPoint)
    ser = _serialization()
    return public.public_bytes(ser.Encoding.Raw, ser.PublicFormat.Raw)


def key_id_of(key: Any) -> str:
    """Stable short name of a key pair (either half may be given); its prefix names the suite."""
    public = public_of(key)
    suite = suite_of_key(public)
    point = _public_point(public)
    digest = sm3_digest(point) if suite == SUITE_SM2 else hashlib.sha256(point).digest()
    return SUITE_KEY_PREFIX[suite] + digest.hex()[:16]


def suite_of_key_id(kid: Any) -> str | None:
    for suite, prefix in SUITE_KEY_PREFIX.items():
        if isinstance(kid, str) and kid.startswith(prefix):
            return suite
    return None


def private_key_to_pem(key: Any) -> bytes:
    ser = _tongsuo().serialization if suite_of_key(key) == SUITE_SM2 else _serialization()
    return key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8, ser.NoEncryption())


def public_key_to_pem(key: Any) -> bytes:
    """PEM SubjectPublicKeyInfo; a private key is accepted and its public half written."""
    public = public_of(key)
    ser = _tongsuo().serialization if suite_of_key(public) == SUITE_SM2 else _serialization()
    return public.public_bytes(ser.Encoding.PEM, ser.PublicFormat.SubjectPublicKeyInfo)


def read_key_source(source: Any, what: str) -> tuple[bytes, str]:
    """(PEM bytes, a name for messages). ``bytes`` are PEM content; str/PathLike are file paths."""
    if isinstance(source, bytes | bytearray):
        return bytes(source), f"the given {what} data"
    if not isinstance(source, str | os.PathLike):
        raise BadInput(f"{what} must be a file path or PEM bytes. Got {type(source).__name__} instead.")
    path = Path(source)
    try:
        return path.read_bytes(), f"{what} file {path}"
    except FileNotFoundError:
        raise BadInput(MSG_KEY_MISSING.format(what=what, path=path)) from None
    except IsADirectoryError:
        raise BadInput(MSG_KEY_UNREADABLE.format(what=what, path=path, reason="it is a directory")) from None
    except OSError as exc:
        raise BadInput(MSG_KEY_UNREADABLE.format(what=what, path=path, reason=exc.strerror or exc)) from None


def _describe_pem(data: bytes) -> str:
    if b"-----BEGIN " not in data:
        return "no PEM block" if data.strip() else "an empty file"
    label = data.split(b"-----BEGIN ", 1)[1].split(b"-----", 1)[0]
    return "a PEM " + label.decode("ascii", "replace")[:40] + " block that does not parse"


def _pem_holds_sm2(data: bytes) -> bool:
    """True iff the first PEM block's DER names the SM2 curve (parsing it needs the gm extra)."""
    try:
        body = data.split(b"-----", 2)[2].split(b"-----END", 1)[0]
        der = base64.b64decode(b"".join(body.split()), validate=True)
    except (IndexError, binascii.Error, ValueError):
        return False
    return _SM2_CURVE_OID_DER in der[:64]


def _key_type_name(key: object) -> str:
    from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, rsa, x448, x25519

    kinds = {
        "RSA": (rsa.RSAPrivateKey, rsa.RSAPublicKey),
        "EC": (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey),
        "DSA": (dsa.DSAPrivateKey, dsa.DSAPublicKey),
        "Ed448": (ed448.Ed448PrivateKey, ed448.Ed448PublicKey),
        "X25519": (x25519.X25519PrivateKey, x25519.X25519PublicKey),
        "X448": (x448.X448PrivateKey, x448.X448PublicKey),
    }
    for name, classes in kinds.items():
        if isinstance(key, classes):
            return name
    if type(key).__module__.startswith("tongsuopy"):
        return "EC (not SM2)"
    return type(key).__name__


def load_private_key(source: Any) -> Any:
    """Load an unencrypted PKCS#8 Ed25519 or SM2 private key from a file path or PEM bytes."""
    data, name = read_key_source(source, "private key")
    sm2 = _pem_holds_sm2(data)
    ser = _tongsuo().serialization if sm2 else _serialization()
    try:
        key = ser.load_pem_private_key(data, password=None)
    except TypeError:
        # cryptography raises TypeError when the PEM is encrypted and no password was given.
        raise BadInput(MSG_KEY_ENCRYPTED.format(source=name)) from None
    except Exception:
        got = "a public key" if b"PUBLIC KEY-----" in data else _describe_pem(data)
        raise BadInput(MSG_KEY_MALFORMED.format(source=name, expected="private key", got=got)) from None
    try:
        suite_of_key(key)
    except BadInput:
        raise BadInput(MSG_KEY_WRONG_TYPE.format(source=name, got=_key_type_name(key))) from None
    return key


def load_public_key(source: Any) -> Any:
    """Load an Ed25519 or SM2 public key (PEM SubjectPublicKeyInfo) from a file path or PEM bytes."""
    data, name = read_key_source(source, "public key")
    sm2 = _pem_holds_sm2(data) and b"PRIVATE KEY-----" not in data
    ser = _tongsuo().serialization if sm2 else _serialization()
    try:
        key = ser.load_pem_public_key(data)
    except Exception:
        got = "a private key (give the .pub file)" if b"PRIVATE KEY-----" in data else _describe_pem(data)
        raise BadInput(MSG_KEY_MALFORMED.format(source=name, expected="public key", got=got)) from None
    try:
        suite_of_key(key)
    except BadInput:
        raise BadInput(MSG_KEY_WRONG_TYPE.format(source=name, got=_key_type_name(key))) from None
    return key


# -- signatures -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Signature:
    """A detached signature: which suite (``algorithm``), which key, and the base64 signature value."""

    algorithm: str
    key_id: str
    value: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> Signature:
        names = ("algorithm", "key_id", "value")
        if (
            not isinstance(data, dict)
            or set(data) != set(names)
            or not all(isinstance(data[f], str) for f in names)
        ):
            got = sorted(data) if isinstance(data, dict) else type(data).__name__
            raise BadInput(MSG_SIGNATURE_MALFORMED.format(got=got))
        return cls(algorithm=data["algorithm"], key_id=data["key_id"], value=data["value"])


def suite_sign(private_key: Any, payload: bytes) -> Signature:
    """Sign ``payload`` with the suite of ``private_key``."""
    try:
        suite = suite_of_key(private_key)
    except BadInput:
        raise BadInput(MSG_SIGN_KEY.format(got=type(private_key).__name__)) from None
    if not is_private_key(private_key):
        raise BadInput(MSG_SIGN_KEY.format(got=type(private_key).__name__))
    if not isinstance(payload, bytes | bytearray):
        raise BadInput(f"the signed payload must be bytes. Got {type(payload).__name__} instead.")
    if suite == SUITE_SM2:
        gm = _tongsuo()
        # Tongsuo's digest-sign computes e = SM3(Z ‖ M) with Z over the default ID (checked in the tests
        # against the GM/T 0003.5 example), then the SM2 signature of e.
        der = private_key.sign(bytes(payload), gm.ec.ECDSA(gm.hashes.SM3()))
        r, s = _dss().decode_dss_signature(der)
        raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    else:
        raw = private_key.sign(bytes(payload))
    return Signature(
        algorithm=suite, key_id=key_id_of(private_key), value=base64.b64encode(raw).decode("ascii")
    )


def _decode_signature_value(value: str, suite: str) -> bytes | None:
    try:
        raw = base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return None
    # Exactly one encoding is accepted, so a signature string cannot be varied while still verifying.
    if len(raw) != _SIG_BYTES[suite] or base64.b64encode(raw).decode("ascii") != value:
        return None
    return raw


def _verify_sm2(public: Any, raw: bytes, payload: bytes) -> bool:
    gm = _tongsuo()
    r, s = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
    try:
        public.verify(_dss().encode_dss_signature(r, s), payload, gm.ec.ECDSA(gm.hashes.SM3()))
    except gm.exc.InvalidSignature:
        return False
    return True


def suite_verify(public_key: Any, payload: bytes, signature: Any) -> bool:
    """True iff ``signature`` is a valid signature of ``payload`` by ``public_key`` in the signature's suite.

    False (never an exception) on a key-id mismatch, a suite that is not the key's (an SM2 signature
    offered for an Ed25519 key or the reverse), malformed base64, a wrong-length value, a bad signature, or
    arguments of the wrong type. A missing SM2 library is the one exception (MissingExtra): "cannot check"
    is not "does not verify".
    """
    try:
        if isinstance(signature, dict):
            signature = Signature.from_dict(signature)
        if not isinstance(signature, Signature) or not isinstance(payload, bytes | bytearray):
            return False
        public = public_of(public_key)
        suite = suite_of_key(public)
        if signature.algorithm != suite or not isinstance(signature.value, str):
            return False
        if signature.key_id != key_id_of(public):
            return False
        raw = _decode_signature_value(signature.value, suite)
        if raw is None:
            return False
        if suite == SUITE_SM2:
            return _verify_sm2(public, raw, bytes(payload))
        from cryptography.exceptions import InvalidSignature

        try:
            public.verify(raw, bytes(payload))
        except InvalidSignature:
            return False
        return True
    except MissingExtra:
        raise
    except Exception:
        # A verifier answers yes or no; malformed input of any kind is "no".
        return False
