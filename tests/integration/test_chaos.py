"""Chaos under load, on real processes: gateway replicas (uvicorn), a real
``redis-server`` and the simulator enforcing ONEPlatform's limits, with clients
reading and minting links on every live replica throughout.

- the refresh leader SIGKILLed in the middle of a refresh (its event/open call hangs
  upstream): another replica leads within the lease, reads on the survivors never
  fail and the open list they serve is never older than the lease plus two gate
  intervals;
- Redis replaced by a new, empty server on the same port: the lease, the gates, the
  lists and the link buckets are rebuilt, reads never fail;
- one replica's connections to the store cut for 10 s (a TCP relay between them):
  it keeps serving from memory, makes no event call while it cannot reach the gate,
  the other replica leads, and it recovers by itself.

Each ends with 0 simulator violations (event calls at least the interval apart, the
link rate held) and every read answered 200.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import httpx
import pytest

from tests.support.gateway import GatewayProcess, gateway_env, run_gateway
from tests.support.polling import seconds_until
from tests.support.redis_server import RestartableRedis
from tests.support.simulator import SimulatorHandle, run_simulator
from tests.support.tcp_proxy import run_tcp_proxy

pytestmark = [pytest.mark.redis, pytest.mark.slow]

API_KEY = f"key-chaos-{uuid.uuid4().hex}"
INTERVAL_S = 2.0
GATE_INTERVAL_S = INTERVAL_S + 0.5  # EVENTS_GATE_MARGIN_S's default
LEASE_TTL_S = 2.0
AGE_BOUND_S = LEASE_TTL_S + 2 * GATE_INTERVAL_S + 2  # docs/reliability.md
SERVER_IPS = ("127.0.0.1", "127.0.0.2", "127.0.0.3")
OPEN = "CHAOS-OPEN-1"
CUT_S = 10.0
CLIENTS = 6
LEASE_KEY = "{igm:lease}:catalogue-refresher"
VERSIONS_KEY = "{igm:cat}:versions"
GATE_KEY = "{igm:gate}:event_open"
BUCKET_KEY = "{igm:link}:bucket:stream_link"
READS = ("open", "events", "event", "streams")


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


START = datetime.now(UTC) - timedelta(minutes=30)
TODAY = START.date().isoformat()


@dataclass(frozen=True)
class Outcome:
    replica: str
    kind: str
    status: int  # 0: no HTTP answer
    at: float
    age: int | None
    retry_after: str | None


@dataclass
class Load:
    """Clients reading and minting on the replicas in ``targets`` until stopped."""

    targets: list[GatewayProcess]
    outcomes: list[Outcome] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def drop(self, replica: GatewayProcess) -> None:
        """Stop sending to ``replica`` (before it is killed)."""
        self.targets = [t for t in self.targets if t is not replica]

    def since(self, moment: float) -> list[Outcome]:
        return [o for o in list(self.outcomes) if o.at >= moment]

    async def _client(self, http: httpx.AsyncClient, seed: int) -> None:
        rng = random.Random(seed)
        while not self.stop.is_set():
            replica = rng.choice(self.targets)
            kind = rng.choice((*READS, "links"))
            try:
                response = await self._send(http, replica, kind)
            except httpx.HTTPError:
                self.outcomes.append(Outcome(replica.name, kind, 0, time.monotonic(), None, None))
                continue
            age = response.headers.get("age")
            self.outcomes.append(
                Outcome(
                    replica.name,
                    kind,
                    response.status_code,
                    time.monotonic(),
                    int(age) if age is not None else None,
                    response.headers.get("retry-after"),
                )
            )
            await asyncio.sleep(rng.uniform(0.05, 0.15))  # a client's pace

    async def _send(
        self, http: httpx.AsyncClient, replica: GatewayProcess, kind: str
    ) -> httpx.Response:
        base = f"{replica.url}/v1/events"
        if kind == "open":
            return await http.get(f"{base}/open")
        if kind == "events":
            return await http.get(base, params={"date": TODAY})
        if kind == "event":
            return await http.get(f"{base}/{OPEN}")
        if kind == "streams":
            return await http.get(f"{base}/{OPEN}/streams")
        headers = {"X-API-Key": API_KEY, "X-User-Id": f"viewer-{uuid.uuid4().hex[:12]}"}
        return await http.post(f"{base}/{OPEN}/links", json={"streamName": "HLS"}, headers=headers)

    def run(self) -> None:
        async def clients() -> None:
            async with httpx.AsyncClient(timeout=10) as http:
                await asyncio.gather(*(self._client(http, seed) for seed in range(CLIENTS)))

        asyncio.run(clients())


@contextmanager
def under_load(replicas: list[GatewayProcess]) -> Iterator[Load]:
    load = Load(list(replicas))
    thread = threading.Thread(target=load.run, name="load", daemon=True)
    thread.start()
    try:
        seconds_until(lambda: len(load.outcomes) >= 20, "the load under way", timeout_s=10)
        yield load
    finally:
        load.stop.set()
        thread.join(timeout=15)
        assert not thread.is_alive(), "the load did not stop"


@dataclass
class Rig:
    sim: SimulatorHandle
    tmp: Path
    stack: ExitStack
    http: httpx.Client
    gateways: list[GatewayProcess] = field(default_factory=list)

    def redis(self) -> RestartableRedis:
        store = RestartableRedis(self.tmp / f"redis-{uuid.uuid4().hex[:6]}")
        self.stack.callback(store.stop)
        store.start()
        return store

    def gateway(self, redis_url: str, name: str, server_ip: str, **env: str) -> GatewayProcess:
        settings = gateway_env(
            self.sim.api_url,
            redis_url,
            IGM_SERVER_IP=server_ip,
            API_KEYS=API_KEY,
            EVENTS_MIN_INTERVAL_S=str(INTERVAL_S),
            LEASE_TTL_S=str(LEASE_TTL_S),
            IGM_READ_TIMEOUT_S="4",
            CATALOGUE_COLD_WAIT_S="0.5",
            DEFAULT_REDIRECT_URL="https://operator.example/after",
            LINK_FALLBACK="local",
        )
        settings.update(env)
        gateway = self.stack.enter_context(run_gateway(settings, self.tmp / "logs", name=name))
        self.gateways.append(gateway)
        return gateway

    def fetched_at(self, gateway: GatewayProcess) -> str:
        fetched: str = self.http.get(f"{gateway.url}/v1/events/open").json()["fetchedAt"]
        return fetched

    def readiness(self, gateway: GatewayProcess) -> dict[str, object]:
        body: dict[str, object] = self.http.get(f"{gateway.url}/readyz").json()
        return body


@pytest.fixture(scope="module")
def simulator() -> Iterator[SimulatorHandle]:
    env = {"SIM_EVENTS_MIN_INTERVAL_S": str(INTERVAL_S), "SIM_SERVER_IPS": ",".join(SERVER_IPS)}
    with run_simulator(env=env) as sim:
        yield sim


@pytest.fixture
def rig(simulator: SimulatorHandle, tmp_path: Path) -> Iterator[Rig]:
    simulator.reset()
    event = {
        "eventId": OPEN,
        "eventStatusCode": "O",
        "title": "Chaos v Order",
        "sportCode": "FT",
        "startTime": _iso(START),
        "estimatedEndTime": _iso(START + timedelta(hours=4)),
    }
    simulator.load_scenario([event], {OPEN: [{"uniqueStreamName": "HLS", "streamType": "HLS"}]})
    with ExitStack() as stack:
        http = stack.enter_context(httpx.Client(timeout=15))
        yield Rig(simulator, tmp_path, stack, http)
        stats = simulator.stats()
        assert sum(stats["violations"].values()) == 0, stats
        for method in ("event_open", "event_all"):
            spacing = stats["minSpacingS"][method]
            assert spacing is None or spacing >= INTERVAL_S, (method, spacing)


# --- helpers ---------------------------------------------------------------------


def is_leader(rig: Rig, gateway: GatewayProcess) -> bool:
    for line in rig.http.get(f"{gateway.url}/metrics").text.splitlines():
        if line.startswith("gateway_refresh_leader "):
            return float(line.split()[1]) == 1.0
    return False


def leaders(rig: Rig, gateways: list[GatewayProcess]) -> list[GatewayProcess]:
    return [g for g in gateways if g.process.poll() is None and is_leader(rig, g)]


def warm(rig: Rig, *gateways: GatewayProcess) -> None:
    for gateway in gateways:
        for path in ("/v1/events/open", f"/v1/events?date={TODAY}", f"/v1/events/{OPEN}"):
            seconds_until(
                partial(answers_200, rig, gateway.url + path),
                f"{gateway.name} {path}",
                timeout_s=20,
            )


def answers_200(rig: Rig, url: str) -> bool:
    return rig.http.get(url).status_code == 200


def event_open_calls(sim: SimulatorHandle, server_ip: str) -> list[float]:
    """When (simulator monotonic) one replica's event/open calls arrived."""
    return [
        call["monotonic"]
        for call in sim.calls("event_open")
        if call["params"].get("xForwardedFor") == server_ip
    ]


def assert_reads_served(outcomes: list[Outcome], replicas: list[GatewayProcess]) -> None:
    names = {replica.name for replica in replicas}
    reads = [o for o in outcomes if o.replica in names and o.kind in READS]
    assert reads, "no reads"
    failed = [o for o in reads if o.status != 200]
    assert not failed, failed[:10]


def assert_links_answered(outcomes: list[Outcome], replicas: list[GatewayProcess]) -> None:
    """Links: minted, or a 429/503 with Retry-After; never a 500 or a closed connection."""
    names = {replica.name for replica in replicas}
    links = [o for o in outcomes if o.replica in names and o.kind == "links"]
    assert any(o.status == 200 for o in links), links[:10]
    for outcome in links:
        if outcome.status != 200:
            assert outcome.status in (429, 503), outcome
            assert outcome.retry_after is not None, outcome


# --- the tests -------------------------------------------------------------------------


def test_the_leader_killed_mid_refresh_under_load(rig: Rig) -> None:
    store = rig.redis()
    fleet = [
        rig.gateway(store.url, f"kill-{n}", SERVER_IPS[n], REPLICA_COUNT="3") for n in (0, 1, 2)
    ]
    warm(rig, *fleet)
    with under_load(fleet) as load:
        began = time.monotonic()
        [leader] = leaders(rig, fleet)
        leader_ip = SERVER_IPS[fleet.index(leader)]
        # Its next event/open call hangs upstream: kill it while the call is under way.
        rig.sim.inject_fault("event_open", "delay", delay_s=3.0, count=1)
        seconds_until(
            lambda: not rig.sim.control.get("/_sim/faults").json(),
            "the leader's refresh under way",
            timeout_s=3 * GATE_INTERVAL_S + 2,
        )
        load.drop(leader)
        leader.kill()
        killed_at = time.monotonic()
        survivors = [g for g in fleet if g is not leader]
        took = seconds_until(
            lambda: len(leaders(rig, survivors)) == 1, "a leader", timeout_s=LEASE_TTL_S + 3
        )
        assert took <= LEASE_TTL_S + 1.5
        [new_leader] = leaders(rig, survivors)
        new_ip = SERVER_IPS[fleet.index(new_leader)]
        seconds_until(
            lambda: event_open_calls(rig.sim, new_ip),
            "the new leader's first refresh",
            timeout_s=2 * GATE_INTERVAL_S + 3,
        )
        killed_call = event_open_calls(rig.sim, leader_ip)[-1]
        assert event_open_calls(rig.sim, new_ip)[0] - killed_call >= INTERVAL_S
        # every survivor serves a list fetched after the kill, then a little more load
        for survivor in survivors:
            before = rig.fetched_at(survivor)
            seconds_until(
                lambda s=survivor, b=before: rig.fetched_at(s) > b,  # type: ignore[misc]
                f"{survivor.name} fresher",
                timeout_s=2 * GATE_INTERVAL_S + 3,
            )
        settled = time.monotonic()
        seconds_until(
            lambda: len(load.since(settled)) >= 20, "load after the hand-over", timeout_s=10
        )
    outcomes = load.since(began)
    assert len([o for o in outcomes if o.at > killed_at]) >= 20  # served through the kill
    assert_reads_served(outcomes, survivors)
    assert_links_answered(outcomes, survivors)
    ages = [o.age for o in outcomes if o.kind == "open" and o.replica != leader.name]
    assert ages, "no open-list reads"
    assert max(a for a in ages if a is not None) <= AGE_BOUND_S, max(a or 0 for a in ages)
    assert leader.process.returncode == -9


def test_redis_replaced_by_an_empty_server_under_load(rig: Rig) -> None:
    store = rig.redis()
    fleet = [rig.gateway(store.url, f"empty-{n}", SERVER_IPS[n], REPLICA_COUNT="2") for n in (0, 1)]
    warm(rig, *fleet)
    with under_load(fleet) as load:
        began = time.monotonic()
        with store.client() as client:
            seconds_until(lambda: client.exists(BUCKET_KEY), "the link bucket in use", timeout_s=10)
        store.stop()
        store.start()  # the same port, nothing in it: no lease, gate, list or bucket
        restarted = time.monotonic()
        with store.client() as client:
            seconds_until(
                lambda: client.get(LEASE_KEY) is not None, "the lease", timeout_s=LEASE_TTL_S + 5
            )
            seconds_until(
                lambda: client.exists(GATE_KEY), "the gate", timeout_s=2 * GATE_INTERVAL_S + 5
            )
            seconds_until(
                lambda: b"open" in client.hgetall(VERSIONS_KEY),
                "the open list re-published",
                timeout_s=2 * GATE_INTERVAL_S + 5,
            )
            seconds_until(
                lambda: client.exists(BUCKET_KEY), "the link bucket rebuilt", timeout_s=10
            )
        assert len(leaders(rig, fleet)) == 1
        for gateway in fleet:
            seconds_until(
                lambda g=gateway: rig.readiness(g)["status"] == "ok",  # type: ignore[misc]
                f"{gateway.name} ready",
                timeout_s=10,
            )
        settled = time.monotonic()
        seconds_until(
            lambda: len(load.since(settled)) >= 20, "load after the restart", timeout_s=10
        )
    outcomes = load.since(began)
    assert [o for o in outcomes if o.at >= restarted and o.kind == "links" and o.status == 200]
    assert_reads_served(outcomes, fleet)
    assert_links_answered(outcomes, fleet)


def test_a_replica_cut_off_from_the_store_for_ten_seconds(rig: Rig) -> None:
    store = rig.redis()
    proxy = rig.stack.enter_context(run_tcp_proxy(store.port))
    cut = rig.gateway(f"redis://127.0.0.1:{proxy.port}/0", "cut", SERVER_IPS[0], REPLICA_COUNT="2")
    seconds_until(
        lambda: is_leader(rig, cut), "the first replica leading", timeout_s=LEASE_TTL_S + 3
    )
    direct = rig.gateway(store.url, "direct", SERVER_IPS[1], REPLICA_COUNT="2")
    fleet = [cut, direct]
    warm(rig, *fleet)
    with under_load(fleet) as load:
        began = time.monotonic()
        proxy.cut()
        cut_at = time.monotonic()
        took = seconds_until(
            lambda: leaders(rig, fleet) == [direct],
            "the other replica leading",
            timeout_s=LEASE_TTL_S + 3,
        )
        assert took <= LEASE_TTL_S + 2
        in_flight_s = 1.0  # an event call already sent when the path was cut may land
        while time.monotonic() - cut_at < CUT_S:
            readiness = rig.readiness(cut)
            if time.monotonic() - cut_at > 3.0:  # a sync round has noticed
                assert readiness["status"] == "degraded", readiness
            time.sleep(0.5)  # sampled through the cut, which lasts CUT_S whatever happens
        proxy.restore()
        restored = time.monotonic()
        seconds_until(
            lambda: rig.readiness(cut)["status"] == "ok", "the cut replica ready", timeout_s=10
        )
        before = rig.fetched_at(cut)
        seconds_until(
            lambda: rig.fetched_at(cut) > before,
            "the cut replica's lists fresh again",
            timeout_s=2 * GATE_INTERVAL_S + 3,
        )
        settled = time.monotonic()
        seconds_until(lambda: len(load.since(settled)) >= 20, "load after the cut", timeout_s=10)
    outcomes = load.since(began)
    assert_reads_served(outcomes, fleet)
    assert_links_answered(outcomes, fleet)
    cut_links = [o for o in outcomes if o.replica == "cut" and o.kind == "links"]
    assert [o for o in cut_links if cut_at + 1 < o.at < restored and o.status == 200]
    # No event call from the cut replica while it could not reach the fleet gate (the
    # simulator stamps calls with the same system-wide monotonic clock as this test).
    cut_calls = [
        call["monotonic"]
        for method in ("event_open", "event_all")
        for call in rig.sim.calls(method)
        if call["params"].get("xForwardedFor") == SERVER_IPS[0]
        and cut_at + in_flight_s < call["monotonic"] < restored
    ]
    assert cut_calls == []
    assert event_open_calls(rig.sim, SERVER_IPS[1]), "the other replica never refreshed"
