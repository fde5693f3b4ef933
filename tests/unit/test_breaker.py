from __future__ import annotations

import pytest

from app.upstream.breaker import CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def breaker(clock: Clock) -> CircuitBreaker:
    return CircuitBreaker(threshold=3, cooldown_s=2.0, max_cooldown_s=5.0, monotonic=clock)


def test_opens_after_threshold_consecutive_failures(breaker: CircuitBreaker) -> None:
    for _ in range(2):
        assert breaker.before("streams") is None
        breaker.failed("streams")
    assert breaker.state("streams") == "closed"
    breaker.failed("streams")
    assert breaker.state("streams") == "open"
    assert breaker.before("streams") == pytest.approx(2.0)
    assert breaker.before("sports") is None  # per method


def test_success_resets_the_count(breaker: CircuitBreaker) -> None:
    breaker.failed("streams")
    breaker.failed("streams")
    breaker.succeeded("streams")
    breaker.failed("streams")
    assert breaker.state("streams") == "closed"


def test_one_probe_after_cooldown_then_close_on_success(
    breaker: CircuitBreaker, clock: Clock
) -> None:
    for _ in range(3):
        breaker.failed("stream_link")
    clock.now += 2.0
    assert breaker.state("stream_link") == "half_open"
    assert breaker.before("stream_link") is None  # the probe
    assert breaker.before("stream_link") == pytest.approx(2.0)  # others wait
    breaker.succeeded("stream_link")
    assert breaker.state("stream_link") == "closed"
    assert breaker.before("stream_link") is None


def test_failed_probe_doubles_the_cooldown_up_to_the_cap(
    breaker: CircuitBreaker, clock: Clock
) -> None:
    for _ in range(3):
        breaker.failed("live_stream")
    cooldowns = []
    for _ in range(4):
        wait = breaker.before("live_stream")
        assert wait is not None
        cooldowns.append(round(wait, 3))
        clock.now += wait
        assert breaker.before("live_stream") is None
        breaker.failed("live_stream")
    assert cooldowns == [2.0, 4.0, 5.0, 5.0]


@pytest.mark.parametrize(
    ("threshold", "cooldown", "cap"), [(0, 1.0, 2.0), (1, 0.0, 1.0), (1, 3.0, 2.0)]
)
def test_rejects_bad_configuration(threshold: int, cooldown: float, cap: float) -> None:
    with pytest.raises(ValueError, match="threshold"):
        CircuitBreaker(threshold=threshold, cooldown_s=cooldown, max_cooldown_s=cap)
