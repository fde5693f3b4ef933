"""``POST /api/stream/link`` and ``POST /api/liveStream``."""

from __future__ import annotations

import base64
import re
from datetime import date
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from app.simulator.events import casing_flag
from app.simulator.generator import generate_day
from tests.unit.simulator.data import CUSTOMER, SEED, link_params

LINK_KEYS = ["streamLink", "streamType", "provider", "message", "operationCode"]
PASCAL_LINK_KEYS = [k[0].upper() + k[1:] for k in LINK_KEYS]


def _keys(event_id: str) -> list[str]:
    return PASCAL_LINK_KEYS if casing_flag(SEED, event_id, "link") else LINK_KEYS


def _plain(body: dict[str, object]) -> dict[str, object]:
    """The link body with camelCase keys, whichever casing it came in."""
    return {k[0].lower() + k[1:]: v for k, v in body.items()}


async def _link(client: httpx.AsyncClient, **overrides: str | None) -> dict[str, object]:
    response = await client.post("/api/stream/link", params=link_params(**overrides))
    assert response.status_code == 200
    body: dict[str, object] = response.json()
    return body


async def test_raw_link_is_an_encoded_transaction_reference(scenario: httpx.AsyncClient) -> None:
    body = await _link(scenario, streamName="HLS-RAW")
    assert list(body) == _keys("OPEN-1")
    plain = _plain(body)
    assert plain["streamType"] == "STREAM"
    assert plain["provider"] == "XVI"
    assert plain["message"] == "Success"
    assert plain["operationCode"] == 200
    decoded = base64.b64decode(str(plain["streamLink"])).decode()
    assert re.fullmatch(
        r"\d{9};[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}", decoded
    )


async def test_player_link(scenario: httpx.AsyncClient) -> None:
    plain = _plain(await _link(scenario))
    assert plain["streamType"] == "PLAYER"
    assert plain["provider"] == "IGM"
    assert plain["operationCode"] == 200
    url = urlsplit(str(plain["streamLink"]))
    assert (url.scheme, url.netloc, url.path) == (
        "https",
        "player-test.igamemedia.com",
        "/liveplayerlegacy",
    )
    query = parse_qs(url.query)
    assert re.fullmatch(r"\d{9}", query["tid"][0])
    assert re.fullmatch(r"[0-9a-f-]{36}", query["tk"][0])


async def test_both_key_casings_occur_across_generated_events(client: httpx.AsyncClient) -> None:
    await client.post("/_sim/config", json={"linkRatePerS": 1000})
    seen = set()
    for event in generate_day(SEED, date(2026, 11, 22))[:12]:
        await client.post(f"/_sim/events/{event.event_id}/status", json={"status": "O"})
        event_id = event.event_id
        response = await client.post(
            "/api/stream/link",
            params=link_params(eventId=event_id, userIp="8.8.8.8", streamName="HLS-RAW"),
        )
        body = response.json()
        if event.geo_allow or any(s.geo_allow for s in event.streams):
            continue  # an unmapped viewer is refused where there is an allow list
        assert list(body) == _keys(event_id), body
        assert _plain(body)["operationCode"] == 200
        seen.add(tuple(body))
    assert seen == {tuple(LINK_KEYS), tuple(PASCAL_LINK_KEYS)}


@pytest.mark.parametrize(
    "spelling",
    [
        {"customerUID": CUSTOMER, "eventID": "OPEN-1", "redirectURL": "https://o.example/"},
        {"CUSTOMERUID": CUSTOMER, "EVENTID": "OPEN-1", "REDIRECTURL": "https://o.example/"},
        {"customeruid": CUSTOMER, "eventid": "OPEN-1", "redirecturl": "https://o.example/"},
    ],
    ids=["guide-upper", "all-upper", "all-lower"],
)
async def test_query_parameter_names_are_case_insensitive(
    scenario: httpx.AsyncClient, spelling: dict[str, str]
) -> None:
    params = {"userId": "v", "userIp": "127.0.0.1", "streamName": "HLS-RAW", **spelling}
    response = await scenario.post("/api/stream/link", params=params)
    assert _plain(response.json())["operationCode"] == 200


async def test_fields_may_come_as_a_json_body(scenario: httpx.AsyncClient) -> None:
    response = await scenario.post("/api/stream/link", json=link_params(streamName="ULL-RAW"))
    assert _plain(response.json())["operationCode"] == 200
    # The query wins over the body.
    response = await scenario.post(
        "/api/stream/link", params={"eventId": "PEND-1"}, json=link_params()
    )
    assert _plain(response.json())["operationCode"] == 402


@pytest.mark.parametrize(
    ("overrides", "headers", "code"),
    [
        ({"customerUid": "someone-else"}, None, 300),
        ({"customerUid": None}, None, 300),
        ({"customerUid": "someone-else"}, {"X-Forwarded-For": "8.8.8.8"}, 300),
        ({}, {"X-Forwarded-For": "8.8.8.8"}, 303),
        ({"userId": None, "userIp": "bad"}, {"X-Forwarded-For": "8.8.8.8"}, 303),
        ({"userId": None}, None, 302),
        ({"userId": "   "}, None, 302),
        ({"userId": "", "userIp": "bad", "eventId": "NOPE"}, None, 302),
        ({"userIp": "bad", "eventId": "NOPE"}, None, 301),
        ({"userIp": None}, None, 301),
        ({"userIp": "999.1.1.1"}, None, 301),
        ({"eventId": "NOPE-1", "streamName": "nope"}, None, 401),
        ({"eventId": None}, None, 401),
        ({"eventId": "PEND-1", "streamName": "nope"}, None, 402),
        ({"eventId": "CLOSED-1"}, None, 403),
        ({"eventId": "VOID-1"}, None, 404),
        ({"streamName": "SD", "redirectUrl": "bad"}, None, 304),
        ({"streamName": None}, None, 304),
        ({"eventId": "OPEN-2", "streamName": "ULL-RAW"}, None, 304),
        ({"redirectUrl": "ftp://operator.example/", "userIp": "192.0.2.1"}, None, 305),
        ({"redirectUrl": "operator.example/done"}, None, 305),
        ({"redirectUrl": None}, None, 305),
        ({"eventId": "GEO-1", "userIp": "192.0.2.1"}, None, 306),
        ({"eventId": "GEO-1", "userIp": "203.0.113.5"}, None, 306),
        ({"eventId": "GEO-1", "userIp": "8.8.8.8"}, None, 306),
        ({"eventId": "GEO-1", "userIp": "127.0.0.1"}, None, 200),
        ({"eventId": "GEO-1", "userIp": "10.20.30.40"}, None, 200),
        ({"eventId": "OPEN-2", "userIp": "127.0.0.1"}, None, 306),
        ({"eventId": "OPEN-2", "userIp": "10.20.30.40"}, None, 200),
        ({"eventId": "OPEN-1", "userIp": "8.8.8.8"}, None, 200),
    ],
    ids=[
        "300-wrong-customer",
        "300-no-customer",
        "300-before-303",
        "303-server-not-whitelisted",
        "303-before-302",
        "302-no-user",
        "302-blank-user",
        "302-before-301",
        "301-before-401",
        "301-no-ip",
        "301-not-an-ip",
        "401-before-304",
        "401-no-event",
        "402-before-304",
        "403-closed",
        "404-void",
        "304-before-305",
        "304-no-stream",
        "304-stream-of-another-event",
        "305-ftp-before-306",
        "305-relative",
        "305-missing",
        "306-not-allowed-fr",
        "306-blocked-subdivision",
        "306-unknown-viewer-with-allow-list",
        "200-uk-means-gb",
        "200-us-covers-us-nj",
        "306-stream-block-beats-allow",
        "200-stream-allows-us",
        "200-unknown-viewer-no-lists",
    ],
)
async def test_operation_codes_in_order(
    scenario: httpx.AsyncClient,
    overrides: dict[str, str | None],
    headers: dict[str, str] | None,
    code: int,
) -> None:
    response = await scenario.post(
        "/api/stream/link", params=link_params(**overrides), headers=headers
    )
    assert response.status_code == 200
    body = _plain(response.json())
    assert body["operationCode"] == code
    if code != 200:
        assert body["streamLink"] is None
        assert body["streamType"] is None
        assert body["provider"] is None
        assert isinstance(body["message"], str)
        assert body["message"] != "Success"


async def test_error_messages_are_the_guides(scenario: httpx.AsyncClient) -> None:
    expected = {
        "PEND-1": "Event is still pending.",
        "CLOSED-1": "Event is now closed.",
        "VOID-1": "Event is cancelled.",
        "NOPE": "Event not found.",
    }
    for event_id, message in expected.items():
        body = _plain(await _link(scenario, eventId=event_id))
        assert body["message"] == message
    body = _plain(await _link(scenario, eventId="GEO-1", userIp="192.0.2.1"))
    assert body["message"] == "This event is unavailable in the requesting user's region."


async def test_pending_error_uses_the_events_casing(scenario: httpx.AsyncClient) -> None:
    body = await _link(scenario, eventId="PEND-1")
    assert list(body) == _keys("PEND-1")
    assert list(await _link(scenario, eventId="NOPE")) == LINK_KEYS


async def _raw_ref(client: httpx.AsyncClient, stream: str) -> str:
    body = _plain(await _link(client, streamName=f"{stream}-RAW"))
    assert body["operationCode"] == 200
    return str(body["streamLink"])


async def test_live_stream_of_an_hls_reference(scenario: httpx.AsyncClient) -> None:
    ref = await _raw_ref(scenario, "HLS")
    transaction_id, token = base64.b64decode(ref).decode().split(";")
    response = await scenario.post("/api/liveStream", params={"encodedTransactionRef": ref})
    assert response.status_code == 200
    assert response.json() == {
        "StreamLink": "https://dev.cdn.video.igame.media/abr/OPEN-1/playlist.m3u8",
        "StreamType": 2,
        "ContentDeliveryNetwork": "AAA",
        "TransactionId": transaction_id,
        "StreamToken": token,
        "EventId": "OPEN-1",
        "Message": "Success",
        "OperationCode": 200,
    }


async def test_live_stream_of_an_ull_reference(scenario: httpx.AsyncClient) -> None:
    ref = await _raw_ref(scenario, "ULL")
    response = await scenario.post("/api/liveStream", json={"encodedTransactionRef": ref})
    body = response.json()
    assert body["StreamType"] == 4
    assert body["ContentDeliveryNetwork"] == "EC"
    assert re.fullmatch(r"[0-9a-z]{25}", body["StreamLink"])
    assert body["EventId"] == "OPEN-1"
    assert body["OperationCode"] == 200
    again = await scenario.post("/api/liveStream", params={"encodedtransactionref": ref})
    assert again.json()["StreamLink"] == body["StreamLink"]


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"encodedTransactionRef": ""},
        {"encodedTransactionRef": "!!not base64!!"},
        {"encodedTransactionRef": base64.b64encode(b"123456789;unknown").decode()},
    ],
    ids=["missing", "empty", "malformed", "unknown"],
)
async def test_live_stream_of_a_bad_reference_is_308(
    scenario: httpx.AsyncClient, params: dict[str, str]
) -> None:
    response = await scenario.post("/api/liveStream", params=params)
    assert response.status_code == 200
    assert response.json() == {
        "StreamLink": None,
        "StreamType": None,
        "ContentDeliveryNetwork": None,
        "TransactionId": None,
        "StreamToken": None,
        "EventId": None,
        "Message": "Invalid value of encoded transaction reference",
        "OperationCode": 308,
    }


async def test_player_links_are_not_references(scenario: httpx.AsyncClient) -> None:
    player = _plain(await _link(scenario))
    tid = parse_qs(urlsplit(str(player["streamLink"])).query)["tid"][0]
    token = parse_qs(urlsplit(str(player["streamLink"])).query)["tk"][0]
    ref = base64.b64encode(f"{tid};{token}".encode()).decode()
    response = await scenario.post("/api/liveStream", params={"encodedTransactionRef": ref})
    assert response.json()["OperationCode"] == 308


async def test_live_stream_needs_a_whitelisted_caller(
    scenario: httpx.AsyncClient, bare_client: httpx.AsyncClient
) -> None:
    ref = await _raw_ref(scenario, "HLS")
    response = await bare_client.post("/api/liveStream", params={"encodedTransactionRef": ref})
    assert response.status_code == 200
    assert response.json()["OperationCode"] == 303
    assert response.json()["StreamLink"] is None
