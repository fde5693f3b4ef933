"""LinkBudget: admit one link request against the fleet's link budget.

One store round trip (``LinkAdmission``) answers dedupe, the per-user limit, the
viewer's sessions and the fleet budget together, reserving a token up to
``LINK_MAX_WAIT_MS`` ahead. When the store is unreachable, a local bucket of
``LINK_RATE_PER_S / REPLICA_COUNT`` stands in (or, configured ``closed``, the request
is refused). Either way the caller is then held until its reserved slot; a slot this
replica could not use on time (``late_slot_s``: its event loop was saturated) is given
up with a 429, not used late.

Refusals are ``GatewayError`` (429 ``rate_limited`` / ``user_rate_limited``, 409
``too_many_streams``, 503 ``link_budget_unavailable``). ``admit`` is the only entry
point: how a request waits for its turn can change inside it without its callers
knowing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from app.errors import GatewayError, problem
from app.observability.metrics import Metrics
from app.ratelimit.admission import LinkAdmission
from app.ratelimit.local_bucket import LocalTokenBucket
from app.ratelimit.sessions import NewSession
from app.store import StoreUnavailable
from app.upstream.client import LIVE_STREAM, STREAM_LINK

# How late past its reserved instant a call may still go out. The budget spaces out
# the instants at which calls are *sent*; the upstream counts when they *arrive*. A
# replica whose event loop is saturated wakes many reserved callers at once, and their
# calls then arrive bunched with later ones: measured, the default budget (150/s,
# burst 10) reached 198-221 calls in one second at a 150/s upstream. Giving up a slot
# more than this late bounds the excess to about rate x LATE_SLOT_S calls (3 at
# 150/s), and never triggers on a replica that keeps up (store round trip + timer
# slack: a few milliseconds).
LATE_SLOT_S = 0.02


@dataclass(frozen=True, slots=True)
class LinkLimits:
    rate_per_s: float
    burst: int
    max_wait_ms: int
    user_rate_per_s: float
    user_burst: int
    fallback: Literal["local", "closed"]
    replica_count: int
    # A budget slot not used within this long of its time is given up (see _keep_slot).
    late_slot_s: float = LATE_SLOT_S


@dataclass(frozen=True, slots=True)
class Admitted:
    """A request let through: ``cached`` holds an identical request's stored answer
    (nothing else to do), else the caller's slot has come and it may call upstream.
    ``shared``: the store answered (so the session was opened and an answer may be
    stored for dedupe); false when the local bucket stood in."""

    cached: bytes | None
    shared: bool


class LinkBudget:
    def __init__(
        self,
        admission: LinkAdmission,
        limits: LinkLimits,
        metrics: Metrics,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._admission = admission
        self._limits = limits
        self._metrics = metrics
        self._monotonic = monotonic
        self._sleep = sleep
        local_rate = limits.rate_per_s / limits.replica_count
        self._local_buckets = {
            method: LocalTokenBucket(local_rate, limits.burst, monotonic=monotonic)
            for method in (STREAM_LINK, LIVE_STREAM)
        }

    async def admit(
        self,
        *,
        request_key: str,
        user_key: str,
        methods: Sequence[str],
        session: NewSession | None,
        on_evicted: Callable[[tuple[str, ...]], None],
    ) -> Admitted:
        """Admit the request for one call to each of ``methods``; ``on_evicted`` is told
        the sessions ended to make room for ``session``. Raises ``GatewayError``."""
        limits = self._limits
        try:
            admission = await self._admission.admit(
                dedupe_key=request_key,
                user_key=user_key,
                methods=methods,
                rate_per_s=limits.rate_per_s,
                burst=limits.burst,
                user_rate_per_s=limits.user_rate_per_s,
                user_burst=limits.user_burst,
                max_wait_ms=limits.max_wait_ms,
                session=session,
            )
        except StoreUnavailable:
            self._metrics.redis_errors.labels("link_admission").inc()
            await self._admit_locally(methods)
            return Admitted(cached=None, shared=False)
        if admission.outcome == "cached" and admission.cached is not None:
            return Admitted(cached=admission.cached, shared=True)
        if admission.outcome == "too_many_streams":
            raise self._refuse(
                "too_many_streams",
                problem("too_many_streams", retry_after_s=admission.retry_after_s),
            )
        if admission.evicted:
            on_evicted(admission.evicted)
        if admission.outcome == "user_limited":
            raise self._refuse(
                "user_rate",
                problem("user_rate_limited", retry_after_s=admission.retry_after_s),
            )
        if admission.outcome == "rate_limited":
            for method in methods:
                self._metrics.budget_decisions.labels(method, "refused").inc()
            raise self._refuse("rate", budget_spent(admission.retry_after_s))
        for method in methods:
            decision = "waited" if admission.wait_s > 0 else "allowed"
            self._metrics.budget_decisions.labels(method, decision).inc()
            if admission.tokens_left is not None:
                self._metrics.budget_tokens_left.labels(method).set(admission.tokens_left)
        # Timed from the answer, not the question: a slow store round trip (a cold
        # connection, a script load) is no reason to give the slot up.
        await self._keep_slot(self._monotonic() + admission.wait_s, methods)
        return Admitted(cached=None, shared=True)

    async def _keep_slot(self, slot_at: float, methods: Sequence[str]) -> None:
        """Wait for the reserved instant ``slot_at`` (monotonic); refuse if it has
        already passed by more than the tolerance: a call sent now would arrive bunched
        with calls reserved after it."""
        now = self._monotonic()
        if slot_at > now:
            await self._sleep(slot_at - now)
            now = self._monotonic()
        if now - slot_at > self._limits.late_slot_s:
            for method in methods:
                self._metrics.budget_decisions.labels(method, "late").inc()
            raise self._refuse(
                "late_slot",
                problem(
                    "rate_limited",
                    "This replica is too busy to use its share of the link budget on time; "
                    "retry after the indicated time.",
                    retry_after_s=1.0,
                ),
            )

    async def _admit_locally(self, methods: Sequence[str]) -> None:
        """No shared store: this replica's share of the budget, or refuse (``closed``)."""
        if self._limits.fallback == "closed":
            raise self._refuse(
                "rate",
                problem("link_budget_unavailable", retry_after_s=5),
            )
        max_wait_s = self._limits.max_wait_ms / 1000
        reserved_at = self._monotonic()
        reservations = [self._local_buckets[m].try_reserve(1, max_wait_s) for m in methods]
        refused = [r for r in reservations if not r.allowed]
        if refused:
            raise self._refuse("rate", budget_spent(max(r.retry_after_s for r in refused)))
        wait_s = max(r.wait_s for r in reservations)
        for method in methods:
            self._metrics.budget_decisions.labels(method, "waited" if wait_s else "allowed").inc()
        await self._keep_slot(reserved_at + wait_s, methods)

    def _refuse(self, reason: str, error: GatewayError) -> GatewayError:
        self._metrics.refusals.labels(reason).inc()
        return error


def budget_spent(retry_after_s: float) -> GatewayError:
    return problem("rate_limited", retry_after_s=retry_after_s)
