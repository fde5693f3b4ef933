"""Read endpoints: sports, events by date, open events, one event, its streams.

Every answer is a cached snapshot's bytes with ``ETag``, ``Age`` and a ``fetchedAt``
field; ``If-None-Match`` gets a 304.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.responses import Response

from app.api.problems import problem_responses
from app.api.responses import SnapshotResponse, render_snapshot
from app.api.schemas import EventDetailOut, EventsOut, SportsOut, StreamsOut
from app.catalogue.service import SnapshotRead
from app.errors import UPSTREAM_CODES
from app.observability.context import current_summary
from app.state import GatewayState, get_state

router = APIRouter(prefix="/v1", tags=["catalogue"])
Endpoint = TypeVar("Endpoint", bound=Callable[..., Awaitable[Response]])

StateDep = Annotated[GatewayState, Depends(get_state)]


def read_route(path: str, **documented: Any) -> Callable[[Endpoint], Endpoint]:
    """A GET route, documented, and the same endpoint for HEAD (not documented)."""

    def register(endpoint: Endpoint) -> Endpoint:
        router.add_api_route(path, endpoint, methods=["GET"], **documented)
        router.add_api_route(path, endpoint, methods=["HEAD"], include_in_schema=False)
        return endpoint

    return register


def cached_response(served: SnapshotRead, request: Request) -> Response:
    """The snapshot answer, rendered as the warm read path renders it."""
    summary = current_summary()
    if summary is not None:
        summary.cache = served.state
    rendered = render_snapshot(
        served.snapshot,
        method=request.method,
        if_none_match=request.headers.get("if-none-match"),
        now=time.time(),
    )
    return SnapshotResponse(rendered)


@read_route(
    "/sports",
    response_model=SportsOut,
    summary="All sports and their codes",
    responses=problem_responses(*UPSTREAM_CODES),
)
async def sports(state: StateDep, request: Request) -> Response:
    return cached_response(await state.catalogue.sports(), request)


@read_route(
    "/events",
    response_model=EventsOut,
    summary="Events on a date (UTC)",
    responses=problem_responses("invalid_request", "date_out_of_range", "catalogue_warming"),
)
async def events(
    state: StateDep,
    request: Request,
    date: Annotated[date, Query(description="YYYY-MM-DD (UTC)")],
    sport: Annotated[str | None, Query(pattern=r"^[A-Za-z]{2,3}$")] = None,
    status: Annotated[Literal["P", "O", "C", "V"] | None, Query()] = None,
) -> Response:
    served = await state.catalogue.events_on(date, sport.upper() if sport else None, status)
    return cached_response(served, request)


@read_route(
    "/events/open",
    response_model=EventsOut,
    summary="Events in progress now (links can be minted for these)",
    responses=problem_responses("invalid_request", "catalogue_warming"),
)
async def open_events(state: StateDep, request: Request) -> Response:
    return cached_response(await state.catalogue.open_events(), request)


@read_route(
    "/events/{eventId}",
    response_model=EventDetailOut,
    summary="One event, from the catalogue's index",
    responses=problem_responses("invalid_request", "event_not_found", "catalogue_warming"),
)
async def event(
    state: StateDep,
    event_id: Annotated[str, Path(alias="eventId", min_length=1, max_length=128)],
    request: Request,
) -> Response:
    return cached_response(await state.catalogue.event(event_id), request)


@read_route(
    "/events/{eventId}/streams",
    response_model=StreamsOut,
    summary="The streams of an event",
    responses=problem_responses(
        "invalid_request", "event_not_found", "catalogue_warming", *UPSTREAM_CODES
    ),
)
async def streams(
    state: StateDep,
    event_id: Annotated[str, Path(alias="eventId", min_length=1, max_length=128)],
    request: Request,
) -> Response:
    return cached_response(await state.catalogue.streams(event_id), request)
