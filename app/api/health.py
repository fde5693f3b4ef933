"""Liveness, readiness and the Prometheus scrape endpoint."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Depends
from starlette.responses import Response

from app.api.schemas import Health
from app.state import GatewayState, get_state
from app.store import STORE_ERRORS

router = APIRouter(tags=["operations"])
StateDep = Annotated[GatewayState, Depends(get_state)]


@router.get("/healthz", response_model=Health, summary="The process is alive")
async def healthz() -> Response:
    return Response(orjson.dumps({"status": "ok", "checks": {}}), media_type="application/json")


@router.get(
    "/readyz",
    response_model=Health,
    summary="Ready for traffic: store reachable (when configured) and catalogue warmed",
    responses={503: {"model": Health, "description": "Not ready"}},
)
async def readyz(state: StateDep) -> Response:
    checks: dict[str, str] = {}
    try:
        await state.redis.ping()
        checks["store"] = "ok"
    except STORE_ERRORS:
        checks["store"] = "unreachable"
    catalogue = state.catalogue
    checks["catalogue"] = "warm" if catalogue.warmed else "cold"
    if catalogue.degraded:
        checks["catalogue"] += ",degraded"
    # A replica that cannot reach the store still serves what it has: degraded, not down.
    if checks["store"] != "ok":
        status, code = ("degraded", 200) if catalogue.warmed else ("unavailable", 503)
    else:
        status, code = ("ok", 200) if catalogue.warmed else ("unavailable", 503)
    body = orjson.dumps({"status": status, "checks": checks})
    return Response(body, status_code=code, media_type="application/json")


@router.get("/metrics", include_in_schema=False)
async def metrics(state: StateDep) -> Response:
    state.catalogue.report_ages()  # ages as of this scrape, not of the last sync
    payload, content_type = state.metrics.exposition()
    return Response(payload, media_type=content_type)
