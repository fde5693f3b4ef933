"""Who is asking, for every route that needs a viewer: the request's credentials
through the configured ``Authenticator``, or a 401 problem (``unauthorized``)."""

from __future__ import annotations

from starlette.datastructures import Headers

from app.errors import GatewayError
from app.identity.auth import AuthError, Principal
from app.state import GatewayState


async def authenticate(
    state: GatewayState, headers: Headers, *, access_token: str | None = None
) -> Principal:
    """``Authorization: Bearer <JWT>`` or ``X-API-Key`` + ``X-User-Id``; where a
    browser cannot set headers (``EventSource``), a JWT in ``access_token`` stands for
    the bearer header. Never an API key from anywhere but its header."""
    authorization = headers.get("authorization")
    if authorization is None and access_token is not None:
        authorization = f"Bearer {access_token}"
    try:
        return await state.authenticator.authenticate(
            authorization=authorization,
            api_key=headers.get("x-api-key"),
            user_id=headers.get("x-user-id"),
        )
    except AuthError as exc:
        state.metrics.refusals.labels("auth").inc()
        raise GatewayError(
            401,
            "unauthorized",
            "Unauthorized",
            f"Authentication failed: {exc}.",
            extra={"reason": str(exc.reason)},
            headers={"WWW-Authenticate": 'Bearer realm="oneplatform-gateway"'},
        ) from None
