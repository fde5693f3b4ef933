"""What the browser tests read from the demo pages (``window.demoState``,
``window.demoPlayer``, the ``<video>`` elements)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import httpx
from playwright.sync_api import Frame, Page

# Generous: two shared cores, several test runs at once.
PLAY_TIMEOUT_S = 90.0

T = TypeVar("T")

VIDEO_PROGRESS = """(selector) => {
  const video = document.querySelector(selector);
  if (!video) return null;
  const quality = video.getVideoPlaybackQuality();
  return {time: video.currentTime, frames: quality.totalVideoFrames, paused: video.paused};
}"""


def wait_for(
    read: Callable[[], T], ok: Callable[[T], bool], timeout_s: float, what: str, page: Page
) -> T:
    """Poll ``read`` (letting the page's events run between reads) until ``ok``."""
    deadline = time.monotonic() + timeout_s
    value = read()
    while not ok(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: still {value!r} after {timeout_s} s")
        page.wait_for_timeout(250)
        value = read()
    return value


def assert_video_plays(page: Page, where: Page | Frame, selector: str = "video") -> float:
    """The video decodes frames and its clock moves 2 s past where it was first seen
    playing: real decoding, not a poster. Returns the seconds it advanced."""

    def progress() -> dict[str, float] | None:
        value: dict[str, float] | None = where.evaluate(VIDEO_PROGRESS, selector)
        return value

    first = wait_for(
        progress, lambda p: p is not None and p["frames"] > 0, PLAY_TIMEOUT_S, "first frame", page
    )
    assert first is not None
    later = wait_for(
        progress,
        lambda p: p is not None and p["time"] > first["time"] + 2 and p["frames"] > first["frames"],
        PLAY_TIMEOUT_S,
        "video advancing 2 s",
        page,
    )
    assert later is not None
    return later["time"] - first["time"]


def has_route(base_url: str, path: str) -> bool:
    """Whether the gateway's OpenAPI document lists ``path``."""
    paths = httpx.get(f"{base_url}/openapi.json", timeout=10).json()["paths"]
    return path in paths


def open_event(event_id: str) -> dict[str, object]:
    """A simulator event open since 20 minutes ago, for two hours, with no geo lists."""
    start = datetime.now(UTC) - timedelta(minutes=20)
    return {
        "eventId": event_id,
        "eventStatusCode": "O",
        "title": event_id,
        "sportCode": "FT",
        "startTime": _iso(start),
        "estimatedEndTime": _iso(start + timedelta(hours=2)),
        "geoAllow": "",
        "geoBlock": "",
    }


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
