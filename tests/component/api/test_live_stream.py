"""The live response on its own, driven as an ASGI app (sse-starlette underneath):
a client that stops reading is dropped after the send timeout, a client that leaves
frees its place, and either way the subscription ends with the response."""

from __future__ import annotations

import asyncio

from starlette.types import Message

from app.api.live import LiveStream
from app.catalogue.lists import OPEN, decode_list
from app.catalogue.snapshot import make_snapshot
from app.live.feed import LiveFeed, LiveLimits
from app.observability.metrics import Metrics

SCOPE = {"type": "http", "method": "GET", "path": "/v1/events/live", "headers": []}


def feed_with_open_list(metrics: Metrics) -> LiveFeed:
    feed = LiveFeed(LiveLimits(max_clients=5, log_size=10), metrics)
    snapshot = make_snapshot(OPEN, {"events": [{"eventId": "A", "eventStatusCode": "O"}]}, 1.0)
    feed.installed(None, decode_list(snapshot))
    return feed


async def test_a_client_that_stops_reading_is_dropped_after_the_send_timeout() -> None:
    metrics = Metrics()
    feed = feed_with_open_list(metrics)
    response = LiveStream(feed, feed.subscribe(None), send_timeout_s=0.2)
    sent: list[Message] = []
    stalled = asyncio.Event()

    async def send(message: Message) -> None:
        sent.append(message)
        if message.get("body"):  # the snapshot: the client's window is full from here on
            stalled.set()
            await asyncio.Event().wait()

    async def receive() -> Message:
        await asyncio.Event().wait()  # the client never says anything
        raise AssertionError("unreachable")

    assert feed.subscribers == 1
    await asyncio.wait_for(response(SCOPE, receive, send), timeout=10)
    assert stalled.is_set()
    assert sent[0]["type"] == "http.response.start"
    assert sent[0]["status"] == 200
    assert feed.subscribers == 0
    assert (
        metrics.registry.get_sample_value("gateway_live_dropped_total", {"reason": "send_timeout"})
        == 1
    )


async def test_a_client_that_leaves_frees_its_place() -> None:
    metrics = Metrics()
    feed = feed_with_open_list(metrics)
    response = LiveStream(feed, feed.subscribe(None), send_timeout_s=5)
    bodies: list[bytes] = []
    snapshot_sent = asyncio.Event()

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body":
            bodies.append(message["body"])
            snapshot_sent.set()

    async def receive() -> Message:
        await snapshot_sent.wait()
        return {"type": "http.disconnect"}

    await asyncio.wait_for(response(SCOPE, receive, send), timeout=10)
    assert bodies[0].startswith(b"id: ")
    assert b"event: snapshot\r\n" in bodies[0]
    assert feed.subscribers == 0
    assert metrics.registry.get_sample_value("gateway_live_subscribers") == 0
    assert metrics.registry.get_sample_value(
        "gateway_live_dropped_total", {"reason": "send_timeout"}
    ) in (None, 0)
