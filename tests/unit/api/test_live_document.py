"""The live stream's messages as the feed encodes them match the OpenAPI document's
description of them: each message (``event``, ``id``, ``retry``, ``data``) one of the
documented message schemas, its JSON ``data`` the schema that message type names."""

from __future__ import annotations

from typing import Any

import jsonschema_rs
import orjson
import pytest

from app.catalogue.index import EventIndex
from app.catalogue.lists import OPEN, LocalList, decode_list
from app.catalogue.snapshot import make_snapshot
from app.live.feed import LiveFeed, LiveLimits, render
from app.live.subscription import Subscription
from app.main import create_app
from app.settings import Settings
from app.upstream.models import Event

T0 = 1_796_400_000.0
DAY = "events:2026-12-04"
LIVE = "/v1/events/live"


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    schema: dict[str, Any] = create_app(Settings(igm_mode="simulator")).openapi()
    return schema


def record(event_id: str, status: str) -> dict[str, Any]:
    """An event as the catalogue's lists hold it (normalised from the upstream's)."""
    upstream = {
        "eventId": event_id,
        "eventStatusCode": status,
        "title": f"Event {event_id}",
        "sportCode": "FT",
        "startTime": "2026-12-04T12:00:00Z",
        "geoAllow": "GB",
    }
    return render(Event.model_validate(upstream))


def listed(name: str, at: float, *events: dict[str, Any]) -> LocalList:
    return decode_list(make_snapshot(name, {"events": list(events)}, at))


def parse(frame: bytes) -> dict[str, Any]:
    """One message as a schema-aware client reads it: its fields, ``data`` a string."""
    fields: dict[str, Any] = {}
    for line in frame.decode().splitlines():
        if line and not line.startswith(":"):
            name, _, value = line.partition(": ")
            fields[name] = int(value) if name == "retry" else value
    return fields


def frames(subscription: Subscription) -> list[bytes]:
    taken = [*subscription.initial, *subscription.take()]
    subscription.initial = ()
    return taken


def every_kind_of_message() -> list[dict[str, Any]]:
    """A snapshot with watched events, each kind of change, a session message."""
    index = EventIndex()
    feed = LiveFeed(LiveLimits(max_clients=10, log_size=100), index)
    held: dict[str, LocalList] = {}

    def install(local: LocalList) -> None:  # as LocalLists does: the index, then the feed
        replaced = index.update(local.events, local.snapshot.fetched_at)
        feed.installed(held.get(local.snapshot.name), local, replaced)
        held[local.snapshot.name] = local

    install(listed(OPEN, T0, record("A", "O")))
    install(listed(DAY, T0 + 1, record("A", "O"), record("B", "P"), record("C", "O")))
    subscription = feed.subscribe(None, ["B", "unknown"], user="viewer-digest")
    install(listed(OPEN, T0 + 10, record("A", "O"), record("B", "O")))  # opened
    install(listed(DAY, T0 + 11, record("A", "C"), record("B", "O"), record("C", "V")))
    install(listed(OPEN, T0 + 20))  # B leaves the open list: removed
    feed.sessions_ended("viewer-digest", ["s-123456789"], "evicted")
    return [parse(frame) for frame in frames(subscription)]


async def test_every_message_is_one_the_document_describes(document: dict[str, Any]) -> None:
    content = document["paths"][LIVE]["get"]["responses"]["200"]["content"]
    whole = jsonschema_rs.validator_for(
        {**content["text/event-stream"]["schema"], "components": document["components"]}
    )
    described = content["text/event-stream"]["schema"]["oneOf"]
    by_kind = {entry["properties"]["event"]["const"]: entry for entry in described}
    messages = every_kind_of_message()
    changes = {orjson.loads(m["data"])["change"] for m in messages if m["event"] == "event"}
    assert messages[0]["event"] == "snapshot"
    assert changes == {"opened", "closed", "voided", "removed"}
    assert messages[-1]["event"] == "session"
    for message in messages:
        whole.validate(message)
        entry = by_kind[message["event"]]
        data_schema = entry["properties"]["data"]["contentSchema"]
        validator = jsonschema_rs.validator_for(
            {**data_schema, "components": document["components"]}, validate_formats=True
        )
        validator.validate(orjson.loads(message["data"]))


def test_a_message_unlike_its_description_is_caught(document: dict[str, Any]) -> None:
    """The check above can fail: a change with a kind the document does not list."""
    content = document["paths"][LIVE]["get"]["responses"]["200"]["content"]
    entry = next(
        e
        for e in content["text/event-stream"]["schema"]["oneOf"]
        if e["properties"]["event"]["const"] == "event"
    )
    ref = entry["properties"]["data"]["contentSchema"]
    validator = jsonschema_rs.validator_for({**ref, "components": document["components"]})
    assert not validator.is_valid({"eventId": "A", "change": "renamed", "event": None})
    assert validator.is_valid({"eventId": "A", "change": "closed", "event": None})
