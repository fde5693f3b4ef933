"""JWKS against a real HTTP server: stale keys are bounded, the body is capped, an
unknown ``kid`` refetches at a bounded rate, and failures are counted."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from app.identity.auth import (
    JWKS_MIN_REFETCH_S,
    JWKS_TTL_S,
    Authenticator,
    AuthError,
    AuthReason,
)
from app.observability.metrics import Metrics
from tests.support.jwks_service import JwksService, run_jwks_service
from tests.support.jwt_keys import rsa_keys

START = 1_800_000_000.0
MAX_STALE_S = 3600.0


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def service() -> Iterator[JwksService]:
    with run_jwks_service([rsa_keys("a").public_jwk("rsa-1")]) as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=httpx.Timeout(2.0)) as client:
        yield client


def authenticator(
    service: JwksService, http: httpx.AsyncClient, clock: Clock, metrics: Metrics
) -> Authenticator:
    return Authenticator(
        jwt_secret=None,
        jwt_public_key=None,
        jwks_url=service.url,
        issuer=None,
        audience=None,
        leeway_s=0,
        api_keys=[],
        http=http,
        clock=clock,
        jwks_max_stale_s=MAX_STALE_S,
        metrics=metrics,
    )


def token(clock: Clock, key: str = "a", kid: str = "rsa-1") -> str:
    claims: dict[str, Any] = {"sub": "viewer-1", "exp": clock.now + 300}
    return rsa_keys(key).sign(claims, {"kid": kid})


async def user(checker: Authenticator, jwt_token: str) -> str:
    principal = await checker.authenticate(
        authorization=f"Bearer {jwt_token}", api_key=None, user_id=None
    )
    return principal.user_id


def failures(metrics: Metrics, reason: str) -> float:
    value = metrics.registry.get_sample_value(
        "gateway_jwks_fetch_failures_total", {"reason": reason}
    )
    return value or 0.0


async def test_known_keys_last_only_up_to_the_maximum_age_while_the_url_is_down(
    service: JwksService, http: httpx.AsyncClient
) -> None:
    clock, metrics = Clock(), Metrics()
    checker = authenticator(service, http, clock, metrics)
    assert await user(checker, token(clock)) == "viewer-1"
    service.behaviour = "down"
    clock.now += JWKS_TTL_S + 1  # due for a refresh, which fails: the keys are kept
    assert await user(checker, token(clock)) == "viewer-1"
    assert failures(metrics, "status") == 1
    clock.now = START + MAX_STALE_S - JWKS_MIN_REFETCH_S - 1
    assert await user(checker, token(clock)) == "viewer-1"
    clock.now = START + MAX_STALE_S + 1  # past the maximum age: refused, not trusted for ever
    with pytest.raises(AuthError) as caught:
        await user(checker, token(clock))
    assert caught.value.reason is AuthReason.INVALID_TOKEN
    assert failures(metrics, "status") >= 2
    assert (metrics.registry.get_sample_value("gateway_jwks_age_seconds") or 0) > MAX_STALE_S
    # The URL answers again: keys are fetched afresh and tokens pass.
    service.behaviour = "ok"
    clock.now += JWKS_MIN_REFETCH_S + 1
    assert await user(checker, token(clock)) == "viewer-1"
    assert metrics.registry.get_sample_value("gateway_jwks_age_seconds") == 0


async def test_an_oversize_jwks_is_not_read_past_the_cap(
    service: JwksService, http: httpx.AsyncClient
) -> None:
    service.behaviour = "huge"
    clock, metrics = Clock(), Metrics()
    checker = authenticator(service, http, clock, metrics)
    with pytest.raises(AuthError) as caught:
        await user(checker, token(clock))
    assert caught.value.reason is AuthReason.INVALID_TOKEN
    assert failures(metrics, "too_large") == 1


async def test_unknown_kids_refetch_at_a_bounded_rate(
    service: JwksService, http: httpx.AsyncClient
) -> None:
    clock, metrics = Clock(), Metrics()
    checker = authenticator(service, http, clock, metrics)
    assert await user(checker, token(clock)) == "viewer-1"
    assert service.fetches == 1
    for number in range(50):  # a flood of made-up kids
        with pytest.raises(AuthError):
            await user(checker, token(clock, kid=f"forged-{number}"))
    assert service.fetches == 1  # within JWKS_MIN_REFETCH_S of the last fetch
    # The issuer rotates: once the interval has passed, one refetch finds the new key.
    service.keys = [*service.keys, rsa_keys("b").public_jwk("rsa-2")]
    clock.now += JWKS_MIN_REFETCH_S + 1
    assert await user(checker, token(clock, "b", "rsa-2")) == "viewer-1"
    for number in range(50):
        with pytest.raises(AuthError):
            await user(checker, token(clock, kid=f"forged-again-{number}"))
    assert service.fetches == 2
