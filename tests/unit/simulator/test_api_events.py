"""The GET methods: events of a date, open events, streams of an event, sports."""

from __future__ import annotations

from datetime import date, timedelta

import httpx
import pytest

from app.simulator.events import casing_flag
from app.simulator.generator import generate_day
from tests.support.simulator import FakeClock
from tests.unit.simulator.data import CUSTOMER, NOW, SEED

GET_PATHS = [
    f"/api/event/all/{CUSTOMER}/22-11-2026",
    f"/api/event/open/{CUSTOMER}",
    f"/api/stream/{CUSTOMER}/OPEN-1",
    f"/api/sport/all/{CUSTOMER}",
]


async def test_events_of_a_date_are_the_generated_day_with_statuses_now(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get(f"/api/event/all/{CUSTOMER}/22-11-2026")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    events = response.json()["events"]
    expected = generate_day(SEED, date(2026, 11, 22))
    assert [e["eventId"] for e in events] == [e.event_id for e in expected]
    for served, event in zip(events, expected, strict=True):
        assert served["eventStatusCode"] == event.status_at(NOW)
        assert served["startTime"] == event.wire["startTime"]
        assert set(served) == set(event.wire)
    assert {e["eventStatusCode"] for e in events} >= {"P", "C"}


async def test_status_of_a_listed_event_follows_the_clock(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    event = next(e for e in generate_day(SEED, NOW.date()) if e.fixed_status is None)
    assert event.start is not None
    assert event.end is not None
    await client.post("/_sim/config", json={"eventsMinIntervalS": 0})
    statuses = []
    for moment in (event.start - timedelta(seconds=1), event.start, event.end):
        clock.wall = moment
        listed = (await client.get(f"/api/event/all/{CUSTOMER}/22-11-2026")).json()["events"]
        statuses.append(
            next(e for e in listed if e["eventId"] == event.event_id)["eventStatusCode"]
        )
    assert statuses == ["P", "O", "C"]


@pytest.mark.parametrize(
    "event_date", ["2026-11-22", "22/11/2026", "31-02-2026", "1-1-2026", "today", "22-11-26"]
)
async def test_a_date_not_in_dd_mm_yyyy_is_a_bad_request(
    client: httpx.AsyncClient, event_date: str
) -> None:
    response = await client.get(f"/api/event/all/{CUSTOMER}/{event_date}")
    assert response.status_code == 400
    assert response.json() == {
        "message": "Bad Request - Verify that query parameters are correct",
        "operationCode": 400,
    }


async def test_open_events_are_those_open_now_including_yesterdays(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    day, late = next(
        (day, e)
        for n in range(60)
        for day in [NOW.date() + timedelta(days=n)]
        for e in generate_day(SEED, day)
        if e.fixed_status is None and e.end is not None and e.end.date() > day
    )
    assert late.end is not None
    just_after_midnight = late.end - timedelta(minutes=1)
    clock.set(just_after_midnight)
    response = await client.get(f"/api/event/open/{CUSTOMER}")
    assert response.status_code == 200
    events = response.json()["events"]
    assert late.event_id in [e["eventId"] for e in events]
    expected = [
        e.event_id
        for d in (day, day + timedelta(days=1))
        for e in generate_day(SEED, d)
        if e.status_at(just_after_midnight) == "O"
    ]
    assert [e["eventId"] for e in events] == expected
    assert {e["eventStatusCode"] for e in events} == {"O"}


async def test_streams_of_an_event_use_its_key_casing(client: httpx.AsyncClient) -> None:
    keys = set()
    for event in generate_day(SEED, NOW.date())[:12]:
        response = await client.get(f"/api/stream/{CUSTOMER}/{event.event_id}")
        assert response.status_code == 200
        body = response.json()
        key = "EventStreams" if casing_flag(SEED, event.event_id, "streams") else "eventStreams"
        assert list(body) == [key]
        assert [s["uniqueStreamName"] for s in body[key]] == [s.name for s in event.streams]
        assert body[key][0]["streamType"] == "HLS"
        assert set(body[key][0]) == {
            "uniqueStreamName",
            "streamType",
            "description",
            "geoCountryAllow",
            "geoCountryBlock",
            "playerWidth",
            "playerHeight",
            "fixedSize",
            "controls",
            "fullscreen",
            "videoBitRateKbps",
            "audioBitRateKbps",
            "streamStretching",
            "streamWidth",
            "streamHeight",
        }
        keys.add(key)
    assert keys == {"EventStreams", "eventStreams"}


async def test_streams_of_an_unknown_event(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/api/stream/{CUSTOMER}/013WOFT640-32325")
    assert response.status_code == 400
    assert response.json() == {"message": "Event not found.", "operationCode": 401}


async def test_sports_are_the_guides_table(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/api/sport/all/{CUSTOMER}")
    assert response.status_code == 200
    sports = response.json()["Sports"]
    assert len(sports) == 72
    assert {"Code": "HR", "Name": "Horse Racing"} in sports
    assert {"Code": "GH", "Name": "Greyhound Racing"} in sports


@pytest.mark.parametrize("path", GET_PATHS)
async def test_wrong_customer_is_300(scenario: httpx.AsyncClient, path: str) -> None:
    response = await scenario.get(path.replace(CUSTOMER, "not-the-customer"))
    assert response.status_code == 400
    assert response.json() == {
        "message": "Your customer details are invalid, please contact support.",
        "operationCode": 300,
    }


@pytest.mark.parametrize("path", GET_PATHS)
@pytest.mark.parametrize(
    "forwarded",
    [None, "", "8.8.8.8", "8.8.8.8, 172.16.5.4"],
    ids=["absent", "empty", "other", "second"],
)
async def test_caller_not_whitelisted_is_303(
    scenario: httpx.AsyncClient, bare_client: httpx.AsyncClient, path: str, forwarded: str | None
) -> None:
    headers = {} if forwarded is None else {"X-Forwarded-For": forwarded}
    response = await bare_client.get(path, headers=headers)
    assert response.status_code == 400
    assert response.json() == {
        "message": "Calls from this Server are not allowed.",
        "operationCode": 303,
    }


async def test_whitelisted_server_may_be_first_of_a_forwarded_chain(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get(
        f"/api/sport/all/{CUSTOMER}", headers={"X-Forwarded-For": "192.168.7.7, 10.0.0.1"}
    )
    assert response.status_code == 200
