"""Warm catalogue reads answered straight from memory, before any routing.

Offered every request before the middleware stack and the router: a GET or HEAD for ``/v1/sports``,
``/v1/events?date=…``, ``/v1/events/open``, ``/v1/events/{id}`` or
``/v1/events/{id}/streams`` whose answer this replica holds is sent here as the
snapshot's bytes. Everything else (cold lists, anything to validate or refuse, every
other route) goes on to the FastAPI routes, which document and handle the same paths,
so both give the same answers; this layer only skips the routing and dependency
machinery on the hot path.
"""

from __future__ import annotations

import functools
import re
import time
from datetime import date
from urllib.parse import parse_qsl

from starlette.types import Scope, Send

from app.api.responses import CACHE_CONTROL, etag_matches
from app.catalogue.service import Catalogue, Served, valid_event_id
from app.catalogue.snapshot import Snapshot
from app.observability.requests import SECURITY_HEADERS, AccessRecorder

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_SPORT = re.compile(r"^[A-Za-z]{2,3}$")
_STATUSES = frozenset({"P", "O", "C", "V"})
_EVENTS_PREFIX = "/v1/events/"
_CACHE_CONTROL = (b"cache-control", CACHE_CONTROL.encode())


def _events_query(query_string: bytes) -> tuple[date, str | None, str | None] | None:
    """``date``/``sport``/``status`` when the query is plainly valid, else None."""
    fields: dict[str, str] = {}
    for key, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if key in fields or key not in ("date", "sport", "status"):
            return None
        fields[key] = value
    raw_date, sport, status = fields.get("date"), fields.get("sport"), fields.get("status")
    if raw_date is None or not _DATE.match(raw_date):
        return None
    if sport is not None and not _SPORT.match(sport):
        return None
    if status is not None and status not in _STATUSES:
        return None
    try:
        day = date.fromisoformat(raw_date)
    except ValueError:
        return None
    return day, sport.upper() if sport else None, status


def lookup(catalogue: Catalogue, path: str, query_string: bytes) -> tuple[str, Served] | None:
    """The route template and the in-memory answer for a read, or None."""
    if path == "/v1/events/open":
        served = catalogue.open_now()
        return ("/v1/events/open", served) if served else None
    if path == "/v1/events":
        query = _events_query(query_string)
        served = catalogue.events_now(*query) if query else None
        return ("/v1/events", served) if served else None
    if path == "/v1/sports":
        served = catalogue.sports_now()
        return ("/v1/sports", served) if served else None
    if path.startswith(_EVENTS_PREFIX):
        rest = path[len(_EVENTS_PREFIX) :]
        if rest.endswith("/streams"):
            event_id = rest[: -len("/streams")]
            if valid_event_id(event_id):
                served = catalogue.streams_now(event_id)
                return ("/v1/events/{eventId}/streams", served) if served else None
        elif valid_event_id(rest):
            served = catalogue.event_now(rest)
            return ("/v1/events/{eventId}", served) if served else None
    return None


class CachedReads:
    """Answers warm reads; ``respond`` returns False when the request is not one."""

    def __init__(
        self, recorder: AccessRecorder, cors_origins: frozenset[str], max_header_bytes: int
    ) -> None:
        self._recorder = recorder
        self._cors_origins = cors_origins
        self._max_header_bytes = max_header_bytes

    async def respond(self, scope: Scope, send: Send) -> bool:
        method = scope["method"]
        if method not in ("GET", "HEAD"):
            return False
        state = scope.get("state")
        gateway = state.get("gateway") if state else None
        if gateway is None:
            return False
        found = lookup(gateway.catalogue, scope["path"], scope["query_string"])
        if found is None:
            return False
        # One pass over the request's headers: their size, and the three that matter.
        size = 0
        if_none_match = origin = request_id = None
        for name, value in scope["headers"]:
            size += len(name) + len(value)
            if name == b"if-none-match":
                if_none_match = value
            elif name == b"origin":
                origin = value
            elif name == b"x-request-id":
                request_id = value
        if size > self._max_header_bytes:
            return False  # the routed stack answers 431
        started = time.perf_counter()
        route, served = found
        request_id_text = self._recorder.request_id(scope, request_id)
        status = 500
        try:
            status = await self._send(send, method, served, request_id_text, if_none_match, origin)
        finally:
            self._recorder.done(request_id_text, method, route, status, started, served.state)
        return True

    async def _send(
        self,
        send: Send,
        method: str,
        served: Served,
        request_id: str,
        if_none_match: bytes | None,
        origin: bytes | None,
    ) -> int:
        snapshot = served.snapshot
        headers = [
            *_constant_headers(snapshot),
            (b"age", str(int(snapshot.age(time.time()))).encode()),
            (b"x-request-id", request_id.encode()),
        ]
        if self._cors_origins:  # as CORSMiddleware answers a simple GET
            if origin is not None and origin.decode("latin-1") in self._cors_origins:
                headers.append((b"access-control-allow-origin", origin))
            headers.append((b"vary", b"Origin"))
        if if_none_match is not None and etag_matches(
            if_none_match.decode("latin-1"), snapshot.etag
        ):
            headers = [h for h in headers if h[0] not in (b"content-type", b"content-length")]
            await send({"type": "http.response.start", "status": 304, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return 304
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send(
            {"type": "http.response.body", "body": b"" if method == "HEAD" else snapshot.body}
        )
        return 200


@functools.lru_cache(maxsize=64)  # bounded: it keeps its snapshots alive
def _constant_headers(snapshot: Snapshot) -> tuple[tuple[bytes, bytes], ...]:
    """The headers that do not change between reads of one snapshot, built once."""
    return (*snapshot.wire_headers, _CACHE_CONTROL, *SECURITY_HEADERS)
