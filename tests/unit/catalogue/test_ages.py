"""The lists' ages: the gauges (open, today's list, the oldest other date, sports)
and the admin listing of every list this replica holds."""

from __future__ import annotations

from datetime import date

import fakeredis

from app.catalogue.ages import list_states, report_ages
from app.catalogue.index import EventIndex
from app.catalogue.lists import OPEN, SPORTS, LocalLists, date_list_name
from app.catalogue.on_demand import OnDemandLists
from app.catalogue.shared import SharedLists
from app.catalogue.snapshot import Snapshot, make_snapshot
from app.observability.metrics import Metrics
from app.store import Store

NOW = 1_800_000_000.0
TODAY = date(2027, 1, 15)
YESTERDAY = date(2027, 1, 14)
TOMORROW = date(2027, 1, 16)


def holdings() -> tuple[LocalLists, OnDemandLists, Metrics]:
    store: Store = fakeredis.FakeAsyncRedis()
    shared = SharedLists(store)
    lists = LocalLists(shared, EventIndex())
    lists.install(make_snapshot(OPEN, {"events": []}, NOW - 5))
    for day, age in ((TODAY, 20), (YESTERDAY, 300), (TOMORROW, 90)):
        name = date_list_name(day)
        lists.install(make_snapshot(name, {"date": day.isoformat(), "events": []}, NOW - age))
    metrics = Metrics()
    on_demand = OnDemandLists(
        redis=store, shared=shared, metrics=metrics, wall=lambda: NOW, cold_wait_s=1.0
    )
    return lists, on_demand, metrics


def age_of(metrics: Metrics, kind: str) -> float | None:
    return metrics.registry.get_sample_value("gateway_catalogue_age_seconds", {"list": kind})


async def sports_fetched(on_demand: OnDemandLists, age: float) -> Snapshot:
    async def fetch() -> Snapshot:
        return make_snapshot(SPORTS, {"sports": []}, NOW - age)

    snapshot, _ = await on_demand.get(SPORTS, "sports", 3600.0, fetch)
    return snapshot


async def test_the_gauges_name_open_today_the_oldest_other_date_and_sports() -> None:
    lists, on_demand, metrics = holdings()
    report_ages(lists, on_demand, metrics, NOW, TODAY)
    assert age_of(metrics, "open") == 5
    assert age_of(metrics, "events_today") == 20
    assert age_of(metrics, "events_other") == 300
    assert age_of(metrics, "sports") is None  # not fetched yet
    await sports_fetched(on_demand, 40)
    report_ages(lists, on_demand, metrics, NOW, TODAY)
    assert age_of(metrics, "sports") == 40


async def test_the_listing_holds_every_list_in_name_order_then_sports() -> None:
    lists, on_demand, _ = holdings()
    await sports_fetched(on_demand, 40)
    states = [state.as_json() for state in list_states(lists, on_demand, NOW)]
    assert [(s["name"], s["ageS"]) for s in states] == [
        (date_list_name(YESTERDAY), 300),
        (date_list_name(TODAY), 20),
        (date_list_name(TOMORROW), 90),
        (OPEN, 5),
        (SPORTS, 40),
    ]
    assert states[-1]["events"] is None  # sports is not a list of events
    assert states[0]["events"] == 0
