"""Keeps the open list and the per-date event lists fresh, for the whole fleet.

Every replica runs ``run()``; only the holder of the refresh lease acts. Each event
call first passes the fleet-wide gate (one call per method per interval, decided in
Redis), so even two leaders during a hand-over cannot exceed the upstream's 0.1 req/s.
The leader writes what it fetched to the shared store; every replica picks it up
from there (``LocalLists.sync_once``).

A fetched list that is suddenly empty where the previous copy was not is held back
until a second fetch confirms it, so one bad answer does not blank the catalogue.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import structlog

from app.catalogue.lists import OPEN, LocalLists, date_list_name, list_date
from app.catalogue.schedule import pick_date
from app.catalogue.shared import SharedLists
from app.catalogue.snapshot import Snapshot, encode_items, make_snapshot
from app.observability.metrics import Metrics
from app.ratelimit.gate import UpstreamGate
from app.ratelimit.lease import Lease
from app.ratelimit.local_gate import LocalGate
from app.store import StoreUnavailable, honour_cancellation
from app.upstream.client import EVENT_ALL, EVENT_OPEN, ListResult, OnePlatformClient
from app.upstream.errors import UpstreamError
from app.upstream.models import Event

log = structlog.get_logger(__name__)

DEMAND_WINDOW_S = 600.0
DAY_S = 86400.0


@dataclass(frozen=True, slots=True)
class RefreshPolicy:
    interval_s: float
    margin_s: float
    days_back: int
    days_ahead: int
    lease_ttl_s: float

    @property
    def gate_interval_s(self) -> float:
        return self.interval_s + self.margin_s

    def in_range(self, day: date, today: date) -> bool:
        return -self.days_back <= (day - today).days <= self.days_ahead

    @property
    def keep_s(self) -> float:
        return (self.days_back + self.days_ahead + 2) * DAY_S


def today_utc(wall: Callable[[], float]) -> date:
    return datetime.fromtimestamp(wall(), UTC).date()


class Refresher:
    def __init__(
        self,
        *,
        client: OnePlatformClient,
        shared: SharedLists,
        lists: LocalLists,
        gate: UpstreamGate,
        lease: Lease,
        policy: RefreshPolicy,
        metrics: Metrics,
        wall: Callable[[], float],
        only_replica: bool = False,
        local_gate: LocalGate | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        finish_s: float = 2.0,
    ) -> None:
        self._client = client
        self._shared = shared
        self._lists = lists
        self._gate = gate
        self._lease = lease
        self._policy = policy
        self._metrics = metrics
        self._wall = wall
        self._sleep = sleep
        self._finish_s = finish_s  # a round under way when cancelled: its time to finish
        self._stopping = False
        self._only_replica = (
            only_replica  # configured as the only replica: may refresh without the store
        )
        self._local_gate = local_gate or LocalGate()
        self._open_lock = asyncio.Lock()
        self._held_back: set[str] = set()
        self.is_leader = False

    @property
    def tick_s(self) -> float:
        return min(1.0, self._policy.lease_ttl_s / 3)

    async def run(self) -> None:
        """Refresh forever (until cancelled).

        Cancelled during a round, it lets the round finish the call under way (and
        start no other) first, for up to ``finish_s``: a fetch under way has spent a
        slot of the fleet's budget, and an upstream connection cut in the middle of its
        TLS handshake leaves its socket to the garbage collector (httpcore closes it
        when the handshake fails, not when it is cancelled). The connect timeout bounds
        a handshake, so it is a fair bound.
        """
        while True:
            round_ = asyncio.ensure_future(self._round())
            try:
                await asyncio.shield(round_)
            except asyncio.CancelledError:
                self._stopping = True
                await asyncio.wait([round_], timeout=self._finish_s)
                round_.cancel()
                await asyncio.gather(round_, return_exceptions=True)
                raise
            honour_cancellation()
            await self._sleep(self.tick_s)

    async def _round(self) -> None:
        try:
            await self.tick()
        except StoreUnavailable:
            self._metrics.redis_errors.labels("refresh").inc()
            self._set_leader(False)

    async def tick(self) -> None:
        """One round: hold or take the lease, then spend any slot that is due.

        Without the store, replicas cannot coordinate, so they stop calling the event
        methods and serve what they have, unless this one is configured to be alone.
        """
        try:
            leader = await self._lease.acquire_or_renew()
        except StoreUnavailable:
            if not self._only_replica:
                raise
            leader = True
        self._set_leader(leader)
        if not self.is_leader:
            return
        await self.refresh_open(force=False)
        await self.refresh_next_date()

    async def stop(self) -> None:
        """Hand the lease back so another replica takes over at once."""
        if self.is_leader:
            try:
                await self._lease.release()
            except StoreUnavailable:
                self._metrics.redis_errors.labels("lease_release").inc()
            self._set_leader(False)

    async def lease_holder(self) -> str | None:
        """Which replica holds the refresh lease now (None: nobody)."""
        return await self._lease.holder()

    def _set_leader(self, leader: bool) -> None:
        if leader != self.is_leader:
            log.info("refresh_leadership", leader=leader)
        self.is_leader = leader
        self._metrics.refresh_leader.set(1 if leader else 0)

    # --- open list ------------------------------------------------------------

    async def refresh_open(self, *, force: bool) -> bool:
        """Fetch event/open if due (or ``force``) and the fleet gate allows; True if fetched."""
        async with self._open_lock:
            current = self._lists.get(OPEN)
            if (
                not force
                and current is not None
                and current.snapshot.age(self._wall()) < self._policy.interval_s
            ):
                return False
            if not await self._pass_gate(EVENT_OPEN):
                return False
            asked_at = self._wall()
            result = await self._fetch(EVENT_OPEN, "open", self._client.open_events())
            if result is None:
                return False
            snapshot = self._snapshot(OPEN, result, {}, asked_at)
            if snapshot is not None:
                await self._publish(snapshot)
                await self._patch_dates_with_open(result.items, snapshot.fetched_at)
            return True

    async def _patch_dates_with_open(self, open_events: tuple[Event, ...], at: float) -> None:
        """Events now open show as open in the date lists too, before their next refresh."""
        open_ids = {event.event_id for event in open_events}
        for name in self._lists.names():
            local = self._lists.get(name)
            if local is None or list_date(name) is None:
                continue
            stale = [
                item
                for item in local.items
                if item.get("eventId") in open_ids and item.get("eventStatusCode") != "O"
            ]
            if not stale:
                continue
            items = [
                {**item, "eventStatusCode": "O"} if item.get("eventId") in open_ids else item
                for item in local.items
            ]
            patched = make_snapshot(
                name, {**local.extra, "events": items}, local.snapshot.fetched_at
            )
            log.info("date_list_patched_from_open", list=name, events=len(stale))
            await self._publish(patched)

    # --- per-date lists -------------------------------------------------------

    async def refresh_next_date(self) -> date | None:
        """Spend the next event/all slot on the date that needs it most."""
        now = self._wall()
        today = today_utc(self._wall)
        try:
            asked = await self._shared.demand(since=now - DEMAND_WINDOW_S)
        except StoreUnavailable:
            if not self._only_replica:
                raise
            asked = {}
        demand = {day: at for day, at in asked.items() if self._policy.in_range(day, today)}
        fetched = {}
        for name in self._lists.names():
            day = list_date(name)
            local = self._lists.get(name)
            if day is not None and local is not None:
                fetched[day] = local.snapshot.fetched_at
        day = pick_date(
            today=today,
            fetched_at=fetched,
            demand=demand,
            now=now,
            interval_s=self._policy.interval_s,
        )
        if day is None or not await self.refresh_date(day):
            return None
        return day

    async def refresh_date(self, day: date) -> bool:
        """Fetch event/all for ``day`` if the fleet gate allows; True if fetched."""
        if not await self._pass_gate(EVENT_ALL):
            return False
        asked_at = self._wall()
        result = await self._fetch(EVENT_ALL, "events", self._client.events_by_date(day))
        if result is None:
            return False
        extra = {"date": day.isoformat()}
        snapshot = self._snapshot(date_list_name(day), result, extra, asked_at)
        if snapshot is not None:
            await self._publish(snapshot)
        await self._forget_out_of_range(today_utc(self._wall))
        return True

    async def _forget_out_of_range(self, today: date) -> None:
        doomed = [
            name
            for name in self._lists.names()
            if (day := list_date(name)) is not None and not self._policy.in_range(day, today)
        ]
        if doomed:
            await self._shared.forget(doomed)
            self._lists.drop(doomed)

    # --- plumbing ---------------------------------------------------------------

    def _holds_list_of(self, method: str) -> bool:
        if method == EVENT_OPEN:
            return self._lists.get(OPEN) is not None
        return any(list_date(name) is not None for name in self._lists.names())

    async def _pass_gate(self, method: str) -> bool:
        if self._stopping:
            return False  # a round finishing at shutdown starts no new call
        interval = self._policy.gate_interval_s
        allowed = self._local_gate.peek(method).allowed
        if allowed:
            try:
                # Holding a list of this method, this replica knows the fleet made the
                # call before: if the store restarted empty since, the gate holds
                # everyone back one interval (the LocalGate knows only our own calls).
                decision = await self._gate.try_pass(
                    method, interval, witnessed=self._holds_list_of(method)
                )
                allowed = decision.allowed
            except StoreUnavailable:
                if not self._only_replica:
                    raise
                self._metrics.redis_errors.labels("gate").inc()
        if allowed:
            self._local_gate.mark(method, interval)
        self._metrics.budget_decisions.labels(method, "allowed" if allowed else "refused").inc()
        return allowed

    async def _fetch(
        self, method: str, kind: str, call: Awaitable[ListResult[Event]]
    ) -> ListResult[Event] | None:
        try:
            result = await call
        except UpstreamError as exc:
            self._metrics.catalogue_refreshes.labels(kind, "error").inc()
            log.warning("catalogue_refresh_failed", method=method, error=str(exc))
            return None
        self._metrics.catalogue_refreshes.labels(kind, "ok").inc()
        return result

    def _snapshot(
        self, name: str, result: ListResult[Event], extra: dict[str, str], asked_at: float
    ) -> Snapshot | None:
        """The new copy, or None while a sudden empty list waits for confirmation.

        Stamped with the moment the call went out: the list holds nothing newer, and
        an event lookup waiting for a list fetched after its question relies on it."""
        current = self._lists.get(name)
        suddenly_empty = not result.items and current is not None and bool(current.events)
        if suddenly_empty and name not in self._held_back:
            self._held_back.add(name)
            log.warning("empty_list_held_back", list=name)
            return None
        self._held_back.discard(name)
        return make_snapshot(name, {**extra, "events": encode_items(result.items)}, asked_at)

    async def _publish(self, snapshot: Snapshot) -> None:
        self._lists.install(snapshot)
        try:
            await self._shared.write(snapshot, self._policy.keep_s)
        except StoreUnavailable:
            if not self._only_replica:
                raise
            self._metrics.redis_errors.labels("list_write").inc()


def date_range(today: date, policy: RefreshPolicy) -> list[date]:
    return [
        today + timedelta(days=offset) for offset in range(-policy.days_back, policy.days_ahead + 1)
    ]
