"""What the upstream client sends through: an httpx transport with its timeouts and
default headers.

The calls to ONEPlatform never use cookies, auth flows, redirects or proxy variables,
so they skip ``httpx.AsyncClient``'s layers for those (its cookie extraction alone
parsed every response's URL again) and go to the transport's
``handle_async_request`` with an ``httpx.Request``: the same request, response and
exception types, and any httpx transport (the built-in pool, httpcore's, the
in-process simulator's ``ASGITransport``, a ``MockTransport`` in tests).
"""

from __future__ import annotations

from types import TracebackType
from urllib.parse import urlencode

import httpx

DEFAULT_HEADERS = {
    "Accept": "application/json",
    "Accept-Encoding": "gzip, deflate",
    "User-Agent": "oneplatform-gateway",
}


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
        self._timeouts = httpx.Timeout(
            read_timeout_s, connect=connect_timeout_s, pool=connect_timeout_s
        ).as_dict()
        self._connect_timeout_s = connect_timeout_s
        self._read_timeout_s = read_timeout_s
        self._extra = dict(headers or {})
        self._headers = httpx.Headers(DEFAULT_HEADERS)  # built once, not per request
        self._headers.update(self._extra)  # case-insensitive: an extra replaces a default

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
    ) -> httpx.Response:
        """Send one request and read the whole answer (httpx's exceptions on failure)."""
        if params:
            url = f"{url}{'&' if '?' in url else '?'}{urlencode(params)}"
        request = httpx.Request(
            method, url, headers=self._headers, extensions={"timeout": self._timeouts}
        )
        response = await self._transport.handle_async_request(request)
        response.request = request
        try:
            if isinstance(response.stream, httpx.SyncByteStream):
                response.read()  # bytes in hand (the built-in transport): no async iterators
            else:
                await response.aread()
        finally:
            await response.aclose()
        return response

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
