"""What the upstream client sends through: a transport with its timeouts and default
headers, and the answers it reads back (status, decoded body, headers).

The calls to ONEPlatform never use cookies, auth flows, redirects or proxy variables,
so they skip ``httpx.AsyncClient``'s layers for those. With the built-in transport
(``app/upstream/transport.py``) a request is written straight to bytes: the default
headers are encoded and checked once, a URL's origin and path are split once (cached),
and the answer's body is decoded here; no ``httpx.Request`` or ``httpx.Response`` is
built (their URL parsing and stream plumbing cost more than the exchange itself). Any
other httpx transport (httpcore's pool, the in-process simulator's ``ASGITransport``,
a ``MockTransport`` in tests), and any URL out of the ordinary (non-ASCII, user info,
a path that needs quoting), goes through ``handle_async_request`` with an
``httpx.Request``. Both ways send the same bytes and raise httpx's exceptions.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from functools import lru_cache
from types import TracebackType
from urllib.parse import urlencode, urlsplit

import httpx

from app.upstream.transport import (
    DEFAULT_PORTS,
    TOKEN,
    UNSAFE_TARGET,
    UNSAFE_VALUE,
    Http11Transport,
    Origin,
    RawResponse,
)

DEFAULT_HEADERS = {
    "Accept": "application/json",
    "Accept-Encoding": "gzip, deflate",
    "User-Agent": "oneplatform-gateway",
}

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})  # httpx sends Content-Length: 0
_MAX_DECODED_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class UpstreamResponse:
    status_code: int
    content: bytes  # decoded (Content-Encoding undone)
    headers: dict[str, str]  # names lower-cased; a repeated header's values joined by ", "


class UpstreamHttp:
    def __init__(
        self,
        transport: httpx.AsyncBaseTransport,
        *,
        connect_timeout_s: float,
        read_timeout_s: float,
        headers: dict[str, str] | None = None,
    ) -> None:
        self._transport = transport
        self._direct = transport if isinstance(transport, Http11Transport) else None
        self._timeouts = httpx.Timeout(
            read_timeout_s, connect=connect_timeout_s, pool=connect_timeout_s
        ).as_dict()
        self._connect_timeout_s = connect_timeout_s
        self._read_timeout_s = read_timeout_s
        self._extra = dict(headers or {})
        self._headers = httpx.Headers(DEFAULT_HEADERS)  # built once, not per request
        self._headers.update(self._extra)  # case-insensitive: an extra replaces a default
        self._header_block = _header_block(self._headers)

    def with_headers(self, headers: dict[str, str]) -> UpstreamHttp:
        """The same connections, sending ``headers`` too on every request."""
        return UpstreamHttp(
            self._transport,
            connect_timeout_s=self._connect_timeout_s,
            read_timeout_s=self._read_timeout_s,
            headers={**self._extra, **headers},
        )

    async def request(
        self, method: str, url: str, *, params: dict[str, str] | None = None
    ) -> UpstreamResponse:
        """Send one request and read the whole answer (httpx's exceptions on failure)."""
        if params:
            url = f"{url}{'&' if '?' in url else '?'}{urlencode(params)}"
        if self._direct is not None and (split := split_url(url)) is not None:
            return await self._send_direct(self._direct, method, split)
        return await self._send_via_httpx(method, url)

    async def _send_direct(
        self, transport: Http11Transport, method: str, split: tuple[Origin, bytes, bytes]
    ) -> UpstreamResponse:
        origin, host, target = split
        verb = method.encode("ascii")
        if not TOKEN.fullmatch(verb):
            raise httpx.LocalProtocolError("invalid request line")
        length = b"Content-Length: 0\r\n" if method in _BODY_METHODS else b""
        data = b"%s %s HTTP/1.1\r\nHost: %s\r\n%s%s\r\n" % (
            verb,
            target,
            host,
            length,
            self._header_block,
        )
        raw = await transport.exchange(origin, data, self._timeouts, head=method == "HEAD")
        headers = _header_dict(raw)
        content = decode_body(raw.content(), headers.get("content-encoding"))
        return UpstreamResponse(raw.status_code, content, headers)

    async def _send_via_httpx(self, method: str, url: str) -> UpstreamResponse:
        request = httpx.Request(
            method, url, headers=self._headers, extensions={"timeout": self._timeouts}
        )
        response = await self._transport.handle_async_request(request)
        response.request = request
        try:
            await response.aread()
        finally:
            await response.aclose()
        return UpstreamResponse(response.status_code, response.content, dict(response.headers))

    async def aclose(self) -> None:
        await self._transport.aclose()

    async def __aenter__(self) -> UpstreamHttp:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()


def _header_block(headers: httpx.Headers) -> bytes:
    """The headers as written on the wire, checked once (no CR, LF or NUL in a value)."""
    lines = []
    for name, value in headers.raw:
        if not TOKEN.fullmatch(name) or UNSAFE_VALUE.search(value):
            raise ValueError(f"invalid upstream header {name!r}")
        lines.append(b"%s: %s\r\n" % (name, value))
    return b"".join(lines)


@lru_cache(maxsize=512)
def split_url(url: str) -> tuple[Origin, bytes, bytes] | None:
    """``(origin, Host header, request target)`` for a plain ASCII http(s) URL whose path
    and query need no quoting; None for anything else (httpx then builds the request).
    The link URLs are the same few strings on every call, so the split is cached."""
    if not url.isascii() or UNSAFE_TARGET.search(url.encode("ascii")):
        return None  # urlsplit would drop tabs and newlines; httpx quotes or refuses
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    default = DEFAULT_PORTS.get(parts.scheme)
    host = parts.hostname
    if default is None or not host or "@" in parts.netloc or parts.fragment:
        return None
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    target_bytes = target.encode("ascii")
    if not target.startswith("/"):
        return None
    authority = f"[{host}]" if ":" in host else host
    if port is not None and port != default:
        authority = f"{authority}:{port}"
    return (parts.scheme, host, port or default), authority.encode("ascii"), target_bytes


def _header_dict(raw: RawResponse) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in raw.headers:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return headers


def decode_body(content: bytes, encodings: str | None) -> bytes:
    """Undo ``Content-Encoding`` (gzip, deflate; others are left as httpx leaves them:
    ignored). A body that does not decode, or decodes past 32 MiB, is
    ``httpx.DecodingError``."""
    if not encodings or not content:
        return content
    for coding in reversed(encodings.split(",")):
        coding = coding.strip().lower()
        if coding in ("gzip", "x-gzip"):
            content = _inflate(content, zlib.MAX_WBITS | 16)
        elif coding == "deflate":
            try:
                content = _inflate(content, zlib.MAX_WBITS)  # zlib-wrapped, as specified
            except httpx.DecodingError:
                content = _inflate(content, -zlib.MAX_WBITS)  # raw, as some servers send
    return content


def _inflate(content: bytes, wbits: int) -> bytes:
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(content, _MAX_DECODED_BYTES)
    except zlib.error:
        raise httpx.DecodingError("the body could not be decoded") from None
    if inflater.unconsumed_tail:
        raise httpx.DecodingError("the decoded body is too large")
    return out + inflater.flush()
