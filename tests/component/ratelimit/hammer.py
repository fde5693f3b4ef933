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
    retry_afters: list[float] = field(default_factory=list)  # of every refusal
    other: list[str] = field(default_factory=list)  # any other outcome (should stay empty)


async def hammer(plan: HammerPlan, start: Callable[[], Awaitable[float]]) -> HammerLog:
    """Connect, then await ``start()`` (the ``time.time()`` at which every task starts)."""
    log = HammerLog()
    client = build_store(plan.redis_url)
    links = LinkAdmission(client)
    await client.ping()  # connect before the start line
    start_at = await start()

    async def one_task(index: int) -> None:
        rng = random.Random(index)  # jitter, not security
        await asyncio.sleep(max(0.0, start_at - time.time()))
        while time.time() < start_at + plan.duration_s:
            got = await links.admit(
                dedupe_key=uuid.uuid4().hex,
                user_key=f"user-{index}",
                methods=plan.methods,
                rate_per_s=plan.rate_per_s,
                burst=plan.burst,
                user_rate_per_s=1000,
                user_burst=1000,
                max_wait_ms=plan.max_wait_ms,
            )
            if got.outcome == "admitted":
                log.admitted_at.append(time.time())
                await asyncio.sleep(got.wait_s)
                log.calls.append(time.time())
            elif got.outcome == "rate_limited":
                log.retry_afters.append(got.retry_after_s)
                await asyncio.sleep(rng.uniform(0.0, 0.01))
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
