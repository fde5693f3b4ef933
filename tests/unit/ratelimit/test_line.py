"""LinePolicy's split of the budget and LocalLine, the line one replica keeps while the
store is unreachable, on an injected clock."""

from __future__ import annotations

import pytest

from app.ratelimit.line import LinePolicy, LocalLine
from app.services import sustained_rate
from tests.unit.ratelimit.windows import max_in_window

LINK = ("stream_link",)
RAW = ("stream_link", "live_stream")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def policy(**changes: float) -> LinePolicy:
    values: dict[str, float] = {
        "main_rate_per_s": 1,
        "renewal_rate_per_s": 0,
        "burst": 1,
        "hold_s": 0.5,
        "grace_s": 10,
        "renewal_lead_s": 5,
    } | changes
    return LinePolicy(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("rate", "share", "main", "renewal"),
    [
        (140, 0.05, 133, 7),
        (19, 0.05, 18, 1),  # at least one slot a second
        (19, 0.0, 19, 0),
        (1, 0.05, 1, 0),  # too small a budget to split
    ],
    ids=["production", "small budget", "no share", "tiny budget"],
)
def test_the_renewal_lane_is_a_whole_share_of_the_budget(
    rate: float, share: float, main: float, renewal: float
) -> None:
    split = LinePolicy.for_budget(
        rate, 10, renewal_share=share, hold_s=8, grace_s=10, renewal_lead_s=30
    )
    assert (split.main_rate_per_s, split.renewal_rate_per_s) == (main, renewal)
    assert split.share(2).main_rate_per_s == main / 2


def test_places_in_arrival_order_then_held_then_claimed() -> None:
    clock = Clock()
    line = LocalLine(policy(), monotonic=clock)
    first = line.admit("a", LINK)
    assert (first.outcome, first.wait_s) == ("admitted", 0)
    places = [line.admit(v, LINK) for v in "bcd"]
    assert [p.outcome for p in places] == ["queued"] * 3
    assert [p.eta_s for p in places] == [1, 2, 3]
    assert [p.position for p in places] == [2, 3, 4]
    assert [p.retry_after_s for p in places] == [0.5, 1.5, 2.5]
    assert len(line) == 3

    clock.now += 0.2  # early: same place, nothing gained
    early = line.admit("c", LINK)
    assert early.outcome == "queued"
    assert early.eta_s == pytest.approx(1.8)
    clock.now += places[1].retry_after_s - 0.2  # comes back as told
    claimed = line.admit("c", LINK)
    assert claimed.outcome == "admitted"
    assert claimed.wait_s == pytest.approx(0.5)
    assert claimed.in_line_s == pytest.approx(1.5)
    assert len(line) == 2


def test_an_unclaimed_place_is_given_up_after_its_grace() -> None:
    clock = Clock()
    line = LocalLine(policy(grace_s=2), monotonic=clock)
    line.admit("a", LINK)
    assert line.admit("b", LINK).outcome == "queued"  # slot at +1
    clock.now += 3.5
    later = line.admit("c", LINK)
    assert later.given_up == 1
    assert len(line) == 0
    assert later.outcome == "admitted"  # the budget was free again
    again = line.admit("b", LINK)  # a new place, behind c
    assert again.outcome == "queued"
    assert again.eta_s == pytest.approx(1)


def test_a_late_claim_within_the_grace_takes_the_sooner_lane() -> None:
    clock = Clock()
    line = LocalLine(policy(renewal_rate_per_s=1, grace_s=5), monotonic=clock)
    line.admit("a", LINK)
    line.admit("b", LINK)  # slot at +1
    for viewer in "cdef":
        line.admit(viewer, LINK)  # main lane busy until +6
    clock.now += 3  # b's slot went by 2 s ago
    late = line.admit("b", LINK)
    assert late.outcome == "admitted"
    assert late.wait_s == 0  # the renewal lane was free


def test_renewals_wait_when_they_can_and_jump_the_line_when_they_cannot() -> None:
    clock = Clock()
    line = LocalLine(policy(renewal_rate_per_s=1, renewal_lead_s=5), monotonic=clock)
    for viewer in "abcdef":
        line.admit(viewer, LINK)  # main line to +6
    line.remember("far", 30)
    line.remember("near", 8)
    far = line.admit("far", LINK)
    assert far.outcome == "deferred"
    assert far.retry_after_s == pytest.approx(6 - 0.5)
    near = line.admit("near", LINK)
    assert (near.outcome, near.wait_s) == ("admitted", 0)
    assert line.admit("newcomer", LINK).eta_s == pytest.approx(6)  # nothing taken


def test_a_crowd_honouring_its_answers_never_exceeds_the_share() -> None:
    """400 viewers over 4 s at 19 slots a second, each coming back when told: the calls
    made stay within rate + burst in every second, in arrival order."""
    clock = Clock()
    split = LinePolicy.for_budget(
        19, 1, renewal_share=0.05, hold_s=8, grace_s=10, renewal_lead_s=30
    )
    line = LocalLine(split, monotonic=clock)
    start = clock.now
    comeback: list[tuple[float, str]] = [(start + i * 0.01, f"v{i}") for i in range(400)]
    calls: list[tuple[float, str]] = []
    while comeback:
        comeback.sort()
        at, viewer = comeback.pop(0)
        clock.now = at
        verdict = line.admit(viewer, RAW)
        if verdict.outcome == "admitted":
            calls.append((at + verdict.wait_s, viewer))
        else:
            assert verdict.outcome == "queued"
            comeback.append((at + max(1, -(-verdict.retry_after_s // 1)), viewer))
    assert len(calls) == 400
    assert max_in_window([(t, 1) for t, _ in calls], 1.0) <= 19
    served = [v for _, v in sorted(calls)]
    assert served == [f"v{i}" for i in range(400)]


def test_a_turn_not_taken_on_time_keeps_the_place() -> None:
    clock = Clock()
    line = LocalLine(policy(renewal_rate_per_s=1), monotonic=clock)
    for viewer in "abcde":
        line.admit(viewer, LINK)  # main lane to +5
    line.keep_place("late")
    back = line.admit("late", LINK)
    assert (back.outcome, back.wait_s) == ("admitted", 0)  # the renewal lane, now
    assert line.admit("next", LINK).eta_s == pytest.approx(5)
    assert line.admit("late", LINK).eta_s == pytest.approx(6)  # claimed once only


def test_a_turn_not_taken_on_time_is_held_no_longer_than_the_hold_bound() -> None:
    """Asked again with the next turn further off than the hold bound, the viewer keeps
    its place at that turn (first in line) and is told so, not held until it."""
    clock = Clock()
    line = LocalLine(policy(), monotonic=clock)  # no renewal lane: the next turn is +5
    for viewer in "abcde":
        line.admit(viewer, LINK)  # main lane to +5
    line.keep_place("late")
    back = line.admit("late", LINK)
    assert back.outcome == "queued"
    assert back.eta_s == pytest.approx(5)
    assert line.admit("next", LINK).eta_s == pytest.approx(6)  # behind it
    clock.now += 5
    claimed = line.admit("late", LINK)
    assert (claimed.outcome, claimed.wait_s) == ("admitted", 0)


def test_the_renewal_lane_adds_no_burst() -> None:
    """Main lane 133/s with a burst of 10, renewal lane 7/s: a flood of late claims and
    newcomers never has more than 149 calls in a second (the budget's 150, one spare)."""
    clock = Clock()
    split = LinePolicy.for_budget(
        140, 10, renewal_share=0.05, hold_s=8, grace_s=10, renewal_lead_s=30
    )
    line = LocalLine(split, monotonic=clock)
    calls: list[float] = []
    for i in range(600):
        viewer = f"v{i}"
        if i % 3 == 0:
            line.keep_place(viewer)  # a late claim: the sooner lane
        verdict = line.admit(viewer, LINK)
        if verdict.outcome == "admitted":
            calls.append(clock.now + verdict.wait_s)
        clock.now += 0.002
    assert max_in_window([(t, 1) for t in calls], 1.0) <= 149


@pytest.mark.parametrize(
    ("rate", "burst", "sustained"),
    [(150, 10, 137), (20, 1, 19), (11, 10, 1), (150, 148, 1)],
    ids=["production", "small budget", "no room to spare", "burst near the rate"],
)
def test_turns_leave_room_for_calls_taken_late(rate: int, burst: int, sustained: float) -> None:
    """At 150/s a turn taken 20 ms late can push 3 calls into the next second."""
    assert sustained_rate(rate, burst) == sustained
