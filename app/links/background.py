"""Store writes that need not hold up the viewer's answer (dedupe copies, session
ends, eviction notices): started on the running loop, awaited briefly at shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any


class BackgroundWrites:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self, timeout_s: float = 2.0) -> None:
        """Let the writes still under way finish (at shutdown)."""
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=timeout_s)

    def __len__(self) -> int:
        return len(self._tasks)
