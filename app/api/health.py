"""Liveness, readiness and the Prometheus scrape endpoint."""

from __future__ import annotations

import time
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends
from starlette.responses import Response

from app.api.schemas import Health
from app.state import GatewayState, get_state
from app.store import STORE_ERRORS

router = APIRouter(tags=["operations"])
READY_GRACE_S = 60.0  # cold past this after start-up: marked overdue
StateDep = Annotated[GatewayState, Depends(get_state)]


@router.get("/healthz", response_model=Health, summary="The process is alive")
async def healthz() -> Response:
    return Response(orjson.dumps({"status": "ok", "checks": {}}), media_type="application/json")


@router.get(
    "/readyz",
    response_model=Health,
    summary="Ready for traffic: catalogue warm, background tasks running, store reachable",
    responses={503: {"model": Health, "description": "Not ready"}},
)
async def readyz(state: StateDep) -> Response:
    """503 while the catalogue is cold (starting, or never warmed: the upstream may be
    down) or while a background task the replica needs is down (crashed, restarting:
    ``app/supervisor.py``); 200 ``degraded`` while the store is unreachable (the
    replica serves what it holds, with its age)."""
    checks: dict[str, str] = {}
    try:
        await state.redis.ping()
        checks["store"] = "ok"
    except STORE_ERRORS:
        checks["store"] = "unreachable"
    catalogue = state.catalogue
    warm = catalogue.warmed
    checks["catalogue"] = "warm" if warm else "cold"
    if catalogue.degraded:
        checks["catalogue"] += ",degraded"
    down = state.supervisor.down()
    checks["tasks"] = "down:" + ",".join(down) if down else "ok"
    if not warm and time.monotonic() - state.started_at > READY_GRACE_S:
        checks["catalogue"] += ",overdue"  # past the start-up grace: worth a look
    if not warm or down:
        status, code = "unavailable", 503
    elif checks["store"] != "ok":
        status, code = "degraded", 200  # serves what it has, with its age
    else:
        status, code = "ok", 200
    body = orjson.dumps({"status": status, "checks": checks})
    return Response(body, status_code=code, media_type="application/json")


@router.get("/metrics", include_in_schema=False)
async def metrics(state: StateDep) -> Response:
    state.catalogue.report_ages()  # ages as of this scrape, not of the last sync
    payload, content_type = state.metrics.exposition()
    return Response(payload, media_type=content_type)
