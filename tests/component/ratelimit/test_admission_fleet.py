"""Many tasks in several OS processes share one fleet budget on a real redis-server."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from tests.component.ratelimit.hammer import HammerLog, HammerPlan, hammer
from tests.unit.ratelimit.windows import max_in_window

RATE, BURST = 20, 5
PROCESSES = 2  # children, plus the tasks in this process
ROOT = Path(__file__).resolve().parents[3]
READY_TIMEOUT_S = 60  # a child imports the app and connects: slow on a loaded machine


async def run_child(plan: HammerPlan, start: Callable[[], Awaitable[float]]) -> HammerLog:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.component.ratelimit.hammer",
        json.dumps(dataclasses.asdict(plan)),
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    ready = await asyncio.wait_for(proc.stdout.readline(), READY_TIMEOUT_S)
    if ready != b"ready\n":
        proc.kill()
        _, err = await proc.communicate()
        raise AssertionError(f"the child never got ready: {err.decode()}")
    proc.stdin.write(f"{await start()!r}\n".encode())
    await proc.stdin.drain()
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return HammerLog(**json.loads(out))


def start_together(parties: int) -> Callable[[], Awaitable[float]]:
    """Each party awaits this once connected; all get the same start, 0.2 s after the
    last one arrived."""
    barrier = asyncio.Barrier(parties)
    start_at: list[float] = []

    async def start() -> float:
        await asyncio.wait_for(barrier.wait(), READY_TIMEOUT_S)
        if not start_at:
            start_at.append(time.time() + 0.2)
        return start_at[0]

    return start


@pytest.mark.redis
@pytest.mark.slow
async def test_honoured_waits_keep_every_second_within_rate_plus_burst(
    redis_server_url: str,
) -> None:
    plan = HammerPlan(
        redis_url=redis_server_url,
        duration_s=2.5,
        tasks=4,
        rate_per_s=RATE,
        burst=BURST,
        max_wait_ms=250,
    )
    start = start_together(PROCESSES + 1)
    here, *children = await asyncio.gather(
        hammer(plan, start), *(run_child(plan, start) for _ in range(PROCESSES))
    )
    logs = [here, *children]
    calls = [(t, 1) for log in logs for t in log.calls]
    admitted_at = [(t, 1) for log in logs for t in log.admitted_at]
    retry_afters = [r for log in logs for r in log.retry_afters]

    assert all(log.calls for log in logs), "every process got admitted at least once"
    assert [o for log in logs for o in log.other] == []
    # The load was real: ignoring the waits would have broken the limit.
    assert len(calls) > 2 * (RATE + BURST)
    assert max_in_window(admitted_at, 1.0) > RATE + BURST
    # What the upstream sees.
    assert max_in_window(calls, 1.0) <= RATE + BURST
    # Places were given, each a state-derived time to come back: at most one slot
    # per viewer ahead (every task is one viewer at a time) past the hold bound.
    assert len(retry_afters) > 10
    viewers = plan.tasks * (PROCESSES + 1)
    assert all(0 < r <= viewers / RATE for r in retry_afters)
