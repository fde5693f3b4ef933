"""The request bytes the built-in transport writes, and what it refuses to write."""

from __future__ import annotations

import httpx
import pytest

from app.upstream.transport import encode_request


def test_request_line_headers_and_body() -> None:
    request = httpx.Request(
        "POST",
        "http://upstream.example:8080/api/stream/link?userId=a%20b&x=1",
        headers={"X-Forwarded-For": "192.0.2.10"},
        content=b'{"k": 1}',
    )
    wire = encode_request(request, request.read())
    head, _, body = wire.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /api/stream/link?userId=a%20b&x=1 HTTP/1.1"
    assert b"Host: upstream.example:8080" in lines
    assert b"X-Forwarded-For: 192.0.2.10" in lines
    assert b"Content-Length: 8" in lines
    assert body == b'{"k": 1}'


def test_a_body_announced_as_chunked_is_sent_as_one_chunk() -> None:
    request = httpx.Request("POST", "http://h/p", headers={"Transfer-Encoding": "chunked"})
    assert encode_request(request, b"hello").endswith(b"\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
    assert encode_request(request, b"").endswith(b"\r\n\r\n0\r\n\r\n")


@pytest.mark.parametrize(
    "headers",
    [
        [(b"X-Evil", b"a\r\nInjected: yes")],
        [(b"X-Evil", b"a\nb")],
        [(b"X-Evil", b"a\x00b")],
        [(b"Bad Name", b"v")],
        [(b"Bad:Name", b"v")],
        [(b"", b"v")],
    ],
)
def test_header_injection_is_refused(headers: list[tuple[bytes, bytes]]) -> None:
    request = httpx.Request("GET", "http://h/p")
    request.headers = httpx.Headers([*request.headers.raw, *headers])
    with pytest.raises(httpx.LocalProtocolError):
        encode_request(request, b"")


@pytest.mark.parametrize("method", ["GET X", "G\r\nET", ""])
def test_a_bad_method_is_refused(method: str) -> None:
    request = httpx.Request("GET", "http://h/p")
    request.method = method
    with pytest.raises(httpx.LocalProtocolError):
        encode_request(request, b"")
