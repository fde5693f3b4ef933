"""Turning a cached snapshot into an HTTP answer: ETag, If-None-Match, Age."""

from __future__ import annotations

import time

from starlette.responses import Response

from app.catalogue.service import Served
from app.observability.context import current_facts

JSON = "application/json"
CACHE_CONTROL = "public, max-age=5, stale-while-revalidate=30, stale-if-error=600"


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


def served_headers(served: Served, now: float) -> dict[str, str]:
    return {
        "ETag": served.snapshot.etag,
        "Age": str(int(served.snapshot.age(now))),
        "Cache-Control": CACHE_CONTROL,
    }


def cached_response(served: Served, if_none_match: str | None) -> Response:
    facts = current_facts()
    if facts is not None:
        facts.cache = served.state
    headers = served_headers(served, time.time())
    if etag_matches(if_none_match, served.snapshot.etag):
        return Response(status_code=304, headers=headers)
    return Response(content=served.snapshot.body, media_type=JSON, headers=headers)
