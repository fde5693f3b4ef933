from __future__ import annotations

from collections.abc import Iterator
from ipaddress import ip_address
from pathlib import Path

import maxminddb
import pytest
from structlog.testing import capture_logs

from app.identity.country import CountryResolver
from app.identity.viewer_ip import IPAddress
from app.policy.geo import ViewerLocation
from tests.support.mmdb_writer import MmdbWriter, Value

NJ_IP = ip_address("203.0.113.9")
LONDON_IP = ip_address("81.2.69.160")
NO_SUBDIVISION_IP = ip_address("198.51.100.20")
ODD_RECORD_IP = ip_address("192.0.2.50")
IPV6_NJ = ip_address("2001:db8::42")
NOWHERE_IP = ip_address("8.8.8.8")

US_NJ = ViewerLocation("US", "US-NJ", "geoip")
UNKNOWN = ViewerLocation(None, None, "unknown")


@pytest.fixture(scope="module")
def geoip_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    writer = MmdbWriter()
    nj: Value = {
        "country": {"iso_code": "US", "names": {"en": "United States"}},
        "subdivisions": [{"iso_code": "NJ", "names": {"en": "New Jersey"}}],
    }
    writer.insert("203.0.113.0/24", nj)
    writer.insert("2001:db8::/32", nj)
    writer.insert(
        "81.2.69.0/24",
        {"country": {"iso_code": "GB"}, "subdivisions": [{"iso_code": "ENG"}, {"iso_code": "LND"}]},
    )
    writer.insert("198.51.100.0/24", {"country": {"iso_code": "IE"}})
    writer.insert("192.0.2.0/24", {"country": {"iso_code": 7}, "subdivisions": "NJ"})
    return writer.write(tmp_path_factory.mktemp("geoip") / "test-city.mmdb")


@pytest.fixture
def resolver(geoip_db: Path) -> Iterator[CountryResolver]:
    resolver = CountryResolver("CloudFront-Viewer-Country", "X-Viewer-Region", geoip_db)
    resolver.open()
    yield resolver
    resolver.close()


# id, ip, headers, from_trusted_proxy, expected
CASES: list[tuple[str, IPAddress | None, dict[str, str], bool, ViewerLocation]] = [
    ("geoip-country-and-subdivision", NJ_IP, {}, True, US_NJ),
    ("geoip-ipv6", IPV6_NJ, {}, False, US_NJ),
    ("geoip-first-subdivision", LONDON_IP, {}, False, ViewerLocation("GB", "GB-ENG", "geoip")),
    ("geoip-no-subdivision", NO_SUBDIVISION_IP, {}, False, ViewerLocation("IE", None, "geoip")),
    ("geoip-miss", NOWHERE_IP, {}, False, UNKNOWN),
    ("geoip-malformed-record", ODD_RECORD_IP, {}, False, UNKNOWN),
    ("no-ip-no-header", None, {}, True, UNKNOWN),
    (
        "trusted-header",
        NJ_IP,
        {"CloudFront-Viewer-Country": "FR"},
        True,
        ViewerLocation("FR", None, "header"),
    ),
    (
        "trusted-header-any-case-name",
        None,
        {"cloudfront-viewer-country": "fr"},
        True,
        ViewerLocation("FR", None, "header"),
    ),
    (
        "trusted-header-uk-is-gb",
        None,
        {"CloudFront-Viewer-Country": "UK"},
        True,
        ViewerLocation("GB", None, "header"),
    ),
    (
        "trusted-header-with-region",
        None,
        {"CloudFront-Viewer-Country": "US", "X-Viewer-Region": "NJ"},
        True,
        ViewerLocation("US", "US-NJ", "header"),
    ),
    (
        "trusted-header-with-full-region",
        None,
        {"CloudFront-Viewer-Country": "US", "X-Viewer-Region": "us-nj"},
        True,
        ViewerLocation("US", "US-NJ", "header"),
    ),
    (
        "region-of-another-country-ignored",
        None,
        {"CloudFront-Viewer-Country": "US", "X-Viewer-Region": "CA-ON"},
        True,
        ViewerLocation("US", None, "header"),
    ),
    (
        "unreadable-region-ignored",
        None,
        {"CloudFront-Viewer-Country": "US", "X-Viewer-Region": "New Jersey"},
        True,
        ViewerLocation("US", None, "header"),
    ),
    (
        "subdivision-in-country-header",
        None,
        {"CloudFront-Viewer-Country": "US-NJ"},
        True,
        ViewerLocation("US", "US-NJ", "header"),
    ),
    (
        "untrusted-header-ignored-geoip-used",
        NJ_IP,
        {"CloudFront-Viewer-Country": "FR"},
        False,
        US_NJ,
    ),
    (
        "untrusted-header-ignored-nothing-else",
        None,
        {"CloudFront-Viewer-Country": "FR"},
        False,
        UNKNOWN,
    ),
    ("header-xx-unknown-falls-to-geoip", NJ_IP, {"CloudFront-Viewer-Country": "XX"}, True, US_NJ),
    ("header-tor-t1-falls-to-geoip", NJ_IP, {"CloudFront-Viewer-Country": "T1"}, True, US_NJ),
    ("header-zz-unknown", None, {"CloudFront-Viewer-Country": "ZZ"}, True, UNKNOWN),
    ("header-empty", NJ_IP, {"CloudFront-Viewer-Country": ""}, True, US_NJ),
    ("header-three-letters", None, {"CloudFront-Viewer-Country": "USA"}, True, UNKNOWN),
    (
        "header-fullwidth-letters",
        None,
        {"CloudFront-Viewer-Country": "\uff35\uff33"},
        True,
        UNKNOWN,
    ),
    (
        "header-long-s-upper-cases-to-us",
        None,
        {"CloudFront-Viewer-Country": "u\u017f"},
        True,
        UNKNOWN,
    ),
    ("header-cyrillic", None, {"CloudFront-Viewer-Country": "\u0421\u0410"}, True, UNKNOWN),
    ("header-crlf", None, {"CloudFront-Viewer-Country": "US\r\nX: y"}, True, UNKNOWN),
    (
        "region-long-s",
        None,
        {"CloudFront-Viewer-Country": "US", "X-Viewer-Region": "\u017fC"},
        True,
        ViewerLocation("US", None, "header"),
    ),
]


@pytest.mark.parametrize(
    ("ip", "headers", "trusted", "expected"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_resolve(
    resolver: CountryResolver,
    ip: IPAddress | None,
    headers: dict[str, str],
    trusted: bool,
    expected: ViewerLocation,
) -> None:
    assert resolver.resolve(ip, headers, from_trusted_proxy=trusted) == expected


def test_without_a_header_setting_headers_are_ignored(geoip_db: Path) -> None:
    resolver = CountryResolver(None, None, geoip_db)
    resolver.open()
    try:
        location = resolver.resolve(NJ_IP, {"CloudFront-Viewer-Country": "FR"}, True)
    finally:
        resolver.close()
    assert location == US_NJ


def test_without_a_database_only_headers_count() -> None:
    resolver = CountryResolver("CF-IPCountry", None, None)
    resolver.open()
    assert resolver.resolve(NJ_IP, {}, True) == UNKNOWN
    assert resolver.resolve(NJ_IP, {"cf-ipcountry": "IE"}, True) == ViewerLocation(
        "IE", None, "header"
    )
    resolver.close()


def test_database_is_not_read_before_open(geoip_db: Path) -> None:
    resolver = CountryResolver(None, None, geoip_db)
    assert resolver.resolve(NJ_IP, {}, False) == UNKNOWN
    resolver.open()
    assert resolver.resolve(NJ_IP, {}, False) == US_NJ
    resolver.close()
    assert resolver.resolve(NJ_IP, {}, False) == UNKNOWN
    resolver.close()  # idempotent


def test_ipv6_lookup_in_an_ipv4_only_database_is_unknown(tmp_path: Path) -> None:
    # A real IPv4-only file: the reader raises on IPv6 lookups; resolve must not.
    writer = MmdbWriter(ip_version=4)
    writer.insert("203.0.113.0/24", {"country": {"iso_code": "US"}})
    resolver = CountryResolver(None, None, writer.write(tmp_path / "v4.mmdb"))
    resolver.open()
    try:
        assert resolver.resolve(NJ_IP, {}, False) == ViewerLocation("US", None, "geoip")
        with capture_logs() as logs:
            assert resolver.resolve(IPV6_NJ, {}, False) == UNKNOWN
    finally:
        resolver.close()
    assert [entry["event"] for entry in logs] == ["geoip_lookup_failed"]


def test_open_fails_loudly_on_a_missing_database(tmp_path: Path) -> None:
    resolver = CountryResolver(None, None, tmp_path / "missing.mmdb")
    with pytest.raises(FileNotFoundError):
        resolver.open()


def test_open_fails_loudly_on_a_corrupt_database(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.mmdb"
    path.write_bytes(b"not a database")
    resolver = CountryResolver(None, None, path)
    with pytest.raises(maxminddb.InvalidDatabaseError):
        resolver.open()
