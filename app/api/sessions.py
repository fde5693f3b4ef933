"""Viewing sessions (``MAX_STREAMS_PER_USER``): a player keeps its session alive and
ends it when playback stops.

- ``POST /v1/sessions/{sessionId}/heartbeat``: alive for another ``SESSION_TTL_S``
  (send one every ``heartbeatEveryS`` from the minted answer);
- ``DELETE /v1/sessions/{sessionId}``: playback stopped, the slot is free at once.

Same credentials as links; a user reaches only their own sessions.
"""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Path
from starlette.responses import Response

from app.api.auth import Viewer
from app.api.links import NO_STORE
from app.api.problems import problem_responses
from app.catalogue.snapshot import iso_utc
from app.errors import GatewayError, problem
from app.state import GatewayState, get_state
from app.store import StoreUnavailable

router = APIRouter(prefix="/v1/sessions", tags=["sessions"])
StateDep = Annotated[GatewayState, Depends(get_state)]
SessionId = Annotated[str, Path(alias="sessionId", pattern=r"^[A-Za-z0-9_-]{8,64}$")]


def session_not_found() -> GatewayError:
    return problem("session_not_found")


def store_unavailable() -> GatewayError:
    return problem(
        "store_unavailable",
        "Sessions cannot be reached right now; keep playing and retry.",
        retry_after_s=5,
    )


@router.post(
    "/{sessionId}/heartbeat",
    summary="Keep a viewing session alive",
    responses=problem_responses(
        "invalid_request", "unauthorized", "session_not_found", "store_unavailable"
    ),
)
async def heartbeat(state: StateDep, principal: Viewer, session_id: SessionId) -> Response:
    ttl_s = state.settings.session_ttl_s
    try:
        expires_ms = await state.sessions.touch(principal.user_id, session_id, ttl_s)
    except StoreUnavailable:
        raise store_unavailable() from None
    if expires_ms is None:
        raise session_not_found()
    body = {
        "sessionId": session_id,
        "expiresAt": iso_utc(expires_ms / 1000),
        "heartbeatEveryS": ttl_s / 2,
    }
    return Response(orjson.dumps(body), media_type="application/json", headers=NO_STORE)


@router.delete(
    "/{sessionId}",
    status_code=204,
    summary="End a viewing session (playback stopped)",
    responses=problem_responses(
        "invalid_request", "unauthorized", "session_not_found", "store_unavailable"
    ),
)
async def end(state: StateDep, principal: Viewer, session_id: SessionId) -> Response:
    try:
        ended = await state.sessions.end(principal.user_id, session_id)
    except StoreUnavailable:
        raise store_unavailable() from None
    if not ended:
        raise session_not_found()
    state.metrics.sessions_ended.labels("stopped").inc()
    return Response(status_code=204, headers=NO_STORE)
