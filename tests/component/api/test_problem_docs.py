"""Every problem a route can answer is documented on that route in ``/openapi.json``,
with the status it is answered with, and every documented example is the table's row.

The answers are provoked, not listed: each operation of the document gets requests
that are too big, unauthenticated or invalid; the catalogue and link routes meet an
upstream that fails in each way the embedded simulator can (operation codes, 5xx,
429, garbage); and the link service's own refusals (status, geo, budget, sessions)
are provoked through its unit-test collaborators, where the store can be taken away.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

import fakeredis
import httpx
import pytest
from fastapi import FastAPI

from app.errors import GatewayError, problem_from_upstream
from app.identity.auth import Principal
from app.main import MAX_BODY_BYTES, MAX_HEADER_BYTES, create_app
from app.problem_types import PROBLEMS
from app.ratelimit.sessions import SessionLimits
from app.settings import Settings
from app.store import Store, build_store, close_store
from app.upstream.errors import (
    OPERATION_ERRORS,
    OperationError,
    UpstreamBadResponse,
    UpstreamCircuitOpen,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamServerError,
    UpstreamTimeout,
)
from tests.support.inprocess import Gateway, gateway
from tests.support.polling import eventually
from tests.unit.links.fakes import (
    PRINCIPAL,
    VIEWER,
    FakeClock,
    Stack,
    event,
    limits,
    link_stack,
    stream,
)

PROBLEM_JSON = "application/problem+json"
LINKS = ("post", "/v1/events/{eventId}/links")
PLAY = ("post", "/v1/events/{eventId}/play")
Operation = tuple[str, str]  # (method, path template)


def documented_problems(app: FastAPI) -> dict[Operation, set[tuple[int, str]]]:
    """(status, code) of every problem example, per operation of the document."""
    found: dict[Operation, set[tuple[int, str]]] = {}
    for path, item in app.openapi()["paths"].items():
        for method, operation in item.items():
            pairs = found.setdefault((method, path), set())
            for status, response in operation["responses"].items():
                content = response.get("content", {}).get(PROBLEM_JSON)
                for example in (content or {}).get("examples", {}).values():
                    pairs.add((int(status), example["value"]["code"]))
    return found


DOCUMENT = documented_problems(create_app(Settings(igm_mode="simulator")))


def assert_documented(operation: Operation, status: int, code: str) -> None:
    method, path = operation
    assert (status, code) in DOCUMENT[operation], (
        f"{method.upper()} {path} answers {status} {code}, which its documentation lacks"
    )


def assert_answer_documented(operation: Operation, response: httpx.Response) -> str | None:
    """The answer's problem code, documented on ``operation``; None for a success (an
    upstream fault the gateway can live with, e.g. an empty body)."""
    if response.status_code < 400:
        return None
    assert response.headers["content-type"].startswith(PROBLEM_JSON), response.text
    code = str(response.json()["code"])
    assert_documented(operation, response.status_code, code)
    return code


# --- the document is made from the table ----------------------------------------------


def test_every_example_is_its_tables_row() -> None:
    app = create_app(Settings(igm_mode="simulator"))
    for item in app.openapi()["paths"].values():
        for operation in item.values():
            for status, response in operation["responses"].items():
                content = response.get("content", {}).get(PROBLEM_JSON)
                for name, example in (content or {}).get("examples", {}).items():
                    value = example["value"]
                    row = PROBLEMS[name]
                    assert value["code"] == name
                    assert int(status) == value["status"]
                    assert value["status"] in row.statuses
                    assert (value["title"], value["detail"]) == (row.title, row.detail)
                    assert value.get("operationCode") == row.operation_code


# --- the gateway in this process, over the embedded simulator ---------------------------


@pytest.fixture
async def gw() -> AsyncIterator[Gateway]:
    async with gateway() as running:
        await running.warm()
        yield running


@pytest.fixture
async def quick_gw() -> AsyncIterator[Gateway]:
    """Open-list fetches a second apart: an unknown id is found absent soon."""
    async with gateway(events_min_interval_s=1.0) as running:
        await running.warm()
        yield running


def concrete(path: str) -> str:
    return path.replace("{eventId}", "E-NONE-1").replace("{sessionId}", "abcdefgh12")


async def test_request_problems_are_documented_on_every_operation(gw: Gateway) -> None:
    """Too many header bytes, no credentials, an invalid parameter or body, too big a
    body: whatever each operation answers is documented on it."""
    assert DOCUMENT
    for method, path in DOCUMENT:
        url = concrete(path)
        big = {"X-Padding": "x" * MAX_HEADER_BYTES}
        answers = [await gw.client.request(method, url, headers=big)]
        answers.append(await gw.client.request(method, url))
        if "{" in path:
            bad = path.replace("{eventId}", "e" * 200).replace("{sessionId}", "!")
            answers.append(await gw.client.request(method, bad, headers=gw.viewer()))
        if method == "get":
            answers.append(await gw.client.get(url, params={"date": "not-a-date"}))
        if method == "post":
            for body in (b"{not json", b"{}", b"x" * (MAX_BODY_BYTES + 1)):
                answers.append(await gw.client.post(url, content=body, headers=gw.viewer()))
        for answer in answers:  # (a health check's 503 is its own JSON, not a problem)
            if answer.headers.get("content-type", "").startswith(PROBLEM_JSON):
                assert_answer_documented((method, path), answer)


async def test_catalogue_problems_are_documented(gw: Gateway) -> None:
    events = ("get", "/v1/events")
    far = (date.today() + timedelta(days=400)).isoformat()
    assert_answer_documented(events, await gw.client.get("/v1/events", params={"date": far}))
    one = ("get", "/v1/events/{eventId}")
    assert_answer_documented(one, await gw.client.get("/v1/events/NO-SUCH-1"))
    streams = ("get", "/v1/events/{eventId}/streams")
    assert_answer_documented(streams, await gw.client.get("/v1/events/NO-SUCH-1/streams"))


# Each way ONEPlatform can fail a call, as the simulator's faults make it fail.
UPSTREAM_FAULTS: list[dict[str, Any]] = [
    *({"kind": "operation", "operationCode": code} for code in (300, 303, 999)),
    {"kind": "status", "status": 503},
    {"kind": "status", "status": 429},
    {"kind": "garbage"},
    {"kind": "empty"},
]
EVENT_FAULTS = [{"kind": "operation", "operationCode": code} for code in (401, 402, 403, 404)]
LINK_FAULTS = [
    *({"kind": "operation", "operationCode": code} for code in (*OPERATION_ERRORS, 999)),
    *UPSTREAM_FAULTS,
]


async def test_upstream_failures_of_the_catalogue_are_documented(gw: Gateway) -> None:
    """A failed fetch is not kept, so one event's streams can fail every way in turn."""
    sports = ("get", "/v1/sports")
    streams = ("get", "/v1/events/{eventId}/streams")
    event_id = (await gw.events_today())[0]["eventId"]
    seen = set()
    for fault in EVENT_FAULTS + UPSTREAM_FAULTS:
        await gw.fault("*", **fault)
        if fault in UPSTREAM_FAULTS:
            seen.add(assert_answer_documented(sports, await gw.client.get("/v1/sports")))
        answer = await gw.client.get(f"/v1/events/{event_id}/streams")
        seen.add(assert_answer_documented(streams, answer))
        await gw.clear_faults()
    assert {"upstream_rejected_customer", "upstream_error", "event_cancelled"} <= seen
    assert {"upstream_rate_limited", "upstream_bad_response"} <= seen


async def test_upstream_failures_of_a_link_are_documented(gw: Gateway) -> None:
    open_event = (await gw.client.get("/v1/events/open")).json()["events"][0]["eventId"]
    streams = (await gw.client.get(f"/v1/events/{open_event}/streams")).json()["streams"]
    name = streams[0]["name"]
    seen = set()
    for fault in LINK_FAULTS:
        await gw.fault("stream_link", **fault)
        for operation, body in ((LINKS, {"streamName": name}), (PLAY, {"device": "app"})):
            url = operation[1].replace("{eventId}", open_event)
            answer = await gw.client.post(url, json=body, headers=gw.viewer())
            seen.add(assert_answer_documented(operation, answer))
        await gw.clear_faults()
    assert {"provider_failure", "upstream_rejected_user_ip", "event_cancelled"} <= seen


async def test_link_refusals_of_the_routes_are_documented(quick_gw: Gateway) -> None:
    gw = quick_gw
    events = await gw.events_today()
    open_event = next(e["eventId"] for e in events if e["eventStatusCode"] == "O")
    requests: list[tuple[str, dict[str, Any]]] = [
        ("NO-SUCH-1", {"streamName": "HLS"}),
        (open_event, {"streamName": "NOSUCHSTREAM"}),
        (open_event, {"streamName": "HLS", "redirectUrl": "javascript:alert(1)"}),
        *((e["eventId"], {"streamName": "HLS"}) for e in events if e["eventStatusCode"] != "O"),
    ]
    seen = set()
    for event_id, body in requests:
        answer = await gw.client.post(
            f"/v1/events/{event_id}/links", json=body, headers=gw.viewer()
        )
        seen.add(assert_answer_documented(LINKS, answer))
        play = {"device": "web", "redirectUrl": body.get("redirectUrl")}
        answer = await gw.client.post(f"/v1/events/{event_id}/play", json=play, headers=gw.viewer())
        if answer.status_code >= 400:
            seen.add(assert_answer_documented(PLAY, answer))

    async def not_found() -> bool:
        """An unknown id is 503 catalogue_warming until a list fetched since lacks it."""
        answer = await gw.client.post(
            "/v1/events/NO-SUCH-1/links", json={"streamName": "HLS"}, headers=gw.viewer()
        )
        seen.add(assert_answer_documented(LINKS, answer))
        return "event_not_found" in seen

    await eventually(not_found, "NO-SUCH-1 not found", timeout_s=30)
    assert {"event_not_found", "stream_not_found", "invalid_redirect_url"} <= seen


async def test_a_gateway_without_links_and_an_unknown_peer_are_documented() -> None:
    async with gateway(links_enabled=False) as gw:
        for operation, body in ((LINKS, {"streamName": "HLS"}), (PLAY, {"device": "app"})):
            url = concrete(operation[1])
            answer = await gw.client.post(url, json=body, headers=gw.viewer())
            assert assert_answer_documented(operation, answer) == "links_disabled"
    async with gateway(client_host="not-an-address") as gw:
        for operation, body in ((LINKS, {"streamName": "HLS"}), (PLAY, {"device": "app"})):
            url = concrete(operation[1])
            answer = await gw.client.post(url, json=body, headers=gw.viewer())
            assert assert_answer_documented(operation, answer) == "viewer_ip_unknown"


async def test_session_problems_are_documented(gw: Gateway) -> None:
    for method, path in (
        ("post", "/v1/sessions/{sessionId}/heartbeat"),
        ("delete", "/v1/sessions/{sessionId}"),
    ):
        answer = await gw.client.request(method, concrete(path), headers=gw.viewer())
        assert assert_answer_documented((method, path), answer) == "session_not_found"


# --- the link service's own refusals -------------------------------------------------


async def service_refusals(store: Store, down: Store) -> list[GatewayError]:
    """One refusal of each kind the link service decides, from its collaborators."""
    refusals: list[GatewayError] = []

    async def refused(stack: Stack, event_id: str = "E-1", **kwargs: Any) -> None:
        with pytest.raises(GatewayError) as error:
            await stack.service.mint(
                principal=kwargs.pop("principal", PRINCIPAL),
                viewer=VIEWER,
                event_id=event_id,
                stream_name=kwargs.pop("stream_name", "HLS"),
                kind="raw",
                redirect_url=kwargs.pop("redirect_url", None),
            )
        refusals.append(error.value)

    async with link_stack(store) as stack:
        for status in ("P", "C", "V"):
            stack.shelf.put(event(f"E-{status}", status=status, startTime="2099-01-01T00:00:00Z"))
            await refused(stack, f"E-{status}")
        stack.shelf.put(event(geoAllow="IE"), stream("HLS"))
        await refused(stack)
        stack.shelf.put(event(), stream("HLS"))
        await refused(stack, stream_name="SD")
        await refused(stack, redirect_url="https://elsewhere.example/")
        await refused(stack, "E-NONE")
    sessions = SessionLimits(max_per_user=1, ttl_s=60.0, policy="refuse")
    async with link_stack(
        store, session_limits=sessions, budget_limits=limits(user_burst=2)
    ) as stack:
        stack.shelf.put(event(), stream("HLS"), stream("ULL"))
        await stack.service.mint(
            principal=PRINCIPAL,
            viewer=VIEWER,
            event_id="E-1",
            stream_name="HLS",
            kind="raw",
            redirect_url=None,
        )
        await refused(stack, stream_name="ULL")  # a second stream: too many
    user = Principal(user_id="viewer-2", via="api_key")
    async with link_stack(store, budget_limits=limits(user_burst=1, user_rate_per_s=0.01)) as stack:
        stack.shelf.put(event(), stream("HLS"), stream("ULL"))
        await stack.service.mint(
            principal=user,
            viewer=VIEWER,
            event_id="E-1",
            stream_name="HLS",
            kind="raw",
            redirect_url=None,
        )
        await refused(stack, stream_name="ULL", principal=user)
    for clock, budget in (
        (FakeClock(), limits(burst=1, rate_per_s=0.01, max_wait_ms=0)),
        (FakeClock(oversleep_s=0.5), limits(burst=1, rate_per_s=10.0)),
    ):
        await store.flushall()  # buckets of their own
        async with link_stack(store, clock=clock, budget_limits=budget) as stack:
            stack.shelf.put(event(), stream("HLS"), stream("ULL"))
            await stack.service.mint(
                principal=PRINCIPAL,
                viewer=VIEWER,
                event_id="E-1",
                stream_name="ULL",
                kind="raw",
                redirect_url=None,
            )
            await refused(stack)
    async with link_stack(down, budget_limits=limits(fallback="closed")) as stack:
        stack.shelf.put(event(), stream("HLS"))
        await refused(stack)
    return refusals


@pytest.fixture
async def store() -> AsyncIterator[Store]:
    client = build_store(None)
    yield client
    await close_store(client)


async def test_every_refusal_of_the_link_service_is_documented(store: Store) -> None:
    server = fakeredis.FakeServer()
    server.connected = False
    down: Store = fakeredis.FakeAsyncRedis(server=server)
    refusals = await service_refusals(store, down)
    codes = {error.code for error in refusals}
    assert codes >= {
        "event_pending",
        "event_closed",
        "event_cancelled",
        "geo_blocked",
        "stream_not_found",
        "invalid_redirect_url",
        "event_not_found",
        "too_many_streams",
        "user_rate_limited",
        "rate_limited",
        "link_budget_unavailable",
    }
    for error in refusals:
        for operation in (LINKS, PLAY):
            assert_documented(operation, error.status, error.code)


def upstream_failures() -> list[UpstreamError]:
    return [
        *(kind("stream_link", "refused") for kind in OPERATION_ERRORS.values()),
        OperationError("stream_link", "new", 999),
        UpstreamRateLimited("stream_link", "HTTP 429"),
        UpstreamCircuitOpen("stream_link", "open", 5.0),
        UpstreamTimeout("stream_link", "timed out"),
        UpstreamConnectionError("stream_link", "ConnectError"),
        UpstreamServerError("stream_link", "HTTP 502", 502),
        UpstreamBadResponse("stream_link", "not JSON"),
    ]


@pytest.mark.parametrize("failure", upstream_failures(), ids=lambda e: type(e).__name__)
def test_every_upstream_failure_of_a_link_is_documented(failure: UpstreamError) -> None:
    problem = problem_from_upstream(failure)
    for operation in (LINKS, PLAY):
        assert_documented(operation, problem.status, problem.code)
