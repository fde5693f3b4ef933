"""Rules between settings, run once every setting has its value.

- ``apply_mode``: demo mode's stand-in credentials (only where the upstream is the
  built-in simulator), and what production mode requires; the demo's public key and
  JWT secret never in front of an upstream of the operator's own.
- ``production_problems``: what would be unsafe in production, every problem at once.
- ``check_agreement``: settings that only make sense together (a public key and the
  audience it is for, sentinel names and sentinel mode...).
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from pydantic import AnyHttpUrl, SecretStr

if TYPE_CHECKING:
    from app.settings import Settings

SIMULATOR_CUSTOMER_UID = "demo-customer-uid"
SIMULATOR_API_KEY = "demo-api-key"
# Demo mode signs the demo page's viewer tokens with this (GET /_demo/token); a fixed
# value so that every replica of a demo fleet accepts the others' tokens.
SIMULATOR_JWT_SECRET = "demo-jwt-secret-for-the-simulator-only-0123456789"  # noqa: S105
SIMULATOR_REDIRECT_URL = "https://www.example.com/"
# Production keys (API_KEYS, ADMIN_API_KEYS) are at least this long: guessing one is out
# of reach (e.g. `openssl rand -hex 32`).
MIN_KEY_CHARS = 32


def apply_mode(settings: Settings) -> None:
    """Demo mode's stand-in values; the credentials production mode requires."""
    if settings.igm_mode == "simulator":
        if settings.igm_customer_uid is None:
            settings.igm_customer_uid = SecretStr(SIMULATOR_CUSTOMER_UID)
        if settings.igm_server_ip is None:
            settings.igm_server_ip = ipaddress.IPv4Address("127.0.0.1")
    if settings.embedded_simulator:
        # The demo's public credentials: only where the upstream is the built-in
        # simulator, never in front of an upstream of its own.
        if not settings.link_auth_configured:
            settings.api_keys = [SecretStr(SIMULATOR_API_KEY)]
            settings.auth_jwt_secret = SecretStr(SIMULATOR_JWT_SECRET)
        if settings.default_redirect_url is None:
            settings.default_redirect_url = AnyHttpUrl(SIMULATOR_REDIRECT_URL)
        return
    if settings.igm_mode == "simulator":
        _no_public_demo_credentials(settings)
        if settings.links_enabled and not settings.link_auth_configured:
            raise ValueError(
                "API_KEYS, AUTH_JWT_SECRET, AUTH_JWT_PUBLIC_KEY or AUTH_JWKS_URL must be "
                "set with IGM_API_URL: the demo credentials exist only with the built-in "
                "simulator (leave IGM_API_URL unset, or set LINKS_ENABLED=false)"
            )
        return
    missing = [
        name
        for name, value in (
            ("IGM_CUSTOMER_UID", settings.igm_customer_uid),
            ("IGM_SERVER_IP", settings.igm_server_ip),
        )
        if value is None or (isinstance(value, SecretStr) and not value.get_secret_value())
    ]
    if missing:
        raise ValueError(
            f"{' and '.join(missing)} must be set in production mode "
            "(or set IGM_MODE=simulator for the built-in demo upstream)"
        )
    if settings.links_enabled and not settings.link_auth_configured:
        raise ValueError(
            "API_KEYS, AUTH_JWT_SECRET, AUTH_JWT_PUBLIC_KEY or AUTH_JWKS_URL must be set "
            "so that link requests can authenticate (or set LINKS_ENABLED=false)"
        )
    _no_public_demo_credentials(settings)


def _no_public_demo_credentials(settings: Settings) -> None:
    """The demo key and JWT secret are in this project's documentation: anyone could
    use them against an upstream of the operator's own."""
    if any(key.get_secret_value() == SIMULATOR_API_KEY for key in settings.api_keys):
        raise ValueError(
            "API_KEYS holds the public demo key, which works only with the built-in "
            "simulator (IGM_MODE=simulator without IGM_API_URL)"
        )
    secret = settings.auth_jwt_secret
    if secret is not None and secret.get_secret_value() == SIMULATOR_JWT_SECRET:
        raise ValueError(
            "AUTH_JWT_SECRET is the public demo secret, which works only with the "
            "built-in simulator (IGM_MODE=simulator without IGM_API_URL)"
        )


def production_problems(settings: Settings) -> list[str]:
    """What would be unsafe in production (unless opted out of explicitly), one line a
    problem: production refuses to start with all of them in one message."""
    if settings.igm_mode != "production":
        return []
    problems: list[str] = []
    if not settings.store_config.shared:
        for name, count in (
            ("REPLICA_COUNT", settings.replica_count),
            ("WEB_CONCURRENCY", settings.web_concurrency),
        ):
            if count is not None and count > 1:
                problems.append(
                    f"REDIS_URL must be set when {name}={count}: the embedded store "
                    "serves one process, and each would spend the upstream budget alone"
                )
    if (
        settings.links_enabled
        and not settings.redirect_allowed_hosts
        and not settings.redirect_allow_any
    ):
        problems.append(
            "REDIRECT_ALLOWED_HOSTS must list the hosts a player may send viewers to "
            "(or set REDIRECT_ALLOW_ANY=true to accept any https host)"
        )
    for name, keys in (
        ("API_KEYS", settings.api_keys),
        ("ADMIN_API_KEYS", settings.admin_api_keys),
    ):
        if any(len(key.get_secret_value()) < MIN_KEY_CHARS for key in keys):
            problems.append(
                f"{name} must hold keys of at least {MIN_KEY_CHARS} characters in production mode"
            )
    if settings.audit_user_id_key is None:
        problems.append(
            "AUDIT_USER_ID_KEY must be set in production mode (without it, audit records "
            "hash user ids with plain SHA-256, which reverses for a guessable id)"
        )
    return problems


def check_agreement(settings: Settings) -> None:
    """Raise on the first pair of settings that disagree."""
    _asymmetric_jwt_names_its_tokens(settings)
    _demo_tokens_need_a_secret(settings)
    _admin_keys_are_their_own(settings)
    _store_settings_agree(settings)
    _burst_fits_the_rate(settings)


def _asymmetric_jwt_names_its_tokens(settings: Settings) -> None:
    if settings.auth_jwt_public_key is None and settings.auth_jwks_url is None:
        return
    missing = [
        name
        for name, value in (
            ("AUTH_JWT_AUDIENCE", settings.auth_jwt_audience),
            ("AUTH_JWT_ISSUER", settings.auth_jwt_issuer),
        )
        if not value
    ]
    if missing:
        raise ValueError(
            f"{' and '.join(missing)} must be set with AUTH_JWT_PUBLIC_KEY or "
            "AUTH_JWKS_URL: else a token the identity provider issued for another "
            "service, or another issuer's, would be accepted"
        )


def _demo_tokens_need_a_secret(settings: Settings) -> None:
    if settings.demo_token_issuer and settings.auth_jwt_secret is None:
        raise ValueError("DEMO_TOKEN_ISSUER needs AUTH_JWT_SECRET (HS256) to sign with")


def _admin_keys_are_their_own(settings: Settings) -> None:
    link_keys = {key.get_secret_value() for key in settings.api_keys}
    if any(key.get_secret_value() in link_keys for key in settings.admin_api_keys):
        raise ValueError("ADMIN_API_KEYS must not repeat a key of API_KEYS")


def _store_settings_agree(settings: Settings) -> None:
    cluster_seed = settings.redis_url is not None and not settings.redis_url.lower().startswith(
        "unix:"
    )
    if settings.redis_mode == "cluster" and not cluster_seed:
        raise ValueError(
            "REDIS_URL must name a seed node (redis:// or rediss://) when REDIS_MODE=cluster"
        )
    if settings.redis_mode == "sentinel":
        missing = [
            name
            for name, value in (
                ("REDIS_SENTINELS", settings.redis_sentinels),
                ("REDIS_SENTINEL_MASTER", settings.redis_sentinel_master),
            )
            if not value
        ]
        if missing:
            raise ValueError(f"{' and '.join(missing)} must be set when REDIS_MODE=sentinel")
    elif settings.redis_sentinels or settings.redis_sentinel_master:
        raise ValueError(
            "REDIS_SENTINELS and REDIS_SENTINEL_MASTER are used only with REDIS_MODE=sentinel"
        )


def _burst_fits_the_rate(settings: Settings) -> None:
    if settings.link_burst >= settings.link_rate_per_s:
        raise ValueError(
            "LINK_BURST must be smaller than LINK_RATE_PER_S (the bucket refills at "
            "rate - burst so that no second ever sees more than LINK_RATE_PER_S calls)"
        )
