"""The lifespan: build every client and service (each service's own wiring is in
``app/services.py``), yield them as typed state, close them in reverse order. Nothing
here runs at import time.
"""

from __future__ import annotations

import gc
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
from app.catalogue.service import Catalogue
from app.exit_signal import on_exit_signal
from app.identity.admin_keys import AdminKeys
from app.identity.auth import Authenticator
from app.identity.country import CountryResolver
from app.links.ladder import PlayStep
from app.links.service import LinkService
from app.live.caps import LiveCapLimits, LiveCaps
from app.live.feed import LiveFeed, LiveLimits
from app.live.session_notices import SessionNotices
from app.observability.context import count_upstream_call
from app.observability.metrics import Metrics
from app.observability.redaction import Redactor
from app.ratelimit.failures import FailedAttempts, FailureLimits
from app.ratelimit.sessions import ViewingSessions
from app.services import (
    build_authenticator,
    build_catalogue,
    build_links,
    build_watch_rules,
    upstream_transport,
)
from app.settings import Settings
from app.store import Store, build_store, close_store
from app.supervisor import Supervisor
from app.tls import tls_verify
from app.upstream.breaker import CircuitBreaker
from app.upstream.client import OnePlatformClient, UpstreamCall, build_http_client

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
