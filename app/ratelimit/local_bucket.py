"""LocalTokenBucket: the in-process fallback for the fleet link budget.

Used when the shared store is unreachable, with ``rate = LINK_RATE_PER_S /
replica_count``. Same semantics as ``admission.lua``: a GCRA cell that lets a
caller reserve a token up to ``max_wait_s`` ahead and tells it how long to wait,
so callers that honour ``wait_s`` never exceed ``rate + burst`` calls in any
1-second window. Not thread-safe; meant for one event loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import NamedTuple

_EPSILON = 1e-9


class Reservation(NamedTuple):
    allowed: bool
    wait_s: float
    retry_after_s: float


class LocalTokenBucket:
    def __init__(
        self,
        rate_per_s: float,
        burst: int,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate_per_s <= 0:
            raise ValueError("rate_per_s must be positive")
        if burst < 1:
            raise ValueError("burst must be at least 1")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._interval = 1.0 / rate_per_s
        self._monotonic = monotonic
        self._tat: float | None = None  # theoretical arrival time; None = full

    def _debt(self, now: float) -> float:
        """Seconds the theoretical arrival time lies ahead of ``now``."""
        if self._tat is None:
            return 0.0
        return max(0.0, self._tat - now)

    def try_reserve(self, cost: int = 1, max_wait_s: float = 0.0) -> Reservation:
        """Take ``cost`` tokens, possibly ones that exist only up to ``max_wait_s`` ahead.

        Allowed: sleep ``wait_s`` before acting. Refused: nothing is taken and
        ``retry_after_s`` is when the same request would be allowed.
        """
        if not 1 <= cost <= self.burst:
            raise ValueError("cost must be between 1 and burst")
        if max_wait_s < 0:
            raise ValueError("max_wait_s must not be negative")
        now = self._monotonic()
        debt = self._debt(now)
        wait = debt + (cost - self.burst) * self._interval
        if wait > max_wait_s + _EPSILON:
            return Reservation(allowed=False, wait_s=0.0, retry_after_s=wait - max_wait_s)
        self._tat = now + debt + cost * self._interval
        return Reservation(allowed=True, wait_s=max(0.0, wait), retry_after_s=0.0)

    def tokens_left(self) -> float:
        """Tokens now; negative when callers have reserved future tokens."""
        return self.burst - self._debt(self._monotonic()) * self.rate_per_s
