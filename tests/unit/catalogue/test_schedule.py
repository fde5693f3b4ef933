from __future__ import annotations

from datetime import date

import pytest

from app.catalogue.schedule import pick_date, target_period_s

TODAY = date(2026, 11, 22)
NOW = 1_000_000.0
INTERVAL = 10.0


def d(offset: int) -> date:
    return date.fromordinal(TODAY.toordinal() + offset)


@pytest.mark.parametrize(
    ("fetched_offsets_ages", "demand_offsets_ages", "expected"),
    [
        pytest.param({}, {}, 0, id="nothing-fetched-today-first"),
        pytest.param({0: 5.0}, {}, 1, id="tomorrow-always-kept"),
        pytest.param({0: 5.0, 1: 5.0}, {}, None, id="both-fresh-nothing-to-do"),
        pytest.param({0: 19.0, 1: 5.0}, {}, None, id="today-within-two-intervals"),
        pytest.param({0: 21.0, 1: 5.0}, {}, 0, id="today-overdue"),
        pytest.param({0: 5.0, 1: 59.0}, {}, None, id="tomorrow-within-its-period"),
        pytest.param({0: 5.0, 1: 61.0}, {}, 1, id="tomorrow-overdue"),
        pytest.param({0: 5.0, 1: 5.0}, {3: 1.0}, 3, id="cold-demanded-date-first"),
        pytest.param({0: 500.0, 1: 5.0}, {3: 1.0}, 3, id="cold-date-beats-overdue-today"),
        pytest.param({0: 5.0}, {3: 1.0}, 1, id="cold-tomorrow-nearer-than-demanded"),
        pytest.param({0: 5.0, 1: 5.0}, {2: 1.0, 4: 1.0}, 2, id="nearest-cold-date-first"),
        pytest.param({0: 5.0, 1: 5.0}, {-1: 1.0, 2: 1.0}, -1, id="yesterday-is-distance-one"),
        pytest.param({0: 5.0, 1: 40.0}, {1: 1.0}, 1, id="demanded-date-half-period"),
        pytest.param({0: 5.0, 1: 40.0}, {1: 500.0}, None, id="old-demand-full-period"),
        pytest.param({0: 25.0, 1: 200.0}, {1: 1.0}, 1, id="most-overdue-ratio-wins"),
        pytest.param({0: 45.0, 1: 35.0}, {1: 1.0}, 0, id="today-more-overdue"),
        pytest.param({0: 5.0, 1: 5.0, 2: 50.0}, {2: 1.0}, 2, id="demanded-later-date-overdue"),
    ],
)
def test_pick_date(
    fetched_offsets_ages: dict[int, float],
    demand_offsets_ages: dict[int, float],
    expected: int | None,
) -> None:
    picked = pick_date(
        today=TODAY,
        fetched_at={d(o): NOW - age for o, age in fetched_offsets_ages.items()},
        demand={d(o): NOW - age for o, age in demand_offsets_ages.items()},
        now=NOW,
        interval_s=INTERVAL,
    )
    assert picked == (None if expected is None else d(expected))


@pytest.mark.parametrize(
    ("distance", "recent", "expected"),
    [(0, False, 20.0), (0, True, 20.0), (1, False, 60.0), (1, True, 30.0), (3, False, 120.0)],
)
def test_target_period(distance: int, recent: bool, expected: float) -> None:
    assert target_period_s(distance, recent, INTERVAL) == expected


def test_every_slot_goes_somewhere_until_all_fresh() -> None:
    """Simulated slots: with three demanded dates, they and tomorrow are all fetched
    within the first four slots, and today is never left longer than its target plus
    the slots those never-fetched dates take first (three)."""
    fetched: dict[date, float] = {}
    demand = {d(0): NOW, d(2): NOW, d(5): NOW}
    now = NOW
    picks = []
    for _ in range(12):
        day = pick_date(today=TODAY, fetched_at=fetched, demand=demand, now=now, interval_s=10)
        if day is not None:
            fetched[day] = now
            picks.append(day)
        now += 10.5
        demand = dict.fromkeys(demand, now)
        assert now - fetched.get(d(0), now) <= 2 * 10 + 10.5 * 3
    assert set(picks[:4]) == {d(0), d(1), d(2), d(5)}
