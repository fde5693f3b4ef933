"""Event changes for live subscribers: computed once per installed list, fanned out to
every subscriber of this replica, and kept in a short log for ``Last-Event-ID``.

``installed`` is called by ``LocalLists`` for every list snapshot this replica installs
(fetched by its own refresher or picked up from the shared store). The feed keeps its
own view of the events (eventId -> newest record, as the event index does, and the open
list's ids), diffs it over the events the new list carries (``event_changes``), and
turns each change into one encoded SSE message, shared by all subscribers.

Ids come from data every replica shares: the installed snapshot's ``fetched_at`` (set
by the refresher that wrote it) and the eventId, ``<fetched_at in µs>-<eventId>``. The
first copy of a list a replica holds is its baseline (nothing to compare with); a
re-encoded copy with the same ``fetched_at`` (the refresher marks date lists' events
open from the open list) carries nothing the open list has not said, and is skipped.

Heartbeats (an SSE comment) go to every subscriber every ``heartbeat_s`` from one
task, which first asks whether the subscriber's client is still there, and lets a
change on its way go first (``app/live/delivery.py``); one more task ends every stream
when the server begins to shut down (``server_exiting``). Bounded
everywhere: at most ``max_clients`` subscribers, ``QUEUE_SIZE`` pending messages each
(a subscriber that falls further behind is dropped: its stream ends and the client
reconnects with ``Last-Event-ID``), and ``log_size`` messages to resume from.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
import structlog
from sse_starlette import ServerSentEvent
from sse_starlette.sse import AppStatus
from uvicorn import Server

from app.catalogue.lists import OPEN, LocalList
from app.live.changes import EventChange, event_changes
from app.live.delivery import DELIVERY_CAP_S, Delivery
from app.observability.metrics import Metrics
from app.supervisor import Supervised, Supervisor
from app.upstream.models import Event

log = structlog.get_logger(__name__)

QUEUE_SIZE = 64  # messages a subscriber may fall behind by before it is dropped
RETRY_MS = 3000
HEARTBEAT = ServerSentEvent(comment="heartbeat").encode()
RECORD_KEEP_S = 3 * 86400.0  # events no list has carried for this long are forgotten
EXIT_POLL_S = 0.5  # how often the feed asks whether the server is shutting down


class LiveFull(Exception):
    """This replica holds as many subscribers as it may."""


@dataclass(frozen=True, slots=True)
class LiveLimits:
    max_clients: int
    log_size: int
    heartbeat_s: float = 15.0


@dataclass(eq=False, slots=True)
class Subscription:
    """One subscriber: the messages to send first, then what ``push`` hands it.

    Kept small (while waiting, one future: no queue, no lock), as a replica holds
    thousands of these. Messages are handed over as tuples, the same one to every
    subscriber (a tuple of bytes is not tracked by the garbage collector); ``delivery``:
    the published change this subscriber has yet to take, if any.

    ``client_gone``: asked before each heartbeat (``Request.is_disconnected``), as
    uvicorn does not fail a send to a client that left; None where a failed send is how
    the stream learns it (an ASGI 2.4 server).
    """

    initial: tuple[bytes, ...]
    resumed: bool = False
    user: str | None = None  # digest of the viewer's user id (for session notices)
    client_gone: Callable[[], Awaitable[bool]] | None = None
    pending: tuple[bytes, ...] = ()
    ended: bool = False
    waiter: asyncio.Future[None] | None = None
    delivery: Delivery | None = None

    def push(self, frames: tuple[bytes, ...]) -> None:
        self.pending = self.pending + frames if self.pending else frames
        self._wake()

    def take(self) -> tuple[bytes, ...]:
        """The pending messages, now to be sent."""
        frames, self.pending = self.pending, ()
        self._settle()
        return frames

    def end(self) -> None:
        self.ended = True
        self.pending = ()
        self._settle()
        self._wake()

    def _settle(self) -> None:
        delivery, self.delivery = self.delivery, None
        if delivery is not None:
            delivery.taken()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self) -> None:
        """Until there is something to send, or the end."""
        if self.pending or self.ended:
            return
        waiter = asyncio.get_running_loop().create_future()
        self.waiter = waiter
        try:
            await waiter
        finally:
            self.waiter = None


async def messages(subscription: Subscription) -> AsyncGenerator[bytes, None]:
    """What a subscriber's stream sends: the first messages, then whatever is pushed
    (changes, heartbeats) as it comes, until the subscription ends."""
    initial, subscription.initial = subscription.initial, ()
    for frame in initial:
        yield frame
    while True:
        await subscription.wait()
        if subscription.ended:
            return
        for frame in subscription.take():
            yield frame


def server_exiting() -> bool:
    """Whether uvicorn has begun to shut down, read from the two flags sse-starlette's
    own responses watch (the feed asks every ``EXIT_POLL_S``, as they do):

    - sse-starlette's ``AppStatus.should_exit``, set by its patch of uvicorn's
      ``Server.handle_exit`` (or by whoever drains by hand, with automatic draining
      off). The patch takes only where sse-starlette was imported before uvicorn
      installed its signal handlers: under ``--workers N`` each worker process loads
      the app afterwards, and the flag is never set;
    - so also the public ``should_exit`` of the uvicorn ``Server`` whose ``handle_exit``
      is the SIGTERM handler (found as sse-starlette finds it), unless automatic
      draining is off."""
    if AppStatus.should_exit:
        return True
    if not AppStatus.enable_automatic_graceful_drain:
        return False
    server = getattr(signal.getsignal(signal.SIGTERM), "__self__", None)
    return isinstance(server, Server) and server.should_exit


def message(kind: str, message_id: str, data: bytes) -> bytes:
    """One SSE message, encoded once (the data is JSON: one line)."""
    return ServerSentEvent(data=data.decode(), event=kind, id=message_id, retry=RETRY_MS).encode()


def change_id(fetched_at: float, event_id: str) -> str:
    return f"{round(fetched_at * 1_000_000)}-{event_id}"


def render(event: Event) -> dict[str, Any]:
    """The event as ``GET /v1/events/{eventId}`` and the lists render it."""
    return event.model_dump(mode="json")


class LiveFeed:
    def __init__(
        self,
        limits: LiveLimits,
        metrics: Metrics | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        exiting: Callable[[], bool] | None = None,
        delivery_cap_s: float = DELIVERY_CAP_S,
    ) -> None:
        """``exiting``: whether the server has begun to shut down (``server_exiting``
        under uvicorn), asked every ``EXIT_POLL_S``; without it only ``stop`` ends the
        streams. ``delivery_cap_s``: see ``app/live/delivery.py``."""
        self._limits = limits
        self._metrics = metrics
        self._sleep = sleep
        self._exiting = exiting
        self._delivery_cap_s = delivery_cap_s
        self._delivery: Delivery | None = None
        self._supervisor: Supervisor | None = None
        self._tasks: list[Supervised] = []
        self._closed = False
        self._records: dict[str, tuple[float, Event]] = {}
        self._open_ids: frozenset[str] = frozenset()
        self._open: LocalList | None = None
        self._log: deque[tuple[str, bytes]] = deque()
        self._positions: dict[str, int] = {}  # id -> sequence number
        self._sequence = itertools.count()
        self._first = 0  # sequence number of self._log[0]
        # The id of the state before the first logged message: this replica's own
        # until a message is evicted, then the evicted message's id.
        self._origin = f"start-{os.urandom(6).hex()}"
        self._subscribers: set[Subscription] = set()
        self._snapshot_cache: tuple[str, Any, bytes] | None = None

    # --- changes in ----------------------------------------------------------

    def installed(self, previous: LocalList | None, current: LocalList) -> None:
        """A list snapshot was installed on this replica (``LocalLists`` calls this)."""
        fetched_at = current.snapshot.fetched_at
        is_open = current.snapshot.name == OPEN
        if is_open:
            self._open = current
        if previous is not None and previous.snapshot.fetched_at == fetched_at:
            return  # the same fetch re-encoded (date lists patched from the open list)
        touched = {event.event_id for event in current.events}
        before = self._view(touched)
        for event in current.events:
            held = self._records.get(event.event_id)
            if held is None or held[0] <= fetched_at:
                self._records[event.event_id] = (fetched_at, event)
        open_before = self._open_ids
        if is_open:
            self._open_ids = frozenset(touched)
        if previous is None:
            return  # this replica's first copy of the list: the baseline
        left = open_before - self._open_ids
        before.update(self._view(left))
        changes = event_changes(before, self._view(touched | left), open_before, self._open_ids)
        self._prune(fetched_at - RECORD_KEEP_S)
        if changes:
            self.publish([self._encode(change, fetched_at) for change in changes])

    def _view(self, ids: Iterable[str]) -> dict[str, Event]:
        return {key: held[1] for key in ids if (held := self._records.get(key)) is not None}

    def _prune(self, horizon: float) -> None:
        stale = [key for key, (seen, _) in self._records.items() if seen < horizon]
        for key in stale:
            del self._records[key]

    def _encode(self, change: EventChange, fetched_at: float) -> tuple[str, bytes]:
        message_id = change_id(fetched_at, change.event_id)
        data = {
            "eventId": change.event_id,
            "change": change.change,
            "event": None if change.event is None else render(change.event),
        }
        return message_id, message("event", message_id, orjson.dumps(data))

    # --- changes out -----------------------------------------------------------

    def publish(self, encoded: list[tuple[str, bytes]]) -> None:
        """Log the (id, message) pairs and hand the messages to every subscriber, as one
        delivery (``app/live/delivery.py``)."""
        fresh = [(key, frame) for key, frame in encoded if key not in self._positions]
        for key, frame in fresh:
            self._positions[key] = next(self._sequence)
            self._log.append((key, frame))
        while len(self._log) > self._limits.log_size:
            evicted, _ = self._log.popleft()
            del self._positions[evicted]
            self._origin = evicted
            self._first += 1
        if not fresh:
            return
        frames = tuple(frame for _, frame in fresh)
        # Before the log line: the change counts as published from there.
        delivery = self._deliver() if self._subscribers else None
        log.info("live_changes_published", changes=len(frames), subscribers=self.subscribers)
        if delivery is not None:
            self._hand_out(frames, delivery)

    def _hand_out(self, frames: tuple[bytes, ...], delivery: Delivery) -> None:
        """The messages to every subscriber; the delivery counts them off as their
        streams take them (held open by this call until all have been handed them)."""
        for subscriber in list(self._subscribers):
            if len(subscriber.pending) + len(frames) > QUEUE_SIZE:
                self._drop(subscriber)
                self.dropped("behind")
                continue
            subscriber.push(frames)
            if subscriber.delivery is not delivery:
                if subscriber.delivery is not None:
                    subscriber.delivery.taken()  # an earlier one, ended: no count to keep
                subscriber.delivery = delivery
                delivery.add()
        delivery.taken()

    def _deliver(self) -> Delivery:
        """The delivery under way (a change published before the last one was taken
        joins it), or a new one."""
        delivery = self._delivery
        if delivery is None or delivery.ended:
            delivery = self._delivery = Delivery(self._delivery_cap_s)
        delivery.add()
        return delivery

    def _drop(self, subscriber: Subscription) -> None:
        """End a subscriber's stream (its client reconnects, or has gone)."""
        self._subscribers.discard(subscriber)
        subscriber.end()
        self._count_subscribers()

    def sessions_ended(self, user: str, session_ids: list[str], reason: str) -> int:
        """Tell this user's subscribers that these viewing sessions ended (evicted by a
        newer one, or by the operator), so their players stop. The ``session`` message
        has no id: it is this viewer's, not a change to resume from. How many
        subscribers were told."""
        data = orjson.dumps({"sessionIds": session_ids, "reason": reason})
        frame = ServerSentEvent(data=data.decode(), event="session", retry=RETRY_MS).encode()
        told = 0
        for subscriber in list(self._subscribers):
            if subscriber.user == user and len(subscriber.pending) < QUEUE_SIZE:
                subscriber.push((frame,))
                told += 1
        return told

    # --- heartbeats and shutdown ---------------------------------------------------

    def start(self, supervisor: Supervisor | None = None) -> None:
        """Run the heartbeats and the watch for the exit under ``supervisor`` (the
        lifespan's; one of their own without it)."""
        self._supervisor = supervisor or Supervisor()
        self._tasks.append(self._supervisor.start("live-heartbeats", self._heartbeats))
        if self._exiting is not None:
            # Ends by itself once the server exits: not a task readiness waits for.
            self._tasks.append(
                self._supervisor.start("live-exit", self._close_at_exit, needed=False)
            )

    async def stop(self) -> None:
        """End every stream, the heartbeats and the watch for the exit (shutdown)."""
        self.close()
        if self._delivery is not None:
            self._delivery.end()
        tasks, self._tasks = self._tasks, []
        if self._supervisor is not None:
            await self._supervisor.stop(tasks)

    async def _close_at_exit(self) -> None:
        """uvicorn waits for open responses before it runs the app's shutdown (for
        ``--timeout-graceful-shutdown``, then it cancels them mid-stream): the streams
        must end when it begins to shut down, not when the lifespan calls ``stop``."""
        assert self._exiting is not None
        while not self._exiting():
            await self._sleep(EXIT_POLL_S)
        log.info("live_closing", subscribers=self.subscribers)
        self.close()

    async def _heartbeats(self) -> None:
        """A comment to every subscriber every ``heartbeat_s``: one timer for all of
        them (sse-starlette's ping would be a task and a timer per stream)."""
        while True:
            await self._sleep(self._limits.heartbeat_s)
            await self.heartbeat()

    async def heartbeat(self) -> None:
        """A heartbeat to every subscriber (not to one already full: it is not read),
        once its client has said it is still there; a client that has gone ends its
        stream, and frees its place.

        One subscriber at a time: a question waits for a loop turn or two and holds a few
        KB meanwhile (a cancelled receive). 10,000 questions at once, from the streams'
        own tasks, left the process 3 KB a subscriber bigger for good; asked in turn they
        take 0.5 to 0.9 s, and the next round starts ``heartbeat_s`` after this one ends.
        A change on its way goes first: no question starts until it has been delivered
        (or its cap has passed)."""
        beat = (HEARTBEAT,)
        for subscriber in list(self._subscribers):
            while (delivery := self._delivery) is not None and not delivery.ended:
                await delivery.wait()
            if subscriber not in self._subscribers:
                continue  # ended while an earlier one was asked
            ask = subscriber.client_gone
            if ask is not None and await ask():
                self._drop(subscriber)
            elif len(subscriber.pending) < QUEUE_SIZE:
                subscriber.push(beat)

    # --- subscribers -------------------------------------------------------------

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    @property
    def ready(self) -> bool:
        return self._open is not None

    @property
    def head(self) -> str:
        """The id of the state after the last change this replica logged."""
        return self._log[-1][0] if self._log else self._origin

    def subscribe(
        self,
        last_event_id: str | None,
        watched: Iterable[str] = (),
        user: str | None = None,
        client_gone: Callable[[], Awaitable[bool]] | None = None,
    ) -> Subscription:
        """A new subscriber: the missed messages after ``last_event_id`` when this
        replica still holds them all, else a snapshot. ``user``: the viewer's user-id
        digest, so session notices reach their player; ``client_gone``: see
        ``Subscription``. Raises ``LiveFull``. Once the feed is closed, an ended
        subscription: the stream ends at once."""
        if self._closed:
            return Subscription((), ended=True)
        if len(self._subscribers) >= self._limits.max_clients:
            raise LiveFull
        missed = self._since(last_event_id) if last_event_id is not None else None
        if missed is not None and len(missed) <= QUEUE_SIZE:
            initial, resumed = tuple(missed), True
        else:
            initial, resumed = (self.snapshot(watched),), False
        subscription = Subscription(initial, resumed, user, client_gone=client_gone)
        self._subscribers.add(subscription)
        self._count_subscribers()
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """The subscriber's stream ended (its delivery, if any, is settled)."""
        subscription.end()
        if subscription in self._subscribers:
            self._subscribers.discard(subscription)
            self._count_subscribers()

    def dropped(self, reason: str) -> None:
        """A stream ended by this side: ``behind`` or ``send_timeout``."""
        log.info("live_subscriber_dropped", reason=reason)
        if self._metrics is not None:
            self._metrics.live_dropped.labels(reason).inc()

    def _count_subscribers(self) -> None:
        if self._metrics is not None:
            self._metrics.live_subscribers.set(len(self._subscribers))

    def close(self) -> None:
        """End every stream, and every later one at once (shutdown)."""
        self._closed = True
        for subscriber in list(self._subscribers):
            self._drop(subscriber)

    def _since(self, last_event_id: str) -> list[bytes] | None:
        if last_event_id == self._origin:
            start = 0
        elif (position := self._positions.get(last_event_id)) is not None:
            start = position - self._first + 1
        else:
            return None
        return [frame for _, frame in itertools.islice(self._log, start, None)]

    def snapshot(self, watched: Iterable[str] = ()) -> bytes:
        """The ``snapshot`` message: the open list, and the watched events' records."""
        assert self._open is not None, "subscribe only once the open list is here"
        body = self._open.snapshot.body  # {"events": [...], "fetchedAt": "..."}
        head = self.head
        wanted = list(dict.fromkeys(watched))
        if not wanted:
            cached = self._snapshot_cache
            if cached is not None and cached[0] == head and cached[1] is body:
                return cached[2]
            frame = message("snapshot", head, body)
            self._snapshot_cache = (head, body, frame)
            return frame
        records: Mapping[str, Any] = {
            key: render(held[1]) if (held := self._records.get(key)) else None for key in wanted
        }
        data = body[:-1] + b',"watched":' + orjson.dumps(records) + b"}"
        return message("snapshot", head, data)
