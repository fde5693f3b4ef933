"""``GET /v1/events/live``: event status pushed as Server-Sent Events (sse-starlette).

The first message is a ``snapshot`` (the open list, and the watched events' records),
then one ``event`` message per change, as ``app/live/feed.py`` computes them once for
every subscriber of this replica. A reconnect with ``Last-Event-ID`` gets exactly the
messages it missed, or a fresh snapshot when this replica no longer holds them all.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from pydantic import StringConstraints
from sse_starlette import EventSourceResponse
from sse_starlette.sse import SendTimeoutError
from starlette.types import Receive, Scope, Send

from app.api.auth import authenticate
from app.api.problems import problem_responses
from app.catalogue.service import EVENT_ID
from app.errors import GatewayError
from app.live.feed import LiveFeed, LiveFull, Subscription, messages
from app.state import GatewayState, get_state

router = APIRouter(prefix="/v1", tags=["live"])
StateDep = Annotated[GatewayState, Depends(get_state)]

MAX_WATCHED = 50
FULL_RETRY_AFTER_S = 5.0

# A URL stays well under uvicorn's 64 KiB request line even percent-encoded; larger
# tokens go in the Authorization header (up to 8 KiB, app/identity/auth.py).
MAX_QUERY_TOKEN_CHARS = 4096
JWT_COMPACT = r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$"
WatchedId = Annotated[str, StringConstraints(pattern=EVENT_ID.pattern)]

STREAM_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "description": (
            "`text/event-stream`. Every message has an `id:` (send it back as "
            "`Last-Event-ID` to resume) and a `retry:`; a comment heartbeat every 15 s.\n\n"
            "- `event: snapshot`, data `{events: [Event...], fetchedAt, watched?: "
            "{eventId: Event|null}}`: first, and again whenever a resume is not possible\n"
            "- `event: event`, data `{eventId, change: opened|closed|voided|pending|"
            "removed|updated, event: Event|null}`: one per change\n"
            "- `event: session`, data `{sessionIds: [...], reason: evicted|"
            "ended_by_operator}`: this viewer's sessions that ended (with "
            "MAX_STREAMS_PER_USER): the player of such a session stops"
        ),
        "content": {
            "text/event-stream": {
                "schema": {"type": "string"},
                "example": (
                    'id: 1764878400123456-EV-1\nevent: event\ndata: {"eventId":"EV-1",'
                    '"change":"closed","event":{"eventId":"EV-1","eventStatusCode":"C"}}\n'
                    "retry: 3000\n\n"
                ),
            }
        },
    },
    **problem_responses("invalid_request", "unauthorized", "catalogue_warming", "live_full"),
}


class LiveStream(EventSourceResponse):
    """The SSE response; its subscription ends with it, however it ends."""

    def __init__(self, feed: LiveFeed, subscription: Subscription, send_timeout_s: float) -> None:
        super().__init__(
            messages(subscription),
            headers={"Cache-Control": "no-store"},
            # Heartbeats come from the feed, one timer for every subscriber, through
            # the stream and its send timeout: no ping task per subscriber.
            ping=0,
            send_timeout=send_timeout_s,
        )
        self._feed = feed
        self._subscription = subscription

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except SendTimeoutError:
            # The client stopped reading: the stream ends here (uvicorn closes the
            # connection, noting the unfinished response), no error to report.
            self._feed.dropped("send_timeout")
        finally:
            self._feed.unsubscribe(self._subscription)


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
    principal = await authenticate(state, request.headers, access_token=access_token)
    await state.catalogue.open_events()  # 503 catalogue_warming while cold
    feed = state.live
    try:
        subscription = feed.subscribe(
            last_event_id, event_ids or (), user=state.sessions.user_digest(principal.user_id)
        )
    except LiveFull:
        state.metrics.refusals.labels("live_full").inc()
        raise GatewayError(
            503,
            "live_full",
            "Too many live subscribers",
            "This replica holds as many live subscribers as it may.",
            retry_after_s=FULL_RETRY_AFTER_S,
        ) from None
    return LiveStream(feed, subscription, state.settings.sse_send_timeout_s)
