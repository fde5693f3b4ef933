from __future__ import annotations

import pytest

from app.policy.countries import normalise_code, parse_code_list


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("GB", "GB"),
        (" gb ", "GB"),
        ("UK", "GB"),
        ("uk", "GB"),
        ("us-nj", "US-NJ"),
        ("UK-ENG", "GB-ENG"),
        ("", None),
        ("G", None),
        ("GBR", None),
        ("G1", None),
        ("u\u017f", None),  # long s upper-cases to S
        ("\ufb00", None),  # ligature upper-cases to FF
        ("\uff27\uff22", None),  # full-width letters
        ("US-", None),
        ("US-NJ-X", None),
    ],
)
def test_normalise_code(raw: str, expected: str | None) -> None:
    assert normalise_code(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("GB,IE", ("GB", "IE")),
        ("UK, US", ("GB", "US")),
        ("uk , gb,IE", ("GB", "IE")),
        ("", ()),
        (None, ()),
        (" , ,", ()),
        (["us-nj", "US"], ("US-NJ", "US")),
        ("GB,,??,IE", ("GB", "IE")),
        (42, ()),
    ],
)
def test_parse_code_list(raw: object, expected: tuple[str, ...]) -> None:
    assert parse_code_list(raw) == expected
