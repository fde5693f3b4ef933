"""Configuration, read once from the environment (and an optional ``.env`` file).

Every name here is documented in ``.env.example``. Secrets are ``SecretStr``: their
values never appear in ``repr``, logs or error messages. ``load_settings`` turns a
validation failure into ``SettingsError`` with one line per bad setting, naming it
without echoing its value.
"""

from __future__ import annotations

import ipaddress
import re
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

from app.links.ladder import DEFAULT_LADDERS, DEVICES, LadderError, PlayStep, parse_ladder
from app.store import StoreConfig
from app.watch.claims import ClaimRuleError, parse_claim_rules

TEST_API_URL = "https://stream-services-test.igamemedia.com/api"
TEST_PLAYER_API_URL = "https://player-test.igamemedia.com/api"
SIMULATOR_CUSTOMER_UID = "demo-customer-uid"
SIMULATOR_API_KEY = "demo-api-key"
# Demo mode signs the demo page's viewer tokens with this (GET /_demo/token); a fixed
# value so that every replica of a demo fleet accepts the others' tokens.
SIMULATOR_JWT_SECRET = "demo-jwt-secret-for-the-simulator-only-0123456789"  # noqa: S105
SIMULATOR_REDIRECT_URL = "https://www.example.com/"
# Production keys (API_KEYS, ADMIN_API_KEYS) are at least this long: guessing one is out
# of reach (e.g. `openssl rand -hex 32`).
MIN_KEY_CHARS = 32

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_ORIGIN = re.compile(
    r"https?://(?:[A-Za-z0-9-]+\.)*[A-Za-z0-9-]+(?::[0-9]{1,5})?|https?://\[[0-9A-Fa-f:.]+\](?::[0-9]{1,5})?"
)


class SettingsError(Exception):
    """The configuration is missing or malformed; the message names the settings."""


def _split(value: object) -> object:
    """Comma-separated environment values become lists; blanks are dropped."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


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

    _split_lists = field_validator(
        "redirect_allowed_hosts",
        "trusted_proxies",
        "api_keys",
        "admin_api_keys",
        "cors_allow_origins",
        "frame_ancestors",
        mode="before",
    )(_split)

    @field_validator("frame_ancestors", mode="after")
    @classmethod
    def _origins_only(cls, value: list[str]) -> list[str]:
        for origin in value:
            if not _ORIGIN.fullmatch(origin):
                raise ValueError("expected a comma list of origins (https://host[:port])")
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _parse_networks(cls, value: object) -> object:
        value = _split(value)
        if not isinstance(value, list):
            return value
        try:
            return [ipaddress.ip_network(str(item), strict=False) for item in value]
        except ValueError:
            # ipaddress quotes the input; a secret pasted here must not be printed
            raise ValueError("expected a comma list of CIDR networks") from None

    @field_validator("redis_url", mode="after")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.lower().startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("expected a redis://, rediss:// or unix:// URL")
        return value

    @field_validator("redis_sentinels", mode="before")
    @classmethod
    def _parse_sentinels(cls, value: object) -> object:
        value = _split(value)
        if not isinstance(value, list):
            return value
        sentinels: list[tuple[str, int]] = []
        for item in value:
            if isinstance(item, tuple | list):
                sentinels.append((str(item[0]), int(item[1])))
                continue
            host, _, port = str(item).rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError("expected a comma list of host:port")
            sentinels.append((host.strip("[]"), int(port)))
        return sentinels

    @field_validator("redirect_allowed_hosts", mode="after")
    @classmethod
    def _lower_hosts(cls, value: list[str]) -> list[str]:
        return [host.lower() for host in value]

    @field_validator(
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
    )
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        """``NAME=`` (as a .env template leaves it) means unset, not an empty value."""
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _production_needs_credentials(self) -> Self:
        if self.igm_mode == "simulator":
            if self.igm_customer_uid is None:
                self.igm_customer_uid = SecretStr(SIMULATOR_CUSTOMER_UID)
            if self.igm_server_ip is None:
                self.igm_server_ip = ipaddress.IPv4Address("127.0.0.1")
        if self.embedded_simulator:
            # The demo's public credentials: only where the upstream is the built-in
            # simulator, never in front of an upstream of its own.
            if not self.link_auth_configured:
                self.api_keys = [SecretStr(SIMULATOR_API_KEY)]
                self.auth_jwt_secret = SecretStr(SIMULATOR_JWT_SECRET)
            if self.default_redirect_url is None:
                self.default_redirect_url = AnyHttpUrl(SIMULATOR_REDIRECT_URL)
            return self
        if self.igm_mode == "simulator":
            self._no_public_demo_credentials()
            if self.links_enabled and not self.link_auth_configured:
                raise ValueError(
                    "API_KEYS, AUTH_JWT_SECRET, AUTH_JWT_PUBLIC_KEY or AUTH_JWKS_URL must be "
                    "set with IGM_API_URL: the demo credentials exist only with the built-in "
                    "simulator (leave IGM_API_URL unset, or set LINKS_ENABLED=false)"
                )
            return self
        missing = [
            name
            for name, value in (
                ("IGM_CUSTOMER_UID", self.igm_customer_uid),
                ("IGM_SERVER_IP", self.igm_server_ip),
            )
            if value is None or (isinstance(value, SecretStr) and not value.get_secret_value())
        ]
        if missing:
            raise ValueError(
                f"{' and '.join(missing)} must be set in production mode "
                "(or set IGM_MODE=simulator for the built-in demo upstream)"
            )
        if self.links_enabled and not self.link_auth_configured:
            raise ValueError(
                "API_KEYS, AUTH_JWT_SECRET, AUTH_JWT_PUBLIC_KEY or AUTH_JWKS_URL must be set "
                "so that link requests can authenticate (or set LINKS_ENABLED=false)"
            )
        self._no_public_demo_credentials()
        return self

    def _no_public_demo_credentials(self) -> None:
        """The demo key and JWT secret are in this project's documentation: anyone could
        use them against an upstream of the operator's own."""
        if any(key.get_secret_value() == SIMULATOR_API_KEY for key in self.api_keys):
            raise ValueError(
                "API_KEYS holds the public demo key, which works only with the built-in "
                "simulator (IGM_MODE=simulator without IGM_API_URL)"
            )
        secret = self.auth_jwt_secret
        if secret is not None and secret.get_secret_value() == SIMULATOR_JWT_SECRET:
            raise ValueError(
                "AUTH_JWT_SECRET is the public demo secret, which works only with the "
                "built-in simulator (IGM_MODE=simulator without IGM_API_URL)"
            )

    @model_validator(mode="after")
    def _production_is_safe(self) -> Self:
        """What would be unsafe in production refuses to start, unless opted out of
        explicitly; every problem in one line."""
        if self.igm_mode != "production":
            return self
        problems: list[str] = []
        if not self.store_config.shared:
            for name, count in (
                ("REPLICA_COUNT", self.replica_count),
                ("WEB_CONCURRENCY", self.web_concurrency),
            ):
                if count is not None and count > 1:
                    problems.append(
                        f"REDIS_URL must be set when {name}={count}: the embedded store "
                        "serves one process, and each would spend the upstream budget alone"
                    )
        if self.links_enabled and not self.redirect_allowed_hosts and not self.redirect_allow_any:
            problems.append(
                "REDIRECT_ALLOWED_HOSTS must list the hosts a player may send viewers to "
                "(or set REDIRECT_ALLOW_ANY=true to accept any https host)"
            )
        for name, keys in (("API_KEYS", self.api_keys), ("ADMIN_API_KEYS", self.admin_api_keys)):
            if any(len(key.get_secret_value()) < MIN_KEY_CHARS for key in keys):
                problems.append(
                    f"{name} must hold keys of at least {MIN_KEY_CHARS} characters in "
                    "production mode"
                )
        if self.audit_user_id_key is None:
            problems.append(
                "AUDIT_USER_ID_KEY must be set in production mode (without it, audit records "
                "hash user ids with plain SHA-256, which reverses for a guessable id)"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @model_validator(mode="after")
    def _asymmetric_jwt_names_its_tokens(self) -> Self:
        if self.auth_jwt_public_key is None and self.auth_jwks_url is None:
            return self
        missing = [
            name
            for name, value in (
                ("AUTH_JWT_AUDIENCE", self.auth_jwt_audience),
                ("AUTH_JWT_ISSUER", self.auth_jwt_issuer),
            )
            if not value
        ]
        if missing:
            raise ValueError(
                f"{' and '.join(missing)} must be set with AUTH_JWT_PUBLIC_KEY or "
                "AUTH_JWKS_URL: else a token the identity provider issued for another "
                "service, or another issuer's, would be accepted"
            )
        return self

    @model_validator(mode="after")
    def _demo_tokens_need_a_secret(self) -> Self:
        if self.demo_token_issuer and self.auth_jwt_secret is None:
            raise ValueError("DEMO_TOKEN_ISSUER needs AUTH_JWT_SECRET (HS256) to sign with")
        return self

    @model_validator(mode="after")
    def _admin_keys_are_their_own(self) -> Self:
        link_keys = {key.get_secret_value() for key in self.api_keys}
        if any(key.get_secret_value() in link_keys for key in self.admin_api_keys):
            raise ValueError("ADMIN_API_KEYS must not repeat a key of API_KEYS")
        return self

    @field_validator(
        "play_ladder_web",
        "play_ladder_mobile",
        "play_ladder_tablet",
        "play_ladder_tv",
        "play_ladder_app",
    )
    @classmethod
    def _ladder_parses(cls, value: str) -> str:
        try:
            parse_ladder(value)
        except LadderError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("watch_require_claims")
    @classmethod
    def _claim_rules_parse(cls, value: str) -> str:
        try:
            parse_claim_rules(value)
        except ClaimRuleError as exc:
            raise ValueError(str(exc)) from None
        return value

    def play_ladders(self) -> dict[str, tuple[PlayStep, ...]]:
        return {device: parse_ladder(getattr(self, f"play_ladder_{device}")) for device in DEVICES}

    @model_validator(mode="after")
    def _store_settings_agree(self) -> Self:
        cluster_seed = self.redis_url is not None and not self.redis_url.lower().startswith("unix:")
        if self.redis_mode == "cluster" and not cluster_seed:
            raise ValueError(
                "REDIS_URL must name a seed node (redis:// or rediss://) when REDIS_MODE=cluster"
            )
        if self.redis_mode == "sentinel":
            missing = [
                name
                for name, value in (
                    ("REDIS_SENTINELS", self.redis_sentinels),
                    ("REDIS_SENTINEL_MASTER", self.redis_sentinel_master),
                )
                if not value
            ]
            if missing:
                raise ValueError(f"{' and '.join(missing)} must be set when REDIS_MODE=sentinel")
        elif self.redis_sentinels or self.redis_sentinel_master:
            raise ValueError(
                "REDIS_SENTINELS and REDIS_SENTINEL_MASTER are used only with REDIS_MODE=sentinel"
            )
        return self

    @property
    def store_config(self) -> StoreConfig:
        """Where the shared store is (``shared`` False: the embedded in-process one)."""
        return StoreConfig(
            mode=self.redis_mode,
            url=self.redis_url,
            sentinels=tuple(self.redis_sentinels),
            sentinel_master=self.redis_sentinel_master,
        )

    @model_validator(mode="after")
    def _burst_fits_the_rate(self) -> Self:
        if self.link_burst >= self.link_rate_per_s:
            raise ValueError(
                "LINK_BURST must be smaller than LINK_RATE_PER_S (the bucket refills at "
                "rate - burst so that no second ever sees more than LINK_RATE_PER_S calls)"
            )
        return self

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
