"""A lean HTTP/1.1 keep-alive transport for httpx, on asyncio streams and httptools.

The upstream client makes small JSON calls to one or two origins. Under link load,
httpcore's pool (anyio locks and cancel scopes on every call, and a readability poll
of every idle connection each time a request starts or ends) took more CPU than the
rest of a link request together. This transport does only what those calls need:

- at most ``max_connections`` connections open; a request waits for a free slot up
  to the pool timeout, then gets ``httpx.PoolTimeout``;
- idle connections reused last-in first-out, dropped after ``keepalive_expiry_s`` or
  once the server has closed them (the stream reader is at EOF);
- whole bodies read into memory (up to ``max_body_bytes``); httpx decodes them;
- the request's timeouts (connect, write, read per read, pool) and httpx's exception
  types, so callers cannot tell it from httpx's default transport;
- a connection that failed or whose request was cancelled is closed, never reused.

Answers are parsed by httptools (llhttp, the parser uvicorn serves with): 5 µs per
exchange where h11's pure-Python state machine took 77 µs. Requests are written here,
with header names checked as tokens and values refused if they hold CR, LF or NUL.

It speaks HTTP/1.1 only and does not read proxy variables (nor does the upstream
client with httpx's own pool, which ``IGM_HTTP_TRANSPORT=httpcore`` selects instead).
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
from collections.abc import Mapping
from typing import Any

import httptools
import httpx

Origin = tuple[str, str, int]  # scheme, host, port

DEFAULT_PORTS = {"http": 80, "https": 443}
_READ_SIZE = 64 * 1024


class _Connection:
    __slots__ = ("closed", "expires_at", "origin", "reader", "writer")

    def __init__(
        self, origin: Origin, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.origin = origin
        self.reader = reader
        self.writer = writer
        self.expires_at = 0.0
        self.closed = False

    def usable(self, now: float) -> bool:
        return now < self.expires_at and not self.reader.at_eof() and not self.writer.is_closing()


class Http11Transport(httpx.AsyncBaseTransport):
    def __init__(
        self,
        *,
        max_connections: int,
        keepalive_expiry_s: float = 4.0,
        ssl_context: ssl.SSLContext | None = None,
        max_body_bytes: int = 32 * 1024 * 1024,
    ) -> None:
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self._max_connections = max_connections
        self._keepalive_s = keepalive_expiry_s
        self._ssl_context = ssl_context
        self._max_body = max_body_bytes
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: dict[Origin, list[_Connection]] = {}
        self._open = 0

    @property
    def idle_connections(self) -> int:
        return sum(len(stack) for stack in self._idle.values())

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme not in DEFAULT_PORTS:
            raise httpx.UnsupportedProtocol(f"unsupported scheme {url.scheme!r}", request=request)
        origin = (url.scheme, url.host, url.port or DEFAULT_PORTS[url.scheme])
        data = encode_request(request, await request.aread())
        timeouts = request.extensions.get("timeout", {})
        response = await self.exchange(
            origin, data, timeouts, head=request.method == "HEAD", request=request
        )
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=httpx.ByteStream(response.content()),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": response.reason},
        )

    async def exchange(
        self,
        origin: Origin,
        data: bytes,
        timeouts: Mapping[str, float | None],
        *,
        head: bool = False,
        request: httpx.Request | None = None,
    ) -> RawResponse:
        """Send ``data``, one whole HTTP/1.1 request already encoded and checked, to
        ``origin`` over a pooled connection, and read the whole answer (body as sent,
        not decoded). ``timeouts``: httpx's ``connect``, ``read``, ``write`` and
        ``pool`` keys; errors are httpx's exceptions (naming ``request`` when given).
        The upstream client calls this directly, without building httpx objects."""
        await self._acquire_slot(timeouts.get("pool"), request)
        try:
            connection = self._reuse(origin)
            if connection is None:
                connection = await self._connect(origin, timeouts.get("connect"), request)
            try:
                await self._write(connection, data, timeouts.get("write"), request)
                response = await self._read(connection, head, request, timeouts.get("read"))
            except BaseException:
                self._close(connection)
                raise
            if response.keep_alive:
                connection.expires_at = time.monotonic() + self._keepalive_s
                self._idle.setdefault(origin, []).append(connection)
            else:
                self._close(connection)
        finally:
            self._slots.release()
        return response

    async def aclose(self) -> None:
        for stack in self._idle.values():
            for connection in stack:
                self._close(connection)
        self._idle.clear()

    # --- connections ----------------------------------------------------------

    async def _acquire_slot(self, wait_s: float | None, request: httpx.Request | None) -> None:
        if not self._slots.locked():
            await self._slots.acquire()  # a free slot: no wait
            return
        try:
            async with asyncio.timeout(wait_s):
                await self._slots.acquire()
        except TimeoutError:
            raise httpx.PoolTimeout("no connection free in time", request=request) from None

    def _reuse(self, origin: Origin) -> _Connection | None:
        stack = self._idle.get(origin)
        now = time.monotonic()
        while stack:
            connection = stack.pop()
            if connection.usable(now):
                return connection
            self._close(connection)
        return None

    async def _connect(
        self, origin: Origin, limit_s: float | None, request: httpx.Request | None
    ) -> _Connection:
        if self._open >= self._max_connections:
            self._evict_one()  # an idle one must exist: every busy one holds a slot
        scheme, host, port = origin
        tls: dict[str, Any] = {}
        if scheme == "https":
            # A closing TLS connection waits for the server's close_notify: not 30 s.
            tls = {"ssl": self._tls(), "server_hostname": host, "ssl_shutdown_timeout": 2.0}
        try:
            async with asyncio.timeout(limit_s):
                reader, writer = await asyncio.open_connection(host, port, **tls)
        except TimeoutError:
            raise httpx.ConnectTimeout("connect timed out", request=request) from None
        except OSError as exc:  # refused, unreachable, DNS, TLS (ssl.SSLError)
            raise httpx.ConnectError(
                f"connect failed: {type(exc).__name__}", request=request
            ) from None
        self._open += 1
        return _Connection(origin, reader, writer)

    def _evict_one(self) -> None:
        oldest: _Connection | None = None
        for stack in self._idle.values():
            if stack and (oldest is None or stack[0].expires_at < oldest.expires_at):
                oldest = stack[0]
        if oldest is not None:
            self._idle[oldest.origin].remove(oldest)
            self._close(oldest)

    def _close(self, connection: _Connection) -> None:
        if not connection.closed:
            connection.closed = True
            self._open -= 1
            connection.writer.close()

    def _tls(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = httpx.create_ssl_context()
        return self._ssl_context

    # --- one exchange -----------------------------------------------------------

    async def _write(
        self,
        connection: _Connection,
        data: bytes,
        limit_s: float | None,
        request: httpx.Request | None,
    ) -> None:
        writer = connection.writer
        try:
            writer.write(data)
            if writer.transport.get_write_buffer_size():  # not all sent at once: wait
                async with asyncio.timeout(limit_s):
                    await writer.drain()
        except TimeoutError:
            raise httpx.WriteTimeout("timed out sending the request", request=request) from None
        except OSError as exc:
            raise httpx.WriteError(f"send failed: {type(exc).__name__}", request=request) from None

    async def _read(
        self,
        connection: _Connection,
        head: bool,
        request: httpx.Request | None,
        limit_s: float | None,
    ) -> RawResponse:
        response = RawResponse(head=head, max_body=self._max_body)
        parser = httptools.HttpResponseParser(response)
        response.parser = parser
        reader = connection.reader
        while not response.complete:
            try:
                async with asyncio.timeout(limit_s):
                    chunk = await reader.read(_READ_SIZE)
            except TimeoutError:
                raise httpx.ReadTimeout("timed out reading the response", request=request) from None
            except OSError as exc:
                raise httpx.ReadError(
                    f"read failed: {type(exc).__name__}", request=request
                ) from None
            if not chunk:  # the server closed its side
                if not response.ends_at_close():
                    raise httpx.RemoteProtocolError(
                        "server disconnected without a complete response", request=request
                    )
                response.complete, response.keep_alive = True, False
                break
            try:
                parser.feed_data(chunk)
            except httptools.HttpParserUpgrade:
                raise httpx.RemoteProtocolError(
                    "unexpected protocol upgrade", request=request
                ) from None
            except httptools.HttpParserError:
                if response.too_large:
                    raise httpx.RemoteProtocolError(
                        f"response body over {self._max_body} bytes", request=request
                    ) from None
                raise httpx.RemoteProtocolError("malformed response", request=request) from None
        return response


# A header name is a token; no value may hold CR, LF or NUL (header injection).
TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
UNSAFE_VALUE = re.compile(rb"[\r\n\x00]")
UNSAFE_TARGET = re.compile(rb"[\x00-\x20\x7f]")


def encode_request(request: httpx.Request, content: bytes) -> bytes:
    """The request's bytes on the wire (HTTP/1.1): request line, headers, body."""
    method = request.method.encode("ascii")
    target = request.url.raw_path
    if not TOKEN.fullmatch(method) or not target or UNSAFE_TARGET.search(target):
        raise httpx.LocalProtocolError("invalid request line", request=request)
    parts = [method, b" ", target, b" HTTP/1.1\r\n"]
    chunked = False
    for name, value in request.headers.raw:
        if not TOKEN.fullmatch(name) or UNSAFE_VALUE.search(value):
            raise httpx.LocalProtocolError("invalid header", request=request)
        if name.lower() == b"transfer-encoding":
            chunked = True
        parts += (name, b": ", value, b"\r\n")
    parts.append(b"\r\n")
    if chunked:  # the whole body was read: one chunk and the end
        parts.append(
            b"%x\r\n%s\r\n0\r\n\r\n" % (len(content), content) if content else b"0\r\n\r\n"
        )
    else:
        parts.append(content)
    return b"".join(parts)


class RawResponse:
    """One response as httptools reports it (its callbacks), with the framing facts the
    transport needs: 1xx answers skipped, HEAD answers end with their headers, a body
    without Content-Length or chunking ends when the server closes."""

    __slots__ = (
        "body",
        "complete",
        "delimited",
        "head",
        "headers",
        "informational",
        "keep_alive",
        "max_body",
        "parser",
        "reason",
        "size",
        "status_code",
        "too_large",
    )

    def __init__(self, *, head: bool, max_body: int) -> None:
        self.head = head
        self.max_body = max_body
        self.parser: httptools.HttpResponseParser | None = None
        self.status_code = 0
        self.reason = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.size = 0
        self.delimited = False  # Content-Length or chunked: the body's end is known
        self.informational = False
        self.complete = False
        self.keep_alive = False
        self.too_large = False

    def content(self) -> bytes:
        return b"".join(self.body)

    def ends_at_close(self) -> bool:
        """Whether EOF now completes the answer (a body read until the server closes)."""
        return (
            bool(self.status_code)
            and not self.informational
            and not self.delimited
            and not self.head
            and self.status_code not in (204, 304)
        )

    # httptools callbacks

    def on_message_begin(self) -> None:
        self.status_code, self.reason, self.headers, self.body, self.size = 0, b"", [], [], 0
        self.delimited = self.informational = False

    def on_status(self, status: bytes) -> None:
        self.reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))
        lowered = name.lower()
        if lowered == b"content-length" or lowered == b"transfer-encoding":
            self.delimited = True

    def on_headers_complete(self) -> None:
        assert self.parser is not None
        self.status_code = self.parser.get_status_code()
        self.informational = 100 <= self.status_code < 200
        if self.head and not self.informational:
            self._done()  # no body follows an answer to HEAD, whatever it announces

    def on_body(self, body: bytes) -> None:
        self.size += len(body)
        if self.size > self.max_body:
            self.too_large = True
            raise ValueError("response body too large")  # stops the parser
        self.body.append(body)

    def on_message_complete(self) -> None:
        if not self.informational and not self.complete:
            self._done()

    def _done(self) -> None:
        assert self.parser is not None
        self.complete = True
        self.keep_alive = self.parser.should_keep_alive()
