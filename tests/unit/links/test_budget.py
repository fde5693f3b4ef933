"""LinkBudget over the embedded store (fakeredis with Lua) and a store that is down,
with the monotonic clock and the sleep injected: admitted, held until its turn, a
place in the line (429 with ``queue``), the late slot given up, and the local fallback
(``local``/``closed``, and the per-user and session limits ``local``/``refuse``).

Waits reserved in the store are timed by its own clock (real time), so they are
asserted within bounds; the local bucket runs on the injected clock, so exactly."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Sequence
from typing import Any

import fakeredis
import pytest

from app.errors import GatewayError
from app.links.budget import LATE_TURN_RETRIES, Admitted, BudgetRequest, LinkBudget
from app.observability.metrics import Metrics
from app.ratelimit.admission import LinkAdmission
from app.ratelimit.sessions import NewSession, SessionLimits
from app.store import Store
from app.upstream.client import LIVE_STREAM, STREAM_LINK
from tests.unit.links.fakes import FakeClock, limits


@pytest.fixture
def down_store() -> Store:
    """A store that cannot be reached: every command fails as a lost connection does."""
    server = fakeredis.FakeServer()
    server.connected = False
    client: Store = fakeredis.FakeAsyncRedis(server=server)
    return client


class Budget:
    """A LinkBudget on a fake clock, and what it counted."""

    def __init__(
        self,
        store: Store,
        clock: FakeClock | None = None,
        sessions: SessionLimits | None = None,
        **overrides: Any,
    ) -> None:
        self.clock = clock or FakeClock()
        self.metrics = Metrics()
        self.admission = LinkAdmission(store)
        self.budget = LinkBudget(
            self.admission,
            limits(**overrides),
            self.metrics,
            sessions=sessions,
            monotonic=self.clock.monotonic,
            sleep=self.clock.sleep,
        )
        self.evicted: list[tuple[str, ...]] = []

    async def ask(
        self,
        *,
        request_key: str | None = None,
        user: str = "u-1",
        viewer: str | None = None,
        methods: Sequence[str] = (STREAM_LINK,),
        session: NewSession | None = None,
    ) -> Admitted:
        return await self.budget.admit(
            BudgetRequest(
                request_key=request_key or uuid.uuid4().hex,
                user_key=user,
                viewer_key=viewer or uuid.uuid4().hex,
                methods=methods,
                session=session,
            ),
            on_evicted=self.evicted.append,
        )

    async def refused(self, **kwargs: Any) -> GatewayError:
        with pytest.raises(GatewayError) as refused:
            await self.ask(**kwargs)
        return refused.value

    def count(self, name: str, **labels: str) -> float:
        return self.metrics.registry.get_sample_value(name, labels) or 0.0

    def decisions(self, decision: str, method: str = STREAM_LINK) -> float:
        return self.count("gateway_budget_decisions_total", method=method, decision=decision)


# --- the shared store -------------------------------------------------------------------


async def test_within_the_burst_calls_go_at_once(store: Store) -> None:
    budget = Budget(store, burst=3, rate_per_s=0.1)
    for _ in range(3):
        assert await budget.ask() == Admitted(cached=None, shared=True)
    assert budget.clock.slept == []
    assert budget.decisions("allowed") == 3


async def test_past_the_burst_a_call_is_held_until_its_slot(store: Store) -> None:
    budget = Budget(store, burst=1, rate_per_s=10.0, max_wait_ms=1000)
    await budget.ask()
    assert await budget.ask() == Admitted(cached=None, shared=True)
    [slept] = budget.clock.slept
    assert 0.0 < slept <= 0.1
    assert budget.decisions("waited") == 1


async def test_a_turn_past_the_hold_is_a_place_in_the_line(store: Store) -> None:
    budget = Budget(store, burst=1, rate_per_s=0.1, max_wait_ms=1000)
    await budget.ask()
    refused = await budget.refused(viewer="v-2")
    assert (refused.status, refused.code) == (429, "rate_limited")
    assert refused.retry_after_s is not None
    assert 8 < refused.retry_after_s <= 9  # its turn in 10 s, held for the last 1 s
    queue = refused.extra["queue"]
    assert queue["position"] == 2
    assert 9 < queue["etaSeconds"] <= 10
    assert budget.decisions("queued") == 1
    assert budget.count("gateway_refusals_total", reason="rate") == 1
    assert budget.count("gateway_link_line_length") == 1
    assert budget.count("gateway_link_line_answers_total", answer="queued") == 1
    again = await budget.refused(viewer="v-2")  # early: the same place
    assert again.extra["queue"]["position"] == 2


async def test_a_raw_link_takes_its_turn_in_both_methods(store: Store) -> None:
    budget = Budget(store, burst=1, rate_per_s=0.1, max_wait_ms=0)
    await budget.ask(methods=(LIVE_STREAM,))
    refused = await budget.refused(methods=(STREAM_LINK, LIVE_STREAM))
    assert refused.code == "rate_limited"
    assert refused.extra["queue"]["position"] == 2


async def test_a_slot_missed_by_more_than_the_tolerance_is_given_up(store: Store) -> None:
    """The event loop woke the caller 50 ms late: its call would arrive bunched with
    the calls reserved after it."""
    budget = Budget(store, FakeClock(oversleep_s=0.05), burst=1, rate_per_s=10.0)
    await budget.ask()
    refused = await budget.refused(viewer="v")
    assert (refused.status, refused.code, refused.retry_after_s) == (429, "rate_limited", 1.0)
    assert "too busy" in refused.detail
    assert budget.decisions("late") == LATE_TURN_RETRIES  # asked again, late each time
    assert budget.count("gateway_refusals_total", reason="late_slot") == 1
    # the viewer keeps its place, its turn gone by: back, it claims it (a new turn)
    assert await store.zcard(budget.admission.line_key) == 1
    budget.clock.oversleep_s = 0
    assert (await budget.ask(viewer="v")).shared
    assert await store.zcard(budget.admission.line_key) == 0


class LateOnce(FakeClock):
    """The event loop wakes the first sleeper 50 ms late, then keeps time."""

    async def sleep(self, seconds: float) -> None:
        await super().sleep(seconds)
        self.oversleep_s = 0.0


async def test_a_turn_missed_once_is_asked_again_and_taken(store: Store) -> None:
    budget = Budget(store, LateOnce(oversleep_s=0.05), burst=1, rate_per_s=10.0)
    await budget.ask()
    assert (await budget.ask(viewer="v")).shared
    assert budget.decisions("late") == 1
    assert budget.count("gateway_refusals_total", reason="late_slot") == 0
    assert len(budget.clock.slept) == 2  # its first turn, and the one it was given again


async def test_a_slot_missed_within_the_tolerance_is_kept(store: Store) -> None:
    budget = Budget(store, FakeClock(oversleep_s=0.01), burst=1, rate_per_s=10.0)
    await budget.ask()
    assert (await budget.ask()).shared
    assert budget.decisions("late") == 0


async def test_one_user_past_their_limit_is_refused_others_are_not(store: Store) -> None:
    budget = Budget(store, user_burst=1, user_rate_per_s=0.01)
    await budget.ask(user="u-1")
    refused = await budget.refused(user="u-1")
    assert (refused.status, refused.code) == (429, "user_rate_limited")
    assert budget.count("gateway_refusals_total", reason="user_rate") == 1
    assert (await budget.ask(user="u-2")).shared


async def test_an_identical_request_gets_the_stored_answer(store: Store) -> None:
    budget = Budget(store, burst=1, rate_per_s=0.1, max_wait_ms=0)
    await budget.admission.remember("same-request", b'{"kind":"hls"}', 30.0)
    admitted = await budget.ask(request_key="same-request")
    assert admitted == Admitted(cached=b'{"kind":"hls"}', shared=True)
    assert (await budget.ask()).shared  # the stored answer spent no token


async def test_a_renewal_that_can_wait_is_told_when_to_come_back(store: Store) -> None:
    budget = Budget(store, burst=1, rate_per_s=1.0, max_wait_ms=500, renewal_lead_s=10)
    for _ in range(6):  # turns now and in 1..5 s: the next is 6 s away
        with contextlib.suppress(GatewayError):
            await budget.ask()
    await budget.admission.remember(
        "r", b"{}", 0, viewer_key="renewer", expires_at_s=time.time() + 60, expires_in_s=60
    )
    refused = await budget.refused(viewer="renewer")
    assert (refused.status, refused.code) == (429, "rate_limited")
    assert "renew after" in refused.detail
    assert refused.retry_after_s is not None
    assert 5 <= refused.retry_after_s <= 6 - 0.5  # back when the line has gone by
    assert "queue" not in refused.extra
    assert budget.count("gateway_link_line_answers_total", answer="deferred") == 1


# --- no shared store ----------------------------------------------------------------------


async def test_without_the_store_closed_refuses(down_store: Store) -> None:
    budget = Budget(down_store, fallback="closed")
    refused = await budget.refused()
    assert (refused.status, refused.code, refused.retry_after_s) == (
        503,
        "link_budget_unavailable",
        5,
    )
    assert budget.count("gateway_redis_errors_total", operation="link_admission") == 1


async def test_without_the_store_local_takes_this_replicas_share(down_store: Store) -> None:
    """20/s over 2 replicas: 10/s here, a burst of 2, then a slot every 100 ms."""
    budget = Budget(
        down_store, fallback="local", rate_per_s=20.0, replica_count=2, burst=2, max_wait_ms=150
    )
    assert await budget.ask() == Admitted(cached=None, shared=False)
    assert await budget.ask() == Admitted(cached=None, shared=False)
    assert budget.clock.slept == []
    assert await budget.ask() == Admitted(cached=None, shared=False)
    assert budget.clock.slept == [pytest.approx(0.1)]
    assert budget.decisions("waited") == 1


async def test_without_the_store_local_gives_places_past_the_hold(down_store: Store) -> None:
    budget = Budget(down_store, fallback="local", rate_per_s=10.0, burst=2, max_wait_ms=50)
    await budget.ask()
    await budget.ask()
    refused = await budget.refused(viewer="v")  # the next slot is 100 ms away
    assert (refused.status, refused.code) == (429, "rate_limited")
    assert refused.retry_after_s == pytest.approx(0.05)
    assert refused.extra["queue"] == {"position": 2, "etaSeconds": 0.1}
    assert budget.count("gateway_refusals_total", reason="rate") == 1
    budget.clock.advance(0.05)
    assert await budget.ask(viewer="v") == Admitted(cached=None, shared=False)  # its place
    assert budget.clock.slept == [pytest.approx(0.05)]


async def test_without_the_store_limits_refuse_when_configured(down_store: Store) -> None:
    budget = Budget(down_store, fallback="local", limits_fallback="refuse")
    refused = await budget.refused()
    assert (refused.status, refused.code) == (503, "link_limits_unavailable")


async def test_without_the_store_the_user_limit_is_kept_locally(down_store: Store) -> None:
    budget = Budget(down_store, fallback="local", user_burst=2, user_rate_per_s=0.01)
    await budget.ask(user="u-1")
    await budget.ask(user="u-1")
    refused = await budget.refused(user="u-1")
    assert (refused.status, refused.code) == (429, "user_rate_limited")
    assert (await budget.ask(user="u-2")).shared is False


async def test_without_the_store_the_stream_limit_is_kept_locally(down_store: Store) -> None:
    limits = SessionLimits(max_per_user=1, ttl_s=60.0, policy="refuse")
    budget = Budget(down_store, sessions=limits, fallback="local")
    session = NewSession("s-1", ("a", "b"), limits, b"{}")
    await budget.ask(viewer="u-1/E-1/HLS", session=session)
    await budget.ask(viewer="u-1/E-1/HLS", session=session)  # the same stream goes on
    refused = await budget.refused(viewer="u-1/E-2/HLS", session=session)
    assert (refused.status, refused.code) == (409, "too_many_streams")


async def test_without_the_store_a_late_local_slot_is_given_up(down_store: Store) -> None:
    budget = Budget(down_store, FakeClock(oversleep_s=0.05), burst=1, rate_per_s=10.0)
    await budget.ask()
    refused = await budget.refused()
    assert (refused.status, refused.code) == (429, "rate_limited")
    assert budget.decisions("late") == LATE_TURN_RETRIES
