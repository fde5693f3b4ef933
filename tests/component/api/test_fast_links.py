"""Link requests answered before routing (``app/api/fast_links.py``) give the routed
endpoint's answers, and everything the direct path does not take reaches the routed
stack with its body intact. In demo mode: the embedded simulator and store."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from starlette.types import Receive, Scope, Send

from app.api.fast_links import DirectLinks
from app.main import GatewayApp, create_app
from app.settings import SIMULATOR_API_KEY, Settings
from tests.support.asgi import app_client

# FastAPI reads any application/*+json body as JSON; the direct path takes only
# application/json, so this content type sends the same request down the routed stack.
ROUTED_TYPE = "application/merge-patch+json"
CORS_ORIGIN = "https://www.example.com"


class Spy:
    """Records whether the direct path answered each request (it still does the work)."""

    def __init__(self, direct: DirectLinks) -> None:
        self._direct = direct
        self.answered: list[bool] = []

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> Receive | None:
        routed = await self._direct.handle(scope, receive, send)
        if scope["method"] == "POST":
            self.answered.append(routed is None)
        return routed


@pytest.fixture
async def gateway() -> AsyncIterator[tuple[httpx.AsyncClient, Spy, str, str]]:
    settings = Settings(igm_mode="simulator", log_format="json", cors_allow_origins=[CORS_ORIGIN])
    app = create_app(settings)
    assert isinstance(app, GatewayApp)
    spy = Spy(app.direct_links)
    app.direct_links = spy  # type: ignore[assignment]
    async with app_client(app) as client:
        for _ in range(200):
            opened = await client.get("/v1/events/open")
            if opened.status_code == 200 and opened.json()["events"]:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("catalogue never warmed")
        event_id = opened.json()["events"][0]["eventId"]
        streams = (await client.get(f"/v1/events/{event_id}/streams")).json()["streams"]
        yield client, spy, event_id, streams[0]["name"]


KEY = {"X-API-Key": SIMULATOR_API_KEY, "X-User-Id": "same-user"}
REDIRECT = "https://operator.example/after"

# name, headers, event id ("" = the open event), body, expected status
CASES: list[tuple[str, dict[str, str], str, dict[str, Any], int]] = [
    ("minted (the second is deduplicated)", KEY, "", {"kind": "player"}, 200),
    ("no credentials", {}, "", {"kind": "player"}, 401),
    ("bad API key", {"X-API-Key": "wrong", "X-User-Id": "u"}, "", {"kind": "player"}, 401),
    ("malformed bearer", {"Authorization": "Bearer not.a.jwt"}, "", {"kind": "player"}, 401),
    ("unknown event", KEY, "NO-SUCH-EVENT", {"kind": "raw"}, 404),
    ("unknown stream", KEY, "", {"kind": "raw", "streamName": "NOPE"}, 404),
    ("redirect not http", KEY, "", {"kind": "player", "redirectUrl": "javascript:x"}, 422),
]


def comparable(response: httpx.Response) -> tuple[int, object, dict[str, str]]:
    headers = {
        name: value
        for name, value in response.headers.items()
        if name not in ("x-request-id", "date")
    }
    return response.status_code, response.json(), headers


@pytest.mark.parametrize(
    ("name", "headers", "event", "body", "status"), CASES, ids=[c[0] for c in CASES]
)
async def test_direct_and_routed_answers_are_the_same(
    gateway: tuple[httpx.AsyncClient, Spy, str, str],
    name: str,
    headers: dict[str, str],
    event: str,
    body: dict[str, Any],
    status: int,
) -> None:
    client, spy, open_event, stream = gateway
    path = f"/v1/events/{event or open_event}/links"
    payload = {"streamName": stream, "redirectUrl": REDIRECT, **body}
    direct = await client.post(path, json=payload, headers=headers)
    await asyncio.sleep(0.05)  # a minted answer is stored for dedupe as it goes out
    routed = await client.post(
        path,
        content=orjson.dumps(payload),
        headers={**headers, "Content-Type": ROUTED_TYPE},
    )
    assert spy.answered == [True, False]
    assert direct.status_code == status
    assert comparable(direct) == comparable(routed)
    assert direct.headers["x-request-id"] != routed.headers["x-request-id"]


VALID = orjson.dumps({"streamName": "HLS", "kind": "player", "redirectUrl": REDIRECT})


@pytest.mark.parametrize(
    ("content", "headers", "status", "code"),
    [
        (b'{"streamName": "HLS", "kind": "sideways"}', {}, 422, "invalid_request"),
        (b'{"streamName": "HLS", "extra": 1}', {}, 422, "invalid_request"),
        (b"not json", {}, 422, "invalid_request"),
        (b"x" * 20_000, {}, 413, "body_too_large"),
        (VALID, {"Content-Type": "text/plain"}, 422, "invalid_request"),
        (VALID, {"Origin": CORS_ORIGIN}, 200, None),  # CORS headers come from the stack
    ],
)
async def test_what_the_direct_path_leaves_reaches_the_routed_stack_intact(
    gateway: tuple[httpx.AsyncClient, Spy, str, str],
    content: bytes,
    headers: dict[str, str],
    status: int,
    code: str | None,
) -> None:
    client, spy, open_event, _ = gateway
    response = await client.post(
        f"/v1/events/{open_event}/links",
        content=content,
        headers={"Content-Type": "application/json", **KEY, **headers},
    )
    assert spy.answered == [False]
    assert response.status_code == status
    if code is not None:
        assert response.json()["code"] == code
    if code == "invalid_request":
        assert response.json()["errors"]  # the fields at fault: the body reached the router
    if "Origin" in headers:
        assert response.headers["access-control-allow-origin"] == CORS_ORIGIN
        assert response.json()["kind"] == "player"


async def test_a_valid_body_split_over_several_messages_is_taken(
    gateway: tuple[httpx.AsyncClient, Spy, str, str],
) -> None:
    client, spy, open_event, stream = gateway

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(payload), 7):
            yield payload[start : start + 7]

    payload = orjson.dumps({"streamName": stream, "kind": "player", "redirectUrl": REDIRECT})
    length = len(payload)
    response = await client.post(
        f"/v1/events/{open_event}/links",
        content=chunks(),
        headers={**KEY, "Content-Type": "application/json", "Content-Length": str(length)},
    )
    assert spy.answered == [True]
    assert response.status_code == 200
    assert response.json()["kind"] == "player"
