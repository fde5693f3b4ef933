"""Finding one event by id, never calling an id "not found" before a list says so.

An id the index lacks may be an event the upstream opened since the last open list,
or one a replica that has just started has not loaded yet. ``EventLookup.find`` lets
the next open list decide: it waits, for a bounded time, for an open list fetched
after the id was first asked for, whether this replica fetches it (when the fleet
gate gives the open-list slot) or the refresh leader does and it arrives through the
shared store. That list holds the id (found) or not (not found). When the bound
passes first, ``not_listed_yet`` is raised: a 503 whose Retry-After is the time to
that list.

Once a list fetched after the first question lacked an id, later questions are
answered at once: every later list was fetched after that question too, so the id
stays "not found" until a list carries it. Waiting costs no upstream call beyond the
fleet gate's one per interval: one request per replica at a time tries the gate,
and not before the gate said it may open.

Lists are stamped with the moment their call went out (``Refresher``), by the clock of
the replica that made it; replicas' clocks are assumed to agree to well under a
second (NTP).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol

from app.catalogue.index import EventIndex, IndexedEvent
from app.catalogue.lists import OPEN, LocalLists
from app.errors import GatewayError, problem
from app.observability.metrics import Metrics
from app.store import StoreUnavailable
from app.upstream.client import EVENT_OPEN

POLL_S = 0.2
ASKED_MEMORY_S = 600.0
MAX_ASKED = 10_000


class OpenListFetcher(Protocol):
    """Fetches the open list when the fleet gate allows (the ``Refresher``)."""

    async def refresh_open(self, *, force: bool) -> bool: ...


class SlotClock(Protocol):
    """When the fleet gate next lets an event method through (the ``UpstreamGate``)."""

    async def next_slot_in(self, method: str) -> float: ...


def not_listed_yet(event_id: str, retry_after_s: float) -> GatewayError:
    return problem(
        "catalogue_warming",
        "No open list fetched since this event was asked for has arrived yet; "
        "the next one is due within Retry-After.",
        retry_after_s=retry_after_s,
        extra={"eventId": event_id},
    )


class EventLookup:
    def __init__(
        self,
        *,
        index: EventIndex,
        lists: LocalLists,
        refresher: OpenListFetcher,
        gate: SlotClock,
        interval_s: float,
        wait_s: float,
        sync_interval_s: float,
        metrics: Metrics,
        wall: Callable[[], float],
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._index = index
        self._lists = lists
        self._refresher = refresher
        self._gate = gate
        self._interval_s = interval_s
        self._wait_s = wait_s
        self._sync_interval_s = sync_interval_s
        self._metrics = metrics
        self._wall = wall
        self._monotonic = monotonic
        self._asked: dict[str, float] = {}  # unknown id -> when it was first asked for
        self._trying = asyncio.Lock()
        self._next_try = 0.0  # monotonic: when the open-list gate may let this replica by

    async def find(self, event_id: str) -> IndexedEvent | None:
        """The event's latest record; None once an open list fetched after the id was
        first asked for lacks it. Raises ``not_listed_yet`` if no such list came in
        time."""
        found = self._index.get(event_id)
        if found is not None:
            return found
        asked_at = self._asked.get(event_id)
        if asked_at is None:
            if len(self._asked) >= MAX_ASKED:
                self.prune()
            asked_at = self._asked.setdefault(event_id, self._wall())
        deadline = self._monotonic() + self._wait_s
        while True:
            found = self._index.get(event_id)
            if found is not None:
                self._asked.pop(event_id, None)
                return found
            if self._listed_since(asked_at):
                return None
            if self._monotonic() >= self._next_try and not self._trying.locked():
                async with self._trying:
                    await self._try_fetch()
                continue
            remaining = deadline - self._monotonic()
            if remaining <= 0:
                raise not_listed_yet(event_id, await self.next_open_list_in())
            await self._lists.installed(OPEN, min(remaining, POLL_S))

    async def next_open_list_in(self) -> float:
        """Seconds until every replica holds the next open list: the fleet gate's next
        slot, or the list's due time if later, plus a sync round."""
        try:
            slot_in = await self._gate.next_slot_in(EVENT_OPEN)
        except StoreUnavailable:
            self._metrics.redis_errors.labels("gate").inc()
            return self._interval_s
        local = self._lists.get(OPEN)
        due_in = 0.0
        if local is not None:
            due_in = self._interval_s - local.snapshot.age(self._wall())
        return max(slot_in, due_in, 0.0) + self._sync_interval_s

    def prune(self) -> None:
        """Forget ids not asked for lately (at most ``MAX_ASKED`` are kept)."""
        cutoff = self._wall() - ASKED_MEMORY_S
        kept = {key: at for key, at in self._asked.items() if at >= cutoff}
        self._asked = kept if len(kept) < MAX_ASKED else {}

    def _listed_since(self, asked_at: float) -> bool:
        local = self._lists.get(OPEN)
        return local is not None and local.snapshot.fetched_at >= asked_at

    async def _try_fetch(self) -> None:
        """Fetch the open list if the fleet gate lets this replica; else learn when it may."""
        try:
            if await self._refresher.refresh_open(force=True):
                opens_in = 0.0
            else:
                opens_in = await self._gate.next_slot_in(EVENT_OPEN)
        except StoreUnavailable:
            self._metrics.redis_errors.labels("refresh").inc()
            opens_in = self._sync_interval_s
        self._next_try = self._monotonic() + max(opens_in, POLL_S)
