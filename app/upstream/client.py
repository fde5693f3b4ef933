"""The ONEPlatform client: the six calls of the guide over one ``httpx.AsyncClient``
(``build_http_client``: httpx's own connection pool, proxy variables honoured).

Every call carries ``X-Forwarded-For: <server IP>`` (the guide: server-side calls name
the whitelisted server IP there). The customerUid travels in URLs, so nothing here
logs or raises with a URL: errors name the method (``event_all``, ``stream_link`` …)
and what went wrong. Lower-level exceptions (httpx's, orjson's, pydantic's) are
translated *outside* their ``except`` block, so the raised error has neither a
``__cause__`` nor a ``__context__``: their text and attributes hold the URL or the
body. Text the upstream sends back (``message``) is scrubbed of the customerUid.
Rate limits are not this module's business: callers pass the fleet-wide gates before
calling.
"""

from __future__ import annotations

import re
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Final, Generic, TypeVar
from urllib.parse import quote

import httpx
import orjson
import structlog
from pydantic import SecretStr, ValidationError

from app.upstream.breaker import CircuitBreaker
from app.upstream.errors import (
    OperationError,
    UpstreamBadResponse,
    UpstreamCircuitOpen,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamServerError,
    UpstreamTimeout,
    operation_error,
)
from app.upstream.models import Event, LiveStream, Sport, Stream, StreamLink, UpstreamModel
from app.upstream.wire import body_field, operation_code, retry_after_s, wire_date

log = structlog.get_logger(__name__)

EVENT_ALL: Final = "event_all"
EVENT_OPEN: Final = "event_open"
STREAMS: Final = "streams"
SPORTS: Final = "sports"
STREAM_LINK: Final = "stream_link"
LIVE_STREAM: Final = "live_stream"
METHODS: Final = (EVENT_ALL, EVENT_OPEN, STREAMS, SPORTS, STREAM_LINK, LIVE_STREAM)

RAW_SUFFIX: Final = "-RAW"
SUCCESS_CODE: Final = 200
RATE_LIMITED_CODE: Final = 429
SERVER_ERROR_CODE: Final = 500
MAX_MESSAGE_CHARS: Final = 300

M = TypeVar("M", bound=UpstreamModel)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class UpstreamCall:
    """One finished call, for metrics and the access log."""

    method: str
    # ok | operation_error | timeout | connection_error | rate_limited | server_error
    # | bad_response | error (anything unexpected, cancellation included)
    outcome: str
    operation_code: int | None
    seconds: float


CallObserver = Callable[[UpstreamCall], None]


@dataclass(frozen=True, slots=True)
class ListResult(Generic[T]):
    """Items that parsed, and how many the upstream sent that could not be used."""

    items: tuple[T, ...]
    skipped: int


DEFAULT_HEADERS: Final = {
    "Accept": "application/json",
    "Accept-Encoding": "gzip, deflate",
    "User-Agent": "oneplatform-gateway",
}
MAX_BODY_BYTES: Final = 32 * 1024 * 1024  # decoded; ONEPlatform's largest list is ~1 MB


def build_http_client(
    *,
    connect_timeout_s: float,
    read_timeout_s: float,
    max_connections: int,
    keepalive_expiry_s: float = 5.0,
    verify: ssl.SSLContext | bool = True,
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """The pooled connections the lifespan owns: httpx's own transport, with proxy
    variables honoured (``trust_env``), ``verify`` for TLS, and the pool's size and
    keep-alive; or a given transport (the in-process simulator, a ``MockTransport``),
    which then brings its own connections and takes no proxy."""
    return httpx.AsyncClient(
        headers=DEFAULT_HEADERS,
        timeout=httpx.Timeout(read_timeout_s, connect=connect_timeout_s, pool=connect_timeout_s),
        limits=httpx.Limits(
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=keepalive_expiry_s,
        ),
        verify=verify,
        trust_env=True,
        follow_redirects=False,
        transport=transport,
    )


class OnePlatformClient:
    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        api_url: str,
        player_api_url: str,
        customer_uid: SecretStr,
        server_ip: str,
        observer: CallObserver | None = None,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self._http = http
        self._headers = {"X-Forwarded-For": server_ip, "Content-Type": "application/json"}
        self._api = api_url.rstrip("/")
        self._player_api = player_api_url.rstrip("/")
        self._uid = customer_uid
        self._observer = observer
        self._breaker = breaker

    # --- events and catalogue data ------------------------------------------

    async def events_by_date(self, day: date) -> ListResult[Event]:
        """event/all for one date (``DD-MM-YYYY`` on the wire)."""
        url = f"{self._api}/event/all/{self._uid_path}/{wire_date(day)}"
        return await self._call(EVENT_ALL, "GET", url, None, self._items("events", Event))

    async def open_events(self) -> ListResult[Event]:
        url = f"{self._api}/event/open/{self._uid_path}"
        return await self._call(EVENT_OPEN, "GET", url, None, self._items("events", Event))

    async def streams(self, event_id: str) -> ListResult[Stream]:
        url = f"{self._api}/stream/{self._uid_path}/{quote(event_id, safe='')}"
        return await self._call(STREAMS, "GET", url, None, self._items("eventStreams", Stream))

    async def sports(self) -> ListResult[Sport]:
        url = f"{self._api}/sport/all/{self._uid_path}"
        return await self._call(SPORTS, "GET", url, None, self._items("sports", Sport))

    # --- links ----------------------------------------------------------------

    async def stream_link(
        self,
        *,
        user_id: str,
        user_ip: str,
        event_id: str,
        stream_name: str,
        redirect_url: str,
        raw: bool,
    ) -> StreamLink:
        """stream/link: raw (``<name>-RAW``: an encoded transaction ref) or a player URL."""
        has_suffix = stream_name.upper().endswith(RAW_SUFFIX)
        params = {
            "customerUid": self._uid.get_secret_value(),
            "userId": user_id,
            "userIp": user_ip,
            "eventId": event_id,
            "streamName": f"{stream_name}{RAW_SUFFIX}" if raw and not has_suffix else stream_name,
            "redirectUrl": redirect_url,
        }
        url = f"{self._api}/stream/link"
        return await self._call(STREAM_LINK, "POST", url, params, self._one(StreamLink))

    async def live_stream(self, encoded_transaction_ref: str) -> LiveStream:
        """liveStream: resolve a raw link's reference to an HLS URL or THEOlive channel."""
        params = {"encodedTransactionRef": encoded_transaction_ref}
        url = f"{self._player_api}/liveStream"
        return await self._call(LIVE_STREAM, "POST", url, params, self._one(LiveStream))

    # --- plumbing -------------------------------------------------------------

    @property
    def _uid_path(self) -> str:
        return quote(self._uid.get_secret_value(), safe="")

    async def _call(
        self,
        method: str,
        verb: str,
        url: str,
        params: dict[str, str] | None,
        parse: Callable[[str, object], T],
    ) -> T:
        """One observed call: exchange, operationCode check and parsing of the answer."""
        if self._breaker is not None and (wait := self._breaker.before(method)) is not None:
            if self._observer is not None:
                self._observer(UpstreamCall(method, "circuit_open", None, 0.0))
            raise UpstreamCircuitOpen(method, "circuit open after repeated failures", wait)
        started = time.perf_counter()
        outcome, code = "error", None
        try:
            body = await self._exchange(method, verb, url, params)
            code = operation_code(body)
            if code is not None and code != SUCCESS_CODE:
                raise self._refusal(method, code, body)
            result = parse(method, body)
            outcome = "ok"
            return result
        except OperationError as exc:
            outcome, code = "operation_error", exc.operation_code
            raise
        except UpstreamError as exc:
            outcome = _OUTCOMES.get(type(exc), "bad_response")
            raise
        finally:
            if self._breaker is not None:
                if outcome in _BREAKER_FAILURES:
                    self._breaker.failed(method)
                else:
                    self._breaker.succeeded(method)  # answering, even if refusing
            if self._observer is not None:
                self._observer(UpstreamCall(method, outcome, code, time.perf_counter() - started))

    def _refusal(self, method: str, code: int, body: object) -> UpstreamError:
        """The error for an answer whose operationCode is not 200."""
        if code == RATE_LIMITED_CODE:
            return UpstreamRateLimited(method, f"operationCode {code}")
        if SERVER_ERROR_CODE <= code < SERVER_ERROR_CODE + 100:
            return UpstreamServerError(method, f"operationCode {code}", code)
        return operation_error(method, code, self._upstream_text(body_field(body, "message")))

    def _upstream_text(self, value: object) -> str:
        """The upstream's own message, capped and with the customerUid scrubbed out."""
        if not isinstance(value, str):
            return ""
        text = " ".join(value.split())[:MAX_MESSAGE_CHARS]
        uid = self._uid.get_secret_value()
        if not uid:
            return text
        return re.sub(re.escape(uid), "[redacted]", text, flags=re.IGNORECASE)

    async def _exchange(
        self, method: str, verb: str, url: str, params: dict[str, str] | None
    ) -> object:
        # Every translated error is raised after its ``except`` block has ended: httpx
        # puts the URL (and so the customerUid) into its exceptions, orjson the body.
        failure: UpstreamError | None = None
        try:
            response, content = await self._fetch(verb, url, params)
        except httpx.TimeoutException:
            failure = UpstreamTimeout(method, "timed out")
        except httpx.DecodingError:
            failure = UpstreamBadResponse(method, "the body could not be decoded")
        except httpx.RequestError as exc:
            failure = UpstreamConnectionError(method, type(exc).__name__)
        except _TooLarge:
            failure = UpstreamBadResponse(method, "the body is too large")
        if failure is not None:
            raise failure
        if response.status_code == httpx.codes.TOO_MANY_REQUESTS:
            raise UpstreamRateLimited(method, "HTTP 429", retry_after_s(response))
        if response.status_code >= httpx.codes.INTERNAL_SERVER_ERROR:
            raise UpstreamServerError(method, f"HTTP {response.status_code}", response.status_code)
        body: object = None
        try:
            body = orjson.loads(content)
        except orjson.JSONDecodeError:
            failure = UpstreamBadResponse(
                method, f"HTTP {response.status_code} with a body that is not JSON"
            )
        if failure is not None:
            raise failure
        if response.status_code != httpx.codes.OK and operation_code(body) is None:
            raise UpstreamBadResponse(method, f"unexpected HTTP {response.status_code}")
        return body

    async def _fetch(
        self, verb: str, url: str, params: dict[str, str] | None
    ) -> tuple[httpx.Response, bytes]:
        """The answer and its decoded body, read up to ``MAX_BODY_BYTES``."""
        async with self._http.stream(verb, url, params=params, headers=self._headers) as response:
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    raise _TooLarge
                chunks.append(chunk)
        return response, b"".join(chunks)

    @staticmethod
    def _items(key: str, model: type[M]) -> Callable[[str, object], ListResult[M]]:
        """A parser for a list answer under ``key`` (any casing); bad items are skipped."""

        def parse(method: str, body: object) -> ListResult[M]:
            raw = body if isinstance(body, list) else body_field(body, key)
            if raw is None:
                raw = []  # an empty answer may omit the list
            if not isinstance(raw, list):
                raise UpstreamBadResponse(method, f"'{key}' is not a list")
            items, skipped = [], 0
            for item in raw:
                try:
                    items.append(model.model_validate(item))
                except ValidationError:
                    skipped += 1
            if skipped:
                log.warning(
                    "upstream_items_skipped", method=method, skipped=skipped, kept=len(items)
                )
            return ListResult(tuple(items), skipped)

        return parse

    @staticmethod
    def _one(model: type[M]) -> Callable[[str, object], M]:
        """A parser for a single-object answer; an unusable one is a bad response."""

        def parse(method: str, body: object) -> M:
            fields: list[str] = []
            try:
                return model.model_validate(body)
            except ValidationError as exc:
                fields = sorted({str(err["loc"][0]) for err in exc.errors() if err["loc"]})
            raise UpstreamBadResponse(
                method, f"unusable answer (fields: {', '.join(fields) or 'body'})"
            )

        return parse


class _TooLarge(Exception):
    """An answer's decoded body passed ``MAX_BODY_BYTES`` (a runaway or a gzip bomb)."""


# Outcomes that count against a method's circuit: the upstream is not answering.
_BREAKER_FAILURES = frozenset({"timeout", "connection_error", "rate_limited", "server_error"})

_OUTCOMES: dict[type[UpstreamError], str] = {
    UpstreamTimeout: "timeout",
    UpstreamConnectionError: "connection_error",
    UpstreamRateLimited: "rate_limited",
    UpstreamServerError: "server_error",
    UpstreamBadResponse: "bad_response",
}
