"""UpstreamGate over fakeredis and a real redis-server.

The gate's interval is Redis's own key expiry: the tests that check refusals use an
interval of seconds, so a loaded machine cannot let it lapse mid-test; where the gate
must reopen, the test waits out a one-second interval or shortens the key's TTL as if
the interval had passed, then polls with a generous deadline.
"""

from __future__ import annotations

import asyncio

import redis.asyncio as redis_asyncio

from app.ratelimit.gate import GateDecision, UpstreamGate
from tests.support.polling import eventually

INTERVAL_S = 10.0


async def race(gates: list[UpstreamGate], method: str) -> list[GateDecision]:
    return list(await asyncio.gather(*(g.try_pass(method, INTERVAL_S) for g in gates)))


async def test_exactly_one_of_many_concurrent_callers_passes_per_interval(
    store: redis_asyncio.Redis,
) -> None:
    replicas = [UpstreamGate(store) for _ in range(10)]

    first = await race(replicas, "events")
    assert sum(d.allowed for d in first) == 1
    refused = [d for d in first if not d.allowed]
    assert all(0 < d.retry_after_s <= INTERVAL_S for d in refused)
    assert all(d.retry_after_s == 0 for d in first if d.allowed)

    again = await race(replicas, "events")
    assert not any(d.allowed for d in again)

    # The interval ends (its last 50 ms left, as if 10 s had passed).
    key = replicas[0].key("events")
    await store.pexpire(key, 50)

    async def open_again() -> bool:
        return await store.exists(key) == 0

    await eventually(open_again, "the gate reopens")
    second = await race(replicas, "events")
    assert sum(d.allowed for d in second) == 1


async def test_next_slot_in_reports_the_time_until_the_gate_opens(
    store: redis_asyncio.Redis,
) -> None:
    interval_s = 1.0  # waited out for real
    gate = UpstreamGate(store)
    assert await gate.next_slot_in("events") == 0
    assert (await gate.try_pass("events", interval_s)).allowed
    wait = await gate.next_slot_in("events")
    assert 0 < wait <= interval_s
    await asyncio.sleep(wait + 0.02)  # the stimulus: a caller waits what it was told
    assert await gate.next_slot_in("events") == 0
    assert (await gate.try_pass("events", interval_s)).allowed


async def test_methods_and_prefixes_have_separate_gates(store: redis_asyncio.Redis) -> None:
    gate = UpstreamGate(store)
    assert (await gate.try_pass("events", 60)).allowed
    assert (await gate.try_pass("event_detail", 60)).allowed
    assert (await UpstreamGate(store, prefix="other").try_pass("events", 60)).allowed
    refused = await gate.try_pass("events", 60)
    assert not refused.allowed
    assert 50 < refused.retry_after_s <= 60


async def test_gate_key_is_hash_tagged_and_expires(store: redis_asyncio.Redis) -> None:
    gate = UpstreamGate(store)
    await gate.try_pass("events", 60)
    assert await store.keys("*") == [b"{igm:gate}:events"]
    assert 50_000 < await store.pttl("{igm:gate}:events") <= 60_000


async def test_a_gate_key_without_expiry_is_repaired_not_stuck(
    store: redis_asyncio.Redis,
) -> None:
    await store.set("{igm:gate}:events", "left by hand")
    decision = await UpstreamGate(store).try_pass("events", INTERVAL_S)
    assert not decision.allowed
    assert decision.retry_after_s == INTERVAL_S
    assert 0 < await store.pttl("{igm:gate}:events") <= INTERVAL_S * 1000
