"""The fleet's line in ``admission.lua``, over fakeredis and a real redis-server:
arrival order, a place kept, the grace period, renewals and session ownership.

Time is Redis's clock: expected times are bounded by the wall time the test itself
took (``Elapsed``). Rates are slow unless a test needs a slot to come round.
"""

from __future__ import annotations

import hashlib
import time
import uuid

import pytest
import redis.asyncio as redis_asyncio

from app.ratelimit.admission import Admission, LinkAdmission
from app.ratelimit.line import LinePolicy
from app.ratelimit.sessions import NewSession, SessionLimits, ViewingSessions
from tests.support.polling import eventually

SLOW = LinePolicy(
    main_rate_per_s=1, renewal_rate_per_s=0, burst=1, hold_s=0.5, grace_s=30, renewal_lead_s=5
)


def viewer_digest(viewer: str) -> str:
    return hashlib.sha256(viewer.encode()).hexdigest()


class Elapsed:
    def __init__(self) -> None:
        self._start = time.monotonic()

    @property
    def s(self) -> float:
        return time.monotonic() - self._start + 0.001


async def ask(
    links: LinkAdmission,
    viewer: str,
    line: LinePolicy = SLOW,
    *,
    session: NewSession | None = None,
    user: str | None = None,
) -> Admission:
    return await links.admit(
        dedupe_key=uuid.uuid4().hex,
        user_key=user or viewer,
        viewer_key=viewer,
        methods=("stream_link",),
        line=line,
        user_rate_per_s=1000,
        user_burst=1000,
        session=session,
    )


async def test_places_are_given_in_arrival_order(store: redis_asyncio.Redis) -> None:
    links = LinkAdmission(store)
    elapsed = Elapsed()
    first = await ask(links, "v0")
    got = [await ask(links, f"v{i}") for i in range(1, 6)]
    slack = elapsed.s

    assert first.outcome == "admitted"
    assert first.wait_s == 0
    assert [a.outcome for a in got] == ["queued"] * 5  # 1 s slots, 0.5 s hold
    assert [a.position for a in got] == [2, 3, 4, 5, 6]
    for place, eta in zip(got, (1, 2, 3, 4, 5), strict=True):
        assert eta - slack <= place.eta_s <= eta
        assert place.retry_after_s == pytest.approx(place.eta_s - SLOW.hold_s, abs=0.002)
    assert [a.line_length for a in got] == [1, 2, 3, 4, 5]


async def test_coming_back_early_keeps_the_place_and_gains_nothing(
    store: redis_asyncio.Redis,
) -> None:
    links = LinkAdmission(store)
    for i in range(3):
        await ask(links, f"ahead-{i}")
    elapsed = Elapsed()
    place = await ask(links, "me")
    behind = await ask(links, "behind")
    again = [await ask(links, "me") for _ in range(3)]
    slack = elapsed.s

    assert place.outcome == behind.outcome == "queued"
    for answer in again:
        assert answer.outcome == "queued"
        assert place.eta_s - slack <= answer.eta_s <= place.eta_s
        assert answer.position == place.position
    # nothing was taken from the budget: the next newcomer is right behind "behind"
    newcomer = await ask(links, "newcomer")
    assert newcomer.position == behind.position + 1


async def test_a_place_is_claimed_within_its_hold_window(store: redis_asyncio.Redis) -> None:
    line = LinePolicy(
        main_rate_per_s=5, renewal_rate_per_s=0, burst=1, hold_s=0.2, grace_s=30, renewal_lead_s=5
    )
    links = LinkAdmission(store)
    for i in range(3):  # slots now, +0.2, +0.4
        await ask(links, f"ahead-{i}", line)
    place = await ask(links, "me", line)  # +0.6
    assert place.outcome == "queued"
    claimed: list[Admission] = []

    async def admitted() -> bool:
        claimed.append(await ask(links, "me", line))
        return claimed[-1].outcome == "admitted"

    await eventually(admitted, "the place comes within its hold window")
    assert 0 <= claimed[-1].wait_s <= line.hold_s
    assert 0.6 - line.hold_s - 0.05 <= claimed[-1].in_line_s <= 10
    assert all(a.outcome == "queued" for a in claimed[:-1])
    # claimed: the place is gone from the line
    assert await store.zscore(links.line_key, viewer_digest("me")) is None
    assert await store.zscore(links.line_key, viewer_digest("ahead-2")) is not None


async def test_a_place_not_claimed_in_time_is_given_up(store: redis_asyncio.Redis) -> None:
    line = LinePolicy(
        main_rate_per_s=10, renewal_rate_per_s=0, burst=1, hold_s=0, grace_s=0.1, renewal_lead_s=5
    )
    links = LinkAdmission(store)
    await ask(links, "first", line)
    gone = await ask(links, "walks-away", line)
    assert gone.outcome == "queued"
    given_up: list[int] = []

    async def counted() -> bool:
        answer = await ask(links, f"later-{uuid.uuid4().hex}", line)
        given_up.append(answer.given_up)
        return sum(given_up) >= 1

    await eventually(counted, "the unclaimed place is given up")
    assert sum(given_up) == 1  # "walks-away" only; the polling viewers' places are newer
    back = await ask(links, "walks-away", line)
    assert back.outcome == "queued"
    assert back.position > gone.position  # a new place, at the back


async def test_a_renewal_that_can_wait_comes_back_later_and_takes_no_place(
    store: redis_asyncio.Redis,
) -> None:
    links = LinkAdmission(store)
    for i in range(5):  # a line of 5 s
        await ask(links, f"crowd-{i}")
    # the renewing viewer's link expires in 60 s: after the line, 55 s to spare
    await links.remember(
        "d", b"{}", 0, viewer_key="renewer", expires_at_s=time.time() + 60, expires_in_s=60
    )
    deferred = await ask(links, "renewer")
    assert deferred.outcome == "deferred"
    assert 4 - 1 <= deferred.retry_after_s <= 5 - SLOW.hold_s
    assert await store.zscore(links.line_key, viewer_digest("renewer")) is None
    newcomer = await ask(links, "newcomer")
    assert newcomer.position == 6  # the renewal took nothing ahead of it


async def test_a_renewal_near_its_deadline_takes_the_renewal_lane(
    store: redis_asyncio.Redis,
) -> None:
    line = LinePolicy(
        main_rate_per_s=1, renewal_rate_per_s=1, burst=1, hold_s=0.5, grace_s=30, renewal_lead_s=30
    )
    links = LinkAdmission(store)
    for i in range(10):  # a main line of 10 s
        await ask(links, f"crowd-{i}", line)
    expires_at = time.time() + 20  # 10 s of line + 30 s of lead > 20 s
    await links.remember(
        "d", b"{}", 0, viewer_key="renewer", expires_at_s=expires_at, expires_in_s=20
    )
    elapsed = Elapsed()
    renewal = await ask(links, "renewer", line)
    assert renewal.outcome == "admitted"  # the renewal lane is free now
    assert renewal.wait_s <= elapsed.s
    behind = await ask(links, "newcomer", line)
    assert behind.position == 11  # nothing taken from the main lane


async def test_a_session_belongs_to_its_user_event_and_stream(store: redis_asyncio.Redis) -> None:
    links = LinkAdmission(store)
    sessions = ViewingSessions(store)
    limits = SessionLimits(max_per_user=1, ttl_s=60, policy="refuse")
    fast = LinePolicy(1000, 0, 100, 0.5, 30, 5)

    def session(event: str, asked: str | None = None) -> NewSession:
        fresh = uuid.uuid4().hex
        return sessions.new(
            "alice",
            asked or fresh,
            limits,
            {"eventId": event, "streamName": "HLS"},
            continued=asked is not None,
            fresh_id=fresh,
        )

    first = await ask(links, "alice-e1", fast, session=session("E1"), user="alice")
    assert first.outcome == "admitted"
    assert first.session_id is not None
    # renewing the same event's session: continued, not counted
    renewed = await ask(
        links, "alice-e1", fast, session=session("E1", first.session_id), user="alice"
    )
    assert renewed.outcome == "admitted"
    assert renewed.session_id == first.session_id
    # naming it for another event: a new session, counted (and refused at 1)
    other = await ask(
        links, "alice-e2", fast, session=session("E2", first.session_id), user="alice"
    )
    assert other.outcome == "too_many_streams"
    # a made-up id: a new session too
    made_up = await ask(links, "alice-e2", fast, session=session("E2", "made-up"), user="alice")
    assert made_up.outcome == "too_many_streams"
    owned = await sessions.of_user("alice")
    assert [(s.session_id, s.about["eventId"]) for s in owned] == [(first.session_id, "E1")]


async def test_another_events_session_is_not_taken_over_under_evict_oldest(
    store: redis_asyncio.Redis,
) -> None:
    links = LinkAdmission(store)
    sessions = ViewingSessions(store)
    limits = SessionLimits(max_per_user=2, ttl_s=60, policy="evict_oldest")
    fast = LinePolicy(1000, 0, 100, 0.5, 30, 5)
    about: dict[str, object] = {"eventId": "E1", "streamName": "HLS"}
    first = await ask(
        links, "a1", fast, session=sessions.new("bob", "s1", limits, about), user="bob"
    )
    about2: dict[str, object] = {"eventId": "E2", "streamName": "HLS"}
    second = await ask(
        links,
        "a2",
        fast,
        session=sessions.new("bob", "s1", limits, about2, continued=True, fresh_id="s2"),
        user="bob",
    )
    assert (first.session_id, second.session_id) == ("s1", "s2")
    owned = {s.session_id: s.about["eventId"] for s in await sessions.of_user("bob")}
    assert owned == {"s1": "E1", "s2": "E2"}


async def test_a_turn_not_taken_on_time_keeps_the_place_first_in_line(
    store: redis_asyncio.Redis,
) -> None:
    line = LinePolicy(
        main_rate_per_s=1, renewal_rate_per_s=1, burst=1, hold_s=0.5, grace_s=30, renewal_lead_s=5
    )
    links = LinkAdmission(store)
    for i in range(5):  # the main lane is taken for 5 s
        await ask(links, f"crowd-{i}", line)
    await links.keep_place("too-late", line)
    elapsed = Elapsed()
    back = await ask(links, "too-late", line)
    assert back.outcome == "admitted"
    assert back.wait_s <= elapsed.s  # first: the renewal lane's turn, now
    assert (await ask(links, "newcomer", line)).position == 6  # the main lane untouched
    again = await ask(links, "too-late-2", line)
    assert again.position == 7  # a newcomer, not a claim


async def test_a_turn_not_taken_on_time_is_held_no_longer_than_the_hold_bound(
    store: redis_asyncio.Redis,
) -> None:
    """No renewal lane: the next turn is 5 s off, past the hold bound. The viewer keeps
    a place at that turn, ahead of the newcomers, and is told so (not held until it)."""
    links = LinkAdmission(store)
    elapsed = Elapsed()
    for i in range(5):  # the main lane is taken for 5 s
        await ask(links, f"crowd-{i}", SLOW)
    await links.keep_place("too-late", SLOW)
    back = await ask(links, "too-late", SLOW)
    assert (back.outcome, back.position) == ("queued", 6)
    assert 5 - elapsed.s <= back.eta_s <= 5
    assert (await ask(links, "newcomer", SLOW)).position == 7  # behind it


async def test_the_renewal_lane_has_no_burst_of_its_own(store: redis_asyncio.Redis) -> None:
    line = LinePolicy(
        main_rate_per_s=0.1, renewal_rate_per_s=1, burst=3, hold_s=5, grace_s=30, renewal_lead_s=5
    )
    links = LinkAdmission(store)
    for i in range(4):  # the main lane's burst, then 10 s to its next turn
        await ask(links, f"crowd-{i}", line)
    turns = []
    for viewer in ("late-1", "late-2", "late-3"):
        await links.keep_place(viewer, line)
        turns.append(await ask(links, viewer, line))
    assert [t.outcome for t in turns] == ["admitted"] * 3
    waits = [t.wait_s for t in turns]
    assert waits[0] < 0.2 < 0.8 < waits[1] <= 1.0 < 1.8 < waits[2] <= 2.0, waits
