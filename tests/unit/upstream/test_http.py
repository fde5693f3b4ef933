"""What ``UpstreamHttp`` puts on every request, and what it reads back."""

from __future__ import annotations

import gzip

import httpx

from app.upstream.http import UpstreamHttp


async def test_headers_params_timeouts_and_a_decoded_body() -> None:
    seen: list[httpx.Request] = []

    def upstream(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        body = gzip.compress(b'{"ok": true}')
        return httpx.Response(200, headers={"Content-Encoding": "gzip"}, content=body)

    base = UpstreamHttp(httpx.MockTransport(upstream), connect_timeout_s=1.5, read_timeout_s=4.0)
    http = base.with_headers({"X-Forwarded-For": "192.0.2.10", "accept": "text/plain"})
    async with http:
        response = await http.request("POST", "http://h/api/x", params={"a": "1 2", "b": "&"})
        await base.request("GET", "http://h/api/y")
    assert response.content == b'{"ok": true}'
    assert response.request is seen[0]
    request = seen[0]
    assert str(request.url) == "http://h/api/x?a=1+2&b=%26"
    assert request.headers.get_list("accept") == ["text/plain"]  # replaced, not doubled
    assert request.headers["x-forwarded-for"] == "192.0.2.10"
    assert request.headers["user-agent"] == "oneplatform-gateway"
    timeouts = request.extensions["timeout"]
    assert (timeouts["connect"], timeouts["read"], timeouts["pool"]) == (1.5, 4.0, 1.5)
    # The derived client added its headers without changing the one it came from.
    assert "x-forwarded-for" not in seen[1].headers
    assert seen[1].headers["accept"] == "application/json"
