"""Failed attempts per client, counted fleet-wide in a fixed window (brute-force
protection for the admin keys).

A client that has failed ``max_failures`` times in ``window_s`` is locked out until the
window ends: its next attempts are refused before any key is compared, whatever they
present. The counter is one key per client, ``{<prefix>:failures}:<kind>:<client>``,
counted by ``failures.lua`` with Redis's expiry. While the store cannot be reached,
this process counts on its own (the same limit, per process): a guesser gains at most
the number of processes, never an open door.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from app.ratelimit.scripts import StoreScript, as_int, guarded, ms
from app.store import Store, StoreUnavailable

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class FailureLimits:
    max_failures: int
    window_s: float


class FailedAttempts:
    def __init__(
        self,
        redis: Store,
        kind: str,
        limits: FailureLimits,
        prefix: str = "igm",
        monotonic: Callable[[], float] = time.monotonic,
        max_local: int = 10_000,
    ) -> None:
        self._redis = redis
        self._kind = kind
        self._limits = limits
        self._prefix = prefix
        self._record = StoreScript(redis, "failures.lua")
        self._monotonic = monotonic
        self._max_local = max_local
        self._local: dict[str, tuple[int, float]] = {}  # client -> (count, window end)

    def _key(self, client: str) -> str:
        # The address is hashed: key names hold no viewer's IP.
        digest = hashlib.sha256(client.encode()).hexdigest()[:24]
        return f"{{{self._prefix}:failures}}:{self._kind}:{digest}"

    async def locked_out(self, client: str) -> float | None:
        """Seconds until ``client`` may try again, or None when it may try now."""
        try:
            key = self._key(client)
            count = await guarded("failures get", self._redis.get(key))
            if count is None or as_int(count) < self._limits.max_failures:
                return None
            left_ms = as_int(await guarded("failures pttl", self._redis.pttl(key)))
        except StoreUnavailable:
            return self._local_locked_out(client)
        return max(1.0, math.ceil(left_ms / 1000)) if left_ms > 0 else None

    async def failed(self, client: str) -> float | None:
        """Count one failure; seconds of lockout when this one reached the limit."""
        try:
            reply = await self._record([self._key(client)], [ms(self._limits.window_s)])
            if not isinstance(reply, list) or len(reply) != 2:
                raise StoreUnavailable("failures.lua gave an unexpected reply")
            count, left_ms = as_int(reply[0]), as_int(reply[1])
        except StoreUnavailable as exc:
            log.warning("failures_store_unavailable", kind=self._kind, error=str(exc))
            return self._local_failed(client)
        if count < self._limits.max_failures:
            return None
        return max(1.0, math.ceil(left_ms / 1000))

    # --- while the store is unreachable ----------------------------------------

    def _local_locked_out(self, client: str) -> float | None:
        count, ends = self._local.get(client, (0, 0.0))
        left = ends - self._monotonic()
        if left <= 0 or count < self._limits.max_failures:
            return None
        return max(1.0, math.ceil(left))

    def _local_failed(self, client: str) -> float | None:
        now = self._monotonic()
        count, ends = self._local.get(client, (0, 0.0))
        if ends <= now:
            count, ends = 0, now + self._limits.window_s
        self._local[client] = (count + 1, ends)
        if len(self._local) > self._max_local:
            self._local = {k: v for k, v in self._local.items() if v[1] > now}
        return self._local_locked_out(client)
