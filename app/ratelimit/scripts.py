"""The Lua scripts next to this module, registered once per client, run with
storage errors translated.

Every script reads time from Redis's own clock (``redis.call('TIME')`` or ``PX``
expiries), so replicas with skewed clocks still agree. Scripts need Redis >= 5
(effects replication, so writes may follow ``TIME``); fakeredis[lua] runs them
unchanged.

Errors::

    StoreUnavailable      (from app.store) any STORE_ERRORS raised by a command
"""

from __future__ import annotations

import functools
import math
from collections.abc import Awaitable, Sequence
from importlib import resources
from typing import TypeVar

from app.store import STORE_ERRORS, Store, StoreUnavailable

T = TypeVar("T")
ScriptArg = str | int | float


@functools.cache
def script_source(name: str) -> str:
    """The text of ``app/ratelimit/<name>``, read once per process."""
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


class StoreScript:
    """One ``.lua`` file registered on one client (EVALSHA, reloaded on NOSCRIPT)."""

    def __init__(self, redis: Store, name: str) -> None:
        self.name = name
        self._script = redis.register_script(script_source(name))

    async def __call__(self, keys: Sequence[str], args: Sequence[ScriptArg]) -> object:
        try:
            result: object = await self._script(keys=keys, args=args)
        except STORE_ERRORS as exc:
            raise StoreUnavailable(f"script {self.name} failed: {type(exc).__name__}") from exc
        return result


async def guarded(operation: str, awaitable: Awaitable[T]) -> T:
    """Await a plain store command, translating storage errors."""
    try:
        return await awaitable
    except STORE_ERRORS as exc:
        raise StoreUnavailable(f"{operation} failed: {type(exc).__name__}") from exc


def as_text(value: object) -> str:
    """A script or command reply (bytes, or str on ``decode_responses`` clients) as str."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return str(value)


def as_int(value: object) -> int:
    """An integer reply, whatever the client's decoding."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, bytes | str):
        return int(value)
    raise TypeError(f"expected an integer reply, got {type(value).__name__}")


def ms(seconds: float) -> int:
    """Whole milliseconds, rounded up, at least 1 (for ``PX`` and Lua arguments)."""
    return max(1, math.ceil(round(seconds * 1000, 6)))
