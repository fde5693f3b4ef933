"""Shared pieces of the fleet tests over Redis Cluster and Sentinel: the settings each
mode needs, the simulator's scenario, a load of reads and links run in a background
thread, and the simulator checks every run ends with."""

from __future__ import annotations

import asyncio
import random
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial

import httpx
import redis

from tests.support.gateway import GatewayProcess
from tests.support.polling import wait_until
from tests.support.redis_cluster import RedisClusterProcesses
from tests.support.redis_sentinel import RedisSentinelProcesses
from tests.support.simulator import SimMethod, SimulatorHandle

INTERVAL_S = 2.0
LEASE_TTL_S = 2.0
API_KEY = "test-api-key-0123456789abcdef0123456789"
OPEN = "MODE-OPEN"
LATER = "MODE-LATER"
EVENT_METHODS: tuple[SimMethod, ...] = ("event_open", "event_all")
START = datetime.now(UTC) - timedelta(minutes=30)
TODAY = START.date().isoformat()
READS = ("/v1/events/open", f"/v1/events?date={TODAY}", "/v1/sports", f"/v1/events/{OPEN}/streams")

Store = RedisClusterProcesses | RedisSentinelProcesses


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def load_scenario(sim: SimulatorHandle) -> None:
    events: list[dict[str, object]] = [
        {"eventId": OPEN, "eventStatusCode": "O", "title": "Mode v Failover", "sportCode": "FT",
         "startTime": _iso(START), "estimatedEndTime": _iso(START + timedelta(hours=4))},
        {"eventId": LATER, "eventStatusCode": "P", "sportCode": "FT",
         "startTime": _iso(START + timedelta(minutes=40))},
    ]  # fmt: skip
    sim.load_scenario(events, {OPEN: [{"uniqueStreamName": "HLS", "streamType": "HLS"}]})


def store_env(store: Store) -> dict[str, str]:
    """``REDIS_*`` settings for a cluster (a seed node) or a Sentinel set-up."""
    if isinstance(store, RedisClusterProcesses):
        return {"REDIS_MODE": "cluster", "REDIS_URL": store.url}
    return {
        "REDIS_MODE": "sentinel",
        "REDIS_SENTINELS": store.sentinels_setting,
        "REDIS_SENTINEL_MASTER": store.master_name,
    }


def fleet_env(sim: SimulatorHandle, store: Store, replicas: int, **extra: str) -> dict[str, str]:
    env = {
        "IGM_MODE": "production",
        "IGM_CUSTOMER_UID": "demo-customer-uid",
        "IGM_SERVER_IP": "127.0.0.1",
        "IGM_API_URL": sim.api_url,
        "IGM_PLAYER_API_URL": sim.api_url,
        "LOG_FORMAT": "json",
        "API_KEYS": API_KEY,
        "EVENTS_MIN_INTERVAL_S": str(INTERVAL_S),
        "LEASE_TTL_S": str(LEASE_TTL_S),
        "CATALOGUE_COLD_WAIT_S": "0.5",
        "IGM_READ_TIMEOUT_S": "2",
        "REPLICA_COUNT": str(replicas),
        "DEFAULT_REDIRECT_URL": "https://operator.example/after",
        "REDIRECT_ALLOWED_HOSTS": "operator.example",
    }
    return env | store_env(store) | extra


DEDUPE_KEYS = "{igm:link}:dedupe:*"  # the answers kept for dedupe (app/ratelimit/admission.py)


def answer_kept(store: Store, before: int, timeout_s: float = 5.0) -> bool:
    """Whether a link answer is kept for dedupe (more such keys than ``before``) within
    ``timeout_s``: it is written as the answer goes out, when the store is there."""
    try:
        wait_until(
            lambda: len(store.keys(DEDUPE_KEYS)),
            "the answer kept for dedupe",
            until=lambda count: count > before,
            timeout_s=timeout_s,
            ignore=(redis.RedisError,),
        )
    except AssertionError:
        return False
    return True


def link_request(
    replica: GatewayProcess, user: str, **body: str
) -> tuple[str, dict[str, object], dict[str, str]]:
    """URL, JSON body and headers of a link request for ``user`` (raw HLS by default)."""
    payload: dict[str, object] = {"streamName": "HLS", "kind": "raw"}
    payload.update(body)
    headers = {"X-API-Key": API_KEY, "X-User-Id": user}
    return f"{replica.url}/v1/events/{OPEN}/links", payload, headers


def wait_warm(replicas: Sequence[GatewayProcess], timeout_s: float = 40.0) -> None:
    """Every replica answers every read and mints a link."""
    deadline = time.monotonic() + timeout_s
    with httpx.Client(timeout=5) as http:

        def left() -> float:
            return max(0.1, deadline - time.monotonic())

        def answers(url: str) -> bool:
            return http.get(url).status_code == 200

        def minted(replica: GatewayProcess) -> bool:
            url, body, headers = link_request(replica, f"warm-{uuid.uuid4().hex[:8]}")
            return http.post(url, json=body, headers=headers).status_code == 200

        for replica in replicas:
            for path in READS:
                wait_until(
                    partial(answers, replica.url + path),
                    f"{replica.name} answers {path}",
                    timeout_s=left(),
                    every_s=0.1,
                )
            wait_until(
                partial(minted, replica),
                f"{replica.name} mints a link",
                timeout_s=left(),
                every_s=0.2,
            )


@dataclass(frozen=True)
class Answer:
    kind: str  # "read" or "link"
    path: str
    status: int
    code: str | None
    at: float  # monotonic
    fetched_at: str | None = None


@dataclass
class Load:
    """Reads and links (distinct users) from ``clients`` tasks until stopped."""

    replicas: Sequence[GatewayProcess]
    clients: int = 12
    answers: list[Answer] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    async def _client(self, http: httpx.AsyncClient, seed: int) -> None:
        rng = random.Random(seed)
        while not self._stop.is_set():
            replica = rng.choice(self.replicas)
            try:
                if rng.random() < 0.7:
                    path = rng.choice(READS)
                    response = await http.get(replica.url + path)
                    fetched = None
                    if response.status_code == 200 and path == READS[0]:
                        fetched = str(response.json().get("fetchedAt"))
                    self.answers.append(
                        Answer("read", path, response.status_code, None, time.monotonic(), fetched)
                    )
                else:
                    user = f"load-{seed}-{uuid.uuid4().hex[:8]}"
                    url, body, headers = link_request(replica, user)
                    response = await http.post(url, json=body, headers=headers)
                    code = None
                    if response.status_code != 200:
                        code = str(response.json().get("code"))
                    self.answers.append(
                        Answer("link", url, response.status_code, code, time.monotonic())
                    )
            except httpx.HTTPError as exc:
                self.errors.append(f"{replica.name}: {type(exc).__name__}")
            await asyncio.sleep(rng.uniform(0.05, 0.15))  # pacing: a client between requests

    async def _run(self) -> None:
        async with httpx.AsyncClient(timeout=10) as http:
            await asyncio.gather(*(self._client(http, seed) for seed in range(self.clients)))

    @contextmanager
    def running(self) -> Iterator[Load]:
        thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join(timeout=30)


def assert_event_calls_spaced(sim: SimulatorHandle, min_open_calls: int = 2) -> None:
    """0 violations, and every event method's closest calls at least the interval apart
    (since the simulator's last reset)."""
    stats = sim.stats()
    assert sum(stats["violations"].values()) == 0, stats
    for method in EVENT_METHODS:
        spacing = stats["minSpacingS"][method]
        assert spacing is None or spacing >= INTERVAL_S, (method, stats)
    assert stats["calls"]["event_open"] >= min_open_calls, stats


def event_calls_between(sim: SimulatorHandle, start: float, end: float) -> dict[str, int]:
    """Event calls that reached the simulator between two monotonic instants."""
    return {
        method: sum(1 for call in sim.calls(method) if start <= call["monotonic"] < end)
        for method in EVENT_METHODS
    }
