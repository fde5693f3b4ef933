"""Minting a viewer's link: rules first, then one store round trip, then the upstream.

For one request, in order:

1. the event from the catalogue's index (memory), status rule (only ``O`` proceeds);
2. the redirect URL rule, the stream's existence (memory once the streams are cached),
   the geo rule against the event's and the stream's lists;
3. ``LinkAdmission``: ONE store round trip for dedupe, the per-user limit and the fleet
   link budget (reserving a token up to ``LINK_MAX_WAIT_MS`` ahead);
4. stream/link (``<name>-RAW`` for raw), and for raw links liveStream, which resolves
   the reference to an HLS URL (StreamType 2) or a THEOlive channel + token (4).

Refusals before step 4 never spend upstream budget. When the store is unreachable, a
local bucket of ``LINK_RATE_PER_S / REPLICA_COUNT`` stands in (or, configured
``closed``, the request is refused). A reserved slot this replica could not use on time
(``LATE_SLOT_S``: its event loop was saturated) is given up with a 429, not used late.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from ipaddress import IPv4Address, IPv6Address
from typing import Any, Literal

import orjson
import structlog

from app.catalogue.service import Catalogue, event_not_found
from app.catalogue.snapshot import iso_utc
from app.errors import OPERATOR_ACTION_CODES, GatewayError, problem_from_upstream
from app.identity.auth import Principal
from app.links.ladder import LinkKind, PlayStep, candidates
from app.observability.metrics import Metrics
from app.policy.geo import ViewerLocation, geo_verdict
from app.policy.redirect import redirect_verdict
from app.policy.status import StatusVerdict, status_verdict
from app.ratelimit.admission import LinkAdmission
from app.ratelimit.local_bucket import LocalTokenBucket
from app.ratelimit.sessions import NewSession, SessionLimits, ViewingSessions
from app.store import StoreUnavailable
from app.upstream.client import LIVE_STREAM, STREAM_LINK, OnePlatformClient
from app.upstream.errors import OperationError, UpstreamBadResponse, UpstreamError
from app.upstream.models import HLS_STREAM_TYPE, THEOLIVE_STREAM_TYPE, Event, Stream
from app.watch.rules import WatchRules

log = structlog.get_logger(__name__)

# How late past its reserved instant a call may still go out. The budget spaces out
# the instants at which calls are *sent*; the upstream counts when they *arrive*. A
# replica whose event loop is saturated wakes many reserved callers at once, and their
# calls then arrive bunched with later ones: measured, the default budget (150/s,
# burst 10) reached 198-221 calls in one second at a 150/s upstream. Giving up a slot
# more than this late bounds the excess to about rate x LATE_SLOT_S calls (3 at
# 150/s), and never triggers on a replica that keeps up (store round trip + timer
# slack: a few milliseconds).
LATE_SLOT_S = 0.02


# A play request makes at most this many mint attempts upstream.
MAX_PLAY_MINTS = 2
# Upstream refusals that concern the chosen stream for this viewer (306: geo, 304: no
# such stream), after which a play request may try its next step.
VIEWER_REFUSAL_CODES = frozenset({304, 306})
# The refusal metric's reason for each local refusal code.
_REFUSAL_REASONS = {
    "invalid_redirect_url": "redirect",
    "stream_not_found": "stream",
    "geo_blocked": "geo",
}


@dataclass(frozen=True, slots=True)
class Viewer:
    ip: IPv4Address | IPv6Address
    location: ViewerLocation


@dataclass(frozen=True, slots=True)
class LinkLimits:
    rate_per_s: float
    burst: int
    max_wait_ms: int
    user_rate_per_s: float
    user_burst: int
    dedupe_window_s: float
    fallback: Literal["local", "closed"]
    replica_count: int
    # A budget slot not used within this long of its time is given up (see _keep_slot).
    late_slot_s: float = LATE_SLOT_S


@dataclass(frozen=True, slots=True)
class LinkRules:
    default_redirect_url: str | None
    redirect_allowed_hosts: tuple[str, ...]
    unknown_country_allowed: bool


@dataclass(frozen=True, slots=True)
class LinkLifetimes:
    """How long a minted answer is good for. ONEPlatform does not document how long
    its links and THEOlive tokens live: these are the operator's settings
    (``LINK_TTL_S``, ``THEOLIVE_TOKEN_TTL_S``). A front end renews after
    ``refreshAfter``, a fixed share of the lifetime."""

    link_ttl_s: float  # HLS URLs and iGame player links
    theolive_token_ttl_s: float
    refresh_share: float = 0.8

    def stamps(self, kind: str, minted_at: float) -> tuple[float, float]:
        """(refreshAfter, expiresAt) for an answer of ``kind`` minted at ``minted_at``."""
        ttl = self.theolive_token_ttl_s if kind == "theolive" else self.link_ttl_s
        return minted_at + ttl * self.refresh_share, minted_at + ttl


@dataclass(frozen=True, slots=True)
class Candidate:
    """A play step that passed the local rules: ready to mint."""

    step: PlayStep
    stream: Stream
    redirect: str


@dataclass(frozen=True, slots=True)
class Tried:
    step: PlayStep
    code: str

    def as_json(self) -> dict[str, str]:
        return {"streamName": self.step.stream_name, "kind": self.step.kind, "code": self.code}


@dataclass(frozen=True, slots=True)
class Played:
    minted: Minted
    step: PlayStep


@dataclass(frozen=True, slots=True)
class Minted:
    body: bytes
    kind: str
    source: Literal["upstream", "dedupe"]
    refresh_after: float  # epoch seconds: the dedupe copy is kept no longer than this


# verdict -> (HTTP status, code, title, operationCode, what the event did, in words)
_STATUS_PROBLEMS: dict[StatusVerdict, tuple[int, str, str, int, str]] = {
    StatusVerdict.PENDING: (409, "event_pending", "Event has not started", 402, "has not started"),
    StatusVerdict.CLOSED: (410, "event_closed", "Event is over", 403, "is over"),
    StatusVerdict.VOID: (410, "event_cancelled", "Event was cancelled", 404, "was cancelled"),
}


class LinkService:
    def __init__(
        self,
        *,
        catalogue: Catalogue,
        client: OnePlatformClient,
        admission: LinkAdmission,
        limits: LinkLimits,
        rules: LinkRules,
        lifetimes: LinkLifetimes,
        watch: WatchRules,
        sessions: ViewingSessions,
        session_limits: SessionLimits | None,
        metrics: Metrics,
        wall: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._catalogue = catalogue
        self._client = client
        self._admission = admission
        self._limits = limits
        self._rules = rules
        self._lifetimes = lifetimes
        self._watch = watch
        self._sessions = sessions
        self._session_limits = session_limits
        self._metrics = metrics
        self._wall = wall
        self._sleep = sleep
        self._monotonic = monotonic
        local_rate = limits.rate_per_s / limits.replica_count
        self._local_buckets = {
            method: LocalTokenBucket(local_rate, limits.burst)
            for method in (STREAM_LINK, LIVE_STREAM)
        }
        self._writes: set[asyncio.Task[None]] = set()  # answers being stored for dedupe

    async def mint(
        self,
        *,
        principal: Principal,
        viewer: Viewer,
        event_id: str,
        stream_name: str,
        kind: LinkKind,
        redirect_url: str | None,
        session_id: str | None = None,
    ) -> Minted:
        """``session_id``: renewing the link of this viewing session (it goes on)."""
        event = await self._open_event(event_id)
        streams = await self._catalogue.event_streams(event_id)
        checked = self._check(event, streams, PlayStep(stream_name, kind), viewer, redirect_url)
        if isinstance(checked, GatewayError):
            raise self._refuse(_REFUSAL_REASONS[checked.code], checked)
        await self._watch_rules_allow(principal, viewer, event, checked)
        session = self._new_session(principal, event_id, session_id)
        try:
            return await self._mint_checked(principal, viewer, event_id, checked, session)
        except GatewayError:
            self._drop_session(principal, session)
            raise

    async def play(
        self,
        *,
        principal: Principal,
        viewer: Viewer,
        event_id: str,
        ladder: tuple[PlayStep, ...],
        ull: bool,
        redirect_url: str | None,
        session_id: str | None = None,
    ) -> Played:
        """Mint the first step of ``ladder`` that the rules allow. Steps the local rules
        refuse cost no upstream call; when the upstream refuses the one chosen for
        this viewer (e.g. 306: it places the viewer elsewhere), the next is tried, with
        at most ``MAX_PLAY_MINTS`` mint attempts in all. Every step refused: the first
        step's problem, with ``tried``."""
        try:
            event = await self._open_event(event_id)
        except GatewayError as exc:
            steps = candidates(ladder, ull=ull, stream_names=None)
            raise _with_tried(exc, [Tried(step, exc.code) for step in steps]) from None
        streams = await self._catalogue.event_streams(event_id)
        steps = candidates(ladder, ull=ull, stream_names=[s.name for s in streams])
        tried: list[Tried] = []
        first: GatewayError | None = None
        attempts = 0
        session = self._new_session(principal, event_id, session_id)  # one for every attempt
        for step in steps:
            checked = self._check(event, streams, step, viewer, redirect_url)
            if isinstance(checked, Candidate):
                if attempts == 0:  # per user and event: checked once, for the first
                    try:
                        await self._watch_rules_allow(principal, viewer, event, checked)
                    except GatewayError as exc:
                        raise _with_tried(exc, [*tried, Tried(step, exc.code)]) from None
                attempts += 1
                try:
                    minted = await self._mint_checked(principal, viewer, event_id, checked, session)
                except GatewayError as exc:
                    if exc.operation_code not in VIEWER_REFUSAL_CODES:
                        self._drop_session(principal, session)
                        raise _with_tried(exc, [*tried, Tried(step, exc.code)]) from None
                    checked = exc
                else:
                    return Played(minted, step)
            tried.append(Tried(step, checked.code))
            first = first or checked
            if attempts >= MAX_PLAY_MINTS:
                break
        self._drop_session(principal, session)
        if first is None:  # an empty ladder for this event: ULL only, and no ULL
            first = _no_stream()
        self._metrics.refusals.labels(_REFUSAL_REASONS.get(first.code, "stream")).inc()
        raise _with_tried(first, tried)

    async def _mint_checked(
        self,
        principal: Principal,
        viewer: Viewer,
        event_id: str,
        candidate: Candidate,
        session: NewSession | None,
    ) -> Minted:
        stream, kind, redirect = candidate.stream, candidate.step.kind, candidate.redirect
        methods = (STREAM_LINK, LIVE_STREAM) if kind == "raw" else (STREAM_LINK,)
        request_key = "\x1f".join(
            (
                principal.via,
                principal.user_id,
                event_id,
                stream.name,
                kind,
                str(viewer.ip),
                redirect,
            )
        )
        cached, store_answered = await self._admit(request_key, principal, methods, session)
        if cached is not None:
            self._metrics.link_minted(cached.kind, "dedupe")
            return cached
        extra: dict[str, Any] = {}
        if session is not None and store_answered:  # without the store, no session opened
            extra = {"sessionId": session.session_id, "heartbeatEveryS": session.limits.ttl_s / 2}
        minted = await self._call_upstream(principal, viewer, event_id, candidate, extra)
        self._metrics.link_minted(minted.kind, "upstream")
        # Kept no longer than the dedupe window, nor past refreshAfter: a renewal gets
        # a new link.
        keep_s = min(self._limits.dedupe_window_s, minted.refresh_after - self._wall())
        if store_answered and keep_s > 0:  # else a second timeout
            # Stored while the answer goes out: the write is not on the viewer's path.
            self._in_background(self._remember(request_key, minted, keep_s))
        return minted

    def _in_background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    def _new_session(
        self, principal: Principal, event_id: str, continued: str | None
    ) -> NewSession | None:
        """The session the link will open, or ``continued`` (a renewal's own session,
        which goes on and is not counted again)."""
        if self._session_limits is None:
            return None
        about: dict[str, object] = {"eventId": event_id, "startedAt": iso_utc(self._wall())}
        session_id = continued or secrets.token_urlsafe(16)
        return self._sessions.new(
            principal.user_id, session_id, self._session_limits, about, continued=bool(continued)
        )

    def _drop_session(self, principal: Principal, session: NewSession | None) -> None:
        """Nothing was minted: end the session the attempt may have opened (a renewal's
        session goes on: its player still plays the link it has)."""
        if session is not None and not session.continued:
            self._in_background(self._end_session(principal.user_id, session.session_id))

    async def _end_session(self, user_id: str, session_id: str) -> None:
        try:
            await self._sessions.end(user_id, session_id)
        except StoreUnavailable:
            self._metrics.redis_errors.labels("session_end").inc()

    async def _announce_evicted(self, user_id: str, session_ids: tuple[str, ...]) -> None:
        self._metrics.sessions_ended.labels("evicted").inc(len(session_ids))
        try:
            await self._sessions.announce(user_id, session_ids, "evicted")
        except StoreUnavailable:
            self._metrics.redis_errors.labels("session_announce").inc()

    async def _remember(self, request_key: str, minted: Minted, keep_s: float) -> None:
        try:
            await self._admission.remember(request_key, minted.body, keep_s)
        except StoreUnavailable:
            self._metrics.redis_errors.labels("dedupe_set").inc()

    async def close(self) -> None:
        """Let the answers still being stored finish (at shutdown)."""
        if self._writes:
            await asyncio.wait(self._writes, timeout=2.0)

    # --- rules (no upstream budget spent) ---------------------------------------

    async def _open_event(self, event_id: str) -> Event:
        """The event, if its status lets links be minted (else a refusal)."""
        found = await self._catalogue.find_event(event_id)
        if found is None:
            raise self._refuse("status", event_not_found(event_id))
        event = found.event
        verdict = status_verdict(
            event.event_status_code or None,
            event.start_time,
            datetime.fromtimestamp(self._wall(), UTC),
        )
        if verdict is StatusVerdict.UNKNOWN:
            raise self._refuse("status", event_not_found(event_id))
        if verdict is not StatusVerdict.PROCEED:
            status, code, title, operation_code, words = _STATUS_PROBLEMS[verdict]
            raise self._refuse(
                "status",
                GatewayError(
                    status,
                    code,
                    title,
                    f"The event {words} (status {event.event_status_code}); "
                    "links are minted only for events in progress.",
                    operation_code=operation_code,
                ),
            )
        return event

    async def _watch_rules_allow(
        self, principal: Principal, viewer: Viewer, event: Event, candidate: Candidate
    ) -> None:
        try:
            await self._watch.check(
                principal,
                event_id=event.event_id,
                sport_code=event.sport_code,
                stream_name=candidate.stream.name,
                country=viewer.location.country,
            )
        except GatewayError as exc:
            raise self._refuse("watch_rule", exc) from None

    def _check(
        self,
        event: Event,
        streams: tuple[Stream, ...],
        step: PlayStep,
        viewer: Viewer,
        redirect_url: str | None,
    ) -> Candidate | GatewayError:
        """The redirect URL, the stream's existence and the geo lists, for one step."""
        redirect = redirect_verdict(
            redirect_url,
            default=self._rules.default_redirect_url,
            allowed_hosts=self._rules.redirect_allowed_hosts,
        )
        if redirect.url is None:
            return GatewayError(
                422,
                "invalid_redirect_url",
                "Invalid redirect URL",
                f"redirectUrl refused ({redirect.reason}): it must be an absolute http(s) "
                "URL on an allowed host.",
                operation_code=305,
            )
        stream = _find_stream(streams, step.stream_name)
        if stream is None:
            return _no_stream()
        geo = geo_verdict(
            viewer.location,
            event_allow=event.geo_allow,
            event_block=event.geo_block,
            stream_allow=stream.geo_country_allow,
            stream_block=stream.geo_country_block,
            unknown_allowed=self._rules.unknown_country_allowed,
        )
        if not geo.allowed:
            where = viewer.location.subdivision or viewer.location.country or "unknown"
            return GatewayError(
                403,
                "geo_blocked",
                "Not available in your region",
                f"This stream is not available in the viewer's region ({where}).",
                operation_code=306,
                extra={"reason": geo.reason, "country": viewer.location.country},
            )
        return Candidate(step, stream, redirect.url)

    def _refuse(self, reason: str, error: GatewayError) -> GatewayError:
        self._metrics.refusals.labels(reason).inc()
        return error

    # --- budget ---------------------------------------------------------------

    async def _admit(
        self,
        request_key: str,
        principal: Principal,
        methods: tuple[str, ...],
        session: NewSession | None,
    ) -> tuple[Minted | None, bool]:
        """The deduplicated answer (or None), and whether the store answered."""
        limits = self._limits
        try:
            admission = await self._admission.admit(
                dedupe_key=request_key,
                user_key=f"{principal.via}\x1f{principal.user_id}",
                methods=methods,
                rate_per_s=limits.rate_per_s,
                burst=limits.burst,
                user_rate_per_s=limits.user_rate_per_s,
                user_burst=limits.user_burst,
                max_wait_ms=limits.max_wait_ms,
                session=session,
            )
        except StoreUnavailable:
            self._metrics.redis_errors.labels("link_admission").inc()
            await self._admit_locally(methods)
            return None, False
        if admission.outcome == "cached" and admission.cached is not None:
            data = orjson.loads(admission.cached)
            refresh_after = _epoch(data.get("refreshAfter")) or self._wall()
            minted = Minted(admission.cached, str(data.get("kind", "")), "dedupe", refresh_after)
            return minted, True
        if admission.outcome == "too_many_streams":
            raise self._refuse(
                "too_many_streams",
                GatewayError(
                    409,
                    "too_many_streams",
                    "Too many streams",
                    "This user already watches as many streams as allowed; stop one first.",
                    retry_after_s=admission.retry_after_s,
                ),
            )
        if admission.evicted:
            self._in_background(self._announce_evicted(principal.user_id, admission.evicted))
        if admission.outcome == "user_limited":
            raise self._refuse(
                "user_rate",
                GatewayError(
                    429,
                    "user_rate_limited",
                    "Too many link requests for this user",
                    "This user asked for links faster than allowed; slow down.",
                    retry_after_s=admission.retry_after_s,
                ),
            )
        if admission.outcome == "rate_limited":
            for method in methods:
                self._metrics.budget_decisions.labels(method, "refused").inc()
            raise self._refuse("rate", _budget_spent(admission.retry_after_s))
        for method in methods:
            decision = "waited" if admission.wait_s > 0 else "allowed"
            self._metrics.budget_decisions.labels(method, decision).inc()
            if admission.tokens_left is not None:
                self._metrics.budget_tokens_left.labels(method).set(admission.tokens_left)
        # Timed from the answer, not the question: a slow store round trip (a cold
        # connection, a script load) is no reason to give the slot up.
        await self._keep_slot(self._monotonic() + admission.wait_s, methods)
        return None, True

    async def _keep_slot(self, due: float, methods: tuple[str, ...]) -> None:
        """Wait for the reserved instant ``due`` (monotonic); refuse if it has already
        passed by more than the tolerance: a call sent now would arrive bunched with
        calls reserved after it."""
        now = self._monotonic()
        if due > now:
            await self._sleep(due - now)
            now = self._monotonic()
        if now - due > self._limits.late_slot_s:
            for method in methods:
                self._metrics.budget_decisions.labels(method, "late").inc()
            raise self._refuse(
                "late_slot",
                GatewayError(
                    429,
                    "rate_limited",
                    "Too many link requests",
                    "This replica is too busy to use its share of the link budget on time; "
                    "retry after the indicated time.",
                    retry_after_s=1.0,
                ),
            )

    async def _admit_locally(self, methods: tuple[str, ...]) -> None:
        """No shared store: this replica's share of the budget, or refuse (``closed``)."""
        if self._limits.fallback == "closed":
            raise self._refuse(
                "rate",
                GatewayError(
                    503,
                    "link_budget_unavailable",
                    "Link budget unavailable",
                    "The gateway cannot coordinate its link budget right now.",
                    retry_after_s=5,
                ),
            )
        max_wait_s = self._limits.max_wait_ms / 1000
        reserved_at = self._monotonic()
        reservations = [self._local_buckets[m].try_reserve(1, max_wait_s) for m in methods]
        refused = [r for r in reservations if not r.allowed]
        if refused:
            raise self._refuse("rate", _budget_spent(max(r.retry_after_s for r in refused)))
        wait_s = max(r.wait_s for r in reservations)
        for method in methods:
            self._metrics.budget_decisions.labels(method, "waited" if wait_s else "allowed").inc()
        await self._keep_slot(reserved_at + wait_s, methods)

    # --- upstream ---------------------------------------------------------------

    async def _call_upstream(
        self,
        principal: Principal,
        viewer: Viewer,
        event_id: str,
        candidate: Candidate,
        extra: dict[str, Any],
    ) -> Minted:
        """stream/link, then liveStream for raw links; ``extra`` joins the answer."""
        stream_name, kind = candidate.stream.name, candidate.step.kind
        try:
            link = await self._client.stream_link(
                user_id=principal.user_id,
                user_ip=str(viewer.ip),
                event_id=event_id,
                stream_name=stream_name,
                redirect_url=candidate.redirect,
                raw=kind == "raw",
            )
            if kind == "player":
                return self._minted(
                    {
                        "kind": "player",
                        "url": link.stream_link,
                        "eventId": event_id,
                        "streamName": stream_name,
                        "provider": link.provider,
                        **extra,
                    }
                )
            live = await self._client.live_stream(link.stream_link)
        except UpstreamError as exc:
            raise self._upstream_failed(exc) from None
        common = {
            "eventId": live.event_id or event_id,
            "streamName": stream_name,
            "transactionId": live.transaction_id,
            "cdn": live.content_delivery_network,
            **extra,
        }
        if live.stream_type == HLS_STREAM_TYPE:
            return self._minted({"kind": "hls", "url": live.stream_link, **common})
        if live.stream_type == THEOLIVE_STREAM_TYPE:
            return self._minted(
                {
                    "kind": "theolive",
                    "channelId": live.stream_link,
                    "token": live.stream_token,
                    **common,
                }
            )
        raise self._upstream_failed(
            UpstreamBadResponse(LIVE_STREAM, f"unknown StreamType {live.stream_type}")
        )

    def _minted(self, payload: dict[str, Any]) -> Minted:
        kind = str(payload["kind"])
        refresh_after, expires_at = self._lifetimes.stamps(kind, self._wall())
        payload["refreshAfter"] = iso_utc(refresh_after)
        payload["expiresAt"] = iso_utc(expires_at)
        return Minted(orjson.dumps(payload), kind, "upstream", refresh_after)

    def _upstream_failed(self, exc: UpstreamError) -> GatewayError:
        if isinstance(exc, OperationError) and exc.operation_code in OPERATOR_ACTION_CODES:
            log.error(
                "upstream_rejected_gateway",
                method=exc.method,
                operation_code=exc.operation_code,
                hint="check IGM_CUSTOMER_UID and that IGM_SERVER_IP is whitelisted",
            )
        else:
            log.warning("link_upstream_failed", method=exc.method, error=str(exc))
        return problem_from_upstream(exc)


def _find_stream(streams: tuple[Stream, ...], name: str) -> Stream | None:
    for stream in streams:
        if stream.name == name:
            return stream
    folded = name.casefold()
    for stream in streams:
        if stream.name.casefold() == folded:
            return stream
    return None


def _no_stream() -> GatewayError:
    return GatewayError(
        404,
        "stream_not_found",
        "Stream not found",
        "The event has no stream with this name; see its /streams.",
        operation_code=304,
    )


def _with_tried(error: GatewayError, tried: list[Tried]) -> GatewayError:
    """``error`` with the play steps tried and why each was refused."""
    return GatewayError(
        error.status,
        error.code,
        error.title,
        error.detail,
        operation_code=error.operation_code,
        retry_after_s=error.retry_after_s,
        extra={**error.extra, "tried": [t.as_json() for t in tried]},
        headers=error.headers,
    )


def _budget_spent(retry_after_s: float) -> GatewayError:
    return GatewayError(
        429,
        "rate_limited",
        "Too many link requests",
        "The fleet's link budget is spent for now; retry after the indicated time.",
        retry_after_s=retry_after_s,
    )


def _epoch(value: object) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def request_digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
