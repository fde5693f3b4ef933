"""Hammer LinkAdmission from several asyncio tasks, in this process or a child.

Run as ``python -m tests.component.ratelimit.hammer <json args>``: once connected it
prints ``ready``, reads the start instant from stdin, hammers, and prints one JSON
``HammerLog``. Instants are ``time.time()`` (the same clock as redis-server's ``TIME``
on this host), comparable across processes. Every process starts together however long
the others took to import and connect.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field

from app.ratelimit.admission import LinkAdmission
from app.ratelimit.line import LinePolicy
from app.store import build_store


@dataclass(frozen=True)
class HammerPlan:
    redis_url: str
    duration_s: float
    tasks: int
    rate_per_s: float
    burst: int
    max_wait_ms: int
    methods: tuple[str, ...] = ("stream_link", "live_stream")


@dataclass
class HammerLog:
    calls: list[float] = field(default_factory=list)  # after honouring wait: upstream sees these
    admitted_at: list[float] = field(default_factory=list)  # when admit answered
    retry_afters: list[float] = field(default_factory=list)  # of every place in the line
    other: list[str] = field(default_factory=list)  # any other outcome (should stay empty)


async def hammer(plan: HammerPlan, start: Callable[[], Awaitable[float]]) -> HammerLog:
    """Connect, then await ``start()`` (the ``time.time()`` at which every task starts)."""
    log = HammerLog()
    client = build_store(plan.redis_url)
    links = LinkAdmission(client)
    await client.ping()  # connect before the start line
    start_at = await start()

    line = LinePolicy(
        main_rate_per_s=plan.rate_per_s,
        renewal_rate_per_s=0,
        burst=plan.burst,
        hold_s=plan.max_wait_ms / 1000,
        grace_s=60,
        renewal_lead_s=30,
    )

    async def one_task(index: int) -> None:
        rng = random.Random(index)  # jitter, not security
        await asyncio.sleep(max(0.0, start_at - time.time()))
        viewer = uuid.uuid4().hex  # keeps its place until admitted
        while time.time() < start_at + plan.duration_s:
            got = await links.admit(
                dedupe_key=uuid.uuid4().hex,
                user_key=f"user-{index}",
                viewer_key=viewer,
                methods=plan.methods,
                line=line,
                user_rate_per_s=1000,
                user_burst=1000,
            )
            if got.outcome == "admitted":
                log.admitted_at.append(time.time())
                await asyncio.sleep(got.wait_s)
                log.calls.append(time.time())
                viewer = uuid.uuid4().hex
            elif got.outcome == "queued":
                log.retry_afters.append(got.retry_after_s)
                await asyncio.sleep(got.retry_after_s + rng.uniform(0.0, 0.01))
            else:
                log.other.append(got.outcome)

    try:
        await asyncio.gather(*(one_task(i) for i in range(plan.tasks)))
    finally:
        await client.aclose()
    return log


def main() -> None:
    raw = json.loads(sys.argv[1])
    raw["methods"] = tuple(raw["methods"])

    async def from_parent() -> float:
        print("ready", flush=True)
        return float(await asyncio.to_thread(sys.stdin.readline))

    log = asyncio.run(hammer(HammerPlan(**raw), from_parent))
    print(json.dumps(asdict(log)))


if __name__ == "__main__":
    main()
