"""Request id in and out, one access line per request and the HTTP metrics.

``RequestObserver`` is the outermost of the gateway's own middleware (only CORS is
outside it): every answer, the warm read path's included, gets its request id and
the security headers, is counted and timed, and is logged as one ``request`` event
through structlog's chain (the route template, never the raw path; status, latency,
how the cache served it, how many upstream calls it made). An exception that escapes
the app is answered here, with the same problem+json 500 on every path.
"""

from __future__ import annotations

import itertools
import os
import re
import time
from collections.abc import Callable

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.observability.context import RequestSummary, reset_summary, set_summary
from app.observability.metrics import Metrics

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")

Headers = list[tuple[bytes, bytes]]

log = structlog.get_logger("gateway.access")


class RequestIds:
    """Unique request ids without a system call per request: a random per-process
    prefix and a counter (ids correlate log lines; they are not secrets)."""

    def __init__(self) -> None:
        self._prefix = os.urandom(8).hex()
        self._counter = itertools.count(1)

    def next(self) -> str:
        return f"{self._prefix}{next(self._counter):016x}"


def route_template(scope: Scope, summary: RequestSummary) -> str:
    if summary.route is not None:
        return summary.route
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else "unmatched"


class RequestObserver:
    """ASGI middleware: request id, headers, metrics and the access line.

    ``add_headers``: what every answer's headers get besides the request id (the
    security headers); ``on_error``: the answer to an exception that escapes the app
    before an answer has started (it logs the error with its traceback). One that
    escapes later is left to the server, which logs it and closes the connection."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: Metrics,
        trust_request_id: Callable[[Scope], bool],
        add_headers: Callable[[Headers], Headers],
        on_error: Callable[[Exception], ASGIApp],
        access_log: bool = True,
    ) -> None:
        self._app = app
        self._metrics = metrics
        self._trust_request_id = trust_request_id  # is the peer a trusted proxy?
        self._add_headers = add_headers
        self._on_error = on_error
        self._access_log = access_log
        self._ids = RequestIds()

    def request_id(self, scope: Scope) -> str:
        """The presented ``X-Request-ID`` when a trusted proxy sent a well-formed one,
        else a new id."""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                text: str = value.decode("latin-1")
                if _REQUEST_ID.match(text) and self._trust_request_id(scope):
                    return text
                break
        return self._ids.next()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        summary = RequestSummary(self.request_id(scope))
        token = set_summary(summary)
        bound = structlog.contextvars.bind_contextvars(request_id=summary.request_id)
        status = 500
        answering = False
        request_id_header = (b"x-request-id", summary.request_id.encode())

        async def send_with_id(message: Message) -> None:
            nonlocal status, answering
            if message["type"] == "http.response.start":
                status = message["status"]
                answering = True
                message["headers"] = self._add_headers(
                    [*message.get("headers", ()), request_id_header]
                )
            await send(message)

        try:
            await self._app(scope, receive, send_with_id)
        except Exception as exc:
            if answering:
                raise  # too late for a problem answer: the server closes the connection
            await self._on_error(exc)(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = route_template(scope, summary)
            method = scope["method"]
            self._metrics.request_done(route, method, status, elapsed)
            if self._access_log:
                log.info(
                    "request",
                    method=method,
                    route=route,
                    status=status,
                    ms=round(elapsed * 1000, 3),
                    cache=summary.cache,
                    upstream_calls=summary.upstream_calls,
                )
            structlog.contextvars.reset_contextvars(**bound)
            reset_summary(token)
