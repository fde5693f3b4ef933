"""Who is asking, for every route that needs a viewer, as FastAPI security
dependencies: the OpenAPI document carries their ``securitySchemes`` (so Swagger UI's
*Authorize* fills them in) and each operation's ``security``.

- ``viewerJwt``: ``Authorization: Bearer <JWT>`` (``HTTPBearer``), its ``sub`` the user;
- ``apiKey`` with ``userId``: ``X-API-Key`` and ``X-User-Id`` (``APIKeyHeader``), for
  an operator's back end, which vouches for the user it names.

``Credentials`` is what a request presented; ``authenticate`` checks it through the
configured ``Authenticator``, or raises a 401 problem (``unauthorized``). The link
routes authenticate inside their audit record (a refusal is recorded too); the
others take the ``Viewer`` principal directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from app.errors import GatewayError
from app.identity.auth import AuthError, Principal
from app.state import GatewayState, get_state

BEARER = "viewerJwt"
API_KEY = "apiKey"
USER_ID = "userId"
DEMO_TOKEN_PATH = "/_demo/token"  # noqa: S105 - a route, not a secret

bearer_scheme = HTTPBearer(
    scheme_name=BEARER,
    bearerFormat="JWT",
    description="A viewer's JWT; its `sub` is the user id.",
    auto_error=False,
)
api_key_scheme = APIKeyHeader(
    name="X-API-Key",
    scheme_name=API_KEY,
    description="An operator's API key (`API_KEYS`), from a back end only; "
    "always with `X-User-Id`.",
    auto_error=False,
)
user_id_scheme = APIKeyHeader(
    name="X-User-Id",
    scheme_name=USER_ID,
    description="The viewer's user id, with `X-API-Key`.",
    auto_error=False,
)

# Either requirement: the JWT, or the API key and the user id together.
VIEWER_SECURITY: list[dict[str, list[str]]] = [{BEARER: []}, {API_KEY: [], USER_ID: []}]


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a request presented: the ``Authorization`` header as sent (another scheme
    than Bearer is refused as a bad token, not ignored), the API key and the user id."""

    authorization: str | None
    api_key: str | None
    user_id: str | None


async def credentials(
    request: Request,
    _bearer: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
    api_key: Annotated[str | None, Security(api_key_scheme)],
    user_id: Annotated[str | None, Security(user_id_scheme)],
) -> Credentials:
    return Credentials(request.headers.get("authorization"), api_key, user_id)


CredentialsDep = Annotated[Credentials, Depends(credentials)]


async def authenticate(
    state: GatewayState, presented: Credentials, *, access_token: str | None = None
) -> Principal:
    """The principal behind ``presented``; where a browser cannot set headers
    (``EventSource``), a JWT in ``access_token`` stands for the bearer header. Never an
    API key from anywhere but its header."""
    authorization = presented.authorization
    if authorization is None and access_token is not None:
        authorization = f"Bearer {access_token}"
    try:
        return await state.authenticator.authenticate(
            authorization=authorization,
            api_key=presented.api_key,
            user_id=presented.user_id,
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


async def viewer(
    state: Annotated[GatewayState, Depends(get_state)], presented: CredentialsDep
) -> Principal:
    return await authenticate(state, presented)


Viewer = Annotated[Principal, Depends(viewer)]


def document_security(schema: dict[str, Any], *, demo_tokens: bool) -> None:
    """Tighten FastAPI's rendering of the schemes in ``schema`` (an OpenAPI document):
    an operation that takes the viewer's credentials needs the JWT, *or* the API key
    with the user id (FastAPI lists each scheme as an alternative of its own). With the
    demo token issuer, the bearer scheme says where a token comes from."""
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            names = {name for entry in operation.get("security", []) for name in entry}
            if {BEARER, API_KEY, USER_ID} <= names:
                operation["security"] = VIEWER_SECURITY
    schemes = schema.get("components", {}).get("securitySchemes", {})
    if demo_tokens and BEARER in schemes:
        schemes[BEARER]["description"] += (
            f" Demo: `GET {DEMO_TOKEN_PATH}` answers a 10-minute token as `accessToken`; "
            "paste it into *Authorize* (viewerJwt)."
        )
