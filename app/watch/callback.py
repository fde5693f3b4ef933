"""The operator's watch callback (``WATCH_CALLBACK_URL``): may this user watch this
event?

The gateway POSTs ``{userId, eventId, sportCode, streamName, country}`` with the
operator's own secret header (``X-Watch-Secret``: ``WATCH_CALLBACK_SECRET``; never the
customerUid) and expects 200 with ``{"allow": bool, "reason": str?}``. Each answer is
cached for ``WATCH_CALLBACK_CACHE_S`` under everything the operator's service was told
(user, event, stream and country): a viewer who moves country, or asks for another
stream, is asked about again.

A call has one deadline for all of it (``WATCH_CALLBACK_TIMEOUT_S``: connect, send and
the answer's last byte; a server that drips its answer a byte at a time does not hold a
link request longer), and an answer larger than ``WATCH_CALLBACK_MAX_BYTES`` is not
read past that. A call that fails (``timeout``, ``error``: connection or protocol,
``status``: anything but 200, ``too_large``, ``bad_answer``: not that shape) counts
against a circuit breaker and in ``gateway_watch_callback_failures_total``, and is
decided by ``WATCH_CALLBACK_FAILURE``: ``deny`` (the default: fail closed) or
``allow``. While the circuit is open, no call is made (``circuit_open``) and the policy
decides at once. Failures are not cached.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import httpx
import orjson
import structlog
from pydantic import SecretStr

from app.observability.metrics import Metrics
from app.upstream.breaker import CircuitBreaker

log = structlog.get_logger(__name__)

SECRET_HEADER = "X-Watch-Secret"  # noqa: S105 (a header name)
MAX_REASON_CHARS = 64
_CIRCUIT = "watch_callback"
FailureReason = Literal["timeout", "error", "status", "too_large", "bad_answer", "circuit_open"]


class CallbackFailed(Exception):
    """One failed call; ``reason`` is the metric's label, never a body or a secret."""

    def __init__(self, reason: FailureReason) -> None:
        super().__init__(reason)
        self.reason: FailureReason = reason


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
        timeout_s: float = 1.0,
        max_bytes: int = 4096,
        metrics: Metrics | None = None,
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
        self._timeout_s = timeout_s
        self._max_bytes = max_bytes
        self._metrics = metrics
        self._monotonic = monotonic
        self._max_cached = max_cached
        self._cache: OrderedDict[WatchQuery, tuple[float, bool, str | None]] = OrderedDict()

    async def check(self, query: WatchQuery) -> WatchVerdict:
        key = query  # what the decision depends on: user, event, sport, stream, country
        now = self._monotonic()
        cached = self._cache.get(key)
        if cached is not None and cached[0] > now:
            return WatchVerdict(cached[1], cached[2], "cached")
        if self._breaker.before(_CIRCUIT) is not None:
            return self._failed("circuit_open", "circuit_open")
        try:
            allow, reason = _parse(*await self._call(query))
        except CallbackFailed as exc:
            self._breaker.failed(_CIRCUIT)
            return self._failed("failed", exc.reason)
        self._breaker.succeeded(_CIRCUIT)
        if self._cache_s > 0:
            self._cache[key] = (now + self._cache_s, allow, reason)
            self._cache.move_to_end(key)
            while len(self._cache) > self._max_cached:
                self._cache.popitem(last=False)
        return WatchVerdict(allow, reason, "answered")

    async def _call(self, query: WatchQuery) -> tuple[int, bytes]:
        """The answer's status and body, read within the deadline and the size cap."""
        content = orjson.dumps(
            {
                "userId": query.user_id,
                "eventId": query.event_id,
                "sportCode": query.sport_code,
                "streamName": query.stream_name,
                "country": query.country,
            }
        )
        try:
            async with asyncio.timeout(self._timeout_s):
                async with self._http.stream(
                    "POST", self._url, content=content, headers=self._headers
                ) as response:
                    if response.status_code != 200:
                        return response.status_code, b""
                    return 200, await read_capped(response, self._max_bytes)
        except TimeoutError:
            raise CallbackFailed("timeout") from None
        except httpx.TimeoutException:
            raise CallbackFailed("timeout") from None
        except httpx.HTTPError:
            raise CallbackFailed("error") from None

    def _failed(
        self, source: Literal["failed", "circuit_open"], reason: FailureReason
    ) -> WatchVerdict:
        log.warning("watch_callback_failed", error=reason, policy=self._on_failure)
        if self._metrics is not None:
            self._metrics.watch_callback_failures.labels(reason).inc()
        allow = self._on_failure == "allow"
        return WatchVerdict(allow, None if allow else "watch_check_unavailable", source)


async def read_capped(response: httpx.Response, max_bytes: int) -> bytes:
    """The body, or ``CallbackFailed("too_large")`` as soon as it (or its declared
    length) passes ``max_bytes``: nothing more is read."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise CallbackFailed("too_large")
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > max_bytes:
            raise CallbackFailed("too_large")
    return bytes(body)


def _parse(status: int, content: bytes) -> tuple[bool, str | None]:
    """``(allow, reason)`` from a 200 answer; ``CallbackFailed`` for anything else."""
    if status != 200:
        raise CallbackFailed("status")
    try:
        body = orjson.loads(content)
    except orjson.JSONDecodeError:
        raise CallbackFailed("bad_answer") from None
    if not isinstance(body, dict) or not isinstance(body.get("allow"), bool):
        raise CallbackFailed("bad_answer")
    reason = body.get("reason")
    if reason is not None and not isinstance(reason, str):
        raise CallbackFailed("bad_answer")
    return body["allow"], reason[:MAX_REASON_CHARS] if reason else None
