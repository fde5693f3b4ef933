"""A published change on its way to every subscriber (``LiveFeed.publish``).

``Delivery`` counts the subscribers that have yet to receive the change; each one's
stream counts itself off when it takes its messages, or when it ends (however it ends:
a send that fails or times out ends the stream, and the subscription with it). It ends
when the count reaches zero, or ``cap_s`` after it began (a loop timer: a stream whose
send is blocked cannot keep it going), or when the feed stops. While one is under way
the heartbeat round asks no client whether it is still there (``LiveFeed.heartbeat``),
so the round's work does not run alongside a broadcast. It logs
``live_delivery_ended``: how long it took, and how many subscribers had yet to receive
the change (``left``: 0 unless the cap or the feed's stop ended it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import structlog

log = structlog.get_logger(__name__)

DELIVERY_CAP_S = 2.0  # the longest a heartbeat round waits for one delivery


class Delivery:
    """One published change: the subscribers that have yet to receive it."""

    def __init__(
        self, cap_s: float = DELIVERY_CAP_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.remaining = 0
        self._clock = clock
        self._began = clock()
        self._done = asyncio.Event()
        self._cap = asyncio.get_running_loop().call_later(cap_s, self.end)

    @property
    def ended(self) -> bool:
        return self._done.is_set()

    def add(self) -> None:
        """One more subscriber to serve."""
        self.remaining += 1

    def received(self) -> None:
        """A subscriber took the change, or its stream ended."""
        self.remaining -= 1
        if self.remaining <= 0:
            self.end()

    def end(self) -> None:
        """Every subscriber served, the cap reached, or the feed stopping."""
        if self._done.is_set():
            return
        self._done.set()
        self._cap.cancel()
        log.info(
            "live_delivery_ended",
            seconds=round(self._clock() - self._began, 3),
            left=max(self.remaining, 0),
        )

    async def wait(self) -> None:
        await self._done.wait()
