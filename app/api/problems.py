"""problem+json everywhere: the handlers for our own errors, validation errors,
unknown routes and anything unexpected (logged, never shown), and the ``responses=``
blocks that document each route's problems in the OpenAPI document."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from app.errors import PROBLEM_JSON, PROBLEM_TYPE_BASE, GatewayError, problem_response

log = structlog.get_logger(__name__)

# status -> (code, title, detail) used as the example for that status
EXAMPLES: dict[str, tuple[int, str, str, str]] = {
    "invalid_request": (422, "invalid_request", "Invalid request", "date: invalid date format"),
    "date_out_of_range": (
        422,
        "date_out_of_range",
        "Date out of range",
        "Events are served for 2026-11-21 to 2026-11-29.",
    ),
    "event_not_found": (
        404,
        "event_not_found",
        "Event not found",
        "The catalogue has no event with this id.",
    ),
    "session_not_found": (
        404,
        "session_not_found",
        "Session not found",
        "No live session with this id for this user: it ended, expired or was replaced.",
    ),
    "too_many_streams": (
        409,
        "too_many_streams",
        "Too many streams",
        "This user already watches as many streams as allowed; stop one first.",
    ),
    "watch_rule_denied": (
        403,
        "watch_rule_denied",
        "Not allowed to watch",
        "The operator's watch rules do not let this viewer watch this event.",
    ),
    "refresh_not_due": (
        503,
        "refresh_not_due",
        "No budget slot yet",
        "The fleet's event budget gave no slot in time; ask again later.",
    ),
    "catalogue_warming": (
        503,
        "catalogue_warming",
        "Not fetched yet",
        "This list has not been fetched from ONEPlatform yet; it is queued.",
    ),
    "live_full": (
        503,
        "live_full",
        "Too many live subscribers",
        "This replica holds as many live subscribers as it may.",
    ),
    "upstream_unavailable": (
        503,
        "upstream_unavailable",
        "Upstream unavailable",
        "ONEPlatform could not serve streams: HTTP 503.",
    ),
    "unauthorized": (
        401,
        "unauthorized",
        "Unauthorized",
        "A bearer token or an API key is required.",
    ),
    "event_pending": (
        409,
        "event_pending",
        "Event has not started",
        "Links are minted only for events in progress.",
    ),
    "event_closed": (
        410,
        "event_closed",
        "Event is over",
        "Links are minted only for events in progress.",
    ),
    "geo_blocked": (
        403,
        "geo_blocked",
        "Not available in your region",
        "The event is not licensed for GB.",
    ),
    "stream_not_found": (
        404,
        "stream_not_found",
        "Stream not found",
        "The event has no stream named ULL.",
    ),
    "invalid_redirect_url": (
        422,
        "invalid_redirect_url",
        "Invalid redirect URL",
        "redirectUrl must be an absolute http(s) URL on an allowed host.",
    ),
    "rate_limited": (
        429,
        "rate_limited",
        "Too many link requests",
        "The fleet's link budget is spent for now.",
    ),
    "body_too_large": (
        413,
        "body_too_large",
        "Body too large",
        "Request bodies are limited to 16384 bytes.",
    ),
    "upstream_error": (
        502,
        "provider_failure",
        "Stream provider failure",
        "Unable to get stream link from external provider",
    ),
}

_OPERATION_CODES = {
    "event_not_found": 401,
    "event_pending": 402,
    "event_closed": 403,
    "geo_blocked": 306,
    "stream_not_found": 304,
    "invalid_redirect_url": 305,
    "upstream_error": 307,
}


def problem_responses(*names: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the named problems, grouped by status, with examples."""
    grouped: dict[int, dict[str, Any]] = {}
    for name in names:
        status, code, title, detail = EXAMPLES[name]
        example: dict[str, Any] = {
            "type": PROBLEM_TYPE_BASE + code,
            "title": title,
            "status": status,
            "detail": detail,
            "code": code,
        }
        if name in _OPERATION_CODES:
            example["operationCode"] = _OPERATION_CODES[name]
        entry = grouped.setdefault(
            status,
            {
                "description": title,
                "content": {
                    PROBLEM_JSON: {
                        "schema": {"$ref": "#/components/schemas/Problem"},
                        "examples": {},
                    }
                },
            },
        )
        entry["content"][PROBLEM_JSON]["examples"][name] = {"value": example}
    return dict(grouped.items())


async def _gateway_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GatewayError)
    return problem_response(exc)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems = [
        {
            "field": ".".join(str(part) for part in error.get("loc", ())),
            "message": str(error.get("msg", "")),
        }
        for error in exc.errors()
    ][:20]
    detail = "; ".join(f"{p['field']}: {p['message']}" for p in problems) or "invalid request"
    error = GatewayError(
        422, "invalid_request", "Invalid request", detail[:500], extra={"errors": problems}
    )
    return problem_response(error)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400:
        # FastAPI's answer to a body it could not decode (not UTF-8, nested too deep):
        # the same problem as a body that is not JSON, which it reports as a 422.
        error = GatewayError(
            422,
            "invalid_request",
            "Invalid request",
            "body: the request body could not be read as JSON",
            extra={"errors": [{"field": "body", "message": "could not be read as JSON"}]},
        )
        return problem_response(error)
    code = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}.get(
        exc.status_code, "http_error"
    )
    title = {404: "Not found", 405: "Method not allowed", 413: "Body too large"}.get(
        exc.status_code, "HTTP error"
    )
    error = GatewayError(exc.status_code, code, title, title + ".")
    return problem_response(error, headers=dict(exc.headers or {}))


def internal_error(exc: Exception) -> Response:
    """The 500 for anything unexpected: logged once with its traceback (scrubbed by the
    redactor like every line), never shown."""
    log.error("unhandled_error", error_type=type(exc).__name__, exc_info=exc)
    error = GatewayError(
        500,
        "internal_error",
        "Internal error",
        "The gateway failed to answer; the error was logged.",
    )
    return problem_response(error)


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(GatewayError, _gateway_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
