"""A stand-in for an operator's watch-rules service, as a real HTTP server.

``run_watch_service`` serves it with uvicorn in a thread on a free loopback port. It
records every request it receives (headers and JSON body) and answers as told:
``allow`` (the default), ``deny`` with a reason, ``error`` (500), ``slow`` (sleeps
past any sensible timeout, then allows), ``garbage`` (200 that is not JSON), ``drip``
(a 200 allow sent a byte every ``drip_s``: each read is quick, the whole is not) or
``huge`` (a 200 whose JSON body is ``huge_bytes`` long, sent without a length).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.support.redis_server import free_port
from tests.support.threaded_server import serve_in_thread

Behaviour = Literal["allow", "deny", "error", "slow", "garbage", "drip", "huge"]


@dataclass
class WatchService:
    url: str
    behaviour: Behaviour = "allow"
    reason: str = "no_bet_on_event"
    slow_s: float = 1.5
    drip_s: float = 0.2
    huge_bytes: int = 20 * 1024 * 1024
    sent_bytes: int = 0
    requests: list[dict[str, Any]] = field(default_factory=list)

    def bodies(self) -> list[dict[str, Any]]:
        return [r["body"] for r in self.requests]


def _app(service: WatchService) -> Starlette:
    async def drip() -> AsyncIterator[bytes]:
        for byte in b'{"allow": true}':
            service.sent_bytes += 1
            yield bytes([byte])
            await asyncio.sleep(service.drip_s)

    async def huge() -> AsyncIterator[bytes]:
        yield b'{"allow": true, "pad": "'
        while (left := service.huge_bytes - service.sent_bytes) > 0:
            chunk = b"x" * min(65536, left)
            service.sent_bytes += len(chunk)
            yield chunk
        yield b'"}'

    async def check(request: Request) -> Response:
        body = orjson.loads(await request.body())
        service.requests.append({"headers": dict(request.headers), "body": body})
        if service.behaviour == "deny":
            return JSONResponse({"allow": False, "reason": service.reason})
        if service.behaviour == "error":
            return JSONResponse({"error": "boom"}, status_code=500)
        if service.behaviour == "garbage":
            return Response(b"<html>maintenance</html>", media_type="text/html")
        if service.behaviour == "drip":
            return StreamingResponse(drip(), media_type="application/json")
        if service.behaviour == "huge":
            return StreamingResponse(huge(), media_type="application/json")
        if service.behaviour == "slow":
            await asyncio.sleep(service.slow_s)
        return JSONResponse({"allow": True})

    return Starlette(routes=[Route("/watch", check, methods=["POST"])])


@contextmanager
def run_watch_service() -> Iterator[WatchService]:
    port = free_port()
    service = WatchService(url=f"http://127.0.0.1:{port}/watch")
    with serve_in_thread(_app(service), port, "watch service"):
        yield service
