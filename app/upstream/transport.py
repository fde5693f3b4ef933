"""A lean HTTP/1.1 keep-alive transport for httpx, on asyncio streams and h11.

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

It speaks HTTP/1.1 only and does not read proxy variables (nor does the upstream
client with httpx's own pool, which ``IGM_HTTP_TRANSPORT=httpcore`` selects instead).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from typing import Any

import h11
import httpx

Origin = tuple[str, str, int]  # scheme, host, port

_DEFAULT_PORTS = {"http": 80, "https": 443}
_READ_SIZE = 64 * 1024


class _Connection:
    __slots__ = ("closed", "expires_at", "origin", "protocol", "reader", "writer")

    def __init__(
        self, origin: Origin, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.origin = origin
        self.reader = reader
        self.writer = writer
        self.protocol = h11.Connection(h11.CLIENT)
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
        timeouts = request.extensions.get("timeout", {})
        url = request.url
        if url.scheme not in _DEFAULT_PORTS:
            raise httpx.UnsupportedProtocol(f"unsupported scheme {url.scheme!r}", request=request)
        origin = (url.scheme, url.host, url.port or _DEFAULT_PORTS[url.scheme])
        await self._acquire_slot(timeouts.get("pool"), request)
        try:
            connection = self._reuse(origin)
            if connection is None:
                connection = await self._connect(origin, timeouts.get("connect"), request)
            try:
                response, body, reusable = await self._exchange(connection, request, timeouts)
            except BaseException:
                self._close(connection)
                raise
            if reusable:
                connection.expires_at = time.monotonic() + self._keepalive_s
                self._idle.setdefault(origin, []).append(connection)
            else:
                self._close(connection)
        finally:
            self._slots.release()
        return httpx.Response(
            response.status_code,
            headers=list(response.headers.raw_items()),
            stream=httpx.ByteStream(body),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": response.reason},
        )

    async def aclose(self) -> None:
        for stack in self._idle.values():
            for connection in stack:
                self._close(connection)
        self._idle.clear()

    # --- connections ----------------------------------------------------------

    async def _acquire_slot(self, wait_s: float | None, request: httpx.Request) -> None:
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
        self, origin: Origin, limit_s: float | None, request: httpx.Request
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

    async def _exchange(
        self, connection: _Connection, request: httpx.Request, timeouts: dict[str, float | None]
    ) -> tuple[h11.Response, bytes, bool]:
        protocol = connection.protocol
        content = await request.aread()
        try:
            data = protocol.send(
                h11.Request(
                    method=request.method, target=request.url.raw_path, headers=request.headers.raw
                )
            )
            if content:
                data = (data or b"") + (protocol.send(h11.Data(data=content)) or b"")
            data = (data or b"") + (protocol.send(h11.EndOfMessage()) or b"")
        except h11.LocalProtocolError as exc:
            raise httpx.LocalProtocolError(str(exc), request=request) from None
        await self._write(connection, data, timeouts.get("write"), request)
        response, body = await self._read(connection, request, timeouts.get("read"))
        reusable = protocol.our_state is h11.DONE and protocol.their_state is h11.DONE
        if reusable:
            protocol.start_next_cycle()
        return response, body, reusable

    async def _write(
        self, connection: _Connection, data: bytes, limit_s: float | None, request: httpx.Request
    ) -> None:
        try:
            connection.writer.write(data)
            async with asyncio.timeout(limit_s):
                await connection.writer.drain()  # returns at once unless the buffer is full
        except TimeoutError:
            raise httpx.WriteTimeout("timed out sending the request", request=request) from None
        except OSError as exc:
            raise httpx.WriteError(f"send failed: {type(exc).__name__}", request=request) from None

    async def _read(
        self, connection: _Connection, request: httpx.Request, limit_s: float | None
    ) -> tuple[h11.Response, bytes]:
        protocol, reader = connection.protocol, connection.reader
        response: h11.Response | None = None
        chunks: list[bytes] = []
        size = 0
        while True:
            try:
                event = protocol.next_event()
            except h11.RemoteProtocolError as exc:
                raise httpx.RemoteProtocolError(str(exc), request=request) from None
            if event is h11.NEED_DATA:
                try:
                    async with asyncio.timeout(limit_s):
                        chunk = await reader.read(_READ_SIZE)
                except TimeoutError:
                    raise httpx.ReadTimeout(
                        "timed out reading the response", request=request
                    ) from None
                except OSError as exc:
                    raise httpx.ReadError(
                        f"read failed: {type(exc).__name__}", request=request
                    ) from None
                protocol.receive_data(chunk)  # b"": the server closed its side
            elif isinstance(event, h11.Response):
                response = event
            elif isinstance(event, h11.Data):
                size += len(event.data)
                if size > self._max_body:
                    raise httpx.RemoteProtocolError(
                        f"response body over {self._max_body} bytes", request=request
                    )
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                raise httpx.RemoteProtocolError(
                    "server disconnected without a complete response", request=request
                )
            # h11.InformationalResponse (1xx): wait for the final answer
        if response is None:  # pragma: no cover - h11 sends Response before EndOfMessage
            raise httpx.RemoteProtocolError("no response", request=request)
        return response, b"".join(chunks)
