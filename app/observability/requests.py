"""Request id in and out, one access line per request and the HTTP metrics.

``AccessRecorder`` does the bookkeeping; ``RequestObserver`` applies it to every
request that goes through the routed stack, and the fast read path applies it to the
requests it answers itself. The access line names the route template (never the raw
path), status, latency, how the cache served the request and how many upstream
calls it made.
"""

from __future__ import annotations

import itertools
import os
import re
import time
from collections.abc import Callable
from contextvars import Token

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.observability.access_log import AccessLog
from app.observability.context import RequestFacts, reset_facts, set_facts
from app.observability.metrics import Metrics

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")

# Sent with every answer: this API serves JSON only, never a page to frame or sniff.
# ``frame-ancestors`` does X-Frame-Options' job in every current browser, and a JSON
# answer is never rendered, so Referrer-Policy would have nothing to act on: two
# headers, as each one a worker writes costs it time on every warm read.
SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
)


class RequestIds:
    """Unique request ids without a system call per request: a random per-process
    prefix and a counter (ids correlate log lines; they are not secrets)."""

    def __init__(self) -> None:
        self._prefix = os.urandom(8).hex()
        self._counter = itertools.count(1)

    def next(self) -> str:
        return f"{self._prefix}{next(self._counter):016x}"


def route_template(scope: Scope) -> str:
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else "unmatched"


class AccessRecorder:
    def __init__(
        self,
        *,
        metrics: Metrics,
        access_log: AccessLog,
        trust_request_id: Callable[[Scope], bool],
    ) -> None:
        self._metrics = metrics
        self._access_log = access_log
        self._ids = RequestIds()
        self._trust_request_id = trust_request_id  # is the peer a trusted proxy?

    def begin(self, scope: Scope) -> tuple[RequestFacts, Token[RequestFacts | None], float]:
        presented = next((v for n, v in scope["headers"] if n == b"x-request-id"), None)
        facts = RequestFacts(self.request_id(scope, presented))
        return facts, set_facts(facts), time.perf_counter()

    def end(
        self,
        scope: Scope,
        facts: RequestFacts,
        token: Token[RequestFacts | None],
        started: float,
        status: int,
        route: str | None = None,
    ) -> None:
        """``route``: the template, for requests answered outside the router."""
        route = route or route_template(scope)
        self.done(
            facts.request_id,
            scope["method"],
            route,
            status,
            started,
            facts.cache,
            facts.upstream_calls,
        )
        reset_facts(token)

    def done(
        self,
        request_id: str,
        method: str,
        route: str,
        status: int,
        started: float,
        cache: str | None,
        upstream_calls: int = 0,
    ) -> None:
        """Count, time and log one answered request (``started``: ``perf_counter``)."""
        elapsed = time.perf_counter() - started
        self._metrics.request_done(route, method, status, elapsed)
        self._access_log.request(
            request_id, method, route, status, round(elapsed * 1000, 3), cache, upstream_calls
        )

    def request_id(self, scope: Scope, presented: bytes | None) -> str:
        """The presented ``X-Request-ID`` when a trusted proxy sent a well-formed one,
        else a new id."""
        if presented is not None:
            text = presented.decode("latin-1")
            if _REQUEST_ID.match(text) and self._trust_request_id(scope):
                return text
        return self._ids.next()


class RequestObserver:
    """ASGI middleware: ``AccessRecorder`` around the routed stack."""

    def __init__(self, app: ASGIApp, *, recorder: AccessRecorder) -> None:
        self._app = app
        self._recorder = recorder

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        facts, token, started = self._recorder.begin(scope)
        status = 500
        request_id_header = (b"x-request-id", facts.request_id.encode())

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", ()))
                # a page that sets its own policy (app/demo) keeps it
                own_csp = any(name.lower() == b"content-security-policy" for name, _ in headers)
                message["headers"] = [
                    *headers,
                    request_id_header,
                    *(SECURITY_HEADERS[:1] if own_csp else SECURITY_HEADERS),
                ]
            await send(message)

        try:
            await self._app(scope, receive, send_with_id)
        finally:
            self._recorder.end(scope, facts, token, started, status)
