"""An ``OnePlatformClient`` over ``httpx.MockTransport``: a scripted upstream that records
every request it was sent."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx
import orjson
from pydantic import SecretStr

from app.upstream.client import OnePlatformClient, UpstreamCall, build_http_client

UID = "uid-0c1f2e3d-unit-secret"
SERVER_IP = "203.0.113.9"
API = "https://api.example.test/api"
PLAYER_API = "https://player.example.test/api"

Handler = Callable[[httpx.Request], httpx.Response]


def json_response(body: object, status: int = 200, **headers: str) -> httpx.Response:
    return httpx.Response(status, content=orjson.dumps(body), headers=headers)


@dataclass
class ScriptedUpstream:
    """Answers every request with ``handler`` and keeps the requests and observed calls."""

    handler: Handler
    requests: list[httpx.Request] = field(default_factory=list)
    calls: list[UpstreamCall] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.handler(request)


@asynccontextmanager
async def scripted_client(
    handler: Handler, *, uid: str = UID
) -> AsyncIterator[tuple[OnePlatformClient, ScriptedUpstream]]:
    upstream = ScriptedUpstream(handler)
    http = build_http_client(
        connect_timeout_s=1.0,
        read_timeout_s=1.0,
        max_connections=4,
        transport=httpx.MockTransport(upstream),
    )
    async with http:
        client = OnePlatformClient(
            http,
            api_url=API + "/",
            player_api_url=PLAYER_API,
            customer_uid=SecretStr(uid),
            server_ip=SERVER_IP,
            observer=upstream.calls.append,
        )
        yield client, upstream
