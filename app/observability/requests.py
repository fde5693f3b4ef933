"""Request id in and out, one access line per request and the HTTP metrics.

``RequestObserver`` is the outermost of the gateway's own middleware (only CORS is
outside it): every answer, the warm read path's included, gets its request id and
the security headers, is counted and timed, and is logged as one ``request`` line
(the route template, never the raw path; status, latency, how the cache served it,
how many upstream calls it made). An exception that escapes the app is answered here,
with the same problem+json 500 on every path.

A request's bookkeeping (its two metrics and its access line) is done by
``RequestLog`` at the end of the event loop's turn the request finished in, for all
the requests of that turn together: one write and one flush a turn instead of one a
request, and the work runs in one warm loop instead of cold after each answer.
Measured on a warm read under load (``tests/perf/bench_reads.py``): 10 µs of the 60
a request cost. Any other log line written before the turn ends first writes the
held ones (``hold_lines``), so stdout stays in order; a line is late by one turn at
most.

The access line is the JSON object structlog's chain renders for the same fields
(tests/unit/observability/test_requests.py checks it), encoded here in one step and
written through the same stdout writer as every other line (``stdout_bytes``): through
the chain it cost a warm read a third of its time, which the warm-read target
(``docs/benchmarks.md``) does not leave. Its fields are fixed or validated (method,
route template, status, latency, cache state, call count, a request id that is
generated or matched ``[A-Za-z0-9._-]``): nothing for the redactor to find. In console
mode, or where stdout has no binary stream, it goes through structlog.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import os
import re
import time
from collections.abc import Callable, Sequence
from typing import NamedTuple

import orjson
import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.observability.context import RequestSummary, reset_summary, set_summary
from app.observability.logging import UtcTimestamp, hold_lines, stdout_bytes
from app.observability.metrics import Metrics

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")

Headers = list[tuple[bytes, bytes]]

log = structlog.get_logger("gateway.access")


class Finished(NamedTuple):
    """What the access line and the metrics say of one request."""

    request_id: str
    method: str
    route: str
    status: int
    seconds: float
    cache: str | None
    upstream_calls: int
    at: float  # wall-clock time it finished (the line's timestamp)


@functools.lru_cache(maxsize=256)  # route templates, methods and cache states: few
def _json_string(value: str | None) -> bytes:
    return orjson.dumps(value)


class AccessLine:
    """Writes ``request`` lines: JSON straight to stdout, else through structlog."""

    def __init__(self, *, json_lines: bool) -> None:
        self._json_lines = json_lines
        self._timestamp = UtcTimestamp()

    def write(self, finished: Sequence[Finished]) -> None:
        stream = stdout_bytes()
        if not self._json_lines or stream is None:
            for done in finished:
                log.info(
                    "request",
                    method=done.method,
                    route=done.route,
                    status=done.status,
                    ms=round(done.seconds * 1000, 3),
                    cache=done.cache,
                    upstream_calls=done.upstream_calls,
                    request_id=done.request_id,
                )
            return
        # The object orjson writes for these fields, spelled out: the id is generated or
        # matched [A-Za-z0-9._-], the strings are route templates and method names
        # (encoded once each), the numbers are ints and a finite float (as orjson writes it).
        stamp = self._timestamp.at
        stream.write(
            b"".join(
                b'{"method":%s,"route":%s,"status":%d,"ms":%s,"cache":%s,"upstream_calls":%d,'
                b'"event":"request","request_id":"%s","level":"info","timestamp":"%s"}\n'
                % (
                    _json_string(done.method),
                    _json_string(done.route),
                    done.status,
                    orjson.dumps(round(done.seconds * 1000, 3)),
                    _json_string(done.cache),
                    done.upstream_calls,
                    done.request_id.encode(),
                    stamp(done.at).encode(),
                )
                for done in finished
            )
        )
        stream.flush()  # as every line: out at once (here, at the turn's end), in order


class RequestLog:
    """The metrics and access lines of finished requests, held until the end of the
    event loop's current turn (or the next other log line) and then done together.
    Outside a running loop, done at once."""

    def __init__(self, metrics: Metrics, access_log: AccessLine | None) -> None:
        self._metrics = metrics
        self._access_log = access_log
        self._held: list[Finished] = []
        metrics.before_exposition(self.settle)

    def add(self, finished: Finished) -> None:
        self._held.append(finished)
        if len(self._held) > 1:
            return  # the turn's settle is scheduled already
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.settle()
            return
        loop.call_soon(self.settle)
        hold_lines(self.settle)

    def settle(self) -> None:
        """Count and log what is held now (a no-op when nothing is)."""
        held, self._held = self._held, []
        if not held:
            return
        for done in held:
            self._metrics.request_done(done.route, done.method, done.status, done.seconds)
        if self._access_log is not None:
            self._access_log.write(held)


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
    security headers); ``access_log``: None when info lines are off; ``on_error``: the
    answer to an exception that escapes the app before an answer has started (it logs
    the error with its traceback). One that escapes later is left to the server, which
    logs it and closes the connection."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: Metrics,
        trust_request_id: Callable[[Scope], bool],
        add_headers: Callable[[Headers], Headers],
        on_error: Callable[[Exception], ASGIApp],
        access_log: AccessLine | None = None,
    ) -> None:
        self._app = app
        self.log = RequestLog(metrics, access_log)
        self._trust_request_id = trust_request_id  # is the peer a trusted proxy?
        self._add_headers = add_headers
        self._on_error = on_error
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
            self.log.add(
                Finished(
                    summary.request_id,
                    scope["method"],
                    route_template(scope, summary),
                    status,
                    time.perf_counter() - started,
                    summary.cache,
                    summary.upstream_calls,
                    time.time(),
                )
            )
            reset_summary(token)
