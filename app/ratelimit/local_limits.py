"""LocalLimits: the per-user limit and the viewing-session limit kept by one replica,
for when the shared store is unreachable (``LINK_LIMITS_FALLBACK=local``).

The same rules as ``admission.lua``, counted in this process only: a user whose
requests reach several replicas gets each replica's allowance while the store is
down (the fleet's budget is still split: ``LocalLine``). Memory is bounded: at most
``max_users`` users are remembered, the least recently seen forgotten first. Not
thread-safe; one event loop.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

from app.ratelimit.local_bucket import LocalTokenBucket
from app.ratelimit.sessions import SessionLimits

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class LocalVerdict:
    outcome: Literal["allowed", "user_limited", "too_many_streams"]
    retry_after_s: float = 0.0
    evicted: tuple[str, ...] = ()


class LocalLimits:
    """Per user: a token bucket, and the streams watched (one session per event and
    stream, ``owner``; the store's session ids are not known here)."""

    def __init__(
        self,
        *,
        user_rate_per_s: float,
        user_burst: int,
        sessions: SessionLimits | None,
        monotonic: Callable[[], float] = time.monotonic,
        max_users: int = 100_000,
    ) -> None:
        self._user_rate = user_rate_per_s
        self._user_burst = user_burst
        self._sessions = sessions
        self._monotonic = monotonic
        self._max_users = max_users
        self._buckets: OrderedDict[str, LocalTokenBucket] = OrderedDict()
        self._live: OrderedDict[str, dict[str, float]] = OrderedDict()  # user -> owner -> expiry

    def check(self, user: str, owner: str) -> LocalVerdict:
        """May ``user`` mint now for ``owner`` (its event and stream)? Counts nothing:
        ``take`` does, once the link is on its way."""
        bucket = self._bucket(user)
        left = bucket.tokens_left()
        if left < 1:
            return LocalVerdict("user_limited", retry_after_s=(1 - left) / bucket.rate_per_s)
        limits = self._sessions
        if limits is None:
            return LocalVerdict("allowed")
        live = self._live_of(user)
        if owner in live or len(live) < limits.max_per_user:
            return LocalVerdict("allowed")
        oldest = sorted(live, key=live.__getitem__)
        if limits.policy == "refuse":
            return LocalVerdict(
                "too_many_streams", retry_after_s=live[oldest[0]] - self._monotonic()
            )
        return LocalVerdict("allowed", evicted=tuple(oldest[: len(live) - limits.max_per_user + 1]))

    def take(self, user: str, owner: str, verdict: LocalVerdict) -> None:
        """Count an allowed request: a token, and its session (ending ``evicted``)."""
        self._bucket(user).try_reserve(1)
        limits = self._sessions
        if limits is None:
            return
        live = self._live_of(user)
        for evicted in verdict.evicted:
            live.pop(evicted, None)
        live[owner] = self._monotonic() + limits.ttl_s
        self._live[user] = live
        _trim(self._live, self._max_users)

    def _live_of(self, user: str) -> dict[str, float]:
        now = self._monotonic()
        live = {owner: until for owner, until in self._live.pop(user, {}).items() if until > now}
        if live:
            self._live[user] = live
        return live

    def _bucket(self, user: str) -> LocalTokenBucket:
        bucket = self._buckets.pop(user, None)
        if bucket is None:
            bucket = LocalTokenBucket(self._user_rate, self._user_burst, monotonic=self._monotonic)
        self._buckets[user] = bucket
        _trim(self._buckets, self._max_users)
        return bucket


def _trim(table: OrderedDict[str, T], most: int) -> None:
    while len(table) > most:
        table.popitem(last=False)
