"""The upstream's spellings: body keys in any case, operationCode as a number or as
text, the delta form of Retry-After only, and zero-padded ``DD-MM-YYYY`` dates."""

from __future__ import annotations

from datetime import date

import httpx
import pytest

from app.upstream.wire import body_field, operation_code, retry_after_s, wire_date


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"message": "no"}, "no"),
        ({"Message": "no"}, "no"),
        ({"MESSAGE": "no"}, "no"),
        ({"other": "no"}, None),
        (["message"], None),
        ("message", None),
    ],
    ids=["lower", "capitalised", "upper", "absent", "a-list", "a-string"],
)
def test_a_body_field_is_found_whatever_its_case(body: object, expected: object) -> None:
    assert body_field(body, "message") == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (300, 300),
        ("300", 300),
        (" 300 ", 300),
        (300.0, 300),
        (300.5, None),
        (True, None),
        ("3OO", None),
        ("\u0663\u0660\u0660", None),  # Arabic-Indic digits: isdigit, but not ASCII
        (None, None),
    ],
    ids=["int", "text", "padded", "whole-float", "fraction", "bool", "letters", "arabic", "null"],
)
def test_operation_codes(value: object, expected: int | None) -> None:
    assert operation_code({"operationCode": value}) == expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("5", 5.0),
        ("0.5", 0.5),
        ("-3", 0.0),
        ("inf", None),
        ("nan", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", None),
        (None, None),
    ],
    ids=["seconds", "fraction", "negative", "infinite", "nan", "http-date", "absent"],
)
def test_retry_after_is_the_delta_form(header: str | None, expected: float | None) -> None:
    headers = {} if header is None else {"Retry-After": header}
    assert retry_after_s(httpx.Response(429, headers=headers)) == expected


@pytest.mark.parametrize(
    ("day", "expected"),
    [(date(2026, 12, 7), "07-12-2026"), (date(999, 1, 2), "02-01-0999")],
    ids=["today", "a-year-before-1000"],
)
def test_wire_dates_are_zero_padded(day: date, expected: str) -> None:
    assert wire_date(day) == expected
