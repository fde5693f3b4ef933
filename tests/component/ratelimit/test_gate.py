"""UpstreamGate over fakeredis and a real redis-server."""

from __future__ import annotations

import asyncio

import redis.asyncio as redis_asyncio

from app.ratelimit.gate import GateDecision, UpstreamGate

INTERVAL = 0.3


async def race(gates: list[UpstreamGate], method: str) -> list[GateDecision]:
    return list(await asyncio.gather(*(g.try_pass(method, INTERVAL) for g in gates)))


async def test_exactly_one_of_many_concurrent_callers_passes_per_interval(
    store: redis_asyncio.Redis,
) -> None:
    replicas = [UpstreamGate(store) for _ in range(10)]

    first = await race(replicas, "events")
    assert sum(d.allowed for d in first) == 1
    refused = [d for d in first if not d.allowed]
    assert all(0 < d.retry_after_s <= INTERVAL for d in refused)
    assert all(d.retry_after_s == 0 for d in first if d.allowed)

    again = await race(replicas, "events")
    assert not any(d.allowed for d in again)

    await asyncio.sleep(max(d.retry_after_s for d in again) + 0.02)
    second = await race(replicas, "events")
    assert sum(d.allowed for d in second) == 1


async def test_next_slot_in_reports_the_time_until_the_gate_opens(
    store: redis_asyncio.Redis,
) -> None:
    gate = UpstreamGate(store)
    assert await gate.next_slot_in("events") == 0
    assert (await gate.try_pass("events", INTERVAL)).allowed
    wait = await gate.next_slot_in("events")
    assert 0 < wait <= INTERVAL
    await asyncio.sleep(wait + 0.02)
    assert await gate.next_slot_in("events") == 0
    assert (await gate.try_pass("events", INTERVAL)).allowed


async def test_methods_and_prefixes_have_separate_gates(store: redis_asyncio.Redis) -> None:
    gate = UpstreamGate(store)
    assert (await gate.try_pass("events", 10)).allowed
    assert (await gate.try_pass("event_detail", 10)).allowed
    assert (await UpstreamGate(store, prefix="other").try_pass("events", 10)).allowed
    refused = await gate.try_pass("events", 10)
    assert not refused.allowed
    assert 9 < refused.retry_after_s <= 10


async def test_gate_key_is_hash_tagged_and_expires(store: redis_asyncio.Redis) -> None:
    gate = UpstreamGate(store)
    await gate.try_pass("events", 10)
    assert await store.keys("*") == [b"{igm:gate}:events"]
    assert 9000 < await store.pttl("{igm:gate}:events") <= 10000


async def test_a_gate_key_without_expiry_is_repaired_not_stuck(
    store: redis_asyncio.Redis,
) -> None:
    await store.set("{igm:gate}:events", "left by hand")
    decision = await UpstreamGate(store).try_pass("events", INTERVAL)
    assert not decision.allowed
    assert decision.retry_after_s == INTERVAL
    assert 0 < await store.pttl("{igm:gate}:events") <= 300
