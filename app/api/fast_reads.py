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

import re
import time
from datetime import date
from urllib.parse import parse_qsl

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.types import Message, Scope, Send

from app.api.responses import render_snapshot
from app.catalogue.service import Catalogue, Served, valid_event_id
from app.observability.requests import AccessRecorder, response_headers

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_SPORT = re.compile(r"^[A-Za-z]{2,3}$")
_STATUSES = frozenset({"P", "O", "C", "V"})
_EVENTS_PREFIX = "/v1/events/"


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
    """Answers warm reads; ``respond`` returns False when the request is not one.

    The answer is ``render_snapshot``'s, as the routed endpoint sends it, with the
    headers the routed stack's middleware adds: the recorder's request id and security
    headers, then CORS through the same ``CORSMiddleware`` configuration (``cors``, None
    when CORS is off)."""

    def __init__(
        self, recorder: AccessRecorder, cors: CORSMiddleware | None, max_header_bytes: int
    ) -> None:
        self._recorder = recorder
        self._cors = cors
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
        # One pass over the request's headers: their size, and the two that matter here.
        size = 0
        if_none_match = request_id = None
        for name, value in scope["headers"]:
            size += len(name) + len(value)
            if name == b"if-none-match":
                if_none_match = value.decode("latin-1")
            elif name == b"x-request-id":
                request_id = value
        if size > self._max_header_bytes:
            return False  # the routed stack answers 431
        started = time.perf_counter()
        route, served = found
        request_id_text = self._recorder.request_id(scope, request_id)
        status = 500
        try:
            rendered = render_snapshot(
                served.snapshot, method=method, if_none_match=if_none_match, now=time.time()
            )
            start: Message = {
                "type": "http.response.start",
                "status": rendered.status,
                "headers": [*rendered.headers, *response_headers(request_id_text)],
            }
            if self._cors is None:
                await send(start)
            else:
                await self._cors.send(start, send, Headers(scope=scope))
            await send({"type": "http.response.body", "body": rendered.body})
            status = rendered.status
        finally:
            self._recorder.done(request_id_text, method, route, status, started, served.state)
        return True
