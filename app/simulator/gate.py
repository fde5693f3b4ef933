"""What every upstream call passes through: rate limit, injected fault, call log.

``serve`` admits the call (or answers 429 and records a violation), applies the first
matching fault, runs the method's handler, and records the outcome. Handlers are plain
functions returning an ``Outcome``; they never see the limits or the log.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Final

import orjson
from fastapi import Response
from starlette.types import Receive, Scope, Send

from app.simulator.calllog import CallRecord
from app.simulator.events import JsonObject
from app.simulator.faults import ALL_KINDS, FaultKind
from app.simulator.limits import Method
from app.simulator.messages import link_body, live_stream_body, operation_error
from app.simulator.state import SimulatorState

JSON: Final = "application/json"
GARBAGE: Final = b"<html><body><h1>Service temporarily unavailable</h1></body></html>"
LINK_METHODS: Final[frozenset[Method]] = frozenset({"stream_link", "live_stream"})
# The link methods meet "operation" faults only after validation (see faults.py).
_LINK_PRE_KINDS: Final[frozenset[FaultKind]] = ALL_KINDS - {"operation"}


@dataclass(frozen=True, slots=True)
class Outcome:
    status: int
    body: JsonObject
    operation_code: int | None


class SimulatedConnectionReset(ConnectionResetError):
    """Raised after the response has started, so the server drops the connection."""


class DroppedConnection(Response):
    """Starts an answer that never completes; the ASGI server then closes the socket.

    ASGI has no way to close a connection without any answer, so the status line and
    headers (promising a body) go out and the body never does: clients see the peer
    close mid-response. Under ``httpx.ASGITransport`` the exception reaches the caller.
    """

    def __init__(self) -> None:
        super().__init__(status_code=200, media_type=JSON)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", JSON.encode()),
                    (b"content-length", b"1024"),
                    (b"connection", b"close"),
                ],
            }
        )
        raise SimulatedConnectionReset("connection dropped by an injected fault")


def json_response(status: int, body: object) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type=JSON)


def error_outcome(method: Method, code: int, pascal: bool = False) -> Outcome:
    """An operation error in the style of ``method`` (see messages.py)."""
    if method == "stream_link":
        return Outcome(200, link_body(pascal, code), code)
    if method == "live_stream":
        return Outcome(200, live_stream_body(code), code)
    return Outcome(400, operation_error(code), code)


def caller_error(
    state: SimulatorState, customer_uid: str | None, forwarded_for: str | None
) -> int | None:
    """300 for a wrong customerUid (None = the method takes none), 303 for a caller
    whose first ``X-Forwarded-For`` entry is not a whitelisted server IP."""
    config = state.config
    if customer_uid is not None and customer_uid.strip() != config.customer_uid:
        return 300
    first = (forwarded_for or "").split(",")[0].strip()
    if first not in config.server_ips:
        return 303
    return None


def _status_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Injected fault"


async def serve(
    state: SimulatorState,
    method: Method,
    params: Mapping[str, str],
    handle: Callable[[], Outcome],
) -> Response:
    """Run one upstream call of ``method`` through limits, faults, handler and log."""
    at, monotonic = state.now().timestamp(), state.monotonic()

    def record(status: int | None, code: int | None, violation: bool = False) -> None:
        state.calls.record(CallRecord(method, at, monotonic, status, code, dict(params), violation))

    if not state.limiter.admit(method, monotonic):
        record(429, 429, violation=True)
        return json_response(429, operation_error(429))
    kinds = _LINK_PRE_KINDS if method in LINK_METHODS else ALL_KINDS
    fault = state.faults.take(method, kinds)
    truncate = False
    if fault is not None:
        if fault.kind == "delay":
            await state.sleep(fault.delay_s)
        elif fault.kind == "status":
            record(fault.status, fault.status)
            body: JsonObject = {
                "message": _status_phrase(fault.status),
                "operationCode": fault.status,
            }
            return json_response(fault.status, body)
        elif fault.kind == "garbage":
            record(200, None)
            return Response(GARBAGE, 200, media_type=JSON)
        elif fault.kind == "empty":
            record(200, None)
            answer = handle().body
            emptied: JsonObject = {k: [] for k, v in answer.items() if isinstance(v, list)}
            return Response(orjson.dumps(emptied), 200, media_type=JSON)
        elif fault.kind == "operation":
            outcome = error_outcome(method, fault.operation_code)
            record(outcome.status, outcome.operation_code)
            return json_response(outcome.status, outcome.body)
        elif fault.kind == "reset":
            record(None, None)
            return DroppedConnection()
        else:
            truncate = True
    outcome = handle()
    content = orjson.dumps(outcome.body)
    if truncate:
        content = content[: len(content) // 2]
    record(outcome.status, outcome.operation_code)
    return Response(content, status_code=outcome.status, media_type=JSON)
