"""``POST /v1/events/{eventId}/links``: mint a viewer's HLS, THEOlive or player link."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Request
from starlette.datastructures import Headers
from starlette.responses import Response

from app.api.auth import authenticate
from app.api.problems import problem_responses
from app.api.schemas import LinkOut, LinkRequestIn
from app.errors import GatewayError
from app.identity.viewer_ip import is_trusted, parse_ip, viewer_ip
from app.links.service import Viewer
from app.state import GatewayState, get_state

router = APIRouter(prefix="/v1", tags=["links"])
StateDep = Annotated[GatewayState, Depends(get_state)]

NO_STORE = {"Cache-Control": "no-store"}


def resolve_viewer(state: GatewayState, peer: str | None, headers: Headers) -> Viewer:
    """The viewer's IP and country: from the socket peer, or, only when the peer is a
    trusted proxy, from X-Forwarded-For and the configured country header."""
    trusted = state.settings.trusted_proxies
    peer_ip = parse_ip(peer) if peer else None
    if peer_ip is None:
        raise GatewayError(
            400, "viewer_ip_unknown", "Viewer IP unknown", "No usable client address."
        )
    from_proxy = bool(trusted) and is_trusted(peer_ip, trusted)
    ip = peer_ip  # an untrusted peer is the viewer: its X-Forwarded-For is not read
    if from_proxy:
        ip = viewer_ip(peer, headers.getlist("x-forwarded-for"), trusted) or peer_ip
    location = state.countries.resolve(ip, headers, from_trusted_proxy=from_proxy)
    return Viewer(ip, location)


async def mint_answer(
    state: GatewayState, peer: str | None, headers: Headers, event_id: str, body: LinkRequestIn
) -> bytes:
    """The JSON answer to a link request (``GatewayError`` for every refusal): who is
    asking, from where, then the link service. Used by the route below and by
    ``app/api/fast_links.py``."""
    # Credentials are read from the headers directly: declared as Header() parameters
    # (they are not in the OpenAPI document anyway) they cost more to extract than the
    # body does to validate.
    principal = await authenticate(state, headers)
    viewer = resolve_viewer(state, peer, headers)
    minted = await state.links.mint(
        principal=principal,
        viewer=viewer,
        event_id=event_id,
        stream_name=body.stream_name,
        kind=body.kind,
        redirect_url=body.redirect_url,
    )
    return minted.body


@router.post(
    "/events/{eventId}/links",
    response_model=LinkOut,
    summary="Mint a stream link for the calling viewer",
    responses=problem_responses(
        "invalid_request",
        "unauthorized",
        "event_not_found",
        "stream_not_found",
        "event_pending",
        "event_closed",
        "geo_blocked",
        "invalid_redirect_url",
        "rate_limited",
        "upstream_error",
        "upstream_unavailable",
    ),
)
async def mint_link(
    request: Request,
    state: StateDep,
    event_id: Annotated[str, Path(alias="eventId", min_length=1, max_length=128)],
    body: Annotated[LinkRequestIn, Body()],
) -> Response:
    peer = request.client.host if request.client else None
    answer = await mint_answer(state, peer, request.headers, event_id, body)
    return Response(answer, media_type="application/json", headers=NO_STORE)
