"""LinkService: minting a viewer's link (``mint``), rules first, then one store round
trip, then the upstream.

For one request, in order:

1. the event from the catalogue's index (memory), status rule (only ``O`` proceeds);
2. the redirect URL rule, the stream's existence (memory once the streams are cached),
   the geo rule against the event's and the stream's lists (``rules``), and the
   operator's watch rules;
3. the fleet link budget (``budget``): ONE store round trip for dedupe, the per-user
   limit, the viewer's sessions and the budget;
4. the upstream calls and the answer (``minting``).

``play_ladder`` (``play``) walks a device's ladder over the same stages.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from app.catalogue.index import IndexedEvent
from app.catalogue.service import event_not_found
from app.errors import GatewayError
from app.identity.auth import Principal
from app.links.background import BackgroundWrites
from app.links.ladder import LinkKind, PlayStep
from app.links.minting import LinkMinter, LinkRequest, Minted
from app.links.rules import (
    REFUSAL_REASONS,
    Candidate,
    LinkRules,
    Viewer,
    check_step,
    event_refusal,
    pending_refusal,
)
from app.links.sessions import LinkSessions, SessionRef
from app.observability.metrics import Metrics
from app.upstream.models import Event, Stream
from app.watch.rules import WatchRules


class EventSource(Protocol):
    """Where the events and their streams come from (the ``Catalogue``)."""

    async def find_event(self, event_id: str) -> IndexedEvent | None: ...

    async def event_streams(self, event_id: str) -> tuple[Stream, ...]: ...

    async def pending_retry_after(self, event: Event) -> float: ...


class LinkService:
    def __init__(
        self,
        *,
        catalogue: EventSource,
        rules: LinkRules,
        watch: WatchRules,
        minter: LinkMinter,
        sessions: LinkSessions,
        background: BackgroundWrites,
        metrics: Metrics,
        clock: Callable[[], float],
    ) -> None:
        """``clock``: epoch seconds (the status rule's now)."""
        self._catalogue = catalogue
        self.rules = rules
        self._watch = watch
        self._minter = minter
        self._sessions = sessions
        self._background = background
        self._metrics = metrics
        self._clock = clock

    async def mint(
        self,
        *,
        principal: Principal,
        viewer: Viewer,
        event_id: str,
        stream_name: str,
        kind: LinkKind,
        redirect_url: str | None,
        session_id: str | None = None,
    ) -> Minted:
        """``session_id``: renewing the link of this viewing session (it goes on)."""
        event = await self.open_event(event_id)
        streams = await self.event_streams(event_id)
        step = PlayStep(stream_name, kind)
        checked = check_step(self.rules, event, streams, step, viewer, redirect_url)
        if isinstance(checked, GatewayError):
            self.count_refusal(REFUSAL_REASONS[checked.code])
            raise checked
        await self.watch_allows(principal, viewer, event, checked)
        session = self.new_session(principal, event_id, session_id)
        request = LinkRequest(principal, viewer, event_id)
        try:
            return await self.mint_candidate(request, checked, session)
        except GatewayError:
            self.drop_session(principal, session)
            raise

    async def close(self) -> None:
        """Let the answers and session ends still being stored finish (at shutdown)."""
        await self._background.close()

    # --- the stages of one mint (also walked by the ladder) ----------------------

    async def open_event(self, event_id: str) -> Event:
        """The event, if its status lets links be minted (else a refusal)."""
        found = await self._catalogue.find_event(event_id)
        if found is None:
            self.count_refusal("status")
            raise event_not_found(event_id)
        refusal = event_refusal(event_id, found.event, self._clock())
        if refusal is not None:
            self.count_refusal("status")
            if refusal.code == "event_pending":  # ask again when the status can change
                refusal.retry_after_s = await self._catalogue.pending_retry_after(found.event)
            raise refusal
        return found.event

    async def event_streams(self, event_id: str) -> tuple[Stream, ...]:
        return await self._catalogue.event_streams(event_id)

    async def watch_allows(
        self, principal: Principal, viewer: Viewer, event: Event, candidate: Candidate
    ) -> None:
        try:
            await self._watch.check(
                principal,
                event_id=event.event_id,
                sport_code=event.sport_code,
                stream_name=candidate.stream.name,
                country=viewer.location.country,
            )
        except GatewayError:
            self.count_refusal("watch_rule")
            raise

    def new_session(self, principal: Principal, event_id: str, continued: str | None) -> SessionRef:
        return self._sessions.new(principal.user_id, event_id, continued)

    def drop_session(self, principal: Principal, session: SessionRef) -> None:
        self._sessions.drop(principal.user_id, session)

    async def mint_candidate(
        self, request: LinkRequest, candidate: Candidate, session: SessionRef
    ) -> Minted:
        try:
            return await self._minter.mint(request, candidate, session)
        except GatewayError as exc:
            if exc.code != "event_pending":
                raise
            raise await self._upstream_pending(request.event_id, exc) from None

    async def _upstream_pending(self, event_id: str, refused: GatewayError) -> GatewayError:
        """ONEPlatform's 402 for an event the local rule let through (its start has
        passed, it is still pending there): the local rule's 409, with its start time
        and when to ask again."""
        found = await self._catalogue.find_event(event_id)
        if found is None:
            return refused
        refusal = pending_refusal(event_id, found.event)
        refusal.retry_after_s = await self._catalogue.pending_retry_after(found.event)
        return refusal

    def count_refusal(self, reason: str) -> None:
        self._metrics.refusals.labels(reason).inc()
