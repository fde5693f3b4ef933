"""The read endpoints through the whole app (lifespan, fast path, routes, problem+json),
in demo mode: the embedded simulator and the embedded store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from app.main import create_app
from app.settings import Settings
from tests.support.asgi import app_client
from tests.support.polling import eventually

SECURITY = ("x-content-type-options", "content-security-policy")


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        igm_mode="simulator", log_format="json", cors_allow_origins=["https://www.example.com"]
    )
    async with app_client(create_app(settings)) as test_client:

        async def warm() -> bool:
            return (await test_client.get("/v1/events/open")).status_code == 200

        await eventually(warm, "the catalogue warm")
        yield test_client


def today() -> str:
    return datetime.now(UTC).date().isoformat()


async def test_fast_and_routed_paths_answer_alike(client: httpx.AsyncClient) -> None:
    fast = await client.get(f"/v1/events?date={today()}")
    routed = await client.get(f"/v1/events?date={today()}&unknown=1")  # not the fast path's shape
    assert fast.status_code == routed.status_code == 200
    assert fast.content == routed.content
    for header in ("etag", "cache-control", "content-type", *SECURITY):
        assert fast.headers[header] == routed.headers[header], header
    assert int(fast.headers["age"]) >= 0
    assert fast.headers["x-request-id"] != routed.headers["x-request-id"]
    body = fast.json()
    assert body["date"] == today()
    assert body["events"]
    assert body["fetchedAt"].endswith("Z")


@pytest.mark.parametrize(
    "path",
    ["/v1/events/open", "/v1/sports", f"/v1/events?date={datetime.now(UTC).date()}"],
)
async def test_if_none_match_gives_304(client: httpx.AsyncClient, path: str) -> None:
    first = await client.get(path)
    assert first.status_code == 200
    again = await client.get(path, headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == first.headers["etag"]
    other = await client.get(path, headers={"If-None-Match": 'W/"something-else"'})
    assert other.status_code == 200


async def test_filters(client: httpx.AsyncClient) -> None:
    everything = (await client.get(f"/v1/events?date={today()}")).json()["events"]
    sport = everything[0]["sportCode"]
    narrowed_response = await client.get(f"/v1/events?date={today()}&sport={sport.lower()}")
    narrowed = narrowed_response.json()["events"]
    assert narrowed
    assert {e["sportCode"] for e in narrowed} == {sport}
    assert [e for e in everything if e["sportCode"] == sport] == narrowed
    closed = (await client.get(f"/v1/events?date={today()}&status=C")).json()["events"]
    assert all(e["eventStatusCode"] == "C" for e in closed)


async def test_one_event_and_its_streams(client: httpx.AsyncClient) -> None:
    event = (await client.get("/v1/events/open")).json()["events"][0]
    detail = await client.get(f"/v1/events/{event['eventId']}")
    assert detail.status_code == 200
    assert {k: v for k, v in detail.json().items() if k != "fetchedAt"} == event
    streams = await client.get(f"/v1/events/{event['eventId']}/streams")
    assert streams.status_code == 200
    assert streams.json()["eventId"] == event["eventId"]
    assert "HLS" in [s["name"] for s in streams.json()["streams"]]
    again = await client.get(f"/v1/events/{event['eventId']}/streams")
    assert again.headers["etag"] == streams.headers["etag"]
    assert again.json()["fetchedAt"] == streams.json()["fetchedAt"]  # the same cached copy


async def test_head_sends_headers_only(client: httpx.AsyncClient) -> None:
    response = await client.head("/v1/events/open")
    assert response.status_code == 200
    assert response.content == b""
    assert int(response.headers["content-length"]) > 0


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/v1/events?date=22-11-2026", 422, "invalid_request"),
        ("/v1/events", 422, "invalid_request"),
        ("/v1/events?date=2026-02-30", 422, "invalid_request"),
        ("/v1/events?date=2026-11-22&status=X", 422, "invalid_request"),
        ("/v1/events?date=2026-11-22&sport=F1F1", 422, "invalid_request"),
        (
            f"/v1/events?date={datetime.now(UTC).date() + timedelta(days=90)}",
            422,
            "date_out_of_range",
        ),
        ("/v1/events/" + "x" * 200, 422, "invalid_request"),
        ("/v1/nothing-here", 404, "not_found"),
    ],
)
async def test_problems(client: httpx.AsyncClient, path: str, status: int, code: str) -> None:
    response = await client.get(path)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == status
    assert problem["code"] == code
    assert problem["title"]
    assert problem["detail"]
    assert "Traceback" not in response.text
    for header in SECURITY:
        assert header in response.headers


async def test_method_not_allowed_is_a_problem(client: httpx.AsyncClient) -> None:
    response = await client.delete("/v1/events/open")
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


async def test_cors_for_allowed_origins_only(client: httpx.AsyncClient) -> None:
    allowed = await client.get("/v1/events/open", headers={"Origin": "https://www.example.com"})
    assert allowed.headers["access-control-allow-origin"] == "https://www.example.com"
    other = await client.get("/v1/events/open", headers={"Origin": "https://evil.example.net"})
    assert "access-control-allow-origin" not in other.headers
    preflight = await client.options(
        "/v1/events/x/links",
        headers={
            "Origin": "https://www.example.com",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Authorization, Content-Type",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://www.example.com"


async def test_health_and_readiness(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok", "checks": {}}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ok",
        "checks": {"store": "ok", "catalogue": "warm", "tasks": "ok"},
    }


async def test_metrics_after_traffic(client: httpx.AsyncClient) -> None:
    assert (await client.get(f"/v1/events?date={today()}")).status_code == 200
    await client.get("/v1/events/open")
    await client.get("/v1/events/~NOPE-404")
    text = (await client.get("/metrics")).text
    for line in (
        'gateway_http_requests_total{method="GET",route="/v1/events/open",status="200"}',
        'gateway_http_requests_total{method="GET",route="/v1/events/{eventId}",status="404"}',
        'gateway_catalogue_reads_total{list="open",result="hit"}',
        'gateway_upstream_calls_total{method="event_open",operation_code="",outcome="ok"}',
        'gateway_upstream_calls_total{method="event_all",operation_code="",outcome="ok"}',
        'gateway_budget_decisions_total{decision="allowed",method="event_open"}',
        'gateway_catalogue_age_seconds{list="open"}',
        "gateway_refresh_leader 1.0",
        "gateway_degraded 0.0",
    ):
        assert line in text, line
    assert "NOPE-404" not in text  # no unbounded labels


async def test_oversized_body_is_refused_with_a_problem(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/events/ANY-1/links",
        content=b'{"streamName": "' + b"x" * 100_000 + b'"}',
        headers={"Content-Type": "application/json", "X-API-Key": "demo-api-key"},
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "body_too_large"


async def test_oversized_chunked_body_is_refused(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(40):
            yield b"x" * 1024

    response = await client.post(
        "/v1/events/ANY-1/links",
        content=chunks(),
        headers={"Content-Type": "application/json", "X-API-Key": "demo-api-key"},
    )
    assert response.status_code == 413
    assert response.json()["code"] == "body_too_large"


async def test_an_unknown_id_is_not_found_only_after_a_list_fetched_since() -> None:
    """Until an open list fetched after the question arrives: 503 with Retry-After;
    then 404, and 404 at once for later questions."""
    settings = Settings(
        igm_mode="simulator",
        events_min_interval_s=1.0,
        events_gate_margin_s=0.1,
        catalogue_cold_wait_s=0.2,
    )
    async with app_client(create_app(settings)) as client:
        seen: list[int] = []

        async def not_found() -> bool:
            response = await client.get("/v1/events/NOPE-404")
            assert response.headers["content-type"] == "application/problem+json"
            problem = response.json()
            assert problem["eventId"] == "NOPE-404"
            seen.append(response.status_code)
            if response.status_code == 404:
                assert problem["code"] == "event_not_found"
                return True
            assert response.status_code == 503, response.text
            assert problem["code"] == "catalogue_warming"
            assert 1 <= int(response.headers["retry-after"]) <= 3
            assert problem["retryAfter"] == int(response.headers["retry-after"])
            return False

        await eventually(not_found, "404 for the unknown id", timeout_s=15)
        for path in ("/v1/events/NOPE-404", "/v1/events/NOPE-404/streams"):
            again = await client.get(path)
            assert (again.status_code, again.json()["code"]) == (404, "event_not_found"), path
