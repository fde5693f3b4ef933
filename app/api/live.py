"""``GET /v1/events/live``: event status pushed as Server-Sent Events (the messages
encoded by sse-starlette, the stream sent by Starlette's ``StreamingResponse``).

The first message is a ``snapshot`` (the open list, and the watched events' records),
then one ``event`` message per change, as ``app/live/feed.py`` computes them once for
every subscriber of this replica. A reconnect with ``Last-Event-ID`` gets exactly the
messages it missed, or a fresh snapshot when this replica no longer holds them all.

A user may hold ``SSE_MAX_PER_USER`` streams and a viewer IP ``SSE_MAX_PER_IP``, across
the fleet (``app/live/caps.py``); one more is 429 ``user_live_limited`` or
``ip_live_limited`` with ``Retry-After``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from pydantic import BaseModel, StringConstraints
from pydantic.json_schema import models_json_schema
from starlette.responses import StreamingResponse
from starlette.types import Message, Receive, Scope, Send

from app.api.auth import CredentialsDep, authenticate
from app.api.peer import client_address
from app.api.problems import problem_responses
from app.api.schemas import LiveChange, LiveSessionsEnded, LiveSnapshot
from app.catalogue.service import EVENT_ID
from app.errors import GatewayError, problem
from app.live.caps import RETRY_AFTER_S as CAPPED_RETRY_AFTER_S
from app.live.caps import LiveCapped, Seat
from app.live.feed import LiveFeed, LiveFull
from app.live.subscription import Subscription, messages
from app.state import GatewayState, get_state

router = APIRouter(prefix="/v1", tags=["live"])
StateDep = Annotated[GatewayState, Depends(get_state)]

PATH = "/v1/events/live"
MAX_WATCHED = 50
FULL_RETRY_AFTER_S = 5.0

# A URL stays well under uvicorn's 64 KiB request line even percent-encoded; larger
# tokens go in the Authorization header (up to 8 KiB, app/identity/auth.py).
MAX_QUERY_TOKEN_CHARS = 4096
JWT_COMPACT = r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$"
WatchedId = Annotated[str, StringConstraints(pattern=EVENT_ID.pattern)]

# Each message as a schema-aware client reads it (OpenAPI 3.2's event streams, the form
# a 3.1 document gives one message of a stream in `schema`): `event`, `id`, `retry`,
# and `data`, a string of JSON whose schema depends on the message's type.
STREAM_MESSAGES: tuple[tuple[str, type[BaseModel], bool], ...] = (
    ("snapshot", LiveSnapshot, True),  # type, data's schema, whether it has an id
    ("event", LiveChange, True),
    ("session", LiveSessionsEnded, False),
)


def message_schema(kind: str, data: type[BaseModel], *, with_id: bool) -> dict[str, Any]:
    return {
        "type": "object",
        "title": f"{kind} message",
        "required": ["event", "data", *(["id"] if with_id else [])],
        "properties": {
            "event": {"const": kind},
            "id": {"type": "string", "description": "Send it back as Last-Event-ID"},
            "retry": {"type": "integer", "description": "Reconnection delay (ms)"},
            "data": {
                "type": "string",
                "contentMediaType": "application/json",
                "contentSchema": {"$ref": f"#/components/schemas/{data.__name__}"},
            },
        },
    }


STREAM_SCHEMA: dict[str, Any] = {
    "oneOf": [
        message_schema(kind, data, with_id=with_id) for kind, data, with_id in STREAM_MESSAGES
    ]
}


def document_stream(document: dict[str, Any]) -> None:
    """The stream's messages in ``document`` (an OpenAPI document) as they are: the
    per-message schema (in place of the string FastAPI merges in for a streaming
    response) and, in the components, the data schemas it refers to."""
    operation = document.get("paths", {}).get(PATH, {}).get("get")
    if operation is not None:
        media = operation["responses"]["200"]["content"]["text/event-stream"]
        media["schema"] = STREAM_SCHEMA
    _, definitions = models_json_schema(
        [(model, "serialization") for _, model, _ in STREAM_MESSAGES],
        ref_template="#/components/schemas/{model}",
    )
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name, definition in definitions.get("$defs", {}).items():
        schemas.setdefault(name, definition)


STREAM_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "description": (
            "`text/event-stream`, one message per schema below. Every message but "
            "`session` has an `id:` (send it back as `Last-Event-ID` to resume); each has "
            "a `retry:`; a comment heartbeat every 15 s.\n\n"
            "- `event: snapshot`, data `LiveSnapshot`: first, and again whenever a resume "
            "is not possible\n"
            "- `event: event`, data `LiveChange`: one per change (`opened`, `closed`, "
            "`voided`, `pending`, `removed`, `updated`)\n"
            "- `event: session`, data `LiveSessionsEnded`: this viewer's sessions that "
            "ended (with MAX_STREAMS_PER_USER): the player of such a session stops"
        ),
        "content": {
            "text/event-stream": {
                "schema": STREAM_SCHEMA,
                "example": (
                    'id: 1764878400123456-EV-1\nevent: event\ndata: {"eventId":"EV-1",'
                    '"change":"closed","event":{"eventId":"EV-1","eventStatusCode":"C"}}\n'
                    "retry: 3000\n\n"
                ),
            }
        },
    },
    **problem_responses(
        "invalid_request",
        "unauthorized",
        "user_live_limited",
        "ip_live_limited",
        "catalogue_warming",
        "live_full",
    ),
}


# What sse-starlette's EventSourceResponse sent; the content type comes from media_type.
STREAM_HEADERS = {
    "Cache-Control": "no-store",
    "Connection": "keep-alive",
    "X-Accel-Buffering": "no",
}


class LiveStream(StreamingResponse):
    """The SSE response: Starlette's ``StreamingResponse`` sends the messages the feed
    encoded (with sse-starlette), on the request's own task. Its subscription ends with
    it, however it ends.

    Not sse-starlette's ``EventSourceResponse``: it runs a task group per stream (the
    stream, a disconnect listener and a shutdown listener: 16 of the 42 KB traced per
    subscriber, with their cancel scopes and events), and ``StreamingResponse.__call__``
    one as well where the server's ASGI version is below 2.4 (uvicorn's HTTP is 2.3).
    Their jobs are done here without a task of their own:

    - each send, the first included, has ``send_timeout_s``: a client that stops reading
      is dropped;
    - a client that left is noticed at the next heartbeat (the feed asks the request
      then), or at once where the server fails a send to it (ASGI 2.4);
    - at shutdown the feed ends every stream (``LiveFeed.close``, on the server's exit
      signal), so each one finishes with the chunked body's last chunk.
    """

    media_type = "text/event-stream"

    def __init__(
        self,
        feed: LiveFeed,
        subscription: Subscription,
        send_timeout_s: float,
        ended: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """``ended``: called once the stream is over (gives its seat back)."""
        self._frames = messages(subscription)
        super().__init__(self._frames, headers=STREAM_HEADERS)
        self._feed = feed
        self._subscription = subscription
        self._send_timeout_s = send_timeout_s
        self._ended = ended

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def timed_send(message: Message) -> None:
            async with asyncio.timeout(self._send_timeout_s):
                await send(message)

        try:
            await self.stream_response(timed_send)
        except TimeoutError:
            # The client stopped reading: the stream ends here (uvicorn closes the
            # connection, noting the unfinished response), no error to report.
            self._feed.dropped("send_timeout")
        except OSError:
            pass  # an ASGI 2.4 server failed a send: the client has gone
        finally:
            self._feed.unsubscribe(self._subscription)
            await self._frames.aclose()
            if self._ended is not None:
                await self._ended()


@router.get(
    "/events/live",
    summary="Event status, pushed live (Server-Sent Events)",
    status_code=200,
    response_class=LiveStream,
    responses=STREAM_DOC,
)
async def live_events(
    request: Request,
    state: StateDep,
    presented: CredentialsDep,
    event_ids: Annotated[
        list[WatchedId] | None,
        Query(
            alias="eventId",
            max_length=MAX_WATCHED,
            description="Events whose current records the snapshot includes (repeatable)",
        ),
    ] = None,
    access_token: Annotated[
        str | None,
        Query(
            max_length=MAX_QUERY_TOKEN_CHARS,
            pattern=JWT_COMPACT,
            description="The bearer JWT, for EventSource (which cannot set headers)",
        ),
    ] = None,
    last_event_id: Annotated[
        str | None, Header(alias="Last-Event-ID", max_length=256, include_in_schema=False)
    ] = None,
) -> LiveStream:
    principal = await authenticate(state, presented, access_token=access_token)
    await state.catalogue.open_events()  # 503 catalogue_warming while cold
    feed = state.live
    caps = state.live_caps
    seat = await take_seat(state, principal.user_id, client_address(state, request))
    try:
        subscription = feed.subscribe(
            last_event_id,
            event_ids or (),
            user=state.sessions.user_digest(principal.user_id),
            client_gone=request.is_disconnected,
        )
    except LiveFull:
        await caps.release(seat)
        state.metrics.refusals.labels("live_full").inc()
        raise GatewayError(
            503,
            "live_full",
            "Too many live subscribers",
            "This replica holds as many live subscribers as it may.",
            retry_after_s=FULL_RETRY_AFTER_S,
        ) from None
    return LiveStream(
        feed,
        subscription,
        state.settings.sse_send_timeout_s,
        ended=None if seat is None else lambda: caps.release(seat),
    )


async def take_seat(state: GatewayState, user_id: str, ip: str) -> Seat | None:
    """The stream's seat in the per-user and per-IP counts, or 429."""
    try:
        return await state.live_caps.admit(user_id, ip)
    except LiveCapped as exc:
        state.metrics.refusals.labels(f"live_{exc.which}_limit").inc()
        settings = state.settings
        limit = settings.sse_max_per_user if exc.which == "user" else settings.sse_max_per_ip
        holder = "user" if exc.which == "user" else "address"
        raise problem(
            f"{exc.which}_live_limited",
            f"This {holder} holds as many live streams as it may ({limit}); close one first.",
            retry_after_s=CAPPED_RETRY_AFTER_S,
        ) from None
