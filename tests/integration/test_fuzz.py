"""Schemathesis over the gateway's own OpenAPI document, against a real process.

The gateway runs in demo mode (``IGM_MODE=simulator``: demo credentials rules, the
embedded store) with its secrets set to distinctive values; its simulator runs as a
process of its own (``IGM_API_URL``) rather than in-process, so that what the fuzzing
cost upstream can be counted. The schema is loaded from the process's
``/openapi.json``; every operation gets a bounded number of generated requests
(positive and negative), link requests carry an API key and a fresh user id, and some
positive cases are pinned to an open, unrestricted event and its streams, or to a date
the gateway serves, so the link rules, the upstream and the cached lists are reached
too. Each answer must:

- not be a 5xx;
- use a status, content type, headers and body the document declares for it (each
  message of the live stream included: its first one, the snapshot, is read), and
  refuse (4xx) what the document says is invalid;
- be problem+json with a ``code`` when it is an error, without a stack trace;
- hold no secret (customerUid, API key) — nor may the process's log;

and the simulator must have seen no call beyond its limits.

Bounded to about a minute on two cores (``MAX_EXAMPLES`` per operation; operations
without parameters have only a handful of distinct cases).
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.gateway import GatewayProcess, run_gateway
from tests.support.polling import wait_until
from tests.support.simulator import run_simulator

pytestmark = pytest.mark.slow

UID = f"uid-fuzz-{uuid.uuid4().hex}"
API_KEY = f"key-fuzz-{uuid.uuid4().hex}"
SECRETS = (UID, API_KEY)
MAX_EXAMPLES = 600
INTERVAL_S = 0.5  # event/all and event/open spacing, gateway and simulator alike
TRACE_MARKERS = ("Traceback", 'File "', "site-packages")
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
users = itertools.count()


@pytest.fixture(scope="module")
def demo_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    sim_env = {"SIM_CUSTOMER_UID": UID, "SIM_EVENTS_MIN_INTERVAL_S": str(INTERVAL_S)}
    with run_simulator(env=sim_env) as sim:
        env = {
            "IGM_MODE": "simulator",
            "IGM_API_URL": sim.api_url,
            "IGM_PLAYER_API_URL": sim.api_url,
            "IGM_CUSTOMER_UID": UID,
            "API_KEYS": API_KEY,
            "EVENTS_MIN_INTERVAL_S": str(INTERVAL_S),
            "DEFAULT_REDIRECT_URL": "https://operator.example/after",
            "LOG_FORMAT": "json",
        }
        with run_gateway(env, Path(tmp_path_factory.mktemp("fuzz")), name="fuzz") as gateway:
            warm(gateway)
            yield gateway
            log = gateway.log_text()
        for secret in SECRETS:
            assert secret not in log
        assert "Traceback" not in log
        assert '"unhandled_error"' not in log
        stats = sim.stats()
        assert sum(stats["violations"].values()) == 0, stats
        assert stats["calls"]["stream_link"] > 0  # the fuzzing did reach the upstream
        for method in ("event_all", "event_open"):
            assert (stats["minSpacingS"][method] or INTERVAL_S) >= INTERVAL_S


def warm(gateway: GatewayProcess) -> None:
    """Every list the document can ask for, fetched once (no 503 ``catalogue_warming``)."""
    with httpx.Client(base_url=gateway.url, timeout=10) as http:
        wait_until(
            lambda: http.get("/v1/events/open").status_code == 200, "the open list", timeout_s=30
        )
        today = date.fromisoformat(http.get("/v1/events/open").json()["fetchedAt"][:10])
        for offset in range(-1, 8):  # CATALOGUE_DAYS_BACK=1, CATALOGUE_DAYS_AHEAD=7
            day = (today + timedelta(days=offset)).isoformat()

            def listed(day: str = day) -> bool:
                return http.get("/v1/events", params={"date": day}).status_code == 200

            wait_until(listed, f"the list of {day}", timeout_s=30)
        assert http.get("/v1/sports").status_code == 200


@dataclass(frozen=True)
class Known:
    """Real values to pin some cases to, so they get past "unknown event" and "date out of
    range" to the rules, the cached lists and the upstream."""

    event_id: str
    streams: tuple[str, ...]
    today: str


@pytest.fixture(scope="module")
def known(demo_gateway: GatewayProcess) -> Known:
    with httpx.Client(base_url=demo_gateway.url, timeout=10) as http:
        listing = http.get("/v1/events/open").json()
        # an event and streams open to a viewer of unknown country (the demo's 127.0.0.1)
        for event in listing["events"]:
            if event["geoAllow"]:
                continue
            streams = http.get(f"/v1/events/{event['eventId']}/streams").json()["streams"]
            names = tuple(s["name"] for s in streams if not s["geoCountryAllow"])
            if names:
                event_id = event["eventId"]
                break
        else:
            pytest.fail("the demo schedule has no unrestricted event in progress")
    return Known(event_id, names, listing["fetchedAt"][:10])


# The document's operations (a test below checks the live document has exactly these).
OPERATIONS = [
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/v1/sports"),
    ("GET", "/v1/events"),
    ("GET", "/v1/events/open"),
    ("GET", "/v1/events/live"),
    ("GET", "/v1/events/{eventId}"),
    ("GET", "/v1/events/{eventId}/streams"),
    ("POST", "/v1/events/{eventId}/links"),
    ("POST", "/v1/events/{eventId}/play"),
    ("POST", "/v1/sessions/{sessionId}/heartbeat"),
    ("DELETE", "/v1/sessions/{sessionId}"),
]


@pytest.fixture(scope="module")
def gateway_schema(demo_gateway: GatewayProcess) -> Any:
    # schemathesis.pytest.from_fixture would load it lazily, but its pytest plugin
    # (4.32.5) reads request.node._nodeid, which pytest 9.2 no longer has: the
    # operations are driven here with their Hypothesis strategies instead.
    # Any 4xx is a refusal of invalid data (413 for a body past 16 KiB included).
    rejection = {"negative_data_rejection": {"expected-statuses": ["4xx"]}}
    # The live stream never ends: its first message (the snapshot) is read and checked.
    config = SchemathesisConfig.from_dict({"checks": rejection, "max-stream-events": 1})
    return schemathesis.openapi.from_url(f"{demo_gateway.url}/openapi.json", config=config)


def assert_clean(response: Any) -> None:
    """No stack trace, no secret; errors are problem+json with a stable code."""
    text = response.text + repr(dict(response.headers))
    for marker in TRACE_MARKERS:
        assert marker not in text, text[:300]
    for secret in SECRETS:
        assert secret not in text
    if response.status_code >= 400:
        assert response.headers["content-type"][0] == "application/problem+json", text[:300]
        body = response.json()
        assert body["status"] == response.status_code
        assert isinstance(body["code"], str)
        assert body["code"]


def test_the_document_lists_the_operations_fuzzed(gateway_schema: Any) -> None:
    live = {(op.ok().method.upper(), op.ok().path) for op in gateway_schema.get_all_operations()}
    assert live == set(OPERATIONS)


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_every_operation_answers_within_its_contract(
    gateway_schema: Any, demo_gateway: GatewayProcess, known: Known, method: str, path: str
) -> None:
    operation = gateway_schema[path][method]
    strategies = [
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    ]
    if "{eventId}" in path:  # reach past "unknown event": the rules, the upstream
        event = {"eventId": known.event_id}
        strategies.append(operation.as_strategy(GenerationMode.POSITIVE, path_parameters=event))
        if path.endswith("/links"):
            strategies += [
                operation.as_strategy(
                    GenerationMode.POSITIVE,
                    path_parameters=event,
                    body={"streamName": name, "kind": kind},
                )
                for name in known.streams
                for kind in ("raw", "player")
            ]
        if path.endswith("/play"):
            strategies += [
                operation.as_strategy(
                    GenerationMode.POSITIVE,
                    path_parameters=event,
                    body={"device": device, "ull": ull},
                )
                for device in ("web", "app", "tv")
                for ull in (True, False)
            ]
    if path == "/v1/events":  # a date the gateway serves; sport and status generated
        today = {"date": known.today}
        strategies.append(operation.as_strategy(GenerationMode.POSITIVE, query=today))
    statuses: list[int] = []

    @given(case=st.one_of(strategies))
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def exercise(case: Any) -> None:
        headers = {}
        if method in ("POST", "DELETE") or path == "/v1/events/live":
            headers = {"X-API-Key": API_KEY, "X-User-Id": f"fuzz-{next(users)}"}
        response = case.call(base_url=demo_gateway.url, headers=headers, timeout=15)
        statuses.append(response.status_code)
        case.validate_response(response, checks=CHECKS, headers=headers)
        assert_clean(response)

    exercise()
    assert statuses  # (an operation without parameters has only a few distinct cases)
    assert all(status < 500 for status in statuses)
