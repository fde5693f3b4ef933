"""The supervisor of background work: a crash is logged once with its traceback,
counted, and restarted after a backoff; a needed task is down until it has run clean
again; shutdown stops the tasks in order. Time passes by an injected clock and sleep."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, MutableMapping
from typing import Any

import pytest
import structlog

from app.observability.metrics import Metrics
from app.supervisor import Backoff, Supervisor
from tests.support.logs import all_logs


class Clock:
    """A clock that moves only when a supervised pause (``sleep``) says so; each pause
    is recorded and held until the test lets it go (``release``)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.pauses: list[float] = []
        self._gates: asyncio.Queue[None] = asyncio.Queue()

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        await self._gates.get()
        self.now += seconds

    def release(self) -> None:
        self._gates.put_nowait(None)


async def settle() -> None:
    """Let every ready task run until it waits again."""
    for _ in range(20):
        await asyncio.sleep(0)


def restarts(metrics: Metrics, task: str) -> float:
    value = metrics.registry.get_sample_value("gateway_task_restarts_total", {"task": task})
    return value or 0.0


def crash_lines(logs: list[MutableMapping[str, Any]]) -> list[MutableMapping[str, Any]]:
    return [line for line in logs if line["event"] == "background_task_crashed"]


def failing(times: int, calls: list[int]) -> Callable[[], Any]:
    """Work that raises on its first ``times`` runs, then waits for ever."""

    async def work() -> None:
        calls.append(len(calls))
        if len(calls) <= times:
            raise ValueError(f"refresh tick {len(calls)} went wrong")
        await asyncio.Event().wait()

    return work


async def test_a_crash_is_logged_once_with_its_traceback_counted_and_restarted() -> None:
    clock, metrics = Clock(), Metrics()
    calls: list[int] = []
    supervisor = Supervisor(metrics, clock=clock, sleep=clock.sleep)
    with all_logs() as logs:
        supervisor.start("catalogue-refresher", failing(1, calls))
        await settle()
        assert calls == [0]
        lines = crash_lines(logs)
        assert len(lines) == 1
        line = lines[0]
        assert line["task"] == "catalogue-refresher"
        assert line["log_level"] == "error"
        exc = line["exc_info"]
        assert isinstance(exc, ValueError)
        assert exc.__traceback__ is not None
        rendered = structlog.processors.format_exc_info(None, "error", dict(line))
        assert "Traceback" in rendered["exception"]
        assert "refresh tick 1 went wrong" in rendered["exception"]
        assert restarts(metrics, "catalogue-refresher") == 1
        assert clock.pauses == [0.5]
        clock.release()
        await settle()
    assert calls == [0, 1]  # restarted, and running now
    assert len(crash_lines(logs)) == 1
    await supervisor.stop()


async def test_the_backoff_doubles_up_to_its_cap_and_starts_over_after_a_clean_run() -> None:
    clock = Clock()
    calls: list[int] = []
    supervisor = Supervisor(
        clock=clock, sleep=clock.sleep, backoff=Backoff(first_s=1, max_s=5), settle_s=10
    )
    supervisor.start("sync", failing(5, calls))
    for _ in range(5):
        await settle()
        clock.release()
    await settle()
    assert clock.pauses == [1, 2, 4, 5, 5]
    assert len(calls) == 6  # the sixth run goes on

    # a run that lasted settle_s before crashing starts the backoff over
    long_calls: list[int] = []
    crash_after_a_while = asyncio.Event()

    async def work() -> None:
        long_calls.append(len(long_calls))
        if len(long_calls) <= 2:
            raise ValueError("early")
        await crash_after_a_while.wait()
        crash_after_a_while.clear()
        raise ValueError("after a clean run")

    clock.pauses.clear()
    supervisor.start("refresher", work)
    for _ in range(2):
        await settle()
        clock.release()
    await settle()
    assert clock.pauses == [1, 2]
    clock.now += 10  # a clean run of settle_s
    crash_after_a_while.set()
    await settle()
    assert clock.pauses == [1, 2, 1]
    clock.release()
    await settle()
    await supervisor.stop()


async def test_a_needed_task_is_down_from_a_crash_until_it_has_run_clean_again() -> None:
    clock = Clock()
    calls: list[int] = []
    supervisor = Supervisor(clock=clock, sleep=clock.sleep, settle_s=10)
    supervisor.start("catalogue-refresher", failing(1, calls))

    async def done() -> None:
        return None

    supervisor.start("one-off", done, needed=False)
    await settle()
    assert supervisor.down() == ["catalogue-refresher"]  # not the task nobody needs
    clock.release()
    await settle()
    assert calls == [0, 1]
    clock.now += 9.9
    assert supervisor.down() == ["catalogue-refresher"]  # running, not settled yet
    clock.now += 0.1
    assert supervisor.down() == []
    await supervisor.stop()
    assert supervisor.down() == []


async def test_work_that_returns_is_logged_and_a_needed_one_stays_down() -> None:
    supervisor = Supervisor()

    async def done() -> None:
        return None

    with all_logs() as logs:
        supervisor.start("session-notices", done)
        supervisor.start("one-off", done, needed=False)
        await settle()
    ended = [line["task"] for line in logs if line["event"] == "background_task_ended"]
    assert ended == ["session-notices"]  # the one nobody needs may end
    assert supervisor.down() == ["session-notices"]
    await supervisor.stop()


async def test_shutdown_stops_the_last_started_first_each_before_the_next() -> None:
    events: list[str] = []

    def work(name: str) -> Callable[[], Any]:
        async def run() -> None:
            try:
                await asyncio.Event().wait()
            finally:
                events.append(f"{name} stopping")
                for _ in range(5):  # clean-up that takes a few turns of the loop
                    await asyncio.sleep(0)
                events.append(f"{name} stopped")

        return run

    supervisor = Supervisor()
    for name in ("catalogue-sync", "catalogue-refresher", "live-heartbeats", "session-notices"):
        supervisor.start(name, work(name))
    await settle()
    await supervisor.stop()
    assert events == [
        "session-notices stopping",
        "session-notices stopped",
        "live-heartbeats stopping",
        "live-heartbeats stopped",
        "catalogue-refresher stopping",
        "catalogue-refresher stopped",
        "catalogue-sync stopping",
        "catalogue-sync stopped",
    ]
    assert supervisor.tasks == []


async def test_stopping_some_tasks_leaves_the_others_running() -> None:
    supervisor = Supervisor()

    async def forever() -> None:
        await asyncio.Event().wait()

    first = supervisor.start("a", forever)
    second = supervisor.start("b", forever)
    await supervisor.stop([first])
    assert first.task is None
    assert second.task is not None
    assert not second.task.done()
    assert [item.name for item in supervisor.tasks] == ["b"]
    with pytest.raises(ValueError, match="already supervised"):
        supervisor.start("b", forever)
    await supervisor.stop()
    assert supervisor.tasks == []
