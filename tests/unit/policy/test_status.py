from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from app.policy.status import StatusVerdict, status_verdict

NOW = datetime(2024, 5, 1, 18, 0, tzinfo=UTC)
PAST = NOW - timedelta(minutes=5)
FUTURE = NOW + timedelta(minutes=5)

CASES = [
    # id, status, start_time, expected
    ("never-seen", None, None, StatusVerdict.UNKNOWN),
    ("never-seen-with-start", None, PAST, StatusVerdict.UNKNOWN),
    ("open", "O", None, StatusVerdict.PROCEED),
    ("open-future-start", "O", FUTURE, StatusVerdict.PROCEED),
    ("open-lower-case", "o", None, StatusVerdict.PROCEED),
    ("open-padded", " O ", None, StatusVerdict.PROCEED),
    ("pending-no-start", "P", None, StatusVerdict.PENDING),
    ("pending-future-start", "P", FUTURE, StatusVerdict.PENDING),
    ("pending-start-now-is-stale", "P", NOW, StatusVerdict.PROCEED),
    ("pending-start-passed-is-stale", "P", PAST, StatusVerdict.PROCEED),
    ("pending-one-microsecond-ahead", "P", NOW + timedelta(microseconds=1), StatusVerdict.PENDING),
    ("pending-naive-past-start-is-utc", "P", PAST.replace(tzinfo=None), StatusVerdict.PROCEED),
    ("closed", "C", None, StatusVerdict.CLOSED),
    ("closed-start-passed", "C", PAST, StatusVerdict.CLOSED),
    ("void", "V", None, StatusVerdict.VOID),
    ("void-start-passed", "V", PAST, StatusVerdict.VOID),
    ("empty-code", "", None, StatusVerdict.UNKNOWN),
    ("unknown-code", "X", PAST, StatusVerdict.UNKNOWN),
    ("word-not-code", "OPEN", None, StatusVerdict.UNKNOWN),
]


@pytest.mark.parametrize(
    ("status", "start_time", "expected"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_status_verdict(
    status: str | None, start_time: datetime | None, expected: StatusVerdict
) -> None:
    assert status_verdict(status, start_time, NOW) is expected


def test_offsets_are_compared_as_instants() -> None:
    # 19:30+02:00 is 17:30 UTC: the event started before 18:00 UTC.
    start = datetime(2024, 5, 1, 19, 30, tzinfo=timezone(timedelta(hours=2)))
    assert status_verdict("P", start, NOW) is StatusVerdict.PROCEED
    assert status_verdict("P", start + timedelta(hours=1), NOW) is StatusVerdict.PENDING
