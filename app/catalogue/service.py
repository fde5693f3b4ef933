"""The catalogue as the API sees it: sports, events by date, open events, one event,
an event's streams, and the event index the link rules read.

Reads come from this replica's memory as pre-serialised bytes. A background loop
(``_sync_loop``) keeps memory in step with the shared store and tells the fleet's
refresher which dates clients ask for; the refresher (``Refresher``) runs beside it.
A read never waits on the upstream when any copy exists; a cold read waits a bounded
time for the first copy, then answers 503 with a Retry-After.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime

import orjson
import structlog
from pydantic import ValidationError

from app.catalogue.ages import ListState, list_states, report_ages
from app.catalogue.demand import DateDemand
from app.catalogue.index import EventIndex, IndexedEvent
from app.catalogue.lists import OPEN, SPORTS, LocalList, LocalLists, date_list_name
from app.catalogue.lookup import EventLookup
from app.catalogue.on_demand import OnDemandLists
from app.catalogue.refresher import Refresher, RefreshPolicy, date_range, today_utc
from app.catalogue.schedule import target_period_s
from app.catalogue.shared import SharedLists
from app.catalogue.snapshot import ReadState, Snapshot, encode_items, make_snapshot
from app.errors import GatewayError, problem
from app.observability.metrics import Metrics
from app.policy.status import pending_retry_after_s
from app.ratelimit.gate import UpstreamGate
from app.store import StoreUnavailable, honour_cancellation
from app.supervisor import Supervised, Supervisor
from app.upstream.client import EVENT_ALL, EVENT_OPEN, OnePlatformClient
from app.upstream.models import Event, Stream

log = structlog.get_logger(__name__)

EVENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
FORCED_REFRESH_POLL_S = 0.2


@dataclass(frozen=True, slots=True)
class SnapshotRead:
    """A snapshot, and how this replica had it (``hit``, ``stale``...)."""

    snapshot: Snapshot
    state: ReadState


@dataclass(frozen=True, slots=True)
class CatalogueTimings:
    cold_wait_s: float
    sync_interval_s: float
    streams_ttl_s: float
    sports_ttl_s: float


def valid_event_id(event_id: str) -> bool:
    return EVENT_ID.fullmatch(event_id) is not None


def event_not_found(event_id: str) -> GatewayError:
    return problem(
        "event_not_found", extra={"eventId": event_id} if valid_event_id(event_id) else None
    )


class Catalogue:
    def __init__(
        self,
        *,
        client: OnePlatformClient,
        shared: SharedLists,
        lists: LocalLists,
        on_demand: OnDemandLists,
        refresher: Refresher,
        gate: UpstreamGate,
        index: EventIndex,
        policy: RefreshPolicy,
        timings: CatalogueTimings,
        metrics: Metrics,
        wall: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._shared = shared
        self._lists = lists
        self._on_demand = on_demand
        self.refresher = refresher
        self._gate = gate
        self.index = index
        self._policy = policy
        self._timings = timings
        self._metrics = metrics
        self._wall = wall
        self._sleep = sleep
        self._demand = DateDemand(shared, wall)
        self._lookup = EventLookup(
            index=index,
            lists=lists,
            refresher=refresher,
            gate=gate,
            interval_s=policy.interval_s,
            wait_s=timings.cold_wait_s,
            sync_interval_s=timings.sync_interval_s,
            metrics=metrics,
            wall=wall,
            monotonic=monotonic,
        )
        self._streams_parsed: dict[str, tuple[str, tuple[Stream, ...]]] = {}
        self._single_events: dict[str, tuple[float, Snapshot]] = {}
        self._supervisor: Supervisor | None = None
        self._tasks: list[Supervised] = []
        self.degraded = False
        self.synced_once = False

    # --- lifecycle ----------------------------------------------------------

    async def start(self, supervisor: Supervisor | None = None) -> None:
        """Run the sync loop and the refresher under ``supervisor`` (the lifespan's;
        one of their own without it)."""
        self._supervisor = supervisor or Supervisor()
        self._tasks = [
            self._supervisor.start("catalogue-sync", self._sync_loop),
            self._supervisor.start("catalogue-refresher", self.refresher.run),
        ]

    async def stop(self) -> None:
        """Stop the refresher, then the sync loop, and hand the lease back."""
        if self._supervisor is not None:
            await self._supervisor.stop(self._tasks)
        self._tasks = []
        await self.refresher.stop()

    @property
    def warmed(self) -> bool:
        return self._lists.get(OPEN) is not None

    # --- reads --------------------------------------------------------------

    def today(self) -> date:
        return today_utc(self._wall)

    def check_date(self, day: date) -> None:
        today = self.today()
        if not self._policy.in_range(day, today):
            days = date_range(today, self._policy)
            raise problem(
                "date_out_of_range",
                f"Events are served for {days[0].isoformat()} to {days[-1].isoformat()}.",
            )

    # Synchronous reads from memory: ``None`` means "not servable from memory now"
    # (cold, stale on-demand list, unknown id); the async reads below then wait,
    # refresh or refuse. The warm read path uses these directly.

    def events_now(self, day: date, sport: str | None, status: str | None) -> SnapshotRead | None:
        if not self._policy.in_range(day, self.today()):
            return None
        self._demand.note(day)
        local = self._lists.get(date_list_name(day))
        if local is None:
            return None
        state = self._freshness(local, abs((day - self.today()).days))
        self._metrics.catalogue_read("events", state)
        return SnapshotRead(local.filtered(sport, status), state)

    def open_now(self) -> SnapshotRead | None:
        local = self._lists.get(OPEN)
        if local is None:
            return None
        state = self._freshness(local, 0)
        self._metrics.catalogue_read("open", state)
        return SnapshotRead(local.snapshot, state)

    def event_now(self, event_id: str) -> SnapshotRead | None:
        found = self.index.get(event_id)
        if found is None:
            return None
        cached = self._single_events.get(event_id)
        if cached is None or cached[0] != found.seen_at:
            payload = found.event.model_dump(mode="json")
            cached = (found.seen_at, make_snapshot(f"event:{event_id}", payload, found.seen_at))
            self._single_events[event_id] = cached
        self._metrics.catalogue_read("event", "hit")
        return SnapshotRead(cached[1], "hit")

    def streams_now(self, event_id: str) -> SnapshotRead | None:
        return self._fresh_on_demand(f"streams:{event_id}", "streams", self._timings.streams_ttl_s)

    def sports_now(self) -> SnapshotRead | None:
        return self._fresh_on_demand(SPORTS, "sports", self._timings.sports_ttl_s)

    def _fresh_on_demand(self, name: str, kind: str, ttl_s: float) -> SnapshotRead | None:
        snapshot = self._on_demand.peek(name)
        if snapshot is None or snapshot.age(self._wall()) >= ttl_s:
            return None
        self._metrics.catalogue_read(kind, "hit")
        return SnapshotRead(snapshot, "hit")

    async def events_on(self, day: date, sport: str | None, status: str | None) -> SnapshotRead:
        self.check_date(day)
        served = self.events_now(day, sport, status)
        if served is not None:
            return served
        await self._wait_cold(date_list_name(day), EVENT_ALL, "events")
        served = self.events_now(day, sport, status)
        assert served is not None  # _wait_cold returns only once the list is here
        return served

    async def open_events(self) -> SnapshotRead:
        served = self.open_now()
        if served is not None:
            return served
        await self._wait_cold(OPEN, EVENT_OPEN, "open")
        served = self.open_now()
        assert served is not None
        return served

    async def event(self, event_id: str) -> SnapshotRead:
        if await self.find_event(event_id) is None:
            raise event_not_found(event_id)
        served = self.event_now(event_id)
        assert served is not None
        return served

    async def streams(self, event_id: str) -> SnapshotRead:
        if await self.find_event(event_id) is None:
            raise event_not_found(event_id)
        name = f"streams:{event_id}"

        async def fetch() -> Snapshot:
            result = await self._client.streams(event_id)
            payload = {"eventId": event_id, "streams": encode_items(result.items)}
            return make_snapshot(name, payload, self._wall())

        snapshot, state = await self._on_demand.get(
            name, "streams", self._timings.streams_ttl_s, fetch
        )
        return SnapshotRead(snapshot, state)

    async def event_streams(self, event_id: str) -> tuple[Stream, ...]:
        """The event's streams as models, for the link rules."""
        snapshot = (await self.streams(event_id)).snapshot
        cached = self._streams_parsed.get(event_id)
        if cached is not None and cached[0] == snapshot.etag:
            return cached[1]
        streams = []
        for item in orjson.loads(snapshot.body).get("streams", []):
            try:
                streams.append(Stream.model_validate(item))
            except ValidationError:
                continue
        self._streams_parsed[event_id] = (snapshot.etag, tuple(streams))
        return tuple(streams)

    async def sports(self) -> SnapshotRead:
        async def fetch() -> Snapshot:
            result = await self._client.sports()
            return make_snapshot(SPORTS, {"sports": encode_items(result.items)}, self._wall())

        snapshot, state = await self._on_demand.get(
            SPORTS, "sports", self._timings.sports_ttl_s, fetch
        )
        return SnapshotRead(snapshot, state)

    # --- the event index ------------------------------------------------------

    async def find_event(self, event_id: str) -> IndexedEvent | None:
        """The latest record of an event; None only once an open list fetched after
        the id was first asked for lacks it. For an id not seen yet this waits a
        bounded time for that list (within the fleet budget), then raises a 503
        ``catalogue_warming`` with Retry-After (see ``app.catalogue.lookup``)."""
        if not valid_event_id(event_id):
            return None
        return await self._lookup.find(event_id)

    async def pending_retry_after(self, event: Event) -> float:
        """When to ask again about a pending event: the next open list once its start
        is within one refresh interval, or the moment it will be."""
        return pending_retry_after_s(
            event.start_time,
            datetime.fromtimestamp(self._wall(), UTC),
            next_list_in_s=await self._lookup.next_open_list_in(),
            near_s=self._policy.interval_s,
        )

    # --- internals ------------------------------------------------------------

    def _freshness(self, local: LocalList, distance_days: int) -> ReadState:
        period = target_period_s(distance_days, False, self._policy.interval_s)
        return "stale" if local.snapshot.age(self._wall()) > 3 * period else "hit"

    async def _wait_cold(self, name: str, method: str, kind: str) -> LocalList:
        self._metrics.catalogue_read(kind, "miss")
        if kind == "events":
            await self._demand.flush()
        local = await self._lists.wait_for(name, self._timings.cold_wait_s)
        if local is not None:
            return local
        try:
            retry_after = await self._gate.next_slot_in(method) + self._timings.sync_interval_s
        except StoreUnavailable:
            retry_after = self._policy.interval_s
        raise problem("catalogue_warming", retry_after_s=retry_after)

    def _wanted(self) -> set[str]:
        return {OPEN} | {date_list_name(d) for d in date_range(self.today(), self._policy)}

    async def sync_once(self) -> None:
        """Push demand, pull what the fleet refreshed, update the age gauges."""
        await self._demand.flush()
        await self._lists.sync_once(self._wanted())
        self.synced_once = True
        self.report_ages()

    async def _sync_loop(self) -> None:
        while True:
            try:
                await self.sync_once()
                if self.degraded:
                    log.info("store_recovered")
                self.degraded = False
            except StoreUnavailable as exc:
                self._metrics.redis_errors.labels("sync").inc()
                if not self.degraded:
                    log.warning("store_unavailable", error=str(exc))
                self.degraded = True
            self._metrics.degraded.set(1 if self.degraded else 0)
            self._prune()
            honour_cancellation()
            await self._sleep(self._timings.sync_interval_s)

    def report_ages(self) -> None:
        report_ages(self._lists, self._on_demand, self._metrics, self._wall(), self.today())

    def _prune(self) -> None:
        horizon = self._wall() - (self._policy.days_back + 2) * 86400.0
        self.index.prune(horizon)
        self._lookup.prune()
        self._demand.prune()
        live = {key for key in self._single_events if self.index.get(key) is not None}
        self._single_events = {k: v for k, v in self._single_events.items() if k in live}

    # --- operator control (the admin API) ---------------------------------------

    def list_states(self) -> list[ListState]:
        """Every list this replica holds, with its age."""
        return list_states(self._lists, self._on_demand, self._wall())

    async def force_refresh(
        self,
        day: date | None,
        *,
        wait_s: float,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> bool:
        """Fetch the open list (``day`` None) or a date's list now, from this replica,
        as soon as the fleet gate gives a slot: it waits like any refresh and never
        takes the fleet past its event budget. False when no slot came in ``wait_s``."""
        method = EVENT_OPEN if day is None else EVENT_ALL
        deadline = time.monotonic() + wait_s
        while True:
            if day is None:
                fetched = await self.refresher.refresh_open(force=True)
            else:
                fetched = await self.refresher.refresh_date(day)
            if fetched:
                return True
            opens_in = await self._gate.next_slot_in(method)
            remaining = deadline - time.monotonic()
            if remaining <= 0 or opens_in > remaining:
                return False
            await sleep(max(opens_in, FORCED_REFRESH_POLL_S))

    async def next_slot_in(self, method: str) -> float:
        """Seconds until the fleet gate lets the next call of an event method through."""
        return await self._gate.next_slot_in(method)

    async def purge_streams(self, event_id: str) -> None:
        """Drop the event's cached streams from the store and from this replica: the
        next read fetches them again (other replicas' copies age out within
        STREAMS_TTL_S)."""
        name = f"streams:{event_id}"
        await self._shared.forget([name])
        self._on_demand.forget(name)
        self._streams_parsed.pop(event_id, None)
