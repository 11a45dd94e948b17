"""Keys, signatures and their verification: Ed25519 (default) or SM2 with SM3; the suite is recorded with
every key (its id's prefix) and every signature.

The algorithms live in ``modelreg.suites`` (standard library + ``cryptography``, so the standalone pack
verifier can carry them); this module adds key files: creating them safely and keeping a pair together.
``cryptography`` is imported on first use, not at import time: the CLI's start-up path imports this
module for its types and constants only.

Key files are PEM: PKCS#8 (unencrypted) for private keys, SubjectPublicKeyInfo for public keys. A key is
named by its ``key_id``: ``"ed25519:" + the first 16 hex digits of SHA-256(raw 32-byte public key)``, or
``"sm2:" + the first 16 hex digits of SM3(0x04 ‖ x ‖ y)``.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from modelreg.errors import BadInput
from modelreg.suites import (
    SUITE_ED25519,
    SUITE_SM2,
    SUITES,
    Signature,
    load_private_key,
    load_public_key,
    parse_suite,
    private_key_to_pem,
    public_key_to_pem,
    suite_of_key,
    suite_of_key_id,
)
from modelreg.suites import generate_private_key as _generate
from modelreg.suites import key_id_of as key_id
from modelreg.suites import suite_sign as sign
from modelreg.suites import suite_verify as verify

__all__ = [
    "ALGORITHM",
    "SUITES",
    "SUITE_ED25519",
    "SUITE_SM2",
    "Signature",
    "ensure_key",
    "generate_private_key",
    "key_id",
    "load_private_key",
    "load_public_key",
    "parse_suite",
    "private_key_to_pem",
    "public_key_path_for",
    "public_key_to_pem",
    "sign",
    "suite_of_key",
    "suite_of_key_id",
    "verify",
    "write_key_pair",
]

ALGORITHM = SUITE_ED25519  # the default suite's id (what every signature carried before SM2)
KEY_ID_PREFIX = "ed25519:"
MSG_KEY_EXISTS = "refusing to overwrite the existing key file {path}. Move it away first, or keep using it."
MSG_KEY_MISMATCH = "public key {public} does not belong to private key {private} (key ids {got} and {want})."
MSG_KEY_SUITE = (
    "{path} holds a {got} key but suite {want} was asked for: one key never serves two suites. "
    "Use another key file for {want}, or keep the {got} suite."
)


def generate_private_key(suite: str = SUITE_ED25519) -> Any:
    return _generate(suite)


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
    private_path: str | os.PathLike[str],
    public_path: str | os.PathLike[str],
    *,
    suite: str = SUITE_ED25519,
) -> Any:
    """Generate a key pair of ``suite``; private file mode 0600, public 0644. Refuses (BadInput) if either
    exists."""
    private_path, public_path = Path(private_path), Path(public_path)
    for path in (private_path, public_path):
        if path.exists():
            raise BadInput(MSG_KEY_EXISTS.format(path=path))
    key = generate_private_key(suite)
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
    private_path: str | os.PathLike[str],
    public_path: str | os.PathLike[str] | None = None,
    *,
    suite: str | None = None,
) -> Any:
    """Load the private key at ``private_path``, creating it (mode 0600) if missing, and return it.

    The public half is kept at ``public_path`` (default: ``<private_path>.pub``), written if missing and
    checked against the private key if present. Safe against concurrent callers: one creates the key and
    the others load it. A new key is of ``suite`` (default Ed25519); an existing key of another suite than
    the one given is refused, never silently used.
    """
    private_path = Path(private_path)
    public = Path(public_path) if public_path is not None else public_key_path_for(private_path)
    if not private_path.exists():
        key = generate_private_key(suite or SUITE_ED25519)
        try:
            _write_new_file(private_path, private_key_to_pem(key), 0o600)
        except BadInput:
            if not private_path.exists():
                raise
            # Another process created it between our check and our link: use theirs.
    key = load_private_key(private_path)
    if suite is not None and suite_of_key(key) != parse_suite(suite):
        raise BadInput(
            MSG_KEY_SUITE.format(path=private_path, got=suite_of_key(key), want=parse_suite(suite))
        )
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
