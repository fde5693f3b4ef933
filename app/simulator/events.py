"""What the simulator serves: events and their streams, with the guide's field names.

An event carries its wire fields exactly as they are served (odd time formats, geo
strings in varied forms) next to the true values the simulator reasons with: start and
end as aware UTC datetimes, the geo lists, and which key casing it answers with.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Final

STATUSES: Final = frozenset({"P", "O", "C", "V"})
DEFAULT_DURATION: Final = timedelta(hours=2)

JsonObject = dict[str, object]


@dataclass(frozen=True, slots=True)
class SimStream:
    """One stream of an event (``uniqueStreamName`` plus the guide's fields)."""

    name: str
    is_ull: bool
    geo_allow: str
    geo_block: str
    wire: Mapping[str, object]

    def to_wire(self) -> JsonObject:
        return dict(self.wire)


@dataclass(frozen=True, slots=True)
class SimEvent:
    """One event; ``fixed_status`` (void or given by a scenario) beats the clock."""

    event_id: str
    wire: Mapping[str, object]
    start: datetime | None
    end: datetime | None
    day: date | None
    fixed_status: str | None
    streams: tuple[SimStream, ...]
    geo_allow: str
    geo_block: str
    pascal_streams_key: bool
    pascal_link: bool

    def status_at(self, now: datetime) -> str:
        """P before the start, O until the estimated end, C after it."""
        if self.fixed_status is not None:
            return self.fixed_status
        if self.start is None:
            return "P"
        end = self.end if self.end is not None else self.start + DEFAULT_DURATION
        if now < self.start:
            return "P"
        return "O" if now < end else "C"

    def to_wire(self, status: str) -> JsonObject:
        """The event as served, with ``eventStatusCode`` set to ``status``."""
        body = dict(self.wire)
        body["eventStatusCode"] = status
        return body

    def stream(self, name: str) -> SimStream | None:
        """The stream called ``name`` (case-insensitive), if the event has one."""
        wanted = name.strip().casefold()
        return next((s for s in self.streams if s.name.casefold() == wanted), None)

    def streams_key(self) -> str:
        return "EventStreams" if self.pascal_streams_key else "eventStreams"


def casing_flag(seed: int, event_id: str, salt: str) -> bool:
    """A stable coin flip per event (not Python's salted ``hash``)."""
    return zlib.crc32(f"{seed}:{salt}:{event_id}".encode()) % 2 == 1


_LONG_FRACTION = re.compile(r"(\.\d{6})\d+")


def read_guide_time(raw: object) -> datetime | None:
    """Read a guide time leniently (``T:`` typo, ``Z``, long fractions); naive is UTC."""
    if not isinstance(raw, str) or not raw.strip():
        return None
    text = raw.strip().replace("T:", "T")
    if text[-1] in "Zz":
        text = text[:-1] + "+00:00"
    text = _LONG_FRACTION.sub(r"\1", text)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
