"""The lifespan: build every client and service, yield them as typed state, close
them in reverse order. Nothing here runs at import time.
"""

from __future__ import annotations

import gc
import math
import multiprocessing
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import structlog
from fastapi import FastAPI, Request

from app.audit import AuditTrail
from app.catalogue.index import EventIndex
from app.catalogue.lists import LocalLists
from app.catalogue.on_demand import OnDemandLists
from app.catalogue.refresher import Refresher, RefreshPolicy
from app.catalogue.service import Catalogue, CatalogueTimings
from app.catalogue.shared import SharedLists
from app.exit_signal import on_exit_signal
from app.identity.admin_keys import AdminKeys
from app.identity.auth import Authenticator
from app.identity.country import CountryResolver
from app.links.background import BackgroundWrites
from app.links.budget import LATE_SLOT_S, LinkBudget, LinkLimits
from app.links.ladder import PlayStep
from app.links.minting import LinkLifetimes, LinkMinter
from app.links.rules import LinkRules
from app.links.service import LinkService
from app.links.sessions import LinkSessions
from app.live.caps import LiveCapLimits, LiveCaps
from app.live.feed import LiveFeed, LiveLimits
from app.live.session_notices import SessionNotices
from app.observability.context import count_upstream_call
from app.observability.metrics import Metrics
from app.observability.redaction import Redactor
from app.ratelimit.admission import LinkAdmission
from app.ratelimit.failures import FailedAttempts, FailureLimits
from app.ratelimit.gate import UpstreamGate
from app.ratelimit.lease import Lease
from app.ratelimit.line import LinePolicy
from app.ratelimit.sessions import SessionLimits, ViewingSessions
from app.settings import Settings
from app.store import Store, build_store, close_store
from app.supervisor import Supervisor
from app.tls import tls_verify
from app.upstream.breaker import CircuitBreaker
from app.upstream.client import OnePlatformClient, UpstreamCall, build_http_client
from app.watch.callback import WatchCallback
from app.watch.claims import parse_claim_rules
from app.watch.rules import WatchRules

log = structlog.get_logger(__name__)

GC_THRESHOLDS = (50_000, 20, 10)  # young, middle, old: set once, after start-up


@dataclass(frozen=True, slots=True)
class GatewayState:
    settings: Settings
    metrics: Metrics
    redactor: Redactor
    replica_id: str
    redis: Store
    http: httpx.AsyncClient
    client: OnePlatformClient
    catalogue: Catalogue
    authenticator: Authenticator
    countries: CountryResolver
    links: LinkService
    ladders: dict[str, tuple[PlayStep, ...]]  # per device, for POST /play
    audit: AuditTrail
    admin_keys: AdminKeys
    sessions: ViewingSessions
    started_at: float  # monotonic
    live: LiveFeed
    live_caps: LiveCaps
    admin_failures: FailedAttempts
    supervisor: Supervisor  # the background tasks; readiness asks it what is down


async def get_state(request: Request) -> GatewayState:
    """A coroutine: FastAPI would run a plain-function dependency in its thread pool."""
    state: GatewayState = request.state.gateway
    return state


def replica_name(settings: Settings) -> str:
    """This process's name in the fleet (the refresh lease's owner, the log lines).

    Each uvicorn worker (``WEB_CONCURRENCY`` > 1) is a process of its own, started by a
    supervisor, and must hold the lease under a name of its own: sharing ``REPLICA_ID``,
    every worker of the replica would believe it held the lease.
    """
    if settings.replica_id is None:
        return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    if multiprocessing.parent_process() is not None:  # a worker of uvicorn's supervisor
        return f"{settings.replica_id}/{os.getpid()}"
    return settings.replica_id


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


def lifespan_for(settings: Settings, metrics: Metrics, redactor: Redactor):  # type: ignore[no-untyped-def]
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, GatewayState]]:
        owner = replica_name(settings)
        redis = build_store(settings.store_config)
        verify = tls_verify(settings.igm_ca_bundle)  # the upstream and JWKS trust alike
        http = build_http_client(
            connect_timeout_s=settings.igm_connect_timeout_s,
            read_timeout_s=settings.igm_read_timeout_s,
            max_connections=settings.igm_max_connections,
            keepalive_expiry_s=settings.igm_keepalive_expiry_s,
            verify=verify,
            transport=upstream_transport(settings),
        )

        def observe(call: UpstreamCall) -> None:
            metrics.observe_upstream(call)
            count_upstream_call(call)
            log.debug(
                "upstream_call",
                method=call.method,
                outcome=call.outcome,
                operation_code=call.operation_code,
                ms=round(call.seconds * 1000, 3),
            )

        client = OnePlatformClient(
            http,
            api_url=str(settings.igm_api_url),
            player_api_url=str(settings.igm_player_api_url),
            customer_uid=settings.customer_uid,
            server_ip=settings.server_ip,
            observer=observe,
            breaker=CircuitBreaker(),
        )
        index = EventIndex()  # the catalogue's, which the live feed reads too
        live = LiveFeed(
            LiveLimits(
                max_clients=settings.sse_max_clients,
                log_size=settings.sse_resume_log,
                heartbeat_s=settings.sse_heartbeat_s,
            ),
            index,
            metrics,
        )
        catalogue = build_catalogue(
            settings,
            client=client,
            redis=redis,
            metrics=metrics,
            owner=owner,
            index=index,
            live=live,
        )
        jwks_http = (
            httpx.AsyncClient(timeout=httpx.Timeout(3.0), verify=verify, trust_env=True)
            if settings.auth_jwks_url
            else None
        )
        watch_http = (
            httpx.AsyncClient(
                timeout=httpx.Timeout(settings.watch_callback_timeout_s),
                verify=verify,
                trust_env=True,
            )
            if settings.watch_callback_url
            else None
        )
        countries = CountryResolver(
            settings.geo_country_header, settings.geo_subdivision_header, settings.geoip_db
        )
        countries.open()
        sessions = ViewingSessions(redis)
        notices = SessionNotices(redis, sessions.channel, live)
        supervisor = Supervisor(metrics)
        state = GatewayState(
            settings=settings,
            metrics=metrics,
            redactor=redactor,
            replica_id=owner,
            redis=redis,
            http=http,
            client=client,
            catalogue=catalogue,
            authenticator=build_authenticator(settings, jwks_http, metrics),
            countries=countries,
            ladders=settings.play_ladders(),
            admin_keys=AdminKeys(settings.admin_api_keys),
            audit=AuditTrail(
                redis=redis,
                stream=settings.audit_redis_stream,
                max_len=settings.audit_redis_stream_maxlen,
                raw_ip=settings.audit_raw_ip,
                user_id_key=settings.audit_user_id_key,
                metrics=metrics,
            ),
            started_at=time.monotonic(),
            live=live,
            live_caps=LiveCaps(
                redis,
                LiveCapLimits(per_user=settings.sse_max_per_user, per_ip=settings.sse_max_per_ip),
                metrics=metrics,
            ),
            admin_failures=FailedAttempts(
                redis,
                "admin",
                FailureLimits(settings.admin_max_failures, settings.admin_failure_window_s),
            ),
            supervisor=supervisor,
            links=build_links(
                settings,
                catalogue=catalogue,
                client=client,
                redis=redis,
                metrics=metrics,
                watch=build_watch_rules(settings, watch_http, metrics),
                sessions=sessions,
            ),
            sessions=sessions,
        )
        # Every long-lived task runs under the one supervisor, which stops them in the
        # reverse order: the session notices and the live feed before the catalogue.
        await catalogue.start(supervisor)
        live.start(supervisor)
        state.live_caps.start(supervisor)
        if settings.max_streams_per_user:
            notices.start(supervisor)
        # Everything built so far lives as long as the process: move it out of the
        # collector's reach, so full collections stop walking FastAPI's and pydantic's
        # ~100k objects (86 ms each, measured) several times a second under load. And
        # young collections less often (every 50,000 allocations net, not
        # 700): a request's or a stream wake-up's objects die young instead of being
        # promoted, so the oldest generation, which holds every open stream's objects
        # (a full collection walks them all: ~0.8 s at 10,000 streams), fills slower.
        gc.collect()
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)
        log.info(
            "gateway_started",
            replica=owner,
            mode=settings.igm_mode,
            store=settings.redis_mode if settings.store_config.shared else "embedded",
            upstream="embedded-simulator" if settings.embedded_simulator else "network",
        )
        try:
            # uvicorn drains open responses before this shutdown runs: the live
            # streams end as soon as the server is told to exit.
            with on_exit_signal(live.close):
                yield {"gateway": state}
        finally:
            log.info("gateway_stopping", replica=owner)
            await supervisor.stop()
            await notices.stop()
            await live.stop()
            await state.live_caps.stop()
            await state.links.close()
            await state.audit.close()
            await catalogue.stop()
            metrics.process_stopped()
            countries.close()
            if jwks_http is not None:
                await jwks_http.aclose()
            if watch_http is not None:
                await watch_http.aclose()
            await http.aclose()
            await close_store(redis)

    return lifespan
