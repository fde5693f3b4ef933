"""Link minting end to end: a real simulator, a real gateway process, a real redis-server.

The gateway trusts the loopback peer as its load balancer (``TRUSTED_PROXIES``), so the
test client chooses the viewer's IP with ``X-Forwarded-For`` and the country with the
edge header. Every test asserts on the gateway's answer AND on what the simulator's
call log shows the upstream received: userId, userIp, ``X-Forwarded-For`` = the server
IP, and the ``-RAW`` suffix for raw links only.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import redis
from pydantic import TypeAdapter

from app.api.schemas import LinkOut
from tests.support.gateway import gateway_env, run_gateway
from tests.support.jwt_keys import HS_SECRET, sign_hs256
from tests.support.polling import wait_until
from tests.support.redis_server import database_url, fresh_database
from tests.support.simulator import SimCall, SimulatorHandle, run_simulator

pytestmark = pytest.mark.redis

STORE_DB = 1  # this module's gateway's database on the shared redis-server

API_KEY = "test-api-key-0123456789abcdef0123456789"
COUNTRY_HEADER = "CF-IPCountry"
SERVER_IP = "127.0.0.1"
OPEN = "E2E-OPEN-1"
DEFAULT_REDIRECT = "https://operator.example/after"
PLAYER_URL = "https://player-test.igamemedia.com/liveplayerlegacy?"
LINKS = TypeAdapter(LinkOut)
WARM_TIMEOUT_S = 20.0


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def scenario() -> tuple[list[dict[str, object]], dict[str, list[dict[str, object]]]]:
    now = datetime.now(UTC)
    events: list[dict[str, object]] = [
        {
            "eventId": OPEN,
            "eventStatusCode": "O",
            "title": "NEC v FC Twente",
            "sportCode": "FT",
            "startTime": _iso(now - timedelta(minutes=30)),
            "estimatedEndTime": _iso(now + timedelta(hours=2)),
            "geoAllow": "",
            "geoBlock": "",
        }
    ]
    streams: dict[str, list[dict[str, object]]] = {
        OPEN: [
            {"uniqueStreamName": "HLS", "streamType": "HLS", "description": "PRM HLS HIGH"},
            {"uniqueStreamName": "ULL", "streamType": "ULL", "description": "THEOlive ULL"},
        ]
    }
    return events, streams


@pytest.fixture(scope="module")
def simulator() -> Iterator[SimulatorHandle]:
    # Several gateways may start against one simulator: no event-list spacing here.
    with run_simulator(env={"SIM_EVENTS_MIN_INTERVAL_S": "0"}) as sim:
        sim.load_scenario(*scenario())
        yield sim


@pytest.fixture(scope="module")
def gateway(
    simulator: SimulatorHandle, redis_server_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[httpx.Client]:
    env = gateway_env(
        simulator.api_url,
        fresh_database(redis_server_url, STORE_DB),
        IGM_SERVER_IP=SERVER_IP,
        API_KEYS=API_KEY,
        AUTH_JWT_SECRET=HS_SECRET,
        TRUSTED_PROXIES="127.0.0.1/32",
        GEO_COUNTRY_HEADER=COUNTRY_HEADER,
        DEFAULT_REDIRECT_URL=DEFAULT_REDIRECT,
        REDIRECT_ALLOWED_HOSTS="operator.example,*.operator.example",
    )
    _flush(env["REDIS_URL"])
    with (
        run_gateway(env, tmp_path_factory.mktemp("e2e-logs"), name="e2e") as process,
        httpx.Client(base_url=process.url, timeout=10.0) as client,
    ):
        wait_warm(client)
        yield client


def _flush(redis_url: str) -> None:
    with redis.Redis.from_url(redis_url) as store:
        store.flushdb()


def wait_warm(client: httpx.Client) -> None:
    """A fresh gateway serves links once it holds the open list."""
    wait_until(
        lambda: client.get("/v1/events/open").status_code == 200,
        "the open list",
        timeout_s=WARM_TIMEOUT_S,
    )


def jwt_for(user_id: str) -> dict[str, str]:
    token = sign_hs256({"sub": user_id, "exp": int(time.time()) + 300})
    return {"Authorization": f"Bearer {token}"}


def api_key_for(user_id: str) -> dict[str, str]:
    return {"X-API-Key": API_KEY, "X-User-Id": user_id}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def link_calls(sim: SimulatorHandle, user_id: str) -> list[SimCall]:
    return [c for c in sim.calls("stream_link") if c["params"].get("userId") == user_id]


def mint(
    client: httpx.Client,
    headers: dict[str, str],
    *,
    stream: str = "HLS",
    kind: str = "raw",
    event_id: str = OPEN,
    redirect_url: str | None = None,
) -> httpx.Response:
    body: dict[str, str] = {"streamName": stream, "kind": kind}
    if redirect_url is not None:
        body["redirectUrl"] = redirect_url
    return client.post(f"/v1/events/{event_id}/links", json=body, headers=headers)


# --- the three kinds of link -----------------------------------------------------


def test_raw_hls_link_resolves_to_the_playlist_url(
    gateway: httpx.Client, simulator: SimulatorHandle
) -> None:
    user = unique("jwt-viewer")
    before = len(simulator.calls("live_stream"))
    headers = {**jwt_for(user), "X-Forwarded-For": "203.0.113.9", COUNTRY_HEADER: "US"}

    response = mint(gateway, headers, stream="HLS", kind="raw")

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    LINKS.validate_python(body)
    assert body["kind"] == "hls"
    assert body["url"] == f"https://dev.cdn.video.igame.media/abr/{OPEN}/playlist.m3u8"
    assert body["eventId"] == OPEN
    assert body["streamName"] == "HLS"
    assert body["cdn"] == "AAA"
    assert body["transactionId"].isdigit()

    [call] = link_calls(simulator, user)
    assert call["params"] == {
        "userId": user,  # the JWT's sub
        "userIp": "203.0.113.9",  # the viewer, as the trusted proxy reported it
        "eventId": OPEN,
        "streamName": "HLS-RAW",
        "redirectUrl": DEFAULT_REDIRECT,
        "xForwardedFor": SERVER_IP,  # the whitelisted server, never the viewer
    }
    assert call["operationCode"] == 200
    live = simulator.calls("live_stream")[before:]
    assert len(live) == 1
    assert live[0]["params"]["xForwardedFor"] == SERVER_IP
    assert live[0]["params"]["encodedTransactionRef"]


def test_raw_ull_link_resolves_to_a_theolive_channel_and_token(
    gateway: httpx.Client, simulator: SimulatorHandle
) -> None:
    user = unique("jwt-viewer")
    headers = {**jwt_for(user), "X-Forwarded-For": "198.51.100.7", COUNTRY_HEADER: "DE"}

    response = mint(gateway, headers, stream="ULL", kind="raw")

    assert response.status_code == 200, response.text
    body = response.json()
    LINKS.validate_python(body)
    assert body["kind"] == "theolive"
    assert set(body) >= {"channelId", "token", "transactionId", "cdn"}
    assert "url" not in body
    assert len(body["channelId"]) == 25
    assert body["channelId"].isalnum()
    assert str(uuid.UUID(body["token"])) == body["token"]
    assert body["cdn"] == "EC"

    [call] = link_calls(simulator, user)
    assert call["params"]["streamName"] == "ULL-RAW"
    assert call["params"]["userIp"] == "198.51.100.7"
    assert call["params"]["xForwardedFor"] == SERVER_IP


def test_player_link_with_an_api_key_sends_the_plain_stream_name(
    gateway: httpx.Client, simulator: SimulatorHandle
) -> None:
    user = unique("operator-user")
    before = len(simulator.calls("live_stream"))
    headers = {**api_key_for(user), "X-Forwarded-For": "192.0.2.44", COUNTRY_HEADER: "FR"}
    redirect = "https://www.operator.example/event-over?id=1"

    response = mint(gateway, headers, stream="HLS", kind="player", redirect_url=redirect)

    assert response.status_code == 200, response.text
    body = response.json()
    LINKS.validate_python(body)
    assert body["kind"] == "player"
    assert body["url"].startswith(PLAYER_URL)
    assert body["provider"] == "IGM"

    [call] = link_calls(simulator, user)
    assert call["params"] == {
        "userId": user,  # X-User-Id, vouched for by the API key
        "userIp": "192.0.2.44",
        "eventId": OPEN,
        "streamName": "HLS",  # no -RAW for the player
        "redirectUrl": redirect,
        "xForwardedFor": SERVER_IP,
    }
    assert len(simulator.calls("live_stream")) == before  # a player link needs no liveStream


@pytest.mark.parametrize(
    ("forwarded", "viewer_ip"),
    [
        pytest.param(None, "127.0.0.1", id="no-header-the-peer-itself"),
        pytest.param("203.0.113.9", "203.0.113.9", id="one-hop"),
        pytest.param("10.9.8.7, 203.0.113.9", "203.0.113.9", id="right-most-untrusted-hop"),
        pytest.param("203.0.113.9, 127.0.0.1", "203.0.113.9", id="trusted-hops-skipped"),
    ],
)
def test_the_upstream_gets_the_viewer_ip_the_trusted_proxy_reported(
    gateway: httpx.Client, simulator: SimulatorHandle, forwarded: str | None, viewer_ip: str
) -> None:
    user = unique("ip-viewer")
    headers = api_key_for(user)
    if forwarded is not None:
        headers["X-Forwarded-For"] = forwarded

    response = mint(gateway, headers, kind="player")

    assert response.status_code == 200, response.text
    [call] = link_calls(simulator, user)
    assert call["params"]["userIp"] == viewer_ip
    assert call["params"]["xForwardedFor"] == SERVER_IP


# --- dedupe and the per-user limit ------------------------------------------------


def dedupe_entries(redis_url: str) -> set[bytes]:
    with redis.Redis.from_url(redis_url) as store:
        return set(store.scan_iter(match="*:dedupe:*"))


def test_identical_requests_within_the_window_share_one_upstream_call(
    gateway: httpx.Client, simulator: SimulatorHandle, redis_server_url: str
) -> None:
    user = unique("double-click")
    headers = {**jwt_for(user), "X-Forwarded-For": "203.0.113.9", COUNTRY_HEADER: "US"}
    live_before = len(simulator.calls("live_stream"))
    store_url = database_url(redis_server_url, STORE_DB)
    stored_before = dedupe_entries(store_url)

    first = mint(gateway, headers, stream="HLS", kind="raw")
    # The answer is stored for dedupe as it goes out, not before: wait until it is.
    wait_until(lambda: dedupe_entries(store_url) - stored_before, "the answer stored for dedupe")
    second = mint(gateway, headers, stream="HLS", kind="raw")

    assert first.status_code == second.status_code == 200
    assert second.content == first.content
    assert len(link_calls(simulator, user)) == 1
    assert len(simulator.calls("live_stream")) == live_before + 1
    # Another kind is another request: not deduplicated.
    third = mint(gateway, headers, stream="HLS", kind="player")
    assert third.status_code == 200
    assert third.json()["kind"] == "player"
    assert len(link_calls(simulator, user)) == 2


def test_one_user_bursting_is_limited_while_another_still_gets_links(
    gateway: httpx.Client, simulator: SimulatorHandle
) -> None:
    greedy, patient = unique("greedy"), unique("patient")
    statuses = []
    limited: httpx.Response | None = None
    for attempt in range(14):  # LINK_USER_BURST is 10
        response = mint(
            gateway,
            api_key_for(greedy),
            kind="player",
            redirect_url=f"https://operator.example/after?n={attempt}",  # defeat dedupe
        )
        statuses.append(response.status_code)
        if response.status_code == 429 and limited is None:
            limited = response

    assert statuses == [200] * 10 + [429] * 4
    assert limited is not None
    assert limited.headers["content-type"] == "application/problem+json"
    assert int(limited.headers["retry-after"]) >= 1
    problem = limited.json()
    assert problem["status"] == 429
    assert problem["code"] == "user_rate_limited"
    assert problem["retryAfter"] == int(limited.headers["retry-after"])
    assert "operationCode" not in problem
    assert len(link_calls(simulator, greedy)) == 10  # refusals spent no upstream call

    other = mint(gateway, api_key_for(patient), kind="player")
    assert other.status_code == 200, other.text
    assert len(link_calls(simulator, patient)) == 1
