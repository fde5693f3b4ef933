"""The scheduled lists (open events, events per date) as this replica holds them.

``LocalLists`` keeps each list's snapshot, its decoded events (for the event index)
and lazily built filtered variants (``?sport=FT&status=O``), each encoded once per
snapshot. ``sync_once`` pulls whatever the fleet's refresher wrote since last time.
Waiters for a list that is not here yet are woken when it arrives, and ``on_install``
(the live feed) hears of every list installed, in the order the refresher fetched them,
with the event records it replaced in the index.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import orjson
import structlog
from pydantic import ValidationError

from app.catalogue.index import EventIndex, Replaced
from app.catalogue.shared import SharedLists
from app.catalogue.snapshot import Snapshot, make_snapshot
from app.upstream.models import Event

log = structlog.get_logger(__name__)

OPEN = "open"
SPORTS = "sports"
MAX_VARIANTS = 128


def date_list_name(day: date) -> str:
    return f"events:{day.isoformat()}"


def list_date(name: str) -> date | None:
    if not name.startswith("events:"):
        return None
    try:
        return date.fromisoformat(name.removeprefix("events:"))
    except ValueError:
        return None


@dataclass(slots=True)
class LocalList:
    snapshot: Snapshot
    items: list[dict[str, Any]]
    events: tuple[Event, ...]
    extra: dict[str, Any]
    variants: dict[tuple[str, str], Snapshot] = field(default_factory=dict)

    def filtered(self, sport: str | None, status: str | None) -> Snapshot:
        """The list narrowed to a sport and/or status, encoded once per snapshot."""
        if sport is None and status is None:
            return self.snapshot
        key = (sport or "", status or "")
        cached = self.variants.get(key)
        if cached is None:
            items = [
                item
                for item in self.items
                if (sport is None or item.get("sportCode") == sport)
                and (status is None or item.get("eventStatusCode") == status)
            ]
            cached = make_snapshot(
                self.snapshot.name, {**self.extra, "events": items}, self.snapshot.fetched_at
            )
            if len(self.variants) < MAX_VARIANTS:
                self.variants[key] = cached
        return cached


def decode_list(snapshot: Snapshot) -> LocalList:
    """Rebuild a list's events from its body (the gateway's own camelCase form)."""
    data = orjson.loads(snapshot.body)
    items: list[dict[str, Any]] = data.get("events", [])
    events = []
    for item in items:
        try:
            events.append(Event.model_validate(item))
        except ValidationError:
            continue
    extra = {key: value for key, value in data.items() if key not in ("events", "fetchedAt")}
    return LocalList(snapshot, items, tuple(events), extra)


class LocalLists:
    def __init__(
        self,
        shared: SharedLists,
        index: EventIndex,
        on_install: Callable[[LocalList | None, LocalList, Replaced], None] | None = None,
    ) -> None:
        self._shared = shared
        self._index = index
        # (the copy replaced or None, the new copy, the index records it replaced)
        self._on_install = on_install
        self._lists: dict[str, LocalList] = {}
        self._versions: dict[str, int] = {}
        self._waiters: dict[str, asyncio.Event] = {}

    def get(self, name: str) -> LocalList | None:
        return self._lists.get(name)

    def names(self) -> list[str]:
        return list(self._lists)

    def install(self, snapshot: Snapshot) -> LocalList:
        current = self._lists.get(snapshot.name)
        if current is not None and current.snapshot.body == snapshot.body:
            return current
        local = decode_list(snapshot)
        self._lists[snapshot.name] = local
        replaced = self._index.update(local.events, snapshot.fetched_at)
        if self._on_install is not None:
            try:
                self._on_install(current, local, replaced)
            except Exception as exc:  # a listener's fault must not stop the sync loop
                log.error(
                    "list_listener_failed",
                    list=snapshot.name,
                    error_type=type(exc).__name__,
                    error=str(exc),
                )
        waiter = self._waiters.pop(snapshot.name, None)
        if waiter is not None:
            waiter.set()
        return local

    def drop(self, names: list[str]) -> None:
        for name in names:
            self._lists.pop(name, None)
            self._versions.pop(name, None)

    async def wait_for(self, name: str, timeout_s: float) -> LocalList | None:
        """The list once it arrives, or None after ``timeout_s``."""
        if (local := self._lists.get(name)) is not None:
            return local
        waiter = self._waiters.setdefault(name, asyncio.Event())
        try:
            await asyncio.wait_for(waiter.wait(), timeout_s)
        except TimeoutError:
            return None
        return self._lists.get(name)

    async def installed(self, name: str, timeout_s: float) -> None:
        """Return at the next install of ``name``, or after ``timeout_s``."""
        waiter = self._waiters.setdefault(name, asyncio.Event())
        try:
            await asyncio.wait_for(waiter.wait(), timeout_s)
        except TimeoutError:
            return

    async def sync_once(self, wanted: set[str] | None = None) -> int:
        """Load lists whose shared version moved; returns how many were installed."""
        versions = await self._shared.versions()
        changed = [
            name
            for name, version in versions.items()
            if self._versions.get(name) != version and (wanted is None or name in wanted)
        ]
        snapshots = await self._shared.read(changed)
        # Oldest fetch first, as the refresher installed them: every replica then sees
        # the same sequence of lists (the live feed's ids depend on it).
        for name, snapshot in sorted(snapshots.items(), key=lambda item: item[1].fetched_at):
            current = self._lists.get(name)
            if current is None or current.snapshot.fetched_at <= snapshot.fetched_at:
                self.install(snapshot)
            self._versions[name] = versions[name]
        return len(snapshots)
