"""Who is calling: established by the service, never claimed.

Two ways in, both ending in a registered registry user:

* ``Authorization: Bearer <JWT>`` from the bank's OIDC issuer: signature checked against the issuer's JWKS
  (fetched, cached, fetched again when a token names an unknown ``kid``, at most once per
  ``JWKS_MIN_REFRESH`` seconds), ``iss``, ``aud``, ``exp``/``nbf`` with ``LEEWAY`` seconds, and an algorithm
  allow-list (``none`` and every HMAC algorithm are refused: with a public JWKS an HS256 token "signed" with
  the public key would otherwise verify). The subject claim names the registry user; the roles claim, mapped
  to modelreg roles, is intersected with the roles the registry records for that user, so the registry's
  audited role assignments stay the ceiling and the IdP can only narrow them.
* RFC 9421 request signatures with the user's registered Ed25519 key (``modelreg.service.httpsig``): the
  effective roles are the registry's roles for the key's owner.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from modelreg import clock
from modelreg.errors import AuthenticationFailed, ConfigError, PermissionDenied
from modelreg.settings import Settings

ALLOWED_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA")
LEEWAY = 30  # seconds of clock skew accepted on exp / nbf / iat
JWKS_MIN_REFRESH = 10.0  # an unknown kid triggers at most one JWKS fetch per this many seconds
JWKS_MAX_AGE = 300.0


@dataclass(frozen=True)
class Identity:
    """A caller the service authenticated: the registry user and the roles they may use in this request."""

    user: str
    roles: frozenset[str]
    method: str  # "oidc" | "signature"
    key_id: str | None = None


@dataclass(frozen=True)
class OidcConfig:
    issuer: str
    audience: str
    jwks_url: str
    user_claim: str = "preferred_username"
    roles_claim: str = "groups"
    role_map: tuple[tuple[str, str], ...] = ()
    algorithms: tuple[str, ...] = ALLOWED_ALGORITHMS


@dataclass(frozen=True)
class AuthConfig:
    oidc: OidcConfig | None = None
    signatures: bool = True
    window_seconds: int = 300
    max_body_bytes: int = 1_048_576
    max_upload_bytes: int = (
        256 * 1_048_576
    )  # data files (POST /api/v1/uploads) for attach-data and evaluations
    failure_limit: int = 20  # authentication failures per client address ...
    failure_period: float = 60.0  # ... in this many seconds, then 429 until the window slides

    @classmethod
    def from_settings(cls, settings: Settings, **overrides) -> AuthConfig:
        given = [settings.oidc_issuer, settings.oidc_audience, settings.oidc_jwks_url]
        oidc = None
        if any(given):
            if not all(given):
                raise ConfigError(
                    "OIDC needs all of MODELREG_OIDC_ISSUER, MODELREG_OIDC_AUDIENCE and MODELREG_OIDC_JWKS_URL"
                )
            oidc = OidcConfig(
                issuer=settings.oidc_issuer,  # type: ignore[arg-type]
                audience=settings.oidc_audience,  # type: ignore[arg-type]
                jwks_url=settings.oidc_jwks_url,  # type: ignore[arg-type]
                user_claim=settings.oidc_user_claim,
                roles_claim=settings.oidc_roles_claim,
                role_map=settings.oidc_role_map,
            )
        return cls(oidc=oidc, **overrides)


def _fetch_json(url: str, timeout: float = 5.0) -> dict:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return json.loads(resp.read(1_000_000))


class JwksCache:
    """The issuer's signing keys by kid; thread-safe; refetched when stale or when a kid is unknown."""

    def __init__(self, url: str, fetch: Callable[[str], dict] = _fetch_json) -> None:
        self.url = url
        self._fetch = fetch
        self._keys: dict[str, object] = {}
        self._fetched_at = 0.0
        self._lock = threading.Lock()
        self.fetches = 0

    def _refresh(self) -> None:
        import jwt

        try:
            doc = self._fetch(self.url)
        except Exception as exc:
            raise AuthenticationFailed(
                f"the issuer's JWKS at {self.url} could not be fetched: {type(exc).__name__}"
            ) from None
        keys: dict[str, object] = {}
        for jwk in doc.get("keys", []) if isinstance(doc, dict) else []:
            if not isinstance(jwk, dict) or "kid" not in jwk or jwk.get("use", "sig") != "sig":
                continue
            try:
                keys[str(jwk["kid"])] = jwt.PyJWK(jwk)
            except Exception:  # a key type this pyjwt cannot use (or an HMAC "oct" key): never a verifier
                continue
        self._keys = keys
        self._fetched_at = time.monotonic()
        self.fetches += 1

    def key(self, kid: str):
        with self._lock:
            now = time.monotonic()
            if (
                not self._fetched_at
                or now - self._fetched_at > JWKS_MAX_AGE
                or (kid not in self._keys and now - self._fetched_at > JWKS_MIN_REFRESH)
            ):
                self._refresh()
            found = self._keys.get(kid)
        if found is None:
            raise AuthenticationFailed(f"the token's key id {kid!r} is not in the issuer's JWKS")
        return found


class OidcVerifier:
    """Checks a bearer token; usable as the web view's ``verify_token(token) -> (subject, roles)``."""

    def __init__(self, config: OidcConfig, lookup_roles: Callable[[str], frozenset[str] | None]) -> None:
        self.config = config
        self.jwks = JwksCache(config.jwks_url)
        self._lookup_roles = lookup_roles

    def claims(self, token: str) -> dict:
        import jwt

        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthenticationFailed("the bearer token is not a JWT") from None
        alg = header.get("alg")
        if alg not in self.config.algorithms:
            raise AuthenticationFailed(
                f"token algorithm {alg!r} is not allowed (allowed: {', '.join(self.config.algorithms)})"
            )
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise AuthenticationFailed("the token names no key id (kid)")
        jwk = self.jwks.key(kid)
        try:
            return jwt.decode(
                token,
                key=jwk.key,
                algorithms=[alg],
                audience=self.config.audience,
                issuer=self.config.issuer,
                leeway=LEEWAY,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise AuthenticationFailed("the token has expired") from None
        except jwt.InvalidAudienceError:
            raise AuthenticationFailed("the token is not for this service (audience)") from None
        except jwt.InvalidIssuerError:
            raise AuthenticationFailed("the token is from another issuer") from None
        except jwt.ImmatureSignatureError:
            raise AuthenticationFailed("the token is not valid yet (nbf/iat)") from None
        except jwt.PyJWTError as exc:
            raise AuthenticationFailed(f"the token does not verify: {type(exc).__name__}") from None

    def mapped_roles(self, claims: dict) -> frozenset[str]:
        from modelreg.domain.roles import Role

        raw = claims.get(self.config.roles_claim, [])
        groups = (
            raw.split() if isinstance(raw, str) else [str(g) for g in raw] if isinstance(raw, list) else []
        )
        if self.config.role_map:
            mapping: dict[str, set[str]] = {}
            for group, role in self.config.role_map:
                mapping.setdefault(group, set()).add(role)
            return frozenset(r for g in groups for r in mapping.get(g, ()))
        known = {r.value for r in Role}
        return frozenset(g for g in groups if g in known)

    def identity(self, token: str) -> Identity:
        claims = self.claims(token)
        subject = claims.get(self.config.user_claim)
        if not isinstance(subject, str) or not subject:
            raise AuthenticationFailed(f"the token has no {self.config.user_claim!r} claim naming the user")
        recorded = self._lookup_roles(subject)
        if recorded is None:
            raise PermissionDenied(f"unknown user {subject!r}: not registered in this registry")
        return Identity(user=subject, roles=self.mapped_roles(claims) & recorded, method="oidc")

    def __call__(self, token: str) -> tuple[str, frozenset[str]]:
        ident = self.identity(token)
        return ident.user, ident.roles


@dataclass
class FailureLimiter:
    """Authentication failures per client address in a sliding window (per process)."""

    limit: int
    period: float
    _seen: dict[str, deque] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def retry_after(self, client: str) -> int | None:
        with self._lock:
            q = self._seen.get(client)
            now = time.monotonic()
            while q and now - q[0] > self.period:
                q.popleft()
            if q and len(q) >= self.limit:
                return max(1, int(self.period - (now - q[0])) + 1)
            return None

    def failed(self, client: str) -> None:
        with self._lock:
            self._seen.setdefault(client, deque()).append(time.monotonic())


class SecurityLogLimiter:
    """Authentication failures per client address in a sliding window, counted in the security log (the
    ``security_events`` table): every worker, process and restart of the service sees the same count, and the
    API and the web view's login share it (one address guessing tokens at either is the same attacker).

    The failures themselves are written by whoever refuses them (the API's error handler, the web login), so
    ``failed`` has nothing left to do. Same interface as ``FailureLimiter`` (API) and the web view's limiter."""

    def __init__(
        self,
        count: Callable[[str, datetime], tuple[int, datetime | None]],
        limit: int,
        period: float,
    ) -> None:
        self._count = count
        self.limit = limit
        self.period = period

    def retry_after(self, client: str) -> int | None:
        now = clock.now()
        seen, oldest = self._count(client, now - timedelta(seconds=self.period))
        if seen < self.limit or oldest is None:
            return None
        return max(1, int(self.period - (now - oldest).total_seconds()) + 1)

    def blocked(self, client: str) -> bool:
        return self.retry_after(client) is not None

    def failed(self, client: str) -> None:
        """Nothing to do: the refusal is already in the security log, which is the count."""


def check_window(created: int, window: int) -> None:
    skew = abs(clock.now().timestamp() - created)
    if skew > window:
        raise AuthenticationFailed(
            f"the signature was created {int(skew)} s away from the server's clock (window ±{window} s)"
        )
