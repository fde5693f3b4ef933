"""Catalogues wired to an in-process simulator (real client code over ASGI) and a store
(fakeredis and a real redis-server, via the ``store`` fixture)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import redis.asyncio as redis_asyncio
from fastapi import FastAPI

from app.catalogue.service import Catalogue
from app.observability.metrics import Metrics
from app.services import build_catalogue
from app.settings import Settings
from app.simulator.app import create_simulator
from app.simulator.config import SimulatorConfig
from app.upstream.client import OnePlatformClient, build_http_client

INTERVAL_S = 0.3


@dataclass
class Sim:
    app: FastAPI
    control: httpx.AsyncClient

    async def stats(self) -> dict[str, Any]:
        data: dict[str, Any] = (await self.control.get("/_sim/stats")).json()
        return data

    async def calls(self, method: str) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = (
            await self.control.get("/_sim/calls", params={"method": method})
        ).json()
        return data

    async def post(self, path: str, body: object) -> None:
        response = await self.control.post(path, json=body)
        assert response.status_code == 200, response.text


@pytest.fixture
async def sim() -> AsyncIterator[Sim]:
    app = create_simulator(SimulatorConfig(events_min_interval_s=INTERVAL_S))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://sim"
    ) as control:
        yield Sim(app, control)


def catalogue_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "igm_mode": "simulator",
        "events_min_interval_s": INTERVAL_S,
        "events_gate_margin_s": 0.05,
        "lease_ttl_s": 1.0,
        "catalogue_cold_wait_s": 0.3,
        "catalogue_sync_interval_s": 0.05,
        "streams_ttl_s": 30.0,
    }
    values.update(overrides)
    return Settings(**values)


CatalogueFactory = Callable[..., Catalogue]


@pytest.fixture
async def make_catalogue(sim: Sim, store: redis_asyncio.Redis) -> AsyncIterator[CatalogueFactory]:
    """Build catalogues ("replicas") sharing the store and the simulator."""
    clients: list[httpx.AsyncClient] = []
    built: list[Catalogue] = []

    def factory(owner: str = "replica-a", **overrides: Any) -> Catalogue:
        settings = catalogue_settings(**overrides)
        http = build_http_client(
            connect_timeout_s=1,
            read_timeout_s=2,
            max_connections=10,
            transport=httpx.ASGITransport(app=sim.app),
        )
        clients.append(http)
        client = OnePlatformClient(
            http,
            api_url="http://sim/api",
            player_api_url="http://sim/api",
            customer_uid=settings.customer_uid,
            server_ip=settings.server_ip,
        )
        catalogue = build_catalogue(
            settings, client=client, redis=store, metrics=Metrics(), owner=owner
        )
        built.append(catalogue)
        return catalogue

    yield factory
    for catalogue in built:
        await catalogue.stop()
    for http in clients:
        await http.aclose()
