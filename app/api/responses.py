"""Turning a cached snapshot into an HTTP answer: ETag, If-None-Match, Age.

``render_snapshot`` is the one place that decides a snapshot answer's status, headers
and body (200, 304, HEAD). The routed read endpoints send it as a ``SnapshotResponse``
and the warm read path (``app/api/warm_reads.py``) sends the same tuple itself; both
then pass through the same request-id, security and CORS headers.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.background import BackgroundTask
from starlette.responses import Response

from app.catalogue.snapshot import Snapshot

CACHE_CONTROL = "public, max-age=5, stale-while-revalidate=30, stale-if-error=600"
_CACHE_CONTROL = (b"cache-control", CACHE_CONTROL.encode())
_NOT_MODIFIED_DROPS = frozenset({b"content-type", b"content-length"})

Headers = list[tuple[bytes, bytes]]


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Weak comparison (RFC 9110 13.1.2) against a comma list, or ``*``."""
    if not if_none_match:
        return False
    opaque = etag.removeprefix("W/")
    for candidate in if_none_match.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == opaque:
            return True
    return False


@dataclass(frozen=True, slots=True)
class Rendered:
    status: int
    headers: Headers
    body: bytes


def render_snapshot(
    snapshot: Snapshot, *, method: str, if_none_match: str | None, now: float
) -> Rendered:
    """The answer to a GET or HEAD of ``snapshot``: 304 when ``If-None-Match`` matches
    its ETag (no body, no Content-Type or Length), else 200 with the pre-serialised
    body (none for HEAD, with the GET's Content-Length)."""
    age = (b"age", str(int(snapshot.age(now))).encode())
    if etag_matches(if_none_match, snapshot.etag):
        kept = [h for h in snapshot.wire_headers if h[0] not in _NOT_MODIFIED_DROPS]
        return Rendered(304, [*kept, _CACHE_CONTROL, age], b"")
    body = b"" if method == "HEAD" else snapshot.body
    return Rendered(200, [*snapshot.wire_headers, _CACHE_CONTROL, age], body)


class SnapshotResponse(Response):
    """A ``Rendered`` answer as a Starlette response, its headers sent as they are."""

    def __init__(self, rendered: Rendered) -> None:
        self.status_code = rendered.status
        self.body = rendered.body
        self.raw_headers = list(rendered.headers)
        self.background: BackgroundTask | None = None
