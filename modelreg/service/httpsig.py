"""HTTP Message Signatures (RFC 9421), the subset modelreg's CLI and machine users sign every request with.

Covered components, in this order: ``"@method" "@target-uri" "content-digest"``; parameters ``created``
(Unix seconds), ``nonce`` (random, at most 200 characters), ``keyid`` (the modelreg key id of the user's
registered key, ``ed25519:…``) and ``alg="ed25519"``. ``Content-Digest`` is RFC 9530 ``sha-256`` over the
exact body bytes (the empty body too). The label is ``sig1``::

    Content-Digest: sha-256=:<base64 sha-256 of body>:
    Signature-Input: sig1=("@method" "@target-uri" "content-digest");created=1767441600;nonce="…";keyid="ed25519:…";alg="ed25519"
    Signature: sig1=:<base64 Ed25519 signature of the signature base>:

The signature base is RFC 9421 section 2.5: one line per component, ``"<name>": <value>``, then the line
``"@signature-params": <the Signature-Input value after "sig1=">``, joined with ``\\n``. The server accepts a
``created`` within ±``WINDOW_SECONDS`` of its clock and each (keyid, nonce) once (a database table, so a
replay is refused across restarts and workers). Standard library + ``cryptography`` only: both the CLI and
the service import this.

A data upload is too large to hold in memory: the client computes its ``Content-Digest`` by reading the file
once (``file_digest``) and then streams it; the server checks the signature over that claimed digest before
the body arrives (``verify`` with ``body=None``) and the bytes against it as they are written
(``digest_value``), and keeps the file only if they match.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass

from modelreg.errors import AuthenticationFailed

LABEL = "sig1"
COMPONENTS = ("@method", "@target-uri", "content-digest")
ALG = "ed25519"
WINDOW_SECONDS = 300

_INPUT = re.compile(
    r'^(?P<label>[a-z0-9_-]+)=\((?P<components>(?:"[^"]+"\s*)*)\)(?P<params>(?:;[a-z]+=(?:"[^"]*"|\d+))*)$'
)
_PARAM = re.compile(r';([a-z]+)=("([^"]*)"|\d+)')
_SIG = re.compile(r"^(?P<label>[a-z0-9_-]+)=:(?P<b64>[A-Za-z0-9+/=]+):$")


CHUNK = 1_048_576
_DIGEST = re.compile(r"^sha-256=:([A-Za-z0-9+/]{43}=):$")


def _digest_text(raw: bytes) -> str:
    return "sha-256=:" + base64.b64encode(raw).decode("ascii") + ":"


def content_digest(body: bytes) -> str:
    return _digest_text(hashlib.sha256(body).digest())


def file_digest(path) -> str:
    """The ``Content-Digest`` of a file's bytes, read in chunks (never the whole file in memory)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
    return _digest_text(h.digest())


def digest_value(header: str | None) -> bytes | None:
    """The 32 sha-256 bytes a ``Content-Digest: sha-256=:…:`` header names, or None if it names none."""
    m = _DIGEST.match((header or "").strip())
    if m is None:
        return None
    raw = base64.b64decode(m.group(1))
    return raw if len(raw) == 32 else None


def _params_text(created: int, nonce: str, keyid: str) -> str:
    comps = " ".join(f'"{c}"' for c in COMPONENTS)
    return f'({comps});created={created};nonce="{nonce}";keyid="{keyid}";alg="{ALG}"'


def signature_base(method: str, target_uri: str, digest: str, params_text: str) -> bytes:
    lines = [
        f'"@method": {method.upper()}',
        f'"@target-uri": {target_uri}',
        f'"content-digest": {digest}',
        f'"@signature-params": {params_text}',
    ]
    return "\n".join(lines).encode("utf-8")


def sign_request(
    private_key,
    key_id: str,
    method: str,
    target_uri: str,
    body: bytes,
    *,
    created: int,
    nonce: str | None = None,
    digest: str | None = None,
) -> dict[str, str]:
    """The three headers that sign a request (Ed25519 keys only). ``digest``: the body's Content-Digest
    computed beforehand (``file_digest`` of a streamed upload); then ``body`` is not read."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    if not isinstance(private_key, Ed25519PrivateKey):
        raise AuthenticationFailed(
            "request signatures need an Ed25519 key; SM2 keys sign records but not service requests"
        )
    nonce = nonce or secrets.token_urlsafe(18)
    digest = digest or content_digest(body)
    params = _params_text(created, nonce, key_id)
    sig = private_key.sign(signature_base(method, target_uri, digest, params))
    return {
        "Content-Digest": digest,
        "Signature-Input": f"{LABEL}={params}",
        "Signature": f"{LABEL}=:{base64.b64encode(sig).decode('ascii')}:",
    }


@dataclass(frozen=True)
class SignedRequest:
    """What a request's signature headers claim, parsed (not yet verified)."""

    created: int
    nonce: str
    keyid: str
    params_text: str
    signature: bytes


def parse(signature_input: str, signature: str) -> SignedRequest:
    m = _INPUT.match(signature_input.strip())
    if m is None or m["label"] != LABEL:
        raise AuthenticationFailed(f"Signature-Input must be {LABEL}=(...);params as RFC 9421 describes")
    components = tuple(re.findall(r'"([^"]+)"', m["components"]))
    if components != COMPONENTS:
        raise AuthenticationFailed(
            f"the signature must cover {' '.join(COMPONENTS)}. Got {' '.join(components) or '(nothing)'} instead."
        )
    params: dict[str, str] = {}
    for name, raw, quoted in _PARAM.findall(m["params"]):
        if name in params:
            raise AuthenticationFailed(f"signature parameter {name} given twice")
        params[name] = quoted if raw.startswith('"') else raw
    for need in ("created", "nonce", "keyid", "alg"):
        if need not in params:
            raise AuthenticationFailed(f"the signature parameters must include {need}")
    if params["alg"] != ALG:
        raise AuthenticationFailed(f'alg must be "{ALG}". Got {params["alg"]!r} instead.')
    if not params["created"].isdigit():
        raise AuthenticationFailed("created must be Unix seconds")
    if not 8 <= len(params["nonce"]) <= 200:
        raise AuthenticationFailed("nonce must be 8 to 200 characters")
    s = _SIG.match(signature.strip())
    if s is None or s["label"] != LABEL:
        raise AuthenticationFailed(f"Signature must be {LABEL}=:<base64>:")
    try:
        raw_sig = base64.b64decode(s["b64"], validate=True)
    except ValueError:
        raise AuthenticationFailed("Signature is not valid base64") from None
    return SignedRequest(
        created=int(params["created"]),
        nonce=params["nonce"],
        keyid=params["keyid"],
        params_text=signature_input.strip()[len(LABEL) + 1 :],
        signature=raw_sig,
    )


def verify(
    parsed: SignedRequest,
    public_pem: str,
    method: str,
    target_uri: str,
    digest_header: str | None,
    body: bytes | None,
) -> None:
    """Raise AuthenticationFailed unless the body matches its digest and the signature verifies.

    ``body=None``: the body is streamed after this check (a data upload); the signature is verified over the
    digest the request claims, which must be a well-formed sha-256 ``Content-Digest``, and the caller must
    compare the bytes it receives with ``digest_value(digest_header)`` before it keeps or uses any of them."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    if body is None:
        if digest_value(digest_header) is None:
            raise AuthenticationFailed("a streamed upload needs a Content-Digest: sha-256=:<base64>: header")
        expected = digest_header.strip()  # type: ignore[union-attr]
    else:
        expected = content_digest(body)
    if digest_header is None or digest_header.strip() != expected:
        raise AuthenticationFailed("Content-Digest does not match the request body")
    key = load_pem_public_key(public_pem.encode("utf-8"))
    if not isinstance(key, Ed25519PublicKey):
        raise AuthenticationFailed("the registered key is not an Ed25519 key: it cannot sign requests")
    try:
        key.verify(parsed.signature, signature_base(method, target_uri, expected, parsed.params_text))
    except InvalidSignature:
        raise AuthenticationFailed("the request signature does not verify with the registered key") from None
