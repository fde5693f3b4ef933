"""Warm reads answered before routing and the routed read endpoints give the same
answer: status, every header and body, with and without CORS origins and
``If-None-Match``, for GET and HEAD. And an unexpected error, on the routed stack or
the warm read path, is logged once with its traceback and answered with the same
problem+json 500, with the same request id, security and CORS headers as any answer."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextvars import ContextVar
from datetime import UTC, datetime

import httpx
import orjson
import pytest
from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from app.api import warm_reads
from app.main import create_app
from app.settings import Settings
from tests.support.asgi import app_clients
from tests.support.polling import eventually, next_turn

ALLOWED = "https://www.example.com"
FOREIGN = "https://elsewhere.example.org"
REQUEST_ID = re.compile(r"^[0-9a-f]{32}$")


ROUTED_ONLY: ContextVar[bool] = ContextVar("routed_only", default=False)


class Paths:
    """Counts the reads the warm path answers; under ``ROUTED_ONLY`` it answers none,
    so the same running app serves the request through its routes."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.warm_answers = 0
        lookup = warm_reads.lookup

        def counted(*args: object) -> object:
            if ROUTED_ONLY.get():
                return None
            found = lookup(*args)  # type: ignore[arg-type]
            self.warm_answers += found is not None
            return found

        monkeypatch.setattr(warm_reads, "lookup", counted)


def routed_only(app: FastAPI) -> object:
    async def entry(scope: Scope, receive: Receive, send: Send) -> None:
        token = ROUTED_ONLY.set(True)
        try:
            await app(scope, receive, send)
        finally:
            ROUTED_ONLY.reset(token)

    return entry


@pytest.fixture
async def clients(
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient, Paths, str]]:
    settings = Settings(igm_mode="simulator", log_format="json", cors_allow_origins=[ALLOWED])
    app = create_app(settings)
    paths = Paths(monkeypatch)
    async with app_clients(app, app, routed_only(app)) as (fast, routed):  # type: ignore[arg-type]

        async def has_open_event() -> bool:
            opened = await routed.get("/v1/events/open")
            return opened.status_code == 200 and bool(opened.json()["events"])

        await eventually(has_open_event, "the catalogue warm, with an open event")
        opened = await routed.get("/v1/events/open")
        event_id = opened.json()["events"][0]["eventId"]
        today = datetime.now(UTC).date().isoformat()
        for warm in ("/v1/sports", f"/v1/events?date={today}", f"/v1/events/{event_id}/streams"):
            assert (await routed.get(warm)).status_code == 200, warm
        yield fast, routed, paths, event_id


def comparable(response: httpx.Response) -> tuple[int, list[tuple[str, str]], bytes]:
    headers = []
    for name, value in response.headers.multi_items():
        if name == "x-request-id":
            assert REQUEST_ID.match(value), value
            value = "<id>"
        elif name == "age":
            assert value.isdigit()
            value = "<age>"
        headers.append((name, value))
    return response.status_code, sorted(headers), response.content


PATHS = (
    "/v1/sports",
    "/v1/events/open",
    "/v1/events?date={today}",
    "/v1/events/{event_id}",
    "/v1/events/{event_id}/streams",
)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize(
    "origin", [None, ALLOWED, FOREIGN], ids=["no-origin", "allowed", "foreign"]
)
@pytest.mark.parametrize("etag", [None, "match", "other"])
async def test_fast_and_routed_reads_answer_the_same(
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient, Paths, str],
    path: str,
    method: str,
    origin: str | None,
    etag: str | None,
) -> None:
    fast, routed, paths, event_id = clients
    url = path.format(today=datetime.now(UTC).date().isoformat(), event_id=event_id)
    headers = {"Origin": origin} if origin else {}
    if etag == "match":
        headers["If-None-Match"] = (await routed.get(url)).headers["etag"]
    elif etag == "other":
        headers["If-None-Match"] = 'W/"not-this-one"'
    before = paths.warm_answers
    fast_answer = await fast.request(method, url, headers=headers)
    assert paths.warm_answers == before + 1, "the warm read was not answered before routing"
    routed_answer = await routed.request(method, url, headers=headers)
    assert paths.warm_answers == before + 1

    assert comparable(fast_answer) == comparable(routed_answer)
    assert fast_answer.status_code == (304 if etag == "match" else 200)
    assert fast_answer.headers["vary"] == "Origin"
    if origin == ALLOWED:
        assert fast_answer.headers["access-control-allow-origin"] == ALLOWED
        exposed = fast_answer.headers["access-control-expose-headers"]
        assert {"ETag", "Age", "X-Request-ID"} <= {h.strip() for h in exposed.split(",")}
    else:
        assert "access-control-allow-origin" not in fast_answer.headers
    if method == "HEAD" or etag == "match":
        assert fast_answer.content == b""


SECRET_IN_ERROR = "cust-9a8b7c6d-secret"


def broken_lookup(*args: object) -> object:
    raise RuntimeError(f"the warm path failed near {SECRET_IN_ERROR}")


@pytest.mark.parametrize("path", ["routed", "warm"])
async def test_an_unexpected_error_is_logged_once_and_a_problem_with_the_usual_headers(
    path: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(
        igm_mode="simulator",
        log_format="json",
        cors_allow_origins=[ALLOWED],
        igm_customer_uid=SECRET_IN_ERROR,
    )
    app = create_app(settings)

    async def broken() -> None:
        raise RuntimeError(f"something no handler expects near {SECRET_IN_ERROR}")

    app.add_api_route("/v1/broken", broken)
    async with app_clients(app) as (client,):
        ok = await client.get("/healthz", headers={"Origin": ALLOWED})
        if path == "warm":

            async def held() -> bool:
                return (await client.get("/v1/events/open")).status_code == 200

            await eventually(held, "the open list held")
            monkeypatch.setattr(warm_reads, "lookup", broken_lookup)
        capsys.readouterr()
        answer = await client.get(
            "/v1/broken" if path == "routed" else "/v1/events/open",
            headers={"Origin": ALLOWED},
        )
        await next_turn()  # the request line is written at the end of the loop's turn
        written = capsys.readouterr().out
    lines = [orjson.loads(line) for line in written.splitlines()]
    mine = [line for line in lines if line.get("request_id") == answer.headers["x-request-id"]]
    errors = [line for line in lines if line["level"] in ("error", "critical")]
    assert len(errors) == 1, lines
    assert errors[0] in mine
    assert errors[0]["event"] == "unhandled_error"
    traceback = errors[0]["exception"]
    assert traceback.startswith("Traceback (most recent call last)")
    assert "RuntimeError:" in traceback
    assert "[redacted]" in traceback
    assert [(line["event"], line["status"]) for line in mine if line["event"] == "request"] == [
        ("request", 500)
    ]
    assert SECRET_IN_ERROR not in written
    assert answer.status_code == 500
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == "internal_error"
    assert "something no handler expects" not in answer.text
    assert REQUEST_ID.match(answer.headers["x-request-id"])
    for name in ("content-security-policy", "x-content-type-options"):
        assert answer.headers[name] == ok.headers[name]
    assert answer.headers["access-control-allow-origin"] == ALLOWED
    assert (
        answer.headers["access-control-expose-headers"]
        == ok.headers["access-control-expose-headers"]
    )
