"""Warm reads answered before routing and the routed read endpoints give the same
answer: status, every header and body, with and without CORS origins and
``If-None-Match``, for GET and HEAD. And an unexpected error on the routed stack is a
problem+json 500 with the same request id, security and CORS headers as any answer."""

from __future__ import annotations

import functools
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI
from starlette.types import Scope, Send

from app.main import GatewayApp, create_app
from app.settings import Settings
from tests.support.asgi import app_clients
from tests.support.polling import eventually

ALLOWED = "https://www.example.com"
FOREIGN = "https://elsewhere.example.org"
REQUEST_ID = re.compile(r"^[0-9a-f]{32}$")


class Paths:
    def __init__(self, app: GatewayApp) -> None:
        self.fast_answers = 0
        respond = app.cached_reads.respond

        async def counted(scope: Scope, send: Send) -> bool:
            answered = await respond(scope, send)
            self.fast_answers += answered
            return answered

        app.cached_reads.respond = counted  # type: ignore[method-assign]


@pytest.fixture
async def clients() -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient, Paths, str]]:
    settings = Settings(igm_mode="simulator", log_format="json", cors_allow_origins=[ALLOWED])
    app = create_app(settings)
    assert isinstance(app, GatewayApp)
    paths = Paths(app)
    routed_only = functools.partial(FastAPI.__call__, app)  # skips the fast read path
    async with app_clients(app, app, routed_only) as (fast, routed):

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
    before = paths.fast_answers
    fast_answer = await fast.request(method, url, headers=headers)
    assert paths.fast_answers == before + 1, "the warm read was not answered before routing"
    routed_answer = await routed.request(method, url, headers=headers)
    assert paths.fast_answers == before + 1

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


async def test_an_unexpected_error_is_a_problem_with_the_usual_headers() -> None:
    settings = Settings(igm_mode="simulator", log_format="json", cors_allow_origins=[ALLOWED])
    app = create_app(settings)

    async def broken() -> None:
        raise RuntimeError("something no handler expects")

    app.add_api_route("/v1/broken", broken)
    async with app_clients(app) as (client,):
        answer = await client.get("/v1/broken", headers={"Origin": ALLOWED})
        ok = await client.get("/healthz", headers={"Origin": ALLOWED})
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
