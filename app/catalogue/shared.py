"""The catalogue's data in the shared store, seen by every replica.

Keys (one hash tag, so multi-key pipelines stay on one Redis Cluster slot)::

    {igm:cat}:list:<name>    hash: body, etag, fetched_at       one cached list
    {igm:cat}:versions       hash: <name> -> counter            bumped on every write
    {igm:cat}:demand         zset: <YYYY-MM-DD> -> last asked   which dates clients want

Replicas poll ``versions`` (one small read, off the request path) and load only the
lists whose counter moved. Every store error becomes ``StoreUnavailable``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date

from app.catalogue.snapshot import Snapshot
from app.store import STORE_ERRORS, Store, StoreUnavailable


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class SharedLists:
    def __init__(self, redis: Store, prefix: str = "igm") -> None:
        self._redis = redis
        self._tag = f"{{{prefix}:cat}}"
        self._versions = f"{self._tag}:versions"
        self._demand = f"{self._tag}:demand"

    def _list_key(self, name: str) -> str:
        return f"{self._tag}:list:{name}"

    async def write(self, snapshot: Snapshot, keep_s: float) -> None:
        """Store a list and bump its version, atomically."""
        key = self._list_key(snapshot.name)
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hset(
                    key,
                    mapping={
                        "body": snapshot.body,
                        "etag": snapshot.etag,
                        "fetched_at": repr(snapshot.fetched_at),
                    },
                )
                pipe.pexpire(key, int(keep_s * 1000))
                pipe.hincrby(self._versions, snapshot.name, 1)
                await pipe.execute()
        except STORE_ERRORS as exc:
            raise StoreUnavailable(f"writing list {snapshot.name!r} failed") from exc

    async def versions(self) -> dict[str, int]:
        try:
            raw = await self._redis.hgetall(self._versions)
        except STORE_ERRORS as exc:
            raise StoreUnavailable("reading list versions failed") from exc
        return {_text(name): int(value) for name, value in raw.items()}

    async def read(self, names: Iterable[str]) -> dict[str, Snapshot]:
        """The named lists that exist (expired or missing ones are left out)."""
        wanted = list(names)
        if not wanted:
            return {}
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for name in wanted:
                    pipe.hmget(self._list_key(name), ["body", "etag", "fetched_at"])
                rows = await pipe.execute()
        except STORE_ERRORS as exc:
            raise StoreUnavailable("reading lists failed") from exc
        found: dict[str, Snapshot] = {}
        for name, (body, etag, fetched_at) in zip(wanted, rows, strict=True):
            if body is None or etag is None or fetched_at is None:
                continue
            found[name] = Snapshot(name, bytes(body), _text(etag), float(fetched_at))
        return found

    async def forget(self, names: Iterable[str]) -> None:
        """Drop lists (and their versions) that are out of range."""
        doomed = list(names)
        if not doomed:
            return
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hdel(self._versions, *doomed)
                pipe.delete(*(self._list_key(name) for name in doomed))
                await pipe.execute()
        except STORE_ERRORS as exc:
            raise StoreUnavailable("forgetting lists failed") from exc

    async def record_demand(self, asked: Mapping[date, float]) -> None:
        if not asked:
            return
        try:
            await self._redis.zadd(
                self._demand, {day.isoformat(): at for day, at in asked.items()}, gt=True
            )
        except STORE_ERRORS as exc:
            raise StoreUnavailable("recording demand failed") from exc

    async def demand(self, since: float) -> dict[date, float]:
        """Dates asked for since ``since`` (epoch); older entries are trimmed."""
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.zremrangebyscore(self._demand, "-inf", f"({since}")
                pipe.zrange(self._demand, 0, -1, withscores=True)
                _, rows = await pipe.execute()
        except STORE_ERRORS as exc:
            raise StoreUnavailable("reading demand failed") from exc
        return {date.fromisoformat(_text(name)): float(score) for name, score in rows}
