"""Failed attempts per client, over the embedded store and a real redis-server, and
counted locally while the store cannot be reached."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis_asyncio

from app.ratelimit.failures import FailedAttempts, FailureLimits
from app.store import build_store
from tests.support.redis_server import free_port

LIMITS = FailureLimits(max_failures=3, window_s=60)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_the_limit_locks_the_client_out_for_the_window(store: redis_asyncio.Redis) -> None:
    attempts = FailedAttempts(store, "admin", LIMITS)
    assert await attempts.locked_out("10.0.0.1") is None
    assert await attempts.failed("10.0.0.1") is None
    assert await attempts.failed("10.0.0.1") is None
    locked = await attempts.failed("10.0.0.1")  # the third
    assert locked is not None
    assert 0 < locked <= 60
    assert 0 < (await attempts.locked_out("10.0.0.1") or 0) <= 60
    assert await attempts.locked_out("10.0.0.2") is None  # another client


async def test_two_processes_count_together(store: redis_asyncio.Redis) -> None:
    one, two = FailedAttempts(store, "admin", LIMITS), FailedAttempts(store, "admin", LIMITS)
    await one.failed("10.0.0.1")
    await two.failed("10.0.0.1")
    assert await one.failed("10.0.0.1") is not None
    assert await two.locked_out("10.0.0.1") is not None


async def test_keys_hold_no_address(real_redis: redis_asyncio.Redis) -> None:
    await FailedAttempts(real_redis, "admin", LIMITS).failed("203.0.113.7")
    keys = [key.decode() if isinstance(key, bytes) else key for key in await real_redis.keys("*")]
    assert len(keys) == 1
    assert "203.0.113.7" not in keys[0]
    assert 0 < await real_redis.pttl(keys[0]) <= 60_000


@pytest.fixture
async def unreachable() -> AsyncIterator[redis_asyncio.Redis]:
    client = build_store(f"redis://127.0.0.1:{free_port()}/0")
    yield client
    await client.aclose()


async def test_without_the_store_each_process_counts_alone(
    unreachable: redis_asyncio.Redis,
) -> None:
    clock = Clock()
    attempts = FailedAttempts(unreachable, "admin", LIMITS, monotonic=clock)
    assert await attempts.failed("10.0.0.1") is None
    assert await attempts.failed("10.0.0.1") is None
    assert await attempts.failed("10.0.0.1") == 60
    clock.now += 30
    assert await attempts.locked_out("10.0.0.1") == 30
    clock.now += 31
    assert await attempts.locked_out("10.0.0.1") is None
    assert await attempts.failed("10.0.0.1") is None  # a new window
