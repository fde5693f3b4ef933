"""One replica with two uvicorn workers (``WEB_CONCURRENCY=2``), run for real: one
``/metrics`` for both, one refresh leader, and the fleet's limits unchanged.

Each worker is a process of its own: a Redis client like a replica, and the writer of
its own files in ``PROMETHEUS_MULTIPROC_DIR``. The tests read those files one by one
(prometheus-client's ``MultiProcessCollector.merge``) to see which worker did what, and
``/metrics`` (whichever worker answers) to see that it reports them all together.

``REPLICA_COUNT`` counts processes (replicas x workers): while Redis is unreachable each
process takes ``LINK_RATE_PER_S / REPLICA_COUNT``, so the replica's two workers
together stay within the fleet's budget; the last test would fail if a worker took a
whole replica's share.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis
from prometheus_client.multiprocess import MultiProcessCollector

from tests.support import polling
from tests.support.gateway import GatewayProcess, gateway_env, run_gateway
from tests.support.redis_server import run_redis_server
from tests.support.simulator import SimulatorHandle, run_simulator

pytestmark = [pytest.mark.slow, pytest.mark.redis]

API_KEY = "workers-api-key-0123456789abcdef0123456"
OPEN = "WORKERS-OPEN"
WORKERS = 2
RATE_PER_S, BURST = 20, 10
LEASE_KEY = "{igm:lease}:catalogue-refresher"
WARM_TIMEOUT_S = 30.0


def scenario(sim: SimulatorHandle) -> None:
    event = {"eventId": OPEN, "eventStatusCode": "O", "title": "Two v Workers", "sportCode": "FT"}
    sim.load_scenario([event], {OPEN: [{"uniqueStreamName": "HLS", "streamType": "HLS"}]})
    sim.configure(link_rate_per_s=150)


@dataclass
class Rig:
    gateway: GatewayProcess
    sim: SimulatorHandle
    redis_url: str
    stop_redis: Callable[[], None]

    @property
    def metrics_dir(self) -> Path:
        assert self.gateway.metrics_dir is not None
        return self.gateway.metrics_dir


@pytest.fixture(scope="module")
def simulator() -> Iterator[SimulatorHandle]:
    with run_simulator(env={"SIM_EVENTS_MIN_INTERVAL_S": "1"}) as sim:
        scenario(sim)
        yield sim


def start_rig(stack: ExitStack, sim: SimulatorHandle, workdir: Path, **settings: str) -> Rig:
    redis_stack = stack.enter_context(ExitStack())
    redis_url = redis_stack.enter_context(run_redis_server(workdir / "redis"))
    defaults = {
        "API_KEYS": API_KEY,
        "DEFAULT_REDIRECT_URL": "https://operator.example/after",
        "EVENTS_MIN_INTERVAL_S": "1",
        "LINK_RATE_PER_S": str(RATE_PER_S),
        "LINK_BURST": str(BURST),
        # A request is held for its turn only when it is near (as a short wait used to
        # be), else answered at once: the bursts below measure the budget, not the line.
        "LINK_QUEUE_HOLD_S": "0.3",
        "REPLICA_COUNT": str(WORKERS),  # processes: one replica of two workers
    }
    env = gateway_env(sim.api_url, redis_url, **(defaults | settings))
    gateway = stack.enter_context(run_gateway(env, workdir / "logs", workers=WORKERS))
    rig = Rig(gateway, sim, redis_url, redis_stack.close)
    # Both workers warm: each holds the open list (the answers come from either).
    try:
        polling.wait_until(
            lambda: all(fresh_get(rig, "/v1/events/open").status_code == 200 for _ in range(6)),
            "both workers hold the open list",
            timeout_s=WARM_TIMEOUT_S,
            every_s=0.1,
        )
    except AssertionError:
        pytest.fail(gateway.log_text()[-3000:])
    return rig


@pytest.fixture(scope="module")
def rig(simulator: SimulatorHandle, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    with ExitStack() as stack:
        yield start_rig(stack, simulator, tmp_path_factory.mktemp("workers"))


def fresh_get(rig: Rig, path: str) -> httpx.Response:
    """A request on a new connection: the listening socket hands it to either worker."""
    with httpx.Client(base_url=rig.gateway.url, timeout=10) as client:
        return client.get(path)


def per_worker(
    directory: Path, kind: str, name: str, labels: Mapping[str, str] | None = None
) -> dict[int, float]:
    """The sum of the samples ``name`` (with ``labels``) in each worker's own file."""
    values: dict[int, float] = {}
    for path in directory.glob(f"{kind}_*.db"):
        match = re.search(r"_(\d+)\.db$", path.name)
        assert match is not None, path
        total = 0.0
        for metric in MultiProcessCollector.merge([str(path)], accumulate=False):  # type: ignore[no-untyped-call]
            for sample in metric.samples:
                wanted = labels or {}
                if sample.name == name and all(
                    sample.labels.get(k) == v for k, v in wanted.items()
                ):
                    total += sample.value
        values[int(match.group(1))] = total
    return values


def counted(metrics_text: str, name: str, labels: Mapping[str, str]) -> float:
    """Sum of the samples ``name`` whose labels include ``labels`` in an exposition."""
    total = 0.0
    for match in re.finditer(rf"^{name}\{{([^}}]*)\}} (\S+)$", metrics_text, flags=re.MULTILINE):
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1)))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(match.group(2))
    return total


def wait_until(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    polling.wait_until(check, what, timeout_s=timeout_s, every_s=0.2)


HEALTHZ = {"route": "/healthz"}
REQUESTS_TOTAL = "gateway_http_requests_total"


def test_metrics_from_any_worker_count_both(rig: Rig) -> None:
    # The start-up probes came first (and were counted too).
    sent = int(sum(per_worker(rig.metrics_dir, "counter", REQUESTS_TOTAL, HEALTHZ).values()))

    def both_served() -> bool:
        nonlocal sent
        for _ in range(10):
            assert fresh_get(rig, "/healthz").status_code == 200
            sent += 1
        served = per_worker(rig.metrics_dir, "counter", REQUESTS_TOTAL, HEALTHZ)
        return len([count for count in served.values() if count > 0]) == WORKERS

    wait_until(both_served, 30, "requests on both workers")
    # a request is counted as its answer goes out: the last one may land a moment later
    served = polling.wait_until(
        lambda: per_worker(rig.metrics_dir, "counter", REQUESTS_TOTAL, HEALTHZ),
        f"{sent} requests counted",
        until=lambda found: sum(found.values()) == sent,
    )
    assert len(served) == WORKERS, served
    assert all(count < sent for count in served.values()), served  # neither alone

    # Every answer of /metrics, from whichever worker, counts both workers' requests;
    # and both workers answered some of them.
    answers: list[float] = []

    def both_answered_metrics() -> bool:
        for _ in range(4):
            response = fresh_get(rig, "/metrics")
            assert response.status_code == 200
            answers.append(counted(response.text, REQUESTS_TOTAL, HEALTHZ))
        scraped = per_worker(rig.metrics_dir, "counter", REQUESTS_TOTAL, {"route": "/metrics"})
        return len([count for count in scraped.values() if count > 0]) == WORKERS

    wait_until(both_answered_metrics, 30, "/metrics answered by both workers")
    assert set(answers) == {float(sent)}, answers


def test_one_worker_of_the_replica_leads(rig: Rig) -> None:
    """Each worker holds the refresh lease under a name of its own (REPLICA_ID/pid)."""
    leaders = per_worker(rig.metrics_dir, "gauge_livemax", "gateway_refresh_leader")
    assert sorted(leaders.values()) == [0.0, 1.0], leaders
    [leader_pid] = [pid for pid, value in leaders.items() if value == 1.0]
    with redis.Redis.from_url(rig.redis_url) as client:
        assert client.get(LEASE_KEY) == f"{rig.gateway.name}/{leader_pid}".encode()
    text = fresh_get(rig, "/metrics").text
    assert re.search(r"^gateway_refresh_leader 1\.0$", text, flags=re.MULTILINE), text
    stats = rig.sim.stats()
    for method in ("event_open", "event_all"):
        assert stats["violations"][method] == 0, stats


async def links(rig: Rig, count: int, offered_per_s: float, prefix: str) -> list[httpx.Response]:
    """``count`` link requests (distinct users, half raw, half player), request ``i`` sent
    at ``i / offered_per_s``, each on a new connection (which either worker accepts)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    limits = httpx.Limits(max_connections=32, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=rig.gateway.url, timeout=15, limits=limits) as client:

        async def one(index: int) -> httpx.Response:
            # pacing: the offered rate is the stimulus
            await asyncio.sleep(max(0.0, start + index / offered_per_s - loop.time()))
            return await client.post(
                f"/v1/events/{OPEN}/links",
                json={"streamName": "HLS", "kind": "raw" if index % 2 else "player"},
                headers={"X-API-Key": API_KEY, "X-User-Id": f"{prefix}-{index}"},
            )

        return await asyncio.gather(*(one(i) for i in range(count)))


def minted_per_worker(rig: Rig) -> dict[int, float]:
    return per_worker(rig.metrics_dir, "counter", "gateway_links_minted_total")


def warm_links(rig: Rig) -> None:
    """Each worker holds the event's streams and pooled upstream connections (as in a
    running fleet) before the measured burst; then a full bucket and a clean call log."""
    round_ = 0

    def both_minted() -> bool:
        nonlocal round_
        round_ += 1
        answers = asyncio.run(links(rig, 4, 50.0, prefix=f"warm-{round_}"))
        assert all(r.status_code == 200 for r in answers), [r.text for r in answers]
        return len([n for n in minted_per_worker(rig).values() if n > 0]) == WORKERS

    wait_until(both_minted, 30, "links from both workers")
    time.sleep(BURST / (RATE_PER_S - BURST) + 0.2)  # the bucket refills
    rig.sim.reset()
    scenario(rig.sim)


def test_two_workers_share_the_fleet_link_budget(rig: Rig) -> None:
    warm_links(rig)
    before = minted_per_worker(rig)
    started = time.monotonic()
    responses = asyncio.run(links(rig, 240, 150.0, prefix="burst"))
    elapsed = time.monotonic() - started

    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) <= {200, 429}, statuses
    assert statuses[429], "the burst should have exceeded the budget"
    stats = rig.sim.stats()
    for method in ("stream_link", "live_stream"):
        assert stats["violations"][method] == 0, stats
        assert stats["maxPerSecond"][method] <= RATE_PER_S, stats
    minted = statuses[200]
    assert stats["calls"]["stream_link"] == minted
    assert BURST <= minted <= BURST + (RATE_PER_S - BURST) * (elapsed + 1), (minted, elapsed)
    after = minted_per_worker(rig)
    grown = {pid: after[pid] - before.get(pid, 0.0) for pid in after}
    assert sum(grown.values()) == minted
    assert all(n > 0 for n in grown.values()), f"one worker minted everything: {grown}"


def test_without_redis_the_workers_split_the_local_share(tmp_path: Path) -> None:
    """Redis gone: each worker's local bucket is ``(LINK_RATE_PER_S - LINK_BURST) /
    REPLICA_COUNT`` per second plus its burst, so both together mint at most the fleet's
    rate, plus a burst each. One worker taking the replica's whole share would mint
    about twice that (the offer is 40/s against 10/s a worker)."""
    burst = 2
    with ExitStack() as stack:
        # A simulator of its own: the module's gateway still runs and calls the other.
        sim = stack.enter_context(run_simulator(env={"SIM_EVENTS_MIN_INTERVAL_S": "1"}))
        scenario(sim)
        # Every request held for its turn (the whole offer is a few seconds of line): a
        # viewer answered 429 keeps a place it never comes back for, which would waste
        # the slots this test measures.
        rig = start_rig(
            stack,
            sim,
            tmp_path,
            LINK_BURST=str(burst),
            LINK_FALLBACK="local",
            LINK_QUEUE_HOLD_S="20",
        )
        warm_links(rig)
        rig.stop_redis()
        wait_until(
            lambda: all(fresh_get(rig, "/readyz").json()["status"] == "degraded" for _ in range(4)),
            15,
            "the workers to see the store gone",
        )
        before = minted_per_worker(rig)
        started = time.monotonic()
        responses = asyncio.run(links(rig, 160, 40.0, prefix="no-store"))
        elapsed = time.monotonic() - started

        statuses = Counter(r.status_code for r in responses)
        assert set(statuses) <= {200, 429}, statuses
        minted = statuses[200]
        rate = RATE_PER_S - burst
        assert minted <= WORKERS * burst + rate * (elapsed + 0.5), (minted, elapsed)
        assert minted >= rate * (elapsed - 1) / 2, (minted, elapsed)  # the fallback serves
        after = minted_per_worker(rig)
        grown = {pid: after[pid] - before.get(pid, 0.0) for pid in after}
        assert sum(grown.values()) == minted
        assert all(n > 0 for n in grown.values()), grown
        stats = rig.sim.stats()
        assert all(v == 0 for v in stats["violations"].values()), stats
