"""A sliding live HLS playlist over a few looped segments, as a pure function of time.

Segment ``n`` (the media sequence number) is file ``n % files``; the playlist at wall
time ``now`` lists the ``window`` segments that ended last, so the media sequence
advances with the clock and there is never an ``#EXT-X-ENDLIST``.

Each loop would restart the segments' timestamps, a discontinuity that the playlist
would have to tag (chromium's own HLS stops at an untagged one; hls.js 1.7 stalls and
skips ahead at a tagged one). Instead, segment ``n`` is served with its clock moved on
by ``clock_shift(n)``, whole loops (``mpegts.py``): the timestamps run on from loop to
loop, so there is no discontinuity to tag.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from app.demo.mpegts import CLOCK_HZ

SEGMENT_SUFFIX = ".ts"


@dataclass(frozen=True, slots=True)
class LoopedStream:
    files: int  # segments on disk, looped
    segment_s: float  # the duration of each
    window: int = 8  # segments listed at a time: 16 s, room for a slow start

    def playlist(self, now: float) -> str:
        """The media playlist at wall time ``now`` (seconds since the epoch)."""
        produced = math.floor(now / self.segment_s)  # the segment being "recorded" now
        first = max(0, produced - self.window)
        lines = [
            "#EXTM3U",
            "#EXT-X-VERSION:3",
            f"#EXT-X-TARGETDURATION:{math.ceil(self.segment_s)}",
            f"#EXT-X-MEDIA-SEQUENCE:{first}",
        ]
        for sequence in range(first, produced):
            lines.append(f"#EXTINF:{self.segment_s:.3f},")
            lines.append(f"{sequence}{SEGMENT_SUFFIX}")
        return "\n".join(lines) + "\n"

    def file_of(self, sequence: int) -> int:
        return sequence % self.files

    def clock_shift(self, sequence: int) -> int:
        """How far segment ``sequence``'s timestamps move (90 kHz ticks): one loop's
        length for each loop before it."""
        return (sequence // self.files) * round(self.files * self.segment_s * CLOCK_HZ)
