"""LinkService.mint end to end over its collaborators: the status rule first (O
proceeds; P, C, V refused with 409/410 before any call), then the step's rules, then
the budget and the upstream; a failed mint ends the session it opened."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from app.errors import GatewayError, problem_response
from app.links.minting import Minted
from app.ratelimit.sessions import SessionLimits, ViewingSessions
from app.store import Store
from tests.support.polling import eventually
from tests.unit.links.fakes import (
    EPOCH,
    PRINCIPAL,
    VIEWER,
    ScriptedPlatform,
    Stack,
    event,
    link_stack,
    stream,
)

LATER = (datetime.fromtimestamp(EPOCH, UTC) + timedelta(hours=1)).isoformat()
STARTED = (datetime.fromtimestamp(EPOCH, UTC) - timedelta(minutes=5)).isoformat()


async def mint(
    stack: Stack, *, stream_name: str = "HLS", redirect_url: str | None = None
) -> Minted:
    return await stack.service.mint(
        principal=PRINCIPAL,
        viewer=VIEWER,
        event_id="E-1",
        stream_name=stream_name,
        kind="raw",
        redirect_url=redirect_url,
    )


async def refused(stack: Stack, **kwargs: str) -> GatewayError:
    with pytest.raises(GatewayError) as error:
        await mint(stack, **kwargs)
    return error.value


async def test_an_open_event_gets_a_link(store: Store) -> None:
    async with link_stack(store) as stack:
        stack.shelf.put(event(status="O"), stream("HLS"))
        minted = await mint(stack)
    assert (minted.kind, minted.source) == ("hls", "upstream")
    assert orjson.loads(minted.body)["url"] == "https://cdn.example/HLS.m3u8"


@pytest.mark.parametrize(
    ("status", "http_status", "code"),
    [("P", 409, "event_pending"), ("C", 410, "event_closed"), ("V", 410, "event_cancelled")],
    ids=["pending", "closed", "void"],
)
async def test_events_not_in_progress_cost_no_call(
    store: Store, status: str, http_status: int, code: str
) -> None:
    async with link_stack(store) as stack:
        stack.shelf.put(event(status=status, startTime=LATER), stream("HLS"))
        error = await refused(stack)
    assert (error.status, error.code) == (http_status, code)
    assert stack.platform.link_calls == []
    assert stack.sample("gateway_refusals_total", reason="status") == 1


async def test_a_pending_event_says_when_to_ask_again(store: Store) -> None:
    async with link_stack(store) as stack:
        stack.shelf.put(event(status="P", startTime=LATER), stream("HLS"))
        stack.shelf.next_list_in_s = 42.5
        error = await refused(stack)
    assert (error.status, error.code, error.retry_after_s) == (409, "event_pending", 42.5)
    assert error.body()["retryAfter"] == 43
    assert error.extra["startTime"] == LATER.replace("+00:00", "Z")


async def test_an_upstream_402_past_the_start_is_the_local_rules_answer(store: Store) -> None:
    """The start has passed, so the local rule lets the pending event through; when
    ONEPlatform still has it pending (402), the viewer gets what the local rule answers
    before the start: 409 event_pending, its start time and when to ask again."""
    platform = ScriptedPlatform(codes={"HLS": 402}, messages={"HLS": "Event not started"})
    async with link_stack(store, platform=platform) as stack:
        stack.shelf.put(event(status="P", startTime=LATER), stream("HLS"))
        stack.shelf.next_list_in_s = 12.5
        local = await refused(stack)
        stack.shelf.put(event(status="P", startTime=STARTED), stream("HLS"))
        upstream = await refused(stack)
    assert stack.platform.link_calls == ["HLS-RAW"]  # the local refusal cost no call
    assert (upstream.status, upstream.code, upstream.retry_after_s) == (409, "event_pending", 12.5)
    assert upstream.body() == {**local.body(), "startTime": STARTED.replace("+00:00", "Z")}
    assert upstream.body()["operationCode"] == 402
    assert upstream.extra == {"eventId": "E-1", "startTime": STARTED.replace("+00:00", "Z")}
    assert problem_response(upstream).headers["Retry-After"] == "13"


async def test_an_unknown_event_is_not_found(store: Store) -> None:
    async with link_stack(store) as stack:
        error = await refused(stack)
    assert (error.status, error.code) == (404, "event_not_found")


@pytest.mark.parametrize(
    ("kwargs", "code", "reason"),
    [
        ({"stream_name": "SD"}, "stream_not_found", "stream"),
        ({"redirect_url": "https://elsewhere.example/"}, "invalid_redirect_url", "redirect"),
    ],
    ids=["unknown-stream", "redirect"],
)
async def test_a_refused_step_costs_no_call(
    store: Store, kwargs: dict[str, str], code: str, reason: str
) -> None:
    async with link_stack(store) as stack:
        stack.shelf.put(event(), stream("HLS"))
        error = await refused(stack, **kwargs)
    assert error.code == code
    assert stack.platform.link_calls == []
    assert stack.sample("gateway_refusals_total", reason=reason) == 1


async def test_the_stream_name_is_matched_whatever_its_case(store: Store) -> None:
    async with link_stack(store) as stack:
        stack.shelf.put(event(), stream("HLS"))
        minted = await mint(stack, stream_name="hls")
    assert orjson.loads(minted.body)["streamName"] == "HLS"
    assert stack.platform.link_calls == ["HLS-RAW"]


async def test_a_geo_blocked_viewer_costs_no_call(store: Store) -> None:
    async with link_stack(store) as stack:
        stack.shelf.put(event(geoAllow="IE"), stream("HLS"))
        error = await refused(stack)
    assert (error.status, error.code) == (403, "geo_blocked")
    assert stack.platform.link_calls == []


async def test_a_failed_mint_ends_the_session_it_opened(store: Store) -> None:
    limits = SessionLimits(max_per_user=1, ttl_s=60.0, policy="refuse")
    platform = ScriptedPlatform(codes={"HLS": 307})
    sessions = ViewingSessions(store)
    async with link_stack(store, platform=platform, session_limits=limits) as stack:
        stack.shelf.put(event(), stream("HLS"))
        await refused(stack)

        async def no_session_left() -> bool:
            return await sessions.of_user(PRINCIPAL.user_id) == []

        await eventually(no_session_left, "the failed mint's session ended")
        platform.codes.clear()
        minted = await mint(stack)  # the one stream allowed is free again
    assert "sessionId" in orjson.loads(minted.body)
