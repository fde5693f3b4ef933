from __future__ import annotations

import orjson
import pytest

from app.api.responses import etag_matches
from app.catalogue.index import EventIndex
from app.catalogue.lists import decode_list, list_date
from app.catalogue.snapshot import encode_items, make_snapshot
from app.upstream.models import Event


def events() -> list[Event]:
    return [
        Event.model_validate(
            {"eventId": "A-1", "sportCode": "FT", "eventStatusCode": "O", "geoAllow": "uk, ie"}
        ),
        Event.model_validate({"eventId": "A-2", "sportCode": "HR", "eventStatusCode": "P"}),
        Event.model_validate({"eventId": "A-3", "sportCode": "FT", "eventStatusCode": "C"}),
    ]


def test_snapshot_body_is_the_response_and_etag_ignores_fetch_time() -> None:
    payload = {"date": "2026-11-22", "events": encode_items(events())}
    first = make_snapshot("events:2026-11-22", payload, 1_700_000_000.0)
    second = make_snapshot("events:2026-11-22", payload, 1_700_000_010.0)
    body = orjson.loads(first.body)
    assert body["fetchedAt"] == "2023-11-14T22:13:20.000Z"
    assert [e["eventId"] for e in body["events"]] == ["A-1", "A-2", "A-3"]
    assert body["events"][0]["geoAllow"] == ["GB", "IE"]
    assert first.etag == second.etag
    assert first.etag.startswith('W/"')
    assert first.body != second.body
    changed = make_snapshot("events:2026-11-22", {**payload, "events": []}, 1_700_000_000.0)
    assert changed.etag != first.etag


@pytest.mark.parametrize(
    ("sport", "status", "expected"),
    [
        (None, None, ["A-1", "A-2", "A-3"]),
        ("FT", None, ["A-1", "A-3"]),
        (None, "O", ["A-1"]),
        ("FT", "C", ["A-3"]),
        ("GF", None, []),
    ],
)
def test_filtered_variants(sport: str | None, status: str | None, expected: list[str]) -> None:
    snapshot = make_snapshot(
        "events:2026-11-22", {"date": "2026-11-22", "events": encode_items(events())}, 1.0
    )
    local = decode_list(snapshot)
    variant = local.filtered(sport, status)
    body = orjson.loads(variant.body)
    assert [e["eventId"] for e in body["events"]] == expected
    assert body["date"] == "2026-11-22"
    assert local.filtered(sport, status) is variant  # encoded once per snapshot


def test_decode_rebuilds_events_for_the_index() -> None:
    snapshot = make_snapshot("open", {"events": encode_items(events())}, 5.0)
    index = EventIndex()
    local = decode_list(snapshot)
    index.update(local.events, snapshot.fetched_at)
    found = index.get("A-1")
    assert found is not None
    assert found.event.geo_allow == ("GB", "IE")
    assert found.seen_at == 5.0
    index.update([Event.model_validate({"eventId": "A-1", "eventStatusCode": "C"})], 4.0)
    assert index.get("A-1").event.event_status_code == "O"  # type: ignore[union-attr]  # older loses
    index.update([Event.model_validate({"eventId": "A-1", "eventStatusCode": "C"})], 6.0)
    assert index.get("A-1").event.event_status_code == "C"  # type: ignore[union-attr]
    assert index.prune(seen_before=5.5) == 2
    assert len(index) == 1


@pytest.mark.parametrize(
    ("name", "expected"),
    [("events:2026-11-22", "2026-11-22"), ("open", None), ("events:nonsense", None)],
)
def test_list_date(name: str, expected: str | None) -> None:
    day = list_date(name)
    assert (day.isoformat() if day else None) == expected


@pytest.mark.parametrize(
    ("header", "matches"),
    [
        (None, False),
        ("", False),
        ('W/"abc"', True),
        ('"abc"', True),
        ('"x", W/"abc"', True),
        ("*", True),
        ('"abcd"', False),
    ],
)
def test_etag_matches_weakly(header: str | None, matches: bool) -> None:
    assert etag_matches(header, 'W/"abc"') is matches
