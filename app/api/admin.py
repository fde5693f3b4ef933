"""``/admin``: the operator's controls, behind their own keys (``X-Admin-Key``).

- ``GET /admin/state``: the refresh lease and gates, the link budget settings, the
  lists this replica holds and their ages;
- ``POST /admin/refresh``: fetch the open list or a date's list now; the request
  waits for the fleet gate's next slot like any refresh (never past 0.1 req/s);
- ``DELETE /admin/events/{eventId}/streams``: drop an event's cached streams.

Every request passes ``app/api/admin_guard.py`` (the key, the lockout after wrong keys,
the audit record). The shipped load balancer does not route ``/admin`` at all: it is
reached on a replica's own port, from the internal network (``docs/deployment.md``).

Left out of the public OpenAPI document unless ``ADMIN_IN_OPENAPI=true``.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Path
from pydantic import Field
from starlette.responses import Response

from app.api.admin_guard import guarded_admin
from app.api.problems import problem_responses
from app.api.schemas import Schema
from app.api.sessions import session_not_found
from app.catalogue.service import valid_event_id
from app.catalogue.snapshot import iso_utc
from app.errors import GatewayError
from app.state import GatewayState
from app.store import StoreUnavailable
from app.upstream.client import EVENT_ALL, EVENT_OPEN

NO_STORE = {"Cache-Control": "no-store"}


AdminDep = Annotated[GatewayState, Depends(guarded_admin)]


def router_for(include_in_schema: bool) -> APIRouter:
    router = APIRouter(
        prefix="/admin",
        tags=["admin"],
        include_in_schema=include_in_schema,
        responses=problem_responses("unauthorized", "admin_locked_out"),
    )
    router.add_api_route(
        "/state",
        read_state,
        methods=["GET"],
        summary="Budget, lease, lists",
        responses=problem_responses("store_unavailable"),
    )
    router.add_api_route(
        "/refresh",
        force_refresh,
        methods=["POST"],
        summary="Refresh the open list or a date's list now, within the event budget",
        responses=problem_responses(
            "invalid_request", "date_out_of_range", "refresh_not_due", "store_unavailable"
        ),
    )
    router.add_api_route(
        "/users/{userId}/sessions",
        user_sessions,
        methods=["GET"],
        summary="A user's viewing sessions",
        responses=problem_responses("invalid_request", "store_unavailable"),
    )
    router.add_api_route(
        "/users/{userId}/sessions/{sessionId}",
        end_user_session,
        methods=["DELETE"],
        status_code=204,
        summary="End one of a user's viewing sessions (its player is told on the live channel)",
        responses=problem_responses("invalid_request", "session_not_found", "store_unavailable"),
    )
    router.add_api_route(
        "/events/{eventId}/streams",
        purge_streams,
        methods=["DELETE"],
        status_code=204,
        summary="Drop an event's cached streams",
        responses=problem_responses("invalid_request", "event_not_found", "store_unavailable"),
    )
    return router


def _json(payload: object, status: int = 200) -> Response:
    return Response(
        orjson.dumps(payload), status_code=status, media_type="application/json", headers=NO_STORE
    )


def _unavailable() -> GatewayError:
    return GatewayError(
        503,
        "store_unavailable",
        "Store unavailable",
        "The shared store cannot be reached right now.",
        retry_after_s=5,
    )


async def read_state(state: AdminDep) -> Response:
    catalogue = state.catalogue
    refresher = catalogue.refresher
    try:
        holder = await refresher.lease_holder()
        gates = {m: await catalogue.next_slot_in(m) for m in (EVENT_OPEN, EVENT_ALL)}
    except StoreUnavailable:
        raise _unavailable() from None
    settings = state.settings
    return _json(
        {
            "replica": state.replica_id,
            "leader": refresher.is_leader,
            "leaseHolder": holder,
            "storeDegraded": catalogue.degraded,
            "eventBudget": {
                "intervalS": settings.events_min_interval_s,
                "nextSlotInS": gates,
            },
            "linkBudget": {
                "ratePerS": settings.link_rate_per_s,
                "burst": settings.link_burst,
                "queueHoldS": settings.link_queue_hold_s,
                "queueGraceS": settings.link_queue_grace_s,
                "userRatePerMin": settings.link_user_rate_per_min,
                "fallback": settings.link_fallback,
            },
            "lists": [item.as_json() for item in catalogue.list_states()],
        }
    )


class RefreshIn(Schema):
    """``{"list": "open"}`` or ``{"date": "YYYY-MM-DD"}``."""

    which: str | None = Field(default=None, alias="list", pattern="^open$")
    day: dt.date | None = Field(default=None, alias="date")
    wait_s: float = Field(
        default=30.0, gt=0, le=120, description="How long to wait for a budget slot"
    )


async def force_refresh(state: AdminDep, body: RefreshIn) -> Response:
    if (body.which is None) == (body.day is None):
        raise GatewayError(
            422, "invalid_request", "Invalid request", 'Give either "list": "open" or "date".'
        )
    if body.day is not None:
        state.catalogue.check_date(body.day)
    started = time.monotonic()
    try:
        fetched = await state.catalogue.force_refresh(body.day, wait_s=body.wait_s)
    except StoreUnavailable:
        raise _unavailable() from None
    if not fetched:
        raise GatewayError(
            503,
            "refresh_not_due",
            "No budget slot yet",
            "The fleet's event budget gave no slot in time; ask again later.",
            retry_after_s=state.settings.events_min_interval_s,
        )
    name = "open" if body.day is None else f"events:{body.day.isoformat()}"
    listed = next((s.as_json() for s in state.catalogue.list_states() if s.name == name), None)
    return _json(
        {"refreshed": name, "waitedS": round(time.monotonic() - started, 3), "list": listed}
    )


async def purge_streams(
    state: AdminDep,
    event_id: Annotated[str, Path(alias="eventId", min_length=1, max_length=128)],
) -> Response:
    if not valid_event_id(event_id):
        raise GatewayError(404, "event_not_found", "Event not found", "No such event id.")
    try:
        await state.catalogue.purge_streams(event_id)
    except StoreUnavailable:
        raise _unavailable() from None
    return Response(status_code=204, headers=NO_STORE)


UserId = Annotated[str, Path(alias="userId", min_length=1, max_length=256)]


async def user_sessions(state: AdminDep, user_id: UserId) -> Response:
    try:
        sessions = await state.sessions.of_user(user_id)
    except StoreUnavailable:
        raise _unavailable() from None
    now_ms = time.time() * 1000
    return _json(
        {
            "sessions": [
                {
                    "sessionId": s.session_id,
                    "expiresAt": iso_utc(s.expires_at_ms / 1000),
                    "live": s.expires_at_ms > now_ms,
                    **s.about,
                }
                for s in sessions
            ]
        }
    )


async def end_user_session(
    state: AdminDep,
    user_id: UserId,
    session_id: Annotated[str, Path(alias="sessionId", min_length=1, max_length=64)],
) -> Response:
    try:
        ended = await state.sessions.end(user_id, session_id)
        if ended:
            await state.sessions.announce(user_id, (session_id,), "ended_by_operator")
    except StoreUnavailable:
        raise _unavailable() from None
    if not ended:
        raise session_not_found()
    state.metrics.sessions_ended.labels("ended_by_operator").inc()
    return Response(status_code=204, headers=NO_STORE)
