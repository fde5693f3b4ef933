"""A stand-in for an operator's watch-rules service, as a real HTTP server.

``run_watch_service`` serves it with uvicorn in a thread on a free loopback port. It
records every request it receives (headers and JSON body) and answers as told:
``allow`` (the default), ``deny`` with a reason, ``error`` (500), ``slow`` (sleeps
past any sensible timeout, then allows) or ``garbage`` (200 that is not JSON).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.redis_server import free_port

Behaviour = Literal["allow", "deny", "error", "slow", "garbage"]


@dataclass
class WatchService:
    url: str
    behaviour: Behaviour = "allow"
    reason: str = "no_bet_on_event"
    slow_s: float = 1.5
    requests: list[dict[str, Any]] = field(default_factory=list)

    def bodies(self) -> list[dict[str, Any]]:
        return [r["body"] for r in self.requests]


def _app(service: WatchService) -> Starlette:
    async def check(request: Request) -> Response:
        body = orjson.loads(await request.body())
        service.requests.append({"headers": dict(request.headers), "body": body})
        if service.behaviour == "deny":
            return JSONResponse({"allow": False, "reason": service.reason})
        if service.behaviour == "error":
            return JSONResponse({"error": "boom"}, status_code=500)
        if service.behaviour == "garbage":
            return Response(b"<html>maintenance</html>", media_type="text/html")
        if service.behaviour == "slow":
            await asyncio.sleep(service.slow_s)
        return JSONResponse({"allow": True})

    return Starlette(routes=[Route("/watch", check, methods=["POST"])])


@contextmanager
def run_watch_service() -> Iterator[WatchService]:
    port = free_port()
    service = WatchService(url=f"http://127.0.0.1:{port}/watch")
    config = uvicorn.Config(
        _app(service), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the watch service did not start")
        time.sleep(0.01)
    try:
        yield service
    finally:
        server.should_exit = True
        thread.join(timeout=10)
