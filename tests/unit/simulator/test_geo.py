from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.simulator.config import DEFAULT_IP_COUNTRIES
from app.simulator.geo import IpCountryTable, normalise_code, parse_geo_list, region_allows


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(" uk ", "GB"), ("gb", "GB"), ("us-nj", "US-NJ"), ("UK-ENG", "GB-ENG"), ("IE", "IE")],
)
def test_normalise_code(raw: str, expected: str) -> None:
    assert normalise_code(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("GB,IE", {"GB", "IE"}),
        ("UK, US", {"GB", "US"}),
        ("gb , ie,", {"GB", "IE"}),
        ("", set()),
        (None, set()),
        ("US-NJ", {"US-NJ"}),
    ],
)
def test_parse_geo_list(raw: str | None, expected: set[str]) -> None:
    assert parse_geo_list(raw) == expected


@pytest.mark.parametrize(
    ("viewer", "allow", "block", "allowed"),
    [
        ("GB", "", "", True),
        ("GB", "GB,IE", "", True),
        ("FR", "GB,IE", "", False),
        ("GB", "UK, US", "", True),
        ("GB", "UK, US", "GB, AT", False),
        ("US-NJ", "US", "", True),
        ("US-NJ", "US-NJ", "", True),
        ("US-NY", "US-NJ", "", False),
        ("US", "US-NJ", "", False),
        ("US-NY", "US", "us-ny", False),
        ("US-NJ", "US", "us-ny", True),
        ("DE", "", "fr, de", False),
        (None, "", "", True),
        (None, "", "GB", True),
        (None, "GB", "", False),
    ],
    ids=lambda value: repr(value),
)
def test_region_allows(viewer: str | None, allow: str, block: str, allowed: bool) -> None:
    assert region_allows(viewer, allow, block) is allowed


@given(st.sampled_from(["GB", "US-NJ", "FR", "DE", None]), st.text(alphabet="ABCDEFGHIJ ,-"))
def test_block_always_beats_allow(viewer: str | None, codes: str) -> None:
    if viewer is not None:
        assert region_allows(viewer, codes, viewer) is False
    assert region_allows(viewer, "", "") is True


@pytest.mark.parametrize(
    ("ip", "country"),
    [
        ("127.0.0.1", "GB"),
        ("127.200.1.1", "GB"),
        ("::1", "GB"),
        ("10.1.2.3", "US-NJ"),
        ("192.0.2.44", "FR"),
        ("198.51.100.1", "DE"),
        ("203.0.113.9", "US-NY"),
        ("8.8.8.8", None),
        ("2001:db8::1", None),
        ("not-an-ip", None),
    ],
)
def test_default_ip_table(ip: str, country: str | None) -> None:
    assert IpCountryTable.from_pairs(DEFAULT_IP_COUNTRIES).country_of(ip) == country


def test_most_specific_network_wins_and_later_entries_replace() -> None:
    table = IpCountryTable.from_pairs(DEFAULT_IP_COUNTRIES)
    table.add([("10.5.0.0/16", "CA"), ("10.5.5.5", "uk")])
    assert table.country_of("10.5.5.5") == "GB"
    assert table.country_of("10.5.9.9") == "CA"
    assert table.country_of("10.6.0.1") == "US-NJ"
    table.add([("10.5.0.0/16", "MX")])
    assert table.country_of("10.5.9.9") == "MX"


def test_bad_entries_are_refused() -> None:
    table = IpCountryTable()
    with pytest.raises(ValueError, match="does not appear"):
        table.add([("300.1.1.1", "US")])
    with pytest.raises(ValueError, match="empty country"):
        table.add([("1.1.1.1", "  ")])
