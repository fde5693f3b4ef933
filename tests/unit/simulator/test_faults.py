"""Injected faults through ``/_sim/faults``."""

from __future__ import annotations

import httpx
import orjson
import pytest

from app.simulator.gate import SimulatedConnectionReset
from tests.support.simulator import FakeClock
from tests.unit.simulator.data import CUSTOMER, link_params, operation_code

SPORTS = f"/api/sport/all/{CUSTOMER}"


async def _fault(client: httpx.AsyncClient, **fault: object) -> None:
    response = await client.post("/_sim/faults", json=fault)
    assert response.status_code == 200, response.text


async def test_status_fault_for_count_calls(client: httpx.AsyncClient) -> None:
    await _fault(client, method="sports", kind="status", status=503, count=2)
    responses = [await client.get(SPORTS) for _ in range(3)]
    assert [r.status_code for r in responses] == [503, 503, 200]
    assert responses[0].json() == {"message": "Service Unavailable", "operationCode": 503}
    assert (await client.get("/_sim/faults")).json() == []
    calls = (await client.get("/_sim/calls")).json()
    assert [c["status"] for c in calls] == [503, 503, 200]


async def test_fault_without_count_lasts_until_cleared(client: httpx.AsyncClient) -> None:
    await _fault(client, method="*", kind="status", status=500)
    assert [(await client.get(SPORTS)).status_code for _ in range(4)] == [500] * 4
    assert (await client.get(f"/api/stream/{CUSTOMER}/x")).status_code == 500
    assert (await client.delete("/_sim/faults")).status_code == 200
    assert (await client.get(SPORTS)).status_code == 200


async def test_fault_applies_to_its_method_only(client: httpx.AsyncClient) -> None:
    await _fault(client, method="event_open", kind="status", status=502)
    assert (await client.get(SPORTS)).status_code == 200
    assert (await client.get(f"/api/event/open/{CUSTOMER}")).status_code == 502


async def test_delay_fault_sleeps_then_answers(client: httpx.AsyncClient, clock: FakeClock) -> None:
    await _fault(client, method="sports", kind="delay", delayS=3.5, count=1)
    response = await client.get(SPORTS)
    assert response.status_code == 200
    assert len(response.json()["Sports"]) == 72
    assert clock.sleeps == [3.5]


@pytest.mark.parametrize("kind", ["garbage", "truncated"])
async def test_unreadable_bodies(client: httpx.AsyncClient, kind: str) -> None:
    whole = (await client.get(SPORTS)).content
    await _fault(client, method="sports", kind=kind, count=1)
    response = await client.get(SPORTS)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(response.content)
    if kind == "truncated":
        assert response.content == whole[: len(whole) // 2]
    if kind == "garbage":
        assert response.content.startswith(b"<html>")


async def test_empty_fault_empties_the_list(client: httpx.AsyncClient) -> None:
    assert (await client.get(SPORTS)).json()["Sports"]
    await _fault(client, method="sports", kind="empty", count=1)
    response = await client.get(SPORTS)
    assert response.status_code == 200
    assert response.json() == {"Sports": []}
    assert (await client.get(SPORTS)).json()["Sports"]  # count=1: gone again


async def test_operation_fault_on_a_get_method(client: httpx.AsyncClient) -> None:
    await _fault(client, method="sports", kind="operation", operationCode=300, count=1)
    response = await client.get(SPORTS)
    assert response.status_code == 400
    assert response.json() == {
        "message": "Your customer details are invalid, please contact support.",
        "operationCode": 300,
    }


async def test_provider_failure_comes_after_validation(scenario: httpx.AsyncClient) -> None:
    await _fault(scenario, method="stream_link", kind="operation", operationCode=307, count=1)
    invalid = await scenario.post("/api/stream/link", params=link_params(userId=None))
    assert operation_code(invalid.json()) == 302
    failed = await scenario.post("/api/stream/link", params=link_params())
    assert failed.status_code == 200
    body = failed.json()
    assert operation_code(body) == 307
    assert "Unable to get stream link from external provider" in body.values()
    assert body.get("streamLink", body.get("StreamLink", "absent")) is None
    recovered = await scenario.post("/api/stream/link", params=link_params())
    assert operation_code(recovered.json()) == 200


async def test_operation_fault_on_live_stream(scenario: httpx.AsyncClient) -> None:
    linked = await scenario.post("/api/stream/link", params=link_params(streamName="HLS-RAW"))
    ref = next(v for k, v in linked.json().items() if k.lower() == "streamlink")
    await _fault(scenario, method="live_stream", kind="operation", operationCode=307, count=1)
    response = await scenario.post("/api/liveStream", params={"encodedTransactionRef": ref})
    assert response.json()["OperationCode"] == 307
    assert response.json()["StreamLink"] is None
    again = await scenario.post("/api/liveStream", params={"encodedTransactionRef": ref})
    assert again.json()["OperationCode"] == 200


async def test_reset_fault_drops_the_connection(client: httpx.AsyncClient) -> None:
    await _fault(client, method="sports", kind="reset", count=1)
    with pytest.raises(SimulatedConnectionReset):
        await client.get(SPORTS)
    assert (await client.get(SPORTS)).status_code == 200
    calls = (await client.get("/_sim/calls")).json()
    assert [c["status"] for c in calls] == [None, 200]


async def test_rate_limit_comes_before_faults(client: httpx.AsyncClient) -> None:
    await _fault(client, method="event_open", kind="status", status=503, count=1)
    assert (await client.get(f"/api/event/open/{CUSTOMER}")).status_code == 503
    assert (await client.get(f"/api/event/open/{CUSTOMER}")).status_code == 429


@pytest.mark.parametrize(
    "fault",
    [
        {"method": "nope", "kind": "status"},
        {"method": "sports", "kind": "explode"},
        {"method": "sports", "kind": "status", "count": 0},
        {"method": "sports", "kind": "delay", "delayS": -1},
    ],
)
async def test_bad_faults_are_refused(client: httpx.AsyncClient, fault: dict[str, object]) -> None:
    assert (await client.post("/_sim/faults", json=fault)).status_code == 422


async def test_active_faults_are_listed(client: httpx.AsyncClient) -> None:
    await _fault(client, method="streams", kind="delay", delayS=2.0, count=3)
    assert (await client.get("/_sim/faults")).json() == [
        {
            "method": "streams",
            "kind": "delay",
            "status": 503,
            "delayS": 2.0,
            "operationCode": 307,
            "count": 3,
        }
    ]
