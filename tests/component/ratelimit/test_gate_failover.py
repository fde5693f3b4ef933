"""The fleet gate across a failover: a promoted replica that missed the last pass
(replication is asynchronous) must not let the next caller through early.

The lost write is made on purpose: the gate key is deleted on the replica just before
the master dies, as if the last ``SET`` had never reached it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import redis

from app.ratelimit.gate import GateDecision, UpstreamGate
from app.store import StoreConfig, StoreUnavailable, build_store, close_store
from tests.support.redis_sentinel import run_redis_sentinel
from tests.support.redis_server import run_redis_server

INTERVAL_S = 10.0
GATE_KEY = "{igm:gate}:events"

pytestmark = pytest.mark.redis


def promote_in_place(url: str) -> None:
    """Make the server start a new replication history, as a promoted replica does
    (``REPLICAOF`` somewhere, then ``REPLICAOF NO ONE``), keeping its data."""
    with redis.Redis.from_url(url) as client:
        client.execute_command("REPLICAOF", "127.0.0.1", "1")
        client.execute_command("REPLICAOF", "NO", "ONE")


@pytest.mark.parametrize(
    ("promoted", "witnessed", "passes"),
    [
        (False, True, True),  # same master, gate expired: the next call may go
        (False, False, True),
        (True, True, False),  # another master: held one interval
        (True, False, False),  # even for a caller holding no list
    ],
    ids=["same-master-holding", "same-master-new", "promoted-holding", "promoted-new"],
)
async def test_a_gate_lost_with_its_master_stays_shut_one_interval(
    tmp_path: Path, promoted: bool, witnessed: bool, passes: bool
) -> None:
    with run_redis_server(tmp_path / "redis") as url:
        store = build_store(url)
        try:
            gate = UpstreamGate(store)
            assert (await gate.try_pass("events", INTERVAL_S, witnessed=False)).allowed
            await store.delete(GATE_KEY)  # the last pass, lost
            if promoted:
                promote_in_place(url)
            decision = await UpstreamGate(store).try_pass("events", INTERVAL_S, witnessed=witnessed)
            assert decision.allowed is passes
            if not passes:
                assert INTERVAL_S - 1 < decision.retry_after_s <= INTERVAL_S
                # one interval only: the witness now names the new master
                await store.delete(GATE_KEY)
                again = await UpstreamGate(store).try_pass("events", INTERVAL_S, witnessed=True)
                assert again.allowed
        finally:
            await close_store(store)


async def answered(gate: UpstreamGate, *, witnessed: bool) -> GateDecision:
    """The first answer once the client reaches the new master (the connections to the
    old one fail first: a store outage, as the refresher sees it)."""
    for _ in range(20):
        try:
            return await gate.try_pass("events", INTERVAL_S, witnessed=witnessed)
        except StoreUnavailable:
            await asyncio.sleep(0.25)
    raise AssertionError("the store never answered after the failover")


@pytest.mark.slow
async def test_sentinel_failover_that_lost_the_last_pass_keeps_the_gate_shut(
    tmp_path: Path,
) -> None:
    with run_redis_sentinel(tmp_path / "sentinel") as setup:
        store = build_store(
            StoreConfig(
                mode="sentinel", sentinels=setup.addresses, sentinel_master=setup.master_name
            )
        )
        try:
            gate = UpstreamGate(store)
            assert (await gate.try_pass("events", INTERVAL_S, witnessed=True)).allowed is False
            await store.delete(GATE_KEY)  # the witness is now set: an ordinary pass
            assert (await gate.try_pass("events", INTERVAL_S, witnessed=True)).allowed
            with redis.Redis(port=setup.current_master().port) as master:
                assert master.wait(1, 2000) == 1  # the witness reached the replica
            with redis.Redis(port=setup.replica.port) as replica:
                replica.config_set("replica-read-only", "no")
                replica.delete(GATE_KEY)  # ... the last pass did not
                assert replica.exists(GATE_KEY) == 0
            old = setup.kill_master()
            setup.wait_promoted(old)
            decision = await answered(UpstreamGate(store), witnessed=True)
            assert not decision.allowed
            assert INTERVAL_S - 1 < decision.retry_after_s <= INTERVAL_S
        finally:
            await close_store(store)
