from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from app.live.changes import ChangeKind, event_changes
from app.upstream.models import Event


def ev(status: str, **fields: str) -> Event:
    return Event.model_validate(
        {
            "eventId": "E1",
            "eventStatusCode": status,
            "startTime": "2026-12-04T18:00:00Z",
            "estimatedEndTime": "2026-12-04T20:00:00Z",
            "geoAllow": "",
            "geoBlock": "",
            **fields,
        }
    )


@dataclass(frozen=True)
class Case:
    id: str
    before: Event | None
    after: Event | None
    open_before: frozenset[str] = frozenset()
    open_after: frozenset[str] = frozenset()
    expected: list[ChangeKind] = field(default_factory=list)


CASES = [
    Case("pending to open", ev("P"), ev("O"), open_after=frozenset({"E1"}), expected=["opened"]),
    Case("open to closed", ev("O"), ev("C"), expected=["closed"]),
    Case("open to void", ev("O"), ev("V"), expected=["voided"]),
    Case("back to pending", ev("O"), ev("P"), expected=["pending"]),
    Case("a new open event", None, ev("O"), open_after=frozenset({"E1"}), expected=["opened"]),
    Case("a new pending event", None, ev("P"), expected=["pending"]),
    Case("an unknown status code", ev("O"), ev("X"), expected=["updated"]),
    Case(
        "left the open list, still open as far as known",
        ev("O"),
        ev("O"),
        open_before=frozenset({"E1"}),
        expected=["removed"],
    ),
    Case(
        "left the open list, closed already reported",
        ev("C"),
        ev("C"),
        open_before=frozenset({"E1"}),
        expected=[],
    ),
    Case(
        "joined the open list already open (reported by a date list)",
        ev("O"),
        ev("O"),
        open_after=frozenset({"E1"}),
        expected=[],
    ),
    Case(
        "left the open list and closed at once: one change",
        ev("O"),
        ev("C"),
        open_before=frozenset({"E1"}),
        expected=["closed"],
    ),
    Case(
        "start time moved",
        ev("P"),
        ev("P", startTime="2026-12-04T18:30:00Z"),
        expected=["updated"],
    ),
    Case(
        "end time moved",
        ev("O"),
        ev("O", estimatedEndTime="2026-12-04T21:00:00Z"),
        expected=["updated"],
    ),
    Case("geo allow list changed", ev("O"), ev("O", geoAllow="GB,IE"), expected=["updated"]),
    Case("geo block list changed", ev("O"), ev("O", geoBlock="US"), expected=["updated"]),
    Case("only the title changed", ev("O"), ev("O", title="renamed"), expected=[]),
    Case("nothing changed", ev("O"), ev("O"), expected=[]),
    Case(
        "forgotten while in the open list",
        ev("O"),
        None,
        open_before=frozenset({"E1"}),
        expected=["removed"],
    ),
    Case("forgotten, not open", ev("P"), None, expected=[]),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_event_changes(case: Case) -> None:
    before = {} if case.before is None else {"E1": case.before}
    after = {} if case.after is None else {"E1": case.after}
    changes = event_changes(before, after, case.open_before, case.open_after)
    assert [change.change for change in changes] == case.expected
    for change in changes:
        assert change.event_id == "E1"
        assert change.event == (case.after or case.before)


def test_changes_come_in_event_id_order_one_per_event() -> None:
    ids = ["B", "A", "C"]
    before = {key: ev("P", eventId=key) for key in ids}
    after = {key: ev("O", eventId=key, geoAllow="GB") for key in ids}
    changes = event_changes(before, after, frozenset(), frozenset(ids))
    assert [(c.event_id, c.change) for c in changes] == [
        ("A", "opened"),
        ("B", "opened"),
        ("C", "opened"),
    ]
