"""Upstream faults against a real gateway process, a real redis-server and the simulator.

Every ONEPlatform method is made to fail in every way the simulator can (5xx, 429, a
hang past ``IGM_READ_TIMEOUT_S``, a reset connection, garbage, truncated JSON, an empty
answer, a provider failure) while the gateway is watched from outside:

- reads keep answering 200 from the last good copy, whose ``fetchedAt`` stays put and
  whose ``Age`` grows, and pick up fresh data once the upstream recovers;
- link requests fail fast (within the read timeout) with 502/503 problem+json and a
  stable ``code``, never a 500 and never a second upstream call;
- the circuit breaker stops calling a failing method (the simulator's call count stays
  put) and one probe closes it again;
- unexpected extra fields in the upstream's answers never reach a client.

Every test ends by checking the two columns of ``docs/reliability.md``: the simulator
saw no call beyond its budget (violations 0, event calls at least the interval apart),
and no secret (customerUid, API key) appeared in any answer or in the process's log.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from app.api.schemas import EventOut, StreamOut
from tests.support import polling
from tests.support.gateway import GatewayProcess, gateway_env, run_gateway
from tests.support.redis_server import fresh_database
from tests.support.simulator import FaultKind, SimMethod, SimulatorHandle, run_simulator

pytestmark = [pytest.mark.redis, pytest.mark.slow]

UID = f"uid-faults-{uuid.uuid4().hex}"
API_KEY = f"key-faults-{uuid.uuid4().hex}"
SECRETS = (UID, API_KEY)
INTERVAL_S = 2.0
GATE_INTERVAL_S = INTERVAL_S + 0.5  # EVENTS_GATE_MARGIN_S defaults to 0.5
READ_TIMEOUT_S = 1.0
HANG_S = READ_TIMEOUT_S + 4.0  # far past the timeout: a wait for it cannot pass for one
OPEN = "FLT-OPEN-1"
PENDING = "FLT-PEND-1"
COUNTRY_HEADER = "CF-IPCountry"
PROBLEM_JSON = "application/problem+json"
TRACE_MARKERS = ("Traceback", 'File "', "Error:", "/app/", ".py")
EXTRA_FIELD = "surpriseField"


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


START = datetime.now(UTC) - timedelta(minutes=30)
DAY = START.date().isoformat()


def scenario() -> tuple[list[dict[str, object]], dict[str, list[dict[str, object]]]]:
    """One open event and one pending one; every object carries fields nobody documented."""
    surprise = {"nested": [1, {"deep": True}], "text": "x" * 300}
    events: list[dict[str, object]] = [
        {"eventId": OPEN, "eventStatusCode": "O", "title": "Faults v Recovery",
         "sportCode": "FT", "startTime": _iso(START),
         "estimatedEndTime": _iso(START + timedelta(hours=4)),
         EXTRA_FIELD: surprise, "anotherOne": 42},
        {"eventId": PENDING, "eventStatusCode": "P", "title": "Later", "sportCode": "FT",
         "startTime": _iso(START + timedelta(minutes=1)), EXTRA_FIELD: surprise},
    ]  # fmt: skip
    streams: dict[str, list[dict[str, object]]] = {
        OPEN: [
            {"uniqueStreamName": "HLS", "streamType": "HLS", EXTRA_FIELD: surprise},
            {"uniqueStreamName": "ULL", "streamType": "ULL", "bitrateLadder": [1, 2, 3]},
        ]
    }
    return events, streams


@dataclass
class Rig:
    sim: SimulatorHandle
    gateway: GatewayProcess
    http: httpx.Client
    answers: list[httpx.Response] = field(default_factory=list)

    def get(self, path: str, **kwargs: object) -> httpx.Response:
        response = self.http.get(path, **kwargs)  # type: ignore[arg-type]
        self.answers.append(response)
        return response

    def mint(self, user: str, *, kind: str = "raw", stream: str = "HLS") -> httpx.Response:
        headers = {
            "X-API-Key": API_KEY,
            "X-User-Id": user,
            "X-Forwarded-For": "203.0.113.7",
            COUNTRY_HEADER: "GB",
        }
        body = {"streamName": stream, "kind": kind}
        response = self.http.post(f"/v1/events/{OPEN}/links", json=body, headers=headers)
        self.answers.append(response)
        return response


@pytest.fixture(scope="module")
def rig(redis_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    sim_env = {"SIM_CUSTOMER_UID": UID, "SIM_EVENTS_MIN_INTERVAL_S": str(INTERVAL_S)}
    with run_simulator(env=sim_env) as sim:
        sim.load_scenario(*scenario())
        redis_url = fresh_database(redis_server_url, 5)
        env = gateway_env(
            sim.api_url,
            redis_url,
            IGM_CUSTOMER_UID=UID,
            API_KEYS=API_KEY,
            EVENTS_MIN_INTERVAL_S=str(INTERVAL_S),
            IGM_READ_TIMEOUT_S=str(READ_TIMEOUT_S),
            IGM_CONNECT_TIMEOUT_S="1",
            LEASE_TTL_S="3",
            STREAMS_TTL_S="1",
            SPORTS_TTL_S="1",
            CATALOGUE_COLD_WAIT_S="1",
            TRUSTED_PROXIES="127.0.0.1/32",
            GEO_COUNTRY_HEADER=COUNTRY_HEADER,
            DEFAULT_REDIRECT_URL="https://operator.example/after",
        )
        log_dir = Path(tmp_path_factory.mktemp("faults-upstream"))
        with (
            run_gateway(env, log_dir, name="faults") as gateway,
            httpx.Client(base_url=gateway.url, timeout=10.0) as http,
        ):
            rig = Rig(sim, gateway, http)
            wait_until(lambda: rig.get("/v1/events/open").status_code == 200, 20, "open list")
            wait_until(lambda: rig.get("/v1/events", params={"date": DAY}).status_code == 200,
                       20, "date list")  # fmt: skip
            yield rig


@pytest.fixture(autouse=True)
def clean_slate(rig: Rig) -> Iterator[None]:
    rig.sim.clear_faults()
    yield
    rig.sim.clear_faults()
    assert_within_budget(rig.sim)
    assert_no_secrets(rig)


# --- helpers ---------------------------------------------------------------------


def wait_until(condition: Callable[[], object], timeout_s: float, what: str) -> None:
    polling.wait_until(condition, what, timeout_s=timeout_s, every_s=0.1)


def assert_within_budget(sim: SimulatorHandle) -> None:
    """The 'upstream calls beyond budget' column: measured by the simulator itself."""
    stats = sim.stats()
    assert sum(stats["violations"].values()) == 0, stats
    for method in ("event_all", "event_open"):
        spacing = stats["minSpacingS"][method]
        assert spacing is None or spacing >= INTERVAL_S, (method, spacing)


def assert_no_secrets(rig: Rig) -> None:
    """The 'secrets leaked' column: every answer so far, and the process's whole log."""
    log = rig.gateway.log_text()
    assert log, "the gateway wrote no log at all"
    for response in rig.answers:
        text = response.text + " ".join(f"{k}: {v}" for k, v in response.headers.items())
        for secret in SECRETS:
            assert secret not in text, response.request.url
    for secret in SECRETS:
        assert secret not in log


def assert_problem(response: httpx.Response, statuses: set[int], code: str) -> dict[str, object]:
    assert response.status_code in statuses, (response.status_code, response.text)
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert isinstance(body, dict)
    assert body["status"] == response.status_code
    assert body["code"] == code, body
    assert body["type"].endswith(code)
    for marker in TRACE_MARKERS:
        assert marker not in response.text, response.text
    return body


_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:]+)(?:\{(?P<labels>[^}]*)\})? (?P<value>\S+)$")


def metric(rig: Rig, name: str, **labels: str) -> float:
    """Sum of a metric's samples whose labels include ``labels``."""
    total = 0.0
    for line in rig.http.get("/metrics").text.splitlines():
        match = _SAMPLE.match(line)
        if match is None or match["name"] != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match["labels"] or ""))
        if all(found.get(key) == value for key, value in labels.items()):
            total += float(match["value"])
    return total


def fetched_at(response: httpx.Response) -> str:
    value = response.json()["fetchedAt"]
    assert isinstance(value, str)
    return value


def pending_faults(sim: SimulatorHandle, method: SimMethod) -> int:
    """How many more calls of ``method`` the injected faults will hit (unlimited: 10**6)."""
    faults = sim.control.get("/_sim/faults").json()
    return sum(fault["count"] or 10**6 for fault in faults if fault["method"] == method)


def calls_of(sim: SimulatorHandle, method: SimMethod) -> int:
    return sim.stats()["calls"][method]


# --- reads: the last good copy ------------------------------------------------------

# Interleaved so that no five failures the breaker counts come in a row: this test is
# about the stale copy; the breaker has its own test below.
READ_FAULTS: list[tuple[FaultKind, int]] = [
    ("status", 500),
    ("garbage", 0),
    ("status", 503),
    ("truncated", 0),
    ("status", 429),
    ("delay", 0),
    ("reset", 0),
]
OUTCOMES = {  # gateway_upstream_calls_total outcome -> how many READ_FAULTS produce it
    "server_error": 2,
    "rate_limited": 1,
    "timeout": 1,
    "connection_error": 1,
    "bad_response": 2,
}


# event/all is spent on a date every two intervals or so: a shorter sequence keeps the
# test short (every kind is still applied to event/open, streams and sports).
DATE_FAULTS: list[tuple[FaultKind, int]] = [("status", 500), ("reset", 0), ("truncated", 0)]


def inject_sequence(
    sim: SimulatorHandle, method: SimMethod, faults: list[tuple[FaultKind, int]]
) -> None:
    for kind, status in faults:
        sim.inject_fault(method, kind, status=status or 503, delay_s=HANG_S, count=1)


def test_reads_serve_the_last_good_copy_through_every_fault(rig: Rig) -> None:
    sim = rig.sim
    paths = {
        "open": ("/v1/events/open", {}),
        "date": ("/v1/events", {"params": {"date": DAY}}),
        "streams": (f"/v1/events/{OPEN}/streams", {}),
        "sports": ("/v1/sports", {}),
    }
    rig.get(f"/v1/events/{OPEN}/streams")  # cached once before the faults
    rig.get("/v1/sports")
    before = {kind: rig.get(path, **kw) for kind, (path, kw) in paths.items()}
    baseline = {kind: fetched_at(response) for kind, response in before.items()}
    counters = {o: metric(rig, "gateway_upstream_calls_total", method="event_open", outcome=o)
                for o in OUTCOMES}  # fmt: skip
    methods: tuple[SimMethod, ...] = ("event_open", "streams", "sports")
    for method in methods:
        inject_sequence(sim, method, READ_FAULTS)
    inject_sequence(sim, "event_all", DATE_FAULTS)
    started = time.monotonic()
    ages: list[int] = []
    slowest = 0.0
    while pending_faults(sim, "event_open") or pending_faults(sim, "event_all"):
        assert time.monotonic() - started < 60, "the faults were never all consumed"
        open_faulty = pending_faults(sim, "event_open") > 0
        for kind, (path, kw) in paths.items():
            sent = time.perf_counter()
            response = rig.get(path, **kw)
            slowest = max(slowest, time.perf_counter() - sent)
            assert response.status_code == 200, (kind, response.text)
            assert response.json()["events" if kind in ("open", "date") else kind]
            if kind == "open" and open_faulty:
                # while event/open fails, the copy served is the one from before
                assert fetched_at(response) == baseline["open"]
                ages.append(int(response.headers["age"]))
        time.sleep(0.2)
    # Seven failed calls, one per gate interval: the copy aged all along.
    assert ages == sorted(ages)
    assert ages[-1] >= (len(READ_FAULTS) - 1) * GATE_INTERVAL_S - 2
    assert slowest < READ_TIMEOUT_S, "a read waited on the failing upstream"
    for outcome, produced in OUTCOMES.items():
        now = metric(rig, "gateway_upstream_calls_total", method="event_open", outcome=outcome)
        assert now - counters[outcome] == produced, outcome
    # Recovery: the next good call replaces the copy.
    wait_until(
        lambda: fetched_at(rig.get("/v1/events/open")) > baseline["open"],
        3 * GATE_INTERVAL_S,
        "a fresh open list",
    )
    wait_until(
        lambda: fetched_at(rig.get("/v1/events", params={"date": DAY})) > baseline["date"],
        4 * GATE_INTERVAL_S + 2,
        "a fresh date list",
    )
    assert pending_faults(sim, "streams") == pending_faults(sim, "sports") == 0


def test_a_suddenly_empty_list_is_held_back_until_confirmed(rig: Rig) -> None:
    sim = rig.sim
    first = rig.get("/v1/events/open")
    assert [e["eventId"] for e in first.json()["events"]] == [OPEN]
    sim.inject_fault("event_open", "empty", count=2)
    wait_until(lambda: pending_faults(sim, "event_open") == 1, 3 * GATE_INTERVAL_S, "1st empty")
    # the answer is in and the gateway decided: it says so in its log
    wait_until(lambda: '"empty_list_held_back"' in rig.gateway.log_text(), 10, "the hold-back")
    held = rig.get("/v1/events/open")
    assert [e["eventId"] for e in held.json()["events"]] == [OPEN]  # one empty answer: ignored
    assert fetched_at(held) == fetched_at(first)
    assert '"empty_list_held_back"' in rig.gateway.log_text()
    # A second empty answer in a row confirms it: the list really is empty now.
    wait_until(lambda: rig.get("/v1/events/open").json()["events"] == [], 3 * GATE_INTERVAL_S,
               "the confirmed empty list")  # fmt: skip
    # And the next normal answer brings the event back.
    wait_until(lambda: rig.get("/v1/events/open").json()["events"] != [], 3 * GATE_INTERVAL_S,
               "the list restored")  # fmt: skip


def test_unexpected_extra_fields_never_reach_a_client(rig: Rig) -> None:
    event_keys = {f.alias or name for name, f in EventOut.model_fields.items()}
    stream_keys = {f.alias or name for name, f in StreamOut.model_fields.items()}
    open_list = rig.get("/v1/events/open").json()
    assert {e["eventId"] for e in open_list["events"]} == {OPEN}
    for event in open_list["events"]:
        assert set(event) == event_keys
    day = rig.get("/v1/events", params={"date": DAY}).json()
    assert {e["eventId"] for e in day["events"]} == {OPEN, PENDING}
    assert all(set(event) == event_keys for event in day["events"])
    one = rig.get(f"/v1/events/{OPEN}").json()
    assert set(one) == event_keys | {"fetchedAt"}
    streams = rig.get(f"/v1/events/{OPEN}/streams").json()["streams"]
    assert {s["name"] for s in streams} == {"HLS", "ULL"}
    assert all(set(stream) == stream_keys for stream in streams)
    everything = str([open_list, day, one, streams])
    assert EXTRA_FIELD not in everything
    assert "bitrateLadder" not in everything
    minted = rig.mint(f"extra-{uuid.uuid4().hex[:8]}")
    assert minted.status_code == 200, minted.text
    assert minted.json()["kind"] == "hls"


# --- links: fail fast, one call, problem+json -------------------------------------

# (kind, status) -> (HTTP status, code); ordered so the breaker never opens here.
LINK_FAULTS: list[tuple[FaultKind, int, int, str]] = [
    ("status", 500, 502, "upstream_unavailable"),
    ("garbage", 0, 502, "upstream_bad_response"),
    ("status", 503, 502, "upstream_unavailable"),
    ("truncated", 0, 502, "upstream_bad_response"),
    ("status", 429, 503, "upstream_rate_limited"),
    ("empty", 0, 502, "upstream_bad_response"),
    ("delay", 0, 503, "upstream_timeout"),
    ("operation", 0, 502, "provider_failure"),
    ("reset", 0, 503, "upstream_unavailable"),
]


@pytest.mark.parametrize("method", ["stream_link", "live_stream"])
def test_link_requests_fail_fast_with_a_problem(rig: Rig, method: SimMethod) -> None:
    sim = rig.sim
    warm = rig.mint(f"warm-{uuid.uuid4().hex[:8]}")  # streams cached, breaker closed
    assert warm.status_code == 200, warm.text
    seen: list[tuple[str, int, str]] = []
    for kind, status, want_status, want_code in LINK_FAULTS:
        before = calls_of(sim, method)
        sim.inject_fault(method, kind, status=status or 503, delay_s=HANG_S, count=1)
        sent = time.monotonic()
        response = rig.mint(f"{method}-{kind}-{uuid.uuid4().hex[:8]}")
        elapsed = time.monotonic() - sent
        body = assert_problem(response, {502, 503}, want_code)
        assert response.status_code == want_status, (kind, body)
        assert elapsed < READ_TIMEOUT_S + 2.5, (kind, elapsed)  # never hangs (HANG_S)
        if response.status_code == 503:
            assert int(response.headers["retry-after"]) >= 1
            assert body["retryAfter"] == int(response.headers["retry-after"])
        # exactly one call reached the faulty method: no retry spends more budget
        target = before + 1
        wait_until(lambda: calls_of(sim, method) >= target, HANG_S + 2, f"{kind} call")  # noqa: B023
        assert calls_of(sim, method) == before + 1
        assert pending_faults(sim, method) == 0
        seen.append((kind, response.status_code, str(body["code"])))
    assert [(k, s, c) for k, _, s, c in LINK_FAULTS] == seen
    assert rig.mint(f"after-{uuid.uuid4().hex[:8]}").status_code == 200


def test_the_breaker_spares_a_failing_method_and_a_probe_recovers_it(rig: Rig) -> None:
    sim = rig.sim
    assert rig.mint(f"pre-{uuid.uuid4().hex[:8]}").status_code == 200  # closed, counted 0
    sim.inject_fault("stream_link", "status", status=503)
    start_calls = calls_of(sim, "stream_link")
    spared_before = metric(
        rig, "gateway_upstream_calls_total", method="stream_link", outcome="circuit_open"
    )
    for _ in range(5):  # the default threshold
        assert_problem(rig.mint(f"fail-{uuid.uuid4().hex[:8]}"), {502}, "upstream_unavailable")
    assert calls_of(sim, "stream_link") == start_calls + 5
    for _ in range(4):
        sent = time.monotonic()
        response = rig.mint(f"open-{uuid.uuid4().hex[:8]}")
        assert time.monotonic() - sent < 0.5  # refused at once, no upstream round trip
        body = assert_problem(response, {503}, "upstream_unavailable")
        assert "stream_link" in str(body["detail"])
        assert 1 <= int(response.headers["retry-after"]) <= 2
    assert calls_of(sim, "stream_link") == start_calls + 5  # the open circuit made no call
    spared = metric(
        rig, "gateway_upstream_calls_total", method="stream_link", outcome="circuit_open"
    )
    assert spared - spared_before == 4
    sim.clear_faults()
    time.sleep(2.1)  # the stimulus: the default cool-down passes
    probe = rig.mint(f"probe-{uuid.uuid4().hex[:8]}")
    assert probe.status_code == 200, probe.text
    assert calls_of(sim, "stream_link") == start_calls + 6
    assert rig.mint(f"closed-{uuid.uuid4().hex[:8]}").status_code == 200
    assert calls_of(sim, "stream_link") == start_calls + 7
