"""Keys, signatures and their verification (Ed25519; the algorithm is recorded with every signature).

``cryptography`` is imported on first use, not at import time: the CLI's start-up path imports this
module for its types and constants only.

Key files are PEM: PKCS#8 (unencrypted) for private keys, SubjectPublicKeyInfo for public keys. A key is
named by its ``key_id``: ``"ed25519:" + the first 16 hex digits of SHA-256(raw 32-byte public key)``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelreg.errors import BadInput

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = [
    "ALGORITHM",
    "Signature",
    "ensure_key",
    "generate_private_key",
    "key_id",
    "load_private_key",
    "load_public_key",
    "private_key_to_pem",
    "public_key_path_for",
    "public_key_to_pem",
    "sign",
    "verify",
    "write_key_pair",
]

ALGORITHM = "ed25519"
KEY_ID_PREFIX = "ed25519:"
_SIGNATURE_BYTES = 64

MSG_KEY_MISSING = "{what} file not found: {path}. Check the path, or create a key pair first."
MSG_KEY_UNREADABLE = "cannot read {what} file {path}: {reason}"
MSG_KEY_MALFORMED = "{source} is not a PEM {expected}. Got {got} instead."
MSG_KEY_WRONG_TYPE = "{source} holds a key of type {got}; modelreg signs with Ed25519 only."
MSG_KEY_ENCRYPTED = "{source} is encrypted; modelreg needs an unencrypted PKCS#8 Ed25519 private key."
MSG_KEY_EXISTS = "refusing to overwrite the existing key file {path}. Move it away first, or keep using it."
MSG_KEY_MISMATCH = "public key {public} does not belong to private key {private} (key ids {got} and {want})."
MSG_SIGNATURE_MALFORMED = (
    "signature must be an object with string fields algorithm, key_id and value. Got {got} instead."
)


def _ed25519() -> Any:
    from cryptography.hazmat.primitives.asymmetric import ed25519

    return ed25519


def _serialization() -> Any:
    from cryptography.hazmat.primitives import serialization

    return serialization


# -- keys ---------------------------------------------------------------------------------------------


def generate_private_key() -> Ed25519PrivateKey:
    return _ed25519().Ed25519PrivateKey.generate()


def _public_of(key: Any) -> Ed25519PublicKey:
    ed = _ed25519()
    if isinstance(key, ed.Ed25519PrivateKey):
        return key.public_key()
    if isinstance(key, ed.Ed25519PublicKey):
        return key
    raise BadInput(f"expected an Ed25519 key. Got {type(key).__name__} instead.")


def private_key_to_pem(key: Ed25519PrivateKey) -> bytes:
    ser = _serialization()
    return key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8, ser.NoEncryption())


def public_key_to_pem(key: Ed25519PublicKey | Ed25519PrivateKey) -> bytes:
    """PEM SubjectPublicKeyInfo; a private key is accepted and its public half written."""
    ser = _serialization()
    return _public_of(key).public_bytes(ser.Encoding.PEM, ser.PublicFormat.SubjectPublicKeyInfo)


def _raw_public(key: Ed25519PublicKey) -> bytes:
    ser = _serialization()
    return key.public_bytes(ser.Encoding.Raw, ser.PublicFormat.Raw)


def key_id(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    """Stable short name of a key pair (either half may be given)."""
    return KEY_ID_PREFIX + hashlib.sha256(_raw_public(_public_of(key))).hexdigest()[:16]


def _read_key_source(source: str | os.PathLike[str] | bytes, what: str) -> tuple[bytes, str]:
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
    return type(key).__name__


def load_private_key(source: str | os.PathLike[str] | bytes) -> Ed25519PrivateKey:
    """Load an unencrypted PKCS#8 Ed25519 private key from a file path or PEM bytes."""
    data, name = _read_key_source(source, "private key")
    ser = _serialization()
    try:
        key = ser.load_pem_private_key(data, password=None)
    except TypeError:
        # cryptography raises TypeError when the PEM is encrypted and no password was given.
        raise BadInput(MSG_KEY_ENCRYPTED.format(source=name)) from None
    except Exception:
        got = "a public key" if b"PUBLIC KEY-----" in data else _describe_pem(data)
        raise BadInput(MSG_KEY_MALFORMED.format(source=name, expected="private key", got=got)) from None
    if not isinstance(key, _ed25519().Ed25519PrivateKey):
        raise BadInput(MSG_KEY_WRONG_TYPE.format(source=name, got=_key_type_name(key)))
    return key


def load_public_key(source: str | os.PathLike[str] | bytes) -> Ed25519PublicKey:
    """Load an Ed25519 public key (PEM SubjectPublicKeyInfo) from a file path or PEM bytes."""
    data, name = _read_key_source(source, "public key")
    ser = _serialization()
    try:
        key = ser.load_pem_public_key(data)
    except Exception:
        got = "a private key (give the .pub file)" if b"PRIVATE KEY-----" in data else _describe_pem(data)
        raise BadInput(MSG_KEY_MALFORMED.format(source=name, expected="public key", got=got)) from None
    if not isinstance(key, _ed25519().Ed25519PublicKey):
        raise BadInput(MSG_KEY_WRONG_TYPE.format(source=name, got=_key_type_name(key)))
    return key


def _write_new_file(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` with ``data`` and ``mode``, never overwriting and never leaving a partial file.

    The content is written and fsynced under a temporary name, then hard-linked into place: the link
    fails atomically if the target exists (two processes racing to create a key cannot both win).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        try:
            os.fchmod(fd, mode)  # umask can only remove bits, but be explicit about 0600
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise BadInput(MSG_KEY_EXISTS.format(path=path)) from None
        except OSError:
            # Filesystems without hard links: fall back to check-then-rename (not race-free).
            if path.exists():
                raise BadInput(MSG_KEY_EXISTS.format(path=path)) from None
            os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def write_key_pair(
    private_path: str | os.PathLike[str], public_path: str | os.PathLike[str]
) -> Ed25519PrivateKey:
    """Generate a key pair; private file mode 0600, public 0644. Refuses (BadInput) if either exists."""
    private_path, public_path = Path(private_path), Path(public_path)
    for path in (private_path, public_path):
        if path.exists():
            raise BadInput(MSG_KEY_EXISTS.format(path=path))
    key = generate_private_key()
    _write_new_file(private_path, private_key_to_pem(key), 0o600)
    try:
        _write_new_file(public_path, public_key_to_pem(key), 0o644)
    except BaseException:
        # Do not leave half a pair behind.
        with contextlib.suppress(OSError):
            private_path.unlink()
        raise
    return key


def public_key_path_for(private_path: str | os.PathLike[str]) -> Path:
    """Where ``ensure_key`` keeps the public half: next to the private key, with ``.pub`` appended."""
    path = Path(private_path)
    return path.with_name(path.name + ".pub")


def ensure_key(
    private_path: str | os.PathLike[str], public_path: str | os.PathLike[str] | None = None
) -> Ed25519PrivateKey:
    """Load the private key at ``private_path``, creating it (mode 0600) if missing, and return it.

    The public half is kept at ``public_path`` (default: ``<private_path>.pub``), written if missing and
    checked against the private key if present. Safe against concurrent callers: one creates the key and
    the others load it.
    """
    private_path = Path(private_path)
    public = Path(public_path) if public_path is not None else public_key_path_for(private_path)
    if not private_path.exists():
        key = generate_private_key()
        try:
            _write_new_file(private_path, private_key_to_pem(key), 0o600)
        except BadInput:
            if not private_path.exists():
                raise
            # Another process created it between our check and our link: use theirs.
    key = load_private_key(private_path)
    if public.exists():
        existing = load_public_key(public)
        if key_id(existing) != key_id(key):
            raise BadInput(
                MSG_KEY_MISMATCH.format(
                    public=public, private=private_path, got=key_id(existing), want=key_id(key)
                )
            )
    else:
        with contextlib.suppress(BadInput):  # lost a race to write the same public key: fine
            _write_new_file(public, public_key_to_pem(key), 0o644)
    return key


# -- signatures ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Signature:
    """A detached signature: which algorithm, which key, and the base64 signature value."""

    algorithm: str
    key_id: str
    value: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> Signature:
        fields = ("algorithm", "key_id", "value")
        if (
            not isinstance(data, dict)
            or set(data) != set(fields)
            or not all(isinstance(data[f], str) for f in fields)
        ):
            got = sorted(data) if isinstance(data, dict) else type(data).__name__
            raise BadInput(MSG_SIGNATURE_MALFORMED.format(got=got))
        return cls(algorithm=data["algorithm"], key_id=data["key_id"], value=data["value"])


def sign(private_key: Ed25519PrivateKey, payload: bytes) -> Signature:
    if not isinstance(private_key, _ed25519().Ed25519PrivateKey):
        raise BadInput(f"signing needs an Ed25519 private key. Got {type(private_key).__name__} instead.")
    if not isinstance(payload, bytes | bytearray):
        raise BadInput(f"the signed payload must be bytes. Got {type(payload).__name__} instead.")
    raw = private_key.sign(bytes(payload))
    return Signature(
        algorithm=ALGORITHM, key_id=key_id(private_key), value=base64.b64encode(raw).decode("ascii")
    )


def _decode_signature_value(value: str) -> bytes | None:
    try:
        raw = base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return None
    # Exactly one encoding is accepted, so a signature string cannot be varied while still verifying.
    if len(raw) != _SIGNATURE_BYTES or base64.b64encode(raw).decode("ascii") != value:
        return None
    return raw


def verify(public_key: Ed25519PublicKey, payload: bytes, signature: Signature) -> bool:
    """True iff ``signature`` is a valid Ed25519 signature of ``payload`` by ``public_key``.

    False (never an exception) on a key-id mismatch, another algorithm, malformed base64, a wrong-length
    value, a bad signature, or arguments of the wrong type.
    """
    try:
        ed = _ed25519()
        if isinstance(public_key, ed.Ed25519PrivateKey):
            public_key = public_key.public_key()
        if not isinstance(public_key, ed.Ed25519PublicKey):
            return False
        if isinstance(signature, dict):
            signature = Signature.from_dict(signature)
        if not isinstance(signature, Signature) or not isinstance(payload, bytes | bytearray):
            return False
        if signature.algorithm != ALGORITHM or not isinstance(signature.value, str):
            return False
        if signature.key_id != key_id(public_key):
            return False
        raw = _decode_signature_value(signature.value)
        if raw is None:
            return False
        from cryptography.exceptions import InvalidSignature

        try:
            public_key.verify(raw, bytes(payload))
        except InvalidSignature:
            return False
        return True
    except Exception:
        # A verifier answers yes or no; malformed input of any kind is "no".
        return False
