from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import pytest

from app.catalogue.index import EventIndex, Replaced
from app.catalogue.lists import OPEN, LocalList, LocalLists, decode_list
from app.catalogue.shared import SharedLists
from app.catalogue.snapshot import make_snapshot
from app.live.feed import QUEUE_SIZE, LiveFeed, LiveFull, LiveLimits
from app.live.subscription import HEARTBEAT, Subscription, messages
from app.observability.metrics import Metrics
from app.store import build_store
from tests.support.logs import all_logs

T0 = 1_796_400_000.0
DAY = "events:2026-12-04"


def event(event_id: str, status: str, **fields: Any) -> dict[str, Any]:
    return {"eventId": event_id, "eventStatusCode": status, "geoAllow": [], **fields}


def listed(name: str, at: float, *events: dict[str, Any]) -> LocalList:
    return decode_list(make_snapshot(name, {"events": list(events)}, at))


def parse(frame: bytes) -> dict[str, Any]:
    """One SSE message as fields (data decoded from JSON)."""
    fields: dict[str, Any] = {}
    for line in frame.decode().split("\r\n"):
        if line:
            name, _, value = line.partition(": ")
            fields[name] = orjson.loads(value) if name == "data" else value
    return fields


class Lists:
    """Installs lists into a feed the way ``LocalLists`` does: the index first, then
    (previous, current, the records replaced)."""

    def __init__(self, feed: LiveFeed, index: EventIndex) -> None:
        self.feed = feed
        self.index = index
        self.held: dict[str, LocalList] = {}

    def install(self, local: LocalList) -> None:
        replaced: Replaced = self.index.update(local.events, local.snapshot.fetched_at)
        self.feed.installed(self.held.get(local.snapshot.name), local, replaced)
        self.held[local.snapshot.name] = local


def feed_and_lists(limits: LiveLimits, **options: Any) -> tuple[LiveFeed, Lists]:
    index = EventIndex()
    feed = LiveFeed(limits, index, **options)
    return feed, Lists(feed, index)


def fresh(
    max_clients: int = 10, log_size: int = 100, metrics: Metrics | None = None
) -> tuple[LiveFeed, Lists]:
    feed, lists = feed_and_lists(
        LiveLimits(max_clients=max_clients, log_size=log_size), metrics=metrics
    )
    lists.install(listed(OPEN, T0, event("A", "O")))
    lists.install(listed(DAY, T0 + 1, event("A", "O"), event("B", "P"), event("C", "O")))
    return feed, lists


def drain(subscription: Subscription) -> list[dict[str, Any]]:
    """What the subscriber has been handed so far (``{"end": True}`` once it is ended)."""
    frames = [*subscription.initial, *subscription.take()]
    subscription.initial = ()
    messages = [parse(frame) for frame in frames]
    return [*messages, {"end": True}] if subscription.ended else messages


def test_first_copies_are_the_baseline_and_the_snapshot_holds_the_open_list() -> None:
    feed, _ = fresh()
    sub = feed.subscribe(None, ["B", "nope"])
    [snapshot] = drain(sub)
    assert snapshot["event"] == "snapshot"
    assert snapshot["id"] == feed.head
    assert snapshot["id"].startswith("start-")
    assert snapshot["retry"] == "3000"
    assert [e["eventId"] for e in snapshot["data"]["events"]] == ["A"]
    assert snapshot["data"]["watched"]["B"]["eventStatusCode"] == "P"
    assert snapshot["data"]["watched"]["nope"] is None
    assert "watched" not in drain(feed.subscribe(None))[0]["data"]


async def test_changes_reach_every_subscriber_with_ids_from_the_snapshot() -> None:
    feed, lists = fresh()
    subs = [feed.subscribe(None) for _ in range(3)]
    lists.install(listed(OPEN, T0 + 10, event("A", "O"), event("B", "O")))
    lists.install(listed(DAY, T0 + 11, event("A", "C"), event("B", "O"), event("C", "O")))
    lists.install(listed(OPEN, T0 + 20, event("B", "O")))
    expected = [
        (f"{round((T0 + 10) * 1e6)}-B", "opened", "O"),
        (f"{round((T0 + 11) * 1e6)}-A", "closed", "C"),
    ]
    for sub in subs:
        messages = drain(sub)[1:]
        got = [
            (m["id"], m["data"]["change"], m["data"]["event"]["eventStatusCode"]) for m in messages
        ]
        assert got == expected
        assert all(m["event"] == "event" for m in messages)


async def test_leaving_the_open_list_while_open_is_removed() -> None:
    feed, lists = fresh()
    sub = feed.subscribe(None)
    lists.install(listed(OPEN, T0 + 10))
    [_, removed] = drain(sub)
    assert removed["data"] == {
        "eventId": "A",
        "change": "removed",
        "event": removed["data"]["event"],
    }
    assert removed["data"]["event"]["eventStatusCode"] == "O"


async def test_a_re_encoded_copy_of_the_same_fetch_says_nothing() -> None:
    feed, lists = fresh()
    sub = feed.subscribe(None)
    # The refresher marks date-list events open from the open list, keeping fetched_at.
    lists.install(listed(DAY, T0 + 1, event("A", "O"), event("B", "O"), event("C", "O")))
    assert drain(sub)[1:] == []
    lists.install(listed(OPEN, T0 + 10, event("A", "O"), event("B", "O")))
    assert [m["data"]["change"] for m in drain(sub)] == ["opened"]


async def test_an_older_record_does_not_win_over_a_newer_one() -> None:
    feed, lists = fresh()
    sub = feed.subscribe(None)
    lists.install(listed(OPEN, T0 + 10, event("A", "O"), event("B", "O")))  # B opened
    lists.install(listed(DAY, T0 + 5, event("A", "O"), event("B", "P"), event("C", "O")))
    assert [m["data"]["change"] for m in drain(sub)[1:]] == ["opened"]


async def test_resume_gives_exactly_the_missed_messages() -> None:
    feed, lists = fresh()
    first = feed.subscribe(None)
    lists.install(listed(OPEN, T0 + 10, event("A", "O"), event("B", "O")))
    seen = drain(first)
    lists.install(listed(DAY, T0 + 11, event("A", "C"), event("B", "O"), event("C", "V")))
    resumed = feed.subscribe(seen[-1]["id"])
    assert resumed.resumed
    assert [(m["data"]["eventId"], m["data"]["change"]) for m in drain(resumed)] == [
        ("A", "closed"),
        ("C", "voided"),
    ]
    # From the snapshot's id (taken before any change): every change since.
    again = feed.subscribe(seen[0]["id"])
    assert [m["data"]["change"] for m in drain(again)] == ["opened", "closed", "voided"]
    # Up to date: nothing to send, no snapshot either.
    assert drain(feed.subscribe(feed.head)) == []
    feed.close()


@pytest.mark.parametrize("last_event_id", ["1-A", "garbage", ""])
def test_an_unknown_id_gets_a_snapshot(last_event_id: str) -> None:
    feed, _ = fresh()
    [message] = drain(feed.subscribe(last_event_id))
    assert message["event"] == "snapshot"


def test_an_evicted_id_gets_a_snapshot_and_the_eviction_point_still_resumes() -> None:
    feed, lists = fresh(log_size=2)
    origin = feed.head
    for step in range(1, 4):  # three changes: A's start time moves three times
        lists.install(
            listed(OPEN, T0 + 10 * step, event("A", "O", startTime=f"2026-12-04T1{step}:00:00Z"))
        )
    first_id = f"{round((T0 + 10) * 1e6)}-A"
    assert drain(feed.subscribe(origin))[0]["event"] == "snapshot"
    assert [m["id"] for m in drain(feed.subscribe(first_id))] == [
        f"{round((T0 + 20) * 1e6)}-A",
        f"{round((T0 + 30) * 1e6)}-A",
    ]


def test_the_cap_refuses_and_a_gone_subscriber_frees_its_place() -> None:
    feed, _ = fresh(max_clients=2)
    one = feed.subscribe(None)
    feed.subscribe(None)
    with pytest.raises(LiveFull):
        feed.subscribe(None)
    feed.unsubscribe(one)
    feed.subscribe(None)
    assert feed.subscribers == 2


async def test_a_subscriber_that_falls_behind_is_ended_not_buffered() -> None:
    metrics = Metrics()
    feed, lists = fresh(metrics=metrics)
    slow = feed.subscribe(None)
    assert metrics.registry.get_sample_value("gateway_live_subscribers") == 1
    for step in range(1, QUEUE_SIZE + 2):
        time = f"2026-12-04T{step // 60:02d}:{step % 60:02d}:00Z"
        lists.install(listed(OPEN, T0 + 10 * step, event("A", "O", startTime=time)))
    assert feed.subscribers == 0
    assert slow.ended
    assert slow.pending == ()
    assert metrics.registry.get_sample_value("gateway_live_subscribers") == 0
    assert (
        metrics.registry.get_sample_value("gateway_live_dropped_total", {"reason": "behind"}) == 1
    )


def test_close_ends_every_stream_and_every_later_one_at_once() -> None:
    feed, _ = fresh()
    subs = [feed.subscribe(None) for _ in range(3)]
    feed.close()
    assert feed.subscribers == 0
    assert all(drain(sub)[-1] == {"end": True} for sub in subs)
    late = feed.subscribe(None)
    assert drain(late) == [{"end": True}]
    assert feed.subscribers == 0


async def test_the_stream_sends_the_first_messages_then_what_comes_then_ends() -> None:
    feed, lists = fresh()
    sub = feed.subscribe(None)
    stream = messages(sub)
    assert parse(await anext(stream))["event"] == "snapshot"
    await feed.heartbeat()
    assert await anext(stream) == HEARTBEAT
    assert HEARTBEAT == b": heartbeat\r\n\r\n"
    lists.install(listed(OPEN, T0 + 10, event("A", "O"), event("B", "O")))
    assert parse(await anext(stream))["data"]["change"] == "opened"
    feed.close()
    with pytest.raises(StopAsyncIteration):
        await anext(stream)


async def test_a_heartbeat_asks_each_client_in_turn_and_a_gone_one_frees_its_place() -> None:
    metrics = Metrics()
    feed, lists = fresh(metrics=metrics)
    asking: list[str] = []  # whose question is in flight
    asked: list[str] = []

    def client(name: str, gone: bool) -> Callable[[], Awaitable[bool]]:
        async def client_gone() -> bool:
            asking.append(name)
            assert asking == [name], "one question at a time"
            await asyncio.sleep(0)  # the answer takes a loop turn, as a receive does
            asking.remove(name)
            asked.append(name)
            return gone

        return client_gone

    here = feed.subscribe(None, client_gone=client("here", gone=False))
    left = feed.subscribe(None, client_gone=client("left", gone=True))
    unasked = feed.subscribe(None)
    for sub in (here, left, unasked):
        drain(sub)
    lists.install(listed(OPEN, T0 + 10, event("A", "O"), event("B", "O")))
    assert asked == []  # changes go out without asking
    for sub in (here, left, unasked):
        drain(sub)
    await feed.heartbeat()
    assert sorted(asked) == ["here", "left"]
    assert left.ended
    assert feed.subscribers == 2
    assert metrics.registry.get_sample_value("gateway_live_subscribers") == 2
    for sub in (here, unasked):
        assert sub.pending[-1] == HEARTBEAT
        assert not sub.ended


async def test_a_change_on_its_way_ends_when_every_subscriber_took_it_or_left() -> None:
    feed, lists = fresh()
    subs = [feed.subscribe(None) for _ in range(3)]
    streams = [messages(sub) for sub in subs]
    for stream in streams:
        await anext(stream)  # the snapshot
    with all_logs() as logs:
        lists.install(listed(OPEN, T0 + 10, event("A", "O"), event("B", "O")))
        for stream in streams[:2]:
            assert parse(await anext(stream))["data"]["change"] == "opened"
        assert not [line for line in logs if line["event"] == "live_delivery_ended"]
        # The last one's stream ends (a send that failed or timed out) before taking it.
        feed.unsubscribe(subs[2])
    ended = [line for line in logs if line["event"] == "live_delivery_ended"]
    assert [line["left"] for line in ended] == [0]
    await feed.stop()


async def test_stopping_the_feed_ends_the_delivery_under_way() -> None:
    feed, lists = fresh()
    feed.subscribe(None)
    with all_logs() as logs:
        lists.install(listed(OPEN, T0 + 10, event("A", "O"), event("B", "O")))
        await feed.stop()
    # Its stream ended with the feed: the delivery with it, however it ended.
    assert [line["event"] for line in logs].count("live_delivery_ended") == 1


async def test_a_heartbeat_round_asks_no_client_while_a_change_is_on_its_way() -> None:
    feed, lists = fresh()
    asked: list[str] = []

    def client(name: str) -> Callable[[], Awaitable[bool]]:
        async def client_gone() -> bool:
            await asyncio.sleep(0)  # the answer takes a loop turn, as a receive does
            asked.append(name)
            if len(asked) == 1:  # a change comes in while the first client is asked
                lists.install(listed(OPEN, T0 + 20, event("A", "C"), event("B", "O")))
            return False

        return client_gone

    subs = {name: feed.subscribe(None, client_gone=client(name)) for name in "xyz"}
    for sub in subs.values():
        drain(sub)
    lists.install(listed(OPEN, T0 + 10, event("A", "O"), event("B", "O")))
    round_ = asyncio.create_task(feed.heartbeat())
    for _ in range(5):
        await asyncio.sleep(0)
    assert asked == []  # the round waits for the change to be taken
    for name in "xy":
        drain(subs[name])
    for _ in range(5):
        await asyncio.sleep(0)
    assert asked == []  # one subscriber has yet to take it
    drain(subs["z"])
    for _ in range(5):
        await asyncio.sleep(0)
    # The first question brought a second change: no other question until all took it.
    [first] = asked
    for name, sub in subs.items():
        frames = sub.take()
        assert [parse(frames[0])["data"][key] for key in ("eventId", "change")] == ["A", "closed"]
        # The first client's heartbeat went out once its answer came.
        assert frames[1:] == ((HEARTBEAT,) if name == first else ())
    for _ in range(5):
        await asyncio.sleep(0)
    await asyncio.wait_for(round_, timeout=10)
    assert sorted(asked) == ["x", "y", "z"]
    await feed.stop()


async def test_closing_ends_every_stream_and_every_later_one() -> None:
    feed, _ = fresh()
    subs = [feed.subscribe(None) for _ in range(3)]
    with all_logs() as logs:
        feed.close()
        feed.close()
    assert all(sub.ended for sub in subs)
    assert feed.subscribers == 0
    assert [(line["event"], line["subscribers"]) for line in logs] == [("live_closing", 3)]
    assert drain(feed.subscribe(None)) == [{"end": True}]
    await feed.stop()


async def test_one_timer_sends_every_subscriber_a_heartbeat_until_stopped() -> None:
    slept: list[float] = []
    ticks: asyncio.Queue[None] = asyncio.Queue()

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        await ticks.get()

    feed, lists = feed_and_lists(
        LiveLimits(max_clients=10, log_size=10, heartbeat_s=15.0), sleep=sleep
    )
    lists.install(listed(OPEN, T0, event("A", "O")))
    subs = [feed.subscribe(None) for _ in range(3)]
    for sub in subs:
        drain(sub)
    feed.start()
    for _ in range(2):
        ticks.put_nowait(None)
        for _ in range(3):
            await asyncio.sleep(0)
    assert slept == [15.0, 15.0, 15.0]
    assert all(sub.pending == (HEARTBEAT, HEARTBEAT) for sub in subs)
    await feed.stop()
    assert all(sub.ended for sub in subs)


async def test_a_failing_listener_does_not_stop_the_lists() -> None:
    def broken(previous: LocalList | None, current: LocalList, replaced: Replaced) -> None:
        raise RuntimeError("listener bug")

    store = build_store(None)
    index = EventIndex()
    lists = LocalLists(SharedLists(store), index, on_install=broken)
    with all_logs() as logs:
        lists.install(make_snapshot(OPEN, {"events": [event("A", "O")]}, T0))
    await store.aclose()
    assert lists.get(OPEN) is not None
    assert index.get("A") is not None
    assert [line["event"] for line in logs] == ["list_listener_failed"]
    assert logs[0]["error_type"] == "RuntimeError"
