"""The upstream's endpoints, under ``/api``, as the guide describes them.

Query parameter names are matched case-insensitively (``customerUID``, ``eventID``,
``redirectURL`` all work); the two link methods also read the same fields from a JSON
body, the query winning where both give one.
"""

from __future__ import annotations

import re
from datetime import date, datetime

import orjson
from fastapi import APIRouter, Request, Response

from app.simulator.events import JsonObject
from app.simulator.gate import Outcome, caller_error, error_outcome, serve
from app.simulator.links import LinkRequest, judge_link, theo_channel_id
from app.simulator.messages import link_body, live_stream_body
from app.simulator.sports import SPORTS
from app.simulator.state import SimState

_EVENT_DATE = re.compile(r"\d{2}-\d{2}-\d{4}")

router = APIRouter(prefix="/api")


def parse_event_date(raw: str) -> date | None:
    """``DD-MM-YYYY`` as a date; anything else None."""
    if not _EVENT_DATE.fullmatch(raw):
        return None
    try:
        return datetime.strptime(raw, "%d-%m-%Y").date()
    except ValueError:
        return None


async def read_fields(request: Request) -> dict[str, str]:
    """Query parameters and JSON body fields, keys lower-cased, query first."""
    fields: dict[str, str] = {}
    body = await request.body()
    if body.strip():
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            parsed = None
        if isinstance(parsed, dict):
            for key, value in parsed.items():
                if value is not None and not isinstance(value, dict | list):
                    fields[str(key).lower()] = str(value)
    query: dict[str, str] = {}
    for key, value in request.query_params.multi_items():
        query.setdefault(key.lower(), value)
    fields.update(query)
    return fields


def _forwarded_for(request: Request) -> str | None:
    return request.headers.get("x-forwarded-for")


def _log_params(request: Request, **params: str | None) -> dict[str, str]:
    logged = {name: value for name, value in params.items() if value is not None}
    forwarded = _forwarded_for(request)
    if forwarded is not None:
        logged["xForwardedFor"] = forwarded
    return logged


@router.get("/event/all/{customer_uid}/{event_date:path}")
async def event_all(
    customer_uid: str, event_date: str, request: Request, state: SimState
) -> Response:
    def handle() -> Outcome:
        code = caller_error(state, customer_uid, _forwarded_for(request))
        if code is not None:
            return error_outcome("event_all", code)
        day = parse_event_date(event_date)
        if day is None:
            return error_outcome("event_all", 400)
        now = state.now()
        events = [
            e.to_wire(state.schedule.status_of(e, now)) for e in state.schedule.events_on(day)
        ]
        return Outcome(200, {"events": events}, 200)

    params = _log_params(request, eventDate=event_date)
    return await serve(state, "event_all", params, handle)


@router.get("/event/open/{customer_uid}")
async def event_open(customer_uid: str, request: Request, state: SimState) -> Response:
    def handle() -> Outcome:
        code = caller_error(state, customer_uid, _forwarded_for(request))
        if code is not None:
            return error_outcome("event_open", code)
        now = state.now()
        events = [e.to_wire("O") for e in state.schedule.open_events(now)]
        return Outcome(200, {"events": events}, 200)

    return await serve(state, "event_open", _log_params(request), handle)


@router.get("/stream/{customer_uid}/{event_id}")
async def streams(customer_uid: str, event_id: str, request: Request, state: SimState) -> Response:
    def handle() -> Outcome:
        code = caller_error(state, customer_uid, _forwarded_for(request))
        if code is not None:
            return error_outcome("streams", code)
        event = state.schedule.find(event_id)
        if event is None:
            return error_outcome("streams", 401)
        body: JsonObject = {event.streams_key(): [s.to_wire() for s in event.streams]}
        return Outcome(200, body, 200)

    return await serve(state, "streams", _log_params(request, eventId=event_id), handle)


@router.get("/sport/all/{customer_uid}")
async def sports(customer_uid: str, request: Request, state: SimState) -> Response:
    def handle() -> Outcome:
        code = caller_error(state, customer_uid, _forwarded_for(request))
        if code is not None:
            return error_outcome("sports", code)
        body: JsonObject = {"Sports": [{"Code": code, "Name": name} for code, name in SPORTS]}
        return Outcome(200, body, 200)

    return await serve(state, "sports", _log_params(request), handle)


@router.post("/stream/link")
async def stream_link(request: Request, state: SimState) -> Response:
    fields = await read_fields(request)
    link = LinkRequest(
        user_id=fields.get("userid"),
        user_ip=fields.get("userip"),
        event_id=fields.get("eventid"),
        stream_name=fields.get("streamname"),
        redirect_url=fields.get("redirecturl"),
    )

    def handle() -> Outcome:
        code = caller_error(state, fields.get("customeruid", ""), _forwarded_for(request))
        if code is not None:
            return error_outcome("stream_link", code)
        event = state.schedule.find(link.event_id.strip()) if link.event_id else None
        status = None if event is None else state.schedule.status_of(event, state.now())
        viewer = state.geo.country_of(link.user_ip) if link.user_ip else None
        verdict = judge_link(link, event, status, viewer)
        pascal = verdict.event is not None and verdict.event.pascal_link
        if verdict.code != 200 or verdict.event is None or verdict.stream is None:
            return error_outcome("stream_link", verdict.code, pascal)
        fault = state.faults.take("stream_link", {"operation"})
        if fault is not None:
            return error_outcome("stream_link", fault.operation_code, pascal)
        minted = state.transactions.mint(verdict.event, verdict.stream, verdict.raw)
        if verdict.raw:
            body = link_body(pascal, 200, minted.encoded_ref, "STREAM", "XVI")
        else:
            url = state.config.player_link(minted.event_id, minted.transaction_id, minted.token)
            body = link_body(pascal, 200, url, "PLAYER", "IGM")
        return Outcome(200, body, 200)

    params = _log_params(
        request,
        userId=link.user_id,
        userIp=link.user_ip,
        eventId=link.event_id,
        streamName=link.stream_name,
        redirectUrl=link.redirect_url,
    )
    return await serve(state, "stream_link", params, handle)


@router.post("/liveStream")
async def live_stream(request: Request, state: SimState) -> Response:
    fields = await read_fields(request)
    ref = fields.get("encodedtransactionref")

    def handle() -> Outcome:
        code = caller_error(state, None, _forwarded_for(request))
        if code is not None:
            return error_outcome("live_stream", code)
        minted = state.transactions.resolve(ref or "")
        if minted is None:
            return error_outcome("live_stream", 308)
        fault = state.faults.take("live_stream", {"operation"})
        if fault is not None:
            return error_outcome("live_stream", fault.operation_code)
        if minted.is_ull:
            link = theo_channel_id(state.config.seed, minted.event_id, minted.stream_name)
            stream_type, cdn = 4, "EC"
        else:
            link, stream_type, cdn = state.config.hls_link(minted.event_id), 2, "AAA"
        body = live_stream_body(
            200, link, stream_type, cdn, minted.transaction_id, minted.token, minted.event_id
        )
        return Outcome(200, body, 200)

    params = _log_params(request, encodedTransactionRef=ref)
    return await serve(state, "live_stream", params, handle)
