"""``POST /v1/events/{eventId}/links``: mint a viewer's HLS, THEOlive or player link;
``POST /v1/events/{eventId}/play``: the link that fits a device, in one call."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Body, Depends, Path, Request
from starlette.datastructures import Headers
from starlette.responses import Response

from app.api.auth import CredentialsDep, authenticate
from app.api.problems import problem_responses
from app.api.schemas import LinkOut, LinkRequestIn, PlayOut, PlayRequestIn
from app.audit import AuditRecord, Decision, now_iso
from app.errors import UPSTREAM_CODES, GatewayError, problem
from app.identity.auth import Principal
from app.identity.viewer_ip import Network, is_trusted, parse_ip, viewer_ip
from app.links.minting import Minted
from app.links.play import play_ladder
from app.links.rules import Viewer
from app.observability.context import current_summary
from app.state import GatewayState, get_state

router = APIRouter(prefix="/v1", tags=["links"])
StateDep = Annotated[GatewayState, Depends(get_state)]

NO_STORE = {"Cache-Control": "no-store"}
LINK_PROBLEMS = problem_responses(
    "invalid_request",
    "unauthorized",
    "links_disabled",
    "viewer_ip_unknown",
    "event_not_found",
    "event_pending",
    "event_closed",
    "event_cancelled",
    "stream_not_found",
    "invalid_redirect_url",
    "geo_blocked",
    "watch_rule_denied",
    "too_many_streams",
    "user_rate_limited",
    "rate_limited",
    "link_budget_unavailable",
    "link_limits_unavailable",
    "catalogue_warming",
    *UPSTREAM_CODES,
)


def resolve_viewer(state: GatewayState, peer: str | None, headers: Headers) -> Viewer:
    """The viewer's IP and country: from the socket peer, or, only when the peer is a
    trusted proxy, from X-Forwarded-For and the configured country header."""
    trusted = state.settings.trusted_proxies
    peer_ip = parse_ip(peer) if peer else None
    if peer_ip is None:
        raise problem("viewer_ip_unknown")
    from_proxy = bool(trusted) and is_trusted(peer_ip, trusted)
    ip = peer_ip  # an untrusted peer is the viewer: its X-Forwarded-For is not read
    if from_proxy:
        ip = viewer_ip(peer, headers.getlist("x-forwarded-for"), trusted) or peer_ip
    location = state.countries.resolve(ip, headers, from_trusted_proxy=from_proxy)
    return Viewer(ip, location)


@dataclass(slots=True)
class PendingDecision:
    """What is known of one link decision so far, for its audit record."""

    route: str
    event_id: str
    stream_name: str | None
    kind: str | None
    principal: Principal | None = None
    viewer: Viewer | None = None
    minted: Minted | None = None


@contextmanager
def audited(state: GatewayState, pending: PendingDecision) -> Iterator[None]:
    """One audit record for the decision made inside: minted, deduped, or refused with
    the problem's code (``internal_error`` for anything unexpected)."""
    try:
        yield
    except GatewayError as exc:
        _record(state, pending, "refused", exc.code)
        raise
    except Exception:
        _record(state, pending, "refused", "internal_error")
        raise
    else:
        assert pending.minted is not None
        deduped = pending.minted.source == "dedupe"
        _record(state, pending, "deduped" if deduped else "minted", None)


def _record(
    state: GatewayState, pending: PendingDecision, decision: Decision, code: str | None
) -> None:
    principal, viewer, minted = pending.principal, pending.viewer, pending.minted
    transaction_id = None
    if minted is not None:
        transaction_id = orjson.loads(minted.body).get("transactionId")
    summary = current_summary()
    state.audit.record(
        AuditRecord(
            time=now_iso(),
            request_id=summary.request_id if summary else None,
            route=pending.route,
            user=state.audit.hash_user(principal.user_id) if principal else None,
            via=principal.via if principal else None,
            event_id=pending.event_id,
            stream_name=pending.stream_name,
            kind=pending.kind,
            link=minted.kind if minted else None,
            country=viewer.location.country if viewer else None,
            ip=str(viewer.ip) if viewer and state.audit.raw_ip else None,
            decision=decision,
            code=code,
            transaction_id=transaction_id if isinstance(transaction_id, str) else None,
        )
    )


# A link the upstream gave as a path (the demo's ``/_demo/hls/...`` and
# ``/_demo/player/...``): made absolute against the origin the client asked, so that a
# page on another origin plays it as it is.
RELATIVE_URL = b'"url":"/'
HOST = re.compile(r"^[A-Za-z0-9.-]+(?::[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](?::[0-9]{1,5})?$")


def request_origin(request: Request, trusted: Sequence[Network]) -> str:
    """The origin the client used: its ``Host``, and the scheme of its connection (or
    ``X-Forwarded-Proto`` from a trusted proxy, which terminates TLS)."""
    scheme = request.url.scheme
    peer = parse_ip(request.client.host) if request.client else None
    if trusted and peer is not None and is_trusted(peer, trusted):
        forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
        if forwarded in ("http", "https"):
            scheme = forwarded
    host = request.headers.get("host", "")
    if not HOST.match(host):
        server = request.scope.get("server") or ("localhost", None)
        host = server[0] if server[1] is None else f"{server[0]}:{server[1]}"
    return f"{scheme}://{host}{request.scope.get('root_path', '')}"


def absolute_url(answer: dict[str, Any], origin: str) -> None:
    url = answer.get("url")
    if isinstance(url, str) and url.startswith("/") and not url.startswith("//"):
        answer["url"] = origin + url


def links_enabled(state: GatewayState) -> None:
    """A gateway started with ``LINKS_ENABLED=false`` mints nothing."""
    if not state.settings.links_enabled:
        raise problem("links_disabled")


def peer_of(request: Request) -> str | None:
    return request.client.host if request.client else None


@router.post(
    "/events/{eventId}/links",
    response_model=LinkOut,
    summary="Mint a stream link for the calling viewer",
    responses=LINK_PROBLEMS,
)
async def mint_link(
    request: Request,
    state: StateDep,
    presented: CredentialsDep,
    event_id: Annotated[str, Path(alias="eventId", min_length=1, max_length=128)],
    body: Annotated[LinkRequestIn, Body()],
) -> Response:
    links_enabled(state)
    pending = PendingDecision("links", event_id, body.stream_name, body.kind)
    with audited(state, pending):
        pending.principal = await authenticate(state, presented)
        pending.viewer = resolve_viewer(state, peer_of(request), request.headers)
        pending.minted = await state.links.mint(
            principal=pending.principal,
            viewer=pending.viewer,
            event_id=event_id,
            stream_name=body.stream_name,
            kind=body.kind,
            redirect_url=body.redirect_url,
            session_id=body.session_id,
        )
    body_out = pending.minted.body
    if RELATIVE_URL in body_out:
        minted = orjson.loads(body_out)
        absolute_url(minted, request_origin(request, state.settings.trusted_proxies))
        body_out = orjson.dumps(minted)
    return Response(body_out, media_type="application/json", headers=NO_STORE)


@router.post(
    "/events/{eventId}/play",
    response_model=PlayOut,
    summary="Play an event: the stream and kind that fit the device, minted in one call",
    description=(
        "The gateway walks the device's ladder (settings `PLAY_LADDER_<DEVICE>`, e.g. "
        "`ULL:raw,HLS:raw,HLS:player`), checks each step locally (status, geo lists, the "
        "stream, the redirect URL) and mints the first that passes, with at most two "
        "mint attempts upstream. When every step is refused, the problem is the first "
        "step's, with a `tried` list of `{streamName, kind, code}`."
    ),
    responses=LINK_PROBLEMS,
)
async def play(
    request: Request,
    state: StateDep,
    presented: CredentialsDep,
    event_id: Annotated[str, Path(alias="eventId", min_length=1, max_length=128)],
    body: Annotated[PlayRequestIn, Body()],
) -> Response:
    links_enabled(state)
    pending = PendingDecision("play", event_id, None, None)
    with audited(state, pending):
        pending.principal = await authenticate(state, presented)
        pending.viewer = resolve_viewer(state, peer_of(request), request.headers)
        played = await play_ladder(
            state.links,
            principal=pending.principal,
            viewer=pending.viewer,
            event_id=event_id,
            ladder=state.ladders[body.device],
            ull=body.ull,
            redirect_url=body.redirect_url,
            session_id=body.session_id,
        )
        pending.minted = played.minted
        pending.stream_name, pending.kind = played.step.stream_name, played.step.kind
    answer = orjson.loads(played.minted.body)
    answer["device"] = body.device
    answer["choice"] = {"streamName": played.step.stream_name, "kind": played.step.kind}
    absolute_url(answer, request_origin(request, state.settings.trusted_proxies))
    return Response(orjson.dumps(answer), media_type="application/json", headers=NO_STORE)
