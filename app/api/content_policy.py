"""Content-Security-Policy for the pages this service serves.

Every answer gets ``default-src 'none'; frame-ancestors 'none'`` (``API_POLICY``):
JSON is never rendered, so it needs nothing. A page declares its own policy once, with
``html_page`` (the page) and ``WithPolicy`` (an ASGI app serving its assets); the
request middleware (``app/observability/requests.py``) adds the API policy only to
answers that did not set one.

A page's inline ``<script>`` and ``<style>`` blocks are allowed by their SHA-256 hash,
computed from the page as rendered, so no page needs ``'unsafe-inline'`` for them.
For example, a page playing a stream in a ``<video>`` and framing a page of its own::

    PLAYER = ContentSecurityPolicy({
        "default-src": ["'none'"], "script-src": ["'self'"], "style-src": ["'self'"],
        "media-src": ["'self'", "blob:"], "connect-src": ["'self'"],
        "frame-src": ["'self'"], "frame-ancestors": ["'self'"],
    })
    return html_page(html, PLAYER)                      # in the route
    app.mount("/_player", WithPolicy(StaticFiles(...), PLAYER))  # its files
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from starlette.responses import HTMLResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP_HEADER = "content-security-policy"

# Attribute-less tags only: ``<script src=...>`` loads a file, which script-src governs.
_INLINE_BLOCK = re.compile(r"<(script|style)>(.*?)</\1>", re.DOTALL)
_DIRECTIVE_FOR = {"script": "script-src", "style": "style-src"}


def source_hash(text: str) -> str:
    """The CSP source expression allowing exactly this inline block."""
    digest = hashlib.sha256(text.encode()).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


@dataclass(frozen=True)
class ContentSecurityPolicy:
    """Directive name -> sources, rendered in the order given."""

    directives: Mapping[str, Sequence[str]]

    def header_value(self) -> str:
        return "; ".join(" ".join([name, *sources]) for name, sources in self.directives.items())

    def allowing_inline(self, html: str) -> ContentSecurityPolicy:
        """This policy, plus the hashes of ``html``'s inline scripts and styles."""
        directives = {name: list(sources) for name, sources in self.directives.items()}
        for tag, body in _INLINE_BLOCK.findall(html):
            sources = directives.setdefault(_DIRECTIVE_FOR[tag], [])
            expression = source_hash(body)
            # A hash would switch an 'unsafe-inline' in the same directive off.
            if expression not in sources and "'unsafe-inline'" not in sources:
                sources.append(expression)
        return ContentSecurityPolicy(directives)


API_POLICY = ContentSecurityPolicy({"default-src": ["'none'"], "frame-ancestors": ["'none'"]})


def html_page(html: str, policy: ContentSecurityPolicy) -> HTMLResponse:
    """An HTML answer under ``policy``, its inline blocks allowed by hash."""
    value = policy.allowing_inline(html).header_value()
    return HTMLResponse(html, headers={CSP_HEADER: value})


class WithPolicy:
    """ASGI wrapper: every answer of ``app`` (e.g. a ``StaticFiles`` mount of a page's
    assets) carries ``policy``."""

    def __init__(self, app: ASGIApp, policy: ContentSecurityPolicy) -> None:
        self._app = app
        self._header = (CSP_HEADER.encode(), policy.header_value().encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_policy(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), self._header]
            await send(message)

        await self._app(scope, receive, send_with_policy)


# Sent with every answer: the API serves JSON, never a page to frame or sniff.
# ``frame-ancestors`` does X-Frame-Options' job in every current browser, and a JSON
# answer is never rendered, so Referrer-Policy would have nothing to act on: two
# headers, as each one a worker writes costs it time on every warm read. A page sets
# a policy of its own (``html_page``), which this one does not replace.
SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (CSP_HEADER.encode(), API_POLICY.header_value().encode()),
)
_SECURITY_HEADER_NAMES = frozenset(name for name, _ in SECURITY_HEADERS)


def with_security_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """``headers`` plus each of ``SECURITY_HEADERS`` that the answer did not set (ASGI
    header names are lower-case)."""
    for name, _ in headers:
        if name in _SECURITY_HEADER_NAMES:  # rare: a page with its own policy
            present = {name for name, _ in headers}
            return [*headers, *(header for header in SECURITY_HEADERS if header[0] not in present)]
    return [*headers, *SECURITY_HEADERS]
