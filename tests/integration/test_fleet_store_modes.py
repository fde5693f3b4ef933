"""Gateway replicas over a real Redis Cluster and a real Sentinel master, with the
simulator as ONEPlatform: the fleet-wide limits hold in each mode.

For each mode, three replicas under many clients: the event budget (0 violations,
event calls at least the interval apart), fresh reads (a status change seen by every
replica within two intervals), the link budget (a burst reaches the simulator at no
more than ``LINK_RATE_PER_S`` a second), dedupe (identical requests on different
replicas make one upstream call) and the per-user limit. Then six replicas over the
cluster make as many event calls as one.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.store_modes import (
    INTERVAL_S,
    LATER,
    Load,
    Store,
    answer_kept,
    assert_event_calls_spaced,
    event_calls_between,
    fleet_env,
    link_request,
    load_scenario,
    wait_warm,
)
from tests.support.gateway import GatewayProcess, run_fleet
from tests.support.redis_cluster import RedisClusterProcesses
from tests.support.simulator import SimulatorHandle, run_simulator

pytestmark = [pytest.mark.slow, pytest.mark.redis]

GATE_INTERVAL_S = INTERVAL_S + 0.5  # EVENTS_GATE_MARGIN_S's default
RATE_PER_S, BURST = 20, 5
USER_BURST = 3
LOAD_S = 12.0


@pytest.fixture(scope="module")
def simulator() -> Iterator[SimulatorHandle]:
    with run_simulator(env={"SIM_EVENTS_MIN_INTERVAL_S": str(INTERVAL_S)}) as sim:
        yield sim


@pytest.fixture(params=["cluster", "sentinel"])
def store(request: pytest.FixtureRequest) -> Store:
    """The session's cluster or Sentinel set-up, emptied."""
    name = "redis_cluster" if request.param == "cluster" else "redis_sentinel"
    setup: Store = request.getfixturevalue(name)
    setup.flush()
    return setup


def fresh(sim: SimulatorHandle) -> None:
    sim.reset()
    load_scenario(sim)


async def offered(
    replicas: list[GatewayProcess], count: int, per_s: float, prefix: str
) -> list[httpx.Response]:
    """``count`` link requests from distinct users, request ``i`` sent at ``i / per_s``."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    async with httpx.AsyncClient(timeout=15) as http:

        async def one(index: int) -> httpx.Response:
            await asyncio.sleep(max(0.0, start + index / per_s - loop.time()))  # pacing
            replica = replicas[index % len(replicas)]
            url, body, headers = link_request(replica, f"{prefix}-{index}")
            return await http.post(url, json=body, headers=headers)

        return await asyncio.gather(*(one(i) for i in range(count)))


def test_three_replicas_share_every_limit(
    store: Store, simulator: SimulatorHandle, tmp_path: Path
) -> None:
    fresh(simulator)
    env = fleet_env(
        simulator,
        store,
        3,
        LINK_RATE_PER_S=str(RATE_PER_S),
        LINK_BURST=str(BURST),
        LINK_QUEUE_HOLD_S="0.3",  # past it, a 429 with a place: what the burst counts
        LINK_USER_BURST=str(USER_BURST),
        LINK_USER_RATE_PER_MIN="6",
        LINK_DEDUPE_WINDOW_S="10",
    )
    with run_fleet(3, env, tmp_path / "logs") as replicas, httpx.Client(timeout=10) as http:
        wait_warm(replicas)
        with Load(replicas, clients=16).running() as load:
            # freshness: a status change reaches every replica within two intervals
            time.sleep(2)  # the stimulus: the fleet under load before the change
            simulator.set_status(LATER, "O")
            changed = time.monotonic()
            seen: dict[str, float] = {}
            while len(seen) < len(replicas) and time.monotonic() - changed < 4 * GATE_INTERVAL_S:
                for replica in replicas:
                    body = http.get(f"{replica.url}/v1/events/open").json()
                    if replica.name not in seen and LATER in {e["eventId"] for e in body["events"]}:
                        seen[replica.name] = time.monotonic() - changed
                time.sleep(0.1)
            time.sleep(max(0.0, LOAD_S - (time.monotonic() - changed)))  # the load's length
        assert len(seen) == len(replicas), seen
        assert max(seen.values()) <= 2 * GATE_INTERVAL_S + 1, seen

        assert load.errors == []
        statuses = Counter((a.kind, a.status, a.code) for a in load.answers)
        assert len(load.answers) > 300, statuses
        assert {s for _, s, _ in statuses} <= {200, 429}, statuses
        assert statuses[("read", 200, None)] > 200, statuses
        assert_event_calls_spaced(simulator, min_open_calls=4)

        # the link budget: a burst at 3x the fleet's rate, spread over the replicas
        simulator.reset()
        load_scenario(simulator)
        # The load's link requests never came back for their places in line, whose
        # turns are spent ahead: the burst starts from an empty store, a full bucket.
        store.flush()
        burst = asyncio.run(offered(replicas, 90, 3 * RATE_PER_S, f"burst-{uuid.uuid4().hex}"))
        burst_statuses = Counter(r.status_code for r in burst)
        assert set(burst_statuses) == {200, 429}, burst_statuses
        assert {r.json()["code"] for r in burst if r.status_code == 429} == {"rate_limited"}
        stats = simulator.stats()
        assert stats["maxPerSecond"]["stream_link"] <= RATE_PER_S, stats
        assert stats["calls"]["stream_link"] == burst_statuses[200]

        # dedupe: one viewer's identical request on every replica, one upstream call
        store.flush()  # the burst's places in line, never claimed, spent turns ahead
        calls_before = simulator.stats()["calls"]["stream_link"]
        viewer = f"dedupe-{uuid.uuid4().hex[:8]}"
        url, body, headers = link_request(replicas[0], viewer)
        first = http.post(url, json=body, headers=headers)
        assert first.status_code == 200, first.text
        assert answer_kept(store, before=0)
        again = []
        for replica in replicas:
            url, body, headers = link_request(replica, viewer)
            again.append(http.post(url, json=body, headers=headers))
        assert [r.status_code for r in again] == [200] * len(replicas)
        assert {r.json()["url"] for r in again} == {first.json()["url"]}
        assert simulator.stats()["calls"]["stream_link"] == calls_before + 1

        # per-user limit: distinct requests of one viewer, over every replica
        user = f"heavy-{uuid.uuid4().hex[:8]}"
        answers = []
        for index in range(USER_BURST + 3):
            url, body, headers = link_request(
                replicas[index % len(replicas)],
                user,
                redirectUrl=f"https://operator.example/after/{index}",
            )
            answers.append(http.post(url, json=body, headers=headers))
        assert [r.status_code for r in answers] == [200] * USER_BURST + [429] * 3
        assert {r.json()["code"] for r in answers[USER_BURST:]} == {"user_rate_limited"}
        assert all(int(r.headers["retry-after"]) >= 1 for r in answers[USER_BURST:])

    assert_event_calls_spaced(simulator, min_open_calls=0)  # since the burst


WINDOW_S = 6 * GATE_INTERVAL_S


def count_over_window(simulator: SimulatorHandle, replicas: list[GatewayProcess]) -> dict[str, int]:
    """Event calls over ``WINDOW_S`` while every replica is read from."""
    wait_warm(replicas)
    start = time.monotonic()
    with Load(replicas, clients=8).running():
        time.sleep(WINDOW_S)  # the window the calls are counted over
    end = time.monotonic()
    return event_calls_between(simulator, start, end)


def test_six_replicas_over_the_cluster_call_the_upstream_as_one(
    redis_cluster: RedisClusterProcesses, simulator: SimulatorHandle, tmp_path: Path
) -> None:
    counts: dict[int, dict[str, int]] = {}
    for size in (1, 6):
        redis_cluster.flush()
        fresh(simulator)
        env = fleet_env(simulator, redis_cluster, size)
        with run_fleet(size, env, tmp_path / f"logs-{size}") as replicas:
            counts[size] = count_over_window(simulator, replicas)
        assert_event_calls_spaced(simulator)
    print(f"event calls over {WINDOW_S} s: {counts}")
    for method, alone in counts[1].items():
        assert alone >= 3, counts  # the refresher ran all along
        assert abs(counts[6][method] - alone) <= 1, counts
