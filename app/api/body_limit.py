"""Refuse request bodies over a size, as problem+json (413), without reading them whole;
and header sets over a size (431).

A declared ``Content-Length`` over the limit is refused before the app runs; a body
without one (chunked) is counted as it arrives and refused once it passes the limit.
uvicorn's httptools parser takes headers of any size (a 1 MB header, 10,000 headers):
those past ``max_header_bytes`` are refused before any of them is read (JWTs, API
keys, ``X-Forwarded-For``). Runs inside the request observer, so refusals are logged
and counted like any answer; the warm read path, inside it, never sees such requests.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import GatewayError, problem, problem_response


def body_too_large(limit: int) -> GatewayError:
    return problem("body_too_large", f"Request bodies are limited to {limit} bytes.")


def headers_too_large(limit: int) -> GatewayError:
    return problem("headers_too_large", f"Request headers are limited to {limit} bytes in all.")


class BodyLimit:
    def __init__(
        self, app: ASGIApp, *, max_bytes: int, max_header_bytes: int | None = None
    ) -> None:
        self._app = app
        self._max_bytes = max_bytes
        self._max_header_bytes = max_header_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        limit = self._max_header_bytes
        size = 0
        length: bytes | None = None
        chunked = False
        for name, value in scope["headers"]:  # one pass: their size, and the body's
            size += len(name) + len(value)
            if name == b"content-length":
                length = value
            elif name == b"transfer-encoding":
                chunked = True
        if limit is not None and size > limit:
            await problem_response(headers_too_large(limit))(scope, receive, send)
            return
        if length is not None and (not length.isdigit() or int(length) > self._max_bytes):
            await problem_response(body_too_large(self._max_bytes))(scope, receive, send)
            return
        if not chunked:  # no body past its declared length (HTTP/1.1 frames it so)
            await self._app(scope, receive, send)
            return
        received = 0
        refused = False

        async def counted() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self._max_bytes:
                    # Answer now; the app then sees the client gone, and anything it
                    # still sends is dropped (it cannot be told apart from a parse error).
                    refused = True
                    await problem_response(body_too_large(self._max_bytes))(scope, receive, send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not refused:
                await send(message)

        await self._app(scope, counted, guarded_send)
