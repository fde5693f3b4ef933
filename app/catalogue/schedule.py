"""Which date's event list the fleet refreshes next (pure).

event/all allows one call per interval for the whole operator, whatever the date, so
each slot goes to one date. Dates somebody is waiting for and that were never fetched
come first (nearest to today first); then the list that is most overdue against its
target period: today every two intervals, other dates less often the further they are
from today, twice as often while clients ask for them. Today and tomorrow are always
kept: the link rules look events up in what the lists hold, and an event starting a
few hours from now may already be on tomorrow's (UTC) list when nobody has browsed it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

RECENT_DEMAND_S = 120.0


def target_period_s(distance_days: int, recently_requested: bool, interval_s: float) -> float:
    if distance_days == 0:
        return 2 * interval_s
    period = interval_s * (3 + 3 * distance_days)
    return period / 2 if recently_requested else period


def pick_date(
    *,
    today: date,
    fetched_at: Mapping[date, float],
    demand: Mapping[date, float],
    now: float,
    interval_s: float,
) -> date | None:
    """The date to spend the next event/all slot on, or None if every list is fresh.

    ``fetched_at``: date -> epoch of its cached copy (absent: never fetched);
    ``demand``: date -> epoch a client last asked for it. Candidates are today,
    tomorrow and every demanded date.
    """
    best: tuple[int, float, date] | None = None
    tomorrow = date.fromordinal(today.toordinal() + 1)
    for day in {today, tomorrow, *demand}:
        distance = abs((day - today).days)
        fetched = fetched_at.get(day)
        if fetched is None:
            rank: tuple[int, float] = (2, -distance)
        else:
            age = now - fetched
            recent = now - demand.get(day, float("-inf")) < RECENT_DEMAND_S
            target = target_period_s(distance, recent, interval_s)
            if age < target:
                continue
            rank = (1, age / target)
        candidate = (*rank, day)
        if (
            best is None
            or candidate[:2] > best[:2]
            or (candidate[:2] == best[:2] and day < best[2])
        ):
            best = candidate
    return best[2] if best else None
