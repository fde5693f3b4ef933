"""Wait for a condition with a generous deadline instead of sleeping a fixed time.

``eventually`` polls an async check from a test's event loop (``next_turn`` lets the
loop end its turn: one yield); ``wait_until`` polls a plain one from synchronous tests
that drive real processes. Both fail with ``what`` and the last value seen, so a
failure says what never happened, not only that time ran out. The deadlines sit far
above any wait a test expects: a loaded machine slows the test down but does not fail
it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

POLL_S = 0.01


async def eventually(
    check: Callable[[], Awaitable[bool]], what: str, timeout_s: float = 10.0
) -> None:
    """Poll ``check`` until it is true; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, f"{what}: not within {timeout_s} s"
        await asyncio.sleep(POLL_S)


async def next_turn() -> None:
    """Let the event loop finish its current turn, where the gateway does work it holds
    to a turn's end (the request log: metrics and access lines). One yield, not a wait
    for time: what was scheduled before it runs before the caller resumes."""
    await asyncio.sleep(0)


def wait_until(
    probe: Callable[[], T],
    what: str,
    *,
    until: Callable[[T], object] = bool,
    timeout_s: float = 10.0,
    every_s: float = 0.05,
    ignore: tuple[type[BaseException], ...] = (),
) -> T:
    """Call ``probe`` until ``until(value)`` is true and return that value; fail after
    ``timeout_s`` naming ``what`` and the last value (or exception) seen. Exceptions of
    the ``ignore`` types (a server still starting, say) count as "not yet"."""
    deadline = time.monotonic() + timeout_s
    last: object = None
    while True:
        try:
            value = probe()
        except ignore as exc:
            last = exc
        else:
            if until(value):
                return value
            last = value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not within {timeout_s} s (last seen: {last!r})")
        time.sleep(every_s)


def seconds_until(
    condition: Callable[[], object], what: str, *, timeout_s: float = 10.0, every_s: float = 0.05
) -> float:
    """``wait_until`` for ``condition``, returning how many seconds it took to hold (a
    figure to bound, say a hand-over against the lease time)."""
    started = time.monotonic()
    wait_until(condition, what, timeout_s=timeout_s, every_s=every_s)
    return time.monotonic() - started
