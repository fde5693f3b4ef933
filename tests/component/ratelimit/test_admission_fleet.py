"""Many tasks in several OS processes share one fleet budget on a real redis-server."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
import time
from pathlib import Path

import pytest

from tests.component.ratelimit.hammer import HammerLog, HammerPlan, hammer
from tests.unit.ratelimit.windows import max_in_window

RATE, BURST = 20, 5
PROCESSES = 2  # children, plus the tasks in this process
ROOT = Path(__file__).resolve().parents[3]


async def run_child(plan: HammerPlan) -> HammerLog:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.component.ratelimit.hammer",
        json.dumps(dataclasses.asdict(plan)),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return HammerLog(**json.loads(out))


@pytest.mark.redis
@pytest.mark.slow
async def test_honoured_waits_keep_every_second_within_rate_plus_burst(
    redis_server_url: str,
) -> None:
    plan = HammerPlan(
        redis_url=redis_server_url,
        start_at=time.time() + 1.5,  # children need time to import
        duration_s=2.5,
        tasks=4,
        rate_per_s=RATE,
        burst=BURST,
        max_wait_ms=250,
    )
    here, *children = await asyncio.gather(
        hammer(plan), *(run_child(plan) for _ in range(PROCESSES))
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
    # Refusals happened and each carried a state-derived retry-after (at most one
    # token interval: a refused caller is never more than one token short).
    assert len(retry_afters) > 10
    assert all(0 < r <= 1 / RATE + 0.001 for r in retry_afters)
