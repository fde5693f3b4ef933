"""Concurrent streams per user, fleet-wide: two real gateway replicas sharing a real
redis-server, the simulator as the upstream. A play past MAX_STREAMS_PER_USER is
refused (or the oldest session is evicted and told), heartbeats keep sessions,
expiry and DELETE free them, and concurrent plays cannot race past the limit."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import redis

from tests.support.gateway import gateway_env, run_fleet
from tests.support.polling import wait_until
from tests.support.redis_server import fresh_database
from tests.support.simulator import SimulatorHandle, run_simulator

pytestmark = [pytest.mark.redis, pytest.mark.slow]

API_KEY = "test-api-key-0123456789abcdef0123456789"
ADMIN_KEY = "sessions-admin-key-0123456789abcdef01234"
EVENTS = [f"SESSIONS-{n}" for n in range(4)]
TTL_S = 3


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture(scope="module")
def simulator() -> Iterator[SimulatorHandle]:
    now = datetime.now(UTC)
    events = [
        {
            "eventId": event_id,
            "eventStatusCode": "O",
            "title": event_id,
            "sportCode": "FT",
            "startTime": _iso(now - timedelta(minutes=10)),
            "estimatedEndTime": _iso(now + timedelta(hours=2)),
            "geoAllow": "",
            "geoBlock": "",
        }
        for event_id in EVENTS
    ]
    stream = {"uniqueStreamName": "HLS", "streamType": "HLS", "description": "HLS"}
    with run_simulator(env={"SIM_EVENTS_MIN_INTERVAL_S": "0"}) as sim:
        sim.load_scenario(events, {event_id: [stream] for event_id in EVENTS})
        yield sim


def fleet_env(simulator: SimulatorHandle, redis_url: str, policy: str) -> dict[str, str]:
    return gateway_env(
        simulator.api_url,
        redis_url,
        API_KEYS=API_KEY,
        ADMIN_API_KEYS=ADMIN_KEY,
        DEFAULT_REDIRECT_URL="https://operator.example/after",
        TRUSTED_PROXIES="127.0.0.1/32",
        EVENTS_MIN_INTERVAL_S="0.5",
        REPLICA_COUNT="2",
        MAX_STREAMS_PER_USER="2",
        SESSION_TTL_S=str(TTL_S),
        SESSION_LIMIT_POLICY=policy,
        LINK_DEDUPE_WINDOW_S="0",
    )


def _wait_events(urls: list[str]) -> None:
    def listed(url: str) -> bool:
        answer = httpx.get(f"{url}/v1/events/open")
        return answer.is_success and set(EVENTS) <= {e["eventId"] for e in answer.json()["events"]}

    wait_until(lambda: all(listed(url) for url in urls), "the fleet lists the events", timeout_s=30)


@pytest.fixture(scope="module")
def refusing(
    simulator: SimulatorHandle, redis_server_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[str]]:
    env = fleet_env(simulator, fresh_database(redis_server_url, 15), "refuse")
    with run_fleet(2, env, tmp_path_factory.mktemp("sessions-refuse")) as fleet:
        urls = [g.url for g in fleet]
        _wait_events(urls)
        yield urls


def viewer(user: str, ip: str = "198.51.100.30") -> dict[str, str]:
    return {"X-API-Key": API_KEY, "X-User-Id": user, "X-Forwarded-For": ip}


def new_user() -> str:
    return f"watcher-{uuid.uuid4().hex[:10]}"


def play(url: str, event_id: str, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(
        f"{url}/v1/events/{event_id}/play", json={"device": "app"}, headers=headers, timeout=10
    )


def link_calls(sim: SimulatorHandle, user: str) -> int:
    return sum(1 for c in sim.calls("stream_link") if c["params"].get("userId") == user)


def test_a_play_past_the_limit_is_refused_on_any_replica(
    refusing: list[str], simulator: SimulatorHandle
) -> None:
    user = new_user()
    first = play(refusing[0], EVENTS[0], viewer(user))
    second = play(refusing[1], EVENTS[1], viewer(user))
    assert first.status_code == second.status_code == 200, (first.text, second.text)
    ids = {first.json()["sessionId"], second.json()["sessionId"]}
    assert len(ids) == 2
    assert first.json()["heartbeatEveryS"] == TTL_S / 2
    third = play(refusing[0], EVENTS[2], viewer(user))
    assert third.status_code == 409, third.text
    assert third.json()["code"] == "too_many_streams"
    assert int(third.headers["retry-after"]) >= 1
    assert link_calls(simulator, user) == 2  # the refused play cost no upstream call
    # another user is not affected
    assert play(refusing[1], EVENTS[2], viewer(new_user())).status_code == 200


def test_ending_a_session_frees_its_slot(refusing: list[str]) -> None:
    user = new_user()
    sessions = [play(refusing[i], EVENTS[i], viewer(user)).json()["sessionId"] for i in (0, 1)]
    assert play(refusing[0], EVENTS[2], viewer(user)).status_code == 409
    other = httpx.delete(f"{refusing[1]}/v1/sessions/{sessions[0]}", headers=viewer(new_user()))
    assert other.status_code == 404  # not this user's session
    ended = httpx.delete(f"{refusing[1]}/v1/sessions/{sessions[0]}", headers=viewer(user))
    assert ended.status_code == 204
    again = httpx.delete(f"{refusing[0]}/v1/sessions/{sessions[0]}", headers=viewer(user))
    assert again.status_code == 404
    assert play(refusing[0], EVENTS[2], viewer(user)).status_code == 200


def test_a_renewal_continues_its_session_at_the_limit(
    refusing: list[str], simulator: SimulatorHandle
) -> None:
    user = new_user()
    first = play(refusing[0], EVENTS[0], viewer(user)).json()
    play(refusing[1], EVENTS[1], viewer(user))
    renewed = httpx.post(
        f"{refusing[1]}/v1/events/{EVENTS[0]}/play",
        json={"device": "app", "sessionId": first["sessionId"]},
        headers=viewer(user, ip="198.51.100.31"),  # not the dedupe key of the first
    )
    assert renewed.status_code == 200, renewed.text
    assert renewed.json()["sessionId"] == first["sessionId"]
    assert link_calls(simulator, user) == 3  # a new link was minted for the renewal
    stranger = play(refusing[0], EVENTS[2], viewer(user))
    assert stranger.status_code == 409  # still two sessions: the renewal opened none


def test_another_events_or_a_made_up_session_id_opens_a_new_counted_session(
    refusing: list[str], simulator: SimulatorHandle
) -> None:
    """A session belongs to one user, event and stream: naming it (or an invented id)
    for another event is no renewal."""
    user = new_user()
    first = play(refusing[0], EVENTS[0], viewer(user)).json()
    second = play(refusing[1], EVENTS[1], viewer(user)).json()

    def keep_alive(*sessions: dict[str, object]) -> None:  # SESSION_TTL_S is 3 s
        for session in sessions:
            beat = httpx.post(
                f"{refusing[0]}/v1/sessions/{session['sessionId']}/heartbeat",
                headers=viewer(user),
            )
            assert beat.status_code == 200, beat.text

    for session_id in (first["sessionId"], "made-up-session-id", second["sessionId"]):
        keep_alive(first, second)
        borrowed = httpx.post(
            f"{refusing[0]}/v1/events/{EVENTS[2]}/play",
            json={"device": "app", "sessionId": session_id},
            headers=viewer(user),
        )
        assert borrowed.status_code == 409, borrowed.text
        assert borrowed.json()["code"] == "too_many_streams"
    assert link_calls(simulator, user) == 2
    # at the limit of two, one stream ended: the borrowed id gets a session of its own
    ended = httpx.delete(f"{refusing[1]}/v1/sessions/{second['sessionId']}", headers=viewer(user))
    assert ended.status_code == 204
    keep_alive(first)
    third = httpx.post(
        f"{refusing[0]}/v1/events/{EVENTS[2]}/play",
        json={"device": "app", "sessionId": first["sessionId"]},
        headers=viewer(user),
    )
    assert third.status_code == 200, third.text
    assert third.json()["sessionId"] != first["sessionId"]
    # the first session still plays its own event: renewing it there continues it
    keep_alive(first)
    renewed = httpx.post(
        f"{refusing[1]}/v1/events/{EVENTS[0]}/play",
        json={"device": "app", "sessionId": first["sessionId"]},
        headers=viewer(user, ip="198.51.100.31"),
    )
    assert renewed.status_code == 200, renewed.text
    assert renewed.json()["sessionId"] == first["sessionId"]


def test_heartbeats_keep_a_session_and_expiry_frees_it(refusing: list[str]) -> None:
    user = new_user()
    kept = play(refusing[0], EVENTS[0], viewer(user)).json()["sessionId"]
    lapsing = play(refusing[1], EVENTS[1], viewer(user)).json()["sessionId"]
    deadline = time.monotonic() + TTL_S + 1.5
    while time.monotonic() < deadline:  # heartbeat one of the two, on either replica
        for url in refusing:
            beat = httpx.post(f"{url}/v1/sessions/{kept}/heartbeat", headers=viewer(user))
            assert beat.status_code == 200, beat.text
            assert beat.json()["sessionId"] == kept
        time.sleep(TTL_S / 4)  # the stimulus: a player's heartbeat pace
    gone = httpx.post(f"{refusing[0]}/v1/sessions/{lapsing}/heartbeat", headers=viewer(user))
    assert gone.status_code == 404
    assert gone.json()["code"] == "session_not_found"
    assert play(refusing[1], EVENTS[2], viewer(user)).status_code == 200  # the slot is free
    assert play(refusing[0], EVENTS[3], viewer(user)).status_code == 409  # kept + new one


def test_concurrent_plays_cannot_race_past_the_limit(
    refusing: list[str], simulator: SimulatorHandle
) -> None:
    user = new_user()

    async def run() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=10) as http:
            return list(
                await asyncio.gather(
                    *(
                        http.post(
                            f"{refusing[n % 2]}/v1/events/{EVENTS[n % 4]}/play",
                            json={"device": "app"},
                            headers=viewer(user, ip=f"198.51.100.{100 + n}"),
                        )
                        for n in range(12)
                    )
                )
            )

    answers = asyncio.run(run())
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200] * 2 + [409] * 10, [a.text for a in answers]
    assert link_calls(simulator, user) == 2


class LiveReader:
    """A live stream (GET /v1/events/live) read line by line in a thread."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        self._url, self._headers = url, headers
        self._lines: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._ready = threading.Event()

    def _read(self) -> None:
        with (
            httpx.Client(timeout=httpx.Timeout(5.0, read=None)) as http,
            http.stream("GET", f"{self._url}/v1/events/live", headers=self._headers) as answer,
        ):
            assert answer.status_code == 200
            for line in answer.iter_lines():
                self._lines.append(line)
                if line.startswith("event: snapshot"):
                    self._ready.set()
                if self._stop.is_set():
                    return

    def __enter__(self) -> LiveReader:
        self._thread.start()
        assert self._ready.wait(15), "no snapshot on the live stream"
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()

    def events(self, kind: str) -> list[str]:
        """The data of every message of this kind so far."""
        found, lines = [], list(self._lines)
        for index, line in enumerate(lines):
            if line == f"event: {kind}":
                found += [x[6:] for x in lines[index:] if x.startswith("data: ")][:1]
        return found

    def wait_for_event(self, kind: str, timeout_s: float = 15.0) -> str:
        found = wait_until(lambda: self.events(kind), f"a {kind} message", timeout_s=timeout_s)
        return found[0]


def test_evict_oldest_ends_the_oldest_session_and_tells_its_player(
    simulator: SimulatorHandle, redis_server_url: str, tmp_path: Path
) -> None:
    redis_url = fresh_database(redis_server_url, 16)
    env = fleet_env(simulator, redis_url, "evict_oldest")
    user = new_user()
    with run_fleet(2, env, tmp_path) as fleet, redis.Redis.from_url(redis_url) as store:
        urls = [g.url for g in fleet]
        _wait_events(urls)
        notices = store.pubsub()
        notices.subscribe("igm:sessions")
        assert notices.get_message(timeout=2)["type"] == "subscribe"
        oldest = play(urls[0], EVENTS[0], viewer(user)).json()["sessionId"]
        newer = play(urls[1], EVENTS[1], viewer(user)).json()["sessionId"]
        with (
            LiveReader(urls[1], viewer(user)) as mine,
            LiveReader(urls[1], viewer("other")) as other,
        ):
            newest = play(urls[0], EVENTS[2], viewer(user))
            assert newest.status_code == 200, newest.text
            told = mine.wait_for_event("session")
            assert json.loads(told) == {"sessionIds": [oldest], "reason": "evicted"}
            time.sleep(0.5)  # a window in which the other viewer's stream must stay quiet
            assert other.events("session") == []  # only the evicted viewer's streams
        message = notices.get_message(timeout=5)
        while message is not None and message["type"] != "message":
            message = notices.get_message(timeout=5)
        assert message is not None, "no eviction notice"
        notice = json.loads(message["data"])
        assert notice["sessionIds"] == [oldest]
        assert notice["reason"] == "evicted"
        assert user not in message["data"].decode()  # the user is named by a digest
        beat = httpx.post(f"{urls[1]}/v1/sessions/{oldest}/heartbeat", headers=viewer(user))
        assert beat.status_code == 404
        listed = httpx.get(
            f"{urls[1]}/admin/users/{user}/sessions", headers={"X-Admin-Key": ADMIN_KEY}
        ).json()["sessions"]
        assert {s["sessionId"] for s in listed} == {newer, newest.json()["sessionId"]}
        assert {s["eventId"] for s in listed} == {EVENTS[1], EVENTS[2]}
        ended = httpx.delete(
            f"{urls[0]}/admin/users/{user}/sessions/{newer}", headers={"X-Admin-Key": ADMIN_KEY}
        )
        assert ended.status_code == 204
        beat = httpx.post(f"{urls[0]}/v1/sessions/{newer}/heartbeat", headers=viewer(user))
        assert beat.status_code == 404
        notices.close()
