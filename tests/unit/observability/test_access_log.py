"""The access line: the JSON object structlog would write for the same fields,
buffered, flushed in time."""

from __future__ import annotations

import asyncio
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
import structlog
from structlog.typing import Processor

from app.observability.access_log import FLUSH_EVERY_S, AccessLog
from app.observability.logging import Redactor, line_processors

TIMESTAMP = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z"

ROWS = [
    ("0123abcd", "GET", "/v1/events/open", 200, 0.021, "hit", 0),
    ("req-1.a_b", "POST", "/v1/events/{eventId}/links", 429, 12.5, None, 2),
    ("x", "HEAD", "unmatched", 404, 0.0, "stale", 0),
    ("x", 'BR"EW\\', "unmatched", 405, 1e-05, None, 0),  # a method needing escapes
]


@pytest.mark.parametrize("row", ROWS)
async def test_line_is_the_json_object(row: tuple[object, ...]) -> None:
    request_id, method, route, status, ms, cache, calls = row
    stream = io.BytesIO()
    log = AccessLog(json_lines=True, enabled=True, stream=stream)
    log.request(*row)  # type: ignore[arg-type]
    line = stream.getvalue()
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1
    parsed = orjson.loads(line)
    assert parsed.pop("timestamp").endswith("Z")
    assert parsed == {
        "event": "request",
        "level": "info",
        "request_id": request_id,
        "method": method,
        "route": route,
        "status": status,
        "ms": ms,
        "cache": cache,
        "upstream_calls": calls,
    }


@pytest.mark.parametrize("row", ROWS)
async def test_line_is_what_structlog_renders(row: tuple[object, ...]) -> None:
    """The hand-written line and the line the app's structlog chain renders for the
    same fields are the same JSON object (timestamps aside: same format)."""
    request_id, method, route, status, ms, cache, calls = row
    stream = io.BytesIO()
    AccessLog(json_lines=True, enabled=True, stream=stream).request(*row)  # type: ignore[arg-type]
    ours = orjson.loads(stream.getvalue())
    chain: list[Processor] = [
        *line_processors(Redactor(["a-secret-value"])),
        structlog.processors.JSONRenderer(),
    ]
    # Its own wrapper: the process-wide one may filter info lines out (another test
    # configured a higher level).
    logger = structlog.wrap_logger(
        structlog.ReturnLogger(), processors=chain, wrapper_class=structlog.BoundLogger
    )
    rendered = logger.info(
        "request",
        request_id=request_id,
        method=method,
        route=route,
        status=status,
        ms=ms,
        cache=cache,
        upstream_calls=calls,
    )
    theirs = orjson.loads(rendered)
    for line in (ours, theirs):
        assert re.fullmatch(TIMESTAMP, line.pop("timestamp"))
    assert ours == theirs


async def test_disabled_writes_nothing() -> None:
    stream = io.BytesIO()
    AccessLog(json_lines=True, enabled=False, stream=stream).request(*ROWS[0])
    assert stream.getvalue() == b""


class CountingStream(io.BytesIO):
    flushes = 0

    def flush(self) -> None:
        self.flushes += 1
        super().flush()


async def test_lines_are_flushed_once_per_interval() -> None:
    stream = CountingStream()
    log = AccessLog(json_lines=True, enabled=True, stream=stream)
    for _ in range(100):
        log.request(*ROWS[0])
    assert stream.flushes == 0
    await asyncio.sleep(FLUSH_EVERY_S * 3)
    assert stream.flushes == 1


SCRIPT = """
import asyncio, logging, os, sys
sys.path.insert(0, {repo!r})
from app.observability.access_log import AccessLog
from app.observability.logging import Redactor, configure_logging
import structlog

async def main():
    configure_logging(json_lines=True, level="info", redactor=Redactor([]))
    log = AccessLog(json_lines=True, enabled=True)
    for i in range(3):
        log.request(f"id{{i}}", "GET", "/v1/sports", 200, 0.1, "hit", 0)
    structlog.get_logger("t").info("after_three")   # flushes the shared buffer, in order
    log.request("id3", "GET", "/v1/sports", 200, 0.1, "hit", 0)
    logging.getLogger("uvicorn").setLevel(logging.INFO)  # as uvicorn sets it
    logging.getLogger("uvicorn.error").info("from_uvicorn")  # the same buffer, in order
    log.request("id4", "GET", "/v1/sports", 200, 0.1, "hit", 0)
    os.write(2, b"before-exit\\n")

asyncio.run(main())
"""


def test_unbuffered_stdout_is_buffered_in_order_and_flushed_at_exit(tmp_path: Path) -> None:
    """With PYTHONUNBUFFERED=1 (as in the image) lines still share one buffer, come out
    in order, and the last ones are written when the process exits."""
    out = tmp_path / "out"
    repo = str(Path(__file__).resolve().parents[3])
    with out.open("wb") as stdout:
        subprocess.run(
            [sys.executable, "-c", SCRIPT.format(repo=repo)],
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdout=stdout,
            check=True,
            timeout=30,
        )
    events = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert [e.get("request_id", e["event"]) for e in events] == [
        "id0",
        "id1",
        "id2",
        "after_three",
        "id3",
        "from_uvicorn",
        "id4",
    ]
