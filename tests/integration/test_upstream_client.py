"""The ONEPlatform client against the simulator as a real process, over real HTTP.

One simulator serves the module (its event spacing set to 0 so that most tests can call
the event methods freely; one test sets it back to a real interval). Every test starts
from ``reset()``: empty call log, no faults, pins, scenario or geo additions.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import httpx
import pytest
from pydantic import SecretStr

from app.policy.countries import parse_code_list
from app.upstream.client import METHODS, OnePlatformClient, UpstreamCall, build_http_client
from app.upstream.errors import (
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
)
from app.upstream.models import HLS_STREAM_TYPE, THEOLIVE_STREAM_TYPE
from tests.support.polling import wait_until
from tests.support.redis_server import free_port
from tests.support.simulator import (
    SIM_METHODS,
    EventStatus,
    FaultKind,
    SimMethod,
    SimulatorHandle,
    run_simulator,
)

DAY = date(2026, 3, 7)
VIEWER_IP = "127.0.0.1"  # GB in the simulator's default geo table
REDIRECT = "https://operator.example/match-over"
TOKEN = re.compile(r"\A[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
THEO_CHANNEL = re.compile(r"\A[0-9a-z]{25}\Z")
LIST_METHODS: tuple[SimMethod, ...] = SIM_METHODS[:4]
LINK_METHODS: tuple[SimMethod, ...] = SIM_METHODS[4:]

# Two open events: the simulator answers stream/link in camelCase for one of them and in
# PascalCase for the other (a stable coin flip on the event id).
EVENT_IDS = ("IT-OPEN-1", "IT-OPEN-2")
SCENARIO_EVENTS: list[dict[str, object]] = [
    {
        "eventId": event_id,
        "eventStatusCode": "O",
        "title": "NEC v FC Twente",
        "sportCode": "FT",
        "startTime": "2030-06-01T18:00:00Z",
        "estimatedEndTime": "2030-06-01T20:00:00Z",
        "geoAllow": "UK, IE",
        "geoBlock": "",
    }
    for event_id in EVENT_IDS
]
SCENARIO_STREAMS: dict[str, list[dict[str, object]]] = {
    event_id: [
        {"uniqueStreamName": "HLS", "streamType": "HLS", "geoCountryAllow": "", "playerWidth": 640},
        {"uniqueStreamName": "ULL", "streamType": "ULL", "geoCountryBlock": "AT"},
    ]
    for event_id in EVENT_IDS
}


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorHandle]:
    with run_simulator({"SIM_EVENTS_MIN_INTERVAL_S": "0"}) as handle:
        yield handle


@pytest.fixture(autouse=True)
def fresh(sim: SimulatorHandle) -> None:
    sim.reset()


@dataclass
class Observed:
    client: OnePlatformClient
    calls: list[UpstreamCall] = field(default_factory=list)


@asynccontextmanager
async def connect(
    sim: SimulatorHandle,
    *,
    api_url: str | None = None,
    customer_uid: str | None = None,
    server_ip: str | None = None,
    read_timeout_s: float = 5.0,
) -> AsyncIterator[Observed]:
    """A client as the lifespan builds it, pointed at the simulator."""
    calls: list[UpstreamCall] = []
    async with build_http_client(
        connect_timeout_s=2.0,
        read_timeout_s=read_timeout_s,
        max_connections=10,
    ) as http:
        client = OnePlatformClient(
            http,
            api_url=api_url or sim.api_url,
            player_api_url=api_url or sim.api_url,
            customer_uid=SecretStr(customer_uid or sim.customer_uid),
            server_ip=server_ip or sim.server_ip,
            observer=calls.append,
        )
        yield Observed(client, calls)


@pytest.fixture
async def up(sim: SimulatorHandle) -> AsyncIterator[Observed]:
    async with connect(sim) as observed:
        yield observed


@pytest.fixture
def scenario(sim: SimulatorHandle) -> None:
    sim.load_scenario(SCENARIO_EVENTS, SCENARIO_STREAMS)


def raw_get(sim: SimulatorHandle, path: str) -> object:
    """What the simulator sends for ``path``, read without the client under test."""
    response = httpx.get(f"{sim.api_url}{path}", headers=sim.api_headers, timeout=5)
    response.raise_for_status()
    return response.json()


async def link(
    client: OnePlatformClient,
    *,
    event_id: str = EVENT_IDS[0],
    stream_name: str = "HLS",
    raw: bool = True,
    user_id: str = "viewer-1",
    user_ip: str = VIEWER_IP,
    redirect_url: str = REDIRECT,
) -> str:
    answer = await client.stream_link(
        user_id=user_id,
        user_ip=user_ip,
        event_id=event_id,
        stream_name=stream_name,
        redirect_url=redirect_url,
        raw=raw,
    )
    return answer.stream_link


# --- the six calls --------------------------------------------------------------------


async def test_events_by_date(sim: SimulatorHandle, up: Observed) -> None:
    result = await up.client.events_by_date(DAY)

    [call] = sim.calls("event_all")
    assert call["params"]["eventDate"] == "07-03-2026"
    assert call["params"]["xForwardedFor"] == "127.0.0.1"
    assert call["status"] == 200
    raw = raw_get(sim, f"/event/all/{sim.customer_uid}/07-03-2026")
    assert isinstance(raw, dict)
    assert 20 <= len(result.items) == len(raw["events"])
    assert result.skipped == 0
    for event, wire in zip(result.items, raw["events"], strict=True):
        assert event.event_id == wire["eventId"]
        assert event.event_status_code in {"P", "O", "C", "V"}
        assert event.geo_allow == parse_code_list(wire["geoAllow"])
        if "T:" in wire["startTime"]:
            assert event.start_time is None
        else:
            assert event.start_time == datetime.fromisoformat(wire["startTime"][:19]).replace(
                tzinfo=UTC
            )
    assert [c.outcome for c in up.calls] == ["ok"]


async def test_malformed_times_keep_their_event(sim: SimulatorHandle, up: Observed) -> None:
    """Across a few generated days some events carry ``YYYY-MM-DDT:HH:MM:SS`` times."""
    kept = []
    for day in range(1, 11):
        result = await up.client.events_by_date(date(2026, 3, day))
        assert result.skipped == 0
        kept += [e for e in result.items if e.start_time is None]
    assert kept, "the simulator served no malformed time over ten days"
    for event in kept:
        assert event.event_id
        assert event.title


async def test_open_events(sim: SimulatorHandle, up: Observed) -> None:
    today = datetime.now(UTC).date()
    pending = [
        e for e in (await up.client.events_by_date(today)).items if e.event_status_code != "O"
    ]
    sim.set_status(pending[0].event_id, "O")

    result = await up.client.open_events()

    assert pending[0].event_id in {e.event_id for e in result.items}
    assert {e.event_status_code for e in result.items} == {"O"}
    assert sim.calls("event_open")[0]["params"] == {"xForwardedFor": "127.0.0.1"}


async def test_streams_in_both_key_casings(sim: SimulatorHandle, up: Observed) -> None:
    events = (await up.client.events_by_date(DAY)).items
    keys = set()
    for event in events[:12]:
        result = await up.client.streams(event.event_id)
        raw = raw_get(sim, f"/stream/{sim.customer_uid}/{event.event_id}")
        assert isinstance(raw, dict)
        [(key, wire)] = raw.items()
        keys.add(key)
        assert [s.name for s in result.items] == [w["uniqueStreamName"] for w in wire]
        assert result.skipped == 0
        for stream in result.items:
            assert stream.is_ultra_low_latency is (stream.name == "ULL")
            assert stream.player_width == 640
    assert keys == {"EventStreams", "eventStreams"}


async def test_sports(sim: SimulatorHandle, up: Observed) -> None:
    result = await up.client.sports()
    assert len(result.items) == 72
    assert result.skipped == 0
    names = {s.code: s.name for s in result.items}
    assert names["HR"] == "Horse Racing"
    assert names["FT"] == "Football"
    assert sim.calls("sports")[0]["params"] == {"xForwardedFor": "127.0.0.1"}


@pytest.mark.usefixtures("scenario")
@pytest.mark.parametrize("event_id", EVENT_IDS)
async def test_raw_link_then_hls_url(sim: SimulatorHandle, up: Observed, event_id: str) -> None:
    ref = await link(up.client, event_id=event_id, stream_name="HLS", raw=True)
    live = await up.client.live_stream(ref)

    assert live.stream_type == HLS_STREAM_TYPE
    assert live.stream_link == f"https://dev.cdn.video.igame.media/abr/{event_id}/playlist.m3u8"
    assert live.content_delivery_network == "AAA"
    assert live.event_id == event_id
    assert TOKEN.match(live.stream_token)
    assert live.transaction_id.isdigit()
    [minted] = sim.calls("stream_link")
    assert minted["params"]["streamName"] == "HLS-RAW"
    assert minted["params"]["eventId"] == event_id
    assert minted["operationCode"] == 200
    [resolved] = sim.calls("live_stream")
    assert resolved["params"]["encodedTransactionRef"] == ref
    assert resolved["operationCode"] == 200


@pytest.mark.usefixtures("scenario")
@pytest.mark.parametrize("event_id", EVENT_IDS)
async def test_raw_link_then_theolive_channel(
    sim: SimulatorHandle, up: Observed, event_id: str
) -> None:
    ref = await link(up.client, event_id=event_id, stream_name="ULL", raw=True)
    live = await up.client.live_stream(ref)

    assert live.stream_type == THEOLIVE_STREAM_TYPE
    assert THEO_CHANNEL.match(live.stream_link)
    assert TOKEN.match(live.stream_token)
    assert live.content_delivery_network == "EC"
    assert sim.calls("stream_link")[0]["params"]["streamName"] == "ULL-RAW"


@pytest.mark.usefixtures("scenario")
@pytest.mark.parametrize("event_id", EVENT_IDS)
async def test_player_link(sim: SimulatorHandle, up: Observed, event_id: str) -> None:
    answer = await up.client.stream_link(
        user_id="viewer-1",
        user_ip=VIEWER_IP,
        event_id=event_id,
        stream_name="HLS",
        redirect_url=REDIRECT,
        raw=False,
    )
    assert answer.stream_link.startswith("https://player-test.igamemedia.com/liveplayerlegacy?tid=")
    assert (answer.stream_type, answer.provider, answer.message) == ("PLAYER", "IGM", "Success")
    [call] = sim.calls("stream_link")
    assert call["params"] == {
        "userId": "viewer-1",
        "userIp": VIEWER_IP,
        "eventId": event_id,
        "streamName": "HLS",
        "redirectUrl": REDIRECT,
        "xForwardedFor": "127.0.0.1",
    }


@pytest.mark.usefixtures("scenario")
async def test_every_call_carries_the_server_ip(sim: SimulatorHandle, up: Observed) -> None:
    await up.client.events_by_date(date(2030, 6, 1))
    await up.client.open_events()
    await up.client.streams(EVENT_IDS[0])
    await up.client.sports()
    await up.client.live_stream(await link(up.client, raw=True))
    await link(up.client, raw=False)

    calls = sim.calls()
    assert sorted({c["method"] for c in calls}) == sorted(METHODS)
    assert len(calls) == 7
    assert {c["params"].get("xForwardedFor") for c in calls} == {"127.0.0.1"}
    assert {c["operationCode"] for c in calls} <= {200}
    assert sim.customer_uid not in str(calls)
    assert [c.outcome for c in up.calls] == ["ok"] * 7


async def test_an_early_second_event_call_is_rate_limited(
    sim: SimulatorHandle, up: Observed
) -> None:
    sim.configure(events_min_interval_s=30)
    await up.client.events_by_date(DAY)
    with pytest.raises(UpstreamRateLimited) as caught:
        await up.client.events_by_date(date(2026, 3, 8))  # every date shares one budget
    assert caught.value.method == "event_all"
    await up.client.open_events()
    with pytest.raises(UpstreamRateLimited):
        await up.client.open_events()

    violations = sim.stats()["violations"]
    assert violations["event_all"] == 1
    assert violations["event_open"] == 1
    assert [c.outcome for c in up.calls] == ["ok", "rate_limited", "ok", "rate_limited"]
    assert sim.calls("event_all")[1]["violation"] is True


# --- every operation code the simulator can produce ------------------------------------

Provoke = Callable[[SimulatorHandle, Observed], Awaitable[object]]


async def _wrong_customer(sim: SimulatorHandle, up: Observed) -> object:
    async with connect(sim, customer_uid="not-our-customer") as other:
        await other.client.stream_link(
            user_id="v", user_ip=VIEWER_IP, event_id=EVENT_IDS[0], stream_name="HLS",
            redirect_url=REDIRECT, raw=True,
        )  # fmt: skip
    return None


async def _wrong_server_ip(sim: SimulatorHandle, up: Observed) -> object:
    async with connect(sim, server_ip="198.51.100.99") as other:
        return await other.client.sports()


async def _geo_blocked(sim: SimulatorHandle, up: Observed) -> object:
    sim.set_ip_countries({"100.64.0.0/10": "FR"})
    return await link(up.client, user_ip="100.64.1.1")


async def _provider_failure(sim: SimulatorHandle, up: Observed) -> object:
    sim.inject_fault("stream_link", "operation", operation_code=307, count=1)
    return await link(up.client)


async def _pinned(status: EventStatus, sim: SimulatorHandle, up: Observed) -> object:
    sim.set_status(EVENT_IDS[0], status)
    return await link(up.client)


async def _unknown_event_streams(sim: SimulatorHandle, up: Observed) -> object:
    return await up.client.streams("IT-NO-SUCH-EVENT")


OPERATION_CASES: list[tuple[str, int, type[OperationError], SimMethod, Provoke]] = [
    ("wrong-customer-uid", 300, InvalidCustomer, "stream_link", _wrong_customer),
    ("bad-user-ip", 301, InvalidUserIp, "stream_link", lambda s, u: link(u.client, user_ip="no")),
    ("blank-user-id", 302, InvalidUserId, "stream_link", lambda s, u: link(u.client, user_id="")),
    ("wrong-x-forwarded-for", 303, ServerNotAllowed, "sports", _wrong_server_ip),
    (
        "unknown-stream",
        304,
        InvalidStreamName,
        "stream_link",
        lambda s, u: link(u.client, stream_name="SD"),
    ),
    (
        "redirect-without-http",
        305,
        InvalidRedirectUrl,
        "stream_link",
        lambda s, u: link(u.client, redirect_url="operator.example/over"),
    ),
    ("viewer-region", 306, RegionBlocked, "stream_link", _geo_blocked),
    ("provider-failure", 307, ProviderFailure, "stream_link", _provider_failure),
    (
        "unknown-transaction-ref",
        308,
        InvalidTransactionRef,
        "live_stream",
        lambda s, u: u.client.live_stream("NDc2MDIyNTI2O2IwNWE1ZDU1"),
    ),
    (
        "unknown-event-link",
        401,
        EventNotFound,
        "stream_link",
        lambda s, u: link(u.client, event_id="IT-NO-SUCH-EVENT"),
    ),
    ("unknown-event-streams", 401, EventNotFound, "streams", _unknown_event_streams),
    ("pending", 402, EventPending, "stream_link", lambda s, u: _pinned("P", s, u)),
    ("closed", 403, EventClosed, "stream_link", lambda s, u: _pinned("C", s, u)),
    ("cancelled", 404, EventCancelled, "stream_link", lambda s, u: _pinned("V", s, u)),
]


@pytest.mark.usefixtures("scenario")
@pytest.mark.parametrize(
    ("code", "error_type", "method", "provoke"),
    [case[1:] for case in OPERATION_CASES],
    ids=[case[0] for case in OPERATION_CASES],
)
async def test_operation_codes_from_the_simulator(
    sim: SimulatorHandle,
    up: Observed,
    code: int,
    error_type: type[OperationError],
    method: SimMethod,
    provoke: Provoke,
) -> None:
    with pytest.raises(OperationError) as caught:
        await provoke(sim, up)
    assert type(caught.value) is error_type
    assert caught.value.operation_code == code
    assert caught.value.method == method
    assert caught.value.message  # the simulator's text for the code
    assert sim.calls(method)[-1]["operationCode"] == code


def test_the_simulator_covers_every_documented_code() -> None:
    assert {case[1] for case in OPERATION_CASES} == {*range(300, 309), *range(401, 405)}


# --- faults ------------------------------------------------------------------------------


async def call_method(client: OnePlatformClient, method: str) -> object:
    """One call of ``method`` with arguments the scenario accepts."""
    if method == "event_all":
        return await client.events_by_date(DAY)
    if method == "event_open":
        return await client.open_events()
    if method == "streams":
        return await client.streams(EVENT_IDS[0])
    if method == "sports":
        return await client.sports()
    if method == "stream_link":
        return await link(client)
    return await client.live_stream("NDc2MDIyNTI2O2IwNWE1ZDU1")


FAULTS: list[tuple[str, FaultKind, int, type[UpstreamError], str]] = [
    ("http-500", "status", 500, UpstreamServerError, "server_error"),
    ("http-502", "status", 502, UpstreamServerError, "server_error"),
    ("http-503", "status", 503, UpstreamServerError, "server_error"),
    ("http-429", "status", 429, UpstreamRateLimited, "rate_limited"),
    ("garbage", "garbage", 0, UpstreamBadResponse, "bad_response"),
    ("truncated", "truncated", 0, UpstreamBadResponse, "bad_response"),
    ("reset", "reset", 0, UpstreamConnectionError, "connection_error"),
]


@pytest.mark.usefixtures("scenario")
@pytest.mark.parametrize("method", SIM_METHODS)
@pytest.mark.parametrize(
    ("kind", "status", "error_type", "outcome"),
    [case[1:] for case in FAULTS],
    ids=[case[0] for case in FAULTS],
)
async def test_faults_become_typed_errors(
    sim: SimulatorHandle,
    up: Observed,
    method: SimMethod,
    kind: FaultKind,
    status: int,
    error_type: type[UpstreamError],
    outcome: str,
) -> None:
    sim.inject_fault(method, kind, status=status or 503, count=1)
    with pytest.raises(error_type) as caught:
        await call_method(up.client, method)
    assert type(caught.value) is error_type
    assert caught.value.method == method
    if isinstance(caught.value, UpstreamServerError):
        assert caught.value.status_code == status
    assert [c.outcome for c in up.calls] == [outcome]
    assert len(sim.calls(method)) == 1


@pytest.mark.usefixtures("scenario")
@pytest.mark.parametrize("method", LIST_METHODS)
async def test_an_emptied_answer_is_an_empty_list(
    sim: SimulatorHandle, up: Observed, method: SimMethod
) -> None:
    sim.inject_fault(method, "empty", count=1)
    result = await call_method(up.client, method)
    assert getattr(result, "items", None) == ()
    assert getattr(result, "skipped", None) == 0
    assert [c.outcome for c in up.calls] == ["ok"]


@pytest.mark.usefixtures("scenario")
@pytest.mark.parametrize("method", LINK_METHODS)
async def test_an_emptied_link_answer_is_a_bad_response(
    sim: SimulatorHandle, up: Observed, method: SimMethod
) -> None:
    sim.inject_fault(method, "empty", count=1)
    with pytest.raises(UpstreamBadResponse):
        await call_method(up.client, method)
    assert [c.outcome for c in up.calls] == ["bad_response"]


async def test_a_closed_port_is_a_connection_error(sim: SimulatorHandle) -> None:
    closed = f"http://127.0.0.1:{free_port()}/api"
    async with connect(sim, api_url=closed) as down:
        for method in SIM_METHODS:
            with pytest.raises(UpstreamConnectionError) as caught:
                await call_method(down.client, method)
            assert caught.value.method == method
    assert [c.outcome for c in down.calls] == ["connection_error"] * len(METHODS)


@pytest.mark.usefixtures("scenario")
@pytest.mark.parametrize("method", ["event_all", "sports", "stream_link", "live_stream"])
async def test_an_answer_slower_than_the_read_timeout(
    sim: SimulatorHandle, method: SimMethod
) -> None:
    sim.inject_fault(method, "delay", delay_s=0.8, count=1)
    async with connect(sim, read_timeout_s=0.2) as slow:
        with pytest.raises(UpstreamTimeout) as caught:
            await call_method(slow.client, method)
    assert caught.value.method == method
    assert [c.outcome for c in slow.calls] == ["timeout"]
    # Let the simulator finish the abandoned call so it cannot land in the next test's log
    # (it lives in another process: polling its log is the only way to know).
    await asyncio.to_thread(wait_until, lambda: sim.calls(method), "the abandoned call logged")
