"""``GET /v1/events/live`` across a fleet: the simulator as a real HTTP server (its
control API changes statuses and adds events), a real redis-server and two gateway
replicas as real uvicorn processes; a third, capped replica for the limits.

Intervals are short (event lists every second, the simulator enforcing the same), so a
change reaches the subscribers within a few seconds; every wait is bounded generously.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from httpx_sse import EventSource, ServerSentEvent

from tests.support.gateway import GatewayProcess, gateway_env, run_fleet, run_gateway
from tests.support.jwt_keys import HS_SECRET, sign_hs256
from tests.support.polling import eventually, wait_until
from tests.support.redis_server import fresh_database
from tests.support.simulator import SimulatorHandle, run_simulator

pytestmark = [pytest.mark.redis, pytest.mark.slow]

INTERVAL_S = 1.0
WAIT_S = 20.0  # a change needs one list refresh (~1.5 s) and one sync (0.1 s)
HEARTBEAT_S = 1.0
API_KEY = "test-api-key-0123456789abcdef0123456789"
AUTH = {"X-API-Key": API_KEY, "X-User-Id": "viewer-1"}
PENDING, CLOSING, ADDED = "LIVE-P-1", "LIVE-O-1", "LIVE-N-1"


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _event(event_id: str, status: str) -> dict[str, object]:
    now = datetime.now(UTC)
    start = max(now - timedelta(minutes=5), now.replace(hour=0, minute=0, second=1))
    return {
        "eventId": event_id,
        "eventStatusCode": status,
        "title": f"Live {event_id}",
        "sportCode": "FT",
        "startTime": _iso(start),  # today's list (UTC)
        "estimatedEndTime": _iso(now + timedelta(hours=2)),
        "geoAllow": "",
        "geoBlock": "",
    }


EVENTS = [_event(PENDING, "P"), _event(CLOSING, "O")]


@dataclass
class Fleet:
    simulator: SimulatorHandle
    replicas: list[GatewayProcess]
    env: dict[str, str]
    log_dir: Path


@pytest.fixture(scope="module")
def fleet(redis_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    with run_simulator(env={"SIM_EVENTS_MIN_INTERVAL_S": str(INTERVAL_S)}) as simulator:
        simulator.load_scenario(EVENTS)
        env = gateway_env(
            simulator.api_url,
            fresh_database(redis_server_url, 7),
            EVENTS_MIN_INTERVAL_S=str(INTERVAL_S),
            CATALOGUE_SYNC_INTERVAL_S="0.1",
            CATALOGUE_DAYS_BACK="0",
            CATALOGUE_DAYS_AHEAD="1",
            LEASE_TTL_S="3",
            REPLICA_COUNT="3",
            API_KEYS=API_KEY,
            AUTH_JWT_SECRET=HS_SECRET,
            SSE_HEARTBEAT_S=str(HEARTBEAT_S),
            # One test user opens many streams here; the per-client limits have their
            # own tests (test_client_limits.py).
            SSE_MAX_PER_USER="0",
            SSE_MAX_PER_IP="0",
        )
        log_dir = Path(tmp_path_factory.mktemp("live"))
        with run_fleet(2, env, log_dir) as replicas:
            for replica in replicas:
                _wait_warm(replica)
            yield Fleet(simulator, replicas, env, log_dir)


def _wait_warm(replica: GatewayProcess) -> None:
    wait_until(
        lambda: httpx.get(f"{replica.url}/v1/events/open", timeout=5).status_code == 200,
        f"{replica.name} fetched the open list",
        timeout_s=WAIT_S,
    )


@dataclass
class Subscriber:
    """One live stream, read in the background into ``messages``."""

    response: httpx.Response
    messages: list[ServerSentEvent] = field(default_factory=list)
    ended: bool = False
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def read(self) -> None:
        async for message in EventSource(self.response).aiter_sse():
            if message.event == "message" and not message.data:
                # A heartbeat comment: once it has seen an id, httpx-sse dispatches an
                # empty message for it; a browser's EventSource does not (no data).
                continue
            self.messages.append(message)
            self.arrived.set()
        self.ended = True
        self.arrived.set()

    async def wait_for(
        self, found: Callable[[list[ServerSentEvent]], bool], timeout_s: float = WAIT_S
    ) -> list[ServerSentEvent]:
        deadline = time.monotonic() + timeout_s
        while not found(self.messages):
            assert not self.ended, "the stream ended"
            self.arrived.clear()
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"timed out; got {[(m.event, m.data) for m in self.messages]}"
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), remaining)
        return self.messages

    async def wait_ended(self, timeout_s: float = WAIT_S) -> None:
        """The stream ends cleanly (a broken one makes ``read`` raise instead)."""
        deadline = time.monotonic() + timeout_s
        while not self.ended:
            self.arrived.clear()
            remaining = deadline - time.monotonic()
            assert remaining > 0, "the stream did not end cleanly"
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), remaining)

    def changes(self) -> list[tuple[str, str, str]]:
        """(id, eventId, change) of the ``event`` messages."""
        return [
            (m.id, data["eventId"], data["change"])
            for m in self.messages
            if m.event == "event" and (data := orjson.loads(m.data))
        ]


def has_change(event_id: str, change: str) -> Callable[[list[ServerSentEvent]], bool]:
    def found(messages: list[ServerSentEvent]) -> bool:
        for message in messages:
            if message.event == "event":
                data = orjson.loads(message.data)
                if data["eventId"] == event_id and data["change"] == change:
                    return True
        return False

    return found


@contextlib.asynccontextmanager
async def subscribe(
    url: str,
    *,
    headers: dict[str, str] | None = None,
    params: dict[str, Any] | None = None,
) -> AsyncIterator[Subscriber]:
    timeout = httpx.Timeout(10.0, read=60.0)
    async with (
        httpx.AsyncClient(base_url=url, timeout=timeout) as client,
        client.stream("GET", "/v1/events/live", headers=headers or AUTH, params=params) as response,
    ):
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-store"
        subscriber = Subscriber(response)
        reader = asyncio.create_task(subscriber.read())
        try:
            yield subscriber
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
                await reader


def snapshot_of(message: ServerSentEvent) -> dict[str, Any]:
    assert message.event == "snapshot"
    data: dict[str, Any] = orjson.loads(message.data)
    return data


async def test_changes_reach_a_subscriber_on_each_replica_with_the_same_ids(
    fleet: Fleet,
) -> None:
    first, second = fleet.replicas
    sim = fleet.simulator
    async with (
        subscribe(first.url, params={"eventId": [PENDING, "LIVE-UNKNOWN"]}) as one,
        subscribe(second.url) as two,
    ):
        for subscriber in (one, two):
            messages = await subscriber.wait_for(lambda m: len(m) >= 1)
            snapshot = snapshot_of(messages[0])
            assert messages[0].id
            assert messages[0].retry == 3000
            assert [e["eventId"] for e in snapshot["events"]] == [CLOSING]
            assert snapshot["fetchedAt"].endswith("Z")
        watched = snapshot_of(one.messages[0])["watched"]
        assert watched[PENDING]["eventStatusCode"] == "P"
        assert watched["LIVE-UNKNOWN"] is None
        assert "watched" not in snapshot_of(two.messages[0])

        sim.set_status(PENDING, "O")
        for subscriber in (one, two):
            await subscriber.wait_for(has_change(PENDING, "opened"))
        sim.set_status(CLOSING, "C")
        for subscriber in (one, two):
            await subscriber.wait_for(has_change(CLOSING, "closed"))
        sim.load_scenario([*EVENTS, _event(ADDED, "O")])
        for subscriber in (one, two):
            await subscriber.wait_for(has_change(ADDED, "opened"))

        last = next(i for i, c in enumerate(one.changes()) if c[1:] == (ADDED, "opened"))
        seen_one = one.changes()[: last + 1]
        seen_two = two.changes()[: len(seen_one)]
        assert seen_one == seen_two  # the same messages, with the same ids, in order
        assert len({c[0] for c in seen_one}) == len(seen_one)
        opened = next(
            orjson.loads(m.data) for m in one.messages if has_change(ADDED, "opened")([m])
        )
        assert opened["event"]["eventStatusCode"] == "O"
        assert opened["event"]["eventId"] == ADDED
        assert set(opened["event"]) >= {"startTime", "estimatedEndTime", "geoAllow", "geoBlock"}

        # The record each change carries is the one GET /v1/events/{eventId} answers.
        async with httpx.AsyncClient(base_url=second.url) as client:
            answer = (await client.get(f"/v1/events/{ADDED}")).json()
        assert {k: v for k, v in answer.items() if k != "fetchedAt"} == opened["event"]


async def test_a_reconnect_with_last_event_id_gets_exactly_the_missed_messages(
    fleet: Fleet,
) -> None:
    first, second = fleet.replicas
    sim = fleet.simulator
    sim.load_scenario([*EVENTS, _event(ADDED, "O")])  # as the first test leaves it
    async with subscribe(second.url) as steady:
        await steady.wait_for(lambda m: len(m) >= 1)
        if ADDED not in {e["eventId"] for e in snapshot_of(steady.messages[0])["events"]}:
            await steady.wait_for(has_change(ADDED, "opened"))
        async with subscribe(first.url) as leaving:
            await leaving.wait_for(lambda m: len(m) >= 1)
            if ADDED not in {e["eventId"] for e in snapshot_of(leaving.messages[0])["events"]}:
                await leaving.wait_for(has_change(ADDED, "opened"))
            last_seen = leaving.messages[-1].id
        seen_before = len(steady.changes())
        assert last_seen
        # While that client is away: two changes.
        sim.set_status(ADDED, "V")
        sim.set_status(PENDING, "C")
        await steady.wait_for(has_change(ADDED, "voided"))
        await steady.wait_for(has_change(PENDING, "closed"))
        missed = steady.changes()[seen_before:]  # each may leave the open list first
        assert {(ADDED, "voided"), (PENDING, "closed")} <= {c[1:] for c in missed}
        assert {c[1:] for c in missed} <= {
            (ADDED, "voided"),
            (PENDING, "closed"),
            (ADDED, "removed"),
            (PENDING, "removed"),
        }
        # Back, on either replica: exactly those messages, no snapshot.
        for replica in (first, second):
            headers = {**AUTH, "Last-Event-ID": last_seen}
            async with subscribe(replica.url, headers=headers) as back:
                await back.wait_for(lambda m: len(m) >= len(missed))
                await asyncio.sleep(0.5)  # nothing else follows
                assert [m.event for m in back.messages] == ["event"] * len(missed)
                assert back.changes() == missed
                # Resuming from the last of them: nothing to send.
            headers = {**AUTH, "Last-Event-ID": missed[-1][0]}
            async with subscribe(replica.url, headers=headers) as current:
                await asyncio.sleep(0.5)  # a window in which nothing may arrive
                assert current.messages == []


async def test_a_quiet_stream_gets_comment_heartbeats(fleet: Fleet) -> None:
    received = b""
    async with (
        httpx.AsyncClient(base_url=fleet.replicas[1].url, timeout=10) as client,
        client.stream("GET", "/v1/events/live", headers=AUTH) as response,
    ):
        started = time.monotonic()
        async for chunk in response.aiter_bytes():
            received += chunk
            if received.count(b"\r\n: heartbeat\r\n\r\n") >= 2:
                break
            assert time.monotonic() - started < 10 * HEARTBEAT_S, received[-300:]
    assert received.startswith(b"id: ")
    assert b"event: snapshot\r\n" in received


@pytest.mark.parametrize("last_event_id", ["1000000-LIVE-O-1", "not-an-id"])
async def test_a_too_old_or_unknown_id_gets_a_fresh_snapshot(
    fleet: Fleet, last_event_id: str
) -> None:
    headers = {**AUTH, "Last-Event-ID": last_event_id}
    async with subscribe(fleet.replicas[0].url, headers=headers) as subscriber:
        messages = await subscriber.wait_for(lambda m: len(m) >= 1)
        assert "events" in snapshot_of(messages[0])


async def test_a_jwt_in_access_token_authenticates_and_never_reaches_the_logs(
    fleet: Fleet,
) -> None:
    replica = fleet.replicas[0]
    line = '"route":"/v1/events/live","status":200'
    before = replica.log_text().count(line)
    token = sign_hs256({"sub": "viewer-2", "exp": int(time.time()) + 300})
    async with subscribe(replica.url, headers={}, params={"access_token": token}) as sub:
        await sub.wait_for(lambda m: len(m) >= 1)
    async with subscribe(replica.url, headers={"Authorization": f"Bearer {token}"}) as sub:
        await sub.wait_for(lambda m: len(m) >= 1)
    log = await asyncio.to_thread(
        wait_until,
        replica.log_text,
        "both access lines of the live route in the log",
        until=lambda text: text.count(line) >= before + 2,
        timeout_s=WAIT_S,
    )
    assert token not in log
    assert token.split(".")[2] not in log


@pytest.mark.parametrize(
    ("headers", "params"),
    [
        pytest.param({}, {}, id="no credentials"),
        pytest.param({"Authorization": "Bearer not.a.jwt"}, {}, id="bad bearer token"),
        pytest.param({}, {"access_token": "not.a.jwt"}, id="bad access_token"),
        pytest.param({"X-API-Key": "wrong", "X-User-Id": "u"}, {}, id="bad API key"),
        pytest.param({}, {"api_key": API_KEY, "X-API-Key": API_KEY}, id="API key in the query"),
    ],
)
def test_without_valid_credentials_the_answer_is_401_problem_json(
    fleet: Fleet, headers: dict[str, str], params: dict[str, str]
) -> None:
    answer = httpx.get(
        f"{fleet.replicas[0].url}/v1/events/live", headers=headers, params=params, timeout=10
    )
    assert answer.status_code == 401
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == "unauthorized"
    assert API_KEY not in answer.text


@pytest.mark.parametrize(
    "event_ids",
    [
        pytest.param([f"E-{n}" for n in range(51)], id="more than 50"),
        pytest.param(["bad id"], id="malformed"),
        pytest.param(["x" * 129], id="too long"),
    ],
)
def test_watched_ids_are_checked(fleet: Fleet, event_ids: list[str]) -> None:
    answer = httpx.get(
        f"{fleet.replicas[0].url}/v1/events/live",
        headers=AUTH,
        params={"eventId": event_ids},
        timeout=10,
    )
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == "invalid_request"


async def test_the_cap_answers_503_and_shutdown_ends_streams_cleanly(fleet: Fleet) -> None:
    env = {**fleet.env, "SSE_MAX_CLIENTS": "2", "REPLICA_ID": "capped"}
    with run_gateway(env, fleet.log_dir, name="capped") as capped:
        _wait_warm(capped)
        async with subscribe(capped.url) as one:
            await one.wait_for(lambda m: len(m) >= 1)
            async with subscribe(capped.url) as two:
                await two.wait_for(lambda m: len(m) >= 1)
                async with httpx.AsyncClient(base_url=capped.url, timeout=10) as client:
                    refused = await client.get("/v1/events/live", headers=AUTH)
                assert refused.status_code == 503
                assert refused.headers["content-type"] == "application/problem+json"
                assert refused.json()["code"] == "live_full"
                assert int(refused.headers["Retry-After"]) >= 1
                async with httpx.AsyncClient(base_url=capped.url, timeout=10) as client:
                    metrics = (await client.get("/metrics")).text
                assert "gateway_live_subscribers 2.0" in metrics
                assert 'gateway_refusals_total{reason="live_full"} 1.0' in metrics

            # A client that left frees its place (the server hears the disconnect).
            async def place_freed() -> bool:
                async with (
                    httpx.AsyncClient(base_url=capped.url, timeout=10) as client,
                    client.stream("GET", "/v1/events/live", headers=AUTH) as again,
                ):
                    return again.status_code == 200

            await eventually(place_freed, "the place freed", timeout_s=WAIT_S)

            # SIGTERM: the stream ends with the chunked body's last chunk, and the
            # process exits on its own (uvicorn re-raises the signal it caught: -15)
            # well before the test would kill it (-9).
            started = time.monotonic()
            code = await asyncio.to_thread(capped.terminate, 15.0)
            assert code in (0, -15)
            assert time.monotonic() - started < 10
            await one.wait_ended()
        log = capped.log_text()
        assert "Application shutdown complete" in log
        assert "without completing response" not in log


async def test_shutdown_ends_streams_under_several_worker_processes(fleet: Fleet) -> None:
    """A worker of ``--workers N`` is a uvicorn server of its own, started by the
    supervisor, which passes SIGTERM on: each worker's lifespan hears it in front of
    that worker's handler (``app/exit_signal.py``) and ends its streams."""
    env = {**fleet.env, "REPLICA_ID": "workers"}
    with run_gateway(env, fleet.log_dir, name="workers", workers=2) as gateway:
        # Both workers warm (a new connection goes to either).
        async def both_warm() -> bool:
            return all([await _open_list_served(gateway) for _ in range(6)])

        await eventually(both_warm, "both workers fetched the open list", timeout_s=WAIT_S)
        async with contextlib.AsyncExitStack() as streams:
            subscribers = [
                await streams.enter_async_context(subscribe(gateway.url)) for _ in range(6)
            ]
            for subscriber in subscribers:
                await subscriber.wait_for(lambda m: len(m) >= 1)
            started = time.monotonic()
            code = await asyncio.to_thread(gateway.terminate, 15.0)
            assert code in (0, -15)
            assert time.monotonic() - started < 10
            for subscriber in subscribers:
                await subscriber.wait_ended()
        log = gateway.log_text()
        assert log.count("Application shutdown complete") == 2
        assert "without completing response" not in log


async def _open_list_served(replica: GatewayProcess) -> bool:
    """On a new connection (either worker's)."""
    async with httpx.AsyncClient(base_url=replica.url, timeout=5) as client:
        return (await client.get("/v1/events/open")).status_code == 200
