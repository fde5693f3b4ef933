"""Lists fetched when somebody asks (sports, streams of an event), cached with a TTL.

The upstream does not document a rate limit for these, but a popular event must
not fan out: per list, one fetch at a time in this process (single flight) and one
in the fleet (a short lease in the shared store; the others wait for its result).
A stale copy is served at once while it is refreshed in the background, and kept
when the refresh fails.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable

import structlog

from app.catalogue.shared import SharedLists
from app.catalogue.snapshot import ReadState, Snapshot
from app.errors import problem_from_upstream
from app.observability.metrics import Metrics
from app.ratelimit.lease import Lease
from app.store import Store, StoreUnavailable
from app.upstream.errors import UpstreamError

log = structlog.get_logger(__name__)

Fetch = Callable[[], Awaitable[Snapshot]]

FETCH_LEASE_S = 10.0
POLL_S = 0.05


class OnDemandLists:
    def __init__(
        self,
        *,
        redis: Store,
        shared: SharedLists,
        metrics: Metrics,
        wall: Callable[[], float],
        cold_wait_s: float,
        max_entries: int = 4096,
    ) -> None:
        self._redis = redis
        self._shared = shared
        self._metrics = metrics
        self._wall = wall
        self._cold_wait_s = cold_wait_s
        self._max_entries = max_entries
        self._local: OrderedDict[str, Snapshot] = OrderedDict()
        self._inflight: dict[str, asyncio.Task[Snapshot]] = {}
        self._owner = uuid.uuid4().hex

    def peek(self, name: str) -> Snapshot | None:
        return self._local.get(name)

    def forget(self, name: str) -> None:
        """Drop this replica's copy (the next read loads it again)."""
        self._local.pop(name, None)

    async def get(
        self, name: str, kind: str, ttl_s: float, fetch: Fetch
    ) -> tuple[Snapshot, ReadState]:
        """The list and how it was served: ``hit``, ``stale`` or ``miss``."""
        local = self._local.get(name)
        if local is not None:
            self._local.move_to_end(name)
            if local.age(self._wall()) < ttl_s:
                self._metrics.catalogue_read(kind, "hit")
                return local, "hit"
            self._start(name, kind, ttl_s, fetch)
            self._metrics.catalogue_read(kind, "stale")
            return local, "stale"
        self._metrics.catalogue_read(kind, "miss")
        task = self._start(name, kind, ttl_s, fetch)
        return await asyncio.shield(task), "miss"

    def _start(self, name: str, kind: str, ttl_s: float, fetch: Fetch) -> asyncio.Task[Snapshot]:
        task = self._inflight.get(name)
        if task is None:
            task = asyncio.create_task(self._load(name, kind, ttl_s, fetch))
            self._inflight[name] = task
            task.add_done_callback(lambda done: self._finished(name, done))
        return task

    def _finished(self, name: str, task: asyncio.Task[Snapshot]) -> None:
        self._inflight.pop(name, None)
        if not task.cancelled():
            # Retrieved here so a failed background refresh (the stale copy stays in
            # service, and _load logged it) is not reported as never retrieved.
            task.exception()

    def _install(self, snapshot: Snapshot) -> Snapshot:
        self._local[snapshot.name] = snapshot
        self._local.move_to_end(snapshot.name)
        while len(self._local) > self._max_entries:
            self._local.popitem(last=False)
        return snapshot

    async def _load(self, name: str, kind: str, ttl_s: float, fetch: Fetch) -> Snapshot:
        shared = await self._read_shared(name)
        if shared is not None and shared.age(self._wall()) < ttl_s:
            return self._install(shared)
        lease = Lease(self._redis, f"fetch:{name}", self._owner, FETCH_LEASE_S)
        try:
            ours = await lease.acquire_or_renew()
        except StoreUnavailable:
            ours = True  # no coordination possible: fetch for this replica alone
        if not ours:
            fresher = await self._wait_for_peer(name, ttl_s)
            if fresher is not None:
                return self._install(fresher)
        try:
            if ours:  # the previous holder may have written it just before letting go
                again = await self._read_shared(name)
                if again is not None and again.age(self._wall()) < ttl_s:
                    return self._install(again)
            # Fetched and written while the lease is held: whoever takes it next finds
            # this copy in the store instead of fetching again.
            return await self._fetch_and_share(name, kind, ttl_s, fetch, shared)
        finally:
            if ours:
                try:
                    await lease.release()
                except StoreUnavailable:
                    self._metrics.redis_errors.labels("lease_release").inc()

    async def _fetch_and_share(
        self, name: str, kind: str, ttl_s: float, fetch: Fetch, shared: Snapshot | None
    ) -> Snapshot:
        try:
            snapshot = await fetch()
        except UpstreamError as exc:
            self._metrics.catalogue_refreshes.labels(kind, "error").inc()
            fallback = self._local.get(name) or shared
            log.warning(
                "on_demand_fetch_failed", list=kind, error=str(exc), served_stale=bool(fallback)
            )
            if fallback is not None:
                return self._install(fallback)
            raise problem_from_upstream(exc) from None
        self._metrics.catalogue_refreshes.labels(kind, "ok").inc()
        try:
            keep_s = max(ttl_s * 20, 600.0)  # how long a copy may serve if the upstream fails
            await self._shared.write(snapshot, keep_s)
        except StoreUnavailable:
            self._metrics.redis_errors.labels("list_write").inc()
        return self._install(snapshot)

    async def _read_shared(self, name: str) -> Snapshot | None:
        try:
            return (await self._shared.read([name])).get(name)
        except StoreUnavailable:
            self._metrics.redis_errors.labels("list_read").inc()
            return None

    async def _wait_for_peer(self, name: str, ttl_s: float) -> Snapshot | None:
        """Another replica is fetching: poll the store for its result for a while."""
        deadline = asyncio.get_running_loop().time() + self._cold_wait_s
        while asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(POLL_S)
            shared = await self._read_shared(name)
            if shared is not None and shared.age(self._wall()) < ttl_s:
                return shared
        return None
