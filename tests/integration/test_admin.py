"""The admin API through two real gateway replicas sharing a real redis-server, with the
simulator as the upstream: its own keys, the state it reports, forced refreshes that
never take the fleet past the event budget, and purging an event's streams."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.support.gateway import gateway_env, run_fleet
from tests.support.polling import wait_until
from tests.support.redis_server import fresh_database
from tests.support.simulator import HLS_STREAM, SimulatorHandle, run_simulator, scenario_event

pytestmark = [pytest.mark.redis, pytest.mark.slow]

ADMIN_KEY = "admin-key-for-tests-0123456789abcdef0123"
API_KEY = "test-api-key-0123456789abcdef0123456789"
INTERVAL_S = 2.0
EVENT = "ADMIN-OPEN"


@pytest.fixture(scope="module")
def simulator() -> Iterator[SimulatorHandle]:
    event = scenario_event(EVENT, title="Admin v Budget")
    streams = {EVENT: [HLS_STREAM]}
    # The simulator enforces the same spacing the gateway is configured for.
    with run_simulator(env={"SIM_EVENTS_MIN_INTERVAL_S": str(INTERVAL_S)}) as sim:
        sim.load_scenario([event], streams)
        yield sim


@pytest.fixture(scope="module")
def replicas(
    simulator: SimulatorHandle, redis_server_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[str]]:
    env = gateway_env(
        simulator.api_url,
        fresh_database(redis_server_url, 14),
        API_KEYS=API_KEY,
        ADMIN_API_KEYS=ADMIN_KEY,
        ADMIN_MAX_FAILURES="1000",  # the lockout has its own tests (test_admin_guard.py)
        EVENTS_MIN_INTERVAL_S=str(INTERVAL_S),
        REPLICA_COUNT="2",
    )
    with run_fleet(2, env, tmp_path_factory.mktemp("admin-logs")) as fleet:
        urls = [g.url for g in fleet]
        wait_until(
            lambda: all(httpx.get(f"{url}/v1/events/{EVENT}").status_code == 200 for url in urls),
            "the fleet sees the event",
            timeout_s=30,
        )
        yield urls


ADMIN = {"X-Admin-Key": ADMIN_KEY}


@pytest.mark.parametrize(
    "headers",
    [{}, {"X-Admin-Key": "wrong"}, {"X-Admin-Key": API_KEY}, {"X-API-Key": API_KEY}],
    ids=["missing", "wrong", "link-key-as-admin-key", "link-key"],
)
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/admin/state"),
        ("POST", "/admin/refresh"),
        ("DELETE", f"/admin/events/{EVENT}/streams"),
    ],
)
def test_admin_needs_an_admin_key(
    replicas: list[str], headers: dict[str, str], method: str, path: str
) -> None:
    answer = httpx.request(method, f"{replicas[0]}{path}", headers=headers, json={"list": "open"})
    assert answer.status_code == 401, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == "unauthorized"


def test_state_reports_the_lease_the_gates_and_the_lists(replicas: list[str]) -> None:
    states = [httpx.get(f"{url}/admin/state", headers=ADMIN).json() for url in replicas]
    assert {s["leaseHolder"] for s in states} == {next(s["replica"] for s in states if s["leader"])}
    assert sum(s["leader"] for s in states) == 1
    for state in states:
        names = {item["name"] for item in state["lists"]}
        assert "open" in names
        assert f"events:{datetime.now(UTC).date().isoformat()}" in names
        for item in state["lists"]:
            assert item["ageS"] >= 0
        assert set(state["eventBudget"]["nextSlotInS"]) == {"event_open", "event_all"}
        assert state["linkBudget"]["ratePerS"] == 150


def test_the_admin_api_is_not_in_the_public_document(replicas: list[str]) -> None:
    document = httpx.get(f"{replicas[0]}/openapi.json").json()
    assert not [path for path in document["paths"] if path.startswith("/admin")]


def test_forced_refreshes_under_load_never_exceed_the_event_budget(
    replicas: list[str], simulator: SimulatorHandle
) -> None:
    before = simulator.stats()["calls"]["event_open"]
    started = time.monotonic()

    async def run() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=30) as http:
            refreshes = [
                http.post(f"{url}/admin/refresh", headers=ADMIN, json={"list": "open", "waitS": 20})
                for url in replicas
                for _ in range(3)
            ]
            reads = [http.get(f"{url}/v1/events/open") for url in replicas for _ in range(50)]
            return list(await asyncio.gather(*refreshes, *reads))

    answers = asyncio.run(run())
    elapsed = time.monotonic() - started
    refreshed = answers[:6]
    for answer in refreshed:
        assert answer.status_code == 200, answer.text
        assert answer.json()["refreshed"] == "open"
    assert all(a.status_code == 200 for a in answers[6:])
    stats = simulator.stats()
    assert sum(stats["violations"].values()) == 0, stats
    assert stats["minSpacingS"]["event_open"] is not None
    assert stats["minSpacingS"]["event_open"] >= INTERVAL_S
    made = stats["calls"]["event_open"] - before
    assert made >= 6  # each forced refresh got a slot of its own
    assert made <= elapsed / INTERVAL_S + 1


def test_a_forced_date_refresh_and_a_date_out_of_range(replicas: list[str]) -> None:
    today = datetime.now(UTC).date()
    answer = httpx.post(
        f"{replicas[1]}/admin/refresh", headers=ADMIN, json={"date": today.isoformat()}, timeout=30
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["list"]["name"] == f"events:{today.isoformat()}"
    assert answer.json()["list"]["ageS"] < 1
    far = (today + timedelta(days=365)).isoformat()
    refused = httpx.post(f"{replicas[1]}/admin/refresh", headers=ADMIN, json={"date": far})
    assert refused.status_code == 422
    assert refused.json()["code"] == "date_out_of_range"
    both = httpx.post(
        f"{replicas[1]}/admin/refresh", headers=ADMIN, json={"date": far, "list": "open"}
    )
    assert both.status_code == 422


def test_purging_streams_makes_the_next_read_fetch_them_again(
    replicas: list[str], simulator: SimulatorHandle
) -> None:
    url = replicas[0]
    assert httpx.get(f"{url}/v1/events/{EVENT}/streams").status_code == 200
    cached = simulator.stats()["calls"]["streams"]
    assert httpx.get(f"{url}/v1/events/{EVENT}/streams").status_code == 200
    assert simulator.stats()["calls"]["streams"] == cached
    purged = httpx.delete(f"{url}/admin/events/{EVENT}/streams", headers=ADMIN)
    assert purged.status_code == 204
    again = httpx.get(f"{url}/v1/events/{EVENT}/streams")
    assert again.status_code == 200
    assert simulator.stats()["calls"]["streams"] == cached + 1


def test_the_admin_api_can_be_documented(
    simulator: SimulatorHandle, redis_server_url: str, tmp_path: Path
) -> None:
    env = gateway_env(simulator.api_url, None, ADMIN_API_KEYS=ADMIN_KEY, ADMIN_IN_OPENAPI="true")
    with run_fleet(1, env, tmp_path) as (gateway,):
        document = httpx.get(f"{gateway.url}/openapi.json").json()
    assert {"/admin/state", "/admin/refresh", "/admin/events/{eventId}/streams"} <= set(
        document["paths"]
    )
