"""LinkAdmission: the single Redis round trip a link request makes before the upstream.

One script (``admission.lua``) does, atomically and in this order:

1. dedupe: an identical request within the dedupe window gets the stored answer;
2. per-user limit: a token bucket per user, no waiting;
3. viewing sessions: a session asked for is continued only if it is this user's, for
   the same event and stream; anything else is a new session, and counted;
4. the fleet's line for the link budget: the request gets the next slot of the
   budget's schedule, in arrival order. A slot within ``hold_ms`` is waited for by
   the caller (``wait_s``); a later one becomes the viewer's place in the line, kept
   when the viewer comes back (``queued``), given up ``grace_ms`` after its slot.
   A renewal (the viewer's current link is unexpired: ``remember``) that can come
   back after the line and still have ``lead_ms`` before its link expires is told
   to (``deferred``); one that cannot uses a small renewal lane of the budget.

Buckets are GCRA cells (one theoretical-arrival-time per key) timed by Redis's
``TIME``; idle keys expire once their bucket is full again. Keys share the hash
tag ``{<prefix>:link}``. Logical keys are hashed again here, so whatever a caller
passes, no raw user id reaches Redis.

Errors::

    StoreUnavailable      the store could not answer (from app.store)
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from app.ratelimit.line import LinePolicy
from app.ratelimit.scripts import StoreScript, as_int, as_text, guarded, ms
from app.ratelimit.sessions import NewSession
from app.store import Store

Outcome = Literal["cached", "user_limited", "too_many_streams", "deferred", "queued", "admitted"]


@dataclass(frozen=True, slots=True)
class Admission:
    """The verdict for one link request.

    ``cached``: ``cached`` holds the stored answer. ``user_limited`` and
    ``too_many_streams``: ``retry_after_s`` > 0, nothing consumed. ``deferred``: a
    renewal that can wait, come back in ``retry_after_s``. ``queued``: the viewer's
    place is ``eta_s`` away (``position`` th), come back in ``retry_after_s``.
    ``admitted``: sleep ``wait_s`` before calling the upstream; ``tokens_left`` is the
    smallest token count left among the main lane's cells (floored, negative when
    reserved ahead); ``session_id``: the session the link opens or continues;
    ``evicted``: the sessions ended to make room for it. ``line_length``: places in
    the line; ``given_up``: places this decision found unclaimed past their grace;
    ``in_line_s``: how long ago the place this request claimed was taken.
    """

    outcome: Outcome
    cached: bytes | None = None
    wait_s: float = 0.0
    retry_after_s: float = 0.0
    eta_s: float = 0.0
    position: int = 0
    tokens_left: float | None = None
    line_length: int = 0
    given_up: int = 0
    in_line_s: float = 0.0
    session_id: str | None = None
    evicted: tuple[str, ...] = ()


def _digest(logical_key: str) -> str:
    return hashlib.sha256(logical_key.encode("utf-8", "surrogatepass")).hexdigest()


class LinkAdmission:
    def __init__(self, redis: Store, prefix: str = "igm") -> None:
        self._redis = redis
        self._tag = f"{{{prefix}:link}}"
        self._admit = StoreScript(redis, "admission.lua")
        self._tokens = StoreScript(redis, "bucket_tokens.lua")
        self._keep_place = StoreScript(redis, "line_keep_place.lua")
        self.unused_session_keys = (f"{self._tag}:sessions:-", f"{self._tag}:sessions-meta:-")
        self.line_key = f"{self._tag}:line"
        self.line_since_key = f"{self._tag}:line-since"

    def dedupe_key(self, dedupe_key: str) -> str:
        return f"{self._tag}:dedupe:{_digest(dedupe_key)}"

    def user_key(self, user_key: str) -> str:
        return f"{self._tag}:user:{_digest(user_key)}"

    def current_key(self, viewer_key: str) -> str:
        return f"{self._tag}:current:{_digest(viewer_key)}"

    def bucket_key(self, method: str) -> str:
        return f"{self._tag}:bucket:{method}"

    def renewal_key(self, method: str) -> str:
        return f"{self._tag}:renewal:{method}"

    async def admit(
        self,
        *,
        dedupe_key: str,
        user_key: str,
        viewer_key: str,
        methods: Sequence[str],
        line: LinePolicy,
        user_rate_per_s: float,
        user_burst: int,
        session: NewSession | None = None,
    ) -> Admission:
        """``viewer_key``: who keeps a place in the line (the authenticated user, the
        event, the stream and the kind)."""
        if not methods or len(set(methods)) != len(methods):
            raise ValueError("methods must be one or more distinct method names")
        if line.main_rate_per_s <= 0 or line.renewal_rate_per_s < 0 or user_rate_per_s <= 0:
            raise ValueError("rates must be positive")
        if line.burst < 1 or user_burst < 1:
            raise ValueError("bursts must be at least 1")
        if line.hold_s < 0:
            raise ValueError("the hold bound must not be negative")
        # Without a session the script never touches KEYS[3] and KEYS[4]; they are
        # still named (under the same tag) so the key layout is fixed.
        session_keys = session.keys if session else self.unused_session_keys
        keys = [
            self.dedupe_key(dedupe_key),
            self.user_key(user_key),
            *session_keys,
            self.line_key,
            self.line_since_key,
            self.current_key(viewer_key),
            *(self.bucket_key(m) for m in methods),
            *(self.renewal_key(m) for m in methods),
        ]
        args: list[str | int | float] = [
            line.main_rate_per_s,
            line.burst,
            user_rate_per_s,
            user_burst,
            round(line.hold_s * 1000),
        ]
        if session is None:
            args += ["", 0, 0, "refuse", ""]
        else:
            limits = session.limits
            args += [
                session.session_id,
                limits.max_per_user,
                ms(limits.ttl_s),
                limits.policy,
                session.about.decode(),
            ]
        args += [
            _digest(viewer_key),
            round(line.grace_s * 1000),
            line.renewal_rate_per_s,
            round(line.renewal_lead_s * 1000),
            session.fresh_id if session else "",
            "1" if session and session.own else "0",
            round(line.late_s * 1000),
        ]
        reply = await self._admit(keys, args)
        return _parse(reply)

    async def remember(
        self,
        dedupe_key: str,
        answer: bytes,
        window_s: float,
        *,
        viewer_key: str | None = None,
        expires_at_s: float = 0.0,
        expires_in_s: float = 0.0,
    ) -> None:
        """Store ``answer`` for identical requests arriving within ``window_s`` (none
        when 0), and that the viewer has a link until ``expires_at_s`` (epoch seconds,
        ``expires_in_s`` from now): its next request until then is a renewal."""
        async with self._redis.pipeline(transaction=False) as pipe:
            if window_s > 0:
                pipe.set(self.dedupe_key(dedupe_key), answer, px=ms(window_s))
            if viewer_key is not None and expires_in_s > 0:
                deadline_ms = round(expires_at_s * 1000)
                pipe.set(self.current_key(viewer_key), deadline_ms, px=ms(expires_in_s))
            await guarded("dedupe set", pipe.execute())

    async def keep_place(self, viewer_key: str, line: LinePolicy) -> None:
        """Give the viewer a place whose turn is now: a turn it was admitted to but
        could not take on time. Coming back within the grace period, it goes first."""
        keys = [self.line_key, self.line_since_key]
        await self._keep_place(keys, [_digest(viewer_key), ms(line.grace_s + 1)])

    async def tokens_left(self, method: str, rate_per_s: float, burst: int) -> float:
        """Tokens in ``method``'s bucket now (read-only; negative when reserved ahead)."""
        reply = await self._tokens([self.bucket_key(method)], [rate_per_s, burst])
        return float(as_text(reply))


def _parse(reply: object) -> Admission:
    if not isinstance(reply, list) or not reply:
        raise TypeError(f"unexpected admission reply: {reply!r}")
    outcome = as_text(reply[0])
    if outcome == "cached":
        value = reply[1]
        cached = value if isinstance(value, bytes) else as_text(value).encode("utf-8")
        return Admission(outcome="cached", cached=cached)
    if outcome == "user_limited":
        return Admission(outcome="user_limited", retry_after_s=as_int(reply[1]) / 1000)
    if outcome == "too_many_streams":
        return Admission(outcome="too_many_streams", retry_after_s=as_int(reply[1]) / 1000)
    if outcome == "deferred":
        return Admission(
            outcome="deferred",
            retry_after_s=as_int(reply[1]) / 1000,
            line_length=as_int(reply[2]),
            given_up=as_int(reply[3]),
        )
    if outcome == "queued":
        return Admission(
            outcome="queued",
            retry_after_s=as_int(reply[1]) / 1000,
            eta_s=as_int(reply[2]) / 1000,
            position=as_int(reply[3]),
            line_length=as_int(reply[4]),
            given_up=as_int(reply[5]),
        )
    if outcome == "admitted":
        session_id = as_text(reply[6])
        return Admission(
            outcome="admitted",
            wait_s=as_int(reply[1]) / 1000,
            tokens_left=float(as_int(reply[2])),
            line_length=as_int(reply[3]),
            given_up=as_int(reply[4]),
            in_line_s=as_int(reply[5]) / 1000,
            session_id=session_id or None,
            evicted=tuple(as_text(item) for item in reply[7:]),
        )
    raise TypeError(f"unexpected admission outcome: {outcome!r}")
