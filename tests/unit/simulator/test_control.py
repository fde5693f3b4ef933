"""The ``/_sim/`` control API: call log, reset, pinned statuses, scenarios, geo table."""

from __future__ import annotations

from datetime import date

import httpx

from app.simulator.generator import generate_day
from tests.support.simulator import FakeClock
from tests.unit.simulator.data import CUSTOMER, NOW, SEED, SERVER_IP, link_params, operation_code


async def test_the_call_log_records_params_but_never_the_customer(
    scenario: httpx.AsyncClient, clock: FakeClock
) -> None:
    await scenario.get(f"/api/event/all/{CUSTOMER}/22-11-2026")
    clock.advance(2.5)
    await scenario.post("/api/stream/link", params=link_params(streamName="HLS-RAW"))
    await scenario.post("/api/liveStream", params={"encodedTransactionRef": "abc"})
    await scenario.get(f"/api/stream/{CUSTOMER}/OPEN-1")
    response = await scenario.get("/_sim/calls")
    assert CUSTOMER not in response.text
    calls = response.json()
    assert [c["method"] for c in calls] == ["event_all", "stream_link", "live_stream", "streams"]
    assert calls[0] == {
        "method": "event_all",
        "at": NOW.timestamp(),
        "monotonic": 1000.0,
        "status": 200,
        "operationCode": 200,
        "params": {"eventDate": "22-11-2026", "xForwardedFor": SERVER_IP},
        "violation": False,
    }
    assert calls[1]["at"] == NOW.timestamp() + 2.5
    assert calls[1]["monotonic"] == 1002.5
    assert calls[1]["params"] == {
        "userId": "viewer-1",
        "userIp": "127.0.0.9",
        "eventId": "OPEN-1",
        "streamName": "HLS-RAW",
        "redirectUrl": "https://operator.example/done",
        "xForwardedFor": SERVER_IP,
    }
    assert calls[2]["params"] == {"encodedTransactionRef": "abc", "xForwardedFor": SERVER_IP}
    assert calls[2]["operationCode"] == 308
    assert calls[3]["params"] == {"eventId": "OPEN-1", "xForwardedFor": SERVER_IP}


async def test_customer_is_left_out_even_of_refused_calls(
    scenario: httpx.AsyncClient, bare_client: httpx.AsyncClient
) -> None:
    await bare_client.get(f"/api/sport/all/{CUSTOMER}")
    await scenario.post("/api/stream/link", json=link_params())
    calls = (await scenario.get("/_sim/calls")).json()
    assert calls[0]["params"] == {}
    assert calls[0]["operationCode"] == 303
    assert "customerUid" not in calls[1]["params"]
    assert CUSTOMER not in str(calls)


async def test_reset_clears_log_stats_faults_pins_scenario_and_limits(
    scenario: httpx.AsyncClient,
) -> None:
    await scenario.post("/_sim/events/PEND-1/status", json={"status": "O"})
    await scenario.post("/_sim/faults", json={"method": "sports", "kind": "status"})
    await scenario.post("/_sim/config", json={"linkRatePerS": 1})
    await scenario.get(f"/api/event/open/{CUSTOMER}")
    assert (await scenario.post("/_sim/reset")).status_code == 200
    assert (await scenario.get("/_sim/calls")).json() == []
    stats = (await scenario.get("/_sim/stats")).json()
    assert set(stats["calls"].values()) == {0}
    assert (await scenario.get("/_sim/faults")).json() == []
    # The generated schedule is back, the scenario's events are gone.
    response = await scenario.get(f"/api/stream/{CUSTOMER}/PEND-1")
    assert response.json()["operationCode"] == 401
    # The spacing budget starts afresh: no 429 right after the pre-reset call.
    assert (await scenario.get(f"/api/event/open/{CUSTOMER}")).status_code == 200
    config = (await scenario.post("/_sim/config", json={})).json()
    assert config == {"eventsMinIntervalS": 10.0, "linkRatePerS": 5}


async def test_pinned_status_beats_the_clock(scenario: httpx.AsyncClient) -> None:
    body = (await scenario.post("/api/stream/link", params=link_params(eventId="PEND-1"))).json()
    assert operation_code(body) == 402
    response = await scenario.post("/_sim/events/PEND-1/status", json={"status": "O"})
    assert response.json() == {"eventId": "PEND-1", "status": "O"}
    body = (await scenario.post("/api/stream/link", params=link_params(eventId="PEND-1"))).json()
    assert operation_code(body) == 200
    await scenario.post("/_sim/events/OPEN-1/status", json={"status": "C"})
    events = (await scenario.get(f"/api/event/open/{CUSTOMER}")).json()["events"]
    assert [e["eventId"] for e in events] == ["OPEN-2", "GEO-1", "PEND-1", "OTHER-DAY-1"]


async def test_pinning_a_generated_event_opens_it(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    pending = next(e for e in generate_day(SEED, date(2026, 11, 23)) if e.fixed_status is None)
    await client.post(f"/_sim/events/{pending.event_id}/status", json={"status": "O"})
    events = (await client.get(f"/api/event/open/{CUSTOMER}")).json()["events"]
    assert pending.event_id in [e["eventId"] for e in events]
    clock.advance(10)
    listed = (await client.get(f"/api/event/all/{CUSTOMER}/23-11-2026")).json()["events"]
    assert next(e for e in listed if e["eventId"] == pending.event_id)["eventStatusCode"] == "O"


async def test_pins_are_checked(client: httpx.AsyncClient) -> None:
    response = await client.post("/_sim/events/NOPE-1/status", json={"status": "O"})
    assert response.status_code == 404
    event_id = generate_day(SEED, NOW.date())[0].event_id
    response = await client.post(f"/_sim/events/{event_id}/status", json={"status": "X"})
    assert response.status_code == 422


async def test_scenario_events_are_placed_on_their_start_date(
    scenario: httpx.AsyncClient, clock: FakeClock
) -> None:
    listed = {}
    for day in ("22-11-2026", "23-11-2026", "24-11-2026"):
        events = (await scenario.get(f"/api/event/all/{CUSTOMER}/{day}")).json()["events"]
        listed[day] = [e["eventId"] for e in events]
        clock.advance(10)
    assert listed == {
        "22-11-2026": [
            "OPEN-1",
            "OPEN-2",
            "GEO-1",
            "PEND-1",
            "CLOSED-1",
            "VOID-1",
            "ANY-DAY-1",
        ],
        "23-11-2026": ["OTHER-DAY-1", "ANY-DAY-1"],
        "24-11-2026": ["ANY-DAY-1"],
    }


async def test_scenario_events_keep_their_fields(scenario: httpx.AsyncClient) -> None:
    events = (await scenario.get(f"/api/event/all/{CUSTOMER}/22-11-2026")).json()["events"]
    first = events[0]
    assert first == {
        "eventId": "OPEN-1",
        "locationCode": "OPEN",
        "locationName": "Test Park",
        "sportCode": "HR",
        "eventStatusCode": "O",
        "eventNumber": "1",
        "title": "Open race",
        "startTime": "2026-11-22T11:00:00",
        "estimatedEndTime": "2026-11-22T13:00:00",
        "geoAllow": "",
        "geoBlock": "",
    }
    # The malformed time is served as given and still read for the status.
    assert events[1]["startTime"] == "2026-11-22T:11:00:00"
    assert events[1]["eventStatusCode"] == "O"
    streams = (await scenario.get(f"/api/stream/{CUSTOMER}/PEND-1")).json()
    assert [s["uniqueStreamName"] for s in next(iter(streams.values()))] == ["HLS"]


async def test_bad_scenarios_are_refused(client: httpx.AsyncClient) -> None:
    response = await client.post("/_sim/scenario", json={"events": [{"title": "no id"}]})
    assert response.status_code == 422
    response = await client.post(
        "/_sim/scenario", json={"events": [{"eventId": "A-1"}], "streams": {"A-1": [{}]}}
    )
    assert response.status_code == 422
    response = await client.post(
        "/_sim/scenario", json={"events": [{"locationCode": "LOC", "eventNumber": "7"}]}
    )
    assert response.json() == {"events": 1}
    assert (await client.get(f"/api/stream/{CUSTOMER}/LOC-7")).status_code == 200


async def test_ip_countries_extend_the_geo_table(scenario: httpx.AsyncClient) -> None:
    params = link_params(eventId="GEO-1", userIp="5.6.7.8")
    assert operation_code((await scenario.post("/api/stream/link", params=params)).json()) == 306
    response = await scenario.post("/_sim/ip-countries", json={"5.6.0.0/16": "US-NJ"})
    assert response.json() == {"added": 1}
    body = (await scenario.post("/api/stream/link", params=params)).json()
    assert operation_code(body) == 200
    response = await scenario.post("/_sim/ip-countries", json={"5.6.0.0/33": "US"})
    assert response.status_code == 422
