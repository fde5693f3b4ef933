"""``build_store`` per mode (redis-py's own clients, credentials and TLS from the URL)
and ``STORE_ERRORS``: every error a cluster or a Sentinel can raise becomes
``StoreUnavailable`` through the one translation the store callers use."""

from __future__ import annotations

import fakeredis
import pytest
import redis.asyncio as redis_asyncio
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import SSLConnection
from redis.asyncio.sentinel import (
    MasterNotFoundError,
    SentinelConnectionPool,
    SentinelManagedConnection,
    SentinelManagedSSLConnection,
    SlaveNotFoundError,
)
from redis.exceptions import (
    AskError,
    ClusterDownError,
    ConnectionError,
    CrossSlotTransactionError,
    MasterDownError,
    MovedError,
    ReadOnlyError,
    SlotNotCoveredError,
    TimeoutError,
    TryAgainError,
)

from app.ratelimit.scripts import guarded
from app.store import STORE_ERRORS, StoreConfig, StoreUnavailable, build_store, close_store

SENTINELS = (("127.0.0.1", 26379), ("127.0.0.1", 26380))


def test_the_url_stays_out_of_the_config_repr() -> None:
    config = StoreConfig(mode="cluster", url="rediss://:hunter2@10.0.0.5:7000")
    assert "hunter2" not in repr(config)


async def test_no_url_is_the_embedded_store() -> None:
    store = build_store(StoreConfig())
    assert isinstance(store, fakeredis.FakeAsyncRedis)
    await close_store(store)


async def test_standalone_is_a_plain_client() -> None:
    store = build_store(StoreConfig(url="rediss://:pw@127.0.0.1:6380/3"))
    assert type(store) is redis_asyncio.Redis
    kwargs = store.connection_pool.connection_kwargs
    assert (kwargs["password"], kwargs["db"]) == ("pw", 3)
    assert store.connection_pool.connection_class is SSLConnection
    await close_store(store)


async def test_cluster_is_redis_cluster_with_tls_and_auth_from_the_seed_url() -> None:
    store = build_store(StoreConfig(mode="cluster", url="rediss://user:pw@127.0.0.1:7000"))
    assert isinstance(store, RedisCluster)
    [seed] = store.nodes_manager.startup_nodes.values()
    assert (seed.host, seed.port) == ("127.0.0.1", 7000)
    kwargs = seed.connection_kwargs
    assert (kwargs["username"], kwargs["password"]) == ("user", "pw")
    assert seed.connection_class is SSLConnection
    assert store.retry.get_retries() == 2
    await close_store(store)


@pytest.mark.parametrize(
    ("url", "connection_class", "password", "db"),
    [
        (None, SentinelManagedConnection, None, 0),
        ("redis://:pw@ignored:1/2", SentinelManagedConnection, "pw", 2),
        ("rediss://:pw@ignored/4", SentinelManagedSSLConnection, "pw", 4),
    ],
    ids=["plain", "credentials", "tls"],
)
async def test_sentinel_is_the_masters_client(
    url: str | None, connection_class: type, password: str | None, db: int
) -> None:
    config = StoreConfig(mode="sentinel", url=url, sentinels=SENTINELS, sentinel_master="gw")
    store = build_store(config)
    assert isinstance(store, redis_asyncio.Redis)
    pool = store.connection_pool
    assert isinstance(pool, SentinelConnectionPool)
    assert pool.service_name == "gw"
    assert pool.is_master
    assert pool.connection_class is connection_class
    assert pool.connection_kwargs.get("password") == password
    assert pool.connection_kwargs.get("db", 0) == db
    assert "host" not in pool.connection_kwargs  # the sentinels say where the master is
    sentinels = pool.sentinel_manager.sentinels
    assert [(s.connection_pool.connection_kwargs["port"]) for s in sentinels] == [26379, 26380]
    await close_store(store)


@pytest.mark.parametrize(
    "error",
    [
        ClusterDownError("CLUSTERDOWN The cluster is down"),
        MasterDownError("MASTERDOWN Link with MASTER is down"),
        TryAgainError("TRYAGAIN"),
        MovedError("3999 127.0.0.1:7001"),
        AskError("3999 127.0.0.1:7001"),
        SlotNotCoveredError("slot 3999 is not covered"),
        CrossSlotTransactionError("keys in more than one slot"),
        MasterNotFoundError("No master found for 'gw'"),
        SlaveNotFoundError("No slave found for 'gw'"),
        ReadOnlyError("READONLY You can't write against a read only replica."),
        ConnectionError("Connection refused"),
        TimeoutError("Timeout reading from socket"),
        OSError("Network is unreachable"),
    ],
    ids=lambda error: type(error).__name__,
)
async def test_cluster_and_sentinel_errors_become_store_unavailable(error: Exception) -> None:
    assert isinstance(error, STORE_ERRORS)

    async def failing() -> None:
        raise error

    with pytest.raises(StoreUnavailable) as caught:
        await guarded("lease get", failing())
    assert caught.value.__cause__ is error
    assert str(caught.value) == f"lease get failed: {type(error).__name__}"
