"""Minting one checked candidate: the budget's admission, then the upstream, then the
answer a front end gets.

stream/link (``<name>-RAW`` for raw), and for raw links liveStream, which resolves
the reference to an HLS URL (StreamType 2) or a THEOlive channel + token (4). The
answer carries ``refreshAfter``/``expiresAt`` from the operator's lifetimes; it is
kept for dedupe (identical requests within ``LINK_DEDUPE_WINDOW_S``) no longer than
its ``refreshAfter``, written after the answer has gone out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import orjson
import structlog

from app.catalogue.snapshot import iso_utc
from app.errors import OPERATOR_ACTION_CODES, GatewayError, problem_from_upstream
from app.identity.auth import Principal
from app.links.background import BackgroundWrites
from app.links.budget import BudgetRequest, LinkBudget
from app.links.rules import Candidate, Viewer
from app.links.sessions import LinkSessions, SessionRef
from app.observability.metrics import Metrics
from app.ratelimit.admission import LinkAdmission
from app.store import StoreUnavailable
from app.upstream.client import LIVE_STREAM, STREAM_LINK, OnePlatformClient
from app.upstream.errors import OperationError, UpstreamBadResponse, UpstreamError
from app.upstream.models import HLS_STREAM_TYPE, THEOLIVE_STREAM_TYPE

log = structlog.get_logger(__name__)


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
class Minted:
    body: bytes
    kind: str
    source: Literal["upstream", "dedupe"]
    refresh_after: float  # epoch seconds: the dedupe copy is kept no longer than this
    expires_at: float = 0.0  # epoch seconds: until then, the viewer's next link is a renewal


@dataclass(frozen=True, slots=True)
class LinkRequest:
    """Who asks for a link (``principal``), from where (``viewer``), to which event."""

    principal: Principal
    viewer: Viewer
    event_id: str


class LinkMinter:
    def __init__(
        self,
        *,
        client: OnePlatformClient,
        budget: LinkBudget,
        answers: LinkAdmission,
        sessions: LinkSessions,
        lifetimes: LinkLifetimes,
        dedupe_window_s: float,
        metrics: Metrics,
        background: BackgroundWrites,
        clock: Callable[[], float],
    ) -> None:
        """``answers``: where answers are kept for dedupe; ``clock``: epoch seconds."""
        self._client = client
        self._budget = budget
        self._answers = answers
        self._sessions = sessions
        self._lifetimes = lifetimes
        self._dedupe_window_s = dedupe_window_s
        self._metrics = metrics
        self._background = background
        self._clock = clock

    async def mint(self, request: LinkRequest, candidate: Candidate, session: SessionRef) -> Minted:
        principal, viewer, event_id = request.principal, request.viewer, request.event_id
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
        # Who keeps a place in the line, and whose unexpired link makes this a renewal.
        viewer_key = "\x1f".join((principal.via, principal.user_id, event_id, stream.name, kind))
        asked = session.for_stream(event_id, stream.name, self._clock())
        admitted = await self._budget.admit(
            BudgetRequest(
                request_key=request_key,
                user_key=f"{principal.via}\x1f{principal.user_id}",
                viewer_key=viewer_key,
                methods=methods,
                session=asked,
            ),
            on_evicted=lambda ids: self._sessions.evicted(principal.user_id, ids),
        )
        if admitted.cached is not None:
            cached = self._deduped(admitted.cached)
            self._metrics.link_minted(cached.kind, "dedupe")
            return cached
        extra: dict[str, Any] = {}
        # Without the store, no session is opened (the limits were kept locally).
        if asked is not None and admitted.session_id:
            session.admitted(asked, admitted.session_id)
            extra = {"sessionId": admitted.session_id, "heartbeatEveryS": asked.limits.ttl_s / 2}
        minted = await self._call_upstream(principal, viewer, event_id, candidate, extra)
        self._metrics.link_minted(minted.kind, "upstream")
        # Kept no longer than the dedupe window, nor past refreshAfter: a renewal gets
        # a new link.
        now = self._clock()
        keep_s = max(0.0, min(self._dedupe_window_s, minted.refresh_after - now))
        if admitted.shared:  # else a second timeout
            # Stored while the answer goes out: the write is not on the viewer's path.
            self._background.start(self._remember(request_key, viewer_key, minted, keep_s))
        else:
            self._budget.remember_locally(viewer_key, minted.expires_at - now)
        return minted

    def _deduped(self, body: bytes) -> Minted:
        data = orjson.loads(body)
        refresh_after = _epoch(data.get("refreshAfter")) or self._clock()
        return Minted(body, str(data.get("kind", "")), "dedupe", refresh_after)

    async def _remember(
        self, request_key: str, viewer_key: str, minted: Minted, keep_s: float
    ) -> None:
        """The answer for dedupe, and the viewer's current link's expiry (its next
        request until then is a renewal, with that deadline)."""
        try:
            await self._answers.remember(
                request_key,
                minted.body,
                keep_s,
                viewer_key=viewer_key,
                expires_at_s=minted.expires_at,
                expires_in_s=minted.expires_at - self._clock(),
            )
        except StoreUnavailable:
            self._metrics.redis_errors.labels("dedupe_set").inc()

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
                return self._answer(
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
            raise upstream_failed(exc) from None
        common = {
            "eventId": live.event_id or event_id,
            "streamName": stream_name,
            "transactionId": live.transaction_id,
            "cdn": live.content_delivery_network,
            **extra,
        }
        if live.stream_type == HLS_STREAM_TYPE:
            return self._answer({"kind": "hls", "url": live.stream_link, **common})
        if live.stream_type == THEOLIVE_STREAM_TYPE:
            return self._answer(
                {
                    "kind": "theolive",
                    "channelId": live.stream_link,
                    "token": live.stream_token,
                    **common,
                }
            )
        raise upstream_failed(
            UpstreamBadResponse(LIVE_STREAM, f"unknown StreamType {live.stream_type}")
        )

    def _answer(self, payload: dict[str, Any]) -> Minted:
        kind = str(payload["kind"])
        refresh_after, expires_at = self._lifetimes.stamps(kind, self._clock())
        payload["refreshAfter"] = iso_utc(refresh_after)
        payload["expiresAt"] = iso_utc(expires_at)
        return Minted(orjson.dumps(payload), kind, "upstream", refresh_after, expires_at)


def upstream_failed(exc: UpstreamError) -> GatewayError:
    """Logged for the operator with ONEPlatform's own text (scrubbed of the
    customerUid), translated once for the viewer without it."""
    if isinstance(exc, OperationError) and exc.operation_code in OPERATOR_ACTION_CODES:
        log.error(
            "upstream_rejected_gateway",
            method=exc.method,
            operation_code=exc.operation_code,
            error=str(exc),
            hint="check IGM_CUSTOMER_UID and that IGM_SERVER_IP is whitelisted",
        )
    else:
        log.warning("link_upstream_failed", method=exc.method, error=str(exc))
    return problem_from_upstream(exc)


def _epoch(value: object) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None
