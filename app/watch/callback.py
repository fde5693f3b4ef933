"""The operator's watch callback (``WATCH_CALLBACK_URL``): may this user watch this
event?

The gateway POSTs ``{userId, eventId, sportCode, streamName, country}`` with the
operator's own secret header (``X-Watch-Secret``: ``WATCH_CALLBACK_SECRET``; never the
customerUid) and expects 200 with ``{"allow": bool, "reason": str?}``. Each answer is
cached per user and event for ``WATCH_CALLBACK_CACHE_S``. A call that fails (timeout,
connection error, any status but 200, a body that is not that shape) counts against a
circuit breaker and is decided by ``WATCH_CALLBACK_FAILURE``: ``deny`` (the default:
fail closed) or ``allow``. While the circuit is open, no call is made and the policy
decides at once. Failures are not cached.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import httpx
import orjson
import structlog
from pydantic import SecretStr

from app.upstream.breaker import CircuitBreaker

log = structlog.get_logger(__name__)

SECRET_HEADER = "X-Watch-Secret"  # noqa: S105 (a header name)
MAX_REASON_CHARS = 64
_CIRCUIT = "watch_callback"


@dataclass(frozen=True, slots=True)
class WatchQuery:
    user_id: str
    event_id: str
    sport_code: str
    stream_name: str
    country: str | None


@dataclass(frozen=True, slots=True)
class WatchVerdict:
    allow: bool
    reason: str | None
    # answered: the operator's service said so; cached: a cached answer; failed: the
    # call failed and the failure policy decided; circuit_open: no call was made
    source: Literal["answered", "cached", "failed", "circuit_open"]


class WatchCallback:
    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        url: str,
        secret: SecretStr | None,
        cache_s: float,
        on_failure: Literal["deny", "allow"],
        breaker: CircuitBreaker,
        monotonic: Callable[[], float] = time.monotonic,
        max_cached: int = 100_000,
    ) -> None:
        self._http = http
        self._url = url
        self._headers = {"Content-Type": "application/json"}
        if secret is not None:
            self._headers[SECRET_HEADER] = secret.get_secret_value()
        self._cache_s = cache_s
        self._on_failure = on_failure
        self._breaker = breaker
        self._monotonic = monotonic
        self._max_cached = max_cached
        self._cache: OrderedDict[tuple[str, str], tuple[float, bool, str | None]] = OrderedDict()

    async def check(self, query: WatchQuery) -> WatchVerdict:
        key = (query.user_id, query.event_id)
        now = self._monotonic()
        cached = self._cache.get(key)
        if cached is not None and cached[0] > now:
            return WatchVerdict(cached[1], cached[2], "cached")
        if self._breaker.before(_CIRCUIT) is not None:
            return self._failed("circuit_open", "circuit open")
        try:
            response = await self._http.post(
                self._url,
                content=orjson.dumps(
                    {
                        "userId": query.user_id,
                        "eventId": query.event_id,
                        "sportCode": query.sport_code,
                        "streamName": query.stream_name,
                        "country": query.country,
                    }
                ),
                headers=self._headers,
            )
            allow, reason = _parse(response)
        except (httpx.HTTPError, ValueError) as exc:
            self._breaker.failed(_CIRCUIT)
            return self._failed("failed", type(exc).__name__)
        self._breaker.succeeded(_CIRCUIT)
        if self._cache_s > 0:
            self._cache[key] = (now + self._cache_s, allow, reason)
            self._cache.move_to_end(key)
            while len(self._cache) > self._max_cached:
                self._cache.popitem(last=False)
        return WatchVerdict(allow, reason, "answered")

    def _failed(self, source: Literal["failed", "circuit_open"], error: str) -> WatchVerdict:
        log.warning("watch_callback_failed", error=error, policy=self._on_failure)
        allow = self._on_failure == "allow"
        return WatchVerdict(allow, None if allow else "watch_check_unavailable", source)


def _parse(response: httpx.Response) -> tuple[bool, str | None]:
    """``(allow, reason)`` from a 200 answer; ``ValueError`` for anything else."""
    if response.status_code != 200:
        raise ValueError(f"status {response.status_code}")
    body = orjson.loads(response.content)
    if not isinstance(body, dict) or not isinstance(body.get("allow"), bool):
        raise ValueError("no boolean 'allow'")
    reason = body.get("reason")
    if reason is not None and not isinstance(reason, str):
        raise ValueError("'reason' is not a string")
    return body["allow"], reason[:MAX_REASON_CHARS] if reason else None
