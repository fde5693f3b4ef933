"""Session notices from every replica, handed to this replica's live subscribers.

When a viewing session ends for someone else's reason (evicted by a newer one past
``MAX_STREAMS_PER_USER``, or ended by the operator), the replica that ended it
publishes a notice on the store's ``igm:sessions`` channel (``ViewingSessions
.announce``). Each replica listens with one subscription (not one per subscriber) and
passes the notice to the live feed, which tells that viewer's streams. A lost
connection is re-subscribed after a pause; notices sent meanwhile are lost (the
session is ended all the same: its heartbeats answer 404).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import orjson
import structlog

from app.live.feed import LiveFeed
from app.store import STORE_ERRORS, Store, honour_cancellation
from app.supervisor import Supervised, Supervisor

log = structlog.get_logger(__name__)

RESUBSCRIBE_S = 1.0


class SessionNotices:
    def __init__(
        self,
        store: Store,
        channel: str,
        feed: LiveFeed,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._store = store
        self._channel = channel
        self._feed = feed
        self._sleep = sleep
        self._supervisor: Supervisor | None = None
        self._task: Supervised | None = None

    def start(self, supervisor: Supervisor | None = None) -> None:
        """Listen under ``supervisor`` (the lifespan's; one of its own without it)."""
        self._supervisor = supervisor or Supervisor()
        self._task = self._supervisor.start("session-notices", self.run)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None and self._supervisor is not None:
            await self._supervisor.stop([task])

    async def run(self) -> None:
        while True:
            try:
                await self._listen()
            except STORE_ERRORS as exc:
                log.warning("session_notices_lost", error=type(exc).__name__)
            honour_cancellation()
            await self._sleep(RESUBSCRIBE_S)

    async def _listen(self) -> None:
        pubsub = self._store.pubsub()
        try:
            await pubsub.subscribe(self._channel)
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                honour_cancellation()
                if message is not None and message.get("type") == "message":
                    self.handle(message["data"])
        finally:
            await pubsub.aclose()

    def handle(self, data: bytes | str) -> None:
        try:
            notice = orjson.loads(data)
            user, ids, reason = notice["user"], notice["sessionIds"], notice["reason"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            log.warning("session_notice_unreadable")
            return
        if isinstance(user, str) and isinstance(ids, list) and isinstance(reason, str):
            self._feed.sessions_ended(user, [str(i) for i in ids], reason)
