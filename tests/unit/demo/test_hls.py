"""The demo's sliding live playlist, at chosen wall times."""

from __future__ import annotations

import re

import pytest

from app.demo.hls import LoopedStream

STREAM = LoopedStream(files=4, segment_s=2.0, window=4)


def sequences(playlist: str) -> list[int]:
    return [int(line[:-3]) for line in playlist.splitlines() if line.endswith(".ts")]


def tag(playlist: str, name: str) -> int:
    found = re.search(rf"^#{name}:(\d+)$", playlist, re.MULTILINE)
    assert found is not None, name
    return int(found.group(1))


@pytest.mark.parametrize(
    ("now", "listed"),
    [
        (0.0, []),  # nothing recorded yet
        (5.0, [0, 1]),  # segment 2 is still being "recorded"
        (17.5, [4, 5, 6, 7]),
        (19.9, [5, 6, 7, 8]),
        (1_000_000_000.0, [499_999_996, 499_999_997, 499_999_998, 499_999_999]),
    ],
    ids=["at-zero", "first-seconds", "second-loop", "window-slid", "today"],
)
def test_the_window_slides_with_the_clock(now: float, listed: list[int]) -> None:
    playlist = STREAM.playlist(now)
    assert playlist.startswith("#EXTM3U\n")
    assert "#EXT-X-ENDLIST" not in playlist  # live
    assert sequences(playlist) == listed
    assert tag(playlist, "EXT-X-MEDIA-SEQUENCE") == (listed[0] if listed else 0)
    assert tag(playlist, "EXT-X-TARGETDURATION") == 2


def test_each_segment_is_listed_with_its_duration() -> None:
    lines = STREAM.playlist(19.9).splitlines()
    assert lines[4:] == [line for n in (5, 6, 7, 8) for line in ("#EXTINF:2.000,", f"{n}.ts")]


def test_segments_loop_over_the_files() -> None:
    assert [STREAM.file_of(n) for n in (0, 3, 4, 7, 8, 499_999_999)] == [0, 3, 0, 3, 0, 3]


def test_the_default_window_holds_sixteen_seconds() -> None:
    stream = LoopedStream(files=4, segment_s=2.0)
    assert len(sequences(stream.playlist(1_000_000_000.0))) == 8


@pytest.mark.parametrize(
    ("sequence", "ticks"),
    [(0, 0), (3, 0), (4, 720_000), (7, 720_000), (8, 1_440_000), (1_000_001, 250_000 * 720_000)],
)
def test_each_loop_moves_the_clock_by_one_loop(sequence: int, ticks: int) -> None:
    assert STREAM.clock_shift(sequence) == ticks  # 4 files of 2 s: 8 s = 720,000 ticks
