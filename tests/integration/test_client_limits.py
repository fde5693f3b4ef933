"""Limits per client across a fleet: two gateway replicas as real uvicorn processes
sharing a real redis-server, the simulator as the upstream.

- live streams: at most ``SSE_MAX_PER_USER`` per user and ``SSE_MAX_PER_IP`` per viewer
  address, counted over both replicas; one more is 429 with ``Retry-After``, and a
  stream that ends gives its place back;
- the admin API: wrong ``X-Admin-Key`` values are counted per client over both
  replicas; past ``ADMIN_MAX_FAILURES`` the client is locked out (429, even with the
  right key) until the window ends; every admin request leaves an audit record.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.support.gateway import GatewayProcess, gateway_env, run_fleet
from tests.support.polling import wait_until
from tests.support.redis_server import fresh_database
from tests.support.simulator import HLS_STREAM, SimulatorHandle, run_simulator, scenario_event

pytestmark = [pytest.mark.redis, pytest.mark.slow]

API_KEY = "limits-api-key-0123456789abcdef0123456"
ADMIN_KEY = "limits-admin-key-0123456789abcdef"
EVENT = "LIMITS-OPEN"
PER_USER, PER_IP = 2, 3
MAX_FAILURES = 4
WINDOW_S = 8


@dataclass
class Fleet:
    replicas: list[GatewayProcess]

    @property
    def urls(self) -> list[str]:
        return [replica.url for replica in self.replicas]


@pytest.fixture(scope="module")
def simulator() -> Iterator[SimulatorHandle]:
    with run_simulator(env={"SIM_EVENTS_MIN_INTERVAL_S": "1"}) as sim:
        sim.load_scenario([scenario_event(EVENT, title="Limits v Guesses")], {EVENT: [HLS_STREAM]})
        yield sim


@pytest.fixture(scope="module")
def fleet(
    simulator: SimulatorHandle, redis_server_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Fleet]:
    env = gateway_env(
        simulator.api_url,
        fresh_database(redis_server_url, 12),
        API_KEYS=API_KEY,
        ADMIN_API_KEYS=ADMIN_KEY,
        ADMIN_MAX_FAILURES=str(MAX_FAILURES),
        ADMIN_FAILURE_WINDOW_S=str(WINDOW_S),
        SSE_MAX_PER_USER=str(PER_USER),
        SSE_MAX_PER_IP=str(PER_IP),
        SSE_HEARTBEAT_S="0.5",
        EVENTS_MIN_INTERVAL_S="1",
        REPLICA_COUNT="2",
    )
    with run_fleet(2, env, tmp_path_factory.mktemp("limits-logs")) as replicas:
        wait_until(
            lambda: all(httpx.get(f"{r.url}/v1/events/open").status_code == 200 for r in replicas),
            "the fleet fetched the open list",
            timeout_s=30,
        )
        yield Fleet(replicas)


def viewer(user: str) -> dict[str, str]:
    return {"X-API-Key": API_KEY, "X-User-Id": user}


def open_stream(stack: ExitStack, url: str, user: str) -> httpx.Response:
    client = stack.enter_context(httpx.Client(timeout=httpx.Timeout(10.0)))
    response = stack.enter_context(
        client.stream("GET", f"{url}/v1/events/live", headers=viewer(user))
    )
    if response.status_code == 200:
        chunks = response.iter_bytes()
        next(chunks)  # the snapshot: the stream is up
        # Held until the stack closes: a dropped iterator would close the connection.
        stack.callback(lambda: chunks)
    else:
        response.read()
    return response


def wait_for(check: Any, what: str, timeout_s: float = 15.0) -> None:
    wait_until(check, what, timeout_s=timeout_s)


def test_a_user_holds_at_most_its_streams_across_the_fleet(fleet: Fleet) -> None:
    first, second = fleet.urls
    with ExitStack() as held:
        assert open_stream(held, first, "capped-user").status_code == 200
        assert open_stream(held, second, "capped-user").status_code == 200
        with ExitStack() as extra:
            for url in (first, second):
                refused = open_stream(extra, url, "capped-user")
                assert refused.status_code == 429
                assert refused.headers["content-type"] == "application/problem+json"
                assert int(refused.headers["retry-after"]) > 0
                assert refused.json()["code"] == "user_live_limited"
        # Another user is not held back by this one.
        with ExitStack() as other:
            assert open_stream(other, first, "another-user").status_code == 200

    # The streams ended: their places come back (each replica notices at a heartbeat).
    def admitted() -> bool:
        with ExitStack() as again:
            return all(
                open_stream(again, url, "capped-user").status_code == 200 for url in fleet.urls
            )

    wait_for(admitted, "the ended streams' places")


def test_one_address_holds_at_most_its_streams_across_the_fleet(fleet: Fleet) -> None:
    first, second = fleet.urls
    with ExitStack() as held:
        # 3 users, one address (once the streams of the test before have been noticed
        # to have ended: a replica frees a place at its next heartbeat).
        def all_open() -> bool:
            attempt = ExitStack()
            pairs = enumerate((first, second, first))
            if all(
                open_stream(attempt, url, f"ip-user-{n}").status_code == 200 for n, url in pairs
            ):
                held.push(attempt.pop_all())
                return True
            attempt.close()
            return False

        wait_for(all_open, "three streams from one address")
        refused = open_stream(held, second, "ip-user-new")
        assert refused.status_code == 429
        assert refused.json()["code"] == "ip_live_limited"
        assert "retry-after" in refused.headers


def audit_lines(fleet: Fleet) -> list[dict[str, Any]]:
    lines = []
    for replica in fleet.replicas:
        for line in replica.log_text().splitlines():
            if line.startswith("{"):
                record = json.loads(line)
                if record.get("event") == "audit" and record.get("kind") == "admin":
                    lines.append(record)
    return lines


def test_wrong_admin_keys_lock_the_client_out_across_the_fleet(fleet: Fleet) -> None:
    first, second = fleet.urls
    answers = []
    for attempt in range(MAX_FAILURES + 3):  # alternating replicas: one count
        url = (first, second)[attempt % 2]
        answers.append(httpx.get(f"{url}/admin/state", headers={"X-Admin-Key": f"guess-{attempt}"}))
    statuses = [answer.status_code for answer in answers]
    assert statuses == [401] * (MAX_FAILURES - 1) + [429] * 4, statuses
    locked = answers[-1]
    assert locked.json()["code"] == "admin_locked_out"
    assert 0 < int(locked.headers["retry-after"]) <= WINDOW_S
    # Locked out means locked out: the right key is refused too, on either replica,
    # before it is compared.
    for url in fleet.urls:
        assert (
            httpx.get(f"{url}/admin/state", headers={"X-Admin-Key": ADMIN_KEY}).status_code == 429
        )
    # The window ends: the right key works again.
    wait_for(
        lambda: (
            httpx.get(f"{first}/admin/state", headers={"X-Admin-Key": ADMIN_KEY}).status_code == 200
        ),
        "the end of the lockout",
        timeout_s=WINDOW_S + 10,
    )
    outcomes = [line["outcome"] for line in audit_lines(fleet)]
    assert outcomes.count("refused") >= MAX_FAILURES - 1
    assert outcomes.count("locked_out") >= 4 + 2
    assert "guess-" not in "".join(replica.log_text() for replica in fleet.replicas)


def test_every_admin_action_is_audited(fleet: Fleet) -> None:
    first, _ = fleet.urls
    admin = {"X-Admin-Key": ADMIN_KEY}
    before = {line["request_id"] for line in audit_lines(fleet)}
    wait_for(
        lambda: httpx.get(f"{first}/admin/state", headers=admin).status_code == 200,
        "no lockout left by another test",
        timeout_s=WINDOW_S + 10,
    )
    assert httpx.delete(f"{first}/admin/events/{EVENT}/streams", headers=admin).status_code == 204
    ended = httpx.delete(f"{first}/admin/users/someone/sessions/nope", headers=admin)
    assert ended.status_code == 404

    def recorded() -> bool:
        return len(audit_lines(fleet)) >= len(before) + 3

    wait_for(recorded, "the admin audit records")
    records = [line for line in audit_lines(fleet) if line["request_id"] not in before]
    by_action = {record["action"]: record for record in records}
    purge = by_action["DELETE /admin/events/{eventId}/streams"]
    assert purge["outcome"] == "done"
    assert purge["target"] == f"eventId={EVENT}"
    assert purge["key"] == "key-1"
    assert purge["client"] == "127.0.0.1"
    end = by_action["DELETE /admin/users/{userId}/sessions/{sessionId}"]
    assert (end["outcome"], end["status"], end["code"]) == ("failed", "404", "session_not_found")
    assert "someone" not in json.dumps(end)  # the user id is hashed
    assert by_action["GET /admin/state"]["outcome"] == "done"
    assert ADMIN_KEY not in "".join(replica.log_text() for replica in fleet.replicas)
