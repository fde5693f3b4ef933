"""The dates clients ask for, told to the fleet's refresher.

A read notes its date at most once a second; the notes are pushed to the shared
store (``SharedLists.record_demand``) on the next sync, or at once by a cold read,
and kept for another try when the store is down. Dates not asked for in
``DEMAND_MEMORY_S`` are forgotten.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from app.catalogue.shared import SharedLists
from app.store import StoreUnavailable

DEMAND_MEMORY_S = 630.0


class DateDemand:
    def __init__(self, shared: SharedLists, wall: Callable[[], float]) -> None:
        self._shared = shared
        self._wall = wall
        self._noted: dict[date, float] = {}
        self._unflushed: dict[date, float] = {}

    def note(self, day: date) -> None:
        now = self._wall()
        if now - self._noted.get(day, float("-inf")) >= 1.0:
            self._noted[day] = now
            self._unflushed[day] = now

    async def flush(self) -> None:
        """Push the dates noted since the last push; raises ``StoreUnavailable``."""
        pending, self._unflushed = self._unflushed, {}
        try:
            await self._shared.record_demand(pending)
        except StoreUnavailable:
            self._unflushed.update(pending)
            raise

    def prune(self) -> None:
        cutoff = self._wall() - DEMAND_MEMORY_S
        self._noted = {day: at for day, at in self._noted.items() if at >= cutoff}
