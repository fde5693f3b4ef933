"""The shared store: a real Redis when ``REDIS_URL`` is set, else an in-process one.

Both are ``redis.asyncio.Redis`` objects, so every caller (catalogue, rate limits,
leases) runs the same commands and the same Lua scripts over either. The embedded
store is fakeredis with Lua support: it serves one replica only.

Errors::

    StoreUnavailable      the store could not be reached or answered with an error
"""

from __future__ import annotations

import asyncio

import redis.asyncio as redis_asyncio
from redis.exceptions import RedisError


class StoreUnavailable(Exception):
    """The shared store could not complete a command."""


STORE_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError)


def build_store(redis_url: str | None) -> redis_asyncio.Redis:
    """A Redis client for ``redis_url``, or the embedded in-process store when None."""
    if redis_url is None:
        import fakeredis  # imported only for the embedded default

        client: redis_asyncio.Redis = fakeredis.FakeAsyncRedis()
        return client
    return redis_asyncio.Redis.from_url(
        redis_url,
        socket_connect_timeout=1.0,
        socket_timeout=1.0,
        health_check_interval=15,
    )


def honour_cancellation() -> None:
    """Re-raise a cancellation a store client swallowed.

    redis-py (8.1) and fakeredis (2.40) can absorb a task's ``CancelledError`` that
    arrives during a command and carry on; background loops call this after each
    round so that cancelling them (at shutdown) always ends them.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
