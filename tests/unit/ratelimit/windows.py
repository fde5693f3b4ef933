"""Sliding-window counting shared by the rate-limit tests."""

from __future__ import annotations

from collections.abc import Iterable


def max_in_window(calls: Iterable[tuple[float, int]], length: float) -> int:
    """The largest total weight of calls inside any closed window ``[a, a + length]``."""
    ordered = sorted(calls)
    best = total = 0
    lo = 0
    for at, weight in ordered:
        total += weight
        while ordered[lo][0] < at - length:
            total -= ordered[lo][1]
            lo += 1
        best = max(best, total)
    return best
