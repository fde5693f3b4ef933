"""Configuration, read once from the environment (and an optional ``.env`` file).

Every name here is documented in ``.env.example``. Secrets are ``SecretStr``: their
values never appear in ``repr``, logs or error messages. ``load_settings`` turns a
validation failure into ``SettingsError`` with one line per bad setting, naming it
without echoing its value.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import (
    AnyHttpUrl,
    Field,
    FilePath,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from app.links.ladder import DEFAULT_LADDERS, DEVICES, PlayStep, parse_ladder
from app.settings import values
from app.settings.checks import apply_mode, check_agreement, production_problems
from app.settings.values import Network
from app.store import StoreConfig

TEST_API_URL = "https://stream-services-test.igamemedia.com/api"
TEST_PLAYER_API_URL = "https://player-test.igamemedia.com/api"


class SettingsError(Exception):
    """The configuration is missing or malformed; the message names the settings."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        hide_input_in_errors=True,
    )

    # --- ONEPlatform access -------------------------------------------------
    igm_mode: Literal["production", "simulator"] = "production"
    igm_customer_uid: SecretStr | None = None
    igm_api_url: AnyHttpUrl = AnyHttpUrl(TEST_API_URL)
    igm_player_api_url: AnyHttpUrl = AnyHttpUrl(TEST_PLAYER_API_URL)
    igm_server_ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None = None
    igm_connect_timeout_s: float = Field(default=2.0, gt=0)
    igm_read_timeout_s: float = Field(default=5.0, gt=0)
    igm_max_connections: int = Field(default=16, ge=1)
    igm_keepalive_expiry_s: float = Field(default=5.0, ge=0)
    # PEM bundle of the CAs to trust for the upstream and AUTH_JWKS_URL (unset: certifi's)
    igm_ca_bundle: FilePath | None = None

    # --- Shared store and fleet --------------------------------------------
    redis_mode: Literal["standalone", "cluster", "sentinel"] = "standalone"
    redis_url: str | None = None
    redis_sentinels: Annotated[list[tuple[str, int]], NoDecode] = []
    redis_sentinel_master: str | None = None
    replica_id: str | None = None
    replica_count: int | None = Field(default=None, ge=1)
    # uvicorn worker processes per replica (scripts/serve starts them; read here so that
    # production refuses several workers without a shared store)
    web_concurrency: int = Field(default=1, ge=1)

    # --- Event catalogue ---------------------------------------------------
    events_min_interval_s: float = Field(default=10.0, ge=0.1)
    events_gate_margin_s: float = Field(default=0.5, ge=0)
    catalogue_days_back: int = Field(default=1, ge=0, le=30)
    catalogue_days_ahead: int = Field(default=7, ge=0, le=60)
    catalogue_cold_wait_s: float = Field(default=2.0, ge=0, le=30)
    catalogue_sync_interval_s: float = Field(default=0.5, gt=0)
    streams_ttl_s: float = Field(default=30.0, gt=0)
    sports_ttl_s: float = Field(default=3600.0, gt=0)
    lease_ttl_s: float = Field(default=15.0, ge=1)

    # --- Links ---------------------------------------------------------------
    link_rate_per_s: float = Field(default=150.0, gt=0)
    link_burst: int = Field(default=10, ge=1)
    # The line (first come, first served) for the link budget: a request whose slot is
    # this close is held until it; a later one is answered 429 with its place, kept for
    # LINK_QUEUE_GRACE_S past its slot. Keep the hold plus IGM_READ_TIMEOUT_S below the
    # load balancer's read timeout (deploy/nginx/nginx.conf: 30 s).
    link_queue_hold_s: float = Field(default=8.0, ge=0, le=50)
    link_queue_grace_s: float = Field(default=10.0, ge=0.5, le=600)
    # Renewals: a share of the budget kept for renewals near their link's expiry; a
    # renewal that can come back after the line with this much time left is told to.
    link_renewal_share: float = Field(default=0.05, ge=0, le=0.5)
    link_renewal_lead_s: float = Field(default=30.0, gt=0, le=3600)
    link_user_rate_per_min: float = Field(default=30.0, gt=0)
    link_user_burst: int = Field(default=10, ge=1)
    link_dedupe_window_s: float = Field(default=5.0, ge=0)
    link_fallback: Literal["local", "closed"] = "local"
    # Redis unreachable: the per-user and session limits per replica (local) or 503.
    link_limits_fallback: Literal["local", "refuse"] = "local"
    default_redirect_url: AnyHttpUrl | None = None
    redirect_allowed_hosts: Annotated[list[str], NoDecode] = []
    # production refuses an empty REDIRECT_ALLOWED_HOSTS unless this says any https host
    redirect_allow_any: bool = False
    # ONEPlatform does not say how long its links and THEOlive tokens live: the
    # lifetimes minted answers announce (expiresAt; refreshAfter at 80 % of it).
    link_ttl_s: float = Field(default=1800.0, ge=1)
    theolive_token_ttl_s: float = Field(default=1800.0, ge=1)
    # POST /play: the STREAM:kind steps tried in order, per device.
    play_ladder_web: str = DEFAULT_LADDERS["web"]
    play_ladder_mobile: str = DEFAULT_LADDERS["mobile"]
    play_ladder_tablet: str = DEFAULT_LADDERS["tablet"]
    play_ladder_tv: str = DEFAULT_LADDERS["tv"]
    play_ladder_app: str = DEFAULT_LADDERS["app"]

    # --- Viewing sessions: concurrent streams per user -------------------------
    max_streams_per_user: int | None = Field(default=None, ge=1)
    session_ttl_s: float = Field(default=60.0, ge=1, le=3600)
    session_limit_policy: Literal["refuse", "evict_oldest"] = "refuse"

    # --- Watch rules (the operator's own conditions) --------------------------
    watch_require_claims: str = ""
    watch_callback_url: AnyHttpUrl | None = None
    watch_callback_secret: SecretStr | None = None
    watch_callback_timeout_s: float = Field(default=1.0, gt=0, le=10)
    watch_callback_cache_s: float = Field(default=60.0, ge=0)
    watch_callback_failure: Literal["deny", "allow"] = "deny"
    # The most an answer may be (bytes): a bigger one is a failed call.
    watch_callback_max_bytes: int = Field(default=4096, ge=64, le=1_048_576)

    # --- Audit trail ------------------------------------------------------------
    audit_redis_stream: str | None = Field(default=None, pattern=r"^[A-Za-z0-9:_{}.-]{1,128}$")
    audit_redis_stream_maxlen: int = Field(default=100_000, ge=100)
    audit_raw_ip: bool = False
    audit_user_id_key: SecretStr | None = None

    # --- Live event status (GET /v1/events/live) ----------------------------
    sse_max_clients: int = Field(default=10_000, ge=1)
    sse_heartbeat_s: float = Field(default=15.0, gt=0)
    sse_send_timeout_s: float = Field(default=10.0, gt=0)
    sse_resume_log: int = Field(default=1000, ge=1)
    # Streams one user (one IP) may hold across the fleet; 0: no limit.
    sse_max_per_user: int = Field(default=5, ge=0)
    sse_max_per_ip: int = Field(default=50, ge=0)

    # --- Viewer identity, IP and country ------------------------------------
    trusted_proxies: Annotated[list[Network], NoDecode] = []
    geo_country_header: str | None = None
    geo_subdivision_header: str | None = None
    geoip_db: Path | None = None
    geo_unknown_allowed: bool = False
    auth_jwt_secret: SecretStr | None = None
    auth_jwt_public_key: SecretStr | None = None
    auth_jwks_url: AnyHttpUrl | None = None
    auth_jwt_issuer: str | None = None
    auth_jwt_audience: str | None = None
    auth_jwt_leeway_s: float = Field(default=30.0, ge=0)
    # How long JWKS keys are still used when the JWKS URL cannot be fetched (counted
    # from the last good fetch); past it, tokens they would check are refused.
    auth_jwks_max_stale_s: float = Field(default=3600.0, ge=600, le=7 * 86400)
    # a token living longer than this (exp - iat, or exp - now) is refused; unset: no bound
    auth_jwt_max_age_s: float | None = Field(default=None, gt=0)
    api_keys: Annotated[list[SecretStr], NoDecode] = []

    # --- HTTP surface and operations ----------------------------------------
    cors_allow_origins: Annotated[list[str], NoDecode] = []
    # false: a gateway that only serves reads; link routes answer 404 links_disabled
    links_enabled: bool = True
    # The reference page at /demo in production (always at / in demo mode), and whether
    # GET /_demo/token hands anyone a viewer JWT signed with AUTH_JWT_SECRET (staging only)
    demo_page: bool = False
    demo_token_issuer: bool = False
    demo_vendor_dir: Path = Path("node_modules")
    # The player kit the reference page imports (served at /_demo/kit/)
    demo_kit_dir: Path = Path("clients/web/src")
    # Origins whose pages may frame the player page (/_demo/player/...), besides the
    # gateway's own: the Content-Security-Policy's frame-ancestors
    frame_ancestors: Annotated[list[str], NoDecode] = []
    log_format: Literal["json", "console"] = "json"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # Keys for /admin (X-Admin-Key); never the same as API_KEYS. Empty: /admin is shut.
    admin_api_keys: Annotated[list[SecretStr], NoDecode] = []
    admin_in_openapi: bool = False
    # Failed X-Admin-Key checks one client may make per window, fleet-wide, before 429.
    admin_max_failures: int = Field(default=10, ge=1)
    admin_failure_window_s: float = Field(default=300.0, ge=1)

    # Environment text to values (app/settings/values.py), in this order per setting.
    _comma_lists = field_validator(
        "redirect_allowed_hosts",
        "trusted_proxies",
        "api_keys",
        "admin_api_keys",
        "cors_allow_origins",
        "frame_ancestors",
        mode="before",
    )(values.comma_list)
    _origins = field_validator("frame_ancestors", mode="after")(values.origins)
    _networks = field_validator("trusted_proxies", mode="before")(values.networks)
    _redis_url = field_validator("redis_url", mode="after")(values.redis_url)
    _sentinels = field_validator("redis_sentinels", mode="before")(values.sentinels)
    _lower_hosts = field_validator("redirect_allowed_hosts", mode="after")(values.lower_hosts)
    _blank_is_unset = field_validator(
        "igm_customer_uid",
        "igm_server_ip",
        "igm_ca_bundle",
        "redis_url",
        "redis_sentinel_master",
        "replica_id",
        "replica_count",
        "default_redirect_url",
        "audit_redis_stream",
        "audit_user_id_key",
        "max_streams_per_user",
        "watch_callback_url",
        "watch_callback_secret",
        "geo_country_header",
        "geo_subdivision_header",
        "geoip_db",
        "auth_jwt_secret",
        "auth_jwt_public_key",
        "auth_jwks_url",
        "auth_jwt_issuer",
        "auth_jwt_audience",
        "auth_jwt_max_age_s",
        mode="before",
    )(values.blank_is_unset)
    _ladders = field_validator(
        "play_ladder_web",
        "play_ladder_mobile",
        "play_ladder_tablet",
        "play_ladder_tv",
        "play_ladder_app",
    )(values.ladder)
    _claim_rules = field_validator("watch_require_claims")(values.claim_rules)

    # Rules between settings (app/settings/checks.py), in this order.
    @model_validator(mode="after")
    def _mode_needs_credentials(self) -> Self:
        apply_mode(self)
        return self

    @model_validator(mode="after")
    def _production_is_safe(self) -> Self:
        problems = production_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @model_validator(mode="after")
    def _settings_agree(self) -> Self:
        check_agreement(self)
        return self

    def play_ladders(self) -> dict[str, tuple[PlayStep, ...]]:
        return {device: parse_ladder(getattr(self, f"play_ladder_{device}")) for device in DEVICES}

    @property
    def store_config(self) -> StoreConfig:
        """Where the shared store is (``shared`` False: the embedded in-process one)."""
        return StoreConfig(
            mode=self.redis_mode,
            url=self.redis_url,
            sentinels=tuple(self.redis_sentinels),
            sentinel_master=self.redis_sentinel_master,
        )

    @property
    def link_auth_configured(self) -> bool:
        return bool(
            self.api_keys or self.auth_jwt_secret or self.auth_jwt_public_key or self.auth_jwks_url
        )

    @property
    def demo_enabled(self) -> bool:
        """The demo stream, player page and reference page: demo mode, or DEMO_PAGE."""
        return self.igm_mode == "simulator" or self.demo_page

    @property
    def demo_tokens(self) -> bool:
        """Whether GET /_demo/token mints viewer JWTs: demo mode, or an explicit opt-in."""
        if self.auth_jwt_secret is None:
            return False
        return self.embedded_simulator or (self.demo_page and self.demo_token_issuer)

    @property
    def customer_uid(self) -> SecretStr:
        assert self.igm_customer_uid is not None  # guaranteed by the validator
        return self.igm_customer_uid

    @property
    def server_ip(self) -> str:
        assert self.igm_server_ip is not None  # guaranteed by the validator
        return str(self.igm_server_ip)

    @property
    def embedded_simulator(self) -> bool:
        """Demo mode with no upstream URL of its own: serve the simulator in-process."""
        return self.igm_mode == "simulator" and "igm_api_url" not in self.model_fields_set


def load_settings(**overrides: object) -> Settings:
    """Read the settings, or raise ``SettingsError`` naming every bad one (never a value)."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines: list[str] = []
        for error in exc.errors(include_input=False, include_url=False):
            # loc[0] is the setting; deeper parts name pydantic's union branches
            location = str(error["loc"][0]).upper() if error["loc"] else "settings"
            if not any(line.startswith(f"{location}: ") for line in lines):
                lines.append(f"{location}: {error['msg']}")
        raise SettingsError("invalid configuration: " + "; ".join(lines)) from None
