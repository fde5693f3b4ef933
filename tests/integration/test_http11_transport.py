"""``Http11Transport`` over real sockets: the simulator as a subprocess, small asyncio
servers for the edge cases (keep-alive, limits, framing, broken peers, cancellation)
and a TLS server with a self-signed certificate."""

from __future__ import annotations

import asyncio
import gzip
import ipaddress
import socket
import ssl
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from http import HTTPStatus
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pydantic import SecretStr

from app.upstream.client import OnePlatformClient, build_http_client
from app.upstream.errors import (
    UpstreamBadResponse,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamTimeout,
)
from app.upstream.transport import Http11Transport
from tests.support.redis_server import free_port
from tests.support.simulator import FaultKind, SimulatorHandle, run_simulator

pytestmark = pytest.mark.timeout(30)

# --- a small HTTP/1.1 server ------------------------------------------------------------


@dataclass
class Request:
    """One request as the server read it, with the connection it came on."""

    conn: int
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    def header(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]

    def respond(self, status: int = 200, body: bytes = b"", *headers: str) -> None:
        self.writer.write(http_response(status, body, *headers))


RequestHandler = Callable[[Request], Awaitable[None]]
ConnectionHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def http_response(status: int, body: bytes = b"", *headers: str) -> bytes:
    """A response head and body; Content-Length added unless framing is in ``headers``."""
    framed = any(h.lower().startswith(("content-length:", "transfer-encoding:")) for h in headers)
    if not framed and status not in (204, 304):
        headers = (*headers, f"Content-Length: {len(body)}")
    lines = "".join(f"{h}\r\n" for h in headers)
    return f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n{lines}\r\n".encode() + body


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


async def read_request(
    conn: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> Request | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    request_line, *lines = head.decode("latin-1").split("\r\n")[:-2]
    method, target, _ = request_line.split(" ")
    headers = [(name, value.strip()) for name, value in (line.split(":", 1) for line in lines)]
    length = int(next((v for k, v in headers if k.lower() == "content-length"), "0"))
    body = await reader.readexactly(length)
    return Request(conn, method, target, headers, body, reader, writer)


async def ok(request: Request) -> None:
    request.respond(200, b"ok", f"X-Conn: {request.conn}")


class Server:
    """A loopback server counting its connections: ``accepted`` in all, ``open`` now and
    ``peak`` at most at once. It answers with ``handler``, or hands each connection to
    ``raw``; what either raises (other than a broken connection) lands in ``errors``."""

    def __init__(self, handler: RequestHandler, raw: ConnectionHandler | None) -> None:
        self.handler = handler
        self.raw = raw
        self.accepted = 0
        self.open = 0
        self.peak = 0
        self.requests: list[Request] = []
        self.errors: list[BaseException] = []
        self.url = ""
        self._connections: set[asyncio.Task[None]] = set()
        self._work: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None

    async def start(self, tls: ssl.SSLContext | None) -> None:
        self._server = await asyncio.start_server(
            self._accept, "127.0.0.1", 0, ssl=tls, ssl_shutdown_timeout=2 if tls else None
        )
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for work in self._work:
            work.cancel()
        if self._connections:
            await asyncio.wait(self._connections)
        await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = asyncio.current_task()
        assert connection is not None
        self._connections.add(connection)
        self.accepted += 1
        self.open += 1
        self.peak = max(self.peak, self.open)
        work = asyncio.create_task(self._handle(self.accepted, reader, writer))
        self._work.add(work)
        try:
            await asyncio.wait({work})
        finally:
            self._work.discard(work)
            self.open -= 1
            writer.close()
            with suppress(OSError):
                await writer.wait_closed()
            self._connections.discard(connection)

    async def _handle(
        self, conn: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            if self.raw is not None:
                await self.raw(reader, writer)
                return
            while not writer.is_closing():
                request = await read_request(conn, reader, writer)
                if request is None:
                    return
                self.requests.append(request)
                await self.handler(request)
                if not writer.is_closing():
                    await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        except Exception as exc:
            self.errors.append(exc)


@asynccontextmanager
async def serve(
    handler: RequestHandler = ok,
    *,
    raw: ConnectionHandler | None = None,
    tls: ssl.SSLContext | None = None,
) -> AsyncIterator[Server]:
    server = Server(handler, raw)
    await server.start(tls)
    try:
        yield server
    finally:
        await server.stop()
    assert server.errors == []


def make_client(transport: Http11Transport, *, read_s: float = 5.0) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=transport, timeout=httpx.Timeout(read_s, connect=2.0, pool=5.0)
    )


async def until(condition: Callable[[], bool], within_s: float = 2.0) -> None:
    for _ in range(int(within_s / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    assert condition()


def reset(writer: asyncio.StreamWriter) -> None:
    """Close with an RST rather than a FIN."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


# --- the simulator through OnePlatformClient --------------------------------------------

EVENT_ID = "TR-OPEN-1"
SCENARIO_DAY = date(2030, 6, 1)
SCENARIO_EVENTS: list[dict[str, object]] = [
    {
        "eventId": EVENT_ID,
        "eventStatusCode": "O",
        "title": "NEC v FC Twente",
        "sportCode": "FT",
        "startTime": "2030-06-01T18:00:00Z",
        "estimatedEndTime": "2030-06-01T20:00:00Z",
        "geoAllow": "UK, IE",
        "geoBlock": "",
    }
]
SCENARIO_STREAMS: dict[str, list[dict[str, object]]] = {
    EVENT_ID: [
        {"uniqueStreamName": "HLS", "streamType": "HLS"},
        {"uniqueStreamName": "ULL", "streamType": "ULL"},
    ]
}


@pytest.fixture(scope="module")
def running_sim() -> Iterator[SimulatorHandle]:
    with run_simulator({"SIM_EVENTS_MIN_INTERVAL_S": "0"}) as handle:
        yield handle


@pytest.fixture
def sim(running_sim: SimulatorHandle) -> SimulatorHandle:
    running_sim.reset()
    running_sim.load_scenario(SCENARIO_EVENTS, SCENARIO_STREAMS)
    return running_sim


@asynccontextmanager
async def upstream(
    sim: SimulatorHandle,
    transport: Http11Transport,
    *,
    api_url: str | None = None,
    read_timeout_s: float = 5.0,
) -> AsyncIterator[OnePlatformClient]:
    """The client as the lifespan builds it, on ``transport``, pointed at the simulator."""
    async with build_http_client(
        connect_timeout_s=2.0,
        read_timeout_s=read_timeout_s,
        max_connections=4,
        transport=transport,
    ) as http:
        yield OnePlatformClient(
            http,
            api_url=api_url or sim.api_url,
            player_api_url=api_url or sim.api_url,
            customer_uid=SecretStr(sim.customer_uid),
            server_ip=sim.server_ip,
        )


def relay_to(port: int) -> ConnectionHandler:
    """A TCP relay to ``port``: the relay's server counts the client's connections."""

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))
        finally:
            upstream_writer.close()
            with suppress(OSError):
                await upstream_writer.wait_closed()

    return relay


async def test_every_call_through_the_transport(sim: SimulatorHandle) -> None:
    transport = Http11Transport(max_connections=4)
    async with upstream(sim, transport) as client:
        events = await client.events_by_date(SCENARIO_DAY)
        open_events = await client.open_events()
        streams = await client.streams(EVENT_ID)
        sports = await client.sports()
        ref = await client.stream_link(
            user_id="viewer-1",
            user_ip="127.0.0.1",
            event_id=EVENT_ID,
            stream_name="HLS",
            redirect_url="https://operator.example/over",
            raw=True,
        )
        live = await client.live_stream(ref.stream_link)

        assert [e.event_id for e in events.items] == [EVENT_ID]
        assert [e.event_id for e in open_events.items] == [EVENT_ID]
        assert [s.name for s in streams.items] == ["HLS", "ULL"]
        assert len(sports.items) == 72
        assert live.stream_link.endswith(f"/abr/{EVENT_ID}/playlist.m3u8")
        assert transport.idle_connections == 1
    calls = sim.calls()
    assert [c["method"] for c in calls] == [
        "event_all", "event_open", "streams", "sports", "stream_link", "live_stream",
    ]  # fmt: skip
    assert {c["status"] for c in calls} == {200}
    assert calls[4]["params"]["streamName"] == "HLS-RAW"


async def test_sequential_calls_share_one_connection(sim: SimulatorHandle) -> None:
    port = httpx.URL(sim.url).port
    assert port is not None
    transport = Http11Transport(max_connections=4)
    async with (
        serve(raw=relay_to(port)) as relay,
        upstream(sim, transport, api_url=f"{relay.url}/api") as client,
    ):
        for _ in range(20):
            assert len((await client.sports()).items) == 72
            assert transport.idle_connections == 1
    assert relay.accepted == 1
    assert len(sim.calls("sports")) == 20


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("reset", UpstreamConnectionError),
        ("delay", UpstreamTimeout),
        ("garbage", UpstreamBadResponse),
        ("truncated", UpstreamBadResponse),
    ],
)
async def test_a_failed_call_leaves_no_broken_connection(
    sim: SimulatorHandle, kind: FaultKind, error: type[UpstreamError]
) -> None:
    sim.inject_fault("sports", kind, delay_s=1.0, count=1)
    transport = Http11Transport(max_connections=4)
    async with upstream(sim, transport, read_timeout_s=0.3) as client:
        with pytest.raises(error):
            await client.sports()
        assert [e.event_id for e in (await client.open_events()).items] == [EVENT_ID]
        assert len((await client.sports()).items) == 72
    await until(lambda: len(sim.calls("sports")) == 2, within_s=5)


# --- keep-alive and the connection limit --------------------------------------------------


async def test_sequential_requests_reuse_one_connection() -> None:
    transport = Http11Transport(max_connections=4)
    async with serve() as server, make_client(transport) as http:
        for _ in range(20):
            response = await http.get(f"{server.url}/")
            assert response.status_code == 200
            assert response.content == b"ok"
            assert transport.idle_connections == 1
    assert server.accepted == 1
    assert len(server.requests) == 20


async def test_at_most_max_connections_are_open() -> None:
    async def slow(request: Request) -> None:
        await asyncio.sleep(0.1)
        request.respond(200, request.target.encode())

    transport = Http11Transport(max_connections=2)
    async with serve(slow) as server, make_client(transport) as http:
        responses = await asyncio.gather(*(http.get(f"{server.url}/{i}") for i in range(6)))
        assert [r.content for r in responses] == [f"/{i}".encode() for i in range(6)]
        assert transport.idle_connections == 2
    assert server.peak == 2
    assert server.accepted == 2


async def test_a_request_waits_for_a_slot_no_longer_than_the_pool_timeout() -> None:
    held = asyncio.Event()

    async def hold(request: Request) -> None:
        if request.target == "/hold":
            held.set()
            await asyncio.sleep(1.0)
        request.respond(200, b"ok")

    transport = Http11Transport(max_connections=1)
    async with serve(hold) as server, make_client(transport) as http:
        first = asyncio.create_task(http.get(f"{server.url}/hold"))
        await held.wait()
        started = time.monotonic()
        with pytest.raises(httpx.PoolTimeout):
            await http.get(f"{server.url}/", timeout=httpx.Timeout(5.0, pool=0.1))
        assert 0.09 <= time.monotonic() - started < 0.8
        assert (await first).status_code == 200
        assert (await http.get(f"{server.url}/")).status_code == 200
    assert server.accepted == 1


async def test_idle_connections_are_reused_last_in_first_out() -> None:
    async def delayed(request: Request) -> None:
        await asyncio.sleep(0.2 if request.target == "/slow" else 0.0)
        request.respond(200, b"", f"X-Conn: {request.conn}")

    transport = Http11Transport(max_connections=2)
    async with serve(delayed) as server, make_client(transport) as http:
        slow, fast = await asyncio.gather(
            http.get(f"{server.url}/slow"), http.get(f"{server.url}/fast")
        )
        assert slow.headers["x-conn"] != fast.headers["x-conn"]
        assert transport.idle_connections == 2
        for _ in range(3):
            response = await http.get(f"{server.url}/")
            assert response.headers["x-conn"] == slow.headers["x-conn"]
    assert server.accepted == 2


async def test_an_idle_connection_expires() -> None:
    transport = Http11Transport(max_connections=2, keepalive_expiry_s=0.3)
    async with serve() as server, make_client(transport) as http:
        await http.get(f"{server.url}/")
        await asyncio.sleep(0.05)
        await http.get(f"{server.url}/")
        assert server.accepted == 1
        await asyncio.sleep(0.5)
        response = await http.get(f"{server.url}/")
        assert response.headers["x-conn"] == "2"
        assert transport.idle_connections == 1
        await until(lambda: server.open == 1)


async def test_another_origin_takes_the_place_of_an_idle_connection() -> None:
    transport = Http11Transport(max_connections=1)
    async with serve() as first, serve() as second, make_client(transport) as http:
        for server in (first, second, first):
            assert (await http.get(f"{server.url}/")).content == b"ok"
            await until(lambda: first.open + second.open == 1)
        assert transport.idle_connections == 1
    assert (first.accepted, second.accepted) == (2, 1)


async def test_a_request_cancelled_while_waiting_for_a_slot_takes_none() -> None:
    held = asyncio.Event()
    release = asyncio.Event()

    async def hold(request: Request) -> None:
        if request.target == "/hold":
            held.set()
            await release.wait()
        request.respond(200, b"ok")

    transport = Http11Transport(max_connections=1)
    async with serve(hold) as server, make_client(transport) as http:
        first = asyncio.create_task(http.get(f"{server.url}/hold"))
        await held.wait()
        waiting = asyncio.create_task(http.get(f"{server.url}/"))
        await asyncio.sleep(0.05)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        release.set()
        assert (await first).status_code == 200
        response = await http.get(f"{server.url}/", timeout=httpx.Timeout(5.0, pool=0.5))
        assert response.status_code == 200
    assert server.accepted == 1
    assert [r.target for r in server.requests] == ["/hold", "/"]


async def test_aclose_closes_idle_connections() -> None:
    async def slow(request: Request) -> None:
        await asyncio.sleep(0.05)
        request.respond(200, b"ok")

    transport = Http11Transport(max_connections=2)
    async with serve(slow) as server:
        http = make_client(transport)
        await asyncio.gather(http.get(f"{server.url}/"), http.get(f"{server.url}/"))
        assert transport.idle_connections == 2
        assert server.open == 2
        await http.aclose()
        assert transport.idle_connections == 0
        await until(lambda: server.open == 0)


# --- response framing ------------------------------------------------------------------


async def test_a_chunked_body() -> None:
    parts = [b"first,", b"second," * 1000, b"third"]

    async def chunked(request: Request) -> None:
        request.writer.write(http_response(200, b"", "Transfer-Encoding: chunked"))
        for part in parts:
            request.writer.write(chunk(part))
            await request.writer.drain()
            await asyncio.sleep(0.01)
        request.writer.write(b"0\r\nX-Trailer: done\r\n\r\n")

    transport = Http11Transport(max_connections=1)
    async with serve(chunked) as server, make_client(transport) as http:
        for _ in range(2):
            response = await http.get(f"{server.url}/")
            assert response.content == b"".join(parts)
    assert server.accepted == 1


async def test_a_gzip_body_is_decoded() -> None:
    payload = b'{"sports": []}' * 500
    compressed = gzip.compress(payload)

    async def gzipped(request: Request) -> None:
        request.respond(200, compressed, "Content-Encoding: gzip", "Content-Type: text/plain")

    transport = Http11Transport(max_connections=1)
    async with serve(gzipped) as server, make_client(transport) as http:
        response = await http.get(f"{server.url}/")
    assert response.content == payload
    assert response.num_bytes_downloaded == len(compressed)
    assert response.headers["content-encoding"] == "gzip"


async def test_a_body_delimited_by_the_server_closing() -> None:
    async def until_close(request: Request) -> None:
        request.writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it")
        await request.writer.drain()
        request.writer.close()

    transport = Http11Transport(max_connections=1)
    async with serve(until_close) as server, make_client(transport) as http:
        response = await http.get(f"{server.url}/")
        assert response.content == b"all of it"
        assert transport.idle_connections == 0


@pytest.mark.parametrize(
    ("method", "status", "headers"),
    [
        ("HEAD", 200, ("Content-Length: 1234",)),
        ("GET", 204, ()),
        ("GET", 304, ('ETag: "v1"', "Content-Length: 50")),
    ],
    ids=["head", "204", "304"],
)
async def test_responses_without_a_body(method: str, status: int, headers: tuple[str, ...]) -> None:
    async def bodiless(request: Request) -> None:
        if request.target == "/next":
            request.respond(200, b"next")
        else:
            request.respond(status, b"", *headers)

    transport = Http11Transport(max_connections=1)
    async with serve(bodiless) as server, make_client(transport) as http:
        response = await http.request(method, f"{server.url}/")
        assert response.status_code == status
        assert response.content == b""
        assert (await http.get(f"{server.url}/next")).content == b"next"
    assert server.accepted == 1


async def test_request_body_and_query_arrive_intact() -> None:
    body = bytes(range(256)) * 4096
    params = {"q": "x y", "uid": "ü&=/?", "empty": ""}
    transport = Http11Transport(max_connections=1)
    async with serve() as server, make_client(transport) as http:
        response = await http.post(
            f"{server.url}/submit/a%20b",
            params=params,
            content=body,
            headers={"X-Trace": "abc", "Content-Type": "application/octet-stream"},
        )
        assert response.status_code == 200
    [request] = server.requests
    assert request.method == "POST"
    assert request.target == response.request.url.raw_path.decode()
    target = urlsplit(request.target)
    assert target.path == "/submit/a%20b"
    assert parse_qs(target.query, keep_blank_values=True) == {k: [v] for k, v in params.items()}
    assert request.body == body
    assert request.header("content-length") == [str(len(body))]
    assert request.header("host") == [server.url.removeprefix("http://")]
    assert request.header("x-trace") == ["abc"]


async def test_repeated_response_headers_are_kept() -> None:
    async def cookies(request: Request) -> None:
        request.respond(
            200,
            b"ok",
            "Set-Cookie: a=1; Path=/",
            "X-Multi: one",
            "Set-Cookie: b=2",
            "X-Multi: two",
            "X-Url: http://example.test:8080/a",
        )

    transport = Http11Transport(max_connections=1)
    async with serve(cookies) as server, make_client(transport) as http:
        response = await http.get(f"{server.url}/")
    assert response.headers.get_list("set-cookie") == ["a=1; Path=/", "b=2"]
    assert response.headers.get_list("x-multi") == ["one", "two"]
    assert response.headers["x-url"] == "http://example.test:8080/a"
    assert [k for k, _ in response.headers.multi_items()][:4] == [
        "set-cookie", "x-multi", "set-cookie", "x-multi",
    ]  # fmt: skip


async def test_an_informational_response_is_skipped() -> None:
    async def early_hints(request: Request) -> None:
        request.writer.write(b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n")
        await request.writer.drain()
        request.respond(200, b"final")

    transport = Http11Transport(max_connections=1)
    async with serve(early_hints) as server, make_client(transport) as http:
        for _ in range(2):
            response = await http.get(f"{server.url}/")
            assert (response.status_code, response.content) == (200, b"final")
    assert server.accepted == 1


@pytest.mark.parametrize("head", ["HTTP/1.1 200 OK\r\nConnection: close", "HTTP/1.0 200 OK"])
async def test_a_connection_the_server_will_close_is_not_reused(head: str) -> None:
    async def closing(request: Request) -> None:
        request.writer.write(f"{head}\r\nContent-Length: 2\r\n\r\nok".encode())

    transport = Http11Transport(max_connections=1)
    async with serve(closing) as server, make_client(transport) as http:
        for _ in range(2):
            assert (await http.get(f"{server.url}/")).content == b"ok"
            assert transport.idle_connections == 0
        await until(lambda: server.open == 0)
    assert server.accepted == 2


async def test_a_kept_alive_connection_the_server_closed() -> None:
    async def answer_then_close(request: Request) -> None:
        request.respond(200, b"ok")
        await request.writer.drain()
        request.writer.close()

    transport = Http11Transport(max_connections=1)
    async with serve(answer_then_close) as server, make_client(transport) as http:
        assert (await http.get(f"{server.url}/")).content == b"ok"
        await until(lambda: server.open == 0)
        await asyncio.sleep(0.05)
        assert (await http.get(f"{server.url}/")).content == b"ok"
    assert server.accepted == 2


# --- timeouts and broken peers ------------------------------------------------------------


@pytest.mark.parametrize("stage", ["head", "body"])
async def test_a_silent_server_is_a_read_timeout(stage: str) -> None:
    async def stall(request: Request) -> None:
        if request.conn == 1:
            if stage == "body":
                request.writer.write(http_response(200, b"", "Content-Length: 10") + b"abc")
                await request.writer.drain()
            await asyncio.sleep(3600)
        request.respond(200, b"ok")

    transport = Http11Transport(max_connections=1)
    async with serve(stall) as server, make_client(transport, read_s=0.2) as http:
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            await http.get(f"{server.url}/")
        assert time.monotonic() - started < 1.0
        assert transport.idle_connections == 0
        assert (await http.get(f"{server.url}/")).content == b"ok"
    assert server.accepted == 2


async def test_the_read_timeout_is_per_read() -> None:
    async def trickle(request: Request) -> None:
        request.writer.write(http_response(200, b"", "Transfer-Encoding: chunked"))
        for _ in range(8):
            await asyncio.sleep(0.1)
            request.writer.write(chunk(b"drip"))
            await request.writer.drain()
        request.writer.write(b"0\r\n\r\n")

    transport = Http11Transport(max_connections=1)
    async with serve(trickle) as server, make_client(transport, read_s=0.3) as http:
        response = await http.get(f"{server.url}/")
    assert response.content == b"drip" * 8


async def test_a_server_that_reads_nothing_is_a_write_timeout() -> None:
    async def deaf(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(3600)

    transport = Http11Transport(max_connections=1)
    async with serve(raw=deaf) as server, make_client(transport) as http:
        with pytest.raises(httpx.WriteTimeout):
            await http.post(
                f"{server.url}/", content=bytes(128 << 20), timeout=httpx.Timeout(5.0, write=0.3)
            )
        assert transport.idle_connections == 0


@pytest.mark.parametrize(
    "garbage",
    [
        b"SSH-2.0-OpenSSH_9.6\r\n\r\n",
        b"HTTP/1.1 two-hundred OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: lots\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ],
    ids=["not-http", "bad-status", "bad-length", "bad-chunk"],
)
async def test_garbage_is_a_protocol_error(garbage: bytes) -> None:
    async def babble(request: Request) -> None:
        if request.conn == 1:
            request.writer.write(garbage)
            await request.writer.drain()
            await asyncio.sleep(3600)
        request.respond(200, b"ok")

    transport = Http11Transport(max_connections=1)
    async with serve(babble) as server, make_client(transport, read_s=2.0) as http:
        with pytest.raises(httpx.RemoteProtocolError):
            await http.get(f"{server.url}/")
        assert transport.idle_connections == 0
        assert (await http.get(f"{server.url}/")).content == b"ok"


PARTIAL_ANSWERS = {
    "no-answer": b"",
    "mid-head": b"HTTP/1.1 200 OK\r\nContent-Le",
    "mid-body": http_response(200, b"", "Content-Length: 100") + b"x" * 10,
    "mid-chunk": http_response(200, b"", "Transfer-Encoding: chunked") + b"64\r\n" + b"x" * 10,
}


@pytest.mark.parametrize("ending", ["close", "reset"])
@pytest.mark.parametrize("partial", PARTIAL_ANSWERS.values(), ids=PARTIAL_ANSWERS.keys())
async def test_a_server_gone_mid_answer_is_a_transport_error(partial: bytes, ending: str) -> None:
    async def die(request: Request) -> None:
        if request.conn > 1:
            request.respond(200, b"ok")
            return
        request.writer.write(partial)
        await request.writer.drain()
        await asyncio.sleep(0.05)
        if ending == "reset":
            reset(request.writer)
        else:
            request.writer.close()

    transport = Http11Transport(max_connections=1)
    async with serve(die) as server, make_client(transport) as http:
        with pytest.raises(httpx.TransportError) as caught:
            await http.get(f"{server.url}/")
        assert isinstance(caught.value, httpx.RemoteProtocolError | httpx.ReadError)
        assert transport.idle_connections == 0
        assert (await http.get(f"{server.url}/")).content == b"ok"


async def test_a_closed_port_is_a_connect_error() -> None:
    transport = Http11Transport(max_connections=1)
    async with make_client(transport) as http:
        with pytest.raises(httpx.ConnectError):
            await http.get(f"http://127.0.0.1:{free_port()}/")
        assert transport.idle_connections == 0


@pytest.fixture
def unanswered_port() -> Iterator[int]:
    """A port whose accept queue is full: a connection attempt gets no SYN-ACK."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port: int = listener.getsockname()[1]
        fillers = [socket.socket() for _ in range(4)]
        try:
            for filler in fillers:
                filler.setblocking(False)
                with suppress(BlockingIOError):
                    filler.connect(("127.0.0.1", port))
            yield port
        finally:
            for filler in fillers:
                filler.close()


async def test_a_connect_that_hangs_is_a_connect_timeout(unanswered_port: int) -> None:
    transport = Http11Transport(max_connections=1)
    async with make_client(transport) as http:
        started = time.monotonic()
        with pytest.raises(httpx.ConnectTimeout):
            await http.get(
                f"http://127.0.0.1:{unanswered_port}/", timeout=httpx.Timeout(5.0, connect=0.2)
            )
        assert time.monotonic() - started < 1.0


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
@pytest.mark.parametrize(("size", "fits"), [(1024, True), (1025, False)])
async def test_a_body_over_max_body_bytes(framing: str, size: int, fits: bool) -> None:
    body = b"z" * size

    async def big(request: Request) -> None:
        if framing == "chunked":
            request.writer.write(http_response(200, b"", "Transfer-Encoding: chunked"))
            request.writer.write(chunk(body[:600]) + chunk(body[600:]) + b"0\r\n\r\n")
        else:
            request.respond(200, body)

    transport = Http11Transport(max_connections=1, max_body_bytes=1024)
    async with serve(big) as server, make_client(transport) as http:
        if fits:
            assert (await http.get(f"{server.url}/")).content == body
            assert transport.idle_connections == 1
        else:
            with pytest.raises(httpx.RemoteProtocolError):
                await http.get(f"{server.url}/")
            assert transport.idle_connections == 0


@pytest.mark.parametrize("stage", ["head", "body"])
async def test_a_cancelled_request_closes_its_connection(stage: str) -> None:
    waiting = asyncio.Event()
    closed = asyncio.Event()

    async def stall(request: Request) -> None:
        if request.conn > 1:
            request.respond(200, b"ok")
            return
        if stage == "body":
            request.writer.write(http_response(200, b"", "Content-Length: 100") + b"x" * 10)
            await request.writer.drain()
        waiting.set()
        with suppress(OSError):
            await request.reader.read()
        closed.set()

    transport = Http11Transport(max_connections=1)
    async with serve(stall) as server, make_client(transport) as http:
        task = asyncio.create_task(http.get(f"{server.url}/"))
        await waiting.wait()
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert transport.idle_connections == 0
        await asyncio.wait_for(closed.wait(), 2)
        response = await http.get(f"{server.url}/")
        assert response.content == b"ok"
    assert server.accepted == 2


# --- TLS ---------------------------------------------------------------------------------


@dataclass
class Certificate:
    pem: bytes
    certfile: Path
    keyfile: Path


def self_signed(directory: Path, *names: str) -> Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    alt_names: list[x509.GeneralName] = []
    for name in names:
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt_names.append(x509.DNSName(name))
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False
        )
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    certfile, keyfile = directory / f"{names[0]}.crt", directory / f"{names[0]}.key"
    certfile.write_bytes(pem)
    keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return Certificate(pem, certfile, keyfile)


def server_context(cert: Certificate) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert.certfile, cert.keyfile)
    return context


def trusting(cert: Certificate) -> ssl.SSLContext:
    return ssl.create_default_context(cadata=cert.pem.decode())


@pytest.fixture
def loopback_cert(tmp_path: Path) -> Certificate:
    return self_signed(tmp_path, "127.0.0.1", "localhost")


async def test_https_with_a_trusted_certificate(loopback_cert: Certificate) -> None:
    transport = Http11Transport(max_connections=1, ssl_context=trusting(loopback_cert))
    async with (
        serve(tls=server_context(loopback_cert)) as server,
        make_client(transport) as http,
    ):
        assert server.url.startswith("https://")
        for _ in range(3):
            response = await http.post(f"{server.url}/", content=b"secret")
            assert response.content == b"ok"
        assert transport.idle_connections == 1
    assert server.accepted == 1
    assert [r.body for r in server.requests] == [b"secret"] * 3


@pytest.mark.parametrize("trust", ["default", "other-name"])
async def test_https_with_an_unverifiable_certificate(
    loopback_cert: Certificate, tmp_path: Path, trust: str
) -> None:
    if trust == "default":
        transport = Http11Transport(max_connections=1)
        served = loopback_cert
    else:
        served = self_signed(tmp_path, "gateway.invalid")
        transport = Http11Transport(max_connections=1, ssl_context=trusting(served))
    async with serve(tls=server_context(served)) as server, make_client(transport) as http:
        with pytest.raises(httpx.ConnectError):
            await http.get(f"{server.url}/")
        assert transport.idle_connections == 0
    assert server.requests == []
