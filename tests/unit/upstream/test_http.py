"""What ``UpstreamHttp`` puts on every request, and what it reads back."""

from __future__ import annotations

import gzip

import httpx
import pytest

from app.upstream.http import UpstreamHttp, UpstreamResponse, split_url


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
    assert response.headers["content-encoding"] == "gzip"
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


async def test_an_answer_reads_as_status_decoded_body_and_joined_headers() -> None:
    def upstream(request: httpx.Request) -> httpx.Response:
        headers = [("Retry-After", "3"), ("X-Two", "a"), ("X-Two", "b")]
        return httpx.Response(429, headers=headers, content=b"{}")

    async with UpstreamHttp(
        httpx.MockTransport(upstream), connect_timeout_s=1, read_timeout_s=1
    ) as http:
        response = await http.request("GET", "http://h/api/x")
    assert response == UpstreamResponse(
        429, b"{}", {"retry-after": "3", "x-two": "a, b", "content-length": "2"}
    )


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://h/api/x", (("http", "h", 80), b"h", b"/api/x")),
        ("http://h:80/api/x", (("http", "h", 80), b"h", b"/api/x")),
        ("https://H.example/a?b=c", (("https", "h.example", 443), b"h.example", b"/a?b=c")),
        ("https://h:8443/a", (("https", "h", 8443), b"h:8443", b"/a")),
        ("http://127.0.0.1:9000", (("http", "127.0.0.1", 9000), b"127.0.0.1:9000", b"/")),
        ("http://[::1]:9000/a", (("http", "::1", 9000), b"[::1]:9000", b"/a")),
        ("http://h/a%20b?q=%26", (("http", "h", 80), b"h", b"/a%20b?q=%26")),
        # Left to httpx: anything that needs quoting, IDNA, user info or is not http(s).
        ("http://h/a b", None),
        ("http://h/caf\u00e9", None),
        ("http://b\u00fccher.example/a", None),
        ("http://user:pw@h/a", None),
        ("http://h/a#frag", None),
        ("ftp://h/a", None),
        ("http:///a", None),
        ("http://h:99999/a", None),
        ("http://h:port/a", None),
        ("/relative", None),
        ("http://h/a\tb", None),
    ],
)
def test_split_url(url: str, expected: object) -> None:
    assert split_url(url) == expected
