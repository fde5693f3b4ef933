"""Watch rules through a real gateway process: claim rules on the viewer's JWT, then the
operator's callback (a real HTTP server), both before any upstream budget is spent."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.support.gateway import gateway_env, run_gateway
from tests.support.jwt_keys import HS_SECRET, sign_hs256
from tests.support.polling import wait_until
from tests.support.simulator import HLS_STREAM, SimulatorHandle, run_simulator, scenario_event
from tests.support.watch_service import WatchService, run_watch_service

API_KEY = "test-api-key-0123456789abcdef0123456789"
EVENT = "WATCH-OPEN"
CALLBACK_SECRET = "operator-callback-secret"


@pytest.fixture(scope="module")
def simulator() -> Iterator[SimulatorHandle]:
    event = scenario_event(EVENT, sport="TN", title="Watch v Rules")
    streams = {EVENT: [HLS_STREAM]}
    with run_simulator(env={"SIM_EVENTS_MIN_INTERVAL_S": "0"}) as sim:
        sim.load_scenario([event], streams)
        yield sim


@pytest.fixture(scope="module")
def service() -> Iterator[WatchService]:
    with run_watch_service() as running:
        yield running


@pytest.fixture(scope="module")
def gateway(
    simulator: SimulatorHandle,
    service: WatchService,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[httpx.Client]:
    env = gateway_env(
        simulator.api_url,
        None,
        AUTH_JWT_SECRET=HS_SECRET,
        DEFAULT_REDIRECT_URL="https://operator.example/after",
        TRUSTED_PROXIES="127.0.0.1/32",
        GEO_COUNTRY_HEADER="CF-IPCountry",
        EVENTS_MIN_INTERVAL_S="0.5",
        WATCH_REQUIRE_CLAIMS="funded:true",
        WATCH_CALLBACK_URL=service.url,
        WATCH_CALLBACK_SECRET=CALLBACK_SECRET,
        WATCH_CALLBACK_CACHE_S="0",
    )
    with (
        run_gateway(env, tmp_path_factory.mktemp("watch-logs"), name="watch") as process,
        httpx.Client(base_url=process.url, timeout=10.0) as client,
    ):
        wait_until(
            lambda: client.get(f"/v1/events/{EVENT}").status_code == 200,
            "the gateway sees the event",
            timeout_s=30,
        )
        yield client


@pytest.fixture(autouse=True)
def _reset(service: WatchService) -> None:
    service.behaviour = "allow"
    service.requests.clear()


def jwt(user_id: str, **claims: object) -> dict[str, str]:
    token = sign_hs256({"sub": user_id, "exp": int(time.time()) + 300, **claims})
    return {"Authorization": f"Bearer {token}", "CF-IPCountry": "GB"}


def user() -> str:
    return f"viewer-{uuid.uuid4().hex[:10]}"


def link(client: httpx.Client, headers: dict[str, str]) -> httpx.Response:
    return client.post(
        f"/v1/events/{EVENT}/links", json={"streamName": "HLS", "kind": "player"}, headers=headers
    )


def minted_for(sim: SimulatorHandle, user_id: str) -> int:
    return sum(1 for c in sim.calls("stream_link") if c["params"].get("userId") == user_id)


def test_an_unmet_claim_is_refused_before_the_callback_and_the_upstream(
    gateway: httpx.Client, simulator: SimulatorHandle, service: WatchService
) -> None:
    viewer = user()
    for claims in ({}, {"funded": False}):
        answer = link(gateway, jwt(viewer, **claims))
        assert answer.status_code == 403, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["code"] == "watch_rule_denied"
        assert answer.json()["reason"] == "claim_funded"
    assert service.requests == []
    assert minted_for(simulator, viewer) == 0


def test_a_met_claim_asks_the_callback_which_allows(
    gateway: httpx.Client, simulator: SimulatorHandle, service: WatchService
) -> None:
    viewer = user()
    answer = link(gateway, jwt(viewer, funded=True))
    assert answer.status_code == 200, answer.text
    assert minted_for(simulator, viewer) == 1
    assert service.bodies() == [
        {
            "userId": viewer,
            "eventId": EVENT,
            "sportCode": "TN",
            "streamName": "HLS",
            "country": "GB",
        }
    ]
    sent = service.requests[0]
    assert sent["headers"]["x-watch-secret"] == CALLBACK_SECRET
    assert simulator.customer_uid not in str(sent)


def test_the_callback_denies_with_its_reason_for_links_and_play(
    gateway: httpx.Client, simulator: SimulatorHandle, service: WatchService
) -> None:
    service.behaviour = "deny"
    service.reason = "no_bet_on_event"
    viewer = user()
    answer = link(gateway, jwt(viewer, funded=True))
    assert answer.status_code == 403
    assert (answer.json()["code"], answer.json()["reason"]) == (
        "watch_rule_denied",
        "no_bet_on_event",
    )
    played = gateway.post(
        f"/v1/events/{EVENT}/play", json={"device": "web"}, headers=jwt(viewer, funded=True)
    )
    assert played.status_code == 403
    assert played.json()["reason"] == "no_bet_on_event"
    assert played.json()["tried"] == [
        {"streamName": "HLS", "kind": "raw", "code": "watch_rule_denied"}
    ]
    assert minted_for(simulator, viewer) == 0


def test_a_failing_callback_denies_by_default(
    gateway: httpx.Client, simulator: SimulatorHandle, service: WatchService
) -> None:
    service.behaviour = "error"
    viewer = user()
    answer = link(gateway, jwt(viewer, funded=True))
    assert answer.status_code == 403
    assert answer.json()["reason"] == "watch_check_unavailable"
    assert minted_for(simulator, viewer) == 0


def test_api_key_requests_skip_the_claim_rules_but_not_the_callback(
    gateway: httpx.Client, simulator: SimulatorHandle, service: WatchService
) -> None:
    viewer = user()
    headers = {"X-API-Key": API_KEY, "X-User-Id": viewer}
    assert link(gateway, headers).status_code == 200
    assert [b["userId"] for b in service.bodies()] == [viewer]
    service.behaviour = "deny"
    assert link(gateway, {**headers, "X-User-Id": user()}).status_code == 403
