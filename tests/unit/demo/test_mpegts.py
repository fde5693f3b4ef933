"""Moving the clock of the demo's MPEG-TS segments (the real files in app/demo/media)."""

from __future__ import annotations

import itertools

import pytest

from app.demo.hls import LoopedStream
from app.demo.mpegts import PACKET, WRAP, shift_timestamps, timestamps
from app.demo.routes import MEDIA_DIR, SEGMENT_S

FRAME = 3_600  # 25 frames a second at 90 kHz
FILES = [(MEDIA_DIR / f"segment{n}.ts").read_bytes() for n in range(4)]


@pytest.mark.parametrize(
    "ticks",
    [1, 720_000, 123_456_789, WRAP - 1, WRAP + 5, -90_000],
    ids=["one-tick", "one-loop", "large", "wraps", "past-wrap", "backwards"],
)
def test_every_pcr_and_pts_moves_by_the_ticks(ticks: int) -> None:
    pcrs, pts = timestamps(FILES[1])
    shifted = shift_timestamps(FILES[1], ticks)
    assert timestamps(shifted) == (
        [(v + ticks) % WRAP for v in pcrs],
        [(v + ticks) % WRAP for v in pts],
    )
    assert len(pts) == 50  # one PES per frame, 2 s at 25 fps
    assert pcrs


def test_only_the_clock_fields_change() -> None:
    shifted = shift_timestamps(FILES[0], 720_000)
    changed = [i for i, (a, b) in enumerate(zip(FILES[0], shifted, strict=True)) if a != b]
    assert changed  # something moved
    # every changed byte lies in a PCR (5 bytes) or PTS (5 bytes) field of a packet
    pcr_or_pts: set[int] = set()
    for start in range(0, len(FILES[0]), PACKET):
        packet = FILES[0][start : start + PACKET]
        if packet[3] & 0x20 and packet[4] and packet[5] & 0x10:
            pcr_or_pts.update(range(start + 6, start + 11))
        at = start + 4 + (1 + packet[4] if packet[3] & 0x20 else 0)
        if packet[1] & 0x40 and FILES[0][at : at + 3] == b"\x00\x00\x01":
            pcr_or_pts.update(range(at + 9, at + 14))
    assert set(changed) <= pcr_or_pts


def test_a_whole_wrap_gives_the_same_bytes_back() -> None:
    assert shift_timestamps(FILES[2], WRAP) == FILES[2]
    there = shift_timestamps(FILES[2], WRAP - 126_000)
    assert shift_timestamps(there, 126_000) == FILES[2]


def test_the_loop_runs_on_without_a_jump() -> None:
    """Sequence 3 (the last file, loop 0) is followed by sequence 4 (the first file,
    loop 1): the next frame's timestamp, not a restart."""
    stream = LoopedStream(files=4, segment_s=SEGMENT_S)
    played = []
    for sequence in range(0, 12):
        segment = FILES[stream.file_of(sequence)]
        played += timestamps(shift_timestamps(segment, stream.clock_shift(sequence)))[1]
    assert [b - a for a, b in itertools.pairwise(played)] == [FRAME] * (len(played) - 1)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x47" * 100, "whole"),
        (b"\x00" * PACKET, "no sync byte at offset 0"),
        (FILES[0][:PACKET] + b"\x46" + FILES[0][PACKET + 1 : 2 * PACKET], "offset 188"),
    ],
    ids=["short", "no-sync", "second-packet-no-sync"],
)
def test_bytes_that_are_not_transport_packets_are_refused(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        shift_timestamps(data, 90_000)
