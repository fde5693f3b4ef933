"""How old the lists this replica holds are: the age gauges, and the listing the
admin API shows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from app.catalogue.lists import OPEN, SPORTS, LocalLists, list_date
from app.catalogue.on_demand import OnDemandLists
from app.catalogue.snapshot import Snapshot, iso_utc
from app.observability.metrics import Metrics


@dataclass(frozen=True, slots=True)
class ListState:
    name: str
    snapshot: Snapshot
    events: int | None
    now: float

    def as_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "fetchedAt": iso_utc(self.snapshot.fetched_at),
            "ageS": round(self.snapshot.age(self.now), 1),
            "etag": self.snapshot.etag,
            "events": self.events,
        }


def report_ages(
    lists: LocalLists, on_demand: OnDemandLists, metrics: Metrics, now: float, today: date
) -> None:
    """Set the age gauges: the open list, today's list, the oldest other date, sports."""
    other = 0.0
    for name in lists.names():
        local = lists.get(name)
        if local is None:
            continue
        age = local.snapshot.age(now)
        if name == OPEN:
            metrics.catalogue_age.labels("open").set(age)
        elif list_date(name) == today:
            metrics.catalogue_age.labels("events_today").set(age)
        else:
            other = max(other, age)
    metrics.catalogue_age.labels("events_other").set(other)
    sports = on_demand.peek(SPORTS)
    if sports is not None:
        metrics.catalogue_age.labels("sports").set(sports.age(now))


def list_states(lists: LocalLists, on_demand: OnDemandLists, now: float) -> list[ListState]:
    """Every list this replica holds, with its age."""
    states = []
    for name in sorted(lists.names()):
        local = lists.get(name)
        if local is not None:
            states.append(ListState(name, local.snapshot, len(local.events), now))
    for name in (SPORTS,):
        snapshot = on_demand.peek(name)
        if snapshot is not None:
            states.append(ListState(name, snapshot, None, now))
    return states
