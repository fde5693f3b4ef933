"""Who is asking: a bearer JWT, or an operator API key plus the viewer's user id.

::

    AuthError                 reason: one of AuthReason, never the credential itself
      missing_credentials     nothing presented that this gateway is configured to check
      invalid_token           bad signature, algorithm, header, claims, or no key to check it
      expired_token           ``exp`` has passed (beyond the leeway)
      invalid_api_key         the key matches none of the configured ones
      invalid_user_id         an API-key call without a usable ``X-User-Id``

JWTs: the algorithm is pinned by the key that checks it, never taken from the token:
HS256 only with the shared secret, RS256/ES256 only with the configured public key or
a JWKS key of that type. ``alg: none``, HS256 "signed" with the public key, and RS/ES
tokens offered to an HS-only configuration all fail. ``exp`` and ``sub`` are required;
``exp``/``nbf``/``iat`` are checked against the injected clock with the leeway;
``iss``/``aud`` when configured; with a maximum age, a token living longer (``exp - iat``,
or ``exp - now`` beyond the leeway) is ``invalid_token``. ``sub`` (1-256 characters, no
control or format characters) becomes the principal's user id.

JWKS: fetched with the given httpx client (one deadline for the whole fetch, at most
``JWKS_MAX_BYTES`` read), cached for ``JWKS_TTL_S``, refetched on an unknown ``kid`` at
most once per ``JWKS_MIN_REFETCH_S`` (a flood of made-up ``kid`` values costs the JWKS
host one request per interval). A failed fetch keeps the keys already known, for at
most ``AUTH_JWKS_MAX_STALE_S`` after the last good fetch: past that, no JWKS key checks
anything (a key the issuer revoked while its JWKS URL was down is not trusted for
ever), and unverifiable tokens are ``invalid_token``. Failures are counted by reason
in ``gateway_jwks_fetch_failures_total``; ``gateway_jwks_age_seconds`` is the keys' age.

API keys: the presented key is compared, in constant time, with every configured key
(SHA-256 digests, so lengths leak nothing either), with no early exit.

Credentials of a kind that is not configured are ignored: with neither JWT keys nor API
keys configured, every call is ``missing_credentials``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import time
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Literal

import httpx
import jwt
import orjson
import structlog
from jwt.types import Options
from pydantic import SecretStr

from app.identity.keys import VerificationKey, jwk_key, load_public_key
from app.observability.metrics import Metrics

log = structlog.get_logger(__name__)

JWKS_TTL_S = 600.0
JWKS_MIN_REFETCH_S = 30.0
JWKS_FETCH_TIMEOUT_S = 5.0
JWKS_MAX_BYTES = 256 * 1024  # a JWKS of dozens of RSA-4096 keys is well under this
JWKS_MAX_STALE_S = 3600.0
MIN_HMAC_KEY_BYTES = 32  # RFC 7518 section 3.2: at least the hash size
MAX_TOKEN_CHARS = 8192
MAX_SUB_CHARS = 256

_USER_ID = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]{0,126}[\x21-\x7e])?")


class AuthReason(StrEnum):
    MISSING_CREDENTIALS = "missing_credentials"
    INVALID_TOKEN = "invalid_token"  # noqa: S105 - a reason code, not a secret
    EXPIRED_TOKEN = "expired_token"  # noqa: S105
    INVALID_API_KEY = "invalid_api_key"
    INVALID_USER_ID = "invalid_user_id"


_MESSAGES = {
    AuthReason.MISSING_CREDENTIALS: "no credentials were presented",
    AuthReason.INVALID_TOKEN: "the bearer token could not be verified",
    AuthReason.EXPIRED_TOKEN: "the bearer token has expired",
    AuthReason.INVALID_API_KEY: "the API key is not valid",
    AuthReason.INVALID_USER_ID: "X-User-Id must be 1-128 printable ASCII characters",
}


class AuthError(Exception):
    """Authentication failed; ``reason`` is stable, the message never holds a credential.

    ``detail`` is a short diagnostic for logs (an exception class name or a fixed word).
    """

    def __init__(self, reason: AuthReason, detail: str = "") -> None:
        super().__init__(_MESSAGES[reason])
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: str
    via: Literal["jwt", "api_key"]
    # A JWT's verified claims (the watch rules read them); None for an API key.
    claims: Mapping[str, Any] | None = field(default=None, compare=False, hash=False)


def _valid_sub(sub: object) -> str | None:
    if not isinstance(sub, str) or not 1 <= len(sub) <= MAX_SUB_CHARS:
        return None
    if any(unicodedata.category(char)[0] == "C" for char in sub):
        return None
    return sub


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


class Authenticator:
    def __init__(
        self,
        *,
        jwt_secret: SecretStr | None,
        jwt_public_key: SecretStr | None,
        jwks_url: str | None,
        issuer: str | None,
        audience: str | None,
        leeway_s: float,
        api_keys: Sequence[SecretStr],
        http: httpx.AsyncClient | None,
        clock: Callable[[], float] = time.time,
        jwks_max_stale_s: float = JWKS_MAX_STALE_S,
        metrics: Metrics | None = None,
        max_age_s: float | None = None,
    ) -> None:
        self._hmac_key: VerificationKey | None = None
        if jwt_secret is not None and jwt_secret.get_secret_value():
            secret = jwt_secret.get_secret_value().encode()
            if len(secret) < MIN_HMAC_KEY_BYTES:
                raise ValueError(
                    f"AUTH_JWT_SECRET must be at least {MIN_HMAC_KEY_BYTES} bytes for HS256"
                )
            self._hmac_key = VerificationKey(algorithm="HS256", key=secret)
        self._public_key: VerificationKey | None = None
        if jwt_public_key is not None and jwt_public_key.get_secret_value().strip():
            self._public_key = load_public_key(jwt_public_key.get_secret_value())
        if jwks_url is not None and http is None:
            raise ValueError("AUTH_JWKS_URL needs an HTTP client")
        self._jwks_url = jwks_url
        self._http = http
        self._issuer = issuer
        self._audience = audience
        self._leeway = leeway_s
        self._max_age = max_age_s
        self._clock = clock
        self._api_key_digests = tuple(
            hashlib.sha256(key.get_secret_value().encode()).digest()
            for key in api_keys
            if key.get_secret_value()
        )
        self._jwks: tuple[VerificationKey, ...] = ()
        self._jwks_fetched_at: float | None = None
        self._jwks_attempted_at: float | None = None
        self._jwks_lock = asyncio.Lock()
        self._jwks_max_stale_s = jwks_max_stale_s
        self._metrics = metrics

    @property
    def jwt_enabled(self) -> bool:
        return (
            self._hmac_key is not None or self._public_key is not None or self._jwks_url is not None
        )

    @property
    def api_keys_enabled(self) -> bool:
        return bool(self._api_key_digests)

    async def authenticate(
        self, *, authorization: str | None, api_key: str | None, user_id: str | None
    ) -> Principal:
        """The principal behind the request's credentials, or ``AuthError``."""
        scheme, _, token = (authorization or "").strip().partition(" ")
        bearer = scheme.lower() == "bearer"
        if bearer and self.jwt_enabled:
            return await self._from_jwt(token.strip())
        if api_key and self.api_keys_enabled:
            return self._from_api_key(api_key, user_id)
        if scheme and self.jwt_enabled:
            raise AuthError(AuthReason.INVALID_TOKEN, "scheme")
        raise AuthError(AuthReason.MISSING_CREDENTIALS)

    # --- API keys -------------------------------------------------------------

    def _from_api_key(self, api_key: str, user_id: str | None) -> Principal:
        presented = hashlib.sha256(api_key.encode("utf-8", "surrogatepass")).digest()
        matched = False
        for digest in self._api_key_digests:  # every key, no early exit
            matched |= hmac.compare_digest(presented, digest)
        if not matched:
            raise AuthError(AuthReason.INVALID_API_KEY)
        if user_id is None or not _USER_ID.fullmatch(user_id):
            raise AuthError(AuthReason.INVALID_USER_ID)
        return Principal(user_id=user_id, via="api_key")

    # --- JWTs -----------------------------------------------------------------

    async def _from_jwt(self, token: str) -> Principal:
        if not token or len(token) > MAX_TOKEN_CHARS:
            raise AuthError(AuthReason.INVALID_TOKEN, "size")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise AuthError(AuthReason.INVALID_TOKEN, type(exc).__name__) from None
        keys = await self._keys_for(header.get("alg"), header.get("kid"))
        if not keys:
            raise AuthError(AuthReason.INVALID_TOKEN, "no_key")
        claims = self._decode(token, keys)
        self._check_times(claims)
        sub = _valid_sub(claims.get("sub"))
        if sub is None:
            raise AuthError(AuthReason.INVALID_TOKEN, "sub")
        return Principal(user_id=sub, via="jwt", claims=MappingProxyType(claims))

    def _decode(self, token: str, keys: Sequence[VerificationKey]) -> dict[str, Any]:
        options: Options = {
            "require": ["exp", "sub"],
            # Times are checked against the injected clock in _check_times.
            "verify_exp": False,
            "verify_nbf": False,
            "verify_iat": False,
            "verify_iss": self._issuer is not None,
            "verify_aud": self._audience is not None,
        }
        for key in keys:
            try:
                return jwt.decode(
                    token,
                    key.key,
                    algorithms=[key.algorithm],
                    options=options,
                    issuer=self._issuer,
                    audience=self._audience,
                )
            except jwt.InvalidSignatureError:
                continue  # maybe another key of the same type
            except jwt.PyJWTError as exc:
                raise AuthError(AuthReason.INVALID_TOKEN, type(exc).__name__) from None
        raise AuthError(AuthReason.INVALID_TOKEN, "InvalidSignatureError")

    def _check_times(self, claims: dict[str, Any]) -> None:
        now = self._clock()
        exp = _number(claims.get("exp"))
        if exp is None:
            raise AuthError(AuthReason.INVALID_TOKEN, "exp")
        if exp <= now - self._leeway:
            raise AuthError(AuthReason.EXPIRED_TOKEN)
        if self._max_age is not None:
            iat = _number(claims.get("iat"))
            too_long = iat is not None and exp - iat > self._max_age
            if too_long or exp - now > self._max_age + self._leeway:
                raise AuthError(AuthReason.INVALID_TOKEN, "lifetime")
        for claim in ("nbf", "iat"):
            if claim in claims:
                moment = _number(claims[claim])
                if moment is None or moment > now + self._leeway:
                    raise AuthError(AuthReason.INVALID_TOKEN, claim)

    async def _keys_for(self, alg: object, kid: object) -> list[VerificationKey]:
        """The keys that may check a token claiming ``alg``; each pins its own algorithm."""
        keys = [
            key
            for key in (self._hmac_key, self._public_key)
            if key is not None and key.algorithm == alg
        ]
        if self._jwks_url is not None and alg in ("RS256", "ES256"):
            keys.extend(await self._jwks_keys(alg, kid if isinstance(kid, str) else None))
        return keys

    # --- JWKS -----------------------------------------------------------------

    def _jwks_match(self, alg: object, kid: str | None) -> list[VerificationKey]:
        fetched = self._jwks_fetched_at
        if fetched is None or self._clock() - fetched > self._jwks_max_stale_s:
            return []  # too long without a good fetch: the keys may have been revoked
        return [
            key for key in self._jwks if key.algorithm == alg and (kid is None or key.kid == kid)
        ]

    def _jwks_fresh(self) -> bool:
        fetched = self._jwks_fetched_at
        return fetched is not None and self._clock() - fetched < JWKS_TTL_S

    async def _jwks_keys(self, alg: object, kid: str | None) -> list[VerificationKey]:
        if self._jwks_fresh() and (matches := self._jwks_match(alg, kid)):
            return matches
        async with self._jwks_lock:  # one fetch at a time; the others reuse its answer
            if not self._jwks_fresh():
                await self._refresh_jwks()
            matches = self._jwks_match(alg, kid)
            if not matches and kid is not None:  # an unknown kid: keys may have rotated
                await self._refresh_jwks()
                matches = self._jwks_match(alg, kid)
        return matches

    async def _refresh_jwks(self) -> None:
        now = self._clock()
        attempted = self._jwks_attempted_at
        if attempted is not None and now - attempted < JWKS_MIN_REFETCH_S:
            return
        self._jwks_attempted_at = now
        try:
            document = await self._fetch_jwks()
        except _JwksFailed as exc:
            self._jwks_failed(exc.reason)
            return
        members = document.get("keys") if isinstance(document, dict) else None
        keys = tuple(
            key for key in map(jwk_key, members if isinstance(members, list) else []) if key
        )
        if not keys:
            self._jwks_failed("no_keys")
            return
        self._jwks = keys
        self._jwks_fetched_at = now
        if self._metrics is not None:
            self._metrics.jwks_age.set(0)
        log.info("jwks_fetched", keys=len(keys))

    async def _fetch_jwks(self) -> object:
        assert self._http is not None
        assert self._jwks_url is not None
        try:
            async with asyncio.timeout(JWKS_FETCH_TIMEOUT_S):
                async with self._http.stream(
                    "GET", self._jwks_url, headers={"Accept": "application/json"}
                ) as response:
                    if response.status_code != 200:
                        raise _JwksFailed("status")
                    declared = response.headers.get("content-length", "")
                    if declared.isdigit() and int(declared) > JWKS_MAX_BYTES:
                        raise _JwksFailed("too_large")
                    body = bytearray()
                    async for chunk in response.aiter_bytes():
                        body += chunk
                        if len(body) > JWKS_MAX_BYTES:
                            raise _JwksFailed("too_large")
        except (TimeoutError, httpx.HTTPError):
            raise _JwksFailed("error") from None
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            raise _JwksFailed("bad_answer") from None

    def _jwks_failed(self, reason: str) -> None:
        fetched = self._jwks_fetched_at
        age = None if fetched is None else round(self._clock() - fetched, 1)
        log.warning("jwks_fetch_failed", error=reason, keys_age_s=age)
        if self._metrics is not None:
            self._metrics.jwks_fetch_failures.labels(reason).inc()
            if age is not None:
                self._metrics.jwks_age.set(age)


class _JwksFailed(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
