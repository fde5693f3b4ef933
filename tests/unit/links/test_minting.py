"""LinkMinter against a scripted ONEPlatform and the embedded store: the upstream
calls per kind, the answer and its lifetimes, the dedupe copy, and upstream refusals
translated once."""

from __future__ import annotations

from datetime import datetime

import orjson
import pytest
from structlog.testing import capture_logs

from app.errors import GatewayError
from app.links.ladder import LinkKind, PlayStep
from app.links.minting import LinkRequest
from app.links.rules import Candidate
from app.links.sessions import SessionRef
from app.problem_types import PROBLEMS
from app.ratelimit.sessions import SessionLimits
from app.store import Store
from tests.support.polling import eventually
from tests.unit.links.fakes import (
    EPOCH,
    PRINCIPAL,
    REDIRECT,
    VIEWER,
    ScriptedPlatform,
    Stack,
    link_stack,
    stream,
)
from tests.unit.upstream.fakes import UID

REQUEST = LinkRequest(PRINCIPAL, VIEWER, "E-1")


def candidate(name: str = "HLS", kind: LinkKind = "raw") -> Candidate:
    return Candidate(PlayStep(name, kind), stream(name), REDIRECT)


async def mint(stack: Stack, name: str = "HLS", kind: LinkKind = "raw") -> dict[str, object]:
    minted = await stack.minter.mint(REQUEST, candidate(name, kind), SessionRef(None))
    answer: dict[str, object] = orjson.loads(minted.body)
    return answer


def epoch(value: object) -> float:
    assert isinstance(value, str)
    return datetime.fromisoformat(value).timestamp()


async def test_a_raw_hls_link_is_stream_link_then_live_stream(store: Store) -> None:
    async with link_stack(store) as stack:
        answer = await mint(stack)
    assert stack.platform.link_calls == ["HLS-RAW"]
    assert stack.platform.live_calls == 1
    assert answer["kind"] == "hls"
    assert answer["url"] == "https://cdn.example/HLS.m3u8"
    assert (answer["eventId"], answer["streamName"]) == ("E-1", "HLS")
    assert (answer["transactionId"], answer["cdn"]) == ("tx-1", "cdn-a")


async def test_a_theolive_link_has_a_channel_and_a_token(store: Store) -> None:
    platform = ScriptedPlatform(stream_types={"ULL": 4})
    async with link_stack(store, platform=platform) as stack:
        answer = await mint(stack, "ULL")
    assert answer["kind"] == "theolive"
    assert (answer["channelId"], answer["token"]) == ("theolive-ULL", "tok-1")


async def test_a_player_link_makes_one_call(store: Store) -> None:
    async with link_stack(store) as stack:
        answer = await mint(stack, kind="player")
    assert stack.platform.link_calls == ["HLS"]
    assert stack.platform.live_calls == 0
    assert (answer["kind"], answer["url"]) == ("player", "https://player.example/HLS")
    assert answer["provider"] == "igame"


@pytest.mark.parametrize(
    ("name", "kind", "ttl_s"),
    [("HLS", "raw", 600.0), ("HLS", "player", 600.0), ("ULL", "raw", 100.0)],
    ids=["hls", "player", "theolive"],
)
async def test_lifetimes_come_from_the_settings(
    store: Store, name: str, kind: LinkKind, ttl_s: float
) -> None:
    """refreshAfter is 80 % of the kind's lifetime, expiresAt all of it, from now."""
    platform = ScriptedPlatform(stream_types={"ULL": 4})
    async with link_stack(store, platform=platform) as stack:
        stack.clock.advance(42.0)
        answer = await mint(stack, name, kind)
    now = EPOCH + 42.0
    assert epoch(answer["refreshAfter"]) == pytest.approx(now + 0.8 * ttl_s, abs=0.001)
    assert epoch(answer["expiresAt"]) == pytest.approx(now + ttl_s, abs=0.001)


async def test_an_identical_request_gets_the_same_answer_without_a_call(store: Store) -> None:
    async with link_stack(store) as stack:
        first = await stack.minter.mint(REQUEST, candidate(), SessionRef(None))
        await eventually(lambda: _idle(stack), "the answer stored for dedupe")
        again = await stack.minter.mint(REQUEST, candidate(), SessionRef(None))
    assert (first.source, again.source) == ("upstream", "dedupe")
    assert again.body == first.body
    assert again.refresh_after == pytest.approx(first.refresh_after, abs=0.001)
    assert stack.platform.link_calls == ["HLS-RAW"]
    assert stack.sample("gateway_links_minted_total", kind="hls", source="dedupe") == 1


async def test_a_different_request_is_minted_again(store: Store) -> None:
    async with link_stack(store) as stack:
        await mint(stack)
        await eventually(lambda: _idle(stack), "the answer stored for dedupe")
        await mint(stack, kind="player")
    assert stack.platform.link_calls == ["HLS-RAW", "HLS"]


async def test_no_dedupe_copy_outlives_refresh_after(store: Store) -> None:
    """A 100 s THEOlive token renews at 80 s: a 300 s window keeps it 80 s at most."""
    platform = ScriptedPlatform(stream_types={"ULL": 4})
    async with link_stack(store, platform=platform, dedupe_window_s=300.0) as stack:
        await mint(stack, "ULL")
        await eventually(lambda: _idle(stack), "the answer stored for dedupe")
    [key] = [k async for k in store.scan_iter("*dedupe*")]
    assert 0 < await store.pttl(key) <= 80_000


async def test_a_session_joins_the_answer(store: Store) -> None:
    limits = SessionLimits(max_per_user=2, ttl_s=60.0, policy="refuse")
    async with link_stack(store, session_limits=limits) as stack:
        session = stack.service.new_session(PRINCIPAL, "E-1", None)
        minted = await stack.minter.mint(REQUEST, candidate(), session)
    answer = orjson.loads(minted.body)
    assert session.session is not None
    assert (answer["sessionId"], answer["heartbeatEveryS"]) == (session.session.session_id, 30.0)


@pytest.mark.parametrize(
    ("operation_code", "status", "code"),
    [
        (304, 404, "stream_not_found"),
        (306, 403, "geo_blocked"),
        (307, 502, "provider_failure"),
        (402, 409, "event_pending"),
        (399, 502, "upstream_error"),
    ],
    ids=["304", "306", "307", "402", "undocumented"],
)
async def test_upstream_refusals_become_problems(
    store: Store, operation_code: int, status: int, code: str
) -> None:
    platform = ScriptedPlatform(codes={"HLS": operation_code})
    async with link_stack(store, platform=platform) as stack:
        with pytest.raises(GatewayError) as refused:
            await mint(stack)
    assert (refused.value.status, refused.value.code) == (status, code)
    assert refused.value.operation_code == operation_code
    assert stack.platform.live_calls == 0


async def test_an_unknown_stream_type_is_a_bad_answer(store: Store) -> None:
    platform = ScriptedPlatform(stream_types={"HLS": 9})
    async with link_stack(store, platform=platform) as stack:
        with pytest.raises(GatewayError) as refused:
            await mint(stack)
    assert (refused.value.status, refused.value.code) == (502, "upstream_bad_response")


async def _idle(stack: Stack) -> bool:
    return len(stack.background) == 0


@pytest.mark.parametrize("operation_code", [300, 307, 999], ids=["operator", "provider", "unknown"])
async def test_upstream_text_stays_in_the_log_not_in_the_answer(
    store: Store, operation_code: int
) -> None:
    """ONEPlatform's message (here with the customerUid, upper-cased) is the operator's
    to read, scrubbed; the viewer gets the table's detail for the code."""
    message = f"Customer {UID.upper()} unknown; call +44 20 7946 0000 ext. 7"
    platform = ScriptedPlatform(codes={"HLS": operation_code}, messages={"HLS": message})
    async with link_stack(store, platform=platform) as stack:
        with capture_logs() as logs, pytest.raises(GatewayError) as refused:
            await mint(stack)
    body = orjson.dumps(refused.value.body()).decode()
    assert refused.value.detail == PROBLEMS[refused.value.code].detail
    assert "7946" not in body
    assert UID.casefold() not in body.casefold()
    [logged] = [
        e for e in logs if e["event"] in {"link_upstream_failed", "upstream_rejected_gateway"}
    ]
    assert "Customer [redacted] unknown; call +44 20 7946 0000 ext. 7" in logged["error"]
    assert UID.casefold() not in str(logged).casefold()
