"""A minimal MaxMind DB (``.mmdb``) writer, enough to build GeoIP fixtures in tests.

Format: https://maxmind.github.io/MaxMind-DB/ - a binary search tree over the bits of
the address (IPv6 tree, IPv4 under ``::/96``), 24-bit records, a 16-byte separator, a
data section of typed values, then ``\\xab\\xcd\\xefMaxMind.com`` and the metadata map.
Supports maps, lists, strings, unsigned integers, doubles and booleans.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path


class UInt16(int):
    """An int stored as uint16 (the metadata's versions and sizes must be)."""


class UInt64(int):
    """An int stored as uint64 (``build_epoch`` must be)."""


Value = Mapping[str, "Value"] | Sequence["Value"] | str | int | float | bool

_METADATA_MARKER = b"\xab\xcd\xefMaxMind.com"
_RECORD_BITS = 24


def _control(type_number: int, size: int) -> bytes:
    if size < 29:
        head, extra = size, b""
    elif size < 29 + 256:
        head, extra = 29, bytes([size - 29])
    elif size < 285 + 65536:
        head, extra = 30, (size - 285).to_bytes(2, "big")
    else:
        head, extra = 31, (size - 65821).to_bytes(3, "big")
    if type_number <= 7:
        return bytes([(type_number << 5) | head]) + extra
    return bytes([head, type_number - 7]) + extra


def encode(value: Value) -> bytes:
    """One value in the MaxMind DB data-section encoding."""
    if isinstance(value, bool):
        return _control(14, int(value))
    if isinstance(value, str):
        data = value.encode()
        return _control(2, len(data)) + data
    if isinstance(value, float):
        return _control(3, 8) + struct.pack(">d", value)
    if isinstance(value, int):
        if value < 0:
            raise ValueError("only unsigned integers are supported")
        data = value.to_bytes((value.bit_length() + 7) // 8, "big")
        if isinstance(value, UInt16):
            type_number = 5
        elif isinstance(value, UInt64):
            type_number = 9
        else:
            type_number = 6 if value < 2**32 else 9 if value < 2**64 else 10
        return _control(type_number, len(data)) + data
    if isinstance(value, Mapping):
        out = _control(7, len(value))
        for key, item in value.items():
            out += encode(key) + encode(item)
        return out
    out = _control(11, len(value))
    for item in value:
        out += encode(item)
    return out


@dataclass
class _Node:
    children: list[_Node | int | None] = field(default_factory=lambda: [None, None])


@dataclass
class MmdbWriter:
    database_type: str = "Test-GeoIP2-City"
    ip_version: int = 6  # 4: an IPv4-only tree, as some databases are
    _root: _Node = field(default_factory=_Node)
    _data: list[bytes] = field(default_factory=list)

    def insert(self, network: str, record: Value) -> None:
        """Map every address in ``network`` (``"81.2.69.0/24"``, ``"2001:db8::/32"``)."""
        parsed = ipaddress.ip_network(network)
        bits, depth = int(parsed.network_address), parsed.prefixlen
        if self.ip_version == 4:
            if parsed.version != 4:
                raise ValueError("an IPv4-only database holds IPv4 networks only")
            bits <<= 96
        elif parsed.version == 4:
            depth += 96  # IPv4 lives under ::/96 in an IPv6 tree
        self._data.append(encode(record))
        leaf = len(self._data) - 1
        node = self._root
        for index in range(depth):
            bit = (bits >> (127 - index)) & 1
            if index == depth - 1:
                node.children[bit] = leaf
                break
            child = node.children[bit]
            if not isinstance(child, _Node):
                child = _Node()
                node.children[bit] = child
            node = child

    def to_bytes(self) -> bytes:
        nodes: list[_Node] = []
        numbers: dict[int, int] = {}

        def number(node: _Node) -> None:
            numbers[id(node)] = len(nodes)
            nodes.append(node)
            for child in node.children:
                if isinstance(child, _Node):
                    number(child)

        number(self._root)
        offsets, data = [], b""
        for item in self._data:
            offsets.append(len(data))
            data += item
        node_count = len(nodes)

        def record(child: _Node | int | None) -> int:
            if child is None:
                return node_count
            if isinstance(child, _Node):
                return numbers[id(child)]
            return node_count + 16 + offsets[child]

        tree = b"".join(
            record(node.children[0]).to_bytes(3, "big")
            + record(node.children[1]).to_bytes(3, "big")
            for node in nodes
        )
        metadata: dict[str, Value] = {
            "binary_format_major_version": UInt16(2),
            "binary_format_minor_version": UInt16(0),
            "build_epoch": UInt64(1_700_000_000),
            "database_type": self.database_type,
            "description": {"en": "test fixture"},
            "ip_version": UInt16(self.ip_version),
            "languages": ["en"],
            "node_count": node_count,
            "record_size": UInt16(_RECORD_BITS),
        }
        return tree + b"\x00" * 16 + data + _METADATA_MARKER + encode(metadata)

    def write(self, path: Path) -> Path:
        path.write_bytes(self.to_bytes())
        return path
