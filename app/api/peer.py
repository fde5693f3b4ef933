"""The caller's address for per-client limits (the live stream's per-IP cap, the admin
lockout): the socket peer, or, only when the peer is one of ``TRUSTED_PROXIES``, the
right-most untrusted ``X-Forwarded-For`` entry (``app/identity/viewer_ip.py``)."""

from __future__ import annotations

from fastapi import Request

from app.identity.viewer_ip import viewer_ip
from app.state import GatewayState


def client_address(state: GatewayState, request: Request) -> str:
    peer = request.client.host if request.client else None
    forwarded = request.headers.getlist("x-forwarded-for")
    address = viewer_ip(peer, forwarded, state.settings.trusted_proxies)
    return str(address) if address is not None else "unknown"
