"""Three gateway replicas sharing one real Redis, the simulator enforcing ONEPlatform's
0.1 req/s on the event methods (one call per 10 s), and many concurrent clients.

The fleet is started once for the module; the tests run in order and the last one
kills the refresh leader.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.support.gateway import GatewayProcess, gateway_env, run_fleet
from tests.support.redis_server import fresh_database
from tests.support.simulator import SimulatorHandle, run_simulator

pytestmark = [pytest.mark.slow, pytest.mark.redis]

INTERVAL_S = 10.0
LEASE_TTL_S = 4.0
CLIENTS = 50
LOAD_SECONDS = 65.0


@dataclass
class Fleet:
    simulator: SimulatorHandle
    replicas: list[GatewayProcess]

    @property
    def live(self) -> list[GatewayProcess]:
        return [r for r in self.replicas if r.process.poll() is None]


@pytest.fixture(scope="module")
def fleet(redis_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    env_sim = {"SIM_EVENTS_MIN_INTERVAL_S": str(INTERVAL_S)}
    with run_simulator(env=env_sim) as simulator:
        env = gateway_env(
            simulator.api_url,
            fresh_database(redis_server_url, 3),
            EVENTS_MIN_INTERVAL_S=str(INTERVAL_S),
            LEASE_TTL_S=str(LEASE_TTL_S),
            CATALOGUE_COLD_WAIT_S="1.0",
            REPLICA_COUNT="3",
        )
        with run_fleet(3, env, Path(tmp_path_factory.mktemp("fleet"))) as replicas:
            yield Fleet(simulator, replicas)


@dataclass(frozen=True)
class Outcome:
    key: str
    status: int
    at: float
    retry_after: str | None


def today() -> datetime:
    return datetime.now(UTC)


async def _client(
    http: httpx.AsyncClient,
    replicas: list[GatewayProcess],
    dates: list[str],
    stop_at: float,
    outcomes: list[Outcome],
    seed: int,
) -> None:
    rng = random.Random(seed)
    known_ids: list[str] = []
    while time.monotonic() < stop_at:
        base = rng.choice(replicas).url
        choice = rng.random()
        if choice < 0.15:
            key, path = "sports", "/v1/sports"
        elif choice < 0.35:
            key, path = "open", "/v1/events/open"
        elif choice < 0.8:
            day = rng.choice(dates)
            key, path = f"events:{day}", f"/v1/events?date={day}"
        elif known_ids:
            event_id = rng.choice(known_ids)
            suffix = rng.choice(["", "/streams"])
            key, path = f"event{suffix}", f"/v1/events/{event_id}{suffix}"
        else:
            continue
        response = await http.get(base + path)
        outcomes.append(
            Outcome(
                key, response.status_code, time.monotonic(), response.headers.get("retry-after")
            )
        )
        if key == "open" and response.status_code == 200:
            known_ids = [e["eventId"] for e in response.json()["events"]] or known_ids
        await asyncio.sleep(rng.uniform(0.05, 0.25))  # pacing: a viewer between reads


def test_many_clients_three_replicas_zero_violations(fleet: Fleet) -> None:
    dates = [(today() + timedelta(days=offset)).date().isoformat() for offset in (0, 1, 2)]
    outcomes: list[Outcome] = []

    async def run() -> None:
        limits = httpx.Limits(max_connections=CLIENTS)
        async with httpx.AsyncClient(timeout=10, limits=limits) as http:
            stop_at = time.monotonic() + LOAD_SECONDS
            await asyncio.gather(
                *(
                    _client(http, fleet.replicas, dates, stop_at, outcomes, seed)
                    for seed in range(CLIENTS)
                )
            )

    asyncio.run(run())
    assert len(outcomes) > 2000

    first_ok: dict[str, float] = {}
    for outcome in sorted(outcomes, key=lambda o: o.at):
        if outcome.status == 200:
            first_ok.setdefault(outcome.key, outcome.at)
    for key in ["sports", "open", *(f"events:{d}" for d in dates)]:
        assert key in first_ok, f"{key} never answered 200"
    for outcome in outcomes:
        if outcome.status == 200:
            continue
        # before its first copy, a list may answer 503 with Retry-After; nothing else
        assert outcome.status == 503, outcome
        assert outcome.retry_after is not None
        assert int(outcome.retry_after) >= 1
        assert outcome.at <= first_ok[outcome.key] + 1.5, outcome  # cold-wait covers sync lag

    stats = fleet.simulator.stats()
    assert sum(stats["violations"].values()) == 0, stats
    assert stats["minSpacingS"]["event_all"] is not None
    assert stats["minSpacingS"]["event_all"] >= INTERVAL_S
    assert stats["minSpacingS"]["event_open"] is not None
    assert stats["minSpacingS"]["event_open"] >= INTERVAL_S
    # three dates were asked for: all fetched within the budget, none fetched wastefully
    assert stats["calls"]["event_all"] <= LOAD_SECONDS / INTERVAL_S + 2
    assert stats["calls"]["streams"] <= len({o.key for o in outcomes}) * 10


def _status_in(body: dict[str, object], event_id: str) -> str | None:
    events = body.get("events")
    assert isinstance(events, list)
    for event in events:
        if event["eventId"] == event_id:
            return str(event["eventStatusCode"])
    return None


def test_status_change_is_visible_within_two_intervals(fleet: Fleet) -> None:
    replica = fleet.live[0]
    # Late in the day every event of today's schedule may have started: then tomorrow's
    # list (which every replica keeps too) has the pending ones.
    for day in (today().date().isoformat(), (today() + timedelta(days=1)).date().isoformat()):
        listing = httpx.get(f"{replica.url}/v1/events?date={day}&status=P", timeout=5).json()
        if listing["events"]:
            break
    assert listing["events"], "the generated schedule has pending events today or tomorrow"
    event_id = listing["events"][-1]["eventId"]
    fleet.simulator.set_status(event_id, "O")
    changed_at = time.monotonic()
    seen_open = seen_today = None
    while time.monotonic() - changed_at < 2 * (INTERVAL_S + 1) + 2:
        for replica in fleet.live:
            if seen_open is None:
                open_body = httpx.get(f"{replica.url}/v1/events/open", timeout=5).json()
                if _status_in(open_body, event_id) == "O":
                    seen_open = time.monotonic() - changed_at
            if seen_today is None:
                day_body = httpx.get(f"{replica.url}/v1/events?date={day}", timeout=5).json()
                if _status_in(day_body, event_id) == "O":
                    seen_today = time.monotonic() - changed_at
        if seen_open is not None and seen_today is not None:
            break
        time.sleep(0.2)
    assert seen_open is not None
    assert seen_today is not None
    assert seen_open <= 2 * INTERVAL_S
    assert seen_today <= 2 * INTERVAL_S


def test_upstream_failure_keeps_reads_answering(fleet: Fleet) -> None:
    day = today().date().isoformat()
    fleet.simulator.inject_fault("*", "status", status=503)
    try:
        failing_since = time.monotonic()
        while time.monotonic() - failing_since < INTERVAL_S * 1.5:
            for replica in fleet.live:
                for path in ("/v1/events/open", f"/v1/events?date={day}", "/v1/sports"):
                    response = httpx.get(replica.url + path, timeout=5)
                    assert response.status_code == 200, (path, response.text)
                    assert int(response.headers["age"]) >= 0
            time.sleep(0.5)
        failed = [c for c in fleet.simulator.calls("event_open") if c["status"] == 503]
        assert failed, "the refresher kept trying while the upstream failed"
    finally:
        fleet.simulator.clear_faults()


def _is_leader(replica: GatewayProcess) -> bool:
    metrics = httpx.get(f"{replica.url}/metrics", timeout=5).text
    match = re.search(r"^gateway_refresh_leader (\S+)$", metrics, re.MULTILINE)
    return match is not None and float(match.group(1)) == 1.0


def test_killing_the_leader_hands_over_within_one_lease(fleet: Fleet) -> None:
    leaders = [r for r in fleet.live if _is_leader(r)]
    assert len(leaders) == 1
    leader = leaders[0]
    calls_before = len(fleet.simulator.calls("event_open"))
    leader.kill()
    killed_at = time.monotonic()
    new_leader = None
    while time.monotonic() - killed_at < LEASE_TTL_S + 3:
        found = [r for r in fleet.live if _is_leader(r)]
        if found:
            new_leader = found[0]
            break
        time.sleep(0.2)
    assert new_leader is not None
    assert time.monotonic() - killed_at <= LEASE_TTL_S + 2
    # the new leader refreshes: a new event/open call arrives within one interval more
    while time.monotonic() - killed_at < LEASE_TTL_S + INTERVAL_S + 3:
        if len(fleet.simulator.calls("event_open")) > calls_before:
            break
        time.sleep(0.2)
    assert len(fleet.simulator.calls("event_open")) > calls_before
    assert sum(fleet.simulator.stats()["violations"].values()) == 0
