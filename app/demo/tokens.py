"""Viewer JWTs for the demo page (``GET /_demo/token``): HS256 with the gateway's own
``AUTH_JWT_SECRET``, a random ``sub`` and a short life. Served only in demo mode or with
the explicit ``DEMO_TOKEN_ISSUER=true`` opt-in (``Settings.demo_tokens``)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

import jwt
from pydantic import SecretStr

TOKEN_LIFETIME_S = 600


@dataclass(frozen=True, slots=True)
class DemoToken:
    access_token: str
    user_id: str
    expires_at: int  # epoch seconds


@dataclass(frozen=True, slots=True)
class DemoTokenIssuer:
    secret: SecretStr
    issuer: str | None
    audience: str | None
    wall: Callable[[], float]
    lifetime_s: int = TOKEN_LIFETIME_S

    def mint(self) -> DemoToken:
        now = int(self.wall())
        user_id = f"demo-viewer-{secrets.token_hex(6)}"
        claims: dict[str, object] = {"sub": user_id, "iat": now, "exp": now + self.lifetime_s}
        if self.issuer:
            claims["iss"] = self.issuer
        if self.audience:
            claims["aud"] = self.audience
        token = jwt.encode(claims, self.secret.get_secret_value(), algorithm="HS256")
        return DemoToken(token, user_id, now + self.lifetime_s)
