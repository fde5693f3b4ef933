"""Each service the lifespan wires together, built from the settings: the upstream
transport (the in-process simulator in demo mode), the catalogue, the link service
and its budget, the watch rules, the authenticator.
"""

from __future__ import annotations

import math
import time

import httpx

from app.catalogue.index import EventIndex
from app.catalogue.lists import LocalLists
from app.catalogue.on_demand import OnDemandLists
from app.catalogue.refresher import Refresher, RefreshPolicy
from app.catalogue.service import Catalogue, CatalogueTimings
from app.catalogue.shared import SharedLists
from app.identity.auth import Authenticator
from app.links.background import BackgroundWrites
from app.links.budget import LATE_SLOT_S, LinkBudget, LinkLimits
from app.links.minting import LinkLifetimes, LinkMinter
from app.links.rules import LinkRules
from app.links.service import LinkService
from app.links.sessions import LinkSessions
from app.live.feed import LiveFeed
from app.observability.metrics import Metrics
from app.ratelimit.admission import LinkAdmission
from app.ratelimit.gate import UpstreamGate
from app.ratelimit.lease import Lease
from app.ratelimit.line import LinePolicy
from app.ratelimit.sessions import SessionLimits, ViewingSessions
from app.settings import Settings
from app.store import Store
from app.upstream.breaker import CircuitBreaker
from app.upstream.client import OnePlatformClient
from app.watch.callback import WatchCallback
from app.watch.claims import parse_claim_rules
from app.watch.rules import WatchRules


def upstream_transport(settings: Settings) -> httpx.AsyncBaseTransport | None:
    """The in-process simulator in demo mode without an upstream URL, else the network."""
    if not settings.embedded_simulator:
        return None
    from app.simulator.app import create_simulator  # demo mode only
    from app.simulator.config import DEMO_HLS_URL, DEMO_PLAYER_URL, SimulatorConfig

    config = SimulatorConfig(
        customer_uid=settings.customer_uid.get_secret_value(),
        server_ips=(settings.server_ip,),
        events_min_interval_s=settings.events_min_interval_s,
        link_rate_per_s=int(settings.link_rate_per_s),
        # the stream and player page this gateway serves itself (app/demo/routes.py)
        hls_url=DEMO_HLS_URL,
        player_url=DEMO_PLAYER_URL,
    )
    return httpx.ASGITransport(app=create_simulator(config))


def build_catalogue(
    settings: Settings,
    *,
    client: OnePlatformClient,
    redis: Store,
    metrics: Metrics,
    owner: str,
    index: EventIndex | None = None,
    live: LiveFeed | None = None,
) -> Catalogue:
    wall = time.time
    shared = SharedLists(redis)
    index = index if index is not None else EventIndex()
    lists = LocalLists(shared, index, on_install=live.installed if live else None)
    gate = UpstreamGate(redis)
    policy = RefreshPolicy(
        interval_s=settings.events_min_interval_s,
        margin_s=settings.events_gate_margin_s,
        days_back=settings.catalogue_days_back,
        days_ahead=settings.catalogue_days_ahead,
        lease_ttl_s=settings.lease_ttl_s,
    )
    refresher = Refresher(
        client=client,
        shared=shared,
        lists=lists,
        gate=gate,
        lease=Lease(redis, "catalogue-refresher", owner, settings.lease_ttl_s),
        policy=policy,
        metrics=metrics,
        wall=wall,
        only_replica=not settings.store_config.shared or settings.replica_count == 1,
        finish_s=settings.igm_connect_timeout_s,
    )
    on_demand = OnDemandLists(
        redis=redis,
        shared=shared,
        metrics=metrics,
        wall=wall,
        cold_wait_s=settings.catalogue_cold_wait_s,
    )
    return Catalogue(
        client=client,
        shared=shared,
        lists=lists,
        on_demand=on_demand,
        refresher=refresher,
        gate=gate,
        index=index,
        policy=policy,
        timings=CatalogueTimings(
            cold_wait_s=settings.catalogue_cold_wait_s,
            sync_interval_s=settings.catalogue_sync_interval_s,
            streams_ttl_s=settings.streams_ttl_s,
            sports_ttl_s=settings.sports_ttl_s,
        ),
        metrics=metrics,
        wall=wall,
    )


def build_watch_rules(
    settings: Settings, http: httpx.AsyncClient | None, metrics: Metrics | None = None
) -> WatchRules:
    callback = None
    if settings.watch_callback_url is not None and http is not None:
        callback = WatchCallback(
            http,
            url=str(settings.watch_callback_url),
            secret=settings.watch_callback_secret,
            cache_s=settings.watch_callback_cache_s,
            on_failure=settings.watch_callback_failure,
            breaker=CircuitBreaker(),
            timeout_s=settings.watch_callback_timeout_s,
            max_bytes=settings.watch_callback_max_bytes,
            metrics=metrics,
        )
    return WatchRules(parse_claim_rules(settings.watch_require_claims), callback)


def build_links(
    settings: Settings,
    *,
    catalogue: Catalogue,
    client: OnePlatformClient,
    redis: Store,
    metrics: Metrics,
    watch: WatchRules,
    sessions: ViewingSessions,
) -> LinkService:
    clock = time.time
    admission = LinkAdmission(redis)
    background = BackgroundWrites()
    session_limits = (
        SessionLimits(
            max_per_user=settings.max_streams_per_user,
            ttl_s=settings.session_ttl_s,
            policy=settings.session_limit_policy,
        )
        if settings.max_streams_per_user
        else None
    )
    budget = LinkBudget(
        admission,
        LinkLimits(
            # LINK_RATE_PER_S is the most calls the fleet may make in any one second:
            # the bucket refills at rate - burst, so rate + burst never exceeds it,
            # less the calls a turn taken up to LATE_SLOT_S late may push into the
            # next second (3 at 150/s, none at 20/s).
            line=LinePolicy.for_budget(
                sustained_rate(settings.link_rate_per_s, settings.link_burst),
                settings.link_burst,
                renewal_share=settings.link_renewal_share,
                hold_s=settings.link_queue_hold_s,
                grace_s=settings.link_queue_grace_s,
                renewal_lead_s=settings.link_renewal_lead_s,
            ),
            limits_fallback=settings.link_limits_fallback,
            user_rate_per_s=settings.link_user_rate_per_min / 60,
            user_burst=settings.link_user_burst,
            # Without a known replica count no replica can know its share: fail closed.
            fallback=settings.link_fallback if settings.replica_count else "closed",
            replica_count=settings.replica_count or 1,
        ),
        metrics,
        sessions=session_limits,
    )
    link_sessions = LinkSessions(
        sessions,
        session_limits,
        metrics,
        background,
        clock=clock,
    )
    minter = LinkMinter(
        client=client,
        budget=budget,
        answers=admission,
        sessions=link_sessions,
        lifetimes=LinkLifetimes(
            link_ttl_s=settings.link_ttl_s, theolive_token_ttl_s=settings.theolive_token_ttl_s
        ),
        dedupe_window_s=settings.link_dedupe_window_s,
        metrics=metrics,
        background=background,
        clock=clock,
    )
    return LinkService(
        catalogue=catalogue,
        rules=LinkRules(
            default_redirect_url=(
                str(settings.default_redirect_url) if settings.default_redirect_url else None
            ),
            redirect_allowed_hosts=tuple(settings.redirect_allowed_hosts),
            unknown_country_allowed=settings.geo_unknown_allowed,
        ),
        watch=watch,
        minter=minter,
        sessions=link_sessions,
        background=background,
        metrics=metrics,
        clock=clock,
    )


def sustained_rate(rate_per_s: float, burst: int) -> float:
    """The rate the line's turns come at, for a budget of ``rate_per_s`` calls in any
    second: rate - burst, less the calls that turns taken late (within ``LATE_SLOT_S``)
    could bunch into one second; never below half of rate - burst."""
    refill = rate_per_s - burst
    return max(refill / 2, refill - math.floor(rate_per_s * LATE_SLOT_S))


def build_authenticator(
    settings: Settings, jwks_http: httpx.AsyncClient | None, metrics: Metrics | None = None
) -> Authenticator:
    return Authenticator(
        jwt_secret=settings.auth_jwt_secret,
        jwt_public_key=settings.auth_jwt_public_key,
        jwks_url=str(settings.auth_jwks_url) if settings.auth_jwks_url else None,
        issuer=settings.auth_jwt_issuer,
        audience=settings.auth_jwt_audience,
        leeway_s=settings.auth_jwt_leeway_s,
        max_age_s=settings.auth_jwt_max_age_s,
        api_keys=settings.api_keys,
        http=jwks_http,
        jwks_max_stale_s=settings.auth_jwks_max_stale_s,
        metrics=metrics,
    )
