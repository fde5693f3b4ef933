"""Viewer region rules of the simulator (operationCode 306), as pure functions.

Codes are ISO 3166 alpha-2, optionally with a subdivision (``US-NJ``). Lists are the
guide's comma strings (``"GB,IE"``, ``"UK, US"``, ``""``) and are normalised: trimmed,
upper-cased, ``UK`` read as ``GB``. Block beats allow; an empty allow list means
everywhere; an entry ``US`` covers the viewer ``US-NJ``; an unknown viewer passes only
when there is no allow list.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def normalise_code(raw: str) -> str:
    """``" uk "`` -> ``"GB"``, ``"us-nj"`` -> ``"US-NJ"``."""
    code = raw.strip().upper()
    country, sep, subdivision = code.partition("-")
    if country == "UK":
        country = "GB"
    return f"{country}{sep}{subdivision}"


def parse_geo_list(raw: str | None) -> frozenset[str]:
    """A comma string of codes as a set of normalised codes (empty entries dropped)."""
    if not raw:
        return frozenset()
    return frozenset(normalise_code(part) for part in raw.split(",") if part.strip())


def _matches(entry: str, viewer: str) -> bool:
    if entry == viewer:
        return True
    return "-" not in entry and viewer.partition("-")[0] == entry


def region_allows(viewer: str | None, allow: str | None, block: str | None) -> bool:
    """Whether a viewer in ``viewer`` (normalised code or None) may watch."""
    allowed = parse_geo_list(allow)
    blocked = parse_geo_list(block)
    if viewer is None:
        return not allowed
    if any(_matches(entry, viewer) for entry in blocked):
        return False
    return not allowed or any(_matches(entry, viewer) for entry in allowed)


@dataclass(slots=True)
class IpCountryTable:
    """IP networks to region codes; the most specific network containing an IP wins."""

    _entries: list[tuple[IpNetwork, str]] = field(default_factory=list)

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[str, str]]) -> IpCountryTable:
        table = cls()
        table.add(pairs)
        return table

    def add(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Add ``(ip-or-cidr, code)`` pairs; raises ValueError for a bad network or code."""
        parsed: list[tuple[IpNetwork, str]] = []
        for network, code in pairs:
            normalised = normalise_code(code)
            if not normalised or normalised.startswith("-"):
                raise ValueError(f"empty country code for {network!r}")
            parsed.append((ipaddress.ip_network(network.strip(), strict=False), normalised))
        # Later entries for the same network replace earlier ones.
        replaced = {net for net, _ in parsed}
        self._entries = [(n, c) for n, c in self._entries if n not in replaced] + parsed

    def country_of(self, ip: str) -> str | None:
        """The region code of ``ip``, or None when no network holds it (or it is no IP)."""
        try:
            address = ipaddress.ip_address(ip.strip())
        except ValueError:
            return None
        matches = [
            (network.prefixlen, code)
            for network, code in self._entries
            if address.version == network.version and address in network
        ]
        best = max(matches, key=lambda match: match[0], default=None)
        return None if best is None else best[1]
