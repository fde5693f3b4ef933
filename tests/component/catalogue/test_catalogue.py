"""The catalogue against the simulator and a store (both fakeredis and a real Redis).

Intervals here are short (0.3 s) but real: the fleet gate is timed by the store's
clock, so tests wait for conditions (``eventually``) and assert on what the simulator
recorded, never on how long something took.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from app.catalogue.service import Catalogue
from app.errors import GatewayError
from app.upstream.client import EVENT_OPEN
from tests.component.catalogue.conftest import INTERVAL_S, CatalogueFactory, Sim
from tests.support.polling import eventually


def today() -> datetime:
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def guide_event(event_id: str, status: str, start: datetime, **extra: str) -> dict[str, Any]:
    return {
        "eventId": event_id,
        "locationCode": event_id.split("-")[0],
        "locationName": "Test League",
        "sportCode": "FT",
        "eventStatusCode": status,
        "eventNumber": event_id.split("-")[-1],
        "title": f"Match {event_id}",
        "startTime": start.strftime("%Y-%m-%dT%H:%M:%S"),
        "estimatedEndTime": (start + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S"),
        "geoAllow": extra.get("geoAllow", ""),
        "geoBlock": extra.get("geoBlock", ""),
    }


async def load(sim: Sim, *events: dict[str, Any]) -> None:
    await sim.post("/_sim/scenario", {"events": list(events), "streams": {}})


def event_ids(body: bytes) -> list[str]:
    return [e["eventId"] for e in orjson.loads(body)["events"]]


async def test_leader_tick_fetches_open_and_today(
    sim: Sim, make_catalogue: CatalogueFactory
) -> None:
    start = today() + timedelta(hours=1)
    await load(sim, guide_event("L1-1", "O", start), guide_event("L1-2", "P", start))
    catalogue = make_catalogue()
    await catalogue.refresher.tick()
    assert catalogue.refresher.is_leader
    open_served = await catalogue.open_events()
    assert event_ids(open_served.snapshot.body) == ["L1-1"]
    day = await catalogue.events_on(today().date(), None, None)
    assert event_ids(day.snapshot.body) == ["L1-1", "L1-2"]
    assert day.state == "hit"
    stats = await sim.stats()
    assert stats["calls"]["event_open"] == 1
    assert stats["calls"]["event_all"] == 1
    indexed = catalogue.index.get("L1-2")
    assert indexed is not None
    assert indexed.event.event_status_code == "P"


async def test_two_replicas_one_leader_and_no_violation(
    sim: Sim, make_catalogue: CatalogueFactory
) -> None:
    replicas = [make_catalogue("replica-a"), make_catalogue("replica-b")]
    for replica in replicas:
        await replica.start()

    async def enough_calls() -> bool:
        calls: int = (await sim.stats())["calls"].get("event_open", 0)
        return calls >= 4

    await eventually(enough_calls, "four event/open calls", timeout_s=30)
    leaders = [r.refresher.is_leader for r in replicas]
    assert leaders.count(True) == 1
    stats = await sim.stats()
    assert sum(stats["violations"].values()) == 0
    assert stats["minSpacingS"]["event_open"] >= INTERVAL_S
    # the follower serves what the leader fetched, without calling the upstream itself
    follower = replicas[leaders.index(False)]
    await eventually(lambda: _has_open(follower), "the follower warm", timeout_s=20)


async def _has_open(catalogue: Catalogue) -> bool:
    return catalogue.warmed


async def test_follower_reads_what_leader_wrote(sim: Sim, make_catalogue: CatalogueFactory) -> None:
    await load(sim, guide_event("F1-1", "O", today() + timedelta(hours=1)))
    leader, follower = make_catalogue("replica-a"), make_catalogue("replica-b")
    await leader.refresher.tick()
    calls_before = (await sim.stats())["calls"]
    await follower.sync_once()
    served = await follower.open_events()
    assert event_ids(served.snapshot.body) == ["F1-1"]
    assert served.snapshot.etag == (await leader.open_events()).snapshot.etag
    assert (await sim.stats())["calls"] == calls_before
    assert follower.index.get("F1-1") is not None


async def test_cold_date_answers_503_then_is_fetched_on_demand(
    sim: Sim, make_catalogue: CatalogueFactory
) -> None:
    leader, follower = make_catalogue("replica-a"), make_catalogue("replica-b")
    await leader.refresher.tick()  # open + today
    wanted = today().date() + timedelta(days=2)
    with pytest.raises(GatewayError) as refused:
        await follower.events_on(wanted, None, None)
    assert refused.value.status == 503
    assert refused.value.code == "catalogue_warming"
    assert refused.value.retry_after_s is not None
    assert refused.value.retry_after_s > 0

    async def fetched() -> bool:
        # another date may take a slot first: keep going until the wanted one is in
        await leader.refresher.tick()
        await leader.refresher.refresh_next_date()
        return leader._lists.get(f"events:{wanted.isoformat()}") is not None

    await eventually(fetched, f"the leader fetched {wanted}", timeout_s=20)
    await follower.sync_once()
    served = await follower.events_on(wanted, None, None)
    assert orjson.loads(served.snapshot.body)["date"] == wanted.isoformat()
    assert [c["params"]["eventDate"] for c in await sim.calls("event_all")][-1] == wanted.strftime(
        "%d-%m-%Y"
    )


async def test_out_of_range_date_is_refused_without_upstream(
    sim: Sim, make_catalogue: CatalogueFactory
) -> None:
    catalogue = make_catalogue()
    with pytest.raises(GatewayError) as refused:
        await catalogue.events_on(today().date() + timedelta(days=60), None, None)
    assert refused.value.status == 422
    assert refused.value.code == "date_out_of_range"
    assert (await sim.stats())["calls"].get("event_all", 0) == 0


async def test_upstream_failure_keeps_last_good_copy(
    sim: Sim, make_catalogue: CatalogueFactory
) -> None:
    await load(sim, guide_event("E1-1", "O", today() + timedelta(hours=1)))
    catalogue = make_catalogue()
    await catalogue.refresher.tick()
    before = await catalogue.open_events()
    await sim.post("/_sim/faults", {"method": "event_open", "kind": "status", "status": 503})

    async def failed_refresh() -> bool:
        await catalogue.refresher.refresh_open(force=True)
        calls = await sim.calls("event_open")
        return bool(calls[-1]["status"] == 503)

    await eventually(failed_refresh, "a refresh answered 503", timeout_s=20)
    after = await catalogue.open_events()
    assert after.snapshot is before.snapshot
    assert event_ids(after.snapshot.body) == ["E1-1"]


async def test_suddenly_empty_list_needs_confirmation(
    sim: Sim, make_catalogue: CatalogueFactory
) -> None:
    await load(sim, guide_event("M1-1", "O", today() + timedelta(hours=1)))
    catalogue = make_catalogue()
    await catalogue.refresher.tick()
    await sim.post("/_sim/faults", {"method": "event_open", "kind": "empty"})

    async def refreshed() -> bool:
        return await catalogue.refresher.refresh_open(force=True)

    await eventually(refreshed, "a first empty refresh", timeout_s=20)
    assert event_ids((await catalogue.open_events()).snapshot.body) == ["M1-1"]  # held back
    await eventually(refreshed, "a second empty refresh", timeout_s=20)
    assert event_ids((await catalogue.open_events()).snapshot.body) == []  # confirmed


async def test_open_list_marks_events_open_in_date_lists(
    sim: Sim, make_catalogue: CatalogueFactory
) -> None:
    start = today() + timedelta(hours=1)
    await load(sim, guide_event("S1-1", "P", start), guide_event("S1-2", "P", start))
    catalogue = make_catalogue()
    await catalogue.refresher.tick()
    day = today().date()
    assert "O" not in _statuses(await catalogue.events_on(day, None, None))
    await sim.post("/_sim/events/S1-1/status", {"status": "O"})

    async def opened() -> bool:
        await catalogue.refresher.refresh_open(force=True)
        return _statuses(await catalogue.events_on(day, None, None)) == ["O", "P"]

    await eventually(opened, "S1-1 open in the date list", timeout_s=20)
    assert (await sim.stats())["calls"]["event_all"] == 1  # no extra event/all call needed


def _statuses(served: Any) -> list[str]:
    return [e["eventStatusCode"] for e in orjson.loads(served.snapshot.body)["events"]]


async def test_streams_single_flight_across_replicas(
    sim: Sim, make_catalogue: CatalogueFactory
) -> None:
    await load(sim, guide_event("T1-1", "O", today() + timedelta(hours=1)))
    first, second = make_catalogue("replica-a"), make_catalogue("replica-b")
    await first.refresher.tick()
    await second.sync_once()
    results = await asyncio.gather(
        *(replica.streams("T1-1") for replica in (first, second) for _ in range(15))
    )
    assert {served.snapshot.etag for served in results} == {results[0].snapshot.etag}
    assert (await sim.stats())["calls"]["streams"] == 1
    streams = await first.event_streams("T1-1")
    assert [s.name for s in streams] == ["HLS"]
    assert (await first.streams("T1-1")).state == "hit"


async def test_unknown_event_costs_at_most_one_refresh(
    sim: Sim, make_catalogue: CatalogueFactory
) -> None:
    catalogue = make_catalogue()
    await catalogue.refresher.tick()

    async def gate_open() -> bool:
        return await catalogue.next_slot_in(EVENT_OPEN) == 0

    await eventually(gate_open, "the open-list gate reopened", timeout_s=20)
    before = (await sim.stats())["calls"]["event_open"]
    assert await catalogue.find_event("NOPE-1") is None
    assert await catalogue.find_event("NOPE-1") is None
    assert (await sim.stats())["calls"]["event_open"] == before + 1
    assert await catalogue.find_event("../../etc/passwd") is None
    with pytest.raises(GatewayError) as missing:
        await catalogue.streams("NOPE-1")
    assert missing.value.status == 404
    assert (await sim.stats())["calls"].get("streams", 0) == 0
