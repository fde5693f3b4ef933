"""The gateway's own errors, rendered as RFC 9457 problem+json.

Domain code raises ``GatewayError`` (never ``HTTPException``); one handler turns it
into a response with ``type``, ``title``, ``status``, ``detail``, a stable ``code``
and, where the upstream gave one, its ``operationCode``.
"""

from __future__ import annotations

import math
from typing import Any

import orjson
from starlette.responses import Response

from app.upstream.errors import (
    OperationError,
    UpstreamCircuitOpen,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamServerError,
    UpstreamTimeout,
    UpstreamUnavailable,
)

PROBLEM_JSON = "application/problem+json"
PROBLEM_TYPE_BASE = "https://oneplatform-gateway.dev/problems/"


class GatewayError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        title: str,
        detail: str,
        *,
        operation_code: int | None = None,
        retry_after_s: float | None = None,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{code}: {detail}")
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.operation_code = operation_code
        self.retry_after_s = retry_after_s
        self.extra = extra or {}
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        problem: dict[str, Any] = {
            "type": PROBLEM_TYPE_BASE + self.code,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
        }
        if self.operation_code is not None:
            problem["operationCode"] = self.operation_code
        if self.retry_after_s is not None:
            problem["retryAfter"] = retry_after_header(self.retry_after_s)
        problem.update(self.extra)
        return problem


def retry_after_header(seconds: float) -> int:
    """Retry-After is whole seconds; never 0 for something that is not ready yet."""
    return max(1, math.ceil(seconds))


def problem_response(error: GatewayError, headers: dict[str, str] | None = None) -> Response:
    all_headers = {**error.headers, **(headers or {})}
    if error.retry_after_s is not None:
        all_headers["Retry-After"] = str(retry_after_header(error.retry_after_s))
    return Response(
        content=orjson.dumps(error.body()),
        status_code=error.status,
        media_type=PROBLEM_JSON,
        headers=all_headers,
    )


# --- upstream failures as problems ------------------------------------------------

# operationCode -> (HTTP status, stable code, title)
_OPERATION_PROBLEMS: dict[int, tuple[int, str, str]] = {
    300: (502, "upstream_rejected_customer", "Gateway misconfigured: customer rejected"),
    301: (502, "upstream_rejected_user_ip", "Upstream rejected the viewer IP"),
    302: (502, "upstream_rejected_user_id", "Upstream rejected the user id"),
    303: (502, "upstream_rejected_server_ip", "Gateway misconfigured: server IP not allowed"),
    304: (404, "stream_not_found", "Stream not found"),
    305: (422, "invalid_redirect_url", "Invalid redirect URL"),
    306: (403, "geo_blocked", "Not available in your region"),
    307: (502, "provider_failure", "Stream provider failure"),
    308: (502, "invalid_transaction_ref", "Upstream rejected the transaction reference"),
    401: (404, "event_not_found", "Event not found"),
    402: (409, "event_pending", "Event has not started"),
    403: (410, "event_closed", "Event is over"),
    404: (410, "event_cancelled", "Event was cancelled"),
}

# Codes that mean the gateway itself is misconfigured: the operator must act.
OPERATOR_ACTION_CODES = frozenset({300, 303})

UPSTREAM_RETRY_AFTER_S = 5.0


def problem_from_upstream(exc: UpstreamError) -> GatewayError:
    """The one translation of an upstream failure into what a front end sees."""
    if isinstance(exc, OperationError):
        status, code, title = _OPERATION_PROBLEMS.get(
            exc.operation_code, (502, "upstream_error", "Upstream error")
        )
        return GatewayError(
            status,
            code,
            title,
            exc.message or title,
            operation_code=exc.operation_code,
        )
    if isinstance(exc, UpstreamRateLimited):
        return GatewayError(
            503,
            "upstream_rate_limited",
            "Upstream is rate limiting",
            "ONEPlatform asked the gateway to slow down; try again shortly.",
            retry_after_s=exc.retry_after_s or UPSTREAM_RETRY_AFTER_S,
        )
    if isinstance(exc, UpstreamCircuitOpen):
        return GatewayError(
            503,
            "upstream_unavailable",
            "Upstream unavailable",
            f"ONEPlatform failed repeatedly for {exc.method}; the gateway retries it shortly.",
            retry_after_s=exc.retry_after_s,
        )
    if isinstance(exc, UpstreamTimeout):
        return GatewayError(
            503,
            "upstream_timeout",
            "Upstream timed out",
            f"ONEPlatform did not answer {exc.method} in time.",
            retry_after_s=UPSTREAM_RETRY_AFTER_S,
        )
    if isinstance(exc, UpstreamUnavailable):
        return GatewayError(
            503 if not isinstance(exc, UpstreamServerError) else 502,
            "upstream_unavailable",
            "Upstream unavailable",
            f"ONEPlatform could not serve {exc.method}: {exc.message}.",
            retry_after_s=UPSTREAM_RETRY_AFTER_S,
        )
    return GatewayError(
        502,
        "upstream_bad_response",
        "Upstream answered badly",
        f"ONEPlatform's answer to {exc.method} could not be used.",
    )
