"""The request observer: one ``request`` line per request (the request id every line
of the request carries, the route template, status, latency, cache state, upstream
calls), the same JSON line structlog's chain renders for those fields; the request id
and security headers on every answer, and the 500 for an error that escapes the app."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import orjson
import pytest
import structlog
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from app.observability.context import RequestSummary, current_summary, reset_summary, set_summary
from app.observability.logging import configure_logging, log_level, set_log_level
from app.observability.metrics import Metrics
from app.observability.redaction import Redactor
from app.observability.requests import AccessLine, Finished, RequestLog, RequestObserver
from tests.support.polling import next_turn

SECURITY = [(b"x-content-type-options", b"nosniff")]


def add_security(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    return [*headers, *SECURITY]


def on_error(exc: Exception) -> ASGIApp:
    structlog.get_logger("test").error("unhandled_error", exc_info=exc)
    return PlainTextResponse("problem", status_code=500)


async def endpoint(scope: Scope, receive: Receive, send: Send) -> None:
    summary = current_summary()
    assert summary is not None
    if scope["path"] == "/broken":
        raise RuntimeError("broken")
    summary.route = "/things/{id}"
    summary.cache = "hit"
    summary.upstream_calls += 2
    structlog.get_logger("test").info("inside")
    await Response(b"ok", status_code=201)(scope, receive, send)


@pytest.fixture
def logged_json(capsys: pytest.CaptureFixture[str]) -> Iterator[pytest.CaptureFixture[str]]:
    saved, level = structlog.get_config(), log_level()
    configure_logging(json_lines=True, level="info", redactor=Redactor([]))
    try:
        yield capsys
    finally:
        structlog.configure(**saved)
        set_log_level(level)


def client(access_log: bool = True, json_lines: bool = True) -> httpx.AsyncClient:
    observer = RequestObserver(
        endpoint,
        metrics=Metrics(),
        trust_request_id=lambda scope: False,
        add_headers=add_security,
        on_error=on_error,
        access_log=AccessLine(json_lines=json_lines) if access_log else None,
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=observer), base_url="http://t")


async def test_one_request_event_per_request_with_the_request_id_of_every_line(
    logged_json: pytest.CaptureFixture[str],
) -> None:
    logged_json.readouterr()
    async with client() as http:
        answer = await http.get("/things/7", headers={"X-Request-ID": "untrusted"})
    await next_turn()
    lines = [orjson.loads(line) for line in logged_json.readouterr().out.splitlines()]
    request_id = answer.headers["x-request-id"]
    assert request_id != "untrusted"  # not from a trusted proxy
    assert answer.headers["x-content-type-options"] == "nosniff"
    inside, request = lines
    assert inside["event"] == "inside"
    assert inside["request_id"] == request_id
    assert str(request.pop("timestamp")).endswith("Z")
    assert isinstance(request.pop("ms"), float)
    assert request == {
        "event": "request",
        "level": "info",
        "request_id": request_id,
        "method": "GET",
        "route": "/things/{id}",
        "status": 201,
        "cache": "hit",
        "upstream_calls": 2,
    }


async def test_an_error_is_answered_and_logged_once_then_the_request_line(
    logged_json: pytest.CaptureFixture[str],
) -> None:
    logged_json.readouterr()
    async with client() as http:
        answer = await http.get("/broken")
    await next_turn()
    lines = [orjson.loads(line) for line in logged_json.readouterr().out.splitlines()]
    assert answer.status_code == 500
    assert answer.headers["x-content-type-options"] == "nosniff"
    error, request = lines
    assert error["event"] == "unhandled_error"
    assert "RuntimeError: broken" in error["exception"]
    assert (request["event"], request["status"], request["route"]) == ("request", 500, "unmatched")
    assert error["request_id"] == request["request_id"] == answer.headers["x-request-id"]


async def test_no_request_line_when_the_access_log_is_off(
    logged_json: pytest.CaptureFixture[str],
) -> None:
    logged_json.readouterr()
    async with client(access_log=False) as http:
        await http.get("/things/7")
    await next_turn()
    events = [orjson.loads(line)["event"] for line in logged_json.readouterr().out.splitlines()]
    assert events == ["inside"]


ROWS = [
    Finished("0123abcd", "GET", "/v1/events/open", 200, 0.000021, "hit", 0, 1e9),
    Finished("req-1.a_b", "POST", "/v1/events/{eventId}/links", 429, 0.0125, None, 2, 2e9),
    Finished("x", "HEAD", "unmatched", 404, 0.0, "stale", 0, 1.5e9),
    Finished("x", 'BR"EW\\', "unmatched", 405, 12.0, None, 0, 1.5e9),  # a method to escape
]


@pytest.mark.parametrize("row", ROWS)
def test_the_line_is_the_one_structlogs_chain_renders(
    row: Finished, logged_json: pytest.CaptureFixture[str]
) -> None:
    """Byte for byte, timestamps aside: the same keys in the same order."""
    logged_json.readouterr()
    token = set_summary(RequestSummary(row.request_id))
    try:
        AccessLine(json_lines=True).write([row])
        structlog.get_logger("t").info(
            "request",
            method=row.method,
            route=row.route,
            status=row.status,
            ms=round(row.seconds * 1000, 3),
            cache=row.cache,
            upstream_calls=row.upstream_calls,
        )
    finally:
        reset_summary(token)
    ours, theirs = logged_json.readouterr().out.splitlines()
    stamp = re.compile(r'"timestamp":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z"')
    assert stamp.search(ours)
    assert stamp.sub("", ours) == stamp.sub("", theirs)


def test_the_timestamp_is_when_the_request_finished(
    logged_json: pytest.CaptureFixture[str],
) -> None:
    logged_json.readouterr()
    AccessLine(json_lines=True).write([ROWS[0]._replace(at=1_796_000_000.25)])
    line = orjson.loads(logged_json.readouterr().out)
    assert line["timestamp"] == "2026-11-30T00:53:20.250000Z"


def requests_counted(metrics: Metrics, route: str) -> float | None:
    return metrics.registry.get_sample_value(
        "gateway_http_requests_total", {"route": route, "method": "GET", "status": "200"}
    )


async def test_a_turns_requests_are_logged_and_counted_at_its_end_before_any_later_line(
    logged_json: pytest.CaptureFixture[str],
) -> None:
    metrics = Metrics()
    requests = RequestLog(metrics, AccessLine(json_lines=True))
    logged_json.readouterr()
    requests.add(ROWS[0])
    requests.add(ROWS[1])
    assert logged_json.readouterr().out == ""  # held to the turn's end
    assert requests_counted(metrics, "/v1/events/open") is None
    structlog.get_logger("t").info("later")  # another line first writes the held ones
    events = [orjson.loads(line)["event"] for line in logged_json.readouterr().out.splitlines()]
    assert events == ["request", "request", "later"]
    assert requests_counted(metrics, "/v1/events/open") == 1
    requests.add(ROWS[0])
    await next_turn()
    [line] = [orjson.loads(line) for line in logged_json.readouterr().out.splitlines()]
    assert line["route"] == "/v1/events/open"
    assert requests_counted(metrics, "/v1/events/open") == 2


async def test_a_scrape_counts_the_requests_held(logged_json: pytest.CaptureFixture[str]) -> None:
    metrics = Metrics()
    requests = RequestLog(metrics, None)
    requests.add(ROWS[0])
    assert 'route="/v1/events/open"' in metrics.exposition()[0].decode()


def test_outside_a_running_loop_a_request_is_logged_at_once(
    logged_json: pytest.CaptureFixture[str],
) -> None:
    logged_json.readouterr()
    RequestLog(Metrics(), AccessLine(json_lines=True)).add(ROWS[0])
    [line] = [orjson.loads(line) for line in logged_json.readouterr().out.splitlines()]
    assert line["route"] == "/v1/events/open"


async def test_console_lines_go_through_structlog(capsys: pytest.CaptureFixture[str]) -> None:
    saved, level = structlog.get_config(), log_level()
    configure_logging(json_lines=False, level="info", redactor=Redactor([]))
    try:
        capsys.readouterr()
        async with client(json_lines=False) as http:
            await http.get("/things/7")
        await next_turn()
        out = capsys.readouterr().out
    finally:
        structlog.configure(**saved)
        set_log_level(level)
    [line] = [line for line in out.splitlines() if "request" in line and "inside" not in line]
    assert "route=/things/{id}" in line
    assert "status=201" in line
