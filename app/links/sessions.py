"""The viewing session a minted link opens (``MAX_STREAMS_PER_USER``): the session
to hand to the budget's admission, ended again when nothing was minted, and the
notice for sessions evicted to make room. The counting itself is the store's
(``app.ratelimit.sessions``): a session belongs to one user, event and stream, and a
renewal naming any other session (another event's, or an unknown one) opens a new,
counted one."""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Callable
from dataclasses import dataclass

import orjson

from app.catalogue.snapshot import iso_utc
from app.links.background import BackgroundWrites
from app.observability.metrics import Metrics
from app.ratelimit.sessions import NewSession, SessionLimits, ViewingSessions
from app.store import StoreUnavailable


@dataclass(slots=True)
class SessionRef:
    """The session one request asks the admission for (None: sessions are not
    limited), and whether the request opened it: then it is ended again if nothing
    is minted. A play request's attempts share one."""

    session: NewSession | None
    opened: bool = False

    def for_stream(self, event_id: str, stream_name: str, now: float) -> NewSession | None:
        """The session asked for, described as this event's and stream's."""
        if self.session is None:
            return None
        about = {"eventId": event_id, "streamName": stream_name, "startedAt": iso_utc(now)}
        return dataclasses.replace(self.session, about=orjson.dumps(about))

    def admitted(self, asked: NewSession, session_id: str) -> None:
        """The store opened or continued ``session_id`` for ``asked``: a later attempt
        of this request continues it."""
        if not asked.continued or session_id != asked.session_id:
            self.opened = True  # not the renewal's own session: this request's
        self.session = dataclasses.replace(asked, session_id=session_id, own=True)


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

    @property
    def limits(self) -> SessionLimits | None:
        return self._limits

    def new(self, user_id: str, event_id: str, continued: str | None) -> SessionRef:
        """The session the link will open, or ``continued`` (a renewal's own session,
        which goes on and is not counted again, if it is this user's for the same event
        and stream); no session when sessions are not limited."""
        if self._limits is None:
            return SessionRef(None)
        about: dict[str, object] = {"eventId": event_id, "startedAt": iso_utc(self._clock())}
        fresh_id = secrets.token_urlsafe(16)
        return SessionRef(
            self._sessions.new(
                user_id,
                continued or fresh_id,
                self._limits,
                about,
                continued=bool(continued),
                fresh_id=fresh_id,
            )
        )

    def drop(self, user_id: str, ref: SessionRef) -> None:
        """Nothing was minted: end the session the request opened (a renewal's session
        goes on: its player still plays the link it has)."""
        if ref.session is not None and ref.opened:
            self._background.start(self._end(user_id, ref.session.session_id))

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
