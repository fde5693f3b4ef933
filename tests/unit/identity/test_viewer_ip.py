from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.identity.viewer_ip import IPAddress, Network, parse_ip, viewer_ip

TRUSTED: tuple[Network, ...] = (
    ip_network("10.0.0.0/8"),
    ip_network("192.168.1.0/24"),
    ip_network("fd00::/8"),
)
LB = "10.0.0.5"  # a trusted load balancer
LB2 = "192.168.1.7"  # a second trusted hop
CLIENT = "203.0.113.9"
OTHER = "198.51.100.4"

# id, peer, X-Forwarded-For values, expected viewer (None: unreadable peer)
CASES: list[tuple[str, str | None, list[str], str | None]] = [
    # Untrusted peers are the viewer, whatever they claim.
    ("direct-no-header", CLIENT, [], CLIENT),
    ("direct-spoof-single", CLIENT, ["1.1.1.1"], CLIENT),
    ("direct-spoof-trusted-looking", CLIENT, [LB], CLIENT),
    ("direct-spoof-chain", CLIENT, ["1.1.1.1, 10.0.0.1"], CLIENT),
    ("direct-spoof-garbage", CLIENT, ["not-an-ip"], CLIENT),
    ("direct-ipv6", "2001:db8::1", ["1.1.1.1"], "2001:db8::1"),
    ("direct-peer-with-port", "203.0.113.9:51000", [], CLIENT),
    ("unreadable-peer", "testclient", ["1.1.1.1"], None),
    ("no-peer", None, ["1.1.1.1"], None),
    ("empty-peer", "", ["1.1.1.1"], None),
    # Behind trusted proxies.
    ("one-proxy", LB, [CLIENT], CLIENT),
    ("one-proxy-no-header", LB, [], LB),
    ("one-proxy-blank-header", LB, [""], LB),
    ("two-proxies", LB, [f"{CLIENT}, {LB2}"], CLIENT),
    ("client-spoofs-left-part", LB, [f"1.1.1.1, {CLIENT}"], CLIENT),
    ("client-spoofs-trusted-left", LB, [f"{LB2}, {CLIENT}"], CLIENT),
    ("several-header-lines", LB, ["1.1.1.1", f"{CLIENT}, {LB2}"], CLIENT),
    ("several-header-lines-order", LB, [CLIENT, LB2], CLIENT),
    ("all-trusted-left-most", LB, [f"{LB2}, 10.9.9.9"], LB2),
    ("whitespace", LB, [f"  {CLIENT}  ,\t{LB2} "], CLIENT),
    ("blank-entries-skipped", LB, [f"{CLIENT},, {LB2},"], CLIENT),
    ("ipv4-with-port", LB, ["203.0.113.9:5678"], CLIENT),
    ("ipv6-bracketed-port", LB, ["[2001:db8::7]:443"], "2001:db8::7"),
    ("ipv6-bracketed", LB, ["[2001:db8::7]"], "2001:db8::7"),
    ("ipv6-bare", LB, ["2001:db8::7"], "2001:db8::7"),
    ("ipv6-trusted-hop", "fd00::1", [f"{CLIENT}, fd00::2"], CLIENT),
    ("ipv4-mapped-peer-trusted", "::ffff:10.0.0.5", [CLIENT], CLIENT),
    ("ipv4-mapped-entry", LB, ["::ffff:203.0.113.9"], CLIENT),
    ("ipv4-mapped-trusted-entry", LB, [f"{CLIENT}, ::ffff:192.168.1.7"], CLIENT),
    # A malformed entry stops the walk at the last trusted hop.
    ("malformed-right-most", LB, [f"{CLIENT}, garbage"], LB),
    ("malformed-after-trusted", LB, [f"{CLIENT}, garbage, {LB2}"], LB2),
    ("malformed-left-of-client", LB, [f"garbage, {CLIENT}"], CLIENT),
    ("unknown-keyword", LB, ["unknown"], LB),
    ("obfuscated-identifier", LB, ["_hidden"], LB),
    ("hostname", LB, ["client.example.com"], LB),
    ("bad-port", LB, ["203.0.113.9:99999"], LB),
    ("empty-port", LB, ["203.0.113.9:"], LB),
    ("unclosed-bracket", LB, ["[2001:db8::7"], LB),
    ("zone-id", LB, ["fe80::1%eth0"], LB),
    ("leading-zero-octet", LB, ["203.0.113.09"], LB),
    ("non-ascii-digits", LB, ["\u0662\u0660\u0663.0.113.9"], LB),
    ("integer-form", LB, ["3405803785"], LB),
    ("crlf", LB, ["203.0.113.9\r\nX-Evil: 1"], LB),
    # Long chains: at most max_hops (16) entries from the right are read.
    ("long-chain-client-in-reach", LB, [", ".join([OTHER] + [LB2] * 15)], OTHER),
    ("long-chain-client-out-of-reach", LB, [", ".join([OTHER] + ["10.0.0.1"] * 16)], "10.0.0.1"),
    ("huge-spoofed-chain", LB, [", ".join(["1.1.1.1"] * 10_000 + [CLIENT])], CLIENT),
]


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "expected"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_viewer_ip(peer: str | None, forwarded_for: list[str], expected: str | None) -> None:
    result = viewer_ip(peer, forwarded_for, TRUSTED)
    assert result == (ip_address(expected) if expected is not None else None)


def test_max_hops_limits_the_walk() -> None:
    chain = [f"{OTHER}, {LB2}, 10.0.0.1"]
    assert viewer_ip(LB, chain, TRUSTED, max_hops=3) == ip_address(OTHER)
    assert viewer_ip(LB, chain, TRUSTED, max_hops=2) == ip_address(LB2)
    assert viewer_ip(LB, chain, TRUSTED, max_hops=0) == ip_address(LB)


def test_no_trusted_networks_means_the_peer() -> None:
    assert viewer_ip(LB, [CLIENT], ()) == ip_address(LB)


def test_mapped_addresses_come_back_as_ipv4() -> None:
    result = viewer_ip(LB, ["::ffff:203.0.113.9"], TRUSTED)
    assert isinstance(result, IPv4Address)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("1.2.3.4", IPv4Address("1.2.3.4"), id="v4"),
        pytest.param(" 1.2.3.4:80 ", IPv4Address("1.2.3.4"), id="v4-port-space"),
        pytest.param("[::1]:80", IPv6Address("::1"), id="v6-port"),
        pytest.param("::1", IPv6Address("::1"), id="v6"),
        pytest.param("[::1]x", None, id="junk-after-bracket"),
        pytest.param("1.2.3.4:0x50", None, id="hex-port"),
        pytest.param("", None, id="empty"),
    ],
)
def test_parse_ip(raw: str, expected: IPAddress | None) -> None:
    assert parse_ip(raw) == expected


def _unmapped(address: IPAddress) -> IPAddress:
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _untrusted(address: IPAddress) -> bool:
    return not any(_unmapped(address) in network for network in TRUSTED)


untrusted_peers = st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)).filter(_untrusted)
header_values = st.lists(
    st.one_of(
        st.text(max_size=60),
        st.lists(
            st.one_of(st.ip_addresses().map(str), st.sampled_from([LB, LB2, "fd00::9"])),
            max_size=5,
        ).map(", ".join),
    ),
    max_size=4,
)


@given(peer=untrusted_peers, forwarded_for=header_values)
def test_untrusted_peer_is_always_the_viewer(peer: IPAddress, forwarded_for: list[str]) -> None:
    assert viewer_ip(str(peer), forwarded_for, TRUSTED) == _unmapped(peer)


@given(forwarded_for=header_values)
def test_trusted_peer_never_yields_a_malformed_or_absent_value(forwarded_for: list[str]) -> None:
    result = viewer_ip(LB, forwarded_for, TRUSTED)
    assert result is not None
    entries = {parse_ip(part) for value in forwarded_for for part in value.split(",")}
    assert result == ip_address(LB) or result in entries
