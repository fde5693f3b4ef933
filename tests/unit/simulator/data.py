"""The constants the simulator tests share: identity, clock start, and a guide-shaped
scenario whose events cover every status and geo rule."""

from __future__ import annotations

from datetime import UTC, datetime

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
CUSTOMER = "unit-test-customer"
SERVER_IP = "172.16.5.4"
SEED = 7

# 11:00-13:00 brackets NOW, so OPEN-* follow the clock into O.
SCENARIO_EVENTS: list[dict[str, object]] = [
    {
        "eventId": "OPEN-1",
        "locationCode": "OPEN",
        "locationName": "Test Park",
        "sportCode": "HR",
        "eventStatusCode": "",
        "eventNumber": "1",
        "title": "Open race",
        "startTime": "2026-11-22T11:00:00",
        "estimatedEndTime": "2026-11-22T13:00:00",
        "geoAllow": "",
        "geoBlock": "",
    },
    {
        "eventId": "OPEN-2",
        "sportCode": "FT",
        "title": "Stream-restricted match",
        "startTime": "2026-11-22T:11:00:00",
        "estimatedEndTime": "2026-11-22T:13:00:00",
        "geoAllow": "",
        "geoBlock": "",
    },
    {
        "eventId": "GEO-1",
        "sportCode": "BB",
        "title": "Allow UK and US, block New York",
        "startTime": "2026-11-22T11:00:00Z",
        "estimatedEndTime": "2026-11-22T13:00:00Z",
        "geoAllow": "UK, US",
        "geoBlock": "us-ny",
    },
    {"eventId": "PEND-1", "eventStatusCode": "P", "startTime": "2026-11-22T18:00:00"},
    {"eventId": "CLOSED-1", "eventStatusCode": "C", "startTime": "2026-11-22T08:00:00"},
    {"eventId": "VOID-1", "eventStatusCode": "V", "startTime": "2026-11-22T12:00:00"},
    {"eventId": "OTHER-DAY-1", "eventStatusCode": "O", "startTime": "2026-11-23T12:00:00"},
    {"eventId": "ANY-DAY-1", "eventStatusCode": "P", "startTime": "soon"},
]

HLS: dict[str, object] = {
    "uniqueStreamName": "HLS",
    "streamType": "HLS",
    "description": "PRM HLS HIGH",
    "geoCountryAllow": "",
    "geoCountryBlock": "",
}
ULL: dict[str, object] = {**HLS, "uniqueStreamName": "ULL", "streamType": "ULL"}
SCENARIO_STREAMS: dict[str, list[dict[str, object]]] = {
    "OPEN-1": [HLS, ULL],
    "OPEN-2": [{**HLS, "geoCountryAllow": "UK, US", "geoCountryBlock": "GB, AT"}],
}


def link_params(**overrides: str | None) -> dict[str, str]:
    """Valid ``/api/stream/link`` query parameters for OPEN-1; None drops a field."""
    params: dict[str, str | None] = {
        "customerUid": CUSTOMER,
        "userId": "viewer-1",
        "userIp": "127.0.0.9",
        "eventId": "OPEN-1",
        "streamName": "HLS",
        "redirectUrl": "https://operator.example/done",
    }
    params.update(overrides)
    return {k: v for k, v in params.items() if v is not None}


def operation_code(body: dict[str, object]) -> object:
    """The operationCode of a link body, in whichever casing it came."""
    return body["operationCode"] if "operationCode" in body else body["OperationCode"]
