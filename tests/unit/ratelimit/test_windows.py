from __future__ import annotations

import pytest

from tests.unit.ratelimit.windows import max_in_window


@pytest.mark.parametrize(
    ("calls", "expected"),
    [
        ([], 0),
        ([(0.0, 1)], 1),
        ([(0.0, 1), (1.0, 1)], 2),
        ([(0.0, 1), (1.0001, 1)], 1),
        ([(0.0, 2), (0.5, 3), (1.2, 1), (1.4, 1)], 5),
        ([(2.0, 1), (0.0, 1), (0.9, 1), (1.8, 1)], 2),
        ([(1.6, 1), (0.0, 1), (0.5, 1), (1.0, 1)], 3),
    ],
)
def test_max_in_window(calls: list[tuple[float, int]], expected: int) -> None:
    assert max_in_window(calls, 1.0) == expected
