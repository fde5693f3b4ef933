from __future__ import annotations

import pytest

from app.simulator.calllog import CallLog, CallRecord
from app.simulator.limits import Limits, Method, RateLimiter


@pytest.mark.parametrize("method", ["event_all", "event_open"])
def test_spaced_methods_measure_from_the_previous_call(method: Method) -> None:
    limiter = RateLimiter(Limits(events_min_interval_s=10.0, link_rate_per_s=3))
    assert limiter.admit(method, 100.0) is True
    assert limiter.admit(method, 109.9) is False
    # The refused call counts as the previous call: 10 s after the first is still too soon.
    assert limiter.admit(method, 110.0) is False
    assert limiter.admit(method, 119.9) is False
    assert limiter.admit(method, 129.9) is True


def test_event_methods_have_separate_budgets() -> None:
    limiter = RateLimiter(Limits(events_min_interval_s=10.0, link_rate_per_s=3))
    assert limiter.admit("event_all", 0.0) is True
    assert limiter.admit("event_open", 0.5) is True
    assert limiter.admit("event_all", 1.0) is False


@pytest.mark.parametrize("method", ["stream_link", "live_stream"])
def test_windowed_methods_allow_n_per_sliding_second(method: Method) -> None:
    limiter = RateLimiter(Limits(events_min_interval_s=10.0, link_rate_per_s=3))
    assert [limiter.admit(method, t) for t in (0.0, 0.2, 0.4, 0.6)] == [True, True, True, False]
    assert limiter.admit(method, 0.99) is False
    assert limiter.admit(method, 1.0) is True  # 0.0 left the window (1.0 - 1, 1.0]
    assert limiter.admit(method, 1.1) is False
    assert limiter.admit(method, 1.21) is True


@pytest.mark.parametrize("method", ["streams", "sports"])
def test_unlimited_methods(method: Method) -> None:
    limiter = RateLimiter(Limits(events_min_interval_s=10.0, link_rate_per_s=1))
    assert all(limiter.admit(method, 5.0) for _ in range(500))


def test_limits_change_at_run_time_and_reset_forgets() -> None:
    limiter = RateLimiter(Limits(events_min_interval_s=10.0, link_rate_per_s=1))
    assert limiter.admit("event_all", 0.0)
    limiter.limits.events_min_interval_s = 1.0
    assert limiter.admit("event_all", 1.0)
    limiter.reset()
    assert limiter.admit("event_all", 1.1)


def _record(method: Method, at: float, violation: bool = False) -> CallRecord:
    return CallRecord(method, 1_800_000_000 + at, at, 200, 200, {}, violation)


def test_call_log_statistics() -> None:
    log = CallLog(max_records=3)
    for at in (0.0, 0.25, 0.5, 0.75, 3.0):
        log.record(_record("stream_link", at, violation=at == 0.75))
    log.record(_record("event_all", 0.0))
    stats = log.stats()
    assert stats["calls"] == {
        "event_all": 1,
        "event_open": 0,
        "streams": 0,
        "sports": 0,
        "stream_link": 5,
        "live_stream": 0,
    }
    assert stats["violations"] == {
        "event_all": 0,
        "event_open": 0,
        "streams": 0,
        "sports": 0,
        "stream_link": 1,
        "live_stream": 0,
    }
    min_spacing = stats["minSpacingS"]
    assert isinstance(min_spacing, dict)
    assert min_spacing["stream_link"] == 0.25
    assert min_spacing["event_all"] is None
    max_per_second = stats["maxPerSecond"]
    assert isinstance(max_per_second, dict)
    assert max_per_second["stream_link"] == 4
    # The log is capped; the statistics are not.
    assert [r.monotonic for r in log.records()] == [0.75, 3.0, 0.0]
    assert [r.monotonic for r in log.records("event_all")] == [0.0]
    log.reset()
    assert log.records() == []
    assert log.stats()["calls"] == dict.fromkeys(stats["calls"], 0)
