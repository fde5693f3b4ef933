"""What changed for front ends between two views of the catalogue's events.

A pure function over plain data: the event records before and after one newly
installed list, and the open list's ids before and after. Every replica installs the
same snapshots, so every replica computes the same changes from them.

=========  ===========================================================================
change     when
=========  ===========================================================================
opened     the status became ``O`` (or a new event is listed as ``O``)
closed     the status became ``C``
voided     the status became ``V``
pending    the status became ``P`` (or a new event is listed as ``P``)
removed    the event left the open list while its last known status is still ``O``
updated    the start or end time or a geo list changed; or the status became a code
           this gateway does not know
=========  ===========================================================================

An event that joins the open list while its status already reads ``O`` has been
reported as ``opened`` already (by the list that first showed it open): nothing new.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass
from typing import Literal

from app.upstream.models import Event

ChangeKind = Literal["opened", "closed", "voided", "pending", "removed", "updated"]

_BY_STATUS: dict[str, ChangeKind] = {"O": "opened", "C": "closed", "V": "voided", "P": "pending"}


@dataclass(frozen=True, slots=True)
class EventChange:
    event_id: str
    change: ChangeKind
    event: Event | None  # the event's record now (its last known one for ``removed``)


def _details_differ(old: Event, new: Event) -> bool:
    return (
        old.start_time != new.start_time
        or old.estimated_end_time != new.estimated_end_time
        or old.geo_allow != new.geo_allow
        or old.geo_block != new.geo_block
    )


def event_changes(
    before: Mapping[str, Event],
    after: Mapping[str, Event],
    open_before: Set[str],
    open_after: Set[str],
) -> list[EventChange]:
    """The changes from ``before`` to ``after``, one at most per event, by eventId.

    ``before``/``after`` map eventId to the event's current record (an event missing
    from ``after`` is not known any more, which says nothing about it: no change);
    ``open_before``/``open_after`` are the open list's ids.
    """
    changes: list[EventChange] = []
    for event_id in sorted(after.keys() | (open_before - open_after)):
        old = before.get(event_id)
        new = after.get(event_id)
        if new is None:
            if old is not None and old.event_status_code == "O" and event_id not in open_after:
                changes.append(EventChange(event_id, "removed", old))
            continue
        status = new.event_status_code
        if old is None or old.event_status_code != status:
            changes.append(EventChange(event_id, _BY_STATUS.get(status, "updated"), new))
        elif event_id in open_before and event_id not in open_after and status == "O":
            changes.append(EventChange(event_id, "removed", new))
        elif _details_differ(old, new):
            changes.append(EventChange(event_id, "updated", new))
    return changes
