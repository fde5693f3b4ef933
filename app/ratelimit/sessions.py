"""ViewingSessions: how many streams a user is watching, for the whole fleet.

A minted link opens a session (in the admission script, in the same round trip as
the link budget: ``admission.lua``); a heartbeat keeps it alive for
``SESSION_TTL_S``; the player ends it when playback stops; a session not renewed in
time expires. Per user, one sorted set (session id -> expiry, Redis's clock) and one
hash (session id -> what it is), both under the link hash tag, keyed by a digest of
the user id (no raw user id reaches Redis).

Errors::

    StoreUnavailable      the store could not answer (from app.store)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

import orjson

from app.ratelimit.scripts import StoreScript, as_int, as_text, guarded, ms
from app.store import Store

LimitPolicy = Literal["refuse", "evict_oldest"]


@dataclass(frozen=True, slots=True)
class SessionLimits:
    max_per_user: int
    ttl_s: float
    policy: LimitPolicy


@dataclass(frozen=True, slots=True)
class NewSession:
    """What the admission script needs to open a session for a link being minted.

    ``session_id`` is the session asked for (a renewal's) or a new one; the script
    continues it only if it is this user's, for the same event and stream (``about``
    holds ``eventId`` and ``streamName``), else opens ``fresh_id``. ``own``: a session
    this request opened itself on an earlier attempt (a play request moving on to its
    next stream)."""

    session_id: str
    keys: tuple[str, str]
    limits: SessionLimits
    about: bytes  # JSON: eventId, streamName, startedAt
    continued: bool = False  # asked for as a renewal's session
    fresh_id: str = ""
    own: bool = False


@dataclass(frozen=True, slots=True)
class SessionInfo:
    session_id: str
    expires_at_ms: int
    about: dict[str, object]


class ViewingSessions:
    def __init__(self, redis: Store, prefix: str = "igm") -> None:
        self._redis = redis
        self._tag = f"{{{prefix}:link}}"
        self.channel = f"{prefix}:sessions"
        self._touch = StoreScript(redis, "session_touch.lua")

    @staticmethod
    def user_digest(user_id: str) -> str:
        return hashlib.sha256(user_id.encode("utf-8", "surrogatepass")).hexdigest()

    def keys(self, user_id: str) -> tuple[str, str]:
        digest = self.user_digest(user_id)
        return f"{self._tag}:sessions:{digest}", f"{self._tag}:sessions-meta:{digest}"

    async def announce(self, user_id: str, session_ids: tuple[str, ...], reason: str) -> None:
        """Tell every replica (``channel``) that these sessions ended, so the players
        watching the live channel stop."""
        message = orjson.dumps(
            {"user": self.user_digest(user_id), "sessionIds": list(session_ids), "reason": reason}
        )
        await guarded("session announce", self._redis.publish(self.channel, message))

    def new(
        self,
        user_id: str,
        session_id: str,
        limits: SessionLimits,
        about: dict[str, object],
        *,
        continued: bool = False,
        fresh_id: str | None = None,
    ) -> NewSession:
        return NewSession(
            session_id,
            self.keys(user_id),
            limits,
            orjson.dumps(about),
            continued=continued,
            fresh_id=fresh_id or session_id,
        )

    async def touch(self, user_id: str, session_id: str, ttl_s: float) -> int | None:
        """Renew the user's session; its new expiry (epoch ms), or None if it is gone."""
        reply = as_int(await self._touch(self.keys(user_id), [session_id, ms(ttl_s)]))
        return reply or None

    async def end(self, user_id: str, session_id: str) -> bool:
        """End the user's session; False if it was not there."""
        live, meta = self.keys(user_id)
        # One round trip, no MULTI (Redis Cluster pipelines have none); a crash between
        # the two leaves at most a description without a session.
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zrem(live, session_id)
            pipe.hdel(meta, session_id)
            removed, _ = await guarded("session end", pipe.execute())
        return as_int(removed) == 1

    async def of_user(self, user_id: str) -> list[SessionInfo]:
        """The user's sessions (expired ones included until the next admission drops
        them; ``expires_at_ms`` says which)."""
        live, meta = self.keys(user_id)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zrange(live, 0, -1, withscores=True)
            pipe.hgetall(meta)
            members, abouts = await guarded("session list", pipe.execute())
        about = {as_text(k): v for k, v in abouts.items()}
        return [
            SessionInfo(
                as_text(member), int(score), orjson.loads(about.get(as_text(member), b"{}"))
            )
            for member, score in members
        ]
