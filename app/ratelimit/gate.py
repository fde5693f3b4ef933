"""UpstreamGate: at most one upstream call per interval for the whole fleet.

The upstream allows its event methods 0.1 requests/second per operator, shared by
every replica. A gate is one Redis key per method, ``{<prefix>:gate}:<method>``,
set with ``NX PX <interval>`` by the caller that passes; everyone else is told
the key's remaining PTTL. Time is Redis's (the key expiry), not the replica's.
A witness key per method, ``{<prefix>:gate}:witness:<method>``, holds the replication
id of the master that saw the last pass: callers that have seen the fleet at work
notice a store that restarted empty, and every caller notices a promoted replica
(a failover) that may have missed the last pass; either keeps the gate shut for one
interval (see ``gate.lua``).

Errors::

    StoreUnavailable      the store could not answer (from app.store)
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from app.ratelimit.scripts import StoreScript, as_int, guarded, ms
from app.store import Store


@dataclass(frozen=True, slots=True)
class GateDecision:
    """Whether this caller may call the upstream now; if not, when to ask again."""

    allowed: bool
    retry_after_s: float


class UpstreamGate:
    def __init__(self, redis: Store, prefix: str = "igm") -> None:
        self._redis = redis
        self._prefix = prefix
        self._token = uuid.uuid4().hex
        self._script = StoreScript(redis, "gate.lua")

    def key(self, method: str) -> str:
        return f"{{{self._prefix}:gate}}:{method}"

    async def try_pass(
        self, method: str, interval_s: float, *, witnessed: bool | None = None
    ) -> GateDecision:
        """Pass (and shut the gate for ``interval_s``) or learn when it reopens.

        ``witnessed``: whether the caller holds a list this method fetched. A caller
        that passes leaves a witness key naming the master; one that holds such a list
        and finds no witness (the store restarted empty), or any caller that finds a
        witness naming another master (a failover), keeps the gate shut for one
        interval, as the last call may have been a moment ago. None: no witness at all.
        """
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        keys = [self.key(method), f"{{{self._prefix}:gate}}:witness:{method}"]
        flag = "" if witnessed is None else str(int(witnessed))
        reply = await self._script(keys, [self._token, ms(interval_s), flag])
        if not isinstance(reply, list) or len(reply) != 2:
            raise TypeError(f"unexpected gate reply: {reply!r}")
        allowed, retry_ms = as_int(reply[0]), as_int(reply[1])
        return GateDecision(allowed=allowed == 1, retry_after_s=retry_ms / 1000)

    async def next_slot_in(self, method: str) -> float:
        """Seconds until the gate for ``method`` opens; 0 if it is open now."""
        pttl = as_int(await guarded("gate pttl", self._redis.pttl(self.key(method))))
        return max(0, pttl) / 1000
