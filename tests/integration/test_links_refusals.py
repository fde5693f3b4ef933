"""Every way a link request is refused, against a real simulator and gateway process.

Refusals the gateway can decide itself (status, unknown event or stream, geo, redirect,
authentication, the untrusted peer's headers) must answer problem+json AND leave no
stream/link or liveStream call in the simulator's log: they never spend upstream
budget. Where the upstream decides (a pending event whose start has passed) or fails
(307, 5xx, garbage, reset, timeout), the answer is a 4xx/502/503 problem, never a 500.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from tests.support.gateway import gateway_env, run_gateway
from tests.support.jwt_keys import HS_SECRET, sign_hs256, unsigned_token
from tests.support.polling import eventually
from tests.support.simulator import FaultKind, SimulatorHandle, run_simulator

pytestmark = pytest.mark.redis

API_KEY = "test-api-key-0123456789abcdef0123456789"
COUNTRY_HEADER = "CF-IPCountry"
REGION_HEADER = "CF-Region-Code"
PROBLEM_JSON = "application/problem+json"
WARM_TIMEOUT_S = 30.0
READ_TIMEOUT_S = 1.0

OPEN = "REF-OPEN"
PENDING = "REF-PENDING"
PENDING_PAST = "REF-PENDING-PAST"
CLOSED = "REF-CLOSED"
VOID = "REF-VOID"
GEO_EVENT = "REF-GEO-EVENT"  # allow "UK, US", block "US-NJ"
GEO_STREAMS = "REF-GEO-STREAMS"  # no event lists; HLS allow "UK", ULL block "GB, AT"

# Where the simulator places the viewer IPs the tests send (it judges 306 by userIp).
GB_IP, US_NY_IP, US_NJ_IP, DE_IP = "81.2.69.160", "203.0.113.9", "10.1.2.3", "198.51.100.7"


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _event(event_id: str, status: str, start: datetime, **geo: str) -> dict[str, object]:
    return {
        "eventId": event_id,
        "eventStatusCode": status,
        "title": event_id,
        "sportCode": "FT",
        "startTime": _iso(start),
        "estimatedEndTime": _iso(start + timedelta(hours=2)),
        "geoAllow": geo.get("allow", ""),
        "geoBlock": geo.get("block", ""),
    }


@dataclass
class Scenario:
    now: datetime
    events: list[dict[str, object]] = field(default_factory=list)
    streams: dict[str, list[dict[str, object]]] = field(default_factory=dict)

    def dates(self) -> set[date]:
        return {datetime.fromisoformat(str(e["startTime"])).date() for e in self.events}


def build_scenario() -> Scenario:
    now = datetime.now(UTC)
    earlier, later = now - timedelta(minutes=20), now + timedelta(minutes=40)
    plain: list[dict[str, object]] = [
        {"uniqueStreamName": "HLS", "streamType": "HLS"},
        {"uniqueStreamName": "ULL", "streamType": "ULL"},
    ]
    scenario = Scenario(now)
    scenario.events = [
        _event(OPEN, "O", earlier),
        _event(PENDING, "P", later),
        _event(PENDING_PAST, "P", earlier),  # stale P: the upstream has the last word
        _event(CLOSED, "C", now - timedelta(hours=3)),
        _event(VOID, "V", earlier),
        _event(GEO_EVENT, "O", earlier, allow="UK, US", block="US-NJ"),
        _event(GEO_STREAMS, "O", earlier),
    ]
    scenario.streams = {e: plain for e in (OPEN, PENDING, PENDING_PAST, CLOSED, VOID, GEO_EVENT)}
    scenario.streams[GEO_STREAMS] = [
        {"uniqueStreamName": "HLS", "streamType": "HLS", "geoCountryAllow": "UK"},
        {"uniqueStreamName": "ULL", "streamType": "ULL", "geoCountryBlock": "GB, AT"},
    ]
    return scenario


# --- processes -------------------------------------------------------------------


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return build_scenario()


@pytest.fixture(scope="module")
def simulator(scenario: Scenario) -> Iterator[SimulatorHandle]:
    with run_simulator(env={"SIM_EVENTS_MIN_INTERVAL_S": "0"}) as sim:
        sim.load_scenario(scenario.events, scenario.streams)
        sim.set_ip_countries({"81.2.69.0/24": "GB"})
        yield sim


def _fresh_store(redis_server_url: str, db: int) -> str:
    url = redis_server_url.rsplit("/", 1)[0] + f"/{db}"
    with redis.Redis.from_url(url) as store:
        store.flushdb()
    return url


@pytest.fixture(scope="module")
def gateway(
    simulator: SimulatorHandle,
    scenario: Scenario,
    redis_server_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[httpx.Client]:
    """Behind a trusted load balancer (the test client), with JWTs and API keys."""
    env = gateway_env(
        simulator.api_url,
        _fresh_store(redis_server_url, 2),
        API_KEYS=API_KEY,
        AUTH_JWT_SECRET=HS_SECRET,
        TRUSTED_PROXIES="127.0.0.1/32",
        GEO_COUNTRY_HEADER=COUNTRY_HEADER,
        GEO_SUBDIVISION_HEADER=REGION_HEADER,
        DEFAULT_REDIRECT_URL="https://operator.example/after",
        REDIRECT_ALLOWED_HOSTS="operator.example",
        EVENTS_MIN_INTERVAL_S="1",
        IGM_READ_TIMEOUT_S=str(READ_TIMEOUT_S),
    )
    logs = tmp_path_factory.mktemp("refusal-logs")
    with (
        run_gateway(env, logs, name="trusted") as process,
        httpx.Client(base_url=process.url, timeout=10.0) as client,
    ):
        wait_known(client, scenario)
        yield client


@pytest.fixture(scope="module")
def exposed_gateway(
    simulator: SimulatorHandle,
    scenario: Scenario,
    redis_server_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[httpx.Client]:
    """Reached directly (no TRUSTED_PROXIES) but configured with a country header."""
    env = gateway_env(
        simulator.api_url,
        _fresh_store(redis_server_url, 3),
        API_KEYS=API_KEY,
        GEO_COUNTRY_HEADER=COUNTRY_HEADER,
        DEFAULT_REDIRECT_URL="https://operator.example/after",
    )
    logs = tmp_path_factory.mktemp("exposed-logs")
    with (
        run_gateway(env, logs, name="exposed") as process,
        httpx.Client(base_url=process.url, timeout=10.0) as client,
    ):
        wait_known(client, scenario)
        yield client


def wait_known(client: httpx.Client, scenario: Scenario) -> None:
    """Until the gateway's index holds every scenario event (P/C/V ones come from the
    per-date lists, fetched on demand: ask for each date until it is there)."""
    deadline = time.monotonic() + WARM_TIMEOUT_S
    missing = [str(e["eventId"]) for e in scenario.events]
    while missing:
        for day in scenario.dates():
            client.get("/v1/events", params={"date": day.isoformat()})
        missing = [e for e in missing if client.get(f"/v1/events/{e}").status_code != 200]
        if missing and time.monotonic() > deadline:
            pytest.fail(f"the gateway never indexed {missing}")
        if missing:
            time.sleep(0.2)


# --- helpers -----------------------------------------------------------------------


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def jwt_for(user_id: str, *, ttl_s: int = 300) -> dict[str, str]:
    token = sign_hs256({"sub": user_id, "exp": int(time.time()) + ttl_s})
    return {"Authorization": f"Bearer {token}"}


def viewer(ip: str, country: str | None = None, region: str | None = None) -> dict[str, str]:
    headers = {"X-API-Key": API_KEY, "X-User-Id": unique("viewer"), "X-Forwarded-For": ip}
    if country is not None:
        headers[COUNTRY_HEADER] = country
    if region is not None:
        headers[REGION_HEADER] = region
    return headers


def link_call_count(sim: SimulatorHandle) -> int:
    stats = sim.stats()["calls"]
    return stats["stream_link"] + stats["live_stream"]


def post_link(
    client: httpx.Client,
    event_id: str,
    headers: dict[str, str],
    body: dict[str, object] | None = None,
) -> httpx.Response:
    payload = body if body is not None else {"streamName": "HLS", "kind": "raw"}
    return client.post(f"/v1/events/{event_id}/links", json=payload, headers=headers)


def assert_problem(
    response: httpx.Response, status: int, code: str, operation_code: int | None
) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    problem: dict[str, object] = response.json()
    assert problem["status"] == status
    assert problem["code"] == code
    assert problem["type"] == f"https://oneplatform-gateway.dev/problems/{code}"
    assert problem["title"]
    assert problem["detail"]
    if operation_code is None:
        assert "operationCode" not in problem
    else:
        assert problem["operationCode"] == operation_code
    return problem


# --- refused by the gateway: no upstream call ---------------------------------------

RAW_HLS: dict[str, object] = {"streamName": "HLS", "kind": "raw"}

# id, event, viewer headers, body, status, code, operationCode, reason
RULE_REFUSALS: list[
    tuple[str, str, dict[str, str], dict[str, object], int, str, int | None, str | None]
] = [
    ("status-P", PENDING, viewer(GB_IP, "GB"), RAW_HLS, 409, "event_pending", 402, None),
    ("status-C", CLOSED, viewer(GB_IP, "GB"), RAW_HLS, 410, "event_closed", 403, None),
    ("status-V", VOID, viewer(GB_IP, "GB"), RAW_HLS, 410, "event_cancelled", 404, None),
    ("unknown-event", "NO-SUCH-EVENT-42", viewer(GB_IP), RAW_HLS, 404, "event_not_found", 401,
     None),
    ("malformed-event-id", "not an id!", viewer(GB_IP), RAW_HLS, 404, "event_not_found", 401,
     None),
    ("geo-event-allow-list-misses", GEO_EVENT, viewer(DE_IP, "DE"), RAW_HLS, 403, "geo_blocked",
     306, "event_not_allowed"),
    ("geo-event-block-beats-allow", GEO_EVENT, viewer(US_NJ_IP, "US", "NJ"), RAW_HLS, 403,
     "geo_blocked", 306, "event_blocked"),
    ("geo-event-block-beats-allow-iso-3166-2", GEO_EVENT, viewer(US_NJ_IP, "US-NJ"), RAW_HLS,
     403, "geo_blocked", 306, "event_blocked"),
    ("geo-event-subdivision-block-holds-if-subdivision-unknown", GEO_EVENT,
     viewer(US_NY_IP, "US"), RAW_HLS, 403, "geo_blocked", 306, "event_blocked"),
    ("geo-event-allow-list-country-unknown", GEO_EVENT, viewer(GB_IP), RAW_HLS, 403,
     "geo_blocked", 306, "country_unknown"),
    ("geo-stream-allow-list-misses", GEO_STREAMS, viewer(US_NY_IP, "US"), RAW_HLS, 403,
     "geo_blocked", 306, "stream_not_allowed"),
    ("geo-stream-block-gb", GEO_STREAMS, viewer(GB_IP, "GB"), {"streamName": "ULL"}, 403,
     "geo_blocked", 306, "stream_blocked"),
    ("unknown-stream", OPEN, viewer(GB_IP), {"streamName": "SD"}, 404, "stream_not_found", 304,
     None),
    ("raw-suffix-is-no-stream-name", OPEN, viewer(GB_IP), {"streamName": "HLS-RAW"}, 404,
     "stream_not_found", 304, None),
    ("invalid-stream-name", OPEN, viewer(GB_IP), {"streamName": "HLS RAW"}, 422,
     "invalid_request", None, None),
    ("invalid-kind", OPEN, viewer(GB_IP), {"streamName": "HLS", "kind": "mp4"}, 422,
     "invalid_request", None, None),
]  # fmt: skip

# id, redirectUrl: all 422 invalid_redirect_url, operationCode 305
REDIRECT_REFUSALS = [
    ("not-http", "javascript:alert(1)"),
    ("ftp", "ftp://operator.example/after"),
    ("relative", "/after"),
    ("userinfo", "https://user:pw@operator.example/"),
    ("host-not-allowed", "https://evil.example/phish"),
    ("host-suffix-trick", "https://operator.example.evil.example/"),
    ("subdomain-not-listed", "https://www.operator.example/"),
]


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


_SOON = int(time.time()) + 300
OTHER_SECRET = "another-secret-that-is-long-enough-0123456789"

# id, credential headers, reason: all 401 unauthorized, no operationCode
AUTH_REFUSALS = [
    ("no-credentials", {}, "missing_credentials"),
    ("garbage-token", _bearer("not.a.jwt"), "invalid_token"),
    ("other-key", _bearer(sign_hs256({"sub": "u", "exp": _SOON}, OTHER_SECRET)), "invalid_token"),
    ("expired", _bearer(sign_hs256({"sub": "u", "exp": _SOON - 3900})), "expired_token"),
    ("alg-none", _bearer(unsigned_token({"sub": "u", "exp": _SOON})), "invalid_token"),
    ("no-sub", _bearer(sign_hs256({"exp": _SOON})), "invalid_token"),
    ("basic-scheme", {"Authorization": "Basic dXNlcjpwdw=="}, "invalid_token"),
    ("wrong-api-key", {"X-API-Key": "wrong-key", "X-User-Id": "u1"}, "invalid_api_key"),
    ("api-key-without-user-id", {"X-API-Key": API_KEY}, "invalid_user_id"),
]


@pytest.mark.parametrize(
    ("event_id", "headers", "body", "status", "code", "operation_code", "reason"),
    [pytest.param(*case[1:], id=case[0]) for case in RULE_REFUSALS],
)
def test_refused_by_the_rules_before_the_upstream(
    gateway: httpx.Client,
    simulator: SimulatorHandle,
    event_id: str,
    headers: dict[str, str],
    body: dict[str, object],
    status: int,
    code: str,
    operation_code: int | None,
    reason: str | None,
) -> None:
    before = link_call_count(simulator)

    response = post_link(gateway, event_id, headers, body)

    problem = assert_problem(response, status, code, operation_code)
    if reason is not None:
        assert problem["reason"] == reason
    assert link_call_count(simulator) == before, "a refusal spent upstream budget"


@pytest.mark.parametrize(
    ("event_id", "words"),
    [
        pytest.param(PENDING, "has not started (status P)", id="P"),
        pytest.param(CLOSED, "is over (status C)", id="C"),
        pytest.param(VOID, "was cancelled (status V)", id="V"),
    ],
)
def test_a_status_refusal_names_the_status_in_words(
    gateway: httpx.Client, event_id: str, words: str
) -> None:
    response = post_link(gateway, event_id, viewer(GB_IP, "GB"), RAW_HLS)

    assert f"The event {words}" in response.json()["detail"]


@pytest.mark.parametrize(
    "redirect_url", [pytest.param(url, id=name) for name, url in REDIRECT_REFUSALS]
)
def test_unsafe_redirect_is_refused_before_the_upstream(
    gateway: httpx.Client, simulator: SimulatorHandle, redirect_url: str
) -> None:
    before = link_call_count(simulator)
    body: dict[str, object] = {"streamName": "HLS", "redirectUrl": redirect_url}

    response = post_link(gateway, OPEN, viewer(GB_IP, "GB"), body)

    assert_problem(response, 422, "invalid_redirect_url", 305)
    assert link_call_count(simulator) == before


@pytest.mark.parametrize(
    ("credentials", "reason"),
    [pytest.param(headers, reason, id=name) for name, headers, reason in AUTH_REFUSALS],
)
def test_unauthenticated_is_refused_before_the_upstream(
    gateway: httpx.Client, simulator: SimulatorHandle, credentials: dict[str, str], reason: str
) -> None:
    before = link_call_count(simulator)

    response = post_link(gateway, OPEN, {"X-Forwarded-For": GB_IP, **credentials})

    problem = assert_problem(response, 401, "unauthorized", None)
    assert problem["reason"] == reason
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert link_call_count(simulator) == before


@pytest.mark.parametrize(
    ("event_id", "headers", "stream"),
    [
        pytest.param(GEO_EVENT, viewer(GB_IP, "GB"), "HLS", id="event-allow-gb"),
        pytest.param(GEO_EVENT, viewer(GB_IP, "UK"), "HLS", id="event-allow-uk-is-gb"),
        pytest.param(GEO_EVENT, viewer(US_NY_IP, "US", "NY"), "HLS", id="event-allow-us-ny"),
        pytest.param(GEO_STREAMS, viewer(GB_IP, "GB"), "HLS", id="stream-allow-uk-is-gb"),
        pytest.param(GEO_STREAMS, viewer(US_NY_IP, "US"), "ULL", id="stream-block-is-gb-only"),
    ],
)
def test_geo_lists_admit_who_they_should(
    gateway: httpx.Client,
    simulator: SimulatorHandle,
    event_id: str,
    headers: dict[str, str],
    stream: str,
) -> None:
    response = post_link(gateway, event_id, headers, {"streamName": stream, "kind": "player"})

    assert response.status_code == 200, response.text
    user_id = headers["X-User-Id"]
    [call] = [c for c in simulator.calls("stream_link") if c["params"]["userId"] == user_id]
    assert call["operationCode"] == 200  # the simulator's own geo rules agree


# --- the untrusted peer's headers ----------------------------------------------------


def test_country_header_from_an_untrusted_peer_is_ignored(
    exposed_gateway: httpx.Client, simulator: SimulatorHandle
) -> None:
    before = link_call_count(simulator)
    headers = {"X-API-Key": API_KEY, "X-User-Id": unique("liar"), COUNTRY_HEADER: "GB"}

    response = post_link(exposed_gateway, GEO_EVENT, headers)

    problem = assert_problem(response, 403, "geo_blocked", 306)
    assert problem["reason"] == "country_unknown"
    assert problem["country"] is None
    assert link_call_count(simulator) == before


def test_forwarded_for_from_an_untrusted_peer_is_not_the_viewer(
    exposed_gateway: httpx.Client, simulator: SimulatorHandle
) -> None:
    user = unique("spoofer")
    headers = {"X-API-Key": API_KEY, "X-User-Id": user, "X-Forwarded-For": "203.0.113.9"}

    response = post_link(exposed_gateway, OPEN, headers, {"streamName": "HLS", "kind": "player"})

    assert response.status_code == 200, response.text
    [call] = [c for c in simulator.calls("stream_link") if c["params"]["userId"] == user]
    assert call["params"]["userIp"] == "127.0.0.1"  # the socket peer, not the claim
    assert call["params"]["xForwardedFor"] == "127.0.0.1"  # IGM_SERVER_IP


def test_a_pending_event_says_when_to_ask_again(gateway: httpx.Client, scenario: Scenario) -> None:
    [event] = [e for e in scenario.events if e["eventId"] == PENDING]
    start = datetime.fromisoformat(str(event["startTime"]))

    response = post_link(gateway, PENDING, viewer(GB_IP, "GB"))
    asked_at = datetime.now(UTC)

    problem = assert_problem(response, 409, "event_pending", 402)
    assert problem["eventId"] == PENDING
    assert problem["startTime"] == event["startTime"]
    # 40 minutes ahead: come back when the start is one event interval (1 s) away
    retry_after = int(response.headers["retry-after"])
    assert problem["retryAfter"] == retry_after
    until_start = (start - asked_at).total_seconds()
    assert until_start - 1 - 5 <= retry_after <= until_start


# --- decided or failed upstream ------------------------------------------------------


def test_pending_event_past_its_start_is_left_to_the_upstream(
    gateway: httpx.Client, simulator: SimulatorHandle
) -> None:
    headers = viewer(GB_IP, "GB")
    live_before = simulator.stats()["calls"]["live_stream"]

    response = post_link(gateway, PENDING_PAST, headers)

    assert_problem(response, 409, "event_pending", 402)
    [call] = [
        c for c in simulator.calls("stream_link") if c["params"]["userId"] == headers["X-User-Id"]
    ]
    assert call["operationCode"] == 402
    assert call["params"]["streamName"] == "HLS-RAW"
    assert simulator.stats()["calls"]["live_stream"] == live_before


@dataclass(frozen=True)
class UpstreamFailure:
    method: str
    kind: FaultKind
    status: int
    code: str
    operation_code: int | None = None
    fault_status: int = 503
    retry_after: bool = False


UPSTREAM_FAILURES = [
    pytest.param(
        UpstreamFailure("stream_link", "operation", 502, "provider_failure", 307),
        id="stream-link-307",
    ),
    pytest.param(
        UpstreamFailure("stream_link", "status", 502, "upstream_unavailable", retry_after=True),
        id="stream-link-503",
    ),
    pytest.param(
        UpstreamFailure(
            "stream_link", "status", 502, "upstream_unavailable", fault_status=500, retry_after=True
        ),
        id="stream-link-500",
    ),
    pytest.param(
        UpstreamFailure(
            "stream_link",
            "status",
            503,
            "upstream_rate_limited",
            fault_status=429,
            retry_after=True,
        ),
        id="stream-link-429",
    ),
    pytest.param(
        UpstreamFailure("stream_link", "delay", 503, "upstream_timeout", retry_after=True),
        id="stream-link-timeout",
    ),
    pytest.param(
        UpstreamFailure("stream_link", "reset", 503, "upstream_unavailable", retry_after=True),
        id="stream-link-connection-reset",
    ),
    pytest.param(
        UpstreamFailure("stream_link", "garbage", 502, "upstream_bad_response"),
        id="stream-link-garbage",
    ),
    pytest.param(
        UpstreamFailure("stream_link", "truncated", 502, "upstream_bad_response"),
        id="stream-link-truncated",
    ),
    pytest.param(
        UpstreamFailure("live_stream", "operation", 502, "provider_failure", 307),
        id="live-stream-307",
    ),
    pytest.param(
        UpstreamFailure("live_stream", "status", 502, "upstream_unavailable", retry_after=True),
        id="live-stream-503",
    ),
    pytest.param(
        UpstreamFailure("live_stream", "delay", 503, "upstream_timeout", retry_after=True),
        id="live-stream-timeout",
    ),
]


@pytest.mark.parametrize("failure", UPSTREAM_FAILURES)
def test_upstream_failures_become_problems_never_500(
    gateway: httpx.Client, simulator: SimulatorHandle, failure: UpstreamFailure
) -> None:
    headers = viewer(GB_IP, "GB")
    simulator.inject_fault(
        "stream_link" if failure.method == "stream_link" else "live_stream",
        failure.kind,
        status=failure.fault_status,
        delay_s=READ_TIMEOUT_S + 1.0,
        count=1,
    )
    try:
        response = post_link(gateway, OPEN, headers)
    finally:
        simulator.clear_faults()

    assert_problem(response, failure.status, failure.code, failure.operation_code)
    if failure.retry_after:
        assert int(response.headers["retry-after"]) >= 1
    # The failure was not remembered: the same request now succeeds.
    retry = post_link(gateway, OPEN, headers)
    assert retry.status_code == 200, retry.text
    assert retry.json()["kind"] == "hls"


# --- a replica too busy to keep its budget slots -------------------------------------


async def test_slots_a_stalled_replica_cannot_keep_are_given_up_not_used_late(
    simulator: SimulatorHandle, redis_server_url: str, tmp_path: Path
) -> None:
    """Five requests reserve the next five one-second slots; the replica then stalls for
    6 s (SIGSTOP stands in for a saturated event loop). Sent on waking, the five calls
    would reach the upstream together; they are asked again in line instead, and with
    their hold spent only one the bucket has a token for goes out. (Slots a second
    apart: on a loaded machine the stall may start a few hundred ms after the
    reservations.)"""
    env = gateway_env(
        simulator.api_url,
        _fresh_store(redis_server_url, 6),
        API_KEYS=API_KEY,
        DEFAULT_REDIRECT_URL="https://operator.example/after",
        LINK_RATE_PER_S="2",  # refills at rate - burst: a slot a second
        LINK_BURST="1",
        LINK_QUEUE_HOLD_S="5",
    )
    users = [unique("stalled") for _ in range(6)]
    with run_gateway(env, tmp_path, name="stalled") as process:
        # The held requests are answered after the wait for them to be counted (up to
        # 30 s on a loaded machine) and the stall: no read timeout shorter than both.
        timeout = httpx.Timeout(60.0, connect=10.0)
        async with httpx.AsyncClient(base_url=process.url, timeout=timeout) as client:
            await wait_open_async(client)

            async def mint(user: str) -> httpx.Response:
                headers = {"X-API-Key": API_KEY, "X-User-Id": user}
                body = {"streamName": "HLS", "kind": "player"}
                return await client.post(f"/v1/events/{OPEN}/links", json=body, headers=headers)

            first = await mint(users[0])  # takes the one token there is
            assert first.status_code == 200, first.text
            pending = [asyncio.create_task(mint(user)) for user in users[1:]]
            await wait_for_waiting(client, len(pending))
            os.kill(process.process.pid, signal.SIGSTOP)
            try:
                await asyncio.sleep(6.0)  # the stimulus: the process frozen past the waits
            finally:
                os.kill(process.process.pid, signal.SIGCONT)
            responses = await asyncio.gather(*pending)

    # A missed turn is asked again at once (its viewer first), so the one token the
    # bucket holds by then (LINK_BURST) may serve one of them; the rest are refused.
    served = [r for r in responses if r.status_code == 200]
    assert len(served) <= 1, [r.text for r in served]
    for response in responses:
        if response.status_code != 200:
            assert_problem(response, 429, "rate_limited", None)
            assert int(response.headers["retry-after"]) >= 1
    sent = [c["params"]["userId"] for c in simulator.calls("stream_link")]
    sent = [user for user in sent if user in users]
    assert sent[:1] == users[:1]
    assert len(sent) == 1 + len(served), sent
    assert set(sent[1:]) <= set(users[1:])
    woke = [
        c["monotonic"] for c in simulator.calls("stream_link") if c["params"]["userId"] in users[1:]
    ]
    # no bunch on waking: the calls after the stall are a turn (a second) apart
    assert all(b - a >= 0.9 for a, b in itertools.pairwise(woke)), woke


async def wait_open_async(client: httpx.AsyncClient) -> None:
    async def fetched() -> bool:
        return (await client.get("/v1/events/open")).status_code == 200

    await eventually(fetched, "the open list", timeout_s=WARM_TIMEOUT_S)


async def wait_for_waiting(client: httpx.AsyncClient, count: int) -> None:
    """Until ``count`` requests hold a reserved slot (the gateway's own counter)."""

    async def reserved() -> bool:
        text = (await client.get("/metrics")).text
        waited = sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "gateway_budget_decisions_total"
            and sample.labels == {"method": "stream_link", "decision": "waited"}
        )
        return waited >= count

    # generous: a loaded machine is slow, not wrong
    await eventually(reserved, f"{count} requests holding a reserved slot", timeout_s=30.0)
