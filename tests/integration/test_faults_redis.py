"""Shared-store faults: a real redis-server that is missing, dies, restarts empty or
stalls, and replicas killed with SIGKILL, under real gateway processes and the
simulator.

Each replica calls ONEPlatform as its own ``IGM_SERVER_IP`` (the simulator whitelists
three), so the simulator's call log says which replica made each call. What is shown:

- Redis down at start: the gateway starts, ``/readyz`` answers 503 ``unavailable``
  while cold, no replica calls an event method, and everything recovers by itself when
  Redis appears (lease taken, lists published, ``/readyz`` ok);
- Redis dies mid-run: reads keep answering from memory, ``/readyz`` is ``degraded``,
  ``gateway_degraded`` is 1, replicas without ``REPLICA_COUNT`` or with more than one
  make no event call at all, a lone replica (``REPLICA_COUNT=1``) keeps refreshing
  within the spacing, and links follow ``LINK_FALLBACK`` (local bucket or 503);
- Redis restarts empty right after an event call: no event call comes closer than the
  interval, the lease is re-acquired and the lists re-published;
- Redis stalls (``CLIENT PAUSE``): commands time out at the 1 s socket timeout and the
  gateway keeps answering;
- a replica killed mid-refresh or mid-link: the lease moves within its TTL, the
  client of the dead replica gets a closed connection (no hang), and no call exceeds
  the budget.

Every test ends with the two columns of ``docs/reliability.md``: simulator violations
0 (event calls at least the interval apart) and no secret in any answer or log.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import polling
from tests.support.gateway import GatewayProcess, gateway_env, run_gateway
from tests.support.redis_server import RestartableRedis
from tests.support.simulator import SimMethod, SimulatorHandle, run_simulator

pytestmark = [pytest.mark.redis, pytest.mark.slow]

UID = f"uid-redis-{uuid.uuid4().hex}"
API_KEY = f"key-redis-{uuid.uuid4().hex}"
SECRETS = (UID, API_KEY)
INTERVAL_S = 2.0
GATE_INTERVAL_S = INTERVAL_S + 0.5
LEASE_TTL_S = 2.0
SOCKET_TIMEOUT_S = 1.0  # app.store.build_store
SERVER_IPS = ("127.0.0.1", "127.0.0.2", "127.0.0.3")
OPEN = "RDS-OPEN-1"
COUNTRY_HEADER = "CF-IPCountry"
PROBLEM_JSON = "application/problem+json"
EVENT_METHODS: tuple[SimMethod, ...] = ("event_open", "event_all")
LEASE_KEY = "{igm:lease}:catalogue-refresher"
VERSIONS_KEY = "{igm:cat}:versions"


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


START = datetime.now(UTC) - timedelta(minutes=30)
DAYS = [(START + timedelta(days=offset)).date().isoformat() for offset in (0, 1, 2)]


def load_scenario(sim: SimulatorHandle) -> None:
    events: list[dict[str, object]] = [
        {"eventId": OPEN, "eventStatusCode": "O", "title": "Store v Outage", "sportCode": "FT",
         "startTime": _iso(START), "estimatedEndTime": _iso(START + timedelta(hours=4))},
        {"eventId": "RDS-TOMORROW", "eventStatusCode": "P", "sportCode": "FT",
         "startTime": _iso(START + timedelta(days=1))},
        {"eventId": "RDS-LATER", "eventStatusCode": "P", "sportCode": "FT",
         "startTime": _iso(START + timedelta(days=2))},
    ]  # fmt: skip
    sim.load_scenario(events, {OPEN: [{"uniqueStreamName": "HLS", "streamType": "HLS"}]})


@dataclass
class Rig:
    sim: SimulatorHandle
    tmp: Path
    stack: ExitStack
    http: httpx.Client
    answers: list[httpx.Response] = field(default_factory=list)
    gateways: list[GatewayProcess] = field(default_factory=list)

    def redis(self, *, started: bool = True) -> RestartableRedis:
        store = RestartableRedis(self.tmp / f"redis-{uuid.uuid4().hex[:6]}")
        self.stack.callback(store.stop)
        if started:
            store.start()
        return store

    def gateway(
        self, store: RestartableRedis, name: str, server_ip: str, **env: str
    ) -> GatewayProcess:
        settings = gateway_env(
            self.sim.api_url,
            store.url,
            IGM_CUSTOMER_UID=UID,
            IGM_SERVER_IP=server_ip,
            API_KEYS=API_KEY,
            EVENTS_MIN_INTERVAL_S=str(INTERVAL_S),
            LEASE_TTL_S=str(LEASE_TTL_S),
            IGM_READ_TIMEOUT_S="1",
            CATALOGUE_COLD_WAIT_S="0.5",
            TRUSTED_PROXIES="127.0.0.1/32",
            GEO_COUNTRY_HEADER=COUNTRY_HEADER,
            DEFAULT_REDIRECT_URL="https://operator.example/after",
            LINK_DEDUPE_WINDOW_S="0",
        )
        settings.update(env)
        gateway = self.stack.enter_context(run_gateway(settings, self.tmp / "logs", name=name))
        self.gateways.append(gateway)
        return gateway

    def get(self, gateway: GatewayProcess, path: str, **params: str) -> httpx.Response:
        response = self.http.get(gateway.url + path, params=params)
        self.answers.append(response)
        return response

    def mint(self, gateway: GatewayProcess, event_id: str = OPEN) -> httpx.Response:
        headers = {
            "X-API-Key": API_KEY,
            "X-User-Id": f"viewer-{uuid.uuid4().hex[:10]}",
            "X-Forwarded-For": "203.0.113.9",
            COUNTRY_HEADER: "GB",
        }
        body = {"streamName": "HLS", "kind": "raw"}
        url = f"{gateway.url}/v1/events/{event_id}/links"
        response = self.http.post(url, json=body, headers=headers)
        self.answers.append(response)
        return response


@pytest.fixture(scope="module")
def simulator() -> Iterator[SimulatorHandle]:
    env = {
        "SIM_CUSTOMER_UID": UID,
        "SIM_EVENTS_MIN_INTERVAL_S": str(INTERVAL_S),
        "SIM_SERVER_IPS": ",".join(SERVER_IPS),
    }
    with run_simulator(env=env) as sim:
        yield sim


@pytest.fixture
def rig(simulator: SimulatorHandle, tmp_path: Path) -> Iterator[Rig]:
    simulator.reset()
    load_scenario(simulator)
    with ExitStack() as stack:
        http = stack.enter_context(httpx.Client(timeout=15))
        rig = Rig(simulator, tmp_path, stack, http)
        yield rig
        # the two columns of docs/reliability.md, for every test
        assert_within_budget(simulator)
        assert_no_secrets(rig)


# --- helpers ---------------------------------------------------------------------


def wait_until(condition: Callable[[], object], timeout_s: float, what: str) -> float:
    """Seconds it took for ``condition`` to hold; fails after ``timeout_s``."""
    started = time.monotonic()
    polling.wait_until(condition, what, timeout_s=timeout_s, every_s=0.1)
    return time.monotonic() - started


def assert_within_budget(sim: SimulatorHandle) -> None:
    stats = sim.stats()
    assert sum(stats["violations"].values()) == 0, stats
    for method in EVENT_METHODS:
        spacing = stats["minSpacingS"][method]
        assert spacing is None or spacing >= INTERVAL_S, (method, spacing)


def assert_no_secrets(rig: Rig) -> None:
    for response in rig.answers:
        text = response.text + " ".join(f"{k}: {v}" for k, v in response.headers.items())
        for secret in SECRETS:
            assert secret not in text, response.request.url
    for gateway in rig.gateways:
        log = gateway.log_text()
        assert '"gateway_started"' in log
        for secret in SECRETS:
            assert secret not in log, gateway.name


def event_calls(sim: SimulatorHandle, server_ip: str | None = None) -> int:
    """Event-method calls the simulator received (from one replica, when given)."""
    return sum(
        1
        for method in EVENT_METHODS
        for call in sim.calls(method)
        if server_ip is None or call["params"].get("xForwardedFor") == server_ip
    )


def calls_from(sim: SimulatorHandle, method: SimMethod, server_ip: str) -> list[float]:
    """When (simulator monotonic) one replica's calls of ``method`` arrived."""
    calls = sim.calls(method)
    return [c["monotonic"] for c in calls if c["params"].get("xForwardedFor") == server_ip]


def called_more(sim: SimulatorHandle, method: SimMethod, than: int) -> bool:
    return len(sim.calls(method)) > than


_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:]+)(?:\{(?P<labels>[^}]*)\})? (?P<value>\S+)$")


def metric(gateway: GatewayProcess, name: str) -> float:
    total = 0.0
    for line in httpx.get(f"{gateway.url}/metrics", timeout=10).text.splitlines():
        match = _SAMPLE.match(line)
        if match is not None and match["name"] == name:
            total += float(match["value"])
    return total


def ready(rig: Rig, gateway: GatewayProcess) -> tuple[int, dict[str, Any]]:
    response = rig.get(gateway, "/readyz")
    body = response.json()
    assert isinstance(body, dict)
    return response.status_code, body


READY_OK = {"status": "ok", "checks": {"store": "ok", "catalogue": "warm", "tasks": "ok"}}


def is_ok(rig: Rig, gateway: GatewayProcess) -> bool:
    return ready(rig, gateway) == (200, READY_OK)


def answers_200(rig: Rig, gateway: GatewayProcess, path: str, **params: str) -> bool:
    return rig.get(gateway, path, **params).status_code == 200


def fresher(rig: Rig, gateway: GatewayProcess, than: str) -> bool:
    fetched: str = rig.get(gateway, "/v1/events/open").json()["fetchedAt"]
    return fetched > than


def problem(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert isinstance(body, dict)
    assert body["code"] == code
    assert "Traceback" not in response.text
    return body


def warm(rig: Rig, *gateways: GatewayProcess) -> None:
    for gateway in gateways:
        wait_until(partial(answers_200, rig, gateway, "/v1/events/open"), 20, "warm")
        for day in DAYS:
            wait_until(partial(answers_200, rig, gateway, "/v1/events", date=day), 20, day)


def leader_of(gateways: list[GatewayProcess]) -> list[GatewayProcess]:
    return [g for g in gateways if g.process.poll() is None and
            metric(g, "gateway_refresh_leader") == 1.0]  # fmt: skip


# --- Redis down at start ----------------------------------------------------------


def test_redis_down_at_start_then_appearing(rig: Rig) -> None:
    store = rig.redis(started=False)
    replicas = [rig.gateway(store, f"cold-{n}", SERVER_IPS[n]) for n in (0, 1)]  # no count
    watch_until = time.monotonic() + 3 * GATE_INTERVAL_S
    while time.monotonic() < watch_until:
        for gateway in replicas:
            assert rig.get(gateway, "/healthz").status_code == 200  # alive
            status, body = ready(rig, gateway)
            assert (status, body["status"]) == (503, "unavailable"), body
            assert body["checks"]["store"] == "unreachable"
            assert body["checks"]["catalogue"] in ("cold", "cold,degraded")  # 1st sync: degraded
            cold = rig.get(gateway, "/v1/events/open")
            problem(cold, 503, "catalogue_warming")
            assert int(cold.headers["retry-after"]) >= 1
        time.sleep(0.5)
    assert event_calls(rig.sim) == 0  # nobody can coordinate: nobody calls
    for gateway in replicas:
        assert metric(gateway, "gateway_degraded") == 1.0
        assert metric(gateway, "gateway_redis_errors_total") > 0

    store.start()
    for gateway in replicas:
        took = wait_until(partial(is_ok, rig, gateway), 15, f"{gateway.name} ready")
        assert took < 3 * GATE_INTERVAL_S + 2
        assert metric(gateway, "gateway_degraded") == 0.0
        assert rig.get(gateway, "/v1/events/open").json()["events"][0]["eventId"] == OPEN
    with store.client() as client:
        holder = client.get(LEASE_KEY)
        assert holder is not None
        assert holder.decode() in {g.name for g in replicas}
        assert b"open" in client.hgetall(VERSIONS_KEY)
    assert len(leader_of(replicas)) == 1


# --- Redis dies mid-run -------------------------------------------------------------


def test_redis_dying_mid_run(rig: Rig) -> None:
    store = rig.redis()
    closed = rig.gateway(store, "no-count", SERVER_IPS[0])  # REPLICA_COUNT unset
    local = rig.gateway(store, "count-2", SERVER_IPS[1], REPLICA_COUNT="2", LINK_FALLBACK="local")
    fleet = [closed, local]
    warm(rig, *fleet)
    for gateway in fleet:
        assert rig.mint(gateway).status_code == 200
    links_before = rig.sim.stats()["calls"]["stream_link"]

    store.stop()
    died_at = time.monotonic()
    time.sleep(1.0)  # an event call already under way when Redis died may still land
    calls_at_death = event_calls(rig.sim)
    before = {g.name: rig.get(g, "/v1/events/open").json()["fetchedAt"] for g in fleet}
    ages: dict[str, list[int]] = {g.name: [] for g in fleet}
    while time.monotonic() - died_at < 4 * GATE_INTERVAL_S:
        for gateway in fleet:
            read = rig.get(gateway, "/v1/events/open")
            assert read.status_code == 200
            assert read.json()["fetchedAt"] == before[gateway.name]  # the copy in memory
            ages[gateway.name].append(int(read.headers["age"]))
            for day in DAYS:
                assert rig.get(gateway, "/v1/events", date=day).status_code == 200
            status, body = ready(rig, gateway)
            if time.monotonic() - died_at > 3.0:  # a sync round (every 0.5 s) has noticed
                assert (status, body["status"]) == (200, "degraded"), body
                assert body["checks"] == {
                    "store": "unreachable",
                    "catalogue": "warm,degraded",
                    "tasks": "ok",  # the refresher and sync loop ride it out
                }
        time.sleep(0.5)
    assert event_calls(rig.sim) == calls_at_death  # zero event calls while it is down
    for name, seen in ages.items():
        assert seen == sorted(seen)
        assert seen[-1] - seen[0] >= 3 * GATE_INTERVAL_S - 2, name
    for gateway in fleet:
        assert metric(gateway, "gateway_degraded") == 1.0
        assert metric(gateway, "gateway_redis_errors_total") > 0
        assert metric(gateway, "gateway_refresh_leader") == 0.0
    # An unknown event cannot trigger an event call either; and with no list to come,
    # it is not called "not found": ask again later.
    unknown = rig.mint(local, "RDS-UNKNOWN")
    problem(unknown, 503, "catalogue_warming")
    assert int(unknown.headers["retry-after"]) >= 1
    # Links: without a replica count, refused; with one, this replica's local share.
    refused = problem(rig.mint(closed), 503, "link_budget_unavailable")
    assert refused["retryAfter"] == 5
    minted = rig.mint(local)
    assert minted.status_code == 200, minted.text
    assert minted.json()["kind"] == "hls"
    assert rig.sim.stats()["calls"]["stream_link"] == links_before + 1
    assert event_calls(rig.sim) == calls_at_death

    store.start()  # back, empty
    for gateway in fleet:
        wait_until(partial(is_ok, rig, gateway), 10, "recovered")
        assert metric(gateway, "gateway_degraded") == 0.0
    wait_until(lambda: len(leader_of(fleet)) == 1, LEASE_TTL_S + 3, "a leader")
    with store.client() as client:
        wait_until(lambda: b"open" in client.hgetall(VERSIONS_KEY), 2 * GATE_INTERVAL_S + 1,
                   "the open list re-published")  # fmt: skip
    for gateway in fleet:
        wait_until(partial(fresher, rig, gateway, before[gateway.name]), 2 * GATE_INTERVAL_S + 2,
                   "fresh lists")  # fmt: skip


def test_a_lone_replica_keeps_refreshing_without_redis(rig: Rig) -> None:
    store = rig.redis()
    lone = rig.gateway(store, "alone", SERVER_IPS[2], REPLICA_COUNT="1", LINK_FALLBACK="closed")
    warm(rig, lone)
    store.stop()
    died_at = time.monotonic()
    first = rig.get(lone, "/v1/events/open").json()["fetchedAt"]
    at_death = len(calls_from(rig.sim, "event_open", SERVER_IPS[2]))
    time.sleep(4 * GATE_INTERVAL_S)  # the window in which it must keep refreshing alone
    during = calls_from(rig.sim, "event_open", SERVER_IPS[2])[at_death:]
    assert len(during) >= 3  # it kept refreshing on its own ...
    assert min(b - a for a, b in pairwise(during)) >= INTERVAL_S  # spaced
    assert rig.get(lone, "/v1/events/open").json()["fetchedAt"] > first
    status, body = ready(rig, lone)
    assert (status, body["status"]) == (200, "degraded")
    assert metric(lone, "gateway_degraded") == 1.0
    assert metric(lone, "gateway_refresh_leader") == 1.0
    assert time.monotonic() - died_at < 4 * GATE_INTERVAL_S + 5
    # LINK_FALLBACK=closed: links refused while the budget cannot be shared
    problem(rig.mint(lone), 503, "link_budget_unavailable")


# --- Redis restarts empty ------------------------------------------------------------


def test_redis_restarting_empty_right_after_an_event_call(rig: Rig) -> None:
    store = rig.redis()
    fleet = [rig.gateway(store, f"restart-{n}", SERVER_IPS[n], REPLICA_COUNT="2") for n in (0, 1)]
    warm(rig, *fleet)
    [leader] = leader_of(fleet)
    follower = next(g for g in fleet if g is not leader)
    for method in EVENT_METHODS:
        seen = len(rig.sim.calls(method))
        wait_until(partial(called_more, rig.sim, method, seen), 3 * GATE_INTERVAL_S + 2,
                   f"a fresh {method} call")  # fmt: skip
        store.stop()
        store.start()  # the gates, the lease, the lists: all gone
        restarted = time.monotonic()
        # The follower never made this call; asking it for an unknown event makes it
        # try event/open at once (the first commands on its pooled connections fail, so
        # ask a few times): not found once a list fetched since says so, until then
        # 503 with Retry-After. And the lease is free: either replica may lead now.
        forced = 0
        while time.monotonic() - restarted < 1.5 or forced < 5:
            unknown = rig.mint(follower, f"RDS-NEVER-{uuid.uuid4().hex[:8]}")
            if unknown.status_code == 503:
                problem(unknown, 503, "catalogue_warming")
                assert int(unknown.headers["retry-after"]) >= 1
            else:
                problem(unknown, 404, "event_not_found")
            forced += 1
            time.sleep(0.1)
        time.sleep(GATE_INTERVAL_S)  # whatever the fleet does next lands in the log
        assert_within_budget(rig.sim)
    wait_until(lambda: len(leader_of(fleet)) == 1, LEASE_TTL_S + 3, "a leader again")
    with store.client() as client:
        wait_until(lambda: client.get(LEASE_KEY) is not None, LEASE_TTL_S + 2, "lease")
        wait_until(lambda: b"open" in client.hgetall(VERSIONS_KEY), 2 * GATE_INTERVAL_S + 2,
                   "lists re-published")  # fmt: skip
    time.sleep(2 * GATE_INTERVAL_S)  # and the next rounds keep the spacing too
    for gateway in fleet:
        assert rig.get(gateway, "/v1/events/open").status_code == 200


# --- Redis stalls -----------------------------------------------------------------


def test_a_stalled_redis_times_out_and_the_gateway_keeps_answering(rig: Rig) -> None:
    store = rig.redis()
    gateway = rig.gateway(store, "stalled", SERVER_IPS[0], REPLICA_COUNT="1")
    warm(rig, gateway)
    assert rig.mint(gateway).status_code == 200
    errors_before = metric(gateway, "gateway_redis_errors_total")
    # Long enough that waiting it out cannot pass for a timeout, however loaded the
    # machine: reads for 1.5 s, then a readiness check whose ping must time out.
    pause_s = 8.0
    with store.client() as client:
        client.execute_command("CLIENT", "PAUSE", str(int(pause_s * 1000)), "ALL")
    paused_at = time.monotonic()
    slowest_read = 0.0
    while time.monotonic() - paused_at < 1.5:
        for path in ("/healthz", "/v1/events/open", f"/v1/events/{OPEN}"):
            sent = time.perf_counter()
            assert rig.get(gateway, path).status_code == 200
            slowest_read = max(slowest_read, time.perf_counter() - sent)
        time.sleep(0.1)
    # reads never wait on the store (a read that did would take the 1 s socket timeout)
    assert slowest_read < 0.9 * SOCKET_TIMEOUT_S, slowest_read
    sent = time.perf_counter()
    status, body = ready(rig, gateway)
    took = time.perf_counter() - sent
    assert (status, body["status"], body["checks"]["store"]) == (200, "degraded", "unreachable")
    assert SOCKET_TIMEOUT_S - 0.1 < took < SOCKET_TIMEOUT_S + 3  # the ping timed out
    assert metric(gateway, "gateway_redis_errors_total") > errors_before
    wait_until(lambda: time.monotonic() - paused_at > pause_s, pause_s, "the pause to end")
    wait_until(lambda: is_ok(rig, gateway), 5, "recovered")
    assert rig.mint(gateway).status_code == 200
    assert metric(gateway, "gateway_degraded") == 0.0


def test_a_stalled_redis_delays_a_link_by_bounded_timeouts(rig: Rig) -> None:
    store = rig.redis()
    gateway = rig.gateway(store, "stalled-link", SERVER_IPS[1], REPLICA_COUNT="2")
    warm(rig, gateway)
    assert rig.mint(gateway).status_code == 200
    with store.client() as client:
        client.execute_command("CLIENT", "PAUSE", "8000", "ALL")  # far past the timeouts
    sent = time.perf_counter()
    minted = rig.mint(gateway)
    took = time.perf_counter() - sent
    assert minted.status_code == 200, minted.text  # the local share stood in
    assert took < 2 * SOCKET_TIMEOUT_S + 3, took  # admission + dedupe, each 1 s at most


# --- replicas killed with SIGKILL ----------------------------------------------------


def test_replicas_killed_mid_refresh_and_mid_link(rig: Rig) -> None:
    store = rig.redis()
    fleet = [
        rig.gateway(store, f"kill-{n}", SERVER_IPS[n], REPLICA_COUNT="3", IGM_READ_TIMEOUT_S="4")
        for n in (0, 1, 2)
    ]
    warm(rig, *fleet)
    [leader] = leader_of(fleet)
    leader_ip = SERVER_IPS[fleet.index(leader)]
    # Mid-refresh: the leader's next event/open call hangs in the upstream; kill it then.
    rig.sim.inject_fault("event_open", "delay", delay_s=3.0, count=1)
    wait_until(lambda: not rig.sim.control.get("/_sim/faults").json(), 3 * GATE_INTERVAL_S + 1,
               "the leader's call to be under way")  # fmt: skip
    leader.kill()
    killed_at = time.monotonic()
    survivors = [g for g in fleet if g is not leader]
    took = wait_until(lambda: len(leader_of(survivors)) == 1, LEASE_TTL_S + 3, "a new leader")
    assert took <= LEASE_TTL_S + 1.5
    [new_leader] = leader_of(survivors)
    with store.client() as client:
        assert client.get(LEASE_KEY) == new_leader.name.encode()
    new_ip = SERVER_IPS[fleet.index(new_leader)]
    wait_until(lambda: calls_from(rig.sim, "event_open", new_ip), 2 * GATE_INTERVAL_S + 3,
               "the new leader's first call")  # fmt: skip
    killed_call = calls_from(rig.sim, "event_open", leader_ip)[-1]
    taken_over = calls_from(rig.sim, "event_open", new_ip)[0]
    assert taken_over - killed_call >= INTERVAL_S  # the fleet gate outlived its holder
    assert time.monotonic() - killed_at < LEASE_TTL_S + 2 * GATE_INTERVAL_S + 3
    for gateway in survivors:
        assert rig.get(gateway, "/v1/events/open").status_code == 200

    # Mid-link: a stream/link call hangs in the upstream; kill the replica serving it.
    victim = next(g for g in survivors if g is not new_leader)
    rig.sim.inject_fault("stream_link", "delay", delay_s=2.0, count=1)
    outcome: list[BaseException | httpx.Response] = []

    def request() -> None:
        try:
            outcome.append(rig.mint(victim))
        except httpx.HTTPError as exc:
            outcome.append(exc)

    client_thread = threading.Thread(target=request)
    client_thread.start()
    wait_until(lambda: not rig.sim.control.get("/_sim/faults").json(), 5, "the link call")
    victim.kill()
    client_thread.join(timeout=5)
    assert not client_thread.is_alive(), "the client of a dead replica hung"
    [result] = outcome
    assert isinstance(result, httpx.RemoteProtocolError | httpx.ReadError), result
    minted = rig.mint(new_leader)  # the survivor's budget and bucket still work
    assert minted.status_code == 200, minted.text
    stats = rig.sim.stats()
    assert stats["maxPerSecond"]["stream_link"] <= 150
    assert [g.process.poll() for g in fleet] == [
        -9 if g in (leader, victim) else None for g in fleet
    ]
