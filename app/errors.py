"""The gateway's own errors, rendered as RFC 9457 problem+json.

Every problem the gateway answers is a row of ``PROBLEMS`` (``app.problem_types``).
The runtime problems (``problem``), the translation of upstream failures
(``problem_from_upstream``) and the OpenAPI examples (``app.api.problems``) are all
made from it.

Domain code raises ``GatewayError`` (never ``HTTPException``); one handler turns it
into a response with ``type``, ``title``, ``status``, ``detail``, ``code`` and, where
one applies, ``operationCode``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final

import orjson
from starlette.responses import Response

from app.problem_types import PROBLEMS
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


def problem(
    code: str,
    detail: str | None = None,
    *,
    status: int | None = None,
    operation_code: int | None = None,
    retry_after_s: float | None = None,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> GatewayError:
    """The error for ``code`` (a row of ``PROBLEMS``), with the table's detail unless a
    more precise one is given; ``status`` only among the row's statuses."""
    kind = PROBLEMS[code]
    if status is not None and status not in kind.statuses:
        raise ValueError(f"{code} is not answered with {status}")
    return GatewayError(
        status or kind.status,
        code,
        kind.title,
        detail or kind.detail,
        operation_code=operation_code if operation_code is not None else kind.operation_code,
        retry_after_s=retry_after_s,
        extra=extra,
        headers=headers,
    )


# --- upstream failures as problems ------------------------------------------------

# operationCode -> the problem it becomes
OPERATION_PROBLEMS: Final[Mapping[int, str]] = {
    kind.operation_code: kind.code for kind in PROBLEMS.values() if kind.operation_code is not None
}

# Every code ``problem_from_upstream`` can answer: a route that calls ONEPlatform
# documents them all.
UPSTREAM_CODES: Final = (
    *dict.fromkeys(OPERATION_PROBLEMS.values()),
    "upstream_error",
    "upstream_rate_limited",
    "upstream_timeout",
    "upstream_unavailable",
    "upstream_bad_response",
)

# Codes that mean the gateway itself is misconfigured: the operator must act.
OPERATOR_ACTION_CODES = frozenset({300, 303})

UPSTREAM_RETRY_AFTER_S = 5.0


def problem_from_upstream(exc: UpstreamError) -> GatewayError:
    """The one translation of an upstream failure into what a front end sees: the
    table's detail for the code, or one the gateway wrote; never ONEPlatform's own text
    (its message stays in the operator's log)."""
    if isinstance(exc, OperationError):
        code = OPERATION_PROBLEMS.get(exc.operation_code, "upstream_error")
        return problem(code, operation_code=exc.operation_code)
    if isinstance(exc, UpstreamRateLimited):
        return problem(
            "upstream_rate_limited", retry_after_s=exc.retry_after_s or UPSTREAM_RETRY_AFTER_S
        )
    if isinstance(exc, UpstreamCircuitOpen):
        return problem(
            "upstream_unavailable",
            f"ONEPlatform failed repeatedly for {exc.method}; the gateway retries it shortly.",
            retry_after_s=exc.retry_after_s,
        )
    if isinstance(exc, UpstreamTimeout):
        return problem(
            "upstream_timeout",
            f"ONEPlatform did not answer {exc.method} in time.",
            retry_after_s=UPSTREAM_RETRY_AFTER_S,
        )
    if isinstance(exc, UpstreamUnavailable):
        return problem(
            "upstream_unavailable",
            f"ONEPlatform could not serve {exc.method}.",
            status=502 if isinstance(exc, UpstreamServerError) else 503,
            retry_after_s=UPSTREAM_RETRY_AFTER_S,
        )
    return problem(
        "upstream_bad_response", f"ONEPlatform's answer to {exc.method} could not be used."
    )
