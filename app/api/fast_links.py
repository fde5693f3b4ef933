"""Link requests answered before routing.

``POST /v1/events/{eventId}/links`` is the endpoint with real traffic behind it, and
the router, the dependency solver and four layers of middleware cost a link request
a quarter of its CPU time. A request this layer takes as plainly well-formed (JSON
``Content-Type`` and ``Content-Length`` within the limit, no cross-origin ``Origin``
when CORS is on, headers within their limit, a body that validates as
``LinkRequestIn``) is answered here with the same code as the routed endpoint
(``mint_answer``), the same problem+json answers, headers, access line and metrics.
Anything else goes on to the routed stack with its body replayed, so the routed
endpoint's answers (a 413, a 422 listing the fields at fault, CORS) stay the only ones.
"""

from __future__ import annotations

from collections.abc import Iterator

from starlette.datastructures import Headers
from starlette.types import Message, Receive, Scope, Send

from app.api.links import NO_STORE, mint_answer
from app.api.problems import internal_error
from app.api.schemas import LinkRequestIn
from app.errors import GatewayError, problem_response
from app.observability.requests import SECURITY_HEADERS, AccessRecorder
from app.state import GatewayState

ROUTE = "/v1/events/{eventId}/links"
_PREFIX = "/v1/events/"
_SUFFIX = "/links"
_MAX_EVENT_ID = 128  # as the route's path parameter
_JSON_TYPES = (b"application/json", b"application/json; charset=utf-8")
_ANSWER_HEADERS = (  # as the routed endpoint's Response(media_type=..., headers=NO_STORE)
    (b"content-type", b"application/json"),
    (b"cache-control", NO_STORE["Cache-Control"].encode()),
)


def _event_id(path: str) -> str | None:
    if not (path.startswith(_PREFIX) and path.endswith(_SUFFIX)):
        return None
    event_id = path[len(_PREFIX) : -len(_SUFFIX)]
    if not 0 < len(event_id) <= _MAX_EVENT_ID or "/" in event_id:
        return None
    return event_id


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """A ``receive`` that gives back the messages already read, then the rest."""
    pending: Iterator[Message] = iter(messages)

    async def replayed() -> Message:
        for message in pending:
            return message
        return await receive()

    return replayed


class DirectLinks:
    def __init__(
        self,
        recorder: AccessRecorder,
        *,
        cors_enabled: bool,
        max_header_bytes: int,
        max_body_bytes: int,
    ) -> None:
        self._recorder = recorder
        self._cors_enabled = cors_enabled
        self._max_header_bytes = max_header_bytes
        self._max_body_bytes = max_body_bytes

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> Receive | None:
        """None when the request was answered here, else the ``receive`` the routed
        stack must use (the body may have been read already)."""
        if scope["method"] != "POST":
            return receive
        event_id = _event_id(scope["path"])
        state = scope.get("state")
        gateway = state.get("gateway") if state else None
        if event_id is None or gateway is None or not self._plain(scope):
            return receive
        messages: list[Message] = []
        body = b""
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                return _replay(messages, receive)  # the client left: the stack sees it
            body += message.get("body", b"")
            if len(body) > self._max_body_bytes:
                return _replay(messages, receive)
            if not message.get("more_body", False):
                break
        try:
            request = LinkRequestIn.model_validate_json(body)
        except ValueError:  # pydantic's ValidationError: the routed 422 names the fields
            return _replay(messages, receive)
        await self._answer(scope, receive, send, gateway, event_id, request)
        return None

    def _plain(self, scope: Scope) -> bool:
        size = 0
        length = content_type = None
        for name, value in scope["headers"]:
            size += len(name) + len(value)
            if name == b"content-length":
                length = value
            elif name == b"content-type":
                content_type = value
            elif name == b"transfer-encoding" or (name == b"origin" and self._cors_enabled):
                return False  # a chunked body, a cross-origin request: the routed stack
        return (
            size <= self._max_header_bytes
            and length is not None
            and length.isdigit()
            and int(length) <= self._max_body_bytes
            and content_type is not None
            and content_type.lower() in _JSON_TYPES
        )

    async def _answer(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        gateway: GatewayState,
        event_id: str,
        request: LinkRequestIn,
    ) -> None:
        facts, token, started = self._recorder.begin(scope)
        status = 500
        extra = [(b"x-request-id", facts.request_id.encode()), *SECURITY_HEADERS]
        if self._cors_enabled:  # as CORSMiddleware answers a request without Origin
            extra.append((b"vary", b"Origin"))

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        try:
            client = scope.get("client")
            peer = client[0] if client else None
            try:
                answer = await mint_answer(gateway, peer, Headers(scope=scope), event_id, request)
            except GatewayError as exc:
                await problem_response(exc)(scope, receive, send_with_id)
                return
            except Exception as exc:  # as the routed stack's last handler: logged, 500
                await internal_error(exc)(scope, receive, send_with_id)
                return
            headers = [(b"content-length", str(len(answer)).encode()), *_ANSWER_HEADERS, *extra]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            status = 200
            await send({"type": "http.response.body", "body": answer})
        finally:
            self._recorder.end(scope, facts, token, started, status, route=ROUTE)
