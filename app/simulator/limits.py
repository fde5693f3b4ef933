"""The guide's rate limits, enforced on monotonic seconds.

* ``event_all`` (every date shares one budget) and ``event_open``: a call arriving less
  than ``events_min_interval_s`` after the previous call of that method (answered or
  refused) is refused.
* ``stream_link`` and ``live_stream``: at most ``link_rate_per_s`` answered calls in any
  sliding one-second window ``(now - 1, now]``; further calls are refused.
* ``streams`` and ``sports``: not limited.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Final, Literal

Method = Literal["event_all", "event_open", "streams", "sports", "stream_link", "live_stream"]

METHODS: Final[tuple[Method, ...]] = (
    "event_all",
    "event_open",
    "streams",
    "sports",
    "stream_link",
    "live_stream",
)
SPACED_METHODS: Final[frozenset[Method]] = frozenset({"event_all", "event_open"})
WINDOWED_METHODS: Final[frozenset[Method]] = frozenset({"stream_link", "live_stream"})
WINDOW_S: Final = 1.0


@dataclass(slots=True)
class Limits:
    """The two knobs; changed at run time through ``/_sim/config``."""

    events_min_interval_s: float
    link_rate_per_s: int


class RateLimiter:
    """Admits or refuses one call at a time; keeps only what the rules need."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._last_call: dict[Method, float] = {}
        self._admitted: dict[Method, deque[float]] = {m: deque() for m in WINDOWED_METHODS}

    def admit(self, method: Method, now: float) -> bool:
        """Whether a call of ``method`` at monotonic ``now`` is within the limits."""
        if method in SPACED_METHODS:
            previous = self._last_call.get(method)
            self._last_call[method] = now
            return previous is None or now - previous >= self.limits.events_min_interval_s
        if method in WINDOWED_METHODS:
            window = self._admitted[method]
            while window and window[0] <= now - WINDOW_S:
                window.popleft()
            if len(window) >= self.limits.link_rate_per_s:
                return False
            window.append(now)
        return True

    def reset(self) -> None:
        self._last_call.clear()
        for window in self._admitted.values():
            window.clear()
