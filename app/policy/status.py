"""Whether a stream link may be minted for an event, judged by its cached status code.

ONEPlatform's ``eventStatusCode``: ``P`` pending (still to begin), ``O`` open (in
progress), ``C`` closed (over), ``V`` void (cancelled). The route maps the verdict to
HTTP (pending 409, closed/void 410, unknown 404); this module only decides.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum


class StatusVerdict(StrEnum):
    PROCEED = "proceed"
    PENDING = "pending"
    CLOSED = "closed"
    VOID = "void"
    UNKNOWN = "unknown"


def _aware(moment: datetime) -> datetime:
    """Naive times are UTC, as everywhere in the upstream guide."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def status_verdict(status: str | None, start_time: datetime | None, now: datetime) -> StatusVerdict:
    """The verdict for an event whose cached status is ``status`` (None: never seen).

    A pending event whose start time has passed is let through: the cached status is
    stale and the upstream, asked for the link, has the last word.
    """
    if status is None:
        return StatusVerdict.UNKNOWN
    code = status.strip().upper()
    if code == "O":
        return StatusVerdict.PROCEED
    if code == "P":
        if start_time is not None and _aware(start_time) <= _aware(now):
            return StatusVerdict.PROCEED
        return StatusVerdict.PENDING
    if code == "C":
        return StatusVerdict.CLOSED
    if code == "V":
        return StatusVerdict.VOID
    return StatusVerdict.UNKNOWN


def pending_retry_after_s(
    start_time: datetime | None, now: datetime, *, next_list_in_s: float, near_s: float
) -> float:
    """Seconds until a client should ask again about a pending event.

    Its status can change with the next open list once the start is near (within
    ``near_s``), past or unknown: then that list's arrival, ``next_list_in_s``. Before
    that, the moment the start comes within ``near_s``, if that is later.
    """
    if start_time is None:
        return next_list_in_s
    until_near = (_aware(start_time) - _aware(now)).total_seconds() - near_s
    return max(until_near, next_list_in_s)
