"""Shift the clock of an MPEG-TS segment, so that a loop of segments plays as one
continuous stream.

The demo loops a few segments (``media/``) forever. Played as they are, every loop
would start the timestamps again, a discontinuity that HLS must tag and that players
handle unevenly (chromium's own HLS stops at an untagged one; hls.js 1.7 stalls at a
tagged one). Shifting loop ``k``'s segments by ``k`` loop lengths instead makes the
timestamps run on: no discontinuity, nothing to tag.

What moves (ISO/IEC 13818-1, in 90 kHz ticks, modulo 2**33 as the fields wrap): the
PCR base in a packet's adaptation field, and the PTS and DTS in the header of a video
or audio PES packet that starts in the packet. Nothing else in the bytes changes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

PACKET: Final = 188
SYNC: Final = 0x47
CLOCK_HZ: Final = 90_000
WRAP: Final = 1 << 33


def shift_timestamps(segment: bytes, ticks: int) -> bytes:
    """``segment`` with every PCR, PTS and DTS moved on by ``ticks`` (90 kHz)."""
    ticks %= WRAP
    fields = list(_clock_fields(segment))
    if ticks == 0:
        return segment
    out = bytearray(segment)
    for kind, at in fields:
        if kind == "pcr":
            _write_pcr(out, at, (_read_pcr(out, at) + ticks) % WRAP)
        else:
            _write_pts(out, at, (_read_pts(out, at) + ticks) % WRAP)
    return bytes(out)


def timestamps(segment: bytes) -> tuple[list[int], list[int]]:
    """The PCR bases and the PTS values of ``segment``, in order."""
    fields = list(_clock_fields(segment))
    pcrs = [_read_pcr(segment, at) for kind, at in fields if kind == "pcr"]
    pts = [_read_pts(segment, at) for kind, at in fields if kind == "pts"]
    return pcrs, pts


def _clock_fields(segment: bytes) -> Iterator[tuple[str, int]]:
    """Where each clock field is: ``("pcr", offset)``, ``("pts", offset)`` and
    ``("dts", offset)``. Raises ValueError on bytes that are not transport packets."""
    if len(segment) % PACKET:
        raise ValueError(f"not whole {PACKET}-byte transport packets")
    for start in range(0, len(segment), PACKET):
        if segment[start] != SYNC:
            raise ValueError(f"no sync byte at offset {start}")
        control = (segment[start + 3] >> 4) & 0b11
        at = start + 4
        if control & 0b10:  # an adaptation field
            length = segment[at]
            if length and segment[at + 1] & 0x10:  # PCR_flag
                yield "pcr", at + 2
            at += 1 + length
        unit_start = segment[start + 1] & 0x40
        starts_pes = control & 0b01 and unit_start and segment[at : at + 3] == b"\x00\x00\x01"
        if starts_pes and 0xC0 <= segment[at + 3] <= 0xEF:  # an audio or video PES packet
            flags = segment[at + 7] >> 6  # PTS_DTS_flags
            if flags & 0b10:
                yield "pts", at + 9
            if flags == 0b11:
                yield "dts", at + 14


def _read_pts(data: bytes | bytearray, at: int) -> int:
    """A 33-bit PTS or DTS in five bytes: a 4-bit prefix, then 3 + 15 + 15 bits, each
    group followed by a marker bit."""
    b = data[at : at + 5]
    return ((b[0] >> 1) & 0x07) << 30 | (b[1] << 7 | b[2] >> 1) << 15 | (b[3] << 7 | b[4] >> 1)


def _write_pts(out: bytearray, at: int, value: int) -> None:
    out[at] = (out[at] & 0xF0) | ((value >> 29) & 0x0E) | 0x01
    out[at + 1] = (value >> 22) & 0xFF
    out[at + 2] = ((value >> 14) & 0xFE) | 0x01
    out[at + 3] = (value >> 7) & 0xFF
    out[at + 4] = ((value << 1) & 0xFE) | 0x01


def _read_pcr(data: bytes | bytearray, at: int) -> int:
    """The PCR's 33-bit base (90 kHz); the reserved bits and the 27 MHz extension after
    it are left alone."""
    b = data[at : at + 5]
    return b[0] << 25 | b[1] << 17 | b[2] << 9 | b[3] << 1 | b[4] >> 7


def _write_pcr(out: bytearray, at: int, base: int) -> None:
    out[at] = (base >> 25) & 0xFF
    out[at + 1] = (base >> 17) & 0xFF
    out[at + 2] = (base >> 9) & 0xFF
    out[at + 3] = (base >> 1) & 0xFF
    out[at + 4] = ((base & 0x01) << 7) | (out[at + 4] & 0x7F)
