"""Every operationCode of the guide becomes its typed error, and every upstream failure
one stable problem (HTTP status + ``code``) for the front ends."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import httpx
import pytest

from app.errors import GatewayError, problem_from_upstream
from app.upstream.client import OnePlatformClient
from app.upstream.errors import (
    OPERATION_ERRORS,
    EventCancelled,
    EventClosed,
    EventNotFound,
    EventPending,
    InvalidCustomer,
    InvalidRedirectUrl,
    InvalidStreamName,
    InvalidTransactionRef,
    InvalidUserId,
    InvalidUserIp,
    OperationError,
    ProviderFailure,
    RegionBlocked,
    ServerNotAllowed,
    UpstreamBadResponse,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamServerError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from tests.unit.upstream.fakes import json_response, scripted_client

# operationCode -> (typed error, problem status, problem code): the contract with the
# front ends. Changing a row here is an API change.
OPERATION_CODES: dict[int, tuple[type[OperationError], int, str]] = {
    300: (InvalidCustomer, 502, "upstream_rejected_customer"),
    301: (InvalidUserIp, 502, "upstream_rejected_user_ip"),
    302: (InvalidUserId, 502, "upstream_rejected_user_id"),
    303: (ServerNotAllowed, 502, "upstream_rejected_server_ip"),
    304: (InvalidStreamName, 404, "stream_not_found"),
    305: (InvalidRedirectUrl, 422, "invalid_redirect_url"),
    306: (RegionBlocked, 403, "geo_blocked"),
    307: (ProviderFailure, 502, "provider_failure"),
    308: (InvalidTransactionRef, 502, "invalid_transaction_ref"),
    401: (EventNotFound, 404, "event_not_found"),
    402: (EventPending, 409, "event_pending"),
    403: (EventClosed, 410, "event_closed"),
    404: (EventCancelled, 410, "event_cancelled"),
}

Call = Callable[[OnePlatformClient], Coroutine[Any, Any, object]]


async def _sports(client: OnePlatformClient) -> object:
    return await client.sports()


async def _link(client: OnePlatformClient) -> object:
    return await client.stream_link(
        user_id="u-1",
        user_ip="198.51.100.7",
        event_id="E-1",
        stream_name="HLS",
        redirect_url="https://operator.example/",
        raw=True,
    )


async def _live(client: OnePlatformClient) -> object:
    return await client.live_stream("NDc2MDIyNTI2O2IwNWE1ZDU1")


# How each method answers an operation error, as the guide and the simulator show it:
# GET methods with HTTP 400 and {message, operationCode}; stream/link with HTTP 200 and
# its own model (camelCase or PascalCase); liveStream with HTTP 200, PascalCase.
STYLES: dict[str, tuple[str, Call, Callable[[int], httpx.Response]]] = {
    "get-400": (
        "sports",
        _sports,
        lambda code: json_response({"message": f"code {code}", "operationCode": code}, 400),
    ),
    "link-camel": (
        "stream_link",
        _link,
        lambda code: json_response(
            {"streamLink": None, "message": f"code {code}", "operationCode": code}
        ),
    ),
    "link-pascal-code-as-string": (
        "stream_link",
        _link,
        lambda code: json_response(
            {"StreamLink": None, "Message": f"code {code}", "OperationCode": str(code)}
        ),
    ),
    "live-stream": (
        "live_stream",
        _live,
        lambda code: json_response(
            {
                "StreamLink": None,
                "StreamType": None,
                "Message": f"code {code}",
                "OperationCode": code,
            }
        ),
    ),
}


def test_the_table_covers_every_documented_code() -> None:
    assert set(OPERATION_CODES) == set(OPERATION_ERRORS)
    assert set(OPERATION_CODES) == {*range(300, 309), *range(401, 405)}


@pytest.mark.parametrize("style", list(STYLES))
@pytest.mark.parametrize("code", sorted(OPERATION_CODES))
async def test_every_operation_code_maps_to_its_error_and_problem(code: int, style: str) -> None:
    error_type, status, problem_code = OPERATION_CODES[code]
    method, call, answer = STYLES[style]
    async with scripted_client(lambda request: answer(code)) as (client, upstream):
        with pytest.raises(OperationError) as caught:
            await call(client)
    error = caught.value
    assert type(error) is error_type
    assert error.operation_code == code
    assert error.method == method
    assert error.message == f"code {code}"
    assert upstream.calls[-1].outcome == "operation_error"
    assert upstream.calls[-1].operation_code == code

    problem = problem_from_upstream(error)
    assert (problem.status, problem.code, problem.operation_code) == (status, problem_code, code)
    body = problem.body()
    assert body["code"] == problem_code
    assert body["status"] == status
    assert body["operationCode"] == code
    assert body["type"].endswith("/" + problem_code)


async def test_an_unknown_operation_code_keeps_its_number() -> None:
    answer = json_response({"message": "new", "operationCode": 999}, 400)
    async with scripted_client(lambda request: answer) as (client, _):
        with pytest.raises(OperationError) as caught:
            await client.sports()
    assert type(caught.value) is OperationError
    assert caught.value.operation_code == 999
    problem = problem_from_upstream(caught.value)
    assert (problem.status, problem.code, problem.operation_code) == (502, "upstream_error", 999)


# Failures that are not operation codes: (error, status, code, has Retry-After)
OTHER_FAILURES: list[tuple[str, UpstreamError, int, str, float | None]] = [
    ("timeout", UpstreamTimeout("sports", "timed out"), 503, "upstream_timeout", 5.0),
    (
        "rate-limited-with-retry-after",
        UpstreamRateLimited("event_all", "HTTP 429", 7.0),
        503,
        "upstream_rate_limited",
        7.0,
    ),
    (
        "rate-limited-without-retry-after",
        UpstreamRateLimited("event_all", "HTTP 429"),
        503,
        "upstream_rate_limited",
        5.0,
    ),
    (
        "connection",
        UpstreamConnectionError("streams", "ConnectError"),
        503,
        "upstream_unavailable",
        5.0,
    ),
    (
        "server-error",
        UpstreamServerError("stream_link", "HTTP 502", 502),
        502,
        "upstream_unavailable",
        5.0,
    ),
    ("bad-response", UpstreamBadResponse("sports", "not JSON"), 502, "upstream_bad_response", None),
]


@pytest.mark.parametrize(
    ("error", "status", "code", "retry_after_s"),
    [case[1:] for case in OTHER_FAILURES],
    ids=[case[0] for case in OTHER_FAILURES],
)
def test_other_failures_map_to_stable_problems(
    error: UpstreamError, status: int, code: str, retry_after_s: float | None
) -> None:
    problem = problem_from_upstream(error)
    assert isinstance(problem, GatewayError)
    assert (problem.status, problem.code, problem.retry_after_s) == (status, code, retry_after_s)
    assert problem.operation_code is None
    assert "operationCode" not in problem.body()


def test_the_tree() -> None:
    for unavailable in (
        UpstreamTimeout,
        UpstreamConnectionError,
        UpstreamRateLimited,
        UpstreamServerError,
    ):
        assert issubclass(unavailable, UpstreamUnavailable)
    assert not issubclass(UpstreamBadResponse, UpstreamUnavailable)
    for error_type in OPERATION_ERRORS.values():
        assert issubclass(error_type, OperationError)
        assert issubclass(error_type, UpstreamError)
    assert str(InvalidCustomer("sports", "rejected")) == "sports: rejected"
