"""A published change on its way to every subscriber (``LiveFeed.publish``).

A full (oldest-generation) garbage collection walks every stream's objects: about 140
each, 0.7 to 0.9 s at 10,000 streams, with the event loop held all along. Left to land
in a broadcast, one held back every stream not yet served by as long, and the
subscribers' new objects of each wake-up (and a heartbeat round's) are what brings the
next one due. So while a change is on its way the cyclic collector is paused, and the
heartbeat round waits:

- ``Delivery`` counts the subscribers that have yet to take the change; each one's
  stream counts itself off when it takes its messages, or when it ends (however it
  ends: a send that fails or times out ends the stream, and the subscription with it);
- it ends when the count reaches zero, or ``cap_s`` after it began (a loop timer: a
  stream whose send is blocked cannot keep it going), or when the feed stops;
- it pauses the collector (``gc.disable``) only if the collector was running, and
  turns it back on when it ends, whichever way: never left off. The collection that was
  due runs then, once every subscriber has been served;
- it logs ``live_delivery_ended``: how long it took, and how many subscribers had yet
  to take the change (``left``: 0 unless the cap or the feed's stop ended it).
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable

import structlog

log = structlog.get_logger(__name__)

DELIVERY_CAP_S = 2.0  # the longest the collector stays off for one delivery


class Delivery:
    """One published change: the subscribers that have yet to take it."""

    def __init__(
        self, cap_s: float = DELIVERY_CAP_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.due = 0
        self._clock = clock
        self._began = clock()
        self._done = asyncio.Event()
        self._cap = asyncio.get_running_loop().call_later(cap_s, self.end)
        self._paused = gc.isenabled()
        if self._paused:
            gc.disable()

    @property
    def ended(self) -> bool:
        return self._done.is_set()

    def add(self) -> None:
        """One more subscriber to serve."""
        self.due += 1

    def taken(self) -> None:
        """A subscriber took the change, or its stream ended."""
        self.due -= 1
        if self.due <= 0:
            self.end()

    def end(self) -> None:
        """Every subscriber served, the cap reached, or the feed stopping."""
        if self._done.is_set():
            return
        self._done.set()
        self._cap.cancel()
        if self._paused:
            self._paused = False
            gc.enable()
        log.info(
            "live_delivery_ended",
            seconds=round(self._clock() - self._began, 3),
            left=max(self.due, 0),
        )

    async def wait(self) -> None:
        await self._done.wait()
