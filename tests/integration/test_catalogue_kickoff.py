"""Kick-off on real processes: an event is never "not found" while the upstream lists it.

Two gateway replicas on a real Redis and the simulator enforcing the event interval.
A client asks for an event every 200 ms on every replica, through every door that
names one (``GET /v1/events/{id}``, ``/streams``, ``POST /links``, ``/play``):

- on a cold fleet, from the moment each replica's ``/healthz`` answers (the second
  starts while the first already leads: it is the follower, whose own open-list try
  the fleet gate refuses);
- for an event added upstream as open while the fleet runs.

Until the event is served, the only other answer is 503 ``catalogue_warming`` with a
Retry-After (and, for links, the link budget's 429 when the requests held for the list
go on together); it is served within one event interval plus a few seconds. An id that no
list holds is answered 404, once a list fetched after the question lacks it (503 with
Retry-After before that), and at once from then on. The event budget holds throughout.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.support.gateway import GatewayProcess, gateway_env, run_gateway
from tests.support.redis_server import fresh_database
from tests.support.simulator import HLS_STREAM, SimulatorHandle, run_simulator, scenario_event

pytestmark = [pytest.mark.slow, pytest.mark.redis]

INTERVAL_S = 5.0
GATE_INTERVAL_S = INTERVAL_S + 0.5  # EVENTS_GATE_MARGIN_S's default
SETTLE_S = 4.0  # a sync round, a refresher tick, a busy machine
ASK_EVERY_S = 0.2
API_KEY = f"key-kickoff-{uuid.uuid4().hex}"  # production keys: 32 characters or more
FIRST = "KO-FIRST-1"
KINDS = ("event", "streams", "links", "play")


@dataclass(frozen=True)
class Answer:
    replica: str
    kind: str
    status: int
    code: str | None
    retry_after: str | None
    at: float  # monotonic, when the answer came


@dataclass
class Kickoff:
    simulator: SimulatorHandle
    env: dict[str, str]
    logs: Path
    stack: ExitStack
    replicas: list[GatewayProcess] = field(default_factory=list)
    events: list[dict[str, object]] = field(default_factory=list)

    def add_open_event(self, event_id: str) -> None:
        self.events.append(scenario_event(event_id, started_minutes_ago=1))
        self.simulator.load_scenario(self.events, {e: [HLS_STREAM] for e in self.ids()})

    def ids(self) -> list[str]:
        return [str(event["eventId"]) for event in self.events]

    def start(self, name: str) -> GatewayProcess:
        """A replica, returned the moment its ``/healthz`` answers."""
        replica = self.stack.enter_context(run_gateway(self.env, self.logs, name=name))
        self.replicas.append(replica)
        return replica


@pytest.fixture
def kickoff(redis_server_url: str, tmp_path: Path) -> Iterator[Kickoff]:
    env_sim = {"SIM_EVENTS_MIN_INTERVAL_S": str(INTERVAL_S)}
    with run_simulator(env=env_sim) as simulator, ExitStack() as stack:
        env = gateway_env(
            simulator.api_url,
            fresh_database(redis_server_url, 40),
            API_KEYS=API_KEY,
            EVENTS_MIN_INTERVAL_S=str(INTERVAL_S),
            LEASE_TTL_S="4",
            REPLICA_COUNT="2",
            DEFAULT_REDIRECT_URL="https://operator.example/after",
        )
        rig = Kickoff(simulator, env, tmp_path / "logs", stack)
        rig.add_open_event(FIRST)
        yield rig
        stats = simulator.stats()
        assert sum(stats["violations"].values()) == 0, stats
        for method in ("event_open", "event_all"):
            spacing = stats["minSpacingS"][method]
            assert spacing is None or spacing >= INTERVAL_S, (method, spacing)


async def ask(http: httpx.AsyncClient, replica: GatewayProcess, event_id: str, kind: str) -> Answer:
    base = f"{replica.url}/v1/events/{event_id}"
    headers = {"X-API-Key": API_KEY, "X-User-Id": f"viewer-{uuid.uuid4().hex[:12]}"}
    if kind == "event":
        response = await http.get(base)
    elif kind == "streams":
        response = await http.get(f"{base}/streams")
    elif kind == "links":
        response = await http.post(f"{base}/links", json={"streamName": "HLS"}, headers=headers)
    else:
        response = await http.post(f"{base}/play", json={"device": "web"}, headers=headers)
    code = None
    if response.headers.get("content-type") == "application/problem+json":
        code = response.json().get("code")
    return Answer(
        replica.name,
        kind,
        response.status_code,
        code,
        response.headers.get("retry-after"),
        time.monotonic(),
    )


async def ask_until(
    http: httpx.AsyncClient,
    replicas: list[GatewayProcess],
    event_id: str,
    kinds: tuple[str, ...],
    final_status: int,
    timeout_s: float,
) -> list[Answer]:
    """Ask every ``ASK_EVERY_S`` on each replica, through each kind, until each pair has
    answered ``final_status`` (or ``timeout_s`` passes); every answer, in order."""
    answers: list[Answer] = []
    waiting = {(replica.name, kind) for replica in replicas for kind in kinds}
    asking: set[asyncio.Task[None]] = set()

    async def one(replica: GatewayProcess, kind: str) -> None:
        answer = await ask(http, replica, event_id, kind)
        answers.append(answer)
        if answer.status == final_status:
            waiting.discard((replica.name, kind))

    deadline = time.monotonic() + timeout_s
    while waiting and time.monotonic() < deadline:
        for replica in replicas:
            for kind in kinds:
                if (replica.name, kind) in waiting:
                    task = asyncio.create_task(one(replica, kind))
                    asking.add(task)
                    task.add_done_callback(asking.discard)
        await asyncio.sleep(ASK_EVERY_S)  # the client's pace, not a wait for a condition
    await asyncio.gather(*asking)
    assert not waiting, f"never {final_status}: {sorted(waiting)}; last: {answers[-8:]}"
    return sorted(answers, key=lambda answer: answer.at)


def assert_only_served_or_warming(answers: list[Answer], served: int = 200) -> None:
    for answer in answers:
        if answer.status == served:
            continue
        if answer.kind in ("links", "play") and answer.status == 429:
            # the requests held while the list came go on together: the link budget's
            # answer to a herd, not the catalogue's
            assert answer.code == "rate_limited", answer
            assert answer.retry_after is not None, answer
            continue
        assert (answer.status, answer.code) == (503, "catalogue_warming"), answer
        assert answer.retry_after is not None, answer
        assert 1 <= int(answer.retry_after) <= GATE_INTERVAL_S + 2, answer


def first_at(answers: list[Answer], status: int) -> dict[tuple[str, str], float]:
    firsts: dict[tuple[str, str], float] = {}
    for answer in answers:
        if answer.status == status:
            firsts.setdefault((answer.replica, answer.kind), answer.at)
    return firsts


def test_a_cold_fleet_and_a_just_opened_event_are_never_not_found(kickoff: Kickoff) -> None:
    bound_s = INTERVAL_S + SETTLE_S

    async def cold_fleet() -> list[Answer]:
        async with httpx.AsyncClient(timeout=10) as http:
            first = kickoff.start("replica-1")
            first_up = time.monotonic()
            asking_first = asyncio.create_task(
                ask_until(http, [first], FIRST, KINDS, 200, bound_s + 2)
            )
            second = await asyncio.to_thread(kickoff.start, "replica-2")
            second_up = time.monotonic()
            answers = await ask_until(http, [second], FIRST, KINDS, 200, bound_s + 2)
            answers += await asking_first
            for (replica, kind), at in first_at(answers, 200).items():
                up = first_up if replica == first.name else second_up
                assert at - up <= bound_s, (replica, kind, at - up)
            return answers

    cold = asyncio.run(cold_fleet())
    assert_only_served_or_warming(cold)

    async def just_opened(event_id: str) -> list[Answer]:
        async with httpx.AsyncClient(timeout=10) as http:
            kickoff.add_open_event(event_id)
            added = time.monotonic()
            answers = await ask_until(
                http, kickoff.replicas, event_id, KINDS, 200, GATE_INTERVAL_S + SETTLE_S + 2
            )
            for key, at in first_at(answers, 200).items():
                assert at - added <= GATE_INTERVAL_S + SETTLE_S, (key, at - added)
            return answers

    opened = asyncio.run(just_opened("KO-NEW-1"))
    assert_only_served_or_warming(opened)

    async def never_listed(event_id: str) -> list[Answer]:
        async with httpx.AsyncClient(timeout=10) as http:
            asked = time.monotonic()
            answers = await ask_until(
                http, kickoff.replicas, event_id, ("event", "links"), 404, bound_s + 2
            )
            for key, at in first_at(answers, 404).items():
                assert at - asked <= GATE_INTERVAL_S + SETTLE_S, (key, at - asked)
            # remembered: the next question is answered at once
            for replica in kickoff.replicas:
                started = time.monotonic()
                again = await ask(http, replica, event_id, "event")
                assert (again.status, again.code) == (404, "event_not_found"), again
                assert again.at - started < 1.0
            return answers

    unknown = asyncio.run(never_listed(f"KO-NEVER-{uuid.uuid4().hex[:8]}"))
    assert_only_served_or_warming(unknown, served=404)
    assert {a.code for a in unknown if a.status == 404} == {"event_not_found"}
