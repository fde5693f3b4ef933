"""A whole run of a real gateway process (reads, the three kinds of link, refusals,
an upstream failure), then: every metric is there with sensible values, and nothing
the process logged holds a secret."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import jwt
import orjson
import pytest

from tests.support.gateway import GatewayProcess, gateway_env, run_gateway
from tests.support.polling import wait_until
from tests.support.redis_server import fresh_database
from tests.support.simulator import SimulatorHandle, run_simulator

pytestmark = pytest.mark.redis

UID = "cust-7f3e9a1c-obs-secret-uid"
API_KEY = "api-key-obs-7c1d2e3f4a5b6c7d8e9f"
JWT_SECRET = "jwt-secret-obs-0123456789abcdef0123456789"


@dataclass
class Run:
    gateway: GatewayProcess
    sim: SimulatorHandle
    secrets: list[str]


def _event(event_id: str, status: str, geo_allow: str = "") -> dict[str, object]:
    now = datetime.now(UTC)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    start = max(now - timedelta(minutes=30), midnight)  # on today's list, and started
    return {
        "eventId": event_id,
        "locationCode": "OBS",
        "locationName": "Observability League",
        "sportCode": "FT",
        "eventStatusCode": status,
        "eventNumber": event_id.rsplit("-", 1)[-1],
        "title": f"Match {event_id}",
        "startTime": start.strftime("%Y-%m-%dT%H:%M:%S"),
        "estimatedEndTime": (start + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S"),
        "geoAllow": geo_allow,
        "geoBlock": "",
    }


def _stream(name: str, kind: str) -> dict[str, object]:
    return {"uniqueStreamName": name, "streamType": kind, "description": name}


@pytest.fixture(scope="module")
def run(redis_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    with run_simulator(env={"SIM_CUSTOMER_UID": UID, "SIM_EVENTS_MIN_INTERVAL_S": "1"}) as sim:
        sim.load_scenario(
            [_event("OBS-1", "O"), _event("OBS-2", "C"), _event("OBS-3", "O", geo_allow="FR")],
            {"OBS-1": [_stream("HLS", "HLS"), _stream("ULL", "ULL")]},
        )
        env = gateway_env(
            sim.api_url,
            fresh_database(redis_server_url, 5),
            IGM_CUSTOMER_UID=UID,
            API_KEYS=API_KEY,
            AUTH_JWT_SECRET=JWT_SECRET,
            EVENTS_MIN_INTERVAL_S="1",
            LOG_LEVEL="debug",
            REPLICA_COUNT="1",
            DEFAULT_REDIRECT_URL="https://www.example.com/after",
        )
        with run_gateway(env, Path(tmp_path_factory.mktemp("obs"))) as gateway:
            yield Run(gateway, sim, [UID, API_KEY, JWT_SECRET])


def _wait_open(url: str) -> None:
    def has_events() -> bool:
        response = httpx.get(f"{url}/v1/events/open", timeout=5)
        return response.status_code == 200 and bool(response.json()["events"])

    wait_until(has_events, "the open list with its events", timeout_s=20, every_s=0.2)


def _traffic(run: Run) -> list[str]:
    """Mixed traffic; returns the minted tokens (they must not be logged either)."""
    url = run.gateway.url
    _wait_open(url)
    token = jwt.encode(
        {"sub": "viewer-obs", "exp": int(time.time()) + 300}, JWT_SECRET, algorithm="HS256"
    )
    bearer = {"Authorization": f"Bearer {token}"}
    keyed = {"X-API-Key": API_KEY, "X-User-Id": "backend-user"}
    minted: list[str] = [token]
    with httpx.Client(base_url=url, timeout=10) as client:
        for path in (
            "/v1/sports",
            "/v1/events/open",
            "/v1/events/OBS-1",
            "/v1/events/OBS-1/streams",
        ):
            assert client.get(path).status_code == 200
        today = datetime.now(UTC).date().isoformat()
        assert client.get(f"/v1/events?date={today}").status_code in (200, 503)
        for body, headers in (
            ({"streamName": "HLS", "kind": "raw"}, bearer),
            ({"streamName": "ULL", "kind": "raw"}, bearer),
            ({"streamName": "HLS", "kind": "player"}, keyed),
        ):
            response = client.post("/v1/events/OBS-1/links", json=body, headers=headers)
            assert response.status_code == 200, response.text
            answer = response.json()
            minted += [str(v) for k, v in answer.items() if k in ("token", "url", "channelId")]
        refusals = [
            ("/v1/events/OBS-2/links", {"streamName": "HLS"}, bearer, 410),  # closed
            ("/v1/events/OBS-3/links", {"streamName": "HLS"}, bearer, 403),  # geo
            ("/v1/events/OBS-1/links", {"streamName": "NOPE"}, bearer, 404),  # stream
            ("/v1/events/OBS-1/links", {"streamName": "HLS"}, {"Authorization": "Bearer x"}, 401),
            ("/v1/events/OBS-1/links", {"streamName": "HLS"}, {"X-API-Key": "wrong"}, 401),
        ]
        for path, body, headers, status in refusals:
            assert client.post(path, json=body, headers=headers).status_code == status
        run.sim.inject_fault("stream_link", "status", status=503, count=1)
        failed = client.post(
            "/v1/events/OBS-1/links", json={"streamName": "HLS", "kind": "player"}, headers=bearer
        )
        assert failed.status_code in (502, 503)
        assert client.get("/v1/events/missing-1").status_code == 404
    return minted


def _sample(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {name} {labels}")


def test_metrics_and_logs_after_a_whole_run(run: Run) -> None:
    minted = _traffic(run)
    metrics = httpx.get(f"{run.gateway.url}/metrics", timeout=5).text

    assert (
        _sample(metrics, "gateway_http_requests_total", route="/v1/events/open", status="200") >= 1
    )
    assert (
        _sample(
            metrics, "gateway_http_requests_total", route="/v1/events/{eventId}/links", status="200"
        )
        == 3
    )
    assert _sample(metrics, "gateway_http_request_duration_seconds_count", route="/v1/sports") >= 1
    assert _sample(metrics, "gateway_upstream_calls_total", method="stream_link", outcome="ok") == 3
    assert _sample(metrics, "gateway_upstream_calls_total", method="live_stream", outcome="ok") == 2
    assert (
        _sample(
            metrics, "gateway_upstream_calls_total", method="stream_link", outcome="server_error"
        )
        == 1
    )
    assert (
        _sample(metrics, "gateway_upstream_call_duration_seconds_count", method="event_open") >= 1
    )
    assert (
        _sample(metrics, "gateway_budget_decisions_total", method="stream_link", decision="allowed")
        == 4
    )
    assert (
        _sample(metrics, "gateway_budget_decisions_total", method="event_open", decision="allowed")
        >= 1
    )
    assert -100 < _sample(metrics, "gateway_budget_tokens_left", method="stream_link") <= 10
    assert _sample(metrics, "gateway_catalogue_reads_total", list="open", result="hit") >= 1
    assert _sample(metrics, "gateway_catalogue_reads_total", list="streams", result="miss") >= 1
    assert 0 <= _sample(metrics, "gateway_catalogue_age_seconds", list="open") < 60
    assert _sample(metrics, "gateway_catalogue_refreshes_total", list="open", outcome="ok") >= 1
    for kind in ("hls", "theolive", "player"):
        assert _sample(metrics, "gateway_links_minted_total", kind=kind, source="upstream") == 1
    for reason, count in (("status", 1), ("geo", 1), ("stream", 1), ("auth", 2)):
        assert _sample(metrics, "gateway_refusals_total", reason=reason) == count
    assert "gateway_redis_errors_total" in metrics
    assert _sample(metrics, "gateway_refresh_leader") == 1
    assert _sample(metrics, "gateway_degraded") == 0
    for label_value in ("OBS-1", "viewer-obs", "backend-user", "127.0.0.1"):
        assert label_value not in metrics  # no unbounded labels

    # The access line of the /metrics request above is written after every line before
    # it: once it is in the file, so are they.
    wait_until(
        lambda: any(
            line.startswith("{") and orjson.loads(line).get("route") == "/metrics"
            for line in run.gateway.log_text().splitlines()
        ),
        "the last lines in the log",
        timeout_s=20,
    )
    log = run.gateway.log_text()
    for secret in [*run.secrets, *minted]:
        assert secret not in log, "a secret reached the log"
    lines = [orjson.loads(line) for line in log.splitlines() if line.startswith("{")]
    requests = [line for line in lines if line["event"] == "request"]
    assert len(requests) >= 15
    assert all(re.fullmatch(r"[0-9a-f]{32}", line["request_id"]) for line in requests)
    upstream_lines = [line for line in lines if line["event"] == "upstream_call"]
    in_requests = [line for line in upstream_lines if "request_id" in line]
    assert {line["method"] for line in in_requests} >= {"stream_link", "live_stream", "streams"}
    link_lines = [line for line in requests if line["route"] == "/v1/events/{eventId}/links"]
    assert sorted(line["upstream_calls"] for line in link_lines if line["status"] == 200) == [
        1,
        2,
        2,
    ]
