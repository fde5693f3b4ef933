"""An in-process simulator with a fake clock and a client that calls it as a whitelisted
server; ``scenario`` loads the shared scenario first."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from app.simulator import SimulatorConfig, create_simulator
from tests.support.simulator import FakeClock
from tests.unit.simulator.data import (
    CUSTOMER,
    NOW,
    SCENARIO_EVENTS,
    SCENARIO_STREAMS,
    SEED,
    SERVER_IP,
)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def config() -> SimulatorConfig:
    return SimulatorConfig(
        customer_uid=CUSTOMER,
        server_ips=(SERVER_IP, "192.168.7.7"),
        events_min_interval_s=10.0,
        link_rate_per_s=5,
        seed=SEED,
    )


@pytest.fixture
def app(config: SimulatorConfig, clock: FakeClock) -> FastAPI:
    return create_simulator(config, clock.now, monotonic=clock.monotonic, sleep=clock.sleep)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app),
        base_url="http://simulator",
        headers={"X-Forwarded-For": SERVER_IP},
    ) as http:
        yield http


@pytest.fixture
async def scenario(client: httpx.AsyncClient) -> httpx.AsyncClient:
    """The client, with SCENARIO_EVENTS loaded in place of the generated schedule."""
    response = await client.post(
        "/_sim/scenario", json={"events": SCENARIO_EVENTS, "streams": SCENARIO_STREAMS}
    )
    assert response.json() == {"events": len(SCENARIO_EVENTS)}
    return client


@pytest.fixture
async def bare_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client that sends no ``X-Forwarded-For``."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app), base_url="http://simulator"
    ) as http:
        yield http
