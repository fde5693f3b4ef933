"""Per-request facts (request id, cache state, upstream calls), the access line and
the HTTP metrics, as one pure ASGI middleware.

Handlers and the upstream client add to the current request's ``RequestFacts``
through ``current_facts()``; the middleware writes one access line per request with
the route template (never the raw path), status, latency and those facts.
"""

from __future__ import annotations

import re
import time
import uuid
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.observability.metrics import Metrics
from app.upstream.client import UpstreamCall

log = structlog.get_logger("gateway.access")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


@dataclass(slots=True)
class RequestFacts:
    request_id: str
    cache: str | None = None
    upstream_calls: int = 0


_FACTS: ContextVar[RequestFacts | None] = ContextVar("request_facts", default=None)


def current_facts() -> RequestFacts | None:
    return _FACTS.get()


def count_upstream_call(call: UpstreamCall) -> None:
    facts = _FACTS.get()
    if facts is not None:
        facts.upstream_calls += 1


def route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


class RequestObserver:
    """Request id in and out, one access line, request metrics."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics, trust_request_id: Any) -> None:
        self._app = app
        self._metrics = metrics
        self._trust_request_id = trust_request_id  # (scope) -> bool: peer is a trusted proxy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        facts = RequestFacts(self._request_id(scope))
        token = _FACTS.set(facts)
        structlog.contextvars.bind_contextvars(request_id=facts.request_id)
        status = 500
        header = (b"x-request-id", facts.request_id.encode())

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        try:
            await self._app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = route_template(scope)
            method = scope["method"]
            self._metrics.http_requests.labels(route, method, str(status)).inc()
            self._metrics.http_latency.labels(route, method).observe(elapsed)
            log.info(
                "request",
                method=method,
                route=route,
                status=status,
                ms=round(elapsed * 1000, 3),
                cache=facts.cache,
                upstream_calls=facts.upstream_calls,
            )
            structlog.contextvars.unbind_contextvars("request_id")
            _FACTS.reset(token)

    def _request_id(self, scope: Scope) -> str:
        for name, value in scope.get("headers", []):
            if name == b"x-request-id":
                text: str = value.decode("latin-1")
                if _REQUEST_ID.match(text) and self._trust_request_id(scope):
                    return text
                break
        return uuid.uuid4().hex
