"""LinkBudget: admit one link request against the fleet's link budget, in line.

One store round trip (``LinkAdmission``) answers dedupe, the per-user limit, the
viewer's sessions and the fleet's line for the budget together. Past the budget,
requests are served first come, first served across the fleet: a request whose turn
is within ``LINK_QUEUE_HOLD_S`` is held until it; a later one is answered 429 with
``Retry-After`` (come back just inside the hold window) and the viewer's place,
``queue: {position, etaSeconds}``, which the same viewer (user, event, stream, kind)
keeps when it comes back (``app.ratelimit.line``). A renewal that can come back
after the line is told to (429, no place). When the store is unreachable, a local
line of ``LINK_RATE_PER_S / REPLICA_COUNT`` stands in (or, configured ``closed``,
the request is refused), with the per-user and session limits kept per replica
(``LINK_LIMITS_FALLBACK=local``) or refused (``refuse``). A turn this replica could
not use on time (``late_slot_s``: its event loop was saturated) is given up with a
429, not used late.

Refusals are ``GatewayError`` (429 ``rate_limited`` / ``user_rate_limited``, 409
``too_many_streams``, 503 ``link_budget_unavailable`` / ``link_limits_unavailable``).
``admit`` is the only entry point: how a request waits for its turn can change inside
it without its callers knowing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from app.errors import GatewayError, problem
from app.observability.metrics import Metrics
from app.ratelimit.admission import LinkAdmission
from app.ratelimit.line import LineOutcome, LinePolicy, LineVerdict, LocalLine
from app.ratelimit.local_limits import LocalLimits
from app.ratelimit.sessions import NewSession, SessionLimits
from app.store import StoreUnavailable

# How late past its reserved instant a call may still go out. The budget spaces out
# the instants at which calls are *sent*; the upstream counts when they *arrive*. A
# replica whose event loop is saturated wakes many reserved callers at once, and their
# calls then arrive bunched with later ones: measured, the default budget (150/s,
# burst 10) reached 198-221 calls in one second at a 150/s upstream. Giving up a slot
# more than this late bounds the excess to about rate x LATE_SLOT_S calls (3 at
# 150/s), and never triggers on a replica that keeps up (store round trip + timer
# slack: a few milliseconds).
LATE_SLOT_S = 0.02
# A request whose turn went by asks the line again (it goes first) this many times in
# all before it is answered 429.
LATE_TURN_RETRIES = 3


class _LateTurn(Exception):
    """The request's turn went by before this replica could take it."""


@dataclass(frozen=True, slots=True)
class LinkLimits:
    line: LinePolicy
    user_rate_per_s: float
    user_burst: int
    fallback: Literal["local", "closed"]
    replica_count: int
    limits_fallback: Literal["local", "refuse"] = "local"
    # A budget slot not used within this long of its time is given up (see _keep_slot).
    late_slot_s: float = LATE_SLOT_S


@dataclass(frozen=True, slots=True)
class Admitted:
    """A request let through: ``cached`` holds an identical request's stored answer
    (nothing else to do), else the caller's turn has come and it may call upstream.
    ``shared``: the store answered (so the session was opened and an answer may be
    stored for dedupe); false when the local line stood in. ``session_id``: the
    session the store opened or continued for it."""

    cached: bytes | None
    shared: bool
    session_id: str | None = None


@dataclass(frozen=True, slots=True)
class BudgetRequest:
    """One link request as the budget sees it: the key identical requests share
    (dedupe), the user whose limit it counts against, the viewer whose place in line it
    takes (user, event, stream, kind), the upstream calls it will make, and the session
    it opens."""

    request_key: str
    user_key: str
    viewer_key: str
    methods: Sequence[str]
    session: NewSession | None


class LinkBudget:
    def __init__(
        self,
        admission: LinkAdmission,
        limits: LinkLimits,
        metrics: Metrics,
        *,
        sessions: SessionLimits | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """``sessions``: the session limits, kept locally while the store is down."""
        self._admission = admission
        self._limits = limits
        self._metrics = metrics
        self._monotonic = monotonic
        self._sleep = sleep
        self._local_line = LocalLine(limits.line.share(limits.replica_count), monotonic=monotonic)
        self._local_limits = LocalLimits(
            user_rate_per_s=limits.user_rate_per_s,
            user_burst=limits.user_burst,
            sessions=sessions,
            monotonic=monotonic,
        )

    async def admit(
        self, request: BudgetRequest, *, on_evicted: Callable[[tuple[str, ...]], None]
    ) -> Admitted:
        """Admit the request for one call to each of its methods, in line for its
        viewer; ``on_evicted`` is told the sessions ended to make room for its session.
        Raises ``GatewayError``."""
        line = self._limits.line
        started = self._monotonic()
        for _ in range(LATE_TURN_RETRIES):
            try:
                return await self._admit_once(request, on_evicted, line)
            except _LateTurn:
                # The place was kept: asked again, the viewer goes first. Held no longer
                # than the hold bound in all (the load balancer's timeout is beyond it).
                spent = self._monotonic() - started
                line = dataclasses.replace(line, hold_s=max(0.0, line.hold_s - spent))
        raise self._refuse(
            "late_slot",
            problem(
                "rate_limited",
                "This replica is too busy to use its share of the link budget on time; "
                "retry after the indicated time.",
                retry_after_s=1.0,
            ),
        )

    async def _admit_once(
        self,
        request: BudgetRequest,
        on_evicted: Callable[[tuple[str, ...]], None],
        line: LinePolicy,
    ) -> Admitted:
        limits = self._limits
        viewer_key, methods, session = request.viewer_key, request.methods, request.session
        try:
            admission = await self._admission.admit(
                dedupe_key=request.request_key,
                user_key=request.user_key,
                viewer_key=viewer_key,
                methods=methods,
                line=line,
                user_rate_per_s=limits.user_rate_per_s,
                user_burst=limits.user_burst,
                session=session,
            )
        except StoreUnavailable:
            self._metrics.redis_errors.labels("link_admission").inc()
            await self._admit_locally(request.user_key, viewer_key, methods, session is not None)
            return Admitted(cached=None, shared=False)
        if admission.outcome == "cached" and admission.cached is not None:
            return Admitted(cached=admission.cached, shared=True)
        if admission.outcome == "too_many_streams":
            raise self._too_many_streams(admission.retry_after_s)
        if admission.evicted:
            on_evicted(admission.evicted)
        if admission.outcome == "user_limited":
            raise self._user_limited(admission.retry_after_s)
        outcome: LineOutcome = "admitted"
        if admission.outcome in ("queued", "deferred"):
            outcome = "queued" if admission.outcome == "queued" else "deferred"
        verdict = LineVerdict(
            outcome,
            wait_s=admission.wait_s,
            retry_after_s=admission.retry_after_s,
            eta_s=admission.eta_s,
            position=admission.position,
            line_length=admission.line_length,
            given_up=admission.given_up,
            in_line_s=admission.in_line_s,
        )
        if admission.tokens_left is not None:
            for method in methods:
                self._metrics.budget_tokens_left.labels(method).set(admission.tokens_left)
        await self._take_turn(verdict, methods, viewer_key, shared=True)
        return Admitted(cached=None, shared=True, session_id=admission.session_id)

    async def _take_turn(
        self, verdict: LineVerdict, methods: Sequence[str], viewer_key: str, *, shared: bool
    ) -> None:
        """Wait for the request's turn, or raise its place (or a renewal's later time).
        A turn this replica was too busy to take on time is given up (``_LateTurn``),
        but the viewer keeps its place: asking again, it goes first."""
        metrics = self._metrics
        metrics.line_length.set(verdict.line_length)
        if verdict.given_up:
            metrics.line_given_up.inc(verdict.given_up)
        if verdict.outcome != "admitted":
            metrics.line_answers.labels(verdict.outcome).inc()
            for method in methods:
                metrics.budget_decisions.labels(method, verdict.outcome).inc()
            if verdict.outcome == "queued":
                raise self._refuse("rate", in_line(verdict))
            raise self._refuse("rate", renew_later(verdict.retry_after_s))
        for method in methods:
            decision = "waited" if verdict.wait_s > 0 else "allowed"
            metrics.budget_decisions.labels(method, decision).inc()
        metrics.line_wait.observe(verdict.in_line_s + verdict.wait_s)
        if verdict.wait_s > 0:
            metrics.line_answers.labels("held").inc()
        # Timed from the answer, not the question: a slow store round trip (a cold
        # connection, a script load) is no reason to give the slot up.
        slot_at = self._monotonic() + verdict.wait_s
        metrics.line_held.inc()
        try:
            await self._keep_slot(slot_at, methods)
        except _LateTurn:
            await self._keep_place(viewer_key, shared=shared)
            raise
        finally:
            metrics.line_held.dec()

    async def _keep_place(self, viewer_key: str, *, shared: bool) -> None:
        if not shared:
            self._local_line.keep_place(viewer_key)
            return
        try:
            await self._admission.keep_place(viewer_key, self._limits.line)
        except StoreUnavailable:
            self._metrics.redis_errors.labels("line_keep_place").inc()

    def remember_locally(self, viewer_key: str, expires_in_s: float) -> None:
        """A link minted without the store: the viewer's next request is a renewal."""
        self._local_line.remember(viewer_key, expires_in_s)

    async def _keep_slot(self, slot_at: float, methods: Sequence[str]) -> None:
        """Wait for the reserved instant ``slot_at`` (monotonic); give it up if it has
        already passed by more than the tolerance: a call sent now would arrive bunched
        with calls reserved after it."""
        now = self._monotonic()
        if slot_at > now:
            await self._sleep(slot_at - now)
            now = self._monotonic()
        if now - slot_at > self._limits.late_slot_s:
            for method in methods:
                self._metrics.budget_decisions.labels(method, "late").inc()
            raise _LateTurn

    async def _admit_locally(
        self, user_key: str, viewer_key: str, methods: Sequence[str], with_session: bool
    ) -> None:
        """No shared store: this replica's line within its share of the budget (or refuse:
        ``closed``), and the per-user and session limits kept here (or refused)."""
        if self._limits.fallback == "closed":
            raise self._refuse(
                "rate",
                problem("link_budget_unavailable", retry_after_s=5),
            )
        if self._limits.limits_fallback == "refuse":
            raise self._refuse(
                "limits_unavailable",
                problem("link_limits_unavailable", retry_after_s=5),
            )
        # Locally, a session is one per event and stream (``viewer_key`` names both).
        owner = viewer_key if with_session else ""
        limits = self._local_limits.check(user_key, owner)
        if limits.outcome == "user_limited":
            raise self._user_limited(limits.retry_after_s)
        if limits.outcome == "too_many_streams":
            raise self._too_many_streams(limits.retry_after_s)
        verdict = self._local_line.admit(viewer_key, methods)
        if verdict.outcome == "admitted":
            self._local_limits.take(user_key, owner, limits)
        await self._take_turn(verdict, methods, viewer_key, shared=False)

    def _too_many_streams(self, retry_after_s: float) -> GatewayError:
        return self._refuse(
            "too_many_streams",
            problem("too_many_streams", retry_after_s=retry_after_s),
        )

    def _user_limited(self, retry_after_s: float) -> GatewayError:
        return self._refuse(
            "user_rate",
            problem("user_rate_limited", retry_after_s=retry_after_s),
        )

    def _refuse(self, reason: str, error: GatewayError) -> GatewayError:
        self._metrics.refusals.labels(reason).inc()
        return error


def in_line(verdict: LineVerdict) -> GatewayError:
    """A place in the line: come back after Retry-After to keep it (and be served)."""
    return problem(
        "rate_limited",
        "The fleet's link budget is spent for now and this viewer has a place in line: "
        "ask again after the indicated time to keep it.",
        retry_after_s=verdict.retry_after_s,
        extra={"queue": {"position": verdict.position, "etaSeconds": round(verdict.eta_s, 1)}},
    )


def renew_later(retry_after_s: float) -> GatewayError:
    """A renewal whose current link lasts past the line ahead of it."""
    return problem(
        "rate_limited",
        "This viewer's current link is good for longer than the line ahead of it: "
        "renew after the indicated time.",
        retry_after_s=retry_after_s,
    )
