"""The control API under ``/_sim/`` (tests and demos): call log, statistics, reset,
pinned statuses, scenarios, faults, the geo table and the limits. No customerUid."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, HTTPException, Response
from pydantic import BaseModel, ConfigDict, Field, JsonValue

from app.simulator.events import JsonObject
from app.simulator.faults import Fault, FaultKind, FaultMethod
from app.simulator.gate import json_response
from app.simulator.schedule import ScenarioError, build_scenario
from app.simulator.state import SimState

router = APIRouter(prefix="/_sim")


class StatusPin(BaseModel):
    status: Literal["P", "O", "C", "V"]


class ScenarioIn(BaseModel):
    events: list[dict[str, JsonValue]]
    streams: dict[str, list[dict[str, JsonValue]]] = Field(default_factory=dict)


class FaultIn(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    method: FaultMethod
    kind: FaultKind
    status: int = Field(default=503, ge=100, le=599)
    delay_s: float = Field(default=1.0, alias="delayS", ge=0)
    operation_code: int = Field(default=307, alias="operationCode")
    count: int | None = Field(default=None, ge=1)


class LimitsIn(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    events_min_interval_s: float | None = Field(default=None, alias="eventsMinIntervalS", ge=0)
    link_rate_per_s: int | None = Field(default=None, alias="linkRatePerS", ge=0)


@router.get("/calls")
async def calls(state: SimState, method: str | None = None) -> Response:
    return json_response(200, [r.to_json() for r in state.calls.records(method)])


@router.get("/stats")
async def stats(state: SimState) -> Response:
    return json_response(200, state.calls.stats())


@router.post("/reset")
async def reset(state: SimState) -> Response:
    state.reset()
    return json_response(200, {"reset": True})


@router.post("/events/{event_id}/status")
async def pin_status(event_id: str, pin: StatusPin, state: SimState) -> Response:
    if not state.schedule.pin(event_id, pin.status):
        raise HTTPException(status_code=404, detail=f"no event {event_id!r}")
    return json_response(200, {"eventId": event_id, "status": pin.status})


@router.post("/scenario")
async def scenario(body: ScenarioIn, state: SimState) -> Response:
    try:
        loaded = build_scenario(state.config.seed, body.events, body.streams)
    except ScenarioError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from exc
    state.schedule.load_scenario(loaded)
    return json_response(200, {"events": len(loaded.events)})


@router.get("/faults")
async def faults(state: SimState) -> Response:
    return json_response(200, [f.to_json() for f in state.faults.active()])


@router.post("/faults")
async def add_fault(body: FaultIn, state: SimState) -> Response:
    fault = Fault(
        method=body.method,
        kind=body.kind,
        status=body.status,
        delay_s=body.delay_s,
        operation_code=body.operation_code,
        count=body.count,
    )
    state.faults.add(fault)
    return json_response(200, fault.to_json())


@router.delete("/faults")
async def clear_faults(state: SimState) -> Response:
    state.faults.clear()
    return json_response(200, {"cleared": True})


@router.post("/ip-countries")
async def ip_countries(body: dict[str, str], state: SimState) -> Response:
    try:
        state.geo.add(body.items())
    except ValueError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from exc
    return json_response(200, {"added": len(body)})


@router.post("/config")
async def configure(body: LimitsIn, state: SimState) -> Response:
    limits = state.limiter.limits
    if body.events_min_interval_s is not None:
        limits.events_min_interval_s = body.events_min_interval_s
    if body.link_rate_per_s is not None:
        limits.link_rate_per_s = body.link_rate_per_s
    current: JsonObject = {
        "eventsMinIntervalS": limits.events_min_interval_s,
        "linkRatePerS": limits.link_rate_per_s,
    }
    return json_response(200, current)
