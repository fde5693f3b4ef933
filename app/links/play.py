"""The play ladder: mint the first step of a device's ladder that the rules allow.

Steps the local rules refuse cost no upstream call. When the upstream refuses the
step chosen for this viewer (``VIEWER_REFUSAL_CODES``: 306, it places the viewer
elsewhere; 304, no such stream), the next is tried, with at most ``MAX_PLAY_MINTS``
mint attempts in all. Every step refused: the first step's problem, with ``tried``
(each step and the code that refused it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from app.errors import GatewayError
from app.identity.auth import Principal
from app.links.ladder import PlayStep, candidates
from app.links.minting import LinkRequest, Minted
from app.links.rules import REFUSAL_REASONS, Candidate, Viewer, check_step, no_stream

if TYPE_CHECKING:
    from app.links.service import LinkService

# A play request makes at most this many mint attempts upstream.
MAX_PLAY_MINTS = 2
# Upstream refusals that concern the chosen stream for this viewer (306: geo, 304: no
# such stream), after which a play request may try its next step.
VIEWER_REFUSAL_CODES = frozenset({304, 306})


@dataclass(frozen=True, slots=True)
class Tried:
    """A ladder step that was refused, and the problem code that refused it."""

    step: PlayStep
    code: str

    def as_json(self) -> dict[str, str]:
        return {"streamName": self.step.stream_name, "kind": self.step.kind, "code": self.code}


@dataclass(frozen=True, slots=True)
class Played:
    minted: Minted
    step: PlayStep


async def play_ladder(
    links: LinkService,
    *,
    principal: Principal,
    viewer: Viewer,
    event_id: str,
    ladder: tuple[PlayStep, ...],
    ull: bool,
    redirect_url: str | None,
    session_id: str | None = None,
) -> Played:
    """The first step of ``ladder`` the rules and the upstream allow, over the link
    service's stages (``session_id``: renewing the link of this viewing session)."""
    try:
        event = await links.open_event(event_id)
    except GatewayError as exc:
        steps = candidates(ladder, ull=ull, stream_names=None)
        raise with_tried(exc, [Tried(step, exc.code) for step in steps]) from None
    streams = await links.event_streams(event_id)
    steps = candidates(ladder, ull=ull, stream_names=[s.name for s in streams])
    tried: list[Tried] = []
    first: GatewayError | None = None
    attempts = 0
    session = links.new_session(principal, event_id, session_id)  # one for every attempt
    request = LinkRequest(principal, viewer, event_id)
    for step in steps:
        checked = check_step(links.rules, event, streams, step, viewer, redirect_url)
        if isinstance(checked, Candidate):
            if attempts == 0:  # per user and event: checked once, for the first
                try:
                    await links.watch_allows(principal, viewer, event, checked)
                except GatewayError as exc:
                    raise with_tried(exc, [*tried, Tried(step, exc.code)]) from None
            attempts += 1
            try:
                minted = await links.mint_candidate(request, checked, session)
            except GatewayError as exc:
                if exc.operation_code not in VIEWER_REFUSAL_CODES:
                    links.drop_session(principal, session)
                    raise with_tried(exc, [*tried, Tried(step, exc.code)]) from None
                checked = exc
            else:
                return Played(minted, step)
        tried.append(Tried(step, checked.code))
        first = first or checked
        if attempts >= MAX_PLAY_MINTS:
            break
    links.drop_session(principal, session)
    if first is None:  # an empty ladder for this event: ULL only, and no ULL
        first = no_stream()
    links.count_refusal(REFUSAL_REASONS.get(first.code, "stream"))
    raise with_tried(first, tried)


def with_tried(error: GatewayError, tried: list[Tried]) -> GatewayError:
    """``error`` with the play steps tried and why each was refused."""
    return GatewayError(
        error.status,
        error.code,
        error.title,
        error.detail,
        operation_code=error.operation_code,
        retry_after_s=error.retry_after_s,
        extra={**error.extra, "tried": [t.as_json() for t in tried]},
        headers=error.headers,
    )
