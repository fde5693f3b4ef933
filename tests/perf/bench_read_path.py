"""CPU time of one warm read inside the process (no server, no sockets): through the
warm read middleware, through FastAPI's routing (the middleware told to answer nothing,
as tests/component/api/test_read_parity.py does), and a plain FastAPI app whose one
route returns the same bytes; then the access line, encoded in one step (alone, and
32 in one write, as a busy turn of the event loop writes them) against the same
event through structlog's chain.

    .venv/bin/python tests/perf/bench_read_path.py [--requests 10000] [--rounds 3]

Prints CPU microseconds per request (``time.process_time``, so other work on the
machine slows it less than it slows a rate), the best of the rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import sys
import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import structlog  # noqa: E402
from fastapi import FastAPI  # noqa: E402
from starlette.responses import Response  # noqa: E402

from app.api import warm_reads  # noqa: E402
from app.main import create_app  # noqa: E402
from app.observability.context import RequestSummary, reset_summary, set_summary  # noqa: E402
from app.observability.requests import AccessLine, Finished  # noqa: E402
from app.settings import Settings  # noqa: E402

PATH = "/v1/events/open"
SCOPE: dict[str, Any] = {
    "type": "http",
    "asgi": {"version": "3.0", "spec_version": "2.3"},
    "http_version": "1.1",
    "method": "GET",
    "scheme": "http",
    "path": PATH,
    "raw_path": PATH.encode(),
    "query_string": b"",
    "root_path": "",
    "headers": [(b"host", b"gateway"), (b"user-agent", b"bench"), (b"accept", b"*/*")],
    "client": ("127.0.0.1", 50000),
    "server": ("127.0.0.1", 8000),
}


async def receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


def cpu_us(call: Callable[[], Any], requests: int, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        for _ in range(requests):
            call()
        best = min(best, time.process_time() - started)
    return best / requests * 1e6


async def acpu_us(call: Callable[[], Awaitable[Any]], requests: int, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        for _ in range(requests):
            await call()
        best = min(best, time.process_time() - started)
    return best / requests * 1e6


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    app = create_app(Settings(igm_mode="simulator", log_format="json", log_level="info"))
    statuses: list[int] = []
    bodies: list[bytes] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])
        elif message["type"] == "http.response.body":
            bodies.append(message["body"])

    figures: dict[str, float] = {}
    async with app.router.lifespan_context(app) as state:

        async def read(target: Any = app) -> None:
            await target({**SCOPE, "state": dict(state or {})}, receive, send)

        for _ in range(400):  # warm: the open list is held
            statuses.clear()
            await read()
            if statuses == [200]:
                break
            await asyncio.sleep(0.05)
        body = bodies[-1]
        figures["warm read (middleware)"] = await acpu_us(read, args.requests, args.rounds)
        lookup = warm_reads.lookup
        warm_reads.lookup = lambda *_: None
        try:
            statuses.clear()
            await read()
            assert statuses == [200], statuses
            figures["routed read"] = await acpu_us(read, args.requests, args.rounds)
        finally:
            warm_reads.lookup = lookup

    plain = FastAPI()

    @plain.get(PATH)
    async def open_events() -> Response:
        return Response(body, media_type="application/json")

    async def plain_read() -> None:
        await plain(dict(SCOPE), receive, send)

    figures["plain FastAPI route, same bytes"] = await acpu_us(
        plain_read, args.requests, args.rounds
    )

    line = AccessLine(json_lines=True)
    done = Finished(
        "0123456789abcdef0123456789abcdef", "GET", "/v1/events/open", 200, 0.000123, "hit", 0, 0.0
    )
    figures["access line, one step"] = cpu_us(
        lambda: line.write([done._replace(at=time.time())]), args.requests, 3
    )
    figures["access lines, 32 in one write"] = (
        cpu_us(lambda: line.write([done._replace(at=time.time())] * 32), args.requests // 32, 3)
        / 32
    )
    chain = structlog.get_logger("gateway.access")
    token = set_summary(RequestSummary(done.request_id))
    try:
        figures["access line, structlog's chain"] = cpu_us(
            lambda: chain.info(
                "request",
                method="GET",
                route="/v1/events/open",
                status=200,
                ms=0.123,
                cache="hit",
                upstream_calls=0,
            ),
            args.requests,
            3,
        )
    finally:
        reset_summary(token)
    for name, value in figures.items():
        print(f"{name:34s} {value:6.1f} us CPU", file=sys.stderr)
    routed, plain_us = figures["routed read"], figures["plain FastAPI route, same bytes"]
    print(f"plain FastAPI / routed: {plain_us / routed:.2f}", file=sys.stderr)


if __name__ == "__main__":
    with open(os.devnull, "wb") as devnull:  # the log lines: written, not kept
        sys.stdout = io.TextIOWrapper(devnull)
        asyncio.run(main())
