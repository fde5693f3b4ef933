"""Read endpoints: sports, events by date, open events, one event, its streams.

Every answer is a cached snapshot's bytes with ``ETag``, ``Age`` and a ``fetchedAt``
field; ``If-None-Match`` gets a 304.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Path, Query
from starlette.responses import Response

from app.api.problems import problem_responses
from app.api.responses import cached_response
from app.api.schemas import EventDetailOut, EventsOut, SportsOut, StreamsOut
from app.state import GatewayState, get_state

router = APIRouter(prefix="/v1", tags=["catalogue"])

StateDep = Annotated[GatewayState, Depends(get_state)]
IfNoneMatch = Annotated[str | None, Header(alias="If-None-Match", include_in_schema=False)]
EventId = Annotated[str, Path(min_length=1, max_length=128, description="ONEPlatform eventId")]


@router.get(
    "/sports",
    response_model=SportsOut,
    summary="All sports and their codes",
    responses=problem_responses("invalid_request", "upstream_unavailable"),
)
async def sports(state: StateDep, if_none_match: IfNoneMatch = None) -> Response:
    return cached_response(await state.catalogue.sports(), if_none_match)


@router.get(
    "/events",
    response_model=EventsOut,
    summary="Events on a date (UTC)",
    responses=problem_responses("invalid_request", "date_out_of_range", "catalogue_warming"),
)
async def events(
    state: StateDep,
    date: Annotated[date, Query(description="YYYY-MM-DD (UTC)")],
    sport: Annotated[str | None, Query(pattern=r"^[A-Za-z]{2,3}$")] = None,
    status: Annotated[Literal["P", "O", "C", "V"] | None, Query()] = None,
    if_none_match: IfNoneMatch = None,
) -> Response:
    served = await state.catalogue.events_on(date, sport.upper() if sport else None, status)
    return cached_response(served, if_none_match)


@router.get(
    "/events/open",
    response_model=EventsOut,
    summary="Events in progress now (links can be minted for these)",
    responses=problem_responses("invalid_request", "catalogue_warming"),
)
async def open_events(state: StateDep, if_none_match: IfNoneMatch = None) -> Response:
    return cached_response(await state.catalogue.open_events(), if_none_match)


@router.get(
    "/events/{eventId}",
    response_model=EventDetailOut,
    summary="One event, from the catalogue's index",
    responses=problem_responses("invalid_request", "event_not_found"),
)
async def event(
    state: StateDep,
    event_id: Annotated[str, Path(alias="eventId", min_length=1, max_length=128)],
    if_none_match: IfNoneMatch = None,
) -> Response:
    return cached_response(await state.catalogue.event(event_id), if_none_match)


@router.get(
    "/events/{eventId}/streams",
    response_model=StreamsOut,
    summary="The streams of an event",
    responses=problem_responses("invalid_request", "event_not_found", "upstream_unavailable"),
)
async def streams(
    state: StateDep,
    event_id: Annotated[str, Path(alias="eventId", min_length=1, max_length=128)],
    if_none_match: IfNoneMatch = None,
) -> Response:
    return cached_response(await state.catalogue.streams(event_id), if_none_match)
