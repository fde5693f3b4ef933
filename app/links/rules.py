"""The local rules for one link: pure checks over the event, its streams, the viewer
and ``now``, each returning a verdict. Nothing here calls the store or the upstream,
so a refusal decided here never spends upstream budget.

- ``event_refusal``: only an event in progress (``O``) gets links; pending (``P``),
  closed (``C``) and void (``V``) events are refused with 409/410 (``pending_refusal``
  is the 409, also what ONEPlatform's 402 becomes).
- ``check_step``: the redirect URL, the stream's existence (names compared
  case-insensitively) and the event's and the stream's geo lists, for one play step;
  a ``Candidate`` ready to mint, or the ``GatewayError`` that refuses it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from ipaddress import IPv4Address, IPv6Address

from app.catalogue.service import event_not_found
from app.errors import GatewayError, problem
from app.links.ladder import PlayStep
from app.policy.geo import ViewerLocation, geo_verdict
from app.policy.redirect import redirect_verdict
from app.policy.status import StatusVerdict, status_verdict
from app.upstream.models import Event, Stream

# The refusal metric's reason for each local refusal code.
REFUSAL_REASONS = {
    "invalid_redirect_url": "redirect",
    "stream_not_found": "stream",
    "geo_blocked": "geo",
}


@dataclass(frozen=True, slots=True)
class Viewer:
    ip: IPv4Address | IPv6Address
    location: ViewerLocation


@dataclass(frozen=True, slots=True)
class LinkRules:
    default_redirect_url: str | None
    redirect_allowed_hosts: tuple[str, ...]
    unknown_country_allowed: bool


@dataclass(frozen=True, slots=True)
class Candidate:
    """A play step that passed the local rules: ready to mint."""

    step: PlayStep
    stream: Stream
    redirect: str


# verdict -> (the problem's code, what the event did, in words)
_STATUS_PROBLEMS: dict[StatusVerdict, tuple[str, str]] = {
    StatusVerdict.PENDING: ("event_pending", "has not started"),
    StatusVerdict.CLOSED: ("event_closed", "is over"),
    StatusVerdict.VOID: ("event_cancelled", "was cancelled"),
}


def event_refusal(event_id: str, event: Event, now_s: float) -> GatewayError | None:
    """Why no link may be minted for ``event`` (asked for as ``event_id``) at ``now_s``
    (epoch seconds), or None."""
    verdict = status_verdict(
        event.event_status_code or None,
        event.start_time,
        datetime.fromtimestamp(now_s, UTC),
    )
    if verdict is StatusVerdict.PROCEED:
        return None
    if verdict is StatusVerdict.UNKNOWN:
        return event_not_found(event_id)
    if verdict is StatusVerdict.PENDING:
        return pending_refusal(event_id, event)
    code, words = _STATUS_PROBLEMS[verdict]
    return problem(code, _status_detail(words, event.event_status_code))


def pending_refusal(event_id: str, event: Event) -> GatewayError:
    """The 409 ``event_pending`` for ``event``, with its start time so the client knows
    when to ask again: the local rule's answer, and ONEPlatform's 402 for an event whose
    start has passed while it is still pending there."""
    code, words = _STATUS_PROBLEMS[StatusVerdict.PENDING]
    start = event.start_time
    return problem(
        code,
        _status_detail(words, "P"),
        extra={
            "eventId": event_id,
            "startTime": None if start is None else start.isoformat().replace("+00:00", "Z"),
        },
    )


def _status_detail(words: str, status: str) -> str:
    return f"The event {words} (status {status}); links are minted only for events in progress."


def check_step(
    rules: LinkRules,
    event: Event,
    streams: tuple[Stream, ...],
    step: PlayStep,
    viewer: Viewer,
    redirect_url: str | None,
) -> Candidate | GatewayError:
    """The redirect URL, the stream's existence and the geo lists, for one step."""
    redirect = redirect_verdict(
        redirect_url,
        default=rules.default_redirect_url,
        allowed_hosts=rules.redirect_allowed_hosts,
    )
    if redirect.url is None:
        return problem(
            "invalid_redirect_url",
            f"redirectUrl refused ({redirect.reason}): it must be an absolute http(s) "
            "URL on an allowed host.",
        )
    stream = find_stream(streams, step.stream_name)
    if stream is None:
        return no_stream()
    geo = geo_verdict(
        viewer.location,
        event_allow=event.geo_allow,
        event_block=event.geo_block,
        stream_allow=stream.geo_country_allow,
        stream_block=stream.geo_country_block,
        unknown_allowed=rules.unknown_country_allowed,
    )
    if not geo.allowed:
        where = viewer.location.subdivision or viewer.location.country or "unknown"
        return problem(
            "geo_blocked",
            f"This stream is not available in the viewer's region ({where}).",
            extra={"reason": geo.reason, "country": viewer.location.country},
        )
    return Candidate(step, stream, redirect.url)


def find_stream(streams: tuple[Stream, ...], name: str) -> Stream | None:
    """The stream named ``name``: an exact match first, else one differing in case."""
    for stream in streams:
        if stream.name == name:
            return stream
    folded = name.casefold()
    for stream in streams:
        if stream.name.casefold() == folded:
            return stream
    return None


def no_stream() -> GatewayError:
    return problem("stream_not_found")
