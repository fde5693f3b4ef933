"""``POST /v1/events/{eventId}/play`` and link lifetimes, end to end: a real simulator,
two real gateway replicas sharing a real redis-server.

The replicas trust the loopback peer as their load balancer, so each request names the
viewer's IP (``X-Forwarded-For``) and country (the edge header). The simulator's call
log shows what reached the upstream: every test checks which streams were minted
there, and that steps the local rules refuse cost no call.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from pydantic import TypeAdapter

from app.api.schemas import LinkOut, PlayOut
from tests.support.gateway import gateway_env, run_fleet
from tests.support.polling import wait_until
from tests.support.redis_server import fresh_database
from tests.support.simulator import SimulatorHandle, run_simulator

pytestmark = pytest.mark.redis

API_KEY = "test-api-key-0123456789abcdef0123456789"
COUNTRY = "CF-IPCountry"
BOTH = "PLAY-BOTH"  # HLS and ULL, open everywhere
ULL_US_ONLY = "PLAY-ULL-US"  # ULL licensed for the US only
NO_ULL = "PLAY-NO-ULL"  # HLS only
US_ONLY = "PLAY-US"  # the whole event licensed for the US only
US_BLOCKED = "PLAY-NOT-US"  # every stream blocked in the US (the upstream checks the IP)
ULL_NOT_US = "PLAY-ULL-NOT-US"  # ULL blocked in the US, HLS open everywhere
CLOSED = "PLAY-CLOSED"
US_IP = "203.0.113.77"  # the simulator places this IP in the US; the edge says GB
LINK_TTL_S = 600
THEOLIVE_TTL_S = 120
PLAYS = TypeAdapter(PlayOut)
LINKS = TypeAdapter(LinkOut)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _event(event_id: str, status: str = "O", geo_allow: str = "") -> dict[str, object]:
    now = datetime.now(UTC)
    return {
        "eventId": event_id,
        "eventStatusCode": status,
        "title": f"{event_id} v Somebody",
        "sportCode": "FT",
        "startTime": _iso(now - timedelta(minutes=20)),
        "estimatedEndTime": _iso(now + timedelta(hours=2)),
        "geoAllow": geo_allow,
        "geoBlock": "",
    }


def _stream(name: str, allow: str = "", block: str = "") -> dict[str, object]:
    return {
        "uniqueStreamName": name,
        "streamType": name,
        "description": f"{name} stream",
        "geoCountryAllow": allow,
        "geoCountryBlock": block,
    }


def scenario() -> tuple[list[dict[str, object]], dict[str, list[dict[str, object]]]]:
    events = [
        _event(BOTH),
        _event(ULL_US_ONLY),
        _event(NO_ULL),
        _event(US_ONLY, geo_allow="US"),
        _event(US_BLOCKED),
        _event(ULL_NOT_US),
        _event(CLOSED, status="C"),
    ]
    streams = {
        BOTH: [_stream("HLS"), _stream("ULL")],
        ULL_US_ONLY: [_stream("HLS"), _stream("ULL", allow="US")],
        NO_ULL: [_stream("HLS")],
        US_ONLY: [_stream("HLS"), _stream("ULL")],
        US_BLOCKED: [_stream("HLS", block="US"), _stream("ULL", block="US")],
        ULL_NOT_US: [_stream("HLS"), _stream("ULL", block="US")],
        CLOSED: [_stream("HLS"), _stream("ULL")],
    }
    return events, streams


@pytest.fixture(scope="module")
def simulator() -> Iterator[SimulatorHandle]:
    with run_simulator(env={"SIM_EVENTS_MIN_INTERVAL_S": "0"}) as sim:
        sim.load_scenario(*scenario())
        sim.set_ip_countries({f"{US_IP}/32": "US"})
        yield sim


@pytest.fixture(scope="module")
def replicas(
    simulator: SimulatorHandle, redis_server_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[httpx.Client]]:
    env = gateway_env(
        simulator.api_url,
        fresh_database(redis_server_url, 11),
        TRUSTED_PROXIES="127.0.0.1/32",
        GEO_COUNTRY_HEADER=COUNTRY,
        DEFAULT_REDIRECT_URL="https://operator.example/after",
        EVENTS_MIN_INTERVAL_S="0.5",
        REPLICA_COUNT="2",
        LINK_TTL_S=str(LINK_TTL_S),
        THEOLIVE_TOKEN_TTL_S=str(THEOLIVE_TTL_S),
        LINK_DEDUPE_WINDOW_S="30",
    )
    with run_fleet(2, env, tmp_path_factory.mktemp("play-logs")) as fleet:
        clients = [httpx.Client(base_url=g.url, timeout=10.0) for g in fleet]
        for client in clients:
            _wait_open(client, {BOTH, ULL_US_ONLY, NO_ULL, US_ONLY, US_BLOCKED, ULL_NOT_US})
        yield clients
        for client in clients:
            client.close()


def _wait_open(client: httpx.Client, event_ids: set[str]) -> None:
    def listed() -> bool:
        answer = client.get("/v1/events/open")
        return answer.status_code == 200 and event_ids <= {
            e["eventId"] for e in answer.json()["events"]
        }

    wait_until(listed, "the scenario's open events listed", timeout_s=30)


def viewer(country: str = "GB", ip: str = "198.51.100.20") -> dict[str, str]:
    return {
        "X-API-Key": API_KEY,
        "X-User-Id": f"viewer-{uuid.uuid4().hex[:10]}",
        "X-Forwarded-For": ip,
        COUNTRY: country,
    }


def play(
    client: httpx.Client, event_id: str, headers: dict[str, str], **body: object
) -> httpx.Response:
    return client.post(f"/v1/events/{event_id}/play", json=body, headers=headers)


def minted_streams(sim: SimulatorHandle, user_id: str) -> list[str]:
    """The stream names the upstream was asked to mint for this user, in order."""
    return [
        str(call["params"]["streamName"])
        for call in sim.calls("stream_link")
        if call["params"].get("userId") == user_id
    ]


def upstream_calls(sim: SimulatorHandle) -> int:
    stats = sim.stats()["calls"]
    return stats["stream_link"] + stats["live_stream"]


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text)


# --- ladders per device ------------------------------------------------------------


@pytest.mark.parametrize(
    ("device", "ull", "kind", "choice"),
    [
        ("web", True, "theolive", ("ULL", "raw")),
        ("web", False, "hls", ("HLS", "raw")),
        ("mobile", True, "theolive", ("ULL", "raw")),
        ("tablet", False, "hls", ("HLS", "raw")),
        ("tv", True, "theolive", ("ULL", "raw")),
        ("app", True, "hls", ("HLS", "raw")),
        ("app", False, "hls", ("HLS", "raw")),
    ],
)
def test_each_device_gets_the_first_step_of_its_ladder(
    replicas: list[httpx.Client],
    simulator: SimulatorHandle,
    device: str,
    ull: bool,
    kind: str,
    choice: tuple[str, str],
) -> None:
    headers = viewer()
    answer = play(replicas[0], BOTH, headers, device=device, ull=ull)
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    body = answer.json()
    PLAYS.validate_python(body)
    assert body["kind"] == kind
    assert body["device"] == device
    assert (body["choice"]["streamName"], body["choice"]["kind"]) == choice
    assert body["eventId"] == BOTH
    expected_stream = f"{choice[0]}-RAW" if choice[1] == "raw" else choice[0]
    assert minted_streams(simulator, headers["X-User-Id"]) == [expected_stream]


def test_a_play_costs_the_calls_of_minting_the_link_directly(
    replicas: list[httpx.Client], simulator: SimulatorHandle
) -> None:
    before = upstream_calls(simulator)
    direct = replicas[0].post(
        f"/v1/events/{NO_ULL}/links", json={"streamName": "HLS", "kind": "raw"}, headers=viewer()
    )
    assert direct.status_code == 200, direct.text
    direct_cost = upstream_calls(simulator) - before
    before = upstream_calls(simulator)
    played = play(replicas[1], NO_ULL, viewer(), device="web", ull=True)
    assert played.status_code == 200, played.text
    assert played.json()["choice"] == {"streamName": "HLS", "kind": "raw"}
    assert upstream_calls(simulator) - before == direct_cost == 2  # stream/link + liveStream


def test_a_geo_blocked_ull_falls_back_to_hls_with_no_upstream_call_for_ull(
    replicas: list[httpx.Client], simulator: SimulatorHandle
) -> None:
    headers = viewer("GB")
    answer = play(replicas[0], ULL_US_ONLY, headers, device="web", ull=True)
    assert answer.status_code == 200, answer.text
    assert answer.json()["kind"] == "hls"
    assert answer.json()["choice"] == {"streamName": "HLS", "kind": "raw"}
    assert minted_streams(simulator, headers["X-User-Id"]) == ["HLS-RAW"]


def test_an_event_without_ull_skips_the_ull_step(
    replicas: list[httpx.Client], simulator: SimulatorHandle
) -> None:
    headers = viewer()
    answer = play(replicas[1], NO_ULL, headers, device="tv", ull=True)
    assert answer.status_code == 200, answer.text
    assert answer.json()["choice"] == {"streamName": "HLS", "kind": "raw"}
    assert minted_streams(simulator, headers["X-User-Id"]) == ["HLS-RAW"]


def test_every_step_refused_gives_the_first_problem_with_what_was_tried(
    replicas: list[httpx.Client], simulator: SimulatorHandle
) -> None:
    headers = viewer("GB")
    before = upstream_calls(simulator)
    answer = play(replicas[0], US_ONLY, headers, device="web", ull=True)
    assert answer.status_code == 403, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["code"] == "geo_blocked"
    assert problem["operationCode"] == 306
    assert problem["tried"] == [
        {"streamName": "ULL", "kind": "raw", "code": "geo_blocked"},
        {"streamName": "HLS", "kind": "raw", "code": "geo_blocked"},
        {"streamName": "HLS", "kind": "player", "code": "geo_blocked"},
    ]
    assert upstream_calls(simulator) == before


def test_a_closed_event_is_refused_for_every_step(
    replicas: list[httpx.Client], simulator: SimulatorHandle
) -> None:
    before = upstream_calls(simulator)
    answer = play(replicas[1], CLOSED, viewer(), device="app")
    assert answer.status_code == 410, answer.text
    problem = answer.json()
    assert problem["code"] == "event_closed"
    assert problem["tried"] == [{"streamName": "HLS", "kind": "raw", "code": "event_closed"}]
    assert upstream_calls(simulator) == before


def test_an_upstream_refusal_moves_to_the_next_step_at_most_twice(
    replicas: list[httpx.Client], simulator: SimulatorHandle
) -> None:
    """The edge says GB, but the upstream places the IP in the US, where every stream of
    the event is blocked: ULL and HLS raw are each refused (306) upstream, and the
    third step is never tried."""
    headers = viewer("GB", ip=US_IP)
    answer = play(replicas[0], US_BLOCKED, headers, device="web", ull=True)
    assert answer.status_code == 403, answer.text
    problem = answer.json()
    assert problem["code"] == "geo_blocked"
    assert problem["operationCode"] == 306
    assert problem["tried"] == [
        {"streamName": "ULL", "kind": "raw", "code": "geo_blocked"},
        {"streamName": "HLS", "kind": "raw", "code": "geo_blocked"},
    ]
    assert minted_streams(simulator, headers["X-User-Id"]) == ["ULL-RAW", "HLS-RAW"]


def test_an_upstream_refusal_of_the_first_step_plays_the_second(
    replicas: list[httpx.Client], simulator: SimulatorHandle
) -> None:
    """The edge says GB, so ULL (blocked in the US) passes the local rules; the upstream
    places the IP in the US and refuses it (306); HLS raw, open everywhere, is minted."""
    headers = viewer("GB", ip=US_IP)
    answer = play(replicas[1], ULL_NOT_US, headers, device="web", ull=True)
    assert answer.status_code == 200, answer.text
    assert answer.json()["kind"] == "hls"
    assert answer.json()["choice"] == {"streamName": "HLS", "kind": "raw"}
    assert minted_streams(simulator, headers["X-User-Id"]) == ["ULL-RAW", "HLS-RAW"]


@pytest.mark.parametrize(
    "body",
    [
        {"device": "fridge"},
        {},
        {"device": "web", "ull": [1]},
        {"device": "web", "redirectUrl": 7},
        {"device": ["web"]},
    ],
    ids=["unknown-device", "no-device", "ull-not-bool", "redirect-not-string", "device-list"],
)
def test_bad_input_is_a_422_problem(replicas: list[httpx.Client], body: dict[str, object]) -> None:
    answer = replicas[0].post(f"/v1/events/{BOTH}/play", json=body, headers=viewer())
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == "invalid_request"


def test_play_needs_the_same_credentials_as_links(replicas: list[httpx.Client]) -> None:
    headers = viewer()
    del headers["X-API-Key"]
    answer = play(replicas[0], BOTH, headers, device="web")
    assert answer.status_code == 401
    assert answer.json()["code"] == "unauthorized"


# --- lifetimes -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "ttl_s"),
    [
        ("links", {"streamName": "HLS", "kind": "raw"}, LINK_TTL_S),
        ("links", {"streamName": "HLS", "kind": "player"}, LINK_TTL_S),
        ("links", {"streamName": "ULL", "kind": "raw"}, THEOLIVE_TTL_S),
        ("play", {"device": "web", "ull": True}, THEOLIVE_TTL_S),
        ("play", {"device": "app"}, LINK_TTL_S),
    ],
    ids=["hls", "player", "theolive", "play-theolive", "play-hls"],
)
def test_every_minted_answer_says_when_to_refresh_and_when_it_expires(
    replicas: list[httpx.Client], path: str, body: dict[str, object], ttl_s: int
) -> None:
    asked = datetime.now(UTC)
    answer = replicas[0].post(f"/v1/events/{BOTH}/{path}", json=body, headers=viewer())
    assert answer.status_code == 200, answer.text
    data = answer.json()
    (PLAYS if path == "play" else LINKS).validate_python(data)
    assert data["expiresAt"].endswith("Z")
    assert data["refreshAfter"].endswith("Z")
    expires, refresh = parse_time(data["expiresAt"]), parse_time(data["refreshAfter"])
    assert asked < refresh < expires
    assert abs((expires - asked).total_seconds() - ttl_s) < 5
    assert (expires - refresh).total_seconds() == pytest.approx(ttl_s * 0.2, abs=0.01)


def test_a_repeated_request_gets_the_same_link_and_lifetimes_from_any_replica(
    replicas: list[httpx.Client], simulator: SimulatorHandle
) -> None:
    headers = viewer()
    first = play(replicas[0], BOTH, headers, device="web")
    second = play(replicas[1], BOTH, headers, device="web")
    assert first.status_code == second.status_code == 200, (first.text, second.text)
    assert first.json() == second.json()
    assert minted_streams(simulator, headers["X-User-Id"]) == ["HLS-RAW"]
    link = replicas[1].post(
        f"/v1/events/{BOTH}/links", json={"streamName": "HLS", "kind": "raw"}, headers=headers
    )
    assert link.status_code == 200
    assert link.json()["url"] == first.json()["url"]
    assert link.json()["expiresAt"] == first.json()["expiresAt"]
    assert minted_streams(simulator, headers["X-User-Id"]) == ["HLS-RAW"]


def test_after_refresh_after_a_new_link_is_minted(
    simulator: SimulatorHandle, redis_server_url: str, tmp_path: Path
) -> None:
    env = gateway_env(
        simulator.api_url,
        fresh_database(redis_server_url, 12),
        DEFAULT_REDIRECT_URL="https://operator.example/after",
        EVENTS_MIN_INTERVAL_S="0.5",
        LINK_TTL_S="2",
        LINK_DEDUPE_WINDOW_S="60",
    )
    headers = {"X-API-Key": API_KEY, "X-User-Id": f"renew-{uuid.uuid4().hex[:8]}"}
    body = {"streamName": "HLS", "kind": "player"}
    with run_fleet(1, env, tmp_path) as (gateway,), httpx.Client(base_url=gateway.url) as client:
        _wait_open(client, {BOTH})
        first = client.post(f"/v1/events/{BOTH}/links", json=body, headers=headers).json()
        again = client.post(f"/v1/events/{BOTH}/links", json=body, headers=headers).json()
        assert again == first  # inside the dedupe window, before refreshAfter
        wait_s = (parse_time(first["refreshAfter"]) - datetime.now(UTC)).total_seconds()
        time.sleep(max(0.0, wait_s) + 0.3)  # the stimulus: the player renews when told
        renewed = client.post(f"/v1/events/{BOTH}/links", json=body, headers=headers).json()
    assert renewed["url"] != first["url"]
    assert renewed["refreshAfter"] > first["refreshAfter"]
    assert minted_streams(simulator, headers["X-User-Id"]) == ["HLS", "HLS"]
