"""LinkAdmission: the single Redis round trip a link request makes before the upstream.

One script (``admission.lua``) does, atomically and in this order:

1. dedupe: an identical request within the dedupe window gets the stored answer;
2. per-user limit: a token bucket per user, no waiting;
3. fleet link budget: one token from each method bucket, all or nothing, possibly
   reserved up to ``max_wait_ms`` ahead (the caller sleeps ``wait_s`` first, so
   callers that honour it never exceed rate + burst in any 1-second window).

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

from app.ratelimit.scripts import StoreScript, as_int, as_text, guarded, ms
from app.ratelimit.sessions import NewSession
from app.store import Store

Outcome = Literal["cached", "user_limited", "rate_limited", "too_many_streams", "admitted"]


@dataclass(frozen=True, slots=True)
class Admission:
    """The verdict for one link request.

    ``cached``: ``cached`` holds the stored answer. ``user_limited``,
    ``rate_limited`` and ``too_many_streams``: ``retry_after_s`` > 0, nothing
    consumed. ``admitted``: sleep ``wait_s`` before calling the upstream;
    ``tokens_left`` is the smallest token count left among the method buckets
    (floored, negative when reserved ahead); ``evicted``: the sessions ended to make
    room for the new one.
    """

    outcome: Outcome
    cached: bytes | None = None
    wait_s: float = 0.0
    retry_after_s: float = 0.0
    tokens_left: float | None = None
    evicted: tuple[str, ...] = ()


def _digest(logical_key: str) -> str:
    return hashlib.sha256(logical_key.encode("utf-8")).hexdigest()


class LinkAdmission:
    def __init__(self, redis: Store, prefix: str = "igm") -> None:
        self._redis = redis
        self._tag = f"{{{prefix}:link}}"
        self._admit = StoreScript(redis, "admission.lua")
        self._tokens = StoreScript(redis, "bucket_tokens.lua")
        self.unused_session_keys = (f"{self._tag}:sessions:-", f"{self._tag}:sessions-meta:-")

    def dedupe_key(self, dedupe_key: str) -> str:
        return f"{self._tag}:dedupe:{_digest(dedupe_key)}"

    def user_key(self, user_key: str) -> str:
        return f"{self._tag}:user:{_digest(user_key)}"

    def bucket_key(self, method: str) -> str:
        return f"{self._tag}:bucket:{method}"

    async def admit(
        self,
        *,
        dedupe_key: str,
        user_key: str,
        methods: Sequence[str],
        rate_per_s: float,
        burst: int,
        user_rate_per_s: float,
        user_burst: int,
        max_wait_ms: int,
        session: NewSession | None = None,
    ) -> Admission:
        if not methods or len(set(methods)) != len(methods):
            raise ValueError("methods must be one or more distinct method names")
        if rate_per_s <= 0 or user_rate_per_s <= 0:
            raise ValueError("rates must be positive")
        if burst < 1 or user_burst < 1:
            raise ValueError("bursts must be at least 1")
        if max_wait_ms < 0:
            raise ValueError("max_wait_ms must not be negative")
        # Without a session the script never touches KEYS[3] and KEYS[4]; they are
        # still named (under the same tag) so the key layout is fixed.
        session_keys = session.keys if session else self.unused_session_keys
        keys = [
            self.dedupe_key(dedupe_key),
            self.user_key(user_key),
            *session_keys,
            *(self.bucket_key(m) for m in methods),
        ]
        args: list[str | int | float] = [
            rate_per_s,
            burst,
            user_rate_per_s,
            user_burst,
            max_wait_ms,
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
        reply = await self._admit(keys, args)
        return _parse(reply)

    async def remember(self, dedupe_key: str, answer: bytes, window_s: float) -> None:
        """Store ``answer`` for identical requests arriving within ``window_s``."""
        key = self.dedupe_key(dedupe_key)
        await guarded("dedupe set", self._redis.set(key, answer, px=ms(window_s)))

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
    if outcome == "rate_limited":
        return Admission(outcome="rate_limited", retry_after_s=as_int(reply[1]) / 1000)
    if outcome == "too_many_streams":
        return Admission(outcome="too_many_streams", retry_after_s=as_int(reply[1]) / 1000)
    if outcome == "admitted":
        return Admission(
            outcome="admitted",
            wait_s=as_int(reply[1]) / 1000,
            tokens_left=float(as_int(reply[2])),
            evicted=tuple(as_text(item) for item in reply[3:]),
        )
    raise TypeError(f"unexpected admission outcome: {outcome!r}")
