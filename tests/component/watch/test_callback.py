"""The watch callback against a real HTTP server: answers, the cache, the failure
policy and the circuit breaker."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from typing import Literal

import httpx
import pytest
from pydantic import SecretStr

from app.observability.metrics import Metrics
from app.upstream.breaker import CircuitBreaker
from app.watch.callback import SECRET_HEADER, WatchCallback, WatchQuery
from tests.support.watch_service import WatchService, run_watch_service

QUERY = WatchQuery("user-1", "EV-1", "FT", "HLS", "GB")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def service() -> Iterator[WatchService]:
    with run_watch_service() as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=httpx.Timeout(0.5)) as client:
        yield client


def callback(
    http: httpx.AsyncClient,
    service: WatchService,
    *,
    on_failure: Literal["deny", "allow"] = "deny",
    cache_s: float = 60.0,
    clock: Clock | None = None,
    threshold: int = 3,
    timeout_s: float = 1.0,
    max_bytes: int = 4096,
    metrics: Metrics | None = None,
) -> WatchCallback:
    clock = clock or Clock()
    return WatchCallback(
        http,
        url=service.url,
        secret=SecretStr("operator-shared-secret"),
        cache_s=cache_s,
        on_failure=on_failure,
        breaker=CircuitBreaker(threshold=threshold, cooldown_s=5.0, monotonic=clock),
        timeout_s=timeout_s,
        max_bytes=max_bytes,
        metrics=metrics,
        monotonic=clock,
    )


async def test_allow(http: httpx.AsyncClient, service: WatchService) -> None:
    verdict = await callback(http, service).check(QUERY)
    assert (verdict.allow, verdict.reason, verdict.source) == (True, None, "answered")
    assert service.bodies() == [
        {
            "userId": "user-1",
            "eventId": "EV-1",
            "sportCode": "FT",
            "streamName": "HLS",
            "country": "GB",
        }
    ]
    assert service.requests[0]["headers"][SECRET_HEADER.lower()] == "operator-shared-secret"


async def test_deny_with_a_reason(http: httpx.AsyncClient, service: WatchService) -> None:
    service.behaviour = "deny"
    verdict = await callback(http, service).check(QUERY)
    assert (verdict.allow, verdict.reason, verdict.source) == (False, "no_bet_on_event", "answered")


@pytest.mark.parametrize("behaviour", ["slow", "error", "garbage"])
@pytest.mark.parametrize("policy", ["deny", "allow"])
async def test_a_failed_call_is_decided_by_the_policy(
    http: httpx.AsyncClient,
    service: WatchService,
    behaviour: Literal["slow", "error", "garbage"],
    policy: Literal["deny", "allow"],
) -> None:
    service.behaviour = behaviour
    checker = callback(http, service, on_failure=policy)
    verdict = await checker.check(QUERY)
    assert verdict.source == "failed"
    assert verdict.allow is (policy == "allow")
    assert verdict.reason == (None if policy == "allow" else "watch_check_unavailable")
    # failures are not cached: the next request asks again
    service.behaviour = "allow"
    again = await checker.check(QUERY)
    assert (again.allow, again.source) == (True, "answered")
    assert len(service.requests) == 2


async def test_answers_are_cached_per_user_and_event(
    http: httpx.AsyncClient, service: WatchService
) -> None:
    clock = Clock()
    checker = callback(http, service, cache_s=30, clock=clock)
    service.behaviour = "deny"
    first = await checker.check(QUERY)
    for _ in range(5):
        cached = await checker.check(QUERY)
        assert (cached.allow, cached.reason, cached.source) == (False, "no_bet_on_event", "cached")
    assert len(service.requests) == 1
    other_event = await checker.check(WatchQuery("user-1", "EV-2", "FT", "HLS", "GB"))
    other_user = await checker.check(WatchQuery("user-2", "EV-1", "FT", "HLS", "GB"))
    assert other_event.source == other_user.source == "answered"
    assert len(service.requests) == 3
    clock.now += 31
    service.behaviour = "allow"
    expired = await checker.check(QUERY)
    assert (expired.allow, expired.source, first.allow) == (True, "answered", False)
    assert len(service.requests) == 4


def failures(metrics: Metrics, reason: str) -> float:
    value = metrics.registry.get_sample_value(
        "gateway_watch_callback_failures_total", {"reason": reason}
    )
    return value or 0.0


async def test_a_slow_drip_answer_is_cut_at_the_total_deadline(
    http: httpx.AsyncClient, service: WatchService
) -> None:
    """Each byte comes well within the client's per-read timeout (0.5 s), the whole
    answer would take 3 s: the call ends at its 0.6 s deadline."""
    service.behaviour = "drip"
    service.drip_s = 0.2
    metrics = Metrics()
    checker = callback(http, service, timeout_s=0.6, metrics=metrics)
    started = time.monotonic()
    verdict = await checker.check(QUERY)
    elapsed = time.monotonic() - started
    assert (verdict.allow, verdict.reason, verdict.source) == (
        False,
        "watch_check_unavailable",
        "failed",
    )
    assert elapsed < 1.2, elapsed
    assert 0 < service.sent_bytes < len(b'{"allow": true}')
    assert failures(metrics, "timeout") == 1


async def test_an_oversize_answer_is_not_read_past_the_cap(
    http: httpx.AsyncClient, service: WatchService
) -> None:
    service.behaviour = "huge"
    metrics = Metrics()
    checker = callback(http, service, max_bytes=4096, metrics=metrics, on_failure="allow")
    verdict = await checker.check(QUERY)
    assert (verdict.allow, verdict.source) == (True, "failed")  # the policy decided
    assert failures(metrics, "too_large") == 1


async def test_an_answer_within_the_cap_is_read(
    http: httpx.AsyncClient, service: WatchService
) -> None:
    service.behaviour = "huge"
    service.huge_bytes = 2000
    metrics = Metrics()
    verdict = await callback(http, service, max_bytes=4096, metrics=metrics).check(QUERY)
    assert (verdict.allow, verdict.source) == (True, "answered")
    assert failures(metrics, "too_large") == 0


@pytest.mark.parametrize(
    "other",
    [
        pytest.param(WatchQuery("user-1", "EV-1", "FT", "ULL", "GB"), id="another-stream"),
        pytest.param(WatchQuery("user-1", "EV-1", "FT", "HLS", "US"), id="another-country"),
        pytest.param(WatchQuery("user-1", "EV-1", "FT", "HLS", None), id="unknown-country"),
    ],
)
async def test_the_cache_key_holds_what_the_answer_depends_on(
    http: httpx.AsyncClient, service: WatchService, other: WatchQuery
) -> None:
    checker = callback(http, service, cache_s=30)
    service.behaviour = "allow"
    assert (await checker.check(QUERY)).source == "answered"
    service.behaviour = "deny"  # e.g. the bet does not cover this stream or country
    verdict = await checker.check(other)
    assert (verdict.allow, verdict.source) == (False, "answered")
    assert (await checker.check(QUERY)).source == "cached"
    assert len(service.requests) == 2


async def test_errors_and_open_circuits_are_counted(
    http: httpx.AsyncClient, service: WatchService
) -> None:
    metrics = Metrics()
    checker = callback(http, service, threshold=2, cache_s=0, metrics=metrics)
    service.behaviour = "error"
    await checker.check(QUERY)
    service.behaviour = "garbage"
    await checker.check(QUERY)
    await checker.check(QUERY)
    assert failures(metrics, "status") == 1
    assert failures(metrics, "bad_answer") == 1
    assert failures(metrics, "circuit_open") == 1


async def test_an_open_circuit_makes_no_call(
    http: httpx.AsyncClient, service: WatchService
) -> None:
    clock = Clock()
    checker = callback(http, service, clock=clock, threshold=3, cache_s=0)
    service.behaviour = "error"
    for _ in range(3):
        assert (await checker.check(QUERY)).source == "failed"
    assert len(service.requests) == 3
    service.behaviour = "allow"
    for _ in range(5):
        verdict = await checker.check(QUERY)
        assert (verdict.allow, verdict.source) == (False, "circuit_open")
    assert len(service.requests) == 3
    clock.now += 6  # past the cool-down: one probe goes through and closes the circuit
    probe = await checker.check(QUERY)
    assert (probe.allow, probe.source) == (True, "answered")
    assert len(service.requests) == 4
