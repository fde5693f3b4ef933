"""Lease over fakeredis and a real redis-server."""

from __future__ import annotations

import asyncio

import redis.asyncio as redis_asyncio

from app.ratelimit.lease import Lease

TTL = 0.2


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


async def test_renew_extends_the_ttl(store: redis_asyncio.Redis) -> None:
    a = Lease(store, "job", "replica-a", ttl_s=TTL)
    assert await a.acquire_or_renew()
    await asyncio.sleep(TTL * 0.6)
    assert await a.acquire_or_renew()
    await asyncio.sleep(TTL * 0.6)  # past the first TTL, within the renewed one
    assert await a.holder() == "replica-a"


async def test_takeover_after_the_holder_stops_renewing(store: redis_asyncio.Redis) -> None:
    a = Lease(store, "job", "replica-a", ttl_s=TTL)
    b = Lease(store, "job", "replica-b", ttl_s=TTL)
    assert await a.acquire_or_renew()
    assert not await b.acquire_or_renew()
    await asyncio.sleep(TTL + 0.1)
    assert await a.holder() is None
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
