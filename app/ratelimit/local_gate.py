"""LocalGate: this process's own record of when it last called each spaced method.

Checked before the fleet gate: a replica never calls sooner than the interval after
its own last call, whatever the store says, so a store that restarts empty or comes
back after an outage cannot let a replica repeat a call it just made. A replica
configured as the only one (``REPLICA_COUNT=1``) also uses it alone while the store
is unreachable.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from app.ratelimit.gate import GateDecision


class LocalGate:
    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._open_at: dict[str, float] = {}

    def peek(self, method: str) -> GateDecision:
        wait = self._open_at.get(method, float("-inf")) - self._monotonic()
        return GateDecision(allowed=wait <= 0, retry_after_s=max(0.0, wait))

    def mark(self, method: str, interval_s: float) -> None:
        """Record a call made now: the gate stays shut for ``interval_s``."""
        self._open_at[method] = self._monotonic() + interval_s
