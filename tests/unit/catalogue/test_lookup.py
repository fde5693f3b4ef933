"""EventLookup on an injected wall clock: which open list decides, what is remembered,
and how often the fleet gate is tried. The fleet (the gate and the open-list fetch) is
a fake on the same clock; the lookup's own waits are real and short."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest
import redis.asyncio as redis_asyncio

from app.catalogue.index import EventIndex
from app.catalogue.lists import OPEN, LocalLists
from app.catalogue.lookup import EventLookup
from app.catalogue.shared import SharedLists
from app.catalogue.snapshot import encode_items, make_snapshot
from app.errors import GatewayError
from app.observability.metrics import Metrics
from app.store import StoreUnavailable
from app.upstream.models import Event

INTERVAL_S = 10.0
SYNC_S = 0.5
T0 = 1_800_000_000.0


@dataclass
class Clock:
    now: float = T0

    def __call__(self) -> float:
        return self.now


@dataclass
class Fleet:
    """The upstream's open list behind a fleet gate of one call per interval."""

    clock: Clock
    lists: LocalLists
    upstream: list[str] = field(default_factory=list)
    gate_opens_at: float = T0
    store_down: bool = False
    tries: int = 0
    fetches: int = 0

    def publish(self, at: float) -> None:
        """A list fetched at ``at`` arrives (from this replica or the leader)."""
        events = [
            Event.model_validate({"eventId": e, "eventStatusCode": "O"}) for e in self.upstream
        ]
        self.lists.install(make_snapshot(OPEN, {"events": encode_items(events)}, at))

    async def refresh_open(self, *, force: bool) -> bool:
        self.tries += 1
        if self.store_down:
            raise StoreUnavailable("gate")
        if self.clock.now < self.gate_opens_at:
            return False
        self.fetches += 1
        self.gate_opens_at = self.clock.now + INTERVAL_S
        self.publish(self.clock.now)
        return True

    async def next_slot_in(self, method: str) -> float:
        if self.store_down:
            raise StoreUnavailable("gate")
        return max(0.0, self.gate_opens_at - self.clock.now)


@dataclass
class Rig:
    clock: Clock
    fleet: Fleet
    index: EventIndex

    def lookup(self, wait_s: float = 0.05) -> EventLookup:
        return EventLookup(
            index=self.index,
            lists=self.fleet.lists,
            refresher=self.fleet,
            gate=self.fleet,
            interval_s=INTERVAL_S,
            wait_s=wait_s,
            sync_interval_s=SYNC_S,
            metrics=Metrics(),
            wall=self.clock,
        )


@pytest.fixture
async def rig(fake_redis: redis_asyncio.Redis) -> Rig:
    clock = Clock()
    index = EventIndex()
    lists = LocalLists(SharedLists(fake_redis), index)
    return Rig(clock, Fleet(clock, lists, upstream=["E-1"]), index)


async def test_a_listed_event_is_found_without_trying_the_gate(rig: Rig) -> None:
    rig.fleet.publish(T0)
    found = await rig.lookup().find("E-1")
    assert found is not None
    assert found.event.event_id == "E-1"
    assert rig.fleet.tries == 0


async def test_an_unknown_id_is_absent_after_a_list_fetched_since_and_remembered(
    rig: Rig,
) -> None:
    lookup = rig.lookup()
    rig.clock.now = T0 + 1
    assert await lookup.find("NOPE-1") is None  # the gate was open: fetched, and lacking
    assert (rig.fleet.tries, rig.fleet.fetches) == (1, 1)
    rig.clock.now += 3 * INTERVAL_S
    rig.fleet.publish(rig.clock.now - 1)  # a later list, still without it
    assert await lookup.find("NOPE-1") is None  # at once: no wait, no try
    assert rig.fleet.tries == 1


async def test_a_list_fetched_before_the_question_does_not_decide(rig: Rig) -> None:
    rig.fleet.publish(T0)  # the leader's list, fetched a moment before the question
    rig.fleet.gate_opens_at = T0 + INTERVAL_S
    rig.clock.now = T0 + 2
    lookup = rig.lookup()
    with pytest.raises(GatewayError) as warming:
        await lookup.find("NEW-1")
    assert (warming.value.status, warming.value.code) == (503, "catalogue_warming")
    assert warming.value.extra == {"eventId": "NEW-1"}
    assert warming.value.retry_after_s == pytest.approx(INTERVAL_S - 2 + SYNC_S)
    assert rig.fleet.tries == 1
    # the next list (fetched after the question) carries it: found, never "not found"
    rig.fleet.upstream.append("NEW-1")
    rig.clock.now = T0 + INTERVAL_S
    rig.fleet.publish(rig.clock.now)
    found = await lookup.find("NEW-1")
    assert found is not None


async def test_a_waiting_lookup_is_answered_by_the_list_that_arrives(rig: Rig) -> None:
    rig.fleet.publish(T0)
    rig.fleet.gate_opens_at = T0 + INTERVAL_S  # this replica may not fetch: the leader will
    rig.clock.now = T0 + 1
    waiting = asyncio.create_task(rig.lookup(wait_s=5.0).find("NEW-2"))
    await asyncio.sleep(0)  # let it start waiting
    rig.fleet.upstream.append("NEW-2")
    rig.clock.now = T0 + 2
    rig.fleet.publish(rig.clock.now)  # the leader's list, through the store
    found = await asyncio.wait_for(waiting, 2.0)
    assert found is not None
    assert found.seen_at == T0 + 2


async def test_many_waiting_lookups_try_the_gate_once(rig: Rig) -> None:
    rig.fleet.publish(T0)
    rig.fleet.gate_opens_at = T0 + INTERVAL_S
    rig.clock.now = T0 + 1
    lookup = rig.lookup(wait_s=0.3)
    answers = await asyncio.gather(
        *(lookup.find(f"NOPE-{n % 7}") for n in range(50)), return_exceptions=True
    )
    assert all(isinstance(a, GatewayError) and a.status == 503 for a in answers)
    assert rig.fleet.tries == 1  # refused, told when it opens: not asked again before then


async def test_with_the_store_down_it_is_warming_not_absent(rig: Rig) -> None:
    rig.fleet.publish(T0)
    rig.fleet.store_down = True
    rig.clock.now = T0 + 1
    with pytest.raises(GatewayError) as warming:
        await rig.lookup().find("NOPE-2")
    assert warming.value.status == 503
    assert warming.value.retry_after_s == INTERVAL_S


async def test_a_zero_wait_still_fetches_when_the_gate_is_open(rig: Rig) -> None:
    rig.fleet.upstream.append("NEW-3")
    found = await rig.lookup(wait_s=0.0).find("NEW-3")
    assert found is not None
    assert rig.fleet.fetches == 1
