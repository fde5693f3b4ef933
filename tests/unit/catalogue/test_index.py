"""The event index: newer records win, and an update says which records it replaced
(what the live feed compares)."""

from __future__ import annotations

from app.catalogue.index import EventIndex
from app.upstream.models import Event


def event(event_id: str, status: str) -> Event:
    return Event.model_validate({"eventId": event_id, "eventStatusCode": status})


def test_an_update_returns_the_records_it_replaced() -> None:
    index = EventIndex()
    assert index.update([event("A", "P"), event("B", "O")], seen_at=10.0) == {
        "A": None,
        "B": None,
    }
    replaced = index.update([event("A", "O"), event("C", "P")], seen_at=20.0)
    assert {key: record and record.event_status_code for key, record in replaced.items()} == {
        "A": "P",
        "C": None,
    }
    assert index.events(["A", "B", "C", "missing"]) == {
        "A": event("A", "O"),
        "B": event("B", "O"),
        "C": event("C", "P"),
    }


def test_an_older_list_replaces_nothing() -> None:
    index = EventIndex()
    index.update([event("A", "C")], seen_at=20.0)
    assert index.update([event("A", "O")], seen_at=10.0) == {}
    assert index.events(["A"]) == {"A": event("A", "C")}
    assert index.update([event("A", "V")], seen_at=20.0) == {"A": event("A", "C")}


def test_pruning_forgets_events_not_seen_since() -> None:
    index = EventIndex()
    index.update([event("A", "O")], seen_at=10.0)
    index.update([event("B", "O")], seen_at=30.0)
    assert index.prune(seen_before=20.0) == 1
    assert index.events(["A", "B"]) == {"B": event("B", "O")}
