"""Lease: one holder at a time for a named job across the fleet (leader election).

The lease is one key, ``{<prefix>:lease}:<name>``, holding the owner id with a
``PX`` expiry; a holder that stops renewing loses it when Redis's clock says the
TTL has passed. Take and renew, and release, are each one atomic script.

Errors::

    StoreUnavailable      the store could not answer (from app.store)
"""

from __future__ import annotations

from app.ratelimit.scripts import StoreScript, as_int, as_text, guarded, ms
from app.store import Store


class Lease:
    def __init__(
        self,
        redis: Store,
        name: str,
        owner: str,
        ttl_s: float,
        prefix: str = "igm",
    ) -> None:
        if ttl_s <= 0:
            raise ValueError("ttl_s must be positive")
        if not owner:
            raise ValueError("owner must not be empty")
        self._redis = redis
        self.key = f"{{{prefix}:lease}}:{name}"
        self.owner = owner
        self._ttl_ms = ms(ttl_s)
        self._acquire = StoreScript(redis, "lease_acquire.lua")
        self._release = StoreScript(redis, "lease_release.lua")

    async def acquire_or_renew(self) -> bool:
        """Take the lease if free, extend it if we hold it; False if another holds it."""
        return as_int(await self._acquire([self.key], [self.owner, self._ttl_ms])) == 1

    async def release(self) -> bool:
        """Give the lease up; False (and nothing deleted) if we do not hold it."""
        return as_int(await self._release([self.key], [self.owner])) == 1

    async def holder(self) -> str | None:
        """The current holder's owner id, or None when the lease is free."""
        value = await guarded("lease get", self._redis.get(self.key))
        return None if value is None else as_text(value)
