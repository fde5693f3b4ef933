"""The circuit breaker against the real simulator: a failing method stops being
called, is probed again after the cool-down, and recovers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from app.errors import problem_from_upstream
from app.upstream.breaker import CircuitBreaker
from app.upstream.client import OnePlatformClient, UpstreamCall, build_http_client
from app.upstream.errors import UpstreamCircuitOpen, UpstreamServerError
from tests.support.simulator import SimulatorHandle, run_simulator


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorHandle]:
    with run_simulator() as handle:
        yield handle


async def test_open_circuit_spares_the_upstream_then_probes(sim: SimulatorHandle) -> None:
    sim.reset()
    clock = Clock()
    calls: list[UpstreamCall] = []
    breaker = CircuitBreaker(threshold=3, cooldown_s=5.0, monotonic=clock)
    async with build_http_client(
        connect_timeout_s=2.0, read_timeout_s=5.0, max_connections=4
    ) as http:
        client = OnePlatformClient(
            http,
            api_url=sim.api_url,
            player_api_url=sim.api_url,
            customer_uid=SecretStr(sim.customer_uid),
            server_ip=sim.server_ip,
            observer=calls.append,
            breaker=breaker,
        )
        sim.inject_fault("sports", "status", status=503)
        for _ in range(3):
            with pytest.raises(UpstreamServerError):
                await client.sports()
        for _ in range(5):
            with pytest.raises(UpstreamCircuitOpen) as spared:
                await client.sports()
        assert spared.value.retry_after_s == pytest.approx(5.0)
        assert sim.stats()["calls"]["sports"] == 3  # the open circuit made no call
        assert [c.outcome for c in calls].count("circuit_open") == 5
        problem = problem_from_upstream(spared.value)
        assert (problem.status, problem.code) == (503, "upstream_unavailable")
        assert problem.retry_after_s == pytest.approx(5.0)
        # Other methods are unaffected: event/open is called, and answers.
        await client.open_events()
        assert sim.stats()["calls"]["event_open"] == 1
        assert (calls[-1].method, calls[-1].outcome) == ("event_open", "ok")
        assert breaker.state("event_open") == "closed"
        assert breaker.state("sports") == "open"

        sim.clear_faults()
        clock.now += 5.0
        assert (await client.sports()).items  # the probe goes through and closes it
        assert breaker.state("sports") == "closed"
        assert sim.stats()["calls"]["sports"] == 4
