"""A store failover under load: a Redis Cluster master killed (its replica promoted)
and a Sentinel master killed (the sentinels promote the replica), with two gateway
replicas serving reads and links throughout.

A failover is a store outage of a few seconds: reads keep answering from memory,
links use the local share, event calls stop (no replica knows the gate). Every run
ends with 0 simulator violations, event calls at least the interval apart, no 5xx on
valid input, and, within 20 s of the promotion, every replica's store check ok,
links deduplicated through the store again and the open list refetched.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest
import redis

from tests.integration.store_modes import (
    DEDUPE_KEYS,
    INTERVAL_S,
    Load,
    Store,
    answer_kept,
    assert_event_calls_spaced,
    fleet_env,
    link_request,
    load_scenario,
    wait_warm,
)
from tests.support.gateway import GatewayProcess, run_fleet
from tests.support.redis_cluster import RedisClusterProcesses, run_redis_cluster
from tests.support.redis_sentinel import run_redis_sentinel
from tests.support.simulator import SimulatorHandle, run_simulator

pytestmark = [pytest.mark.slow, pytest.mark.redis]

BACK_WITHIN_S = 20.0
GATE_KEY = "{igm:gate}:event_open"
WITNESS_KEY = "{igm:gate}:witness:event_open"


@pytest.fixture(scope="module")
def simulator() -> Iterator[SimulatorHandle]:
    with run_simulator(env={"SIM_EVENTS_MIN_INTERVAL_S": str(INTERVAL_S)}) as sim:
        yield sim


@pytest.fixture(params=["cluster", "sentinel"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A set-up of its own: the test kills one of its nodes."""
    if request.param == "cluster":
        with run_redis_cluster(tmp_path / "cluster") as cluster:
            yield cluster
    else:
        with run_redis_sentinel(tmp_path / "sentinel") as sentinel:
            yield sentinel


def fail_over(store: Store) -> float:
    """Kill the master (for a cluster, the one holding the event gate); the monotonic
    time the promotion was first seen."""
    if isinstance(store, RedisClusterProcesses):
        return store.wait_promoted(store.kill_master_of(GATE_KEY), GATE_KEY)
    return store.wait_promoted(store.kill_master())


def gate_master_port(store: Store) -> int:
    if isinstance(store, RedisClusterProcesses):
        return store.master_port_of(GATE_KEY)
    return store.current_master().port


def witness_and_replid(store: Store) -> tuple[bytes | None, str]:
    """The event gate's witness and the replication id of the master holding it."""
    with redis.Redis(port=gate_master_port(store), socket_timeout=2) as client:
        witness = client.get(WITNESS_KEY)
        replid = str(client.info("replication")["master_replid"])
    return witness, replid


def store_ok(http: httpx.Client, replica: GatewayProcess) -> bool:
    body = http.get(f"{replica.url}/readyz").json()
    return bool(body["checks"]["store"] == "ok")


def deduplicated(http: httpx.Client, replicas: list[GatewayProcess], store: Store) -> bool:
    """One viewer's identical request on every replica gets the one stored answer (each
    upstream mint has its own token and expiry): the link path is back on the store."""
    viewer = f"after-{uuid.uuid4().hex[:8]}"
    answers = []
    try:
        kept_before = len(store.keys(DEDUPE_KEYS))
    except redis.RedisError:
        return False  # the store is not back yet
    for index, replica in enumerate(replicas):
        url, body, headers = link_request(replica, viewer)
        answers.append(http.post(url, json=body, headers=headers))
        if index == 0 and not answer_kept(store, kept_before):
            return False
    if any(a.status_code != 200 for a in answers):
        return False
    return all(a.json() == answers[0].json() for a in answers)


def store_errors(http: httpx.Client, replica: GatewayProcess) -> float:
    text = http.get(f"{replica.url}/metrics").text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("gateway_redis_errors_total{")
    )


def refetched_since(http: httpx.Client, replica: GatewayProcess, wall: float) -> bool:
    body = http.get(f"{replica.url}/v1/events/open").json()
    fetched = datetime.fromisoformat(str(body["fetchedAt"]))
    return fetched.timestamp() > wall


def test_failover_under_load(store: Store, simulator: SimulatorHandle, tmp_path: Path) -> None:
    simulator.reset()
    load_scenario(simulator)
    env = fleet_env(simulator, store, 2, LINK_DEDUPE_WINDOW_S="10")
    with run_fleet(2, env, tmp_path / "logs") as replicas, httpx.Client(timeout=10) as http:
        wait_warm(replicas)
        with Load(replicas, clients=10).running() as load:
            time.sleep(3)  # the stimulus: the fleet under load before the failover
            witness_before, replid_before = witness_and_replid(store)
            assert witness_before == replid_before.encode()  # the master that saw the calls
            killed_wall, killed = time.time(), time.monotonic()
            promoted = fail_over(store)
            pending = {
                "store": set(r.name for r in replicas),
                "fresh": set(r.name for r in replicas),
            }
            links_back = False
            while time.monotonic() - promoted < BACK_WITHIN_S:
                for replica in replicas:
                    if replica.name in pending["store"] and store_ok(http, replica):
                        pending["store"].discard(replica.name)
                    if replica.name in pending["fresh"] and refetched_since(
                        http, replica, killed_wall
                    ):
                        pending["fresh"].discard(replica.name)
                if not pending["store"] and not links_back:
                    links_back = deduplicated(http, replicas, store)
                if links_back and not pending["store"] and not pending["fresh"]:
                    break
                time.sleep(0.2)
            back_after = time.monotonic() - promoted
            time.sleep(2)  # and it stays so under load
        assert pending == {"store": set(), "fresh": set()}, (pending, back_after)
        assert links_back, back_after
        # the gate noticed the new master (and so held one interval): the witness names it
        witness_after, replid_after = witness_and_replid(store)
        assert replid_after != replid_before
        assert witness_after == replid_after.encode()
        # the outage was real: the replicas saw store commands fail
        assert sum(store_errors(http, r) for r in replicas) > 0
        print(
            f"promoted {promoted - killed:.1f} s after the kill; "
            f"back {back_after:.1f} s after the promotion"
        )

    assert load.errors == []
    statuses = Counter((a.kind, a.status) for a in load.answers)
    assert {status for _, status in statuses} <= {200, 429}, statuses
    assert statuses[("link", 200)] > 20, statuses
    assert statuses[("read", 200)] > 100, statuses
    assert_event_calls_spaced(simulator)
