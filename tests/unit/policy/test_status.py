from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from app.policy.status import StatusVerdict, pending_retry_after_s, status_verdict

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


RETRY_CASES = [
    # id, start_time, next list in (s), near (s), expected retry (s)
    ("no-start-time-next-list", None, 7.0, 10.0, 7.0),
    ("far-start-comes-back-when-near", NOW + timedelta(hours=1), 7.0, 10.0, 3590.0),
    ("near-start-next-list", NOW + timedelta(seconds=8), 7.0, 10.0, 7.0),
    ("just-before-near-next-list-wins", NOW + timedelta(seconds=12), 7.0, 10.0, 7.0),
    ("just-near-time-wins", NOW + timedelta(seconds=20), 7.0, 10.0, 10.0),
    ("start-passed-next-list", PAST, 3.5, 10.0, 3.5),
    ("naive-start-is-utc", (NOW + timedelta(minutes=1)).replace(tzinfo=None), 2.0, 10.0, 50.0),
]


@pytest.mark.parametrize(
    ("start_time", "next_list_in_s", "near_s", "expected"),
    [case[1:] for case in RETRY_CASES],
    ids=[case[0] for case in RETRY_CASES],
)
def test_pending_retry_after(
    start_time: datetime | None, next_list_in_s: float, near_s: float, expected: float
) -> None:
    retry = pending_retry_after_s(start_time, NOW, next_list_in_s=next_list_in_s, near_s=near_s)
    assert retry == pytest.approx(expected)
