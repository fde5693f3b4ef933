"""A JWKS endpoint as a real HTTP server (uvicorn in a thread on a free loopback port).

``run_jwks_service`` serves ``GET /jwks.json``: the ``keys`` it holds (``ok``), HTTP
500 (``down``), or a JSON document ``huge_bytes`` long sent without a length
(``huge``). It counts the requests it answered.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.support.redis_server import free_port
from tests.support.threaded_server import serve_in_thread

Behaviour = Literal["ok", "down", "huge"]


@dataclass
class JwksService:
    url: str
    keys: list[dict[str, Any]] = field(default_factory=list)
    behaviour: Behaviour = "ok"
    huge_bytes: int = 20 * 1024 * 1024
    sent_bytes: int = 0
    fetches: int = 0


def _app(service: JwksService) -> Starlette:
    async def huge() -> AsyncIterator[bytes]:
        yield b'{"keys": [], "pad": "'
        while (left := service.huge_bytes - service.sent_bytes) > 0:
            chunk = b"x" * min(65536, left)
            service.sent_bytes += len(chunk)
            yield chunk
        yield b'"}'

    async def jwks(request: Request) -> Response:
        service.fetches += 1
        if service.behaviour == "down":
            return JSONResponse({"error": "maintenance"}, status_code=500)
        if service.behaviour == "huge":
            return StreamingResponse(huge(), media_type="application/json")
        return JSONResponse({"keys": service.keys})

    return Starlette(routes=[Route("/jwks.json", jwks)])


@contextmanager
def run_jwks_service(keys: list[dict[str, Any]]) -> Iterator[JwksService]:
    port = free_port()
    service = JwksService(url=f"http://127.0.0.1:{port}/jwks.json", keys=keys)
    with serve_in_thread(_app(service), port, "JWKS service"):
        yield service
