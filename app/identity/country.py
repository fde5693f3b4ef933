"""The viewer's country (and subdivision), from a trusted edge header or GeoIP.

Sources, in order:

1. the configured country header (e.g. ``CloudFront-Viewer-Country``,
   ``CF-IPCountry``), only when the request came through a trusted proxy: anyone else
   can write any header. The value must be an ASCII ISO 3166-1 alpha-2 code; the
   "unknown" markers edges use (``XX``, ``T1`` for Tor, ``ZZ``...) count as no value.
   The optional subdivision header may hold ``NJ`` or ``US-NJ``;
2. a MaxMind-format database (``country.iso_code`` and ``subdivisions[0].iso_code``);
3. unknown.

The database is opened by ``open()`` and released by ``close()``, both called from the
app lifespan. ``open()`` raises when a configured database is missing or corrupt (a
configuration error, found at start-up); ``resolve`` never raises.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import maxminddb
import structlog

from app.identity.viewer_ip import IPAddress
from app.policy.countries import normalise_code
from app.policy.geo import UNKNOWN_LOCATION, ViewerLocation

log = structlog.get_logger(__name__)

# Codes edges and GeoIP vendors use for "we do not know" (T1/A1/A2 fail the syntax).
_UNKNOWN_COUNTRIES = frozenset({"XX", "ZZ", "EU", "AP"})


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """A header value by case-insensitive name, from any mapping."""
    value = headers.get(name)
    if value is None:
        folded = name.casefold()
        value = next((v for k, v in headers.items() if k.casefold() == folded), None)
    return value if isinstance(value, str) else None


def _country(raw: object) -> str | None:
    # ASCII before upper-casing: "u\u017f".upper() == "US" (long s) must not pass.
    if not isinstance(raw, str) or not raw.isascii():
        return None
    code = normalise_code(raw)
    if code is None:
        return None
    country = code.partition("-")[0]
    return None if country in _UNKNOWN_COUNTRIES else country


def _subdivision(country: str, raw: object) -> str | None:
    if not isinstance(raw, str) or not raw.isascii() or not raw.strip():
        return None
    text = raw.strip()
    code = normalise_code(text if "-" in text else f"{country}-{text}")
    if code is None or "-" not in code or code.partition("-")[0] != country:
        return None
    return code


class CountryResolver:
    def __init__(
        self, header: str | None, subdivision_header: str | None, geoip_path: Path | None
    ) -> None:
        self._header = header
        self._subdivision_header = subdivision_header
        self._geoip_path = geoip_path
        self._reader: maxminddb.Reader | None = None

    def open(self) -> None:
        """Open the GeoIP database, if one is configured."""
        if self._geoip_path is not None and self._reader is None:
            self._reader = maxminddb.open_database(str(self._geoip_path))

    def close(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.close()

    def resolve(
        self, ip: IPAddress | None, headers: Mapping[str, str], from_trusted_proxy: bool
    ) -> ViewerLocation:
        """Where the viewer is; ``ViewerLocation(None, None, "unknown")`` when nobody knows."""
        if from_trusted_proxy and self._header is not None:
            location = self._from_headers(headers, self._header)
            if location is not None:
                return location
        if ip is not None and self._reader is not None:
            location = self._from_geoip(ip)
            if location is not None:
                return location
        return UNKNOWN_LOCATION

    def _from_headers(self, headers: Mapping[str, str], name: str) -> ViewerLocation | None:
        raw = _header(headers, name)
        country = _country(raw)
        if country is None:
            return None
        code = normalise_code(raw) if raw is not None else None  # ASCII: checked by _country
        subdivision = code if code is not None and "-" in code else None
        if subdivision is None and self._subdivision_header is not None:
            subdivision = _subdivision(country, _header(headers, self._subdivision_header))
        return ViewerLocation(country=country, subdivision=subdivision, source="header")

    def _from_geoip(self, ip: IPAddress) -> ViewerLocation | None:
        if self._reader is None:
            return None
        try:
            record = self._reader.get(ip)
        except (ValueError, TypeError, maxminddb.InvalidDatabaseError) as exc:
            # IPv6 in an IPv4-only database, a corrupt record, a closed reader.
            log.warning("geoip_lookup_failed", error=type(exc).__name__)
            return None
        if not isinstance(record, dict):
            return None
        country_record = record.get("country")
        if not isinstance(country_record, dict):
            return None
        country = _country(country_record.get("iso_code"))
        if country is None:
            return None
        subdivision = None
        subdivisions = record.get("subdivisions")
        if isinstance(subdivisions, list) and subdivisions and isinstance(subdivisions[0], dict):
            subdivision = _subdivision(country, subdivisions[0].get("iso_code"))
        return ViewerLocation(country=country, subdivision=subdivision, source="geoip")
