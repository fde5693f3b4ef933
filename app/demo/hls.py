"""A sliding live HLS playlist over a few looped segments, as a pure function of time.

Segment ``n`` (the media sequence number) is file ``n % files``; the playlist at wall
time ``now`` lists the ``window`` segments that ended last, so the media sequence
advances with the clock and there is never an ``#EXT-X-ENDLIST``.

Each loop restarts the segments' timestamps. The playlist does not tag that with
``#EXT-X-DISCONTINUITY``: hls.js (1.7) re-bases a timestamp jump inside one
discontinuity sequence by itself and plays on, while the tagged loop start made it
stall and skip ahead in chromium (measured with the browser tests: 2 s of frames in a
minute, against 25 frames a second untagged). A player that needs the tag may stall
at a loop restart (every 8 s): chromium's own HLS playback, without hls.js, does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

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
