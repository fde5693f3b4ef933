"""Shared fixtures: a real redis-server per session (flushed per test), the embedded
fakeredis store, and (started only when a test asks) a real Redis Cluster and a real
Sentinel set-up, so store-facing tests can run over each; and a check that no test
leaves Python's garbage collector off (the live feed pauses it while it delivers)."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as redis_asyncio

from app.store import Store, StoreConfig, build_store, close_store
from tests.support.redis_cluster import RedisClusterProcesses, run_redis_cluster
from tests.support.redis_sentinel import RedisSentinelProcesses, run_redis_sentinel
from tests.support.redis_server import redis_server_binary, run_redis_server


@pytest.fixture(autouse=True)
def collector_left_on() -> Iterator[None]:
    """Fails a test after which the cyclic garbage collector is off (and turns it back
    on): a live delivery that never ended would have left it so."""
    assert gc.isenabled(), "the garbage collector was off before the test"
    yield
    if not gc.isenabled():
        gc.enable()
        pytest.fail("the garbage collector was left off")


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


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterProcesses]:
    """A real Redis Cluster (three masters, one replica each) for this test session.
    Tests that kill nodes start their own (``run_redis_cluster``)."""
    with run_redis_cluster(Path(tmp_path_factory.mktemp("redis-cluster"))) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def redis_sentinel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisSentinelProcesses]:
    """A real Sentinel set-up (master, replica, three sentinels) for this test session.
    Tests that kill nodes start their own (``run_redis_sentinel``)."""
    with run_redis_sentinel(Path(tmp_path_factory.mktemp("redis-sentinel"))) as setup:
        yield setup


def distributed_config(mode: str, request: pytest.FixtureRequest) -> StoreConfig:
    """The session's cluster or Sentinel set-up, emptied, as the gateway configures it."""
    if mode == "cluster":
        cluster: RedisClusterProcesses = request.getfixturevalue("redis_cluster")
        cluster.flush()
        return StoreConfig(mode="cluster", url=cluster.url)
    sentinel: RedisSentinelProcesses = request.getfixturevalue("redis_sentinel")
    sentinel.flush()
    return StoreConfig(
        mode="sentinel", sentinels=sentinel.addresses, sentinel_master=sentinel.master_name
    )


@pytest.fixture(
    params=[
        pytest.param("cluster", marks=pytest.mark.redis),
        pytest.param("sentinel", marks=pytest.mark.redis),
    ]
)
async def distributed_store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    """A Redis Cluster client, then a Sentinel master's client, emptied: modules that
    run the shared mechanisms' core tests over these override ``store`` with it."""
    client = build_store(distributed_config(request.param, request))
    yield client
    await close_store(client)
