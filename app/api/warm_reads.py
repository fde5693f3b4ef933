"""Warm catalogue reads answered straight from memory, before the router.

An ASGI middleware inside the gateway's stack (after CORS, the request observer and
the size limits): a GET or HEAD for ``/v1/sports``, ``/v1/events?date=…``,
``/v1/events/open``, ``/v1/events/{id}`` or ``/v1/events/{id}/streams`` whose answer
this replica holds is sent here as the snapshot's bytes. Everything else (cold lists,
anything to validate or refuse, every other route) goes on to the FastAPI routes,
which document and handle the same paths, so both give the same answers; this layer
only skips the routing and dependency machinery on the hot path. The middleware
around it gives its answers what it gives every answer (request id, security and CORS
headers, metrics, the access line, the 500 for an error).
"""

from __future__ import annotations

import re
import time
from datetime import date
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.responses import render_snapshot
from app.catalogue.service import Catalogue, SnapshotRead, valid_event_id
from app.observability.context import current_summary

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


def lookup(catalogue: Catalogue, path: str, query_string: bytes) -> tuple[str, SnapshotRead] | None:
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


class WarmReads:
    """ASGI middleware: answers a warm read itself (``lookup``), else passes the
    request on. The answer is ``render_snapshot``'s, as the routed endpoint sends it."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not await self._answer(scope, send):
            await self._app(scope, receive, send)

    async def _answer(self, scope: Scope, send: Send) -> bool:
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
        route, served = found
        summary = current_summary()
        if summary is not None:
            summary.route = route
            summary.cache = served.state
        if_none_match = None
        for name, value in scope["headers"]:
            if name == b"if-none-match":
                if_none_match = value.decode("latin-1")
                break
        rendered = render_snapshot(
            served.snapshot, method=method, if_none_match=if_none_match, now=time.time()
        )
        await send(
            {
                "type": "http.response.start",
                "status": rendered.status,
                "headers": rendered.headers,
            }
        )
        await send({"type": "http.response.body", "body": rendered.body})
        return True
