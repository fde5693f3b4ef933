"""The access line: one JSON object per request, written directly.

It runs on every request, so it skips structlog's processor chain: its fields are
all from fixed sets or validated (method, route template, status, latency, cache
state, call count, a request id that is generated or matched ``[A-Za-z0-9._-]``),
so there is nothing for the redactor to find, and the line is encoded by one
``orjson.dumps`` call. It is the JSON object structlog's chain renders for the same
fields (``line_processors``; tests/unit/observability/test_access_log.py checks
it). In console mode it goes through structlog. It is the only access line: uvicorn's
own is switched off (``route_stdlib_logging``), with or without ``--no-access-log``.

Lines are flushed at most ``FLUSH_EVERY_S`` after they are written, not one system
call per request: under load that is a fifth of a worker's time. The stream is
buffered even when stdout is not (``stdout_bytes``); other log lines go to the same
buffer and flush it when they are written, so lines stay in order. At most the last
50 ms of access lines are lost if the process is killed.
"""

from __future__ import annotations

import asyncio
import functools
import time
from typing import IO

import orjson
import structlog

from app.observability.logging import stdout_bytes

FLUSH_EVERY_S = 0.05


@functools.lru_cache(maxsize=256)  # route templates, methods and cache states: few
def _json_string(value: str | None) -> bytes:
    return orjson.dumps(value)


class AccessLog:
    def __init__(self, *, json_lines: bool, enabled: bool, stream: IO[bytes] | None = None) -> None:
        self._enabled = enabled
        self._stream = stream if stream is not None else stdout_bytes()
        self._fallback = (
            None
            if json_lines and self._stream is not None
            else structlog.get_logger("gateway.access")
        )
        self._second = -1
        self._prefix = ""
        self._flush_pending = False

    def _timestamp(self, now: float) -> str:
        second = int(now)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._prefix}.{int((now - second) * 1_000_000):06d}Z"

    def request(
        self,
        request_id: str,
        method: str,
        route: str,
        status: int,
        ms: float,
        cache: str | None,
        upstream_calls: int,
    ) -> None:
        if not self._enabled:
            return
        if self._fallback is not None or self._stream is None:
            if self._fallback is not None:
                self._fallback.info(
                    "request",
                    request_id=request_id,
                    method=method,
                    route=route,
                    status=status,
                    ms=ms,
                    cache=cache,
                    upstream_calls=upstream_calls,
                )
            return
        # The same object orjson would write for these fields, spelled out: the id is
        # generated or matched [A-Za-z0-9._-], the strings are route templates and
        # method names (encoded once each), the numbers are ints and a finite float.
        self._stream.write(
            b'{"event":"request","level":"info","timestamp":"%s","request_id":"%s",'
            b'"method":%s,"route":%s,"status":%d,"ms":%s,"cache":%s,"upstream_calls":%d}\n'
            % (
                self._timestamp(time.time()).encode(),
                request_id.encode(),
                _json_string(method),
                _json_string(route),
                status,
                repr(ms).encode(),
                _json_string(cache),
                upstream_calls,
            )
        )
        if not self._flush_pending:
            self._flush_pending = True
            asyncio.get_running_loop().call_later(FLUSH_EVERY_S, self.flush)

    def flush(self) -> None:
        self._flush_pending = False
        if self._stream is not None:
            self._stream.flush()
