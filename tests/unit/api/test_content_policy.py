"""Content-Security-Policy values: rendering, inline blocks allowed by hash, and the
API policy added only to answers that set none."""

from __future__ import annotations

import base64
import hashlib

import pytest

from app.api.content_policy import (
    API_POLICY,
    SECURITY_HEADERS,
    ContentSecurityPolicy,
    source_hash,
    with_security_headers,
)

STYLE = "\n body {margin: 0}\n"
PAGE = ContentSecurityPolicy({"default-src": ["'none'"], "script-src": ["'self'"]})


def sha(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def test_source_hash_is_the_base64_sha256() -> None:
    # The example of the CSP Level 3 specification: alert('Hello, world.');
    assert source_hash("alert('Hello, world.');") == (
        "'sha256-qznLcsROx4GACP2dm0UCKCzCG+HiZ1guq6ZZDob/Tng='"
    )


def test_api_policy_is_the_one_every_answer_had() -> None:
    assert API_POLICY.header_value() == "default-src 'none'; frame-ancestors 'none'"
    assert (b"content-security-policy", API_POLICY.header_value().encode()) in SECURITY_HEADERS


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        pytest.param("<p>no script</p>", "default-src 'none'; script-src 'self'", id="none"),
        pytest.param(
            "<script>go()</script>",
            f"default-src 'none'; script-src 'self' {sha('go()')}",
            id="inline-script",
        ),
        pytest.param(
            '<script src="/a.js"></script><script src="/b.js"> </script>',
            "default-src 'none'; script-src 'self'",
            id="files-are-not-hashed",
        ),
        pytest.param(
            "<style>\n body {margin: 0}\n</style>",
            f"default-src 'none'; script-src 'self'; style-src {sha(STYLE)}",
            id="style-gets-its-directive",
        ),
        pytest.param(
            "<script>a()</script><script>a()</script><script>b()</script>",
            f"default-src 'none'; script-src 'self' {sha('a()')} {sha('b()')}",
            id="each-hash-once",
        ),
    ],
)
def test_inline_blocks_are_allowed_by_hash(html: str, expected: str) -> None:
    assert PAGE.allowing_inline(html).header_value() == expected


def test_a_hash_never_switches_unsafe_inline_off() -> None:
    policy = ContentSecurityPolicy({"style-src": ["'self'", "'unsafe-inline'"]})
    assert policy.allowing_inline("<style>x</style>") == policy


def test_allowing_inline_leaves_the_policy_unchanged() -> None:
    PAGE.allowing_inline("<script>go()</script>")
    assert PAGE.header_value() == "default-src 'none'; script-src 'self'"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param(
            [(b"content-type", b"application/json")],
            [(b"content-type", b"application/json"), *SECURITY_HEADERS],
            id="api-answer",
        ),
        pytest.param(
            [(b"content-security-policy", b"script-src 'self'")],
            [(b"content-security-policy", b"script-src 'self'"), SECURITY_HEADERS[0]],
            id="page-keeps-its-policy",
        ),
        pytest.param(
            [(b"x-content-type-options", b"nosniff"), (b"etag", b'"1"')],
            [(b"x-content-type-options", b"nosniff"), (b"etag", b'"1"'), SECURITY_HEADERS[1]],
            id="each-header-on-its-own",
        ),
    ],
)
def test_security_headers_are_added_when_absent(
    headers: list[tuple[bytes, bytes]], expected: list[tuple[bytes, bytes]]
) -> None:
    assert with_security_headers(headers) == expected
