"""Lease over fakeredis and a real redis-server.

The lease's TTL is Redis's own key expiry, so these tests use TTLs of seconds and,
where a test needs time to pass, shorten the key's remaining TTL (``PEXPIRE``) as if
the holder had stopped renewing that long ago, then poll with a generous deadline.
"""

from __future__ import annotations

import asyncio

import redis.asyncio as redis_asyncio

from app.ratelimit.lease import Lease
from tests.support.polling import eventually

TTL_S = 10.0


async def test_one_holder_at_a_time(store: redis_asyncio.Redis) -> None:
    a = Lease(store, "catalogue-refresh", "replica-a", ttl_s=10)
    b = Lease(store, "catalogue-refresh", "replica-b", ttl_s=10)
    assert await a.holder() is None
    assert await a.acquire_or_renew()
    assert not await b.acquire_or_renew()
    assert await a.acquire_or_renew()  # renewing our own lease
    assert await b.holder() == "replica-a"
    assert await store.keys("*") == [b"{igm:lease}:catalogue-refresh"]


async def test_concurrent_contenders_elect_one(store: redis_asyncio.Redis) -> None:
    leases = [Lease(store, "job", f"replica-{i}", ttl_s=10) for i in range(8)]
    won = await asyncio.gather(*(lease.acquire_or_renew() for lease in leases))
    assert sum(won) == 1
    winner = leases[won.index(True)]
    assert await winner.holder() == winner.owner


async def test_acquiring_sets_the_ttl(store: redis_asyncio.Redis) -> None:
    a = Lease(store, "job", "replica-a", ttl_s=TTL_S)
    assert await a.acquire_or_renew()
    assert 0 < await store.pttl(a.key) <= TTL_S * 1000


async def test_renew_extends_the_ttl(store: redis_asyncio.Redis) -> None:
    a = Lease(store, "job", "replica-a", ttl_s=TTL_S)
    assert await a.acquire_or_renew()
    await store.pexpire(a.key, 1000)  # 9 of its 10 s have passed
    assert await a.acquire_or_renew()
    assert await store.pttl(a.key) > 5000  # a whole TTL again, not the second left
    assert await a.holder() == "replica-a"


async def test_renew_does_not_take_a_lease_held_by_another(store: redis_asyncio.Redis) -> None:
    a = Lease(store, "job", "replica-a", ttl_s=TTL_S)
    b = Lease(store, "job", "replica-b", ttl_s=TTL_S)
    assert await a.acquire_or_renew()
    await store.pexpire(a.key, 3000)
    assert not await b.acquire_or_renew()
    assert await store.pttl(a.key) <= 3000  # b's attempt did not extend a's lease


async def test_takeover_after_the_holder_stops_renewing(store: redis_asyncio.Redis) -> None:
    a = Lease(store, "job", "replica-a", ttl_s=TTL_S)
    b = Lease(store, "job", "replica-b", ttl_s=TTL_S)
    assert await a.acquire_or_renew()
    assert not await b.acquire_or_renew()
    await store.pexpire(a.key, 50)  # a stopped renewing almost a whole TTL ago

    async def expired() -> bool:
        return await a.holder() is None

    await eventually(expired, "the lease expires")
    assert await b.acquire_or_renew()
    assert not await a.acquire_or_renew()
    assert await a.holder() == "replica-b"


async def test_release_only_by_the_holder(store: redis_asyncio.Redis) -> None:
    a = Lease(store, "job", "replica-a", ttl_s=10)
    b = Lease(store, "job", "replica-b", ttl_s=10)
    assert not await a.release()  # nothing to release
    assert await a.acquire_or_renew()
    assert not await b.release()
    assert await a.holder() == "replica-a"
    assert await a.release()
    assert await a.holder() is None
    assert await b.acquire_or_renew()
