"""The client against a scripted upstream (``httpx.MockTransport``): what goes on the
wire, how answers are read, how failures are translated, and what the observer sees."""

from __future__ import annotations

import asyncio
import gzip
from datetime import date
from urllib.parse import unquote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from app.upstream.client import MAX_BODY_BYTES, METHODS, OnePlatformClient
from app.upstream.errors import (
    InvalidCustomer,
    UpstreamBadResponse,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamServerError,
    UpstreamTimeout,
)
from app.upstream.models import Event
from tests.unit.upstream.fakes import (
    API,
    PLAYER_API,
    SERVER_IP,
    UID,
    Handler,
    json_response,
    scripted_client,
)

EVENT = {"eventId": "E-1", "title": "A v B", "startTime": "2026-03-07T10:00:00Z"}


def _answer(body: object, status: int = 200) -> Handler:
    return lambda request: json_response(body, status)


async def _every_method(client: OnePlatformClient) -> None:
    """One call of each of the six methods; errors are left to the caller's handler."""
    await client.events_by_date(date(2026, 3, 7))
    await client.open_events()
    await client.streams("E-1")
    await client.sports()
    await client.stream_link(
        user_id="u-1",
        user_ip="198.51.100.7",
        event_id="E-1",
        stream_name="HLS",
        redirect_url="https://operator.example/",
        raw=False,
    )
    await client.live_stream("ref")


# --- the wire -------------------------------------------------------------------------


async def test_requests_as_the_guide_describes_them() -> None:
    def upstream(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/stream/link"):
            return json_response({"streamLink": "L", "operationCode": 200})
        if request.url.path.endswith("/liveStream"):
            return json_response({"StreamLink": "U", "StreamType": 2, "OperationCode": 200})
        return json_response({})

    async with scripted_client(upstream) as (client, recorded):
        await _every_method(client)
    sent = [(r.method, r.url.path) for r in recorded.requests]
    assert sent == [
        ("GET", f"/api/event/all/{UID}/07-03-2026"),
        ("GET", f"/api/event/open/{UID}"),
        ("GET", f"/api/stream/{UID}/E-1"),
        ("GET", f"/api/sport/all/{UID}"),
        ("POST", "/api/stream/link"),
        ("POST", "/api/liveStream"),
    ]
    assert recorded.requests[-1].url.host == httpx.URL(PLAYER_API).host
    assert recorded.requests[0].url.host == httpx.URL(API).host
    for request in recorded.requests:
        assert request.headers["X-Forwarded-For"] == SERVER_IP
        assert request.headers["Accept"] == "application/json"
    link = recorded.requests[4].url.params
    assert dict(link) == {
        "customerUid": UID,
        "userId": "u-1",
        "userIp": "198.51.100.7",
        "eventId": "E-1",
        "streamName": "HLS",
        "redirectUrl": "https://operator.example/",
    }
    assert dict(recorded.requests[5].url.params) == {"encodedTransactionRef": "ref"}
    assert [call.method for call in recorded.calls] == list(METHODS)
    assert {call.outcome for call in recorded.calls} == {"ok"}


@pytest.mark.parametrize(
    ("day", "wire"),
    [
        (date(2026, 3, 7), "07-03-2026"),
        (date(2026, 12, 31), "31-12-2026"),
        (date(999, 2, 1), "01-02-0999"),
    ],
)
async def test_event_dates_are_dd_mm_yyyy(day: date, wire: str) -> None:
    async with scripted_client(_answer({"events": []})) as (client, recorded):
        await client.events_by_date(day)
    assert recorded.requests[0].url.path.rsplit("/", 1)[1] == wire


async def test_path_parts_are_quoted() -> None:
    async with scripted_client(_answer({}), uid="a/b c") as (client, recorded):
        await client.streams("E 1/2?x")
    raw_path = recorded.requests[0].url.raw_path.decode()
    assert raw_path == "/api/stream/a%2Fb%20c/E%201%2F2%3Fx"
    assert unquote(raw_path.rsplit("/", 1)[1]) == "E 1/2?x"


@pytest.mark.parametrize(
    ("name", "raw", "sent"),
    [
        ("HLS", True, "HLS-RAW"),
        ("HLS", False, "HLS"),
        ("ULL", True, "ULL-RAW"),
        ("HLS-RAW", True, "HLS-RAW"),
        ("hls-raw", True, "hls-raw"),
    ],
)
async def test_raw_links_append_the_suffix_once(name: str, raw: bool, sent: str) -> None:
    async with scripted_client(_answer({"streamLink": "x", "operationCode": 200})) as (
        client,
        recorded,
    ):
        await client.stream_link(
            user_id="u", user_ip="1.2.3.4", event_id="E", stream_name=name, redirect_url="", raw=raw
        )
    assert recorded.requests[0].url.params["streamName"] == sent


# --- reading answers --------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"eventStreams": [{"uniqueStreamName": "HLS"}]},
        {"EventStreams": [{"UniqueStreamName": "HLS"}]},
        {"EVENTSTREAMS": [{"uniquestreamname": "HLS"}]},
        [{"uniqueStreamName": "HLS"}],
    ],
    ids=["camel", "pascal", "upper", "bare-list"],
)
async def test_streams_under_any_key_casing(body: object) -> None:
    async with scripted_client(_answer(body)) as (client, _):
        result = await client.streams("E-1")
    assert [s.name for s in result.items] == ["HLS"]
    assert result.skipped == 0


async def test_unusable_items_are_skipped_and_counted_the_rest_kept() -> None:
    events = [
        EVENT,
        {"title": "no id"},
        {"eventId": ""},
        "not an object",
        None,
        {"EventId": "E-2", "startTime": "2020-11-09T:00:00:00", "geoAllow": "UK, US"},
    ]
    async with scripted_client(_answer({"events": events})) as (client, recorded):
        with capture_logs() as logs:
            result = await client.events_by_date(date(2026, 3, 7))
    assert [e.event_id for e in result.items] == ["E-1", "E-2"]
    assert result.skipped == 4
    assert result.items[1].start_time is None
    assert result.items[1].geo_allow == ("GB", "US")
    assert logs == [
        {
            "event": "upstream_items_skipped",
            "log_level": "warning",
            "method": "event_all",
            "skipped": 4,
            "kept": 2,
        }
    ]
    assert recorded.calls[-1].outcome == "ok"


@pytest.mark.parametrize(
    "body", [{}, {"events": None}, {"events": []}, {"message": "Success", "operationCode": 200}]
)
async def test_an_answer_without_events_is_an_empty_list(body: object) -> None:
    async with scripted_client(_answer(body)) as (client, _):
        result = await client.open_events()
    assert result.items == ()
    assert result.skipped == 0


async def test_sports_and_their_codes() -> None:
    body = {"Sports": [{"Code": "HR", "Name": "Horse Racing"}, {"Code": "", "Name": "?"}]}
    async with scripted_client(_answer(body)) as (client, _):
        result = await client.sports()
    assert [(s.code, s.name) for s in result.items] == [("HR", "Horse Racing")]
    assert result.skipped == 1


# --- failures -------------------------------------------------------------------------

BAD_ANSWERS: list[tuple[str, httpx.Response]] = [
    ("html", httpx.Response(200, content=b"<html>busy</html>")),
    ("truncated", httpx.Response(200, content=b'{"events": [{"eventId": "E-')),
    ("zero-length", httpx.Response(200, content=b"")),
    ("list-is-not-a-list", json_response({"events": {"eventId": "E-1"}})),
    ("redirect", httpx.Response(302, headers={"Location": "https://elsewhere.example/"})),
    ("404-without-code", json_response({"error": "no route"}, 404)),
    ("400-unreadable-code", json_response({"operationCode": "²"}, 400)),
    ("400-negative-code-text", json_response({"operationCode": "--300"}, 400)),
]


@pytest.mark.parametrize(
    "response", [case[1] for case in BAD_ANSWERS], ids=[case[0] for case in BAD_ANSWERS]
)
async def test_unusable_answers_are_bad_responses(response: httpx.Response) -> None:
    async with scripted_client(lambda request: response) as (client, recorded):
        with pytest.raises(UpstreamBadResponse) as caught:
            await client.events_by_date(date(2026, 3, 7))
    assert caught.value.method == "event_all"
    assert recorded.calls[-1].outcome == "bad_response"


@pytest.mark.parametrize(
    "body",
    [{"streamLink": None, "operationCode": 200}, {}, [], "Success", None],
    ids=["null-link", "empty-object", "list", "string", "null"],
)
async def test_an_unusable_link_answer_is_a_bad_response(body: object) -> None:
    async with scripted_client(_answer(body)) as (client, recorded):
        with pytest.raises(UpstreamBadResponse, match="unusable answer"):
            await client.stream_link(
                user_id="u", user_ip="1.2.3.4", event_id="E", stream_name="HLS", redirect_url="",
                raw=True,
            )  # fmt: skip
    assert recorded.calls[-1].outcome == "bad_response"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("300", InvalidCustomer), (" 300 ", InvalidCustomer), (300.0, InvalidCustomer)],
)
async def test_operation_codes_as_text_or_float(value: object, expected: type[Exception]) -> None:
    async with scripted_client(_answer({"operationCode": value}, 400)) as (client, _):
        with pytest.raises(expected):
            await client.sports()


@pytest.mark.parametrize(
    ("response", "retry_after_s"),
    [
        (json_response({"operationCode": 429}, 429, **{"Retry-After": "7"}), 7.0),
        (json_response({}, 429, **{"Retry-After": "-3"}), 0.0),
        (json_response({}, 429, **{"Retry-After": "inf"}), None),
        (json_response({}, 429, **{"Retry-After": "nan"}), None),
        (json_response({}, 429, **{"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"}), None),
        (httpx.Response(429, content=b"slow down"), None),
        (json_response({"message": "Rate limit exceeded", "operationCode": 429}, 400), None),
    ],
    ids=["seconds", "negative", "inf", "nan", "http-date", "no-header", "code-in-body"],
)
async def test_rate_limited(response: httpx.Response, retry_after_s: float | None) -> None:
    async with scripted_client(lambda request: response) as (client, recorded):
        with pytest.raises(UpstreamRateLimited) as caught:
            await client.events_by_date(date(2026, 3, 7))
    assert caught.value.retry_after_s == retry_after_s
    assert recorded.calls[-1].outcome == "rate_limited"


@pytest.mark.parametrize(
    ("response", "status"),
    [
        (httpx.Response(500, content=b"oops"), 500),
        (json_response({"operationCode": 503}, 503), 503),
        (httpx.Response(504), 504),
        (json_response({"message": "Internal Server Error", "operationCode": 500}, 400), 500),
    ],
    ids=["500-text", "503-json", "504-empty", "code-500-in-body"],
)
async def test_server_errors(response: httpx.Response, status: int) -> None:
    async with scripted_client(lambda request: response) as (client, recorded):
        with pytest.raises(UpstreamServerError) as caught:
            await client.sports()
    assert caught.value.status_code == status
    assert recorded.calls[-1].outcome == "server_error"


TRANSPORT_FAILURES: list[tuple[type[httpx.RequestError], type[UpstreamError], str]] = [
    (httpx.ConnectTimeout, UpstreamTimeout, "timeout"),
    (httpx.ReadTimeout, UpstreamTimeout, "timeout"),
    (httpx.PoolTimeout, UpstreamTimeout, "timeout"),
    (httpx.ConnectError, UpstreamConnectionError, "connection_error"),
    (httpx.RemoteProtocolError, UpstreamConnectionError, "connection_error"),
    (httpx.ReadError, UpstreamConnectionError, "connection_error"),
    (httpx.DecodingError, UpstreamBadResponse, "bad_response"),
]


@pytest.mark.parametrize(
    ("raised", "expected", "outcome"),
    TRANSPORT_FAILURES,
    ids=[case[0].__name__ for case in TRANSPORT_FAILURES],
)
async def test_transport_failures_are_translated_without_their_url(
    raised: type[httpx.RequestError], expected: type[UpstreamError], outcome: str
) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise raised(f"failed talking to {request.url}", request=request)

    async with scripted_client(fail) as (client, recorded):
        for call in range(len(METHODS)):
            with pytest.raises(expected) as caught:
                await _nth_method(client, call)
            error = caught.value
            assert error.__cause__ is None
            assert error.__context__ is None
            assert UID not in str(error)
            assert UID not in repr(error)
    assert [c.method for c in recorded.calls] == list(METHODS)
    assert {c.outcome for c in recorded.calls} == {outcome}


async def _nth_method(client: OnePlatformClient, index: int) -> object:
    name = METHODS[index]
    if name == "event_all":
        return await client.events_by_date(date(2026, 3, 7))
    if name == "event_open":
        return await client.open_events()
    if name == "streams":
        return await client.streams("E-1")
    if name == "sports":
        return await client.sports()
    if name == "stream_link":
        return await client.stream_link(
            user_id="u", user_ip="1.2.3.4", event_id="E", stream_name="HLS", redirect_url="",
            raw=True,
        )  # fmt: skip
    return await client.live_stream("ref")


BODY_SIZES = [
    pytest.param(1024 * 1024, False, None, id="1-MiB-plain"),
    pytest.param(MAX_BODY_BYTES - 32, True, None, id="just-under-the-cap-gzip"),
    pytest.param(MAX_BODY_BYTES, False, UpstreamBadResponse, id="over-the-cap-plain"),
    pytest.param(MAX_BODY_BYTES, True, UpstreamBadResponse, id="over-the-cap-gzip-bomb"),
]


@pytest.mark.parametrize(("padding", "gzipped", "expected"), BODY_SIZES)
async def test_bodies_are_read_up_to_the_cap(
    padding: int, gzipped: bool, expected: type[UpstreamError] | None
) -> None:
    body = b'{"sports": [], "pad": "' + b" " * padding + b'"}'
    response = (
        httpx.Response(200, content=gzip.compress(body), headers={"Content-Encoding": "gzip"})
        if gzipped  # a gzip bomb: ~32 KiB on the wire
        else httpx.Response(200, content=body)
    )
    async with scripted_client(lambda request: response) as (client, recorded):
        if expected is None:
            assert (await client.sports()).items == ()
        else:
            with pytest.raises(expected, match="too large"):
                await client.sports()
    assert recorded.calls[-1].outcome == ("ok" if expected is None else "bad_response")


async def test_decode_failures_carry_no_body() -> None:
    body = f'{{"events": [{{"eventId": "{UID}"'.encode()
    async with scripted_client(lambda request: httpx.Response(200, content=body)) as (client, _):
        with pytest.raises(UpstreamBadResponse) as caught:
            await client.open_events()
    assert caught.value.__context__ is None
    assert caught.value.__cause__ is None


async def test_upstream_messages_lose_the_customer_uid_and_are_capped() -> None:
    message = f"Customer {UID} is invalid, please contact support.\n" + "x" * 1000
    async with scripted_client(_answer({"message": message, "operationCode": 300}, 400)) as (
        client,
        _,
    ):
        with pytest.raises(InvalidCustomer) as caught:
            await client.sports()
    assert UID not in str(caught.value)
    assert caught.value.message.startswith("Customer [redacted] is invalid, please contact")
    assert "\n" not in caught.value.message
    assert len(caught.value.message) <= 300


@pytest.mark.parametrize("spelt", [UID.upper(), UID.title()], ids=["upper", "title"])
async def test_the_customer_uid_is_scrubbed_whatever_its_case(spelt: str) -> None:
    answer = _answer({"message": f"Customer {spelt} is invalid", "operationCode": 300}, 400)
    async with scripted_client(answer) as (client, _):
        with pytest.raises(InvalidCustomer) as caught:
            await client.sports()
    assert caught.value.message == "Customer [redacted] is invalid"


async def test_a_crash_is_not_observed_as_ok() -> None:
    def explode(request: httpx.Request) -> httpx.Response:
        raise RuntimeError("bug")

    async with scripted_client(explode) as (client, recorded):
        with pytest.raises(RuntimeError):
            await client.sports()
    assert recorded.calls[-1].outcome == "error"


# --- property: whatever the upstream answers, only UpstreamError or a result -------------

KEYS = st.sampled_from(
    ["events", "EventStreams", "Sports", "operationCode", "OperationCode", "message",
     "streamLink", "StreamLink", "StreamType", "eventId", "uniqueStreamName", "Code"]
)  # fmt: skip
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(KEYS | st.text(max_size=6), children, max_size=5)
    ),
    max_leaves=10,
)
BODIES = st.one_of(
    JSON.map(lambda value: httpx.Response(200, json=value)),
    st.tuples(st.integers(100, 599), JSON).map(lambda sj: httpx.Response(sj[0], json=sj[1])),
    st.binary(max_size=40).map(lambda raw: httpx.Response(200, content=raw)),
)


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(response=BODIES, method=st.integers(0, len(METHODS) - 1))
def test_any_answer_gives_a_result_or_an_upstream_error(
    response: httpx.Response, method: int
) -> None:
    async def run() -> tuple[object, str]:
        async with scripted_client(lambda request: response) as (client, recorded):
            try:
                result: object = await _nth_method(client, method)
            except UpstreamError as exc:
                result = exc
        return result, recorded.calls[-1].outcome

    result, outcome = asyncio.run(run())
    if isinstance(result, UpstreamError):
        assert result.__context__ is None
        assert outcome != "ok"
    else:
        assert outcome == "ok"


def test_event_model_is_exported_for_the_catalogue() -> None:
    assert Event.model_validate(EVENT).event_id == "E-1"
