"""The shared store: Redis (standalone, Cluster or behind Sentinel), else an in-process one.

``build_store`` returns redis-py's own asyncio clients: ``Redis`` for a standalone node
(and for the embedded fakeredis store), ``RedisCluster`` for a cluster (``REDIS_URL``
names any seed node), or the ``Redis`` that ``Sentinel(...).master_for(...)`` hands out,
which asks the sentinels for the master on each new connection and so follows a
failover. Every caller (catalogue, rate limits, leases) runs the same commands and the
same Lua scripts over any of them; the keys of one script call or one transaction share
a hash tag, so they sit on one cluster slot. The embedded store serves one replica only.

Errors::

    StoreUnavailable      the store could not be reached or answered with an error
                          (a cluster that is down or resharding, a Sentinel with no
                          master, a failover in progress: all of ``STORE_ERRORS``)
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Literal, overload

import redis.asyncio as redis_asyncio
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import SSLConnection, parse_url
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import RedisClusterException, RedisError

Store = redis_asyncio.Redis | RedisCluster
StoreMode = Literal["standalone", "cluster", "sentinel"]


class StoreUnavailable(Exception):
    """The shared store could not complete a command."""


# RedisError covers ConnectionError, TimeoutError, ClusterDownError, TryAgainError,
# MovedError/AskError, ReadOnlyError and Sentinel's MasterNotFoundError;
# RedisClusterException covers a cluster client that found no node for a slot.
STORE_ERRORS: tuple[type[BaseException], ...] = (RedisError, RedisClusterException, OSError)

# One command never waits longer than this on a socket: a store that stops answering
# is an outage the callers' fallbacks handle, not a hung request.
SOCKET_TIMEOUT_S = 1.0


def failover_retry() -> Retry:
    """Cluster and Sentinel clients retry a failed command twice, quickly: enough to
    follow a slot that moved or a master the sentinels already replaced, short enough
    that a failover in progress becomes ``StoreUnavailable`` at once (redis-py's
    default, ten retries with backoff, holds a command for seconds)."""
    return Retry(ExponentialWithJitterBackoff(base=0.01, cap=0.1), retries=2)


@dataclass(frozen=True, slots=True)
class StoreConfig:
    """Where the shared store is: the slice of the settings ``build_store`` needs."""

    mode: StoreMode = "standalone"
    # the node; any seed node (cluster); credentials (sentinel). May hold a password:
    # left out of repr.
    url: str | None = field(default=None, repr=False)
    sentinels: tuple[tuple[str, int], ...] = ()
    sentinel_master: str | None = None

    @property
    def shared(self) -> bool:
        """A store other processes see (False: the embedded in-process one)."""
        return self.url is not None or self.mode == "sentinel"


@overload
def build_store(config: str | None) -> redis_asyncio.Redis: ...
@overload
def build_store(config: StoreConfig) -> Store: ...


def build_store(config: StoreConfig | str | None) -> Store:
    """A client for ``config`` (a bare URL means standalone); None: the embedded store."""
    if not isinstance(config, StoreConfig):
        config = StoreConfig(url=config)
    timeouts: dict[str, Any] = {
        "socket_connect_timeout": SOCKET_TIMEOUT_S,
        "socket_timeout": SOCKET_TIMEOUT_S,
    }
    if config.mode == "cluster":
        if config.url is None:
            raise ValueError("cluster mode needs a seed node URL")
        return RedisCluster.from_url(config.url, retry=failover_retry(), **timeouts)
    if config.mode == "sentinel":
        return _sentinel_master(config, timeouts)
    if config.url is None:
        import fakeredis  # the demo extra: checked at start-up (embedded_store_missing)

        client: redis_asyncio.Redis = fakeredis.FakeAsyncRedis()
        return client
    return redis_asyncio.Redis.from_url(config.url, health_check_interval=15, **timeouts)


def embedded_store_missing(config: StoreConfig) -> str | None:
    """Why the store this configuration asks for cannot be built here, or None: the
    embedded one (no ``REDIS_URL``) comes with the ``demo`` extra, not with the runtime
    dependencies a production image installs."""
    if config.shared:
        return None
    try:
        import fakeredis  # noqa: F401
    except ImportError:
        return (
            "REDIS_URL must be set: the embedded store (one process, for the demo) is not "
            "installed here (pip install 'oneplatform-gateway[demo]', as scripts/demo does)"
        )
    return None


def _sentinel_master(config: StoreConfig, timeouts: dict[str, Any]) -> redis_asyncio.Redis:
    """The master of ``config.sentinel_master``; credentials, db and TLS from the URL."""
    if not config.sentinels or not config.sentinel_master:
        raise ValueError("sentinel mode needs sentinels and a master name")
    master_kwargs: dict[str, Any] = {}
    if config.url is not None:
        parsed = dict(parse_url(config.url))
        parsed.pop("host", None)  # the sentinels say where the master is
        parsed.pop("port", None)
        if parsed.pop("connection_class", None) is SSLConnection:
            master_kwargs["ssl"] = True
        master_kwargs.update(parsed)
    sentinel = Sentinel(list(config.sentinels), sentinel_kwargs=dict(timeouts), **timeouts)
    master: redis_asyncio.Redis = sentinel.master_for(
        config.sentinel_master, health_check_interval=15, retry=failover_retry(), **master_kwargs
    )
    return master


async def close_store(store: Store) -> None:
    """Close the client, and for a Sentinel master the sentinel connections too."""
    pool = getattr(store, "connection_pool", None)
    await store.aclose()
    if isinstance(pool, SentinelConnectionPool):
        manager: Sentinel = pool.sentinel_manager
        for sentinel in manager.sentinels:
            await sentinel.aclose()


def honour_cancellation() -> None:
    """Re-raise a cancellation a store client swallowed.

    redis-py (8.1) and fakeredis (2.40) can absorb a task's ``CancelledError`` that
    arrives during a command and carry on; background loops call this after each
    round so that cancelling them (at shutdown) always ends them.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
