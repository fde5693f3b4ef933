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

from app.errors import PROBLEM_JSON, PROBLEM_TYPE_BASE, GatewayError, problem, problem_response
from app.problem_types import PROBLEMS, ProblemType

log = structlog.get_logger(__name__)


def problem_responses(*codes: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the problems with these codes, grouped by status, each
    with its example made from the table (``app.problem_types``)."""
    grouped: dict[int, dict[str, Any]] = {}
    for code in codes:
        kind = PROBLEMS[code]
        for status in kind.statuses:
            entry = grouped.setdefault(
                status,
                {
                    "description": kind.title,
                    "content": {
                        PROBLEM_JSON: {
                            "schema": {"$ref": "#/components/schemas/Problem"},
                            "examples": {},
                        }
                    },
                },
            )
            entry["content"][PROBLEM_JSON]["examples"][code] = {"value": example(kind, status)}
    return dict(grouped.items())


def example(kind: ProblemType, status: int) -> dict[str, Any]:
    """The problem+json a client gets for ``kind``, with the table's detail."""
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + kind.code,
        "title": kind.title,
        "status": status,
        "detail": kind.detail,
        "code": kind.code,
    }
    if kind.operation_code is not None:
        body["operationCode"] = kind.operation_code
    return body


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
    error = problem("invalid_request", detail[:500], extra={"errors": problems})
    return problem_response(error)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400:
        # FastAPI's answer to a body it could not decode (not UTF-8, nested too deep):
        # the same problem as a body that is not JSON, which it reports as a 422.
        error = problem(
            "invalid_request",
            "body: the request body could not be read as JSON",
            extra={"errors": [{"field": "body", "message": "could not be read as JSON"}]},
        )
        return problem_response(error)
    code = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}.get(exc.status_code)
    if code is not None:
        error = problem(code, PROBLEMS[code].title + ".")
    else:  # any other status Starlette may raise: the generic row, with that status
        kind = PROBLEMS["http_error"]
        error = GatewayError(exc.status_code, kind.code, kind.title, kind.detail)
    return problem_response(error, headers=dict(exc.headers or {}))


def internal_error(exc: Exception) -> Response:
    """The 500 for anything unexpected: logged once with its traceback (scrubbed by the
    redactor like every line), never shown."""
    log.error("unhandled_error", error_type=type(exc).__name__, exc_info=exc)
    error = problem("internal_error")
    return problem_response(error)


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(GatewayError, _gateway_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
