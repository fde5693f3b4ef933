"""The record of every upstream call the simulator received, and statistics over it.

Records never hold the customerUid. Statistics are kept incrementally so that they stay
exact when the log itself is capped.
"""

from __future__ import annotations

import bisect
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass

from app.simulator.events import JsonObject
from app.simulator.limits import METHODS, WINDOW_S, Method

MAX_RECORDS = 100_000
# Recent arrival times kept per method for the spacing statistic: a call is recorded
# when it is answered, so a slow (delayed) call is recorded after calls that arrived
# later; spacing is measured between neighbours in arrival order.
MAX_ARRIVALS = 1024


@dataclass(frozen=True, slots=True)
class CallRecord:
    method: Method
    at: float  # epoch seconds
    monotonic: float
    status: int | None  # HTTP status; None when the connection was dropped
    operation_code: int | None
    params: Mapping[str, str]
    violation: bool

    def to_json(self) -> JsonObject:
        return {
            "method": self.method,
            "at": self.at,
            "monotonic": self.monotonic,
            "status": self.status,
            "operationCode": self.operation_code,
            "params": dict(self.params),
            "violation": self.violation,
        }


class CallLog:
    """Appends records and keeps per-method counts, violations, spacing and peak rate."""

    def __init__(self, max_records: int = MAX_RECORDS) -> None:
        self._records: deque[CallRecord] = deque(maxlen=max_records)
        self._calls: Counter[Method] = Counter()
        self._violations: Counter[Method] = Counter()
        self._arrivals: dict[Method, list[float]] = {m: [] for m in METHODS}
        self._min_spacing: dict[Method, float] = {}
        self._windows: dict[Method, deque[float]] = {m: deque() for m in METHODS}
        self._max_per_second: Counter[Method] = Counter()

    def record(self, record: CallRecord) -> None:
        method, now = record.method, record.monotonic
        self._records.append(record)
        self._calls[method] += 1
        if record.violation:
            self._violations[method] += 1
        arrivals = self._arrivals[method]
        index = bisect.bisect(arrivals, now)
        for neighbour in arrivals[max(0, index - 1) : index + 1]:
            spacing = abs(now - neighbour)
            self._min_spacing[method] = min(spacing, self._min_spacing.get(method, spacing))
        arrivals.insert(index, now)
        if len(arrivals) > MAX_ARRIVALS:
            del arrivals[0]
        window = self._windows[method]
        while window and window[0] <= now - WINDOW_S:
            window.popleft()
        window.append(now)
        self._max_per_second[method] = max(self._max_per_second[method], len(window))

    def records(self, method: str | None = None) -> list[CallRecord]:
        return [r for r in self._records if method is None or r.method == method]

    def stats(self) -> JsonObject:
        return {
            "calls": {m: self._calls[m] for m in METHODS},
            "violations": {m: self._violations[m] for m in METHODS},
            "minSpacingS": {m: self._min_spacing.get(m) for m in METHODS},
            "maxPerSecond": {m: self._max_per_second[m] for m in METHODS},
        }

    def reset(self) -> None:
        self._records.clear()
        self._calls.clear()
        self._violations.clear()
        for arrivals in self._arrivals.values():
            arrivals.clear()
        self._min_spacing.clear()
        for window in self._windows.values():
            window.clear()
        self._max_per_second.clear()
