"""How many live streams one user, and one viewer IP, may hold across the fleet
(``SSE_MAX_PER_USER``, default 5; ``SSE_MAX_PER_IP``, default 50).

Each stream takes a seat: one member in the user's and the IP's sorted sets in the
shared store (``{<prefix>:live}:user:<digest>``, ``{<prefix>:live}:ip:<digest>``; one
hash tag, so one Redis Cluster slot), scored with its lease's end. ``caps.lua`` drops
lapsed seats, counts, and takes the seat in one step. This process renews the leases
of the seats it holds every third of ``LEASE_S``, and gives a seat back when its stream
ends; the seats of a process that died lapse within ``LEASE_S``.

While the store cannot be reached, the limits hold per process: the seats this
process holds are counted, and a seat taken then is not in the store.

``SSE_MAX_CLIENTS`` (per process, ``app/live/feed.py``) is the other limit; a
refusal here is ``LiveCapped`` with what was full.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import resources
from typing import Literal

import structlog

from app.observability.metrics import Metrics
from app.ratelimit.scripts import ScriptArg, ms
from app.store import STORE_ERRORS, Store, StoreUnavailable
from app.supervisor import Supervised, Supervisor

log = structlog.get_logger(__name__)

LEASE_S = 60.0
RETRY_AFTER_S = 10.0
Which = Literal["user", "ip"]


class LiveCapped(Exception):
    def __init__(self, which: Which) -> None:
        super().__init__(which)
        self.which: Which = which


@dataclass(frozen=True, slots=True)
class LiveCapLimits:
    per_user: int  # 0: no limit
    per_ip: int  # 0: no limit


@dataclass(frozen=True, slots=True)
class Seat:
    seat_id: str
    user_key: str
    ip_key: str
    shared: bool  # taken in the store (False: while it was unreachable)


class LiveCaps:
    def __init__(
        self,
        redis: Store,
        limits: LiveCapLimits,
        *,
        metrics: Metrics | None = None,
        prefix: str = "igm",
        lease_s: float = LEASE_S,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._redis = redis
        self._limits = limits
        self._metrics = metrics
        self._prefix = prefix
        self._lease_s = lease_s
        self._sleep = sleep
        self._script = redis.register_script(_script_source())
        self._seats: set[Seat] = set()
        self._held_by_user: Counter[str] = Counter()
        self._held_by_ip: Counter[str] = Counter()
        self._supervisor: Supervisor | None = None
        self._task: Supervised | None = None

    @property
    def enabled(self) -> bool:
        return self._limits.per_user > 0 or self._limits.per_ip > 0

    def _key(self, kind: str, value: str) -> str:
        digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        return f"{{{self._prefix}:live}}:{kind}:{digest}"

    async def admit(self, user: str, ip: str) -> Seat | None:
        """A seat for a new stream of ``user`` from ``ip``, or ``LiveCapped``. None when
        no limit is set."""
        if not self.enabled:
            return None
        user_key, ip_key = self._key("user", user), self._key("ip", ip)
        seat_id = os.urandom(9).hex()
        args: list[ScriptArg] = [
            seat_id,
            ms(self._lease_s),
            self._limits.per_user,
            self._limits.per_ip,
        ]
        try:
            reply = await self._script(keys=[user_key, ip_key], args=args)
        except STORE_ERRORS as exc:
            log.warning("live_caps_store_unavailable", error=type(exc).__name__)
            if self._metrics is not None:
                self._metrics.redis_errors.labels("live_caps").inc()
            self._admit_locally(user_key, ip_key)
            return self._hold(Seat(seat_id, user_key, ip_key, shared=False))
        if not isinstance(reply, list) or not reply:
            raise StoreUnavailable("caps.lua gave an unexpected reply")
        if int(reply[0]) != 1:
            which = reply[1].decode() if isinstance(reply[1], bytes) else str(reply[1])
            raise LiveCapped("ip" if which == "ip" else "user")
        return self._hold(Seat(seat_id, user_key, ip_key, shared=True))

    def _admit_locally(self, user_key: str, ip_key: str) -> None:
        per_user, per_ip = self._limits.per_user, self._limits.per_ip
        if per_user > 0 and self._held_by_user[user_key] >= per_user:
            raise LiveCapped("user")
        if per_ip > 0 and self._held_by_ip[ip_key] >= per_ip:
            raise LiveCapped("ip")

    def _hold(self, seat: Seat) -> Seat:
        self._seats.add(seat)
        self._held_by_user[seat.user_key] += 1
        self._held_by_ip[seat.ip_key] += 1
        return seat

    async def release(self, seat: Seat | None) -> None:
        """The stream ended: its seat is free (at once in the store; if the store does
        not answer now, when its lease lapses)."""
        if seat is None or seat not in self._seats:
            return
        self._seats.discard(seat)
        for held, key in ((self._held_by_user, seat.user_key), (self._held_by_ip, seat.ip_key)):
            held[key] -= 1
            if held[key] <= 0:
                del held[key]
        if not seat.shared:
            return
        try:
            pipe = self._redis.pipeline(transaction=False)
            pipe.zrem(seat.user_key, seat.seat_id)
            pipe.zrem(seat.ip_key, seat.seat_id)
            await pipe.execute()
        except STORE_ERRORS as exc:
            log.warning("live_caps_release_failed", error=type(exc).__name__)

    # --- lease renewal ---------------------------------------------------------------

    def start(self, supervisor: Supervisor) -> None:
        """Renew the leases under ``supervisor`` (the lifespan's)."""
        if self.enabled:
            self._supervisor = supervisor
            self._task = supervisor.start("live-caps-renewal", self._renew_forever)

    async def stop(self) -> None:
        """Stop renewing, and give back the seats still held (best effort)."""
        task, self._task = self._task, None
        if task is not None and self._supervisor is not None:
            await self._supervisor.stop([task])
        for seat in list(self._seats):
            await self.release(seat)

    async def _renew_forever(self) -> None:
        while True:
            await self._sleep(self._lease_s / 3)
            try:
                await self.renew()
            except STORE_ERRORS as exc:
                log.warning("live_caps_renew_failed", error=type(exc).__name__)

    async def renew(self) -> None:
        """Extend the lease of every seat this process holds in the store."""
        seats = [seat for seat in self._seats if seat.shared]
        if not seats:
            return
        lease_ms = ms(self._lease_s)
        time_reply = await self._redis.time()
        now_ms = int(time_reply[0]) * 1000 + int(time_reply[1]) // 1000
        pipe = self._redis.pipeline(transaction=False)
        keys: set[str] = set()
        for seat in seats:
            pipe.zadd(seat.user_key, {seat.seat_id: now_ms + lease_ms}, xx=True)
            pipe.zadd(seat.ip_key, {seat.seat_id: now_ms + lease_ms}, xx=True)
            keys.update((seat.user_key, seat.ip_key))
        for key in keys:
            pipe.pexpire(key, lease_ms)
        await pipe.execute()


def _script_source() -> str:
    return resources.files(__package__).joinpath("caps.lua").read_text(encoding="utf-8")
