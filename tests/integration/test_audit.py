"""The audit trail through a real gateway, a real simulator and a real redis-server:
every link decision of a run has exactly one record, in the log stream and in the
Redis Stream alike, and no record holds a secret, a raw user id or (by default) an IP."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.support.gateway import gateway_env, run_gateway
from tests.support.jwt_keys import HS_SECRET, sign_hs256
from tests.support.polling import wait_until
from tests.support.redis_server import fresh_database
from tests.support.simulator import SimulatorHandle, run_simulator

pytestmark = pytest.mark.redis

API_KEY = "audit-api-key-0123456789abcdef0123456789"
USER_KEY = "audit-user-hash-key-9876"
STREAM = "gateway:audit"
OPEN, CLOSED, GB_ONLY = "AUDIT-OPEN", "AUDIT-CLOSED", "AUDIT-GB"
VIEWER_IP = "198.51.100.44"


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _event(event_id: str, status: str, geo_allow: str = "") -> dict[str, object]:
    now = datetime.now(UTC)
    return {
        "eventId": event_id,
        "eventStatusCode": status,
        "title": event_id,
        "sportCode": "FT",
        "startTime": _iso(now - timedelta(minutes=5)),
        "estimatedEndTime": _iso(now + timedelta(hours=1)),
        "geoAllow": geo_allow,
        "geoBlock": "",
    }


@pytest.fixture(scope="module")
def simulator() -> Iterator[SimulatorHandle]:
    streams = [
        {"uniqueStreamName": "HLS", "streamType": "HLS", "description": "HLS"},
        {"uniqueStreamName": "ULL", "streamType": "ULL", "description": "ULL"},
    ]
    with run_simulator(env={"SIM_EVENTS_MIN_INTERVAL_S": "0"}) as sim:
        sim.load_scenario(
            [_event(OPEN, "O"), _event(CLOSED, "C"), _event(GB_ONLY, "O", geo_allow="GB")],
            {OPEN: streams, CLOSED: streams, GB_ONLY: streams},
        )
        yield sim


def user_hash(user_id: str) -> str:
    return hmac.new(USER_KEY.encode(), user_id.encode(), hashlib.sha256).hexdigest()[:32]


def test_every_link_decision_has_exactly_one_record_and_no_secret(
    simulator: SimulatorHandle, redis_server_url: str, tmp_path: Path
) -> None:
    redis_url = fresh_database(redis_server_url, 13)
    env = gateway_env(
        simulator.api_url,
        redis_url,
        API_KEYS=API_KEY,
        AUTH_JWT_SECRET=HS_SECRET,
        TRUSTED_PROXIES="127.0.0.1/32",
        GEO_COUNTRY_HEADER="CF-IPCountry",
        DEFAULT_REDIRECT_URL="https://operator.example/after",
        EVENTS_MIN_INTERVAL_S="0.5",
        REPLICA_COUNT="1",
        AUDIT_REDIS_STREAM=STREAM,
        AUDIT_USER_ID_KEY=USER_KEY,
        LOG_LEVEL="warning",  # records are written whatever the log level
    )
    with redis.Redis.from_url(redis_url) as store:
        store.flushdb()
    user = f"audited-{uuid.uuid4().hex[:8]}"
    key_headers = {
        "X-API-Key": API_KEY,
        "X-User-Id": user,
        "X-Forwarded-For": VIEWER_IP,
        "CF-IPCountry": "FR",
    }
    token = sign_hs256({"sub": user, "exp": int(time.time()) + 300})
    jwt_headers = {"Authorization": f"Bearer {token}", "X-Forwarded-For": VIEWER_IP}
    hls = {"streamName": "HLS", "kind": "raw"}
    expected: dict[str, tuple[str, str | None]] = {}  # request id -> (decision, code)
    with (
        run_gateway(env, tmp_path, name="audit") as gateway,
        httpx.Client(base_url=gateway.url, timeout=10.0) as client,
    ):
        wait_until(
            lambda: client.get(f"/v1/events/{GB_ONLY}").status_code == 200,
            "the gateway sees the events",
            timeout_s=30,
        )

        def send(path: str, body: Mapping[str, object], headers: dict[str, str]) -> httpx.Response:
            return client.post(f"/v1/events/{path}", json=body, headers=headers)

        decisions = [
            (send(f"{OPEN}/links", hls, key_headers), "minted", None),
            (send(f"{OPEN}/links", hls, key_headers), "deduped", None),
            (send(f"{OPEN}/play", {"device": "web", "ull": True}, jwt_headers), "minted", None),
            (send(f"{CLOSED}/links", hls, key_headers), "refused", "event_closed"),
            (send(f"{GB_ONLY}/play", {"device": "app"}, key_headers), "refused", "geo_blocked"),
            (send(f"{OPEN}/links", hls, {"X-API-Key": "wrong"}), "refused", "unauthorized"),
            (send("NO-SUCH-EVENT/links", hls, key_headers), "refused", "event_not_found"),
        ]
        not_decisions = [
            send(f"{OPEN}/links", {"streamName": "HLS", "kind": "nope"}, key_headers),
            client.get("/v1/events/open"),
        ]
        for answer, decision, code in decisions:
            expected[answer.headers["x-request-id"]] = (decision, code)
            assert (answer.status_code == 200) == (decision != "refused"), answer.text
        assert not_decisions[0].status_code == 422

        # the records are written while the answers go out: wait for every one of them
        def audit_lines() -> list[dict[str, Any]]:
            lines = [json.loads(line) for line in gateway.log_text().splitlines() if line]
            return [line for line in lines if line.get("event") == "audit"]

        with redis.Redis.from_url(redis_url, decode_responses=True) as store:
            entries = wait_until(
                lambda: [fields for _, fields in store.xrange(STREAM)],
                "an audit entry per decision in the stream",
                until=lambda found: len(found) >= len(expected),
            )
        logged = wait_until(
            audit_lines,
            "an audit line per decision in the log",
            until=lambda found: len(found) >= len(expected),
        )

    for records in (logged, entries):
        by_request = {}
        for record in records:
            assert record["request_id"] not in by_request, "two records for one request"
            by_request[record["request_id"]] = record
        assert {rid: (r["decision"], r.get("code")) for rid, r in by_request.items()} == expected
        for record in records:
            text = json.dumps(record)
            for secret in (API_KEY, USER_KEY, HS_SECRET, simulator.customer_uid, token, user):
                assert secret not in text
            assert VIEWER_IP not in text
            assert "ip" not in record
    minted = next(r for r in entries if r["decision"] == "minted" and r["route"] == "links")
    assert minted["user"] == user_hash(user)
    assert minted["via"] == "api_key"
    assert (minted["event_id"], minted["stream_name"], minted["kind"]) == (OPEN, "HLS", "raw")
    assert minted["link"] == "hls"
    assert minted["country"] == "FR"
    assert minted["transaction_id"] == decisions[0][0].json()["transactionId"]
    played = next(r for r in entries if r["route"] == "play" and r["decision"] == "minted")
    assert (played["stream_name"], played["kind"], played["link"]) == ("ULL", "raw", "theolive")
    assert played["via"] == "jwt"
