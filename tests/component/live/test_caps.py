"""Live stream seats per user and per address, over the embedded store and a real
redis-server: limits, release, lapsed leases, and the per-process fallback."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis_asyncio

from app.live.caps import LiveCapLimits, LiveCapped, LiveCaps
from app.store import build_store
from tests.support.polling import eventually
from tests.support.redis_server import free_port

LIMITS = LiveCapLimits(per_user=2, per_ip=3)


async def test_a_user_and_an_address_hold_at_most_their_seats(store: redis_asyncio.Redis) -> None:
    one, two = LiveCaps(store, LIMITS), LiveCaps(store, LIMITS)  # two processes
    first = await one.admit("user-a", "10.0.0.1")
    await two.admit("user-a", "10.0.0.1")
    with pytest.raises(LiveCapped) as capped:
        await one.admit("user-a", "10.0.0.2")
    assert capped.value.which == "user"
    await two.admit("user-b", "10.0.0.1")
    with pytest.raises(LiveCapped) as capped:
        await two.admit("user-c", "10.0.0.1")
    assert capped.value.which == "ip"
    await one.release(first)
    assert await one.admit("user-a", "10.0.0.3") is not None


async def test_no_limits_take_no_seats(store: redis_asyncio.Redis) -> None:
    caps = LiveCaps(store, LiveCapLimits(per_user=0, per_ip=0))
    assert not caps.enabled
    assert [await caps.admit("user-a", "10.0.0.1") for _ in range(10)] == [None] * 10
    assert await store.keys("*") == []


async def test_seats_of_a_process_that_stopped_renewing_lapse(
    real_redis: redis_asyncio.Redis,
) -> None:
    dead = LiveCaps(real_redis, LIMITS, lease_s=0.3)
    await dead.admit("user-a", "10.0.0.1")
    await dead.admit("user-a", "10.0.0.1")
    alive = LiveCaps(real_redis, LIMITS)
    with pytest.raises(LiveCapped):
        await alive.admit("user-a", "10.0.0.1")

    async def admitted() -> bool:
        try:
            await alive.admit("user-a", "10.0.0.1")
        except LiveCapped:
            return False
        return True

    await eventually(admitted, "the lapsed seats freed", timeout_s=5)


async def test_renewed_seats_do_not_lapse(real_redis: redis_asyncio.Redis) -> None:
    renewed = LiveCaps(real_redis, LIMITS, lease_s=0.5)
    lapsing = LiveCaps(real_redis, LIMITS, lease_s=0.5)
    for caps, user in ((renewed, "user-a"), (lapsing, "user-b")):
        await caps.admit(user, f"10.0.0.{user[-1]}")
        await caps.admit(user, f"10.0.0.{user[-1]}")
    observer = LiveCaps(real_redis, LIMITS)

    async def lapsed_while_the_other_was_renewed() -> bool:
        await renewed.renew()
        try:
            await observer.admit("user-b", "10.0.0.9")
        except LiveCapped:
            return False
        return True

    await eventually(lapsed_while_the_other_was_renewed, "the unrenewed seats lapsing", 5)
    with pytest.raises(LiveCapped):
        await observer.admit("user-a", "10.0.0.8")


@pytest.fixture
async def unreachable() -> AsyncIterator[redis_asyncio.Redis]:
    client = build_store(f"redis://127.0.0.1:{free_port()}/0")
    yield client
    await client.aclose()


async def test_without_the_store_the_limits_hold_per_process(
    unreachable: redis_asyncio.Redis,
) -> None:
    caps = LiveCaps(unreachable, LIMITS)
    seat = await caps.admit("user-a", "10.0.0.1")
    await caps.admit("user-a", "10.0.0.1")
    with pytest.raises(LiveCapped):
        await caps.admit("user-a", "10.0.0.1")
    await caps.release(seat)
    assert await caps.admit("user-a", "10.0.0.1") is not None
