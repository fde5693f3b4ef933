"""Event changes for live subscribers: computed once per installed list, fanned out to
every subscriber of this replica, and kept in a short log for ``Last-Event-ID``.

``installed`` is called by ``LocalLists`` for every list snapshot this replica installs
(fetched by its own refresher or picked up from the shared store), once the catalogue's
event index (``app/catalogue/index.py``) holds its events, with the records they
replaced. The feed reads its events from that index (it keeps only the open list's
ids), diffs them before and after (``event_changes``), and turns each change into one
encoded SSE message, shared by all subscribers.

Ids come from data every replica shares: the installed snapshot's ``fetched_at`` (set
by the refresher that wrote it) and the eventId, ``<fetched_at in µs>-<eventId>``. The
first copy of a list a replica holds is its baseline (nothing to compare with); a
re-encoded copy with the same ``fetched_at`` (the refresher marks date lists' events
open from the open list) carries nothing the open list has not said: what it changed
in the index is compared when the next list comes (``_unreported``).

Heartbeats (an SSE comment) go to every subscriber every ``heartbeat_s`` from one
task, which first asks whether the subscriber's client is still there, and lets a
change on its way go first (``app/live/delivery.py``). ``close`` ends every stream:
the lifespan calls it when the server is told to exit (uvicorn waits for open responses
before it runs the lifespan's shutdown, so the streams must end first:
``app/exit_signal.py``), and ``stop`` at its shutdown. Bounded everywhere: at most
``max_clients`` subscribers, ``QUEUE_SIZE`` pending messages each (a subscriber that
falls further behind is dropped: its stream ends and the client
reconnects with ``Last-Event-ID``), and ``log_size`` messages to resume from.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
import structlog
from sse_starlette import ServerSentEvent

from app.catalogue.index import EventIndex, Replaced
from app.catalogue.lists import OPEN, LocalList
from app.live.changes import EventChange, event_changes
from app.live.delivery import DELIVERY_CAP_S, Delivery
from app.live.subscription import HEARTBEAT, RETRY_MS, Subscription, message
from app.observability.metrics import Metrics
from app.supervisor import Supervised, Supervisor
from app.upstream.models import Event

log = structlog.get_logger(__name__)

QUEUE_SIZE = 64  # messages a subscriber may fall behind by before it is dropped


class LiveFull(Exception):
    """This replica holds as many subscribers as it may."""


@dataclass(frozen=True, slots=True)
class LiveLimits:
    max_clients: int
    log_size: int
    heartbeat_s: float = 15.0


def change_id(fetched_at: float, event_id: str) -> str:
    return f"{round(fetched_at * 1_000_000)}-{event_id}"


def render(event: Event) -> dict[str, Any]:
    """The event as ``GET /v1/events/{eventId}`` and the lists render it."""
    return event.model_dump(mode="json")


class LiveFeed:
    def __init__(
        self,
        limits: LiveLimits,
        index: EventIndex,
        metrics: Metrics | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        delivery_cap_s: float = DELIVERY_CAP_S,
    ) -> None:
        """``index``: the catalogue's event index, which ``LocalLists`` updates before it
        calls ``installed``. ``delivery_cap_s``: see ``app/live/delivery.py``."""
        self._limits = limits
        self._index = index
        self._metrics = metrics
        self._sleep = sleep
        self._delivery_cap_s = delivery_cap_s
        self._delivery: Delivery | None = None
        self._supervisor: Supervisor | None = None
        self._tasks: list[Supervised] = []
        self._closed = False
        self._open_ids: frozenset[str] = frozenset()
        # Index records replaced by re-encoded copies, not yet compared (by eventId).
        self._unreported: Replaced = {}
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

    def installed(self, previous: LocalList | None, current: LocalList, replaced: Replaced) -> None:
        """A list snapshot was installed on this replica and its events indexed
        (``LocalLists`` calls this): ``replaced``, the index's records it replaced."""
        fetched_at = current.snapshot.fetched_at
        is_open = current.snapshot.name == OPEN
        if is_open:
            self._open = current
        if previous is not None and previous.snapshot.fetched_at == fetched_at:
            # The same fetch re-encoded (date lists patched from the open list): what it
            # changed in the index goes out with the next list (the open list said it).
            for key, record in replaced.items():
                self._unreported.setdefault(key, record)
            return
        touched = {event.event_id for event in current.events}
        open_before = self._open_ids
        if is_open:
            self._open_ids = frozenset(touched)
        if previous is None:
            return  # this replica's first copy of the list: the baseline
        unreported, self._unreported = self._unreported, {}
        after = self._index.events(touched | (open_before - self._open_ids) | unreported.keys())
        before = dict(after)
        for key, record in itertools.chain(replaced.items(), unreported.items()):
            if record is None:
                before.pop(key, None)
            else:
                before[key] = record
        changes = event_changes(before, after, open_before, self._open_ids)
        if changes:
            self.publish([self._encode(change, fetched_at) for change in changes])

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
                    subscriber.delivery.received()  # an earlier one, ended: no count to keep
                subscriber.delivery = delivery
                delivery.add()
        delivery.received()

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
        """Run the heartbeats under ``supervisor`` (the lifespan's; one of their own
        without it)."""
        self._supervisor = supervisor or Supervisor()
        self._tasks.append(self._supervisor.start("live-heartbeats", self.run))

    async def stop(self) -> None:
        """End every stream, and the heartbeats (shutdown)."""
        self.close()
        if self._delivery is not None:
            self._delivery.end()
        tasks, self._tasks = self._tasks, []
        if self._supervisor is not None:
            await self._supervisor.stop(tasks)

    async def run(self) -> None:
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
        if not self._closed:
            log.info("live_closing", subscribers=self.subscribers)
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
        held = self._index.events(wanted)
        records: Mapping[str, Any] = {
            key: render(event) if (event := held.get(key)) else None for key in wanted
        }
        data = body[:-1] + b',"watched":' + orjson.dumps(records) + b"}"
        return message("snapshot", head, data)
