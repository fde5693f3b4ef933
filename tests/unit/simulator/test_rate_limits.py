"""The documented limits over HTTP: 429, violations in the log and the statistics."""

from __future__ import annotations

import httpx
import pytest

from tests.support.simulator import FakeClock
from tests.unit.simulator.data import CUSTOMER, link_params

RATE_LIMITED = {"message": "Rate limit exceeded", "operationCode": 429}


async def _stats(client: httpx.AsyncClient) -> dict[str, dict[str, object]]:
    stats: dict[str, dict[str, object]] = (await client.get("/_sim/stats")).json()
    return stats


@pytest.mark.parametrize(
    ("method", "paths"),
    [
        (
            "event_all",
            [f"/api/event/all/{CUSTOMER}/22-11-2026", f"/api/event/all/{CUSTOMER}/23-11-2026"],
        ),
        ("event_open", [f"/api/event/open/{CUSTOMER}", f"/api/event/open/{CUSTOMER}"]),
    ],
)
async def test_event_methods_allow_one_call_per_interval(
    client: httpx.AsyncClient, clock: FakeClock, method: str, paths: list[str]
) -> None:
    first, other = paths
    statuses = []
    for step, path in [(0.0, first), (4.0, other), (6.0, first), (10.0, other), (3.0, first)]:
        clock.advance(step)
        response = await client.get(path)
        statuses.append(response.status_code)
        if response.status_code == 429:
            assert response.json() == RATE_LIMITED
    # Another date shares the budget; a refused call still counts as the previous call.
    assert statuses == [200, 429, 429, 200, 429]
    stats = await _stats(client)
    assert stats["calls"][method] == 5
    assert stats["violations"][method] == 3
    assert stats["minSpacingS"][method] == 3.0
    calls = (await client.get("/_sim/calls", params={"method": method})).json()
    assert [c["violation"] for c in calls] == [False, True, True, False, True]
    assert [c["status"] for c in calls] == statuses
    assert [c["operationCode"] for c in calls] == [200, 429, 429, 200, 429]


async def test_the_two_event_methods_have_separate_budgets(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    assert (await client.get(f"/api/event/all/{CUSTOMER}/22-11-2026")).status_code == 200
    clock.advance(1)
    assert (await client.get(f"/api/event/open/{CUSTOMER}")).status_code == 200


async def test_stream_link_allows_n_calls_per_sliding_second(
    scenario: httpx.AsyncClient, clock: FakeClock
) -> None:
    statuses = []
    for _ in range(7):  # the fixture's limit is 5 per second
        response = await scenario.post("/api/stream/link", params=link_params())
        statuses.append(response.status_code)
        clock.advance(0.1)
    assert statuses == [200] * 5 + [429, 429]
    assert response.json() == RATE_LIMITED
    clock.advance(0.31)  # the first call (t=0.0) has left the window at t=1.01
    assert (await scenario.post("/api/stream/link", params=link_params())).status_code == 200
    assert (await scenario.post("/api/stream/link", params=link_params())).status_code == 429
    stats = await _stats(scenario)
    assert stats["calls"]["stream_link"] == 9
    assert stats["violations"]["stream_link"] == 3
    assert stats["maxPerSecond"]["stream_link"] == 8  # t = 0.1 .. 0.6 and twice 1.01
    assert stats["violations"]["live_stream"] == 0


async def test_live_stream_has_its_own_window(scenario: httpx.AsyncClient) -> None:
    for _ in range(5):
        await scenario.post("/api/stream/link", params=link_params())
    statuses = [
        (await scenario.post("/api/liveStream", params={"encodedTransactionRef": "x"})).status_code
        for _ in range(6)
    ]
    assert statuses == [200] * 5 + [429]
    stats = await _stats(scenario)
    assert stats["violations"] == {
        "event_all": 0,
        "event_open": 0,
        "streams": 0,
        "sports": 0,
        "stream_link": 0,
        "live_stream": 1,
    }


async def test_streams_and_sports_are_not_limited(scenario: httpx.AsyncClient) -> None:
    for _ in range(30):
        assert (await scenario.get(f"/api/stream/{CUSTOMER}/OPEN-1")).status_code == 200
        assert (await scenario.get(f"/api/sport/all/{CUSTOMER}")).status_code == 200
    stats = await _stats(scenario)
    assert stats["maxPerSecond"]["streams"] == 30
    assert stats["minSpacingS"]["sports"] == 0.0
    assert stats["violations"]["streams"] == 0


async def test_limits_change_at_run_time(scenario: httpx.AsyncClient, clock: FakeClock) -> None:
    response = await scenario.post(
        "/_sim/config", json={"eventsMinIntervalS": 1.0, "linkRatePerS": 2}
    )
    assert response.json() == {"eventsMinIntervalS": 1.0, "linkRatePerS": 2}
    link_statuses = [
        (await scenario.post("/api/stream/link", params=link_params())).status_code
        for _ in range(3)
    ]
    assert link_statuses == [200, 200, 429]
    assert (await scenario.get(f"/api/event/open/{CUSTOMER}")).status_code == 200
    clock.advance(1.0)
    assert (await scenario.get(f"/api/event/open/{CUSTOMER}")).status_code == 200
    response = await scenario.post("/_sim/config", json={"linkRatePerS": -1})
    assert response.status_code == 422
