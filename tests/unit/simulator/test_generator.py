from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest

from app.simulator.events import SimEvent, read_guide_time
from app.simulator.generator import (
    decode_event_number,
    event_number,
    find_generated,
    format_time,
    generate_day,
)
from app.simulator.sports import SPORT_CODES, SPORTS

DAYS = [date(2026, 11, 1) + timedelta(days=n) for n in range(60)]
EVENT_FIELDS = [
    "eventId",
    "locationCode",
    "locationName",
    "sportCode",
    "eventStatusCode",
    "eventNumber",
    "title",
    "startTime",
    "estimatedEndTime",
    "geoAllow",
    "geoBlock",
]


def _all_events() -> list[SimEvent]:
    return [event for day in DAYS for event in generate_day(3, day)]


def test_sport_table_is_the_guides() -> None:
    assert len(SPORTS) == 72
    assert len(SPORT_CODES) == 72
    assert ("HR", "Horse Racing") in SPORTS
    assert ("EC", "E-Sport Counter-Strike") in SPORTS
    assert ("WP", "Waterpolo") in SPORTS
    assert "TN" not in SPORT_CODES


@pytest.mark.parametrize("day", [date(2026, 11, 22), date(1999, 1, 1), date(2040, 2, 29)])
def test_a_day_is_deterministic_and_well_formed(day: date) -> None:
    events = generate_day(11, day)
    generate_day.cache_clear()
    assert generate_day(11, day) == events
    assert generate_day(12, day) != events
    assert 20 <= len(events) <= 40
    sports = {e.wire["sportCode"] for e in events}
    assert len(sports) >= 6
    assert sports <= SPORT_CODES
    for event in events:
        assert list(event.wire) == EVENT_FIELDS
        assert event.wire["eventId"] == f"{event.wire['locationCode']}-{event.wire['eventNumber']}"
        assert re.fullmatch(r"\d{3}[A-Z]{2,3}[A-Z]{2}\d{3}-\d+", event.event_id)
        assert event.start is not None
        assert event.end is not None
        assert event.start.date() == day
        assert event.start < event.end
        assert event.streams[0].name == "HLS"
        assert {s.name for s in event.streams} <= {"HLS", "ULL"}
        start = read_guide_time(event.wire["startTime"])
        assert start == event.start
    starts = [e.start for e in events if e.start is not None]
    assert starts == sorted(starts)
    assert starts[-1] - starts[0] > timedelta(hours=12)


def test_shares_of_quirks_over_sixty_days() -> None:
    events = _all_events()
    total = len(events)
    styles = Counter(_style(str(e.wire["startTime"])) for e in events)
    assert styles["plain"] > total / 2
    assert styles["z"] > 0
    assert styles["fraction"] > 0
    assert 0 < styles["malformed"] < total * 0.07
    ull = sum(any(s.is_ull for s in e.streams) for e in events)
    assert 0.15 < ull / total < 0.35
    void = sum(e.fixed_status == "V" for e in events)
    assert 0.02 < void / total < 0.09
    unrestricted = sum(not e.geo_allow and not e.geo_block for e in events)
    assert unrestricted > total / 2
    geo_forms = {e.geo_allow for e in events}
    assert {"GB,IE", "UK, US", "gb,ie"} <= geo_forms
    assert any("US-NJ" in form for form in geo_forms)
    assert any(s.geo_allow or s.geo_block for e in events for s in e.streams)
    assert Counter(e.pascal_streams_key for e in events).keys() == {True, False}
    assert Counter(e.pascal_link for e in events).keys() == {True, False}


def _style(text: str) -> str:
    if "T:" in text:
        return "malformed"
    if text.endswith("Z"):
        return "z"
    if "." in text:
        return "fraction"
    return "plain"


def test_status_moves_with_the_clock() -> None:
    event = next(e for e in generate_day(3, date(2026, 11, 22)) if e.fixed_status is None)
    assert event.start is not None
    assert event.end is not None
    second = timedelta(seconds=1)
    assert event.status_at(event.start - second) == "P"
    assert event.status_at(event.start) == "O"
    assert event.status_at(event.end - second) == "O"
    assert event.status_at(event.end) == "C"


def test_void_events_stay_void() -> None:
    void = next(e for e in _all_events() if e.fixed_status == "V")
    assert void.start is not None
    assert void.status_at(void.start + timedelta(minutes=1)) == "V"


def test_event_ids_lead_back_to_their_event_on_any_date() -> None:
    for day in (date(2026, 11, 22), date(2001, 5, 7), date(2099, 12, 31)):
        for event in generate_day(5, day):
            assert find_generated(5, event.event_id) == event
    event = generate_day(5, date(2026, 11, 22))[0]
    assert find_generated(6, event.event_id) is None
    assert find_generated(5, "013WOFT640-32325") is None
    assert find_generated(5, "no-number-x") is None
    assert find_generated(5, "") is None


def test_event_numbers_round_trip() -> None:
    assert decode_event_number(event_number(date(2026, 11, 22), 17)) == (date(2026, 11, 22), 17)
    assert decode_event_number("abc") is None
    assert decode_event_number("5") is None


@pytest.mark.parametrize(
    ("style", "expected"),
    [
        ("plain", "2026-11-22T14:30:00"),
        ("z", "2026-11-22T14:30:00Z"),
        ("fraction3", "2026-11-22T14:30:00.000"),
        ("fraction7", "2026-11-22T14:30:00.0000000"),
        ("malformed", "2026-11-22T:14:30:00"),
    ],
)
def test_time_formats(style: str, expected: str) -> None:
    moment = datetime(2026, 11, 22, 14, 30, tzinfo=UTC)
    assert format_time(moment, style) == expected
    assert read_guide_time(expected) == moment


@pytest.mark.parametrize("raw", ["", "soon", None, 5, "2026-13-01T00:00:00"])
def test_unreadable_times(raw: object) -> None:
    assert read_guide_time(raw) is None
