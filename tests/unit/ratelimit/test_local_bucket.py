"""LocalTokenBucket: reservation semantics on a fake clock."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.ratelimit.local_bucket import LocalTokenBucket, Reservation
from tests.unit.ratelimit.windows import max_in_window


@dataclass
class FakeClock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass(frozen=True)
class Step:
    at: float  # seconds since the bucket was made
    max_wait_s: float
    expect: Reservation
    cost: int = 1


def R(allowed: bool, wait_s: float = 0.0, retry_after_s: float = 0.0) -> Reservation:  # noqa: N802
    return Reservation(allowed, wait_s, retry_after_s)


# rate 10/s (one token per 0.1 s), burst 3
CASES: dict[str, list[Step]] = {
    "burst then refused without waiting": [
        Step(0.0, 0.0, R(True)),
        Step(0.0, 0.0, R(True)),
        Step(0.0, 0.0, R(True)),
        Step(0.0, 0.0, R(False, retry_after_s=0.1)),
        Step(0.05, 0.0, R(False, retry_after_s=0.05)),
        Step(0.1, 0.0, R(True)),
    ],
    "reservations queue up to max_wait": [
        Step(0.0, 0.25, R(True)),
        Step(0.0, 0.25, R(True)),
        Step(0.0, 0.25, R(True)),
        Step(0.0, 0.25, R(True, wait_s=0.1)),
        Step(0.0, 0.25, R(True, wait_s=0.2)),
        Step(0.0, 0.25, R(False, retry_after_s=0.05)),
        Step(0.05, 0.25, R(True, wait_s=0.25)),
    ],
    "refusal consumes nothing": [
        Step(0.0, 0.0, R(True, 0.0), cost=3),
        Step(0.0, 0.0, R(False, retry_after_s=0.3), cost=3),
        Step(0.0, 0.0, R(False, retry_after_s=0.1)),
        Step(0.1, 0.0, R(True)),
    ],
    "idle time refills only up to burst": [
        Step(0.0, 0.0, R(True), cost=3),
        Step(60.0, 0.0, R(True), cost=3),
        Step(60.0, 0.0, R(False, retry_after_s=0.1)),
    ],
    "larger cost waits longer": [
        Step(0.0, 1.0, R(True), cost=3),
        Step(0.0, 1.0, R(True, wait_s=0.2), cost=2),
        Step(0.0, 1.0, R(True, wait_s=0.3)),
    ],
}


@pytest.mark.parametrize("steps", list(CASES.values()), ids=list(CASES))
def test_reservations(steps: list[Step]) -> None:
    clock = FakeClock()
    bucket = LocalTokenBucket(10, 3, monotonic=clock)
    start = clock.now
    for i, step in enumerate(steps):
        clock.now = start + step.at
        got = bucket.try_reserve(step.cost, step.max_wait_s)
        assert got.allowed == step.expect.allowed, f"step {i}: {got}"
        assert got.wait_s == pytest.approx(step.expect.wait_s), f"step {i}: {got}"
        assert got.retry_after_s == pytest.approx(step.expect.retry_after_s), f"step {i}: {got}"


def test_tokens_left_goes_negative_with_reservations_and_refills() -> None:
    clock = FakeClock()
    bucket = LocalTokenBucket(10, 2, monotonic=clock)
    assert bucket.tokens_left() == 2
    for _ in range(4):
        assert bucket.try_reserve(max_wait_s=1.0).allowed
    assert bucket.tokens_left() == pytest.approx(-2)
    clock.now += 0.35
    assert bucket.tokens_left() == pytest.approx(1.5)
    clock.now += 10
    assert bucket.tokens_left() == 2


@pytest.mark.parametrize(
    ("rate", "burst", "cost", "max_wait"),
    [(0, 1, 1, 0.0), (1, 0, 1, 0.0), (1, 2, 0, 0.0), (1, 2, 3, 0.0), (1, 2, 1, -0.1)],
    ids=["zero rate", "zero burst", "zero cost", "cost above burst", "negative wait"],
)
def test_rejects_nonsense(rate: float, burst: int, cost: int, max_wait: float) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        LocalTokenBucket(rate, burst).try_reserve(cost, max_wait)


@settings(max_examples=300, deadline=None)
@given(
    rate=st.sampled_from([0.5, 1.0, 3.0, 10.0, 20.0, 37.5]),
    burst=st.integers(1, 8),
    max_wait_s=st.sampled_from([0.0, 0.05, 0.25, 1.0, 3.0]),
    requests=st.lists(
        st.tuples(st.floats(0.0, 0.3, allow_nan=False), st.integers(1, 8)),
        min_size=1,
        max_size=200,
    ),
)
def test_honoured_waits_never_exceed_rate_plus_burst_per_second(
    rate: float,
    burst: int,
    max_wait_s: float,
    requests: list[tuple[float, int]],
) -> None:
    clock = FakeClock()
    bucket = LocalTokenBucket(rate, burst, monotonic=clock)
    calls: list[tuple[float, int]] = []
    for gap, wanted in requests:
        clock.now += gap
        cost = min(wanted, burst)
        got = bucket.try_reserve(cost, max_wait_s)
        if got.allowed:
            assert 0 <= got.wait_s <= max_wait_s + 1e-9
            calls.append((clock.now + got.wait_s, cost))
        else:
            assert got.retry_after_s > 0
    # Closed 1-second windows, shortened by float noise only.
    assert max_in_window(calls, 1.0 - 1e-9) <= rate + burst + 1e-9


def test_window_check_catches_callers_that_ignore_waits() -> None:
    """The property above can fail: the same bucket, waits ignored, overflows."""
    clock = FakeClock()
    bucket = LocalTokenBucket(20, 5, monotonic=clock)
    calls: list[tuple[float, int]] = []
    for _ in range(100):
        clock.now += 0.01
        if bucket.try_reserve(1, 0.5).allowed:
            calls.append((clock.now, 1))
    assert max_in_window(calls, 1.0) > 25
