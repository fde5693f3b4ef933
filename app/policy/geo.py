"""Whether a viewer may watch, judged by the event's and the stream's geo lists.

The lists are normalised ISO 3166 codes (``app.policy.countries``): countries
(``US``) and subdivisions (``US-NJ``). The rules, in order:

1. The event's lists are checked before the stream's; within each, block before allow.
2. A block entry that matches the viewer refuses, whatever any allow list says.
3. An empty allow list admits everyone; a non-empty one admits only viewers it matches.
4. ``US`` matches a viewer in the US, wherever in it; ``US-NJ`` matches a viewer whose
   subdivision is known to be ``US-NJ``.
5. When the viewer's subdivision is unknown, a ``US-NJ`` block entry refuses any US
   viewer (a rights-holder's block must hold), but a ``US-NJ`` allow entry admits no one.
6. A viewer whose country is unknown is never blocked, and passes a non-empty allow
   list only when ``unknown_allowed``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal


@dataclass(frozen=True, slots=True)
class ViewerLocation:
    """Where the viewer is: ``country`` like ``"US"``, ``subdivision`` like ``"US-NJ"``."""

    country: str | None
    subdivision: str | None
    source: Literal["header", "geoip", "unknown"]


UNKNOWN_LOCATION = ViewerLocation(country=None, subdivision=None, source="unknown")


class GeoReason(StrEnum):
    ALLOWED = "allowed"
    EVENT_BLOCKED = "event_blocked"
    EVENT_NOT_ALLOWED = "event_not_allowed"
    STREAM_BLOCKED = "stream_blocked"
    STREAM_NOT_ALLOWED = "stream_not_allowed"
    COUNTRY_UNKNOWN = "country_unknown"


@dataclass(frozen=True, slots=True)
class GeoVerdict:
    allowed: bool
    reason: GeoReason


ALLOWED = GeoVerdict(allowed=True, reason=GeoReason.ALLOWED)


def _entry_country(entry: str) -> str:
    return entry.partition("-")[0]


def _matches(entry: str, viewer: ViewerLocation, *, blocking: bool) -> bool:
    """Whether one list entry covers the viewer (the viewer's country is known)."""
    if "-" not in entry:
        return entry == viewer.country
    if viewer.subdivision is not None:
        return entry == viewer.subdivision
    # Subdivision unknown: a block of part of the country holds for the whole country.
    return blocking and _entry_country(entry) == viewer.country


def _blocked(viewer: ViewerLocation, block: Sequence[str]) -> bool:
    if viewer.country is None:
        return False
    return any(_matches(entry, viewer, blocking=True) for entry in block)


def _admitted(viewer: ViewerLocation, allow: Sequence[str], unknown_allowed: bool) -> bool:
    if not allow:
        return True
    if viewer.country is None:
        return unknown_allowed
    return any(_matches(entry, viewer, blocking=False) for entry in allow)


def geo_verdict(
    viewer: ViewerLocation,
    *,
    event_allow: Sequence[str],
    event_block: Sequence[str],
    stream_allow: Sequence[str],
    stream_block: Sequence[str],
    unknown_allowed: bool,
) -> GeoVerdict:
    """The verdict for ``viewer`` under the event's and then the stream's lists."""
    for allow, block, blocked_reason, not_allowed_reason in (
        (event_allow, event_block, GeoReason.EVENT_BLOCKED, GeoReason.EVENT_NOT_ALLOWED),
        (stream_allow, stream_block, GeoReason.STREAM_BLOCKED, GeoReason.STREAM_NOT_ALLOWED),
    ):
        if _blocked(viewer, block):
            return GeoVerdict(allowed=False, reason=blocked_reason)
        if not _admitted(viewer, allow, unknown_allowed):
            reason = GeoReason.COUNTRY_UNKNOWN if viewer.country is None else not_allowed_reason
            return GeoVerdict(allowed=False, reason=reason)
    return ALLOWED
