"""A real gateway process whose refresher crashes on every tick (a corrupt entry in the
shared Redis, which its demand read cannot parse): the process logs each crash as one
JSON line with the traceback, restarts the task, counts it, and answers ``/readyz``
503 until the task runs clean again; reads keep answering from memory."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import orjson
import pytest
import redis

from tests.support.gateway import GatewayProcess, gateway_env, run_gateway
from tests.support.polling import wait_until
from tests.support.redis_server import fresh_database
from tests.support.simulator import run_simulator

pytestmark = [pytest.mark.redis, pytest.mark.slow]

DEMAND_KEY = "{igm:cat}:demand"


def poll(check: Callable[[], bool], what: str, timeout_s: float = 30.0) -> None:
    wait_until(check, what, timeout_s=timeout_s, every_s=0.1)


@pytest.fixture
def gateway(redis_server_url: str, tmp_path: Path) -> Iterator[tuple[GatewayProcess, str]]:
    store_url = fresh_database(redis_server_url, 21)
    with run_simulator(env={"SIM_EVENTS_MIN_INTERVAL_S": "1"}) as sim:
        env = gateway_env(sim.api_url, store_url, EVENTS_MIN_INTERVAL_S="1", REPLICA_COUNT="1")
        with run_gateway(env, tmp_path) as process:
            yield process, store_url


def crash_lines(process: GatewayProcess) -> list[dict[str, object]]:
    lines = []
    for raw in process.log_text().splitlines():
        if "background_task_crashed" in raw:
            lines.append(orjson.loads(raw))
    return lines


def test_a_crashing_refresher_is_logged_with_its_traceback_and_fails_readiness(
    gateway: tuple[GatewayProcess, str],
) -> None:
    process, store_url = gateway
    with httpx.Client(base_url=process.url, timeout=5) as http:
        poll(lambda: http.get("/readyz").status_code == 200, "never ready")
        with redis.Redis.from_url(store_url) as store:
            store.zadd(DEMAND_KEY, {"not-a-date": time.time() + 3600})
        poll(lambda: http.get("/readyz").status_code == 503, "/readyz kept answering 200")
        body = http.get("/readyz").json()
        assert body["checks"]["tasks"] == "down:catalogue-refresher"
        poll(lambda: len(crash_lines(process)) >= 2, "no restart after the first crash")
        metrics = http.get("/metrics").text
        assert 'gateway_task_restarts_total{task="catalogue-refresher"}' in metrics
        assert http.get("/v1/events/open").status_code == 200  # served from memory

        # The entry removed, the restarted refresher runs clean and the replica is back.
        with redis.Redis.from_url(store_url) as store:
            store.zrem(DEMAND_KEY, "not-a-date")
        poll(lambda: http.get("/readyz").status_code == 200, "never ready again", 60)

    lines = crash_lines(process)
    for line in lines:
        assert line["level"] == "error"
        assert line["task"] == "catalogue-refresher"
        exception = str(line["exception"])
        assert exception.startswith("Traceback (most recent call last)")
        assert "ValueError" in exception
    # one line per crash: as many lines as restarts counted (the last may be mid-way)
    restarts = sum(
        float(row.rsplit(" ", 1)[1])
        for row in httpx.get(f"{process.url}/metrics").text.splitlines()
        if row.startswith('gateway_task_restarts_total{task="catalogue-refresher"}')
    )
    assert restarts == len(lines)
