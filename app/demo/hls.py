"""A sliding live HLS playlist over a few looped segments, as a pure function of time.

Segment ``n`` (the media sequence number) is file ``n % files``; the playlist at wall
time ``now`` lists the ``window`` segments that ended last, so the media sequence
advances with the clock and there is never an ``#EXT-X-ENDLIST``. Each loop restarts
the segments' timestamps, so every segment that starts a loop carries
``#EXT-X-DISCONTINUITY``, ``#EXT-X-DISCONTINUITY-SEQUENCE`` counts the ones that slid
out (RFC 8216, 4.3.3.3 and 6.2.2), and every segment has its
``#EXT-X-PROGRAM-DATE-TIME``, by which players align refreshed playlists.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

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
            f"#EXT-X-DISCONTINUITY-SEQUENCE:{self.discontinuities_before(first)}",
        ]
        for sequence in range(first, produced):
            if sequence > 0 and sequence % self.files == 0:
                lines.append("#EXT-X-DISCONTINUITY")
            # the wall time each segment was "recorded": players align refreshed
            # playlists and discontinuities by it
            started = datetime.fromtimestamp(sequence * self.segment_s, UTC)
            lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{started.isoformat(timespec='milliseconds')}")
            lines.append(f"#EXTINF:{self.segment_s:.3f},")
            lines.append(f"{sequence}{SEGMENT_SUFFIX}")
        return "\n".join(lines) + "\n"

    def discontinuities_before(self, sequence: int) -> int:
        """How many loop restarts come before segment ``sequence``."""
        return max(0, (sequence - 1) // self.files)

    def file_of(self, sequence: int) -> int:
        return sequence % self.files
