"""The live response on its own, driven as an ASGI app (Starlette's StreamingResponse
underneath, on the request's own task): its headers, a client that stops reading is
dropped after the send timeout, a client that leaves is noticed at the next heartbeat
(or at once where the server fails the send), a closed feed ends the response cleanly,
and however it ends the subscription ends with it (and a change it had yet to take is
delivered as far as it goes: the delivery ends)."""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from typing import Any

from starlette.requests import Request
from starlette.types import Message, Receive

from app.api.live import LiveStream
from app.catalogue.index import EventIndex
from app.catalogue.lists import OPEN, LocalList, decode_list
from app.catalogue.snapshot import Snapshot, make_snapshot
from app.live.feed import LiveFeed, LiveLimits
from app.live.subscription import HEARTBEAT
from app.observability.metrics import Metrics
from tests.support.logs import all_logs

SCOPE = {"type": "http", "method": "GET", "path": "/v1/events/live", "headers": []}


OPEN_A = {"events": [{"eventId": "A", "eventStatusCode": "O"}]}


class IndexedFeed(LiveFeed):
    """A feed with its own event index, installed into as ``LocalLists`` does."""

    def __init__(self, metrics: Metrics) -> None:
        self.index = EventIndex()
        # A delivery's cap far beyond any wait here: only the streams can end one.
        super().__init__(
            LiveLimits(max_clients=5, log_size=10), self.index, metrics, delivery_cap_s=3600
        )

    def install(self, previous: LocalList | None, snapshot: Snapshot) -> LocalList:
        local = decode_list(snapshot)
        self.installed(previous, local, self.index.update(local.events, snapshot.fetched_at))
        return local


def feed_with_open_list(metrics: Metrics) -> IndexedFeed:
    feed = IndexedFeed(metrics)
    feed.install(None, make_snapshot(OPEN, OPEN_A, 1.0))
    return feed


def stream(feed: LiveFeed, receive: Receive, send_timeout_s: float = 5) -> LiveStream:
    """The response as the route makes it: the feed asks the request about its client."""
    subscription = feed.subscribe(None, client_gone=Request(SCOPE, receive).is_disconnected)
    return LiveStream(feed, subscription, send_timeout_s=send_timeout_s)


async def silent() -> Message:
    """A client that says nothing, and stays."""
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


def dropped(metrics: Metrics, reason: str) -> float | None:
    return metrics.registry.get_sample_value("gateway_live_dropped_total", {"reason": reason})


async def test_the_stream_has_the_event_stream_headers_and_a_closed_feed_ends_it_cleanly() -> None:
    metrics = Metrics()
    feed = feed_with_open_list(metrics)
    response = stream(feed, silent)
    sent: list[Message] = []
    snapshot_sent, heartbeat_sent = asyncio.Event(), asyncio.Event()

    async def send(message: Message) -> None:
        sent.append(message)
        body = message.get("body", b"")
        if b"event: snapshot\r\n" in body:
            snapshot_sent.set()
        if body == HEARTBEAT:
            heartbeat_sent.set()

    running = asyncio.create_task(response(SCOPE, silent, send))
    await asyncio.wait_for(snapshot_sent.wait(), timeout=10)
    await feed.heartbeat()  # asks the client, which is still there
    await asyncio.wait_for(heartbeat_sent.wait(), timeout=10)
    assert feed.subscribers == 1
    feed.close()
    await asyncio.wait_for(running, timeout=10)

    start = sent[0]
    assert start["type"] == "http.response.start"
    assert start["status"] == 200
    assert dict(start["headers"]) == {
        b"content-type": b"text/event-stream; charset=utf-8",
        b"cache-control": b"no-store",
        b"connection": b"keep-alive",
        b"x-accel-buffering": b"no",
    }
    assert b"event: snapshot\r\n" in sent[1]["body"]
    assert sent[-1] == {"type": "http.response.body", "body": b"", "more_body": False}
    assert feed.subscribers == 0


async def test_a_client_that_stops_reading_is_dropped_after_the_send_timeout() -> None:
    metrics = Metrics()
    feed = feed_with_open_list(metrics)
    response = stream(feed, silent, send_timeout_s=0.2)
    sent: list[Message] = []
    stalled = asyncio.Event()

    async def send(message: Message) -> None:
        sent.append(message)
        if message.get("body"):  # the snapshot: the client's window is full from here on
            stalled.set()
            await asyncio.Event().wait()

    assert feed.subscribers == 1
    await asyncio.wait_for(response(SCOPE, silent, send), timeout=10)
    assert stalled.is_set()
    assert sent[0]["type"] == "http.response.start"
    assert sent[0]["status"] == 200
    assert feed.subscribers == 0
    assert dropped(metrics, "send_timeout") == 1


async def test_a_client_that_leaves_is_noticed_at_the_next_heartbeat() -> None:
    metrics = Metrics()
    feed = feed_with_open_list(metrics)
    bodies: list[bytes] = []
    snapshot_sent = asyncio.Event()

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body":
            bodies.append(message["body"])
            snapshot_sent.set()

    async def receive() -> Message:
        await snapshot_sent.wait()
        return {"type": "http.disconnect"}

    response = stream(feed, receive)
    running = asyncio.create_task(response(SCOPE, receive, send))
    await asyncio.wait_for(snapshot_sent.wait(), timeout=10)
    for _ in range(3):
        await asyncio.sleep(0)
    assert feed.subscribers == 1  # nobody has asked yet
    await feed.heartbeat()
    await asyncio.wait_for(running, timeout=10)
    assert bodies[0].startswith(b"id: ")
    assert b"event: snapshot\r\n" in bodies[0]
    assert HEARTBEAT not in bodies  # the client had gone: no heartbeat for it
    assert feed.subscribers == 0
    assert metrics.registry.get_sample_value("gateway_live_subscribers") == 0
    assert dropped(metrics, "send_timeout") in (None, 0)


async def test_a_send_the_server_fails_ends_the_stream_at_once() -> None:
    """An ASGI 2.4 server raises an OSError when the client has gone."""
    metrics = Metrics()
    feed = feed_with_open_list(metrics)
    sent: list[Message] = []

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body":
            raise ConnectionResetError
        sent.append(message)

    response = stream(feed, silent)
    await asyncio.wait_for(response({**SCOPE, "asgi": {"spec_version": "2.4"}}, silent, send), 10)
    assert [message["type"] for message in sent] == ["http.response.start"]
    assert feed.subscribers == 0
    assert dropped(metrics, "send_timeout") in (None, 0)


def publish_change(feed: IndexedFeed) -> None:
    """A's status changes (the open list installed again, later)."""
    before = decode_list(make_snapshot(OPEN, OPEN_A, 1.0))
    after = {"events": [{"eventId": "A", "eventStatusCode": "C"}]}
    feed.install(before, make_snapshot(OPEN, after, 2.0))


def deliveries_ended(logs: list[MutableMapping[str, Any]]) -> list[int]:
    """``left`` of each ``live_delivery_ended`` line."""
    return [line["left"] for line in logs if line["event"] == "live_delivery_ended"]


async def test_the_delivery_ends_when_a_send_fails_before_the_change_is_taken() -> None:
    """The change is published while the stream's send of the snapshot is held; that
    send then fails (ASGI 2.4): the stream ends without taking the change, and the
    delivery ends with it, long before its cap."""
    feed = feed_with_open_list(Metrics())
    held, release = asyncio.Event(), asyncio.Event()

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body":
            held.set()
            await release.wait()
            raise ConnectionResetError

    response = stream(feed, silent)
    running = asyncio.create_task(
        response({**SCOPE, "asgi": {"spec_version": "2.4"}}, silent, send)
    )
    await asyncio.wait_for(held.wait(), timeout=10)
    with all_logs() as logs:
        publish_change(feed)
        await asyncio.sleep(0)
        assert deliveries_ended(logs) == []
        release.set()
        await asyncio.wait_for(running, timeout=10)
    assert deliveries_ended(logs) == [0]
    assert feed.subscribers == 0


async def test_the_delivery_ends_when_a_send_times_out_before_the_change_is_taken() -> None:
    feed = feed_with_open_list(Metrics())
    held = asyncio.Event()

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body":  # the client has stopped reading
            held.set()
            await asyncio.Event().wait()

    response = stream(feed, silent, send_timeout_s=0.2)
    running = asyncio.create_task(response(SCOPE, silent, send))
    await asyncio.wait_for(held.wait(), timeout=10)
    with all_logs() as logs:
        publish_change(feed)
        await asyncio.sleep(0)
        assert deliveries_ended(logs) == []
        await asyncio.wait_for(running, timeout=10)
    assert deliveries_ended(logs) == [0]
    assert feed.subscribers == 0
