"""Kick-off on real processes: two replicas, a real redis-server, the simulator
enforcing the upstream's link limit. A crowd above the budget is served first come,
first served, with no herd of retries, and renewals under that crowd are not cut off.

``LINK_RATE_PER_S=20`` and ``LINK_BURST=1`` (the guide's 150/s and the default burst
scaled down): the bucket sustains 19 links a second. 400 viewers, each its own user,
arrive evenly over 4 s, alternating replicas; each honours ``Retry-After``, except one
in ten that asks every 0.5 s regardless.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from tests.support.crowd import CrowdFigures, Viewer, ask_until_served, run_crowd
from tests.support.gateway import GatewayProcess, gateway_env, run_fleet
from tests.support.redis_server import fresh_database
from tests.support.simulator import SimulatorHandle, one_open_event, run_simulator

pytestmark = [pytest.mark.slow, pytest.mark.redis]

API_KEY = "test-api-key-0123456789abcdef0123456789"
OPEN = "KICKOFF"
RATE_PER_S, BURST = 20, 1
SUSTAINED_PER_S = RATE_PER_S - BURST
CROWD, OVER_S = 400, 4.0
LINK_TTL_S = 40
RENEWERS = 50
WARM_TIMEOUT_S = 30.0
PATH = f"/v1/events/{OPEN}/links"
BODY: dict[str, object] = {"streamName": "HLS", "kind": "player"}


@pytest.fixture(scope="module")
def simulator() -> Iterator[SimulatorHandle]:
    with run_simulator(env={"SIM_EVENTS_MIN_INTERVAL_S": "0"}) as sim:
        sim.configure(link_rate_per_s=RATE_PER_S)
        sim.load_scenario(*one_open_event(OPEN, "Kick v Off"))
        yield sim


@pytest.fixture(scope="module")
def fleet(
    simulator: SimulatorHandle, redis_server_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[GatewayProcess]]:
    env = gateway_env(
        simulator.api_url,
        fresh_database(redis_server_url, 7),
        API_KEYS=API_KEY,
        DEFAULT_REDIRECT_URL="https://operator.example/after",
        LINK_RATE_PER_S=str(RATE_PER_S),
        LINK_BURST=str(BURST),
        REPLICA_COUNT="2",
        LINK_TTL_S=str(LINK_TTL_S),
        # Scaled down with the 40 s links: a renewal that can come back after the line
        # with 10 s to spare does; and a renewal 1 s after its first link is a renewal,
        # not the first answer again.
        LINK_RENEWAL_LEAD_S="10",
        LINK_DEDUPE_WINDOW_S="1",
    )
    with run_fleet(2, env, Path(tmp_path_factory.mktemp("line-logs"))) as replicas:
        deadline = time.monotonic() + WARM_TIMEOUT_S
        for replica in replicas:
            while httpx.get(f"{replica.url}/v1/events/open", timeout=2).status_code != 200:
                if time.monotonic() > deadline:
                    pytest.fail(f"{replica.name} never got the open list")
                time.sleep(0.05)
        yield replicas


def fresh_start(simulator: SimulatorHandle) -> None:
    """A clean call log at the simulator (the fleet's bucket is full again by the time
    a crowd has gone by and the next test starts: asserted through the figures)."""
    simulator.reset()
    simulator.load_scenario(*one_open_event(OPEN, "Kick v Off"))
    simulator.configure(link_rate_per_s=RATE_PER_S)


def crowd(fleet: list[GatewayProcess], prefix: str) -> list[Viewer]:
    return [
        Viewer(i, f"{prefix}-{i}", fleet[i % len(fleet)].url, impatient=i % 10 == 9)
        for i in range(CROWD)
    ]


def assert_crowd_served(viewers: list[Viewer], simulator: SimulatorHandle) -> CrowdFigures:
    figures = CrowdFigures.of(viewers, SUSTAINED_PER_S)
    stats = simulator.stats()
    print(figures)  # the figures of the run, in the test's output
    print(Counter(p for v in viewers for p in v.problems))
    assert figures.served == CROWD, [v.statuses for v in viewers if v.served is None][:5]
    assert figures.server_errors == 0
    assert stats["violations"]["stream_link"] == 0
    assert stats["maxPerSecond"]["stream_link"] <= RATE_PER_S
    assert figures.last_link_s <= 1.15 * CROWD / RATE_PER_S + 3, figures
    assert figures.lateness_max_s <= 3.0, (figures, latest(viewers))
    assert figures.requests_per_patient <= 3, figures
    assert figures.wait_p50_impatient_s >= figures.wait_p50_patient_s, figures
    return figures


async def test_a_crowd_is_served_first_come_first_served(
    fleet: list[GatewayProcess], simulator: SimulatorHandle
) -> None:
    fresh_start(simulator)
    viewers = crowd(fleet, "crowd")
    await run_crowd(viewers, over_s=OVER_S, path=PATH, body=BODY, api_key=API_KEY)
    assert_crowd_served(viewers, simulator)
    # The queue body told where each waiting viewer stood.
    assert any(429 in v.statuses for v in viewers)


async def test_renewals_under_a_crowd_are_never_cut_off(
    fleet: list[GatewayProcess], simulator: SimulatorHandle
) -> None:
    renewers = [
        Viewer(i, f"renewer-{i}", fleet[i % len(fleet)].url, impatient=False)
        for i in range(RENEWERS)
    ]
    limits = httpx.Limits(max_connections=200)
    async with httpx.AsyncClient(timeout=60.0, limits=limits) as client:
        # Their first links (every turn taken once each is served: no line is left).
        await asyncio.gather(
            *(ask_until_served(client, r, path=PATH, body=BODY, api_key=API_KEY) for r in renewers)
        )
        expiry = {r.index: expires_at(r) for r in renewers}
        fresh_start(simulator)
        for r in renewers:
            r.served, r.answer, r.requests, r.statuses = None, None, 0, []
        viewers = crowd(fleet, "kickoff")
        start = time.time() + 1.0  # every viewer waiting for its moment by then

        async def renew(renewer: Viewer) -> None:
            # Renewals spread over the crowd's arrival.
            at = start + renewer.index * OVER_S / RENEWERS
            await asyncio.sleep(max(0.0, at - time.time()))
            renewer.arrival = time.time()
            await ask_until_served(client, renewer, path=PATH, body=BODY, api_key=API_KEY)

        await asyncio.gather(
            run_crowd(viewers, over_s=OVER_S, path=PATH, body=BODY, api_key=API_KEY, start=start),
            *(renew(r) for r in renewers),
        )

    for renewer in renewers:
        assert renewer.served is not None, renewer.statuses
        assert renewer.served < expiry[renewer.index], (renewer, expiry[renewer.index])
        assert expires_at(renewer) > expiry[renewer.index]  # a new link
    assert_crowd_served(viewers, simulator)
    stats = simulator.stats()
    assert stats["calls"]["stream_link"] == CROWD + RENEWERS, stats


def expires_at(viewer: Viewer) -> float:
    assert viewer.answer is not None
    return datetime.fromisoformat(str(viewer.answer["expiresAt"])).timestamp()


def latest(viewers: list[Viewer]) -> list[tuple[int, float, float, int]]:
    """The viewers served last against their arrival order: index, arrival and served
    (seconds after the first arrival), requests."""
    first = min(v.arrival for v in viewers)
    ranked = sorted(viewers, key=lambda v: (v.served or 0) - v.index / SUSTAINED_PER_S)
    return [
        (v.index, round(v.arrival - first, 2), round((v.served or 0) - first, 2), v.requests)
        for v in ranked[-5:]
    ]
