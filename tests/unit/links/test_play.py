"""The play ladder against a scripted ONEPlatform: local refusals cost no call, an
upstream refusal about this viewer's stream (304, 306) falls to the next step, at most
two mint attempts, and the first step's problem with ``tried`` when all are refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from app.errors import GatewayError
from app.identity.auth import Principal
from app.links.ladder import PlayStep
from app.links.play import MAX_PLAY_MINTS, Played, play_ladder
from app.store import Store
from tests.unit.links.fakes import (
    EPOCH,
    PRINCIPAL,
    VIEWER,
    ScriptedPlatform,
    Stack,
    event,
    limits,
    link_stack,
    stream,
)

ULL_RAW = PlayStep("ULL", "raw")
HLS_RAW = PlayStep("HLS", "raw")
HLS_PLAYER = PlayStep("HLS", "player")
WEB = (ULL_RAW, HLS_RAW, HLS_PLAYER)


async def play(stack: Stack, ladder: tuple[PlayStep, ...] = WEB, *, ull: bool = True) -> Played:
    return await play_ladder(
        stack.service,
        principal=PRINCIPAL,
        viewer=VIEWER,
        event_id="E-1",
        ladder=ladder,
        ull=ull,
        redirect_url=None,
    )


async def refused(stack: Stack, ladder: tuple[PlayStep, ...] = WEB) -> GatewayError:
    with pytest.raises(GatewayError) as error:
        await play(stack, ladder)
    return error.value


def tried(error: GatewayError) -> list[tuple[str, str, str]]:
    return [(t["streamName"], t["kind"], t["code"]) for t in error.extra["tried"]]


async def test_the_first_step_that_passes_is_minted(store: Store) -> None:
    async with link_stack(store, platform=ScriptedPlatform(stream_types={"ULL": 4})) as stack:
        stack.shelf.put(event(), stream("ULL"), stream("HLS"))
        played = await play(stack)
    assert played.step == ULL_RAW
    assert orjson.loads(played.minted.body)["kind"] == "theolive"
    assert stack.platform.link_calls == ["ULL-RAW"]


async def test_without_ull_the_ull_steps_are_skipped(store: Store) -> None:
    async with link_stack(store) as stack:
        stack.shelf.put(event(), stream("ULL"), stream("HLS"))
        with_ull_off = await play_ladder(
            stack.service,
            principal=PRINCIPAL,
            viewer=VIEWER,
            event_id="E-1",
            ladder=WEB,
            ull=False,
            redirect_url=None,
        )
    assert with_ull_off.step == HLS_RAW


async def test_a_step_the_local_rules_refuse_costs_no_call(store: Store) -> None:
    async with link_stack(store) as stack:
        stack.shelf.put(event(), stream("ULL", geoCountryBlock="GB"), stream("HLS"))
        played = await play(stack)
    assert played.step == HLS_RAW
    assert stack.platform.link_calls == ["HLS-RAW"]


@pytest.mark.parametrize("operation_code", [304, 306], ids=["no-such-stream", "geo"])
async def test_an_upstream_refusal_for_this_viewer_falls_to_the_next_step(
    store: Store, operation_code: int
) -> None:
    platform = ScriptedPlatform(codes={"ULL": operation_code})
    async with link_stack(store, platform=platform) as stack:
        stack.shelf.put(event(), stream("ULL"), stream("HLS"))
        played = await play(stack)
    assert played.step == HLS_RAW
    assert stack.platform.link_calls == ["ULL-RAW", "HLS-RAW"]


async def test_at_most_two_mint_attempts(store: Store) -> None:
    """Every step refused upstream for this viewer: two calls, not three, and the
    first step's problem with the steps tried."""
    platform = ScriptedPlatform(codes={"ULL": 306, "HLS": 306})
    async with link_stack(store, platform=platform) as stack:
        stack.shelf.put(event(), stream("ULL"), stream("HLS"))
        error = await refused(stack)
    assert len(stack.platform.link_calls) == MAX_PLAY_MINTS == 2
    assert (error.status, error.code) == (403, "geo_blocked")
    assert tried(error) == [("ULL", "raw", "geo_blocked"), ("HLS", "raw", "geo_blocked")]
    assert stack.sample("gateway_refusals_total", reason="geo") == 1


async def test_any_other_upstream_failure_ends_the_ladder(store: Store) -> None:
    platform = ScriptedPlatform(codes={"ULL": 307})
    async with link_stack(store, platform=platform) as stack:
        stack.shelf.put(event(), stream("ULL"), stream("HLS"))
        error = await refused(stack)
    assert stack.platform.link_calls == ["ULL-RAW"]
    assert error.code == "provider_failure"
    assert tried(error) == [("ULL", "raw", "provider_failure")]


async def test_every_step_refused_locally_is_the_first_steps_problem(store: Store) -> None:
    async with link_stack(store) as stack:
        stack.shelf.put(event(geoBlock="GB"), stream("ULL"), stream("HLS"))
        error = await refused(stack)
    assert stack.platform.link_calls == []
    assert error.code == "geo_blocked"
    assert [code for *_, code in tried(error)] == ["geo_blocked"] * 3


async def test_a_closed_event_lists_every_step(store: Store) -> None:
    async with link_stack(store) as stack:
        stack.shelf.put(event(status="C"), stream("ULL"), stream("HLS"))
        error = await refused(stack)
    assert (error.status, error.code) == (410, "event_closed")
    assert tried(error) == [
        ("ULL", "raw", "event_closed"),
        ("HLS", "raw", "event_closed"),
        ("HLS", "player", "event_closed"),
    ]


async def test_a_ladder_with_nothing_for_this_event_is_stream_not_found(store: Store) -> None:
    async with link_stack(store) as stack:
        stack.shelf.put(event(), stream("HLS"))
        error = await refused(stack, (ULL_RAW,))
    assert (error.status, error.code, tried(error)) == (404, "stream_not_found", [])


async def test_an_upstream_402_past_the_start_says_when_to_ask_again(store: Store) -> None:
    """ONEPlatform still has the event pending though its start has passed: not a
    refusal for this viewer's stream, so the ladder ends with the local rule's 409."""
    started = datetime.fromtimestamp(EPOCH, UTC) - timedelta(minutes=5)
    async with link_stack(store, platform=ScriptedPlatform(codes={"ULL": 402})) as stack:
        stack.shelf.put(event(status="P", startTime=started.isoformat()), stream("ULL"))
        stack.shelf.next_list_in_s = 30.0
        error = await refused(stack)
    assert (error.status, error.code, error.retry_after_s) == (409, "event_pending", 30.0)
    assert error.extra["startTime"] == started.isoformat().replace("+00:00", "Z")
    assert error.extra["eventId"] == "E-1"
    assert tried(error) == [("ULL", "raw", "event_pending")]
    assert stack.platform.link_calls == ["ULL-RAW"]


async def test_past_the_budget_play_answers_with_the_viewers_place(store: Store) -> None:
    """A play request past the budget is a place in the line, as a link request is: 429
    with ``queue`` (and the step it was for), no further step tried."""
    budget = limits(rate_per_s=0.1, burst=1, max_wait_ms=0)
    async with link_stack(store, budget_limits=budget) as stack:
        stack.shelf.put(event(), stream("HLS"))
        await play(stack, (HLS_RAW, HLS_PLAYER))
        with pytest.raises(GatewayError) as raised:
            await play_ladder(
                stack.service,
                principal=Principal(user_id="viewer-2", via="api_key"),
                viewer=VIEWER,
                event_id="E-1",
                ladder=(HLS_RAW, HLS_PLAYER),
                ull=False,
                redirect_url=None,
            )
    error = raised.value
    assert (error.status, error.code) == (429, "rate_limited")
    assert error.extra["queue"]["position"] == 2
    assert tried(error) == [("HLS", "raw", "rate_limited")]
    assert stack.platform.link_calls == ["HLS-RAW"]
