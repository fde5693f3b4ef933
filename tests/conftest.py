"""Shared fixtures: a real redis-server per session (flushed per test) and the
embedded fakeredis store, so store-facing tests can run over both."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as redis_asyncio

from app.store import build_store
from tests.support.redis_server import redis_server_binary, run_redis_server


@pytest.fixture(scope="session")
def redis_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a real redis-server started for this test session."""
    if redis_server_binary() is None:
        pytest.fail("redis-server is required: apt-get install -y redis-server")
    with run_redis_server(Path(tmp_path_factory.mktemp("redis"))) as url:
        yield url


@pytest.fixture
async def real_redis(redis_server_url: str) -> AsyncIterator[redis_asyncio.Redis]:
    """A client of the real redis-server, flushed before each test."""
    client = build_store(redis_server_url)
    await client.flushdb()
    yield client
    await client.aclose()


@pytest.fixture
async def fake_redis() -> AsyncIterator[redis_asyncio.Redis]:
    client = build_store(None)
    yield client
    await client.aclose()


@pytest.fixture(params=["fake", "real"])
async def store(
    request: pytest.FixtureRequest, redis_server_url: str
) -> AsyncIterator[redis_asyncio.Redis]:
    """The same test over the embedded store and a real redis-server."""
    client = build_store(None if request.param == "fake" else redis_server_url)
    await client.flushdb()
    yield client
    await client.aclose()
