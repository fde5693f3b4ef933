"""Wait for a condition with a generous deadline instead of sleeping a fixed time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


async def eventually(
    check: Callable[[], Awaitable[bool]], what: str, timeout_s: float = 10.0
) -> None:
    """Poll ``check`` until it is true; fail after ``timeout_s`` (far above any wait the
    test expects, so a loaded machine slows the test down but does not fail it)."""
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, f"{what}: not within {timeout_s} s"
        await asyncio.sleep(0.01)
