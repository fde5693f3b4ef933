"""Finding an event by id: never "not found" before an open list fetched after the
question says so, and no upstream call beyond the fleet gate for it (fakeredis and
a real Redis; the simulator enforcing the event interval)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from app.catalogue.index import IndexedEvent
from app.catalogue.service import Catalogue
from app.errors import GatewayError
from tests.component.catalogue.conftest import INTERVAL_S, CatalogueFactory, Sim
from tests.component.catalogue.test_catalogue import guide_event, load, today
from tests.support.polling import eventually


async def found_or_warming(catalogue: Catalogue, event_id: str) -> IndexedEvent | None:
    """The lookup's answer; a 503 (with its Retry-After) counts as no answer yet."""
    warming: GatewayError | None = None
    try:
        found = await catalogue.find_event(event_id)
    except GatewayError as exc:
        warming, found = exc, None
    if warming is not None:
        assert (warming.status, warming.code) == (503, "catalogue_warming"), warming
        assert (warming.retry_after_s or 0) > 0
        assert warming.extra == {"eventId": event_id}
        return None
    assert found is not None, f"{event_id} answered not found"
    return found


async def test_a_follower_just_started_finds_what_the_leader_listed(
    sim: Sim, make_catalogue: CatalogueFactory
) -> None:
    await load(sim, guide_event("K1-1", "O", today()))
    leader, follower = make_catalogue("replica-a"), make_catalogue("replica-b")
    await leader.refresher.tick()  # the leader has just spent the open-list slot
    await follower.start()
    found = await follower.find_event("K1-1")  # its own try is refused: it waits for sync
    assert found is not None
    assert found.event.event_status_code == "O"
    assert (await sim.stats())["calls"]["event_open"] == 1


async def test_an_event_opened_upstream_is_never_not_found(
    sim: Sim, make_catalogue: CatalogueFactory
) -> None:
    first = guide_event("K2-1", "O", today())
    await load(sim, first)
    replicas = [make_catalogue("replica-a"), make_catalogue("replica-b")]
    for replica in replicas:
        await replica.start()
    await eventually(lambda: _warm(replicas), "both replicas warm")
    await load(sim, first, guide_event("K2-2", "O", today()))  # opened upstream just now

    async def found_everywhere() -> bool:
        answers = await asyncio.gather(*(found_or_warming(r, "K2-2") for r in replicas))
        return all(answer is not None for answer in answers)

    await eventually(found_everywhere, "the new event found on both replicas", timeout_s=10)
    stats = await sim.stats()
    assert sum(stats["violations"].values()) == 0, stats


async def _warm(replicas: list[Catalogue]) -> bool:
    return all(replica.warmed for replica in replicas)


async def test_an_id_no_list_holds_is_not_found_after_its_list_then_at_once(
    sim: Sim, make_catalogue: CatalogueFactory
) -> None:
    await load(sim, guide_event("K3-1", "O", today()))
    catalogue = make_catalogue(catalogue_cold_wait_s=0.05)
    await catalogue.refresher.tick()
    # The gate shut for the interval as the list was fetched, and the wait is shorter.
    with pytest.raises(GatewayError) as warming:
        await catalogue.find_event("NOPE-3")
    assert (warming.value.status, warming.value.code) == (503, "catalogue_warming")
    assert warming.value.retry_after_s is not None
    assert 0 < warming.value.retry_after_s <= INTERVAL_S + 0.05 + 0.05 + 0.1

    async def not_found() -> bool:
        return await found_or_absent(catalogue, "NOPE-3") == "absent"

    await eventually(not_found, "a list fetched since the question, without NOPE-3")
    calls = (await sim.stats())["calls"]["event_open"]
    assert await catalogue.find_event("NOPE-3") is None  # remembered: no wait, no call
    assert (await sim.stats())["calls"]["event_open"] == calls
    with pytest.raises(GatewayError) as missing:
        await catalogue.streams("NOPE-3")
    assert (missing.value.status, missing.value.code) == (404, "event_not_found")


async def found_or_absent(catalogue: Catalogue, event_id: str) -> str:
    try:
        return "found" if await catalogue.find_event(event_id) else "absent"
    except GatewayError:
        return "warming"


async def test_an_event_listed_after_its_id_was_asked_is_found(
    sim: Sim, make_catalogue: CatalogueFactory
) -> None:
    await load(sim, guide_event("K4-1", "O", today()))
    catalogue = make_catalogue(catalogue_cold_wait_s=0.05)
    await catalogue.refresher.tick()
    with pytest.raises(GatewayError):
        await catalogue.find_event("K4-2")  # not listed anywhere yet
    await load(sim, guide_event("K4-1", "O", today()), guide_event("K4-2", "O", today()))

    async def found() -> bool:
        return await found_or_absent(catalogue, "K4-2") == "found"

    await eventually(found, "K4-2 found once a list carries it")


async def test_many_unknown_ids_on_two_replicas_cost_no_call_beyond_the_gate(
    sim: Sim, make_catalogue: CatalogueFactory
) -> None:
    await load(sim, guide_event("K5-1", "O", today() + timedelta(hours=1)))
    replicas = [make_catalogue("replica-a"), make_catalogue("replica-b")]
    for replica in replicas:
        await replica.start()
    await eventually(lambda: _warm(replicas), "both replicas warm")
    loop = asyncio.get_running_loop()
    started = loop.time()
    before = (await sim.stats())["calls"]["event_open"]
    answers: list[str] = []

    async def absent() -> bool:  # rounds of lookups until a list fetched since says so
        answers.extend(
            await asyncio.gather(
                *(
                    found_or_absent(replica, f"NOPE-5-{n}")
                    for n in range(40)
                    for replica in replicas
                    for _ in range(3)
                )
            )
        )
        return "absent" in answers

    await eventually(absent, "the unknown ids not found")
    elapsed = loop.time() - started
    assert "found" not in answers
    stats = await sim.stats()
    assert sum(stats["violations"].values()) == 0, stats
    assert stats["minSpacingS"]["event_open"] >= INTERVAL_S
    assert stats["calls"]["event_open"] - before <= elapsed / INTERVAL_S + 1
