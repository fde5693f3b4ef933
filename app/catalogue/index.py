"""Every event the catalogue has seen: eventId -> latest record and when it was seen.

Built in memory on every replica from the lists it holds, so the link rules read
status and geo lists without a store round trip, and the live feed compares each
event's record before and after a list is installed (``update`` says what it replaced).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeAlias

from app.upstream.models import Event


@dataclass(frozen=True, slots=True)
class IndexedEvent:
    event: Event
    seen_at: float  # epoch of the list that carried this record


# eventId -> the record an update replaced (None: the event was new to the index)
Replaced: TypeAlias = dict[str, Event | None]


class EventIndex:
    def __init__(self) -> None:
        self._by_id: dict[str, IndexedEvent] = {}

    def update(self, events: Iterable[Event], seen_at: float) -> Replaced:
        """Record events from a list fetched at ``seen_at``; newer records win. Returns
        the records replaced, by eventId (an event held from a newer list is left, and
        not in the answer)."""
        replaced: Replaced = {}
        for event in events:
            current = self._by_id.get(event.event_id)
            if current is None or current.seen_at <= seen_at:
                replaced[event.event_id] = None if current is None else current.event
                self._by_id[event.event_id] = IndexedEvent(event, seen_at)
        return replaced

    def events(self, ids: Iterable[str]) -> dict[str, Event]:
        """The records held for these ids (ids not held are left out)."""
        by_id = self._by_id
        return {key: held.event for key in ids if (held := by_id.get(key)) is not None}

    def get(self, event_id: str) -> IndexedEvent | None:
        return self._by_id.get(event_id)

    def prune(self, seen_before: float) -> int:
        """Forget events not seen since ``seen_before``; returns how many went."""
        stale = [key for key, item in self._by_id.items() if item.seen_at < seen_before]
        for key in stale:
            del self._by_id[key]
        return len(stale)

    def __len__(self) -> int:
        return len(self._by_id)
