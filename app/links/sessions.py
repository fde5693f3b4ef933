"""The viewing session a minted link opens (``MAX_STREAMS_PER_USER``): the session
to hand to the budget's admission, ended again when nothing was minted, and the
notice for sessions evicted to make room. The counting itself is the store's
(``app.ratelimit.sessions``)."""

from __future__ import annotations

import secrets
from collections.abc import Callable

from app.catalogue.snapshot import iso_utc
from app.links.background import BackgroundWrites
from app.observability.metrics import Metrics
from app.ratelimit.sessions import NewSession, SessionLimits, ViewingSessions
from app.store import StoreUnavailable


class LinkSessions:
    def __init__(
        self,
        sessions: ViewingSessions,
        limits: SessionLimits | None,
        metrics: Metrics,
        background: BackgroundWrites,
        *,
        clock: Callable[[], float],
    ) -> None:
        self._sessions = sessions
        self._limits = limits
        self._metrics = metrics
        self._background = background
        self._clock = clock

    def new(self, user_id: str, event_id: str, continued: str | None) -> NewSession | None:
        """The session the link will open, or ``continued`` (a renewal's own session,
        which goes on and is not counted again); None when sessions are not limited."""
        if self._limits is None:
            return None
        about: dict[str, object] = {"eventId": event_id, "startedAt": iso_utc(self._clock())}
        session_id = continued or secrets.token_urlsafe(16)
        return self._sessions.new(
            user_id, session_id, self._limits, about, continued=bool(continued)
        )

    def drop(self, user_id: str, session: NewSession | None) -> None:
        """Nothing was minted: end the session the attempt may have opened (a renewal's
        session goes on: its player still plays the link it has)."""
        if session is not None and not session.continued:
            self._background.start(self._end(user_id, session.session_id))

    def evicted(self, user_id: str, session_ids: tuple[str, ...]) -> None:
        """Tell the players of ``session_ids`` their sessions were ended for a new one."""
        self._background.start(self._announce_evicted(user_id, session_ids))

    async def _end(self, user_id: str, session_id: str) -> None:
        try:
            await self._sessions.end(user_id, session_id)
        except StoreUnavailable:
            self._metrics.redis_errors.labels("session_end").inc()

    async def _announce_evicted(self, user_id: str, session_ids: tuple[str, ...]) -> None:
        self._metrics.sessions_ended.labels("evicted").inc(len(session_ids))
        try:
            await self._sessions.announce(user_id, session_ids, "evicted")
        except StoreUnavailable:
            self._metrics.redis_errors.labels("session_announce").inc()
