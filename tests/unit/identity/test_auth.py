from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
import pytest
from pydantic import SecretStr
from structlog.testing import capture_logs

from app.identity.auth import Authenticator, AuthError, AuthReason, Principal
from tests.support.jwt_keys import (
    HS_SECRET,
    ec_keys,
    hs256_with_raw_key,
    rsa_keys,
    sign_hs256,
    unsigned_token,
)

NOW = 1_700_000_000.0
LEEWAY = 30.0
ISS = "https://idp.example"
AUD = "stream-gateway"
JWKS_URL = "https://idp.example/.well-known/jwks.json"
KEY_ONE = "op-key-one-7f3a9c2e5b1d4a6f8e0c"
KEY_TWO = "op-key-two-1b2c3d4e5f6a7b8c9d0e"
DROP = object()


class FakeClock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def claims(**changes: object) -> dict[str, Any]:
    base: dict[str, Any] = {"sub": "user-1", "exp": NOW + 300, "iat": NOW - 10, "iss": ISS}
    base["aud"] = AUD
    base.update(changes)
    return {key: value for key, value in base.items() if value is not DROP}


@dataclass
class JwksServer:
    """A JWKS endpoint behind httpx.MockTransport: counts fetches, can fail or rotate."""

    keys: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200
    body: bytes | None = None
    broken: bool = False
    fetches: int = 0

    def handler(self, request: httpx.Request) -> httpx.Response:
        assert str(request.url) == JWKS_URL
        self.fetches += 1
        if self.broken:
            raise httpx.ConnectError("connection refused", request=request)
        if self.body is not None:
            return httpx.Response(self.status, content=self.body)
        return httpx.Response(self.status, json={"keys": self.keys})


def default_jwks() -> list[dict[str, Any]]:
    return [rsa_keys("a").public_jwk("rsa-1"), ec_keys("a").public_jwk("ec-1")]


@pytest.fixture
def jwks() -> JwksServer:
    return JwksServer(keys=default_jwks())


@pytest.fixture
async def http(jwks: JwksServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(jwks.handler)) as client:
        yield client


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def configure(
    name: str, http: httpx.AsyncClient | None = None, clock: Callable[[], float] = lambda: NOW
) -> Authenticator:
    hs = {"jwt_secret": SecretStr(HS_SECRET), "issuer": ISS, "audience": AUD}
    rsa = {"jwt_public_key": SecretStr(rsa_keys("a").public_pem)}
    ec = {"jwt_public_key": SecretStr(ec_keys("a").public_pem)}
    jwks = {"jwks_url": JWKS_URL}
    keys = {"api_keys": [SecretStr(KEY_ONE), SecretStr(KEY_TWO)]}
    settings: dict[str, dict[str, Any]] = {
        "none": {},
        "hs": hs,
        "rsa": rsa,
        "ec": ec,
        "hs+rsa": {**hs, **rsa},
        "jwks": jwks,
        "keys": keys,
        "all": {**hs, **rsa, **jwks, **keys},
    }
    kwargs: dict[str, Any] = {
        "jwt_secret": None,
        "jwt_public_key": None,
        "jwks_url": None,
        "issuer": None,
        "audience": None,
        "leeway_s": LEEWAY,
        "api_keys": [],
        "http": http,
        "clock": clock,
    }
    kwargs.update(settings[name])
    return Authenticator(**kwargs)


def bearer(token: str) -> str:
    return f"Bearer {token}"


# Tokens are made lazily (the keys are generated on first use).
Make = Callable[[], str | None]

USER = Principal("user-1", "jwt")
VIEWER = Principal("viewer-42", "api_key")
R = AuthReason


@dataclass(frozen=True)
class Case:
    config: str
    authorization: Make = lambda: None
    api_key: str | None = None
    user_id: str | None = None
    expected: Principal | AuthReason = USER


def hs(**changes: object) -> Make:
    return lambda: bearer(sign_hs256(claims(**changes)))


def rs(name: str = "a", kid: str | None = None, **changes: object) -> Make:
    headers = {"kid": kid} if kid else None
    return lambda: bearer(rsa_keys(name).sign(claims(**changes), headers))


def es(name: str = "a", kid: str | None = None, **changes: object) -> Make:
    headers = {"kid": kid} if kid else None
    return lambda: bearer(ec_keys(name).sign(claims(**changes), headers))


def raw(value: str) -> Make:
    return lambda: value


CASES: dict[str, Case] = {
    # --- HS256 with the shared secret (issuer and audience configured) ---
    "hs-valid": Case("hs", hs()),
    "hs-lower-case-scheme": Case("hs", lambda: "bearer " + sign_hs256(claims())),
    "hs-wrong-secret": Case(
        "hs", lambda: bearer(sign_hs256(claims(), "another-secret-" * 4)), expected=R.INVALID_TOKEN
    ),
    "hs-tampered-payload": Case(
        "hs",
        lambda: bearer(
            sign_hs256(claims()).split(".")[0]
            + "."
            + sign_hs256(claims(sub="admin")).split(".")[1]
            + "."
            + sign_hs256(claims()).split(".")[2]
        ),
        expected=R.INVALID_TOKEN,
    ),
    "hs-expired": Case("hs", hs(exp=NOW - 31), expected=R.EXPIRED_TOKEN),
    "hs-expired-at-leeway-edge": Case("hs", hs(exp=NOW - LEEWAY), expected=R.EXPIRED_TOKEN),
    "hs-expired-within-leeway": Case("hs", hs(exp=NOW - 29)),
    "hs-no-exp": Case("hs", hs(exp=DROP), expected=R.INVALID_TOKEN),
    "hs-exp-not-a-number": Case("hs", hs(exp="tomorrow"), expected=R.INVALID_TOKEN),
    "hs-exp-boolean": Case("hs", hs(exp=True), expected=R.INVALID_TOKEN),
    "hs-nbf-future": Case("hs", hs(nbf=NOW + 60), expected=R.INVALID_TOKEN),
    "hs-nbf-within-leeway": Case("hs", hs(nbf=NOW + 20)),
    "hs-nbf-past": Case("hs", hs(nbf=NOW - 60)),
    "hs-iat-future": Case("hs", hs(iat=NOW + 120), expected=R.INVALID_TOKEN),
    "hs-iat-not-a-number": Case("hs", hs(iat="now"), expected=R.INVALID_TOKEN),
    "hs-wrong-iss": Case("hs", hs(iss="https://evil.example"), expected=R.INVALID_TOKEN),
    "hs-missing-iss": Case("hs", hs(iss=DROP), expected=R.INVALID_TOKEN),
    "hs-wrong-aud": Case("hs", hs(aud="someone-else"), expected=R.INVALID_TOKEN),
    "hs-missing-aud": Case("hs", hs(aud=DROP), expected=R.INVALID_TOKEN),
    "hs-aud-list-with-ours": Case("hs", hs(aud=["other", AUD])),
    "hs-missing-sub": Case("hs", hs(sub=DROP), expected=R.INVALID_TOKEN),
    "hs-empty-sub": Case("hs", hs(sub=""), expected=R.INVALID_TOKEN),
    "hs-numeric-sub": Case("hs", hs(sub=42), expected=R.INVALID_TOKEN),
    "hs-sub-256-chars": Case("hs", hs(sub="u" * 256), expected=Principal("u" * 256, "jwt")),
    "hs-sub-257-chars": Case("hs", hs(sub="u" * 257), expected=R.INVALID_TOKEN),
    "hs-sub-newline": Case("hs", hs(sub="user-1\nadmin"), expected=R.INVALID_TOKEN),
    "hs-sub-nul": Case("hs", hs(sub="user\x00"), expected=R.INVALID_TOKEN),
    "hs-sub-rtl-override": Case("hs", hs(sub="user\u202e1"), expected=R.INVALID_TOKEN),
    "hs-sub-unicode-ok": Case("hs", hs(sub="us\u00e9r"), expected=Principal("us\u00e9r", "jwt")),
    "hs-alg-none": Case("hs", lambda: bearer(unsigned_token(claims())), expected=R.INVALID_TOKEN),
    "hs-alg-none-capitalised": Case(
        "hs", lambda: bearer(unsigned_token(claims(), "None")), expected=R.INVALID_TOKEN
    ),
    "hs-hs512-not-pinned": Case(
        "hs",
        lambda: bearer(jwt.encode(claims(), HS_SECRET * 2, algorithm="HS512")),
        expected=R.INVALID_TOKEN,
    ),
    "hs-config-rs-token": Case("hs", rs(), expected=R.INVALID_TOKEN),
    "hs-config-es-token": Case("hs", es(), expected=R.INVALID_TOKEN),
    "hs-garbage-token": Case("hs", raw("Bearer not.a.jwt"), expected=R.INVALID_TOKEN),
    "hs-two-segments": Case("hs", raw("Bearer abc.def"), expected=R.INVALID_TOKEN),
    "hs-empty-bearer": Case("hs", raw("Bearer "), expected=R.INVALID_TOKEN),
    "hs-oversized-token": Case("hs", hs(pad="x" * 9000), expected=R.INVALID_TOKEN),
    "hs-basic-scheme": Case("hs", raw("Basic dXNlcjpwdw=="), expected=R.INVALID_TOKEN),
    "hs-no-credentials": Case("hs", expected=R.MISSING_CREDENTIALS),
    "hs-blank-authorization": Case("hs", raw("   "), expected=R.MISSING_CREDENTIALS),
    "hs-api-key-not-configured": Case(
        "hs", api_key=KEY_ONE, user_id="viewer-42", expected=R.MISSING_CREDENTIALS
    ),
    # --- RS256 with a configured public key (no issuer/audience configured) ---
    "rsa-valid": Case("rsa", rs()),
    "rsa-valid-aud-not-checked": Case("rsa", rs(aud="anyone")),
    "rsa-other-key": Case("rsa", rs("b"), expected=R.INVALID_TOKEN),
    "rsa-expired": Case("rsa", rs(exp=NOW - 3600), expected=R.EXPIRED_TOKEN),
    "rsa-hs256-signed-with-public-key": Case(
        "rsa",
        lambda: bearer(hs256_with_raw_key(claims(), rsa_keys("a").public_pem.encode())),
        expected=R.INVALID_TOKEN,
    ),
    "rsa-alg-none": Case("rsa", lambda: bearer(unsigned_token(claims())), expected=R.INVALID_TOKEN),
    "rsa-config-es-token": Case("rsa", es(), expected=R.INVALID_TOKEN),
    "rsa-config-hs-token": Case("rsa", hs(), expected=R.INVALID_TOKEN),
    # --- ES256 with a configured public key ---
    "ec-valid": Case("ec", es()),
    "ec-other-key": Case("ec", es("b"), expected=R.INVALID_TOKEN),
    "ec-config-rs-token": Case("ec", rs(), expected=R.INVALID_TOKEN),
    "ec-hs256-signed-with-public-key": Case(
        "ec",
        lambda: bearer(hs256_with_raw_key(claims(), ec_keys("a").public_pem.encode())),
        expected=R.INVALID_TOKEN,
    ),
    # --- secret and public key together: each algorithm only with its own key ---
    "both-hs-valid": Case("hs+rsa", hs()),
    "both-rs-valid": Case("hs+rsa", rs()),
    "both-hs256-signed-with-public-key": Case(
        "hs+rsa",
        lambda: bearer(hs256_with_raw_key(claims(), rsa_keys("a").public_pem.encode())),
        expected=R.INVALID_TOKEN,
    ),
    # --- JWKS ---
    "jwks-rs-by-kid": Case("jwks", rs(kid="rsa-1")),
    "jwks-es-by-kid": Case("jwks", es(kid="ec-1")),
    "jwks-no-kid": Case("jwks", rs()),
    "jwks-unknown-kid": Case("jwks", rs(kid="nope"), expected=R.INVALID_TOKEN),
    "jwks-known-kid-other-key": Case("jwks", rs("b", kid="rsa-1"), expected=R.INVALID_TOKEN),
    "jwks-kid-of-other-type": Case("jwks", es(kid="rsa-1"), expected=R.INVALID_TOKEN),
    "jwks-expired": Case("jwks", rs(kid="rsa-1", exp=NOW - 60), expected=R.EXPIRED_TOKEN),
    "jwks-hs-token": Case("jwks", hs(), expected=R.INVALID_TOKEN),
    "jwks-hs256-signed-with-jwk": Case(
        "jwks",
        lambda: bearer(
            hs256_with_raw_key(
                claims(), json.dumps(rsa_keys("a").public_jwk("rsa-1")).encode(), kid="rsa-1"
            )
        ),
        expected=R.INVALID_TOKEN,
    ),
    "jwks-alg-none": Case(
        "jwks", lambda: bearer(unsigned_token(claims())), expected=R.INVALID_TOKEN
    ),
    # --- API keys ---
    "key-one": Case("keys", api_key=KEY_ONE, user_id="viewer-42", expected=VIEWER),
    "key-two": Case("keys", api_key=KEY_TWO, user_id="viewer-42", expected=VIEWER),
    "key-wrong": Case(
        "keys", api_key="op-key-guess", user_id="viewer-42", expected=R.INVALID_API_KEY
    ),
    "key-prefix": Case(
        "keys", api_key=KEY_ONE[:-1], user_id="viewer-42", expected=R.INVALID_API_KEY
    ),
    "key-extended": Case(
        "keys", api_key=KEY_ONE + "x", user_id="viewer-42", expected=R.INVALID_API_KEY
    ),
    "key-non-ascii": Case(
        "keys", api_key="cl\u00e9", user_id="viewer-42", expected=R.INVALID_API_KEY
    ),
    "key-empty": Case("keys", api_key="", user_id="viewer-42", expected=R.MISSING_CREDENTIALS),
    "key-missing-user-id": Case("keys", api_key=KEY_ONE, expected=R.INVALID_USER_ID),
    "key-empty-user-id": Case("keys", api_key=KEY_ONE, user_id="", expected=R.INVALID_USER_ID),
    "key-user-id-128": Case(
        "keys", api_key=KEY_ONE, user_id="v" * 128, expected=Principal("v" * 128, "api_key")
    ),
    "key-user-id-129": Case("keys", api_key=KEY_ONE, user_id="v" * 129, expected=R.INVALID_USER_ID),
    "key-user-id-crlf": Case(
        "keys", api_key=KEY_ONE, user_id="viewer\r\nX-Admin: 1", expected=R.INVALID_USER_ID
    ),
    "key-user-id-trailing-lf": Case(
        "keys", api_key=KEY_ONE, user_id="viewer-42\n", expected=R.INVALID_USER_ID
    ),
    "key-user-id-tab": Case("keys", api_key=KEY_ONE, user_id="a\tb", expected=R.INVALID_USER_ID),
    "key-user-id-non-ascii": Case(
        "keys", api_key=KEY_ONE, user_id="vi\u00e9wer", expected=R.INVALID_USER_ID
    ),
    "key-user-id-inner-space-ok": Case(
        "keys", api_key=KEY_ONE, user_id="a b", expected=Principal("a b", "api_key")
    ),
    "key-user-id-leading-space": Case(
        "keys", api_key=KEY_ONE, user_id=" a", expected=R.INVALID_USER_ID
    ),
    "key-wrong-checked-before-user-id": Case(
        "keys", api_key="nope", user_id="bad\r\n", expected=R.INVALID_API_KEY
    ),
    "key-bearer-not-configured": Case("keys", hs(), expected=R.MISSING_CREDENTIALS),
    "key-no-credentials": Case("keys", expected=R.MISSING_CREDENTIALS),
    # --- everything configured: a bearer token is authoritative ---
    "all-bearer-wins-over-key": Case("all", hs(), api_key="wrong", user_id="viewer-42"),
    "all-bad-bearer-not-rescued-by-key": Case(
        "all", hs(exp=NOW - 600), api_key=KEY_ONE, user_id="viewer-42", expected=R.EXPIRED_TOKEN
    ),
    "all-other-scheme-then-key": Case(
        "all", raw("Basic dXNlcjpwdw=="), api_key=KEY_ONE, user_id="viewer-42", expected=VIEWER
    ),
    "all-jwks-token": Case("all", rs(kid="rsa-1")),
    # --- nothing configured ---
    "none-bearer": Case("none", hs(), expected=R.MISSING_CREDENTIALS),
    "none-key": Case("none", api_key=KEY_ONE, user_id="viewer-42", expected=R.MISSING_CREDENTIALS),
    "none-nothing": Case("none", expected=R.MISSING_CREDENTIALS),
}


@pytest.mark.parametrize("case", [pytest.param(case, id=name) for name, case in CASES.items()])
async def test_authenticate(case: Case, http: httpx.AsyncClient) -> None:
    authenticator = configure(case.config, http)
    authorization = case.authorization()
    call = authenticator.authenticate(
        authorization=authorization, api_key=case.api_key, user_id=case.user_id
    )
    if isinstance(case.expected, Principal):
        assert await call == case.expected
        return
    with pytest.raises(AuthError) as caught:
        await call
    error = caught.value
    assert error.reason is case.expected
    # Nothing the client presented comes back in the error.
    shown = " ".join([str(error), repr(error), error.detail, *map(str, error.args)])
    secrets = [authorization, case.api_key]
    if authorization and " " in authorization.strip():
        secrets.append(authorization.strip().split(" ", 1)[1])
    for secret in secrets:
        if secret and secret.strip():
            assert secret.strip() not in shown
    assert error.__cause__ is None


# --- Construction ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"jwt_secret": SecretStr("short")}, "at least 32 bytes", id="short-secret"),
        pytest.param(
            {"jwt_public_key": SecretStr("-----BEGIN PUBLIC KEY-----\nnope\n")},
            "not a readable PEM",
            id="bad-pem",
        ),
        pytest.param(
            {"jwt_public_key": SecretStr(rsa_keys("weak", 1024).public_pem)},
            "RSA",
            id="rsa-1024",
        ),
        pytest.param({"jwks_url": JWKS_URL}, "HTTP client", id="jwks-without-http"),
    ],
)
def test_bad_configuration_fails_at_construction(kwargs: dict[str, Any], message: str) -> None:
    base: dict[str, Any] = {
        "jwt_secret": None,
        "jwt_public_key": None,
        "jwks_url": None,
        "issuer": None,
        "audience": None,
        "leeway_s": 0,
        "api_keys": [],
        "http": None,
    }
    with pytest.raises(ValueError, match=message):
        Authenticator(**{**base, **kwargs})


def test_configured_flags() -> None:
    assert not configure("none").jwt_enabled
    assert not configure("none").api_keys_enabled
    assert configure("hs").jwt_enabled
    assert configure("keys").api_keys_enabled


# --- JWKS fetching and caching ---------------------------------------------------


async def authenticate(authenticator: Authenticator, token: str) -> Principal:
    return await authenticator.authenticate(authorization=bearer(token), api_key=None, user_id=None)


def rs_token(name: str = "a", kid: str = "rsa-1", now: float = NOW) -> str:
    return rsa_keys(name).sign(claims(exp=now + 3600), {"kid": kid})


async def test_jwks_is_cached(jwks: JwksServer, http: httpx.AsyncClient, clock: FakeClock) -> None:
    authenticator = configure("jwks", http, clock)
    for _ in range(3):
        assert await authenticate(authenticator, rs_token()) == USER
    assert jwks.fetches == 1


async def test_jwks_is_refetched_after_ten_minutes(
    jwks: JwksServer, http: httpx.AsyncClient, clock: FakeClock
) -> None:
    authenticator = configure("jwks", http, clock)
    await authenticate(authenticator, rs_token())
    clock.advance(599)
    await authenticate(authenticator, rs_token(now=clock.now))
    assert jwks.fetches == 1
    clock.advance(2)
    await authenticate(authenticator, rs_token(now=clock.now))
    assert jwks.fetches == 2


async def test_unknown_kid_refetches_at_most_every_30_seconds(
    jwks: JwksServer, http: httpx.AsyncClient, clock: FakeClock
) -> None:
    authenticator = configure("jwks", http, clock)
    await authenticate(authenticator, rs_token())
    assert jwks.fetches == 1

    rotated = rsa_keys("b").public_jwk("rsa-2")
    jwks.keys = [*default_jwks(), rotated]
    clock.advance(10)  # too soon after the first fetch: no refetch
    with pytest.raises(AuthError) as caught:
        await authenticate(authenticator, rs_token("b", "rsa-2", clock.now))
    assert caught.value.reason is AuthReason.INVALID_TOKEN
    assert jwks.fetches == 1

    clock.advance(25)  # 35 s after the first fetch: one refetch finds the new key
    assert await authenticate(authenticator, rs_token("b", "rsa-2", clock.now)) == USER
    assert jwks.fetches == 2

    for _ in range(5):  # a flood of unknown kids right after costs no fetches
        with pytest.raises(AuthError):
            await authenticate(authenticator, rs_token("b", f"forged-{_}", clock.now))
    assert jwks.fetches == 2


async def test_concurrent_cold_requests_share_one_fetch(
    jwks: JwksServer, http: httpx.AsyncClient, clock: FakeClock
) -> None:
    authenticator = configure("jwks", http, clock)
    token = rs_token()
    results = await asyncio.gather(*(authenticate(authenticator, token) for _ in range(10)))
    assert results == [USER] * 10
    assert jwks.fetches == 1


@pytest.mark.parametrize(
    "breakage",
    [
        pytest.param({"status": 500}, id="http-500"),
        pytest.param({"status": 404}, id="http-404"),
        pytest.param({"broken": True}, id="connection-refused"),
        pytest.param({"body": b"<html>oops</html>"}, id="not-json"),
        pytest.param({"body": b"[1, 2]"}, id="json-not-an-object"),
        pytest.param({"body": b'{"keys": "nope"}'}, id="keys-not-a-list"),
        pytest.param({"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "rsa-1"}]}, id="oct-key"),
        pytest.param({"keys": [{"kty": "RSA", "kid": "rsa-1", "n": "AQAB"}]}, id="broken-rsa-jwk"),
        pytest.param(
            {"keys": [{**rsa_keys("a").public_jwk("rsa-1"), "alg": "HS256"}]}, id="alg-mismatch"
        ),
        pytest.param({"keys": [{**rsa_keys("a").public_jwk("rsa-1"), "use": "enc"}]}, id="enc-key"),
        pytest.param({"keys": [rsa_keys("weak", 1024).public_jwk("rsa-1")]}, id="rsa-1024"),
        pytest.param(
            {"keys": [{**rsa_keys("a").public_jwk("rsa-1"), "d": "AQAB"}]}, id="private-key"
        ),
    ],
)
async def test_unusable_jwks_makes_tokens_invalid_without_crashing(
    breakage: dict[str, Any], jwks: JwksServer, http: httpx.AsyncClient, clock: FakeClock
) -> None:
    for name, value in breakage.items():
        setattr(jwks, name, value)
    authenticator = configure("jwks", http, clock)
    with capture_logs() as logs, pytest.raises(AuthError) as caught:
        await authenticate(authenticator, rs_token())
    assert caught.value.reason is AuthReason.INVALID_TOKEN
    assert [entry["event"] for entry in logs] == ["jwks_fetch_failed"]


async def test_jwks_recovers_after_a_failure(
    jwks: JwksServer, http: httpx.AsyncClient, clock: FakeClock
) -> None:
    jwks.status = 503
    authenticator = configure("jwks", http, clock)
    with pytest.raises(AuthError):
        await authenticate(authenticator, rs_token())
    jwks.status = 200
    with pytest.raises(AuthError):  # within 30 s: no hammering of a failing endpoint
        await authenticate(authenticator, rs_token())
    assert jwks.fetches == 1
    clock.advance(31)
    assert await authenticate(authenticator, rs_token()) == USER
    assert jwks.fetches == 2


async def test_known_keys_survive_a_failed_refresh(
    jwks: JwksServer, http: httpx.AsyncClient, clock: FakeClock
) -> None:
    authenticator = configure("jwks", http, clock)
    await authenticate(authenticator, rs_token())
    jwks.broken = True
    clock.advance(601)
    with capture_logs() as logs:
        assert await authenticate(authenticator, rs_token(now=clock.now)) == USER
    assert jwks.fetches == 2
    assert [entry["event"] for entry in logs] == ["jwks_fetch_failed"]


async def test_clock_is_injected(http: httpx.AsyncClient, clock: FakeClock) -> None:
    authenticator = configure("hs", http, clock)
    token = sign_hs256(claims(exp=NOW + 60))
    assert await authenticate(authenticator, token) == USER
    clock.advance(60 + LEEWAY)
    with pytest.raises(AuthError) as caught:
        await authenticate(authenticator, token)
    assert caught.value.reason is AuthReason.EXPIRED_TOKEN


@pytest.mark.parametrize("presented", [KEY_ONE, KEY_TWO, "wrong"], ids=["first", "second", "none"])
async def test_every_api_key_is_compared_in_constant_time(
    presented: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", counting)
    authenticator = configure("keys")
    with contextlib.suppress(AuthError):
        await authenticator.authenticate(authorization=None, api_key=presented, user_id="v")
    assert len(calls) == 2  # no early exit on a match
    assert all(len(a) == len(b) == 32 for a, b in calls)  # digests: lengths leak nothing


# --- a bounded token lifetime (AUTH_JWT_MAX_AGE_S) ----------------------------------------

MAX_AGE = 3600.0


def with_max_age(clock: Callable[[], float] = lambda: NOW) -> Authenticator:
    return Authenticator(
        jwt_secret=SecretStr(HS_SECRET),
        jwt_public_key=None,
        jwks_url=None,
        issuer=ISS,
        audience=AUD,
        leeway_s=LEEWAY,
        api_keys=[],
        http=None,
        clock=clock,
        max_age_s=MAX_AGE,
    )


@pytest.mark.parametrize(
    ("changes", "accepted"),
    [
        ({"iat": NOW, "exp": NOW + MAX_AGE}, True),
        ({"iat": NOW - 600, "exp": NOW + MAX_AGE - 600}, True),
        ({"iat": DROP, "exp": NOW + MAX_AGE}, True),
        ({"iat": NOW, "exp": NOW + MAX_AGE + 1}, False),  # exp - iat too long
        ({"iat": NOW, "exp": NOW + 10 * 365 * 86400}, False),  # the ten-year token
        ({"iat": DROP, "exp": NOW + MAX_AGE + LEEWAY + 1}, False),  # exp - now, no iat
        # iat set back to look short-lived: exp - now still gives it away
        ({"iat": NOW + 86400 - MAX_AGE, "exp": NOW + 86400}, False),
    ],
    ids=[
        "exactly-max-age",
        "issued-ten-minutes-ago",
        "no-iat-within",
        "one-second-too-long",
        "ten-years",
        "no-iat-too-long",
        "iat-in-the-future",
    ],
)
async def test_a_token_living_longer_than_the_maximum_age_is_refused(
    changes: dict[str, object], accepted: bool
) -> None:
    token = sign_hs256(claims(**changes))
    if accepted:
        assert await authenticate(with_max_age(), token) == USER
        return
    with pytest.raises(AuthError) as caught:
        await authenticate(with_max_age(), token)
    assert caught.value.reason is AuthReason.INVALID_TOKEN


async def test_without_a_maximum_age_a_long_token_is_accepted() -> None:
    token = sign_hs256(claims(iat=NOW, exp=NOW + 10 * 365 * 86400))
    assert await authenticate(configure("hs"), token) == USER
