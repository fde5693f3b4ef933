"""Long-lived background work, run under one supervisor that the lifespan builds.

The catalogue's refresher and sync loop, the live feed's heartbeats and
the session notices are coroutine functions that loop until cancelled. The supervisor
runs each in a task of its own and reads every way it can end:

- it raises: the crash is logged once, with its traceback (``background_task_crashed``,
  ``exc_info``), counted in ``gateway_task_restarts_total{task}``, and the work starts
  again after a backoff that doubles from ``Backoff.first_s`` up to ``Backoff.max_s``
  (back to the first once a run has lasted ``settle_s``);
- it returns: not restarted (and logged, ``background_task_ended``, if it was needed:
  a loop that should run until cancelled has stopped);
- it is cancelled: by ``stop`` only.

A task the replica needs (``needed``) counts as down from a crash until it has run
``settle_s`` again without one, and while it has ended: ``/readyz`` answers 503 while
any is down (``down``), so the load balancer stops sending traffic to a replica whose
refresher keeps crashing instead of serving an ageing catalogue for ever.

``stop`` cancels the tasks one at a time, the last started first, each awaited before
the next: what was started on top of something stops before it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from app.observability.metrics import Metrics

log = structlog.get_logger(__name__)

Work = Callable[[], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Backoff:
    first_s: float = 0.5
    max_s: float = 30.0
    factor: float = 2.0

    def delay(self, crashes: int) -> float:
        """The pause before the restart that follows the ``crashes``-th crash in a row."""
        return min(self.max_s, self.first_s * self.factor ** max(0, crashes - 1))


class Supervised:
    """One supervised piece of work and what the supervisor knows of it."""

    def __init__(self, name: str, work: Work, *, needed: bool) -> None:
        self.name = name
        self.needed = needed
        self._work = work
        self.task: asyncio.Task[None] | None = None
        self.crashes = 0  # in a row: reset once a run lasts settle_s
        self.restarts = 0
        self.running_since: float | None = None  # None: not running (backoff, ended)
        self.ended = False

    def down(self, now: float, settle_s: float) -> bool:
        if self.ended:
            return True
        if self.crashes == 0:
            return False
        return self.running_since is None or now - self.running_since < settle_s


class Supervisor:
    def __init__(
        self,
        metrics: Metrics | None = None,
        *,
        backoff: Backoff | None = None,
        settle_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._metrics = metrics
        self._backoff = backoff or Backoff()
        self._settle_s = settle_s
        self._clock = clock
        self._sleep = sleep
        self._started: list[Supervised] = []

    def start(self, name: str, work: Work, *, needed: bool = True) -> Supervised:
        """Run ``work`` under supervision, in a task named ``name``."""
        if any(item.name == name for item in self._started):
            raise ValueError(f"a task named {name} is already supervised")
        item = Supervised(name, work, needed=needed)
        item.task = asyncio.get_running_loop().create_task(self._run(item), name=name)
        self._started.append(item)
        return item

    def down(self) -> list[str]:
        """The names of the needed tasks that are down now (crashed and not settled
        since, or ended)."""
        now = self._clock()
        return [
            item.name
            for item in self._started
            if item.needed and item.task is not None and item.down(now, self._settle_s)
        ]

    @property
    def tasks(self) -> list[Supervised]:
        return list(self._started)

    async def stop(self, only: list[Supervised] | None = None) -> None:
        """Cancel the tasks (``only`` these, if given), the last started first, each
        awaited before the next."""
        chosen = self._started if only is None else [i for i in self._started if i in only]
        for item in reversed(chosen):
            task, item.task = item.task, None
            if task is None:
                continue
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            log.debug("background_task_stopped", task=item.name)
        self._started = [item for item in self._started if item.task is not None]

    async def _run(self, item: Supervised) -> None:
        while True:
            started = self._clock()
            item.running_since = started
            try:
                await item._work()
            except asyncio.CancelledError:
                item.running_since = None
                raise
            except Exception as exc:
                item.running_since = None
                if self._clock() - started >= self._settle_s:
                    item.crashes = 0  # a long clean run: the backoff starts over
                item.crashes += 1
                item.restarts += 1
                delay = self._backoff.delay(item.crashes)
                log.error(
                    "background_task_crashed",
                    task=item.name,
                    restart_in_s=delay,
                    crashes_in_a_row=item.crashes,
                    exc_info=exc,
                )
                if self._metrics is not None:
                    self._metrics.task_restarts.labels(item.name).inc()
                await self._sleep(delay)
                continue
            item.running_since = None
            item.ended = True
            if item.needed:  # a loop that should run until cancelled has stopped
                log.warning("background_task_ended", task=item.name)
            return
