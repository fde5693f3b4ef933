"""The dates clients ask for reach the shared store: noted once a second at most,
and kept for another push while the store is down."""

from __future__ import annotations

from datetime import date

import fakeredis
import pytest

from app.catalogue.demand import DateDemand
from app.catalogue.shared import SharedLists
from app.store import Store, StoreUnavailable

DAY = date(2026, 12, 7)
OTHER = date(2026, 12, 8)
START = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


def shared_on(server: fakeredis.FakeServer) -> SharedLists:
    store: Store = fakeredis.FakeAsyncRedis(server=server)
    return SharedLists(store)


async def test_a_noted_date_is_pushed_once_with_its_last_time() -> None:
    shared, clock = shared_on(fakeredis.FakeServer()), Clock()
    demand = DateDemand(shared, clock)
    demand.note(DAY)
    clock.now += 0.5
    demand.note(DAY)  # within the second: not noted again
    clock.now += 0.6
    demand.note(OTHER)
    await demand.flush()
    assert await shared.demand(since=0.0) == {DAY: START, OTHER: START + 1.1}


async def test_dates_noted_a_second_apart_carry_the_later_time() -> None:
    shared, clock = shared_on(fakeredis.FakeServer()), Clock()
    demand = DateDemand(shared, clock)
    demand.note(DAY)
    clock.now += 1.0
    demand.note(DAY)
    await demand.flush()
    assert await shared.demand(since=0.0) == {DAY: START + 1.0}


async def test_a_failed_push_keeps_the_dates_for_the_next() -> None:
    server, clock = fakeredis.FakeServer(), Clock()
    shared = shared_on(server)
    demand = DateDemand(shared, clock)
    demand.note(DAY)
    server.connected = False
    with pytest.raises(StoreUnavailable):
        await demand.flush()
    server.connected = True
    await demand.flush()
    assert await shared.demand(since=0.0) == {DAY: START}
