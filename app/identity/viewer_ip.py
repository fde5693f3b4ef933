"""The viewer's IP address, from the TCP peer and ``X-Forwarded-For``.

``X-Forwarded-For`` is only as honest as whoever wrote it: the client may send any
value, and each proxy appends the address it received the request from. So:

- a peer outside ``trusted`` is the viewer, and the header is ignored entirely;
- behind trusted proxies, the entries are read right to left (nearest hop first),
  skipping trusted addresses; the first untrusted one is the viewer;
- a malformed entry stops the walk: the answer is the last trusted hop seen, never the
  malformed value, nor anything to its left (which nobody we trust vouched for);
- if every entry is trusted (or there is none), the left-most trusted address wins;
- at most ``max_hops`` entries are read from the right, however long the header.

Entries may carry ports (``1.2.3.4:5678``, ``[::1]:80``) and whitespace; IPv4-mapped
IPv6 addresses (``::ffff:1.2.3.4``) become IPv4. Blank entries are skipped.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

IPAddress = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network

DEFAULT_MAX_HOPS = 16


def _split_port(text: str) -> str | None:
    """``[::1]:80`` -> ``::1``, ``1.2.3.4:5678`` -> ``1.2.3.4``; None when malformed."""
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not _is_port(rest)):
            return None
        return host
    if text.count(":") == 1:  # IPv4 (or a name) with a port; bare IPv6 has several
        host, _, port = text.partition(":")
        return host if _is_port(":" + port) else None
    return text


def _is_port(text: str) -> bool:
    digits = text[1:]
    return (
        text.startswith(":")
        and 1 <= len(digits) <= 5
        and digits.isascii()
        and digits.isdigit()
        and int(digits) <= 65535
    )


def parse_ip(raw: str) -> IPAddress | None:
    """An address from a peer or forwarded entry; None when it is not one."""
    text = raw.strip()
    if not text or not text.isascii() or "%" in text:  # no zone ids, no obfuscated names
        return None
    host = _split_port(text)
    if host is None:
        return None
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_trusted(address: IPAddress, trusted: Sequence[Network]) -> bool:
    return any(address in network for network in trusted)


def _entries(forwarded_for: Sequence[str]) -> list[str]:
    entries: list[str] = []
    for value in forwarded_for:
        entries.extend(part for part in value.split(",") if part.strip())
    return entries


def viewer_ip(
    peer: str | None,
    forwarded_for: Sequence[str],
    trusted: Sequence[Network],
    max_hops: int = DEFAULT_MAX_HOPS,
) -> IPAddress | None:
    """The viewer's address (see the module docstring); None only for an unreadable peer."""
    peer_address = parse_ip(peer) if peer is not None else None
    if peer_address is None or not is_trusted(peer_address, trusted):
        return peer_address
    last_trusted = peer_address
    hops = _entries(forwarded_for)[-max_hops:] if max_hops > 0 else []
    for entry in reversed(hops):
        address = parse_ip(entry)
        if address is None:
            break
        if not is_trusted(address, trusted):
            return address
        last_trusted = address
    return last_trusted
