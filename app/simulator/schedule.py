"""The schedule the simulator answers from: generated days, or a loaded scenario.

A scenario replaces the generated schedule until reset. Its events keep the fields they
were given; an event is listed on its ``startTime``'s date (read leniently), or on every
date when that time cannot be read. A given ``eventStatusCode`` (P/O/C/V) is kept as is;
without one the status follows the clock (P while the start cannot be read). An event
with no entry in the scenario's ``streams`` gets one plain HLS stream; an explicit empty
list means no streams.

Pinned statuses (``/_sim/events/{id}/status``) beat both.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from app.simulator.events import (
    STATUSES,
    SimEvent,
    SimStream,
    casing_flag,
    read_guide_time,
)
from app.simulator.generator import default_hls_stream, find_generated, generate_day


class ScenarioError(ValueError):
    """A scenario event or stream lacks what the simulator needs to serve it."""


@dataclass(frozen=True, slots=True)
class Scenario:
    events: tuple[SimEvent, ...]

    def find(self, event_id: str) -> SimEvent | None:
        return next((e for e in self.events if e.event_id == event_id), None)


def _text(value: object) -> str:
    return "" if value is None else str(value)


def _scenario_stream(raw: Mapping[str, object]) -> SimStream:
    name = _text(raw.get("uniqueStreamName")).strip()
    if not name:
        raise ScenarioError("every scenario stream needs a uniqueStreamName")
    return SimStream(
        name=name,
        is_ull=_text(raw.get("streamType")).strip().upper() == "ULL",
        geo_allow=_text(raw.get("geoCountryAllow")),
        geo_block=_text(raw.get("geoCountryBlock")),
        wire=dict(raw),
    )


def _event_id(raw: Mapping[str, object]) -> str:
    event_id = _text(raw.get("eventId")).strip()
    if event_id:
        return event_id
    location, number = _text(raw.get("locationCode")), _text(raw.get("eventNumber"))
    if not location or not number:
        raise ScenarioError("a scenario event needs an eventId (or locationCode and eventNumber)")
    return f"{location}-{number}"


def _scenario_event(
    seed: int, raw: Mapping[str, object], streams: Sequence[Mapping[str, object]] | None
) -> SimEvent:
    event_id = _event_id(raw)
    start = read_guide_time(raw.get("startTime"))
    status = _text(raw.get("eventStatusCode")).strip().upper()
    wire = dict(raw)
    wire["eventId"] = event_id
    return SimEvent(
        event_id=event_id,
        wire=wire,
        start=start,
        end=read_guide_time(raw.get("estimatedEndTime")),
        day=None if start is None else start.date(),
        fixed_status=status if status in STATUSES else None,
        streams=(
            (default_hls_stream(),)
            if streams is None
            else tuple(_scenario_stream(s) for s in streams)
        ),
        geo_allow=_text(raw.get("geoAllow")),
        geo_block=_text(raw.get("geoBlock")),
        pascal_streams_key=casing_flag(seed, event_id, "streams"),
        pascal_link=casing_flag(seed, event_id, "link"),
    )


def build_scenario(
    seed: int,
    events: Sequence[Mapping[str, object]],
    streams: Mapping[str, Sequence[Mapping[str, object]]],
) -> Scenario:
    """Guide-shaped event and stream objects as a scenario; raises ScenarioError."""
    return Scenario(
        events=tuple(_scenario_event(seed, raw, streams.get(_event_id(raw))) for raw in events)
    )


class Schedule:
    """Generated days or a scenario, plus pinned statuses."""

    def __init__(self, seed: int) -> None:
        self._seed = seed
        self._scenario: Scenario | None = None
        self._pins: dict[str, str] = {}

    def load_scenario(self, scenario: Scenario) -> None:
        self._scenario = scenario

    def reset(self) -> None:
        self._scenario = None
        self._pins.clear()

    def find(self, event_id: str) -> SimEvent | None:
        if self._scenario is not None:
            return self._scenario.find(event_id)
        return find_generated(self._seed, event_id)

    def pin(self, event_id: str, status: str) -> bool:
        """Pin an event's status; False when there is no such event."""
        if self.find(event_id) is None:
            return False
        self._pins[event_id] = status
        return True

    def status_of(self, event: SimEvent, now: datetime) -> str:
        return self._pins.get(event.event_id) or event.status_at(now)

    def events_on(self, day: date) -> list[SimEvent]:
        if self._scenario is not None:
            return [e for e in self._scenario.events if e.day is None or e.day == day]
        return list(generate_day(self._seed, day))

    def open_events(self, now: datetime) -> list[SimEvent]:
        """Events whose status is O at ``now``."""
        if self._scenario is not None:
            candidates = list(self._scenario.events)
        else:
            today = now.date()
            candidates = self.events_on(today - timedelta(days=1)) + self.events_on(today)
        pinned = (self.find(event_id) for event_id in self._pins)
        candidates += [e for e in pinned if e is not None]
        seen: set[str] = set()
        result: list[SimEvent] = []
        for event in candidates:
            if event.event_id not in seen and self.status_of(event, now) == "O":
                seen.add(event.event_id)
                result.append(event)
        return result
