"""``UpstreamHttp`` over a real socket: the bytes it writes directly to the built-in
transport are the bytes httpx would have written for the same call, and the answers it
reads back (status, headers, decoded body) are what httpx would have made of them."""

from __future__ import annotations

import asyncio
import gzip
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest

from app.upstream.http import UpstreamHttp, UpstreamResponse
from app.upstream.transport import Http11Transport

pytestmark = pytest.mark.timeout(30)


class Capture:
    """A loopback server that records each request's bytes and answers with ``reply``."""

    def __init__(self, reply: bytes) -> None:
        self.reply = reply
        self.requests: list[bytes] = []
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.requests.append(head)
                writer.write(self.reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@asynccontextmanager
async def capture(reply: bytes) -> AsyncIterator[Capture]:
    server_state = Capture(reply)
    server = await asyncio.start_server(server_state.handle, "127.0.0.1", 0)
    server_state.port = server.sockets[0].getsockname()[1]
    try:
        yield server_state
    finally:
        server.close()


class ViaHttpx(httpx.AsyncBaseTransport):
    """The same transport behind a type ``UpstreamHttp`` does not recognise: every
    request then goes through an ``httpx.Request`` and ``handle_async_request``."""

    def __init__(self, inner: Http11Transport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def both(extra: dict[str, str]) -> tuple[UpstreamHttp, UpstreamHttp]:
    def make(transport: httpx.AsyncBaseTransport) -> UpstreamHttp:
        base = UpstreamHttp(transport, connect_timeout_s=2.0, read_timeout_s=2.0)
        return base.with_headers(extra)

    return make(Http11Transport(max_connections=2)), make(
        ViaHttpx(Http11Transport(max_connections=2))
    )


OK_REPLY = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"

CALLS = [
    ("POST", "/api/stream/link", {"customerUid": "c u/i+d", "userIp": "203.0.113.9"}),
    ("POST", "/player/api/liveStream", {"encodedTransactionRef": "a/b=c&d?e=="}),
    ("GET", "/api/event/all/uid%2Fwith%20slash/22-11-2026", None),
    ("GET", "/api/stream/uid/EV%201", None),
    ("GET", "/", None),
    ("GET", "/api/x?already=1", {"more": "2"}),
    ("PUT", "/api/put", None),
    ("DELETE", "/api/delete", None),
]


@pytest.mark.parametrize(("method", "path", "params"), CALLS)
async def test_direct_requests_are_byte_for_byte_what_httpx_sends(
    method: str, path: str, params: dict[str, str] | None
) -> None:
    direct, via_httpx = both({"X-Forwarded-For": "192.0.2.10", "Content-Type": "application/json"})
    async with capture(OK_REPLY) as server, direct, via_httpx:
        url = f"http://127.0.0.1:{server.port}{path}"
        first = await direct.request(method, url, params=params)
        second = await via_httpx.request(method, url, params=params)
    assert first == second == UpstreamResponse(200, b"{}", {"content-length": "2"})
    assert len(server.requests) == 2
    assert server.requests[0] == server.requests[1]
    assert server.requests[0].startswith(f"{method} /".encode())
    assert b"\r\nX-Forwarded-For: 192.0.2.10\r\n" in server.requests[0]


async def test_the_host_header_omits_a_default_port_and_keeps_another() -> None:
    direct, _ = both({})
    async with capture(OK_REPLY) as server, direct:
        await direct.request("GET", f"http://127.0.0.1:{server.port}/a")
    assert f"\r\nHost: 127.0.0.1:{server.port}\r\n".encode() in server.requests[0]


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", lambda data: zlib.compress(data)[2:-4]),  # raw deflate, as some send
        ("identity", lambda data: data),
        ("br", lambda data: data),  # not one we ask for: left as is, as httpx does
    ],
)
async def test_answers_are_decoded_as_httpx_decodes_them(encoding: str, encode: object) -> None:
    assert callable(encode)
    body = encode(b'{"operationCode": 200, "message": "' + b"x" * 2000 + b'"}')
    reply = (
        b"HTTP/1.1 429 Too Many Requests\r\nContent-Encoding: %s\r\nRetry-After: 7\r\n"
        b"Set-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: %d\r\n\r\n%s"
        % (encoding.encode(), len(body), body)
    )
    direct, via_httpx = both({})
    async with capture(reply) as server, direct, via_httpx:
        url = f"http://127.0.0.1:{server.port}/api/x"
        first = await direct.request("GET", url)
        second = await via_httpx.request("GET", url)
    assert first == second
    assert first.status_code == 429
    assert first.content.startswith(b'{"operationCode": 200')
    assert first.headers["retry-after"] == "7"
    assert first.headers["set-cookie"] == "a=1, b=2"


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
async def test_a_body_that_does_not_decode_is_a_decoding_error(encoding: str) -> None:
    reply = b"HTTP/1.1 200 OK\r\nContent-Encoding: %s\r\nContent-Length: 9\r\n\r\nnot-zlib!" % (
        encoding.encode()
    )
    direct, via_httpx = both({})
    async with capture(reply) as server, direct, via_httpx:
        url = f"http://127.0.0.1:{server.port}/api/x"
        for http in (direct, via_httpx):
            with pytest.raises(httpx.DecodingError):
                await http.request("GET", url)


async def test_a_body_that_inflates_past_the_limit_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("app.upstream.http._MAX_DECODED_BYTES", 64 * 1024)
    body = gzip.compress(b"0" * (1024 * 1024))  # 1 MiB of zeros in about 1 KiB
    reply = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s" % (
        len(body),
        body,
    )
    direct, _ = both({})
    async with capture(reply) as server, direct:
        with pytest.raises(httpx.DecodingError, match="too large"):
            await direct.request("GET", f"http://127.0.0.1:{server.port}/api/x")


async def test_a_header_that_would_inject_is_refused_when_the_client_is_built() -> None:
    base = UpstreamHttp(Http11Transport(max_connections=1), connect_timeout_s=1, read_timeout_s=1)
    with pytest.raises(ValueError, match="invalid upstream header"):
        base.with_headers({"X-Forwarded-For": "192.0.2.10\r\nX-Evil: 1"})
