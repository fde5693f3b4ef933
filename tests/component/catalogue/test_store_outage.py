"""Without the store, replicas cannot coordinate the fleet's 10 s spacing: they stop
calling the event methods and serve what they have, unless configured to be alone."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
import redis.asyncio as redis_asyncio

from app.catalogue.service import Catalogue
from app.observability.metrics import Metrics
from app.services import build_catalogue
from app.settings import Settings
from app.store import build_store
from app.upstream.client import OnePlatformClient, build_http_client
from tests.component.catalogue.conftest import INTERVAL_S, Sim, catalogue_settings
from tests.support.polling import eventually
from tests.support.redis_server import free_port


@pytest.fixture
async def dead_store() -> AsyncIterator[redis_asyncio.Redis]:
    client = build_store(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    yield client
    await client.aclose()


@asynccontextmanager
async def replica(
    sim: Sim, store: redis_asyncio.Redis, settings: Settings, metrics: Metrics
) -> AsyncIterator[Catalogue]:
    async with build_http_client(
        connect_timeout_s=1,
        read_timeout_s=2,
        max_connections=4,
        transport=httpx.ASGITransport(app=sim.app),
    ) as http:
        client = OnePlatformClient(
            http,
            api_url="http://sim/api",
            player_api_url="http://sim/api",
            customer_uid=settings.customer_uid,
            server_ip=settings.server_ip,
        )
        catalogue = build_catalogue(
            settings, client=client, redis=store, metrics=metrics, owner="r1"
        )
        await catalogue.start()
        try:
            yield catalogue
        finally:
            await catalogue.stop()


@pytest.mark.parametrize(
    ("replica_count", "calls_expected"), [(None, False), (3, False), (1, True)]
)
async def test_event_calls_stop_unless_alone(
    sim: Sim, dead_store: redis_asyncio.Redis, replica_count: int | None, calls_expected: bool
) -> None:
    settings = catalogue_settings(redis_url="redis://unused", replica_count=replica_count)
    metrics = Metrics()

    def store_errors(operation: str) -> float:
        value = metrics.registry.get_sample_value(
            "gateway_redis_errors_total", {"operation": operation}
        )
        return value or 0.0

    async with replica(sim, dead_store, settings, metrics) as catalogue:

        async def ticked() -> bool:
            if not catalogue.degraded:
                return False
            if calls_expected:  # alone: two spaced calls made without the store
                return int((await sim.stats())["calls"].get("event_open", 0)) >= 2
            # three refresher rounds met the dead store: any call would have gone out
            return store_errors("refresh") >= 3

        await eventually(ticked, "the refresher's rounds without the store", timeout_s=20)
        calls = (await sim.stats())["calls"]
        assert bool(calls.get("event_open")) is calls_expected
        assert catalogue.degraded
        if calls_expected:
            assert (await sim.stats())["minSpacingS"]["event_open"] >= INTERVAL_S
            assert sum((await sim.stats())["violations"].values()) == 0
            assert catalogue.warmed
        else:
            assert calls.get("event_all", 0) == 0
