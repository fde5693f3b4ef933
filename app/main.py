"""The application factory: ``uvicorn --factory app.main:create_app``.

Settings are read here (not at import); a bad configuration prints one line naming
the settings at fault and exits. Every client is built in the lifespan (``app.state``).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import APIRouter, FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.types import Scope
from uvicorn.config import STARTUP_FAILURE

from app.api import admin, catalogue, health, links, live, sessions
from app.api.auth import document_security
from app.api.body_limit import BodyLimit
from app.api.content_policy import with_security_headers
from app.api.docs import install_docs
from app.api.live import document_stream
from app.api.problems import install_problem_handlers, internal_error, problem_responses
from app.api.schemas import Problem
from app.api.warm_reads import WarmReads
from app.demo.routes import DemoSite, demo_router
from app.demo.tokens import DemoTokenIssuer
from app.identity.viewer_ip import Network, is_trusted, parse_ip
from app.observability.logging import configure_logging
from app.observability.metrics import Metrics
from app.observability.redaction import Redactor
from app.observability.requests import AccessLine, RequestObserver
from app.settings import Settings, SettingsError, load_settings
from app.state import lifespan_for
from app.store import embedded_store_missing

API_DESCRIPTION = """\
A gateway between an operator's websites and apps and the iGameMedia ONEPlatform
streaming API: cached sports and events, stream lists, and viewer links minted within
the upstream's rate limits and licensing rules. Errors are RFC 9457 problem+json with a
stable `code` (and the upstream `operationCode` where one applies).

Link, play, session and live requests need a viewer: a bearer JWT (`viewerJwt`), or an
operator back end's `X-API-Key` with the viewer's `X-User-Id`. *Authorize* sets them for
the operations tried here.
"""
DEMO_DESCRIPTION = """
**Demo:** `GET /_demo/token` (below) answers a viewer JWT for ten minutes; put its
`accessToken` in *Authorize* → `viewerJwt`, then try `POST /v1/events/{eventId}/play`
with an eventId from `GET /v1/events/open` (the *Racing Channel*, sport `HR`, is open
around the clock, with no geo lists).
"""


def secrets_of(settings: Settings) -> list[str]:
    values = [settings.customer_uid.get_secret_value()]
    values += [key.get_secret_value() for key in settings.api_keys]
    values += [key.get_secret_value() for key in settings.admin_api_keys]
    for secret in (
        settings.auth_jwt_secret,
        settings.watch_callback_secret,
        settings.audit_user_id_key,
    ):
        if secret is not None:
            values.append(secret.get_secret_value())
    return values


MAX_BODY_BYTES = 16 * 1024
# A request's headers in all: a JWT is at most 8 KiB (identity/auth.py), the rest is small.
MAX_HEADER_BYTES = 32 * 1024


def peer_is_trusted(trusted: Sequence[Network]) -> Callable[[Scope], bool]:
    """Whether a request's socket peer is one of the trusted proxies."""

    def check(scope: Scope) -> bool:
        client = scope.get("client")
        address = parse_ip(client[0]) if client else None
        return address is not None and is_trusted(address, trusted)

    return check


def cors_options(settings: Settings) -> dict[str, Any] | None:
    """``CORSMiddleware``'s configuration; None when CORS is off."""
    if not settings.cors_allow_origins:
        return None
    return {
        "allow_origins": settings.cors_allow_origins,
        "allow_methods": ["GET", "HEAD", "POST", "DELETE", "OPTIONS"],
        "allow_headers": ["Authorization", "Content-Type", "X-API-Key", "X-User-Id"],
        "expose_headers": ["ETag", "Age", "Retry-After", "X-Request-ID"],
        "max_age": 600,
    }


def create_app(settings: Settings | None = None) -> FastAPI:
    if settings is None:
        try:
            settings = load_settings()
        except SettingsError as exc:
            print(f"oneplatform-gateway: {exc}", file=sys.stderr)
            # uvicorn's code for a failed start: its worker supervisor (--workers, or
            # WEB_CONCURRENCY) then stops instead of restarting the worker for ever.
            raise SystemExit(STARTUP_FAILURE) from None
    missing = embedded_store_missing(settings.store_config)
    if missing is not None:
        print(f"oneplatform-gateway: {missing}", file=sys.stderr)
        raise SystemExit(STARTUP_FAILURE)
    redactor = Redactor(secrets_of(settings))
    configure_logging(
        json_lines=settings.log_format == "json", level=settings.log_level, redactor=redactor
    )
    metrics = Metrics()
    app = FastAPI(
        title="ONEPlatform Gateway",
        version="0.1.0",
        description=API_DESCRIPTION + (DEMO_DESCRIPTION if settings.demo_tokens else ""),
        lifespan=lifespan_for(settings, metrics, redactor),
        # Prometheus is this service's telemetry; FastAPI's native OpenTelemetry hooks
        # would cost a provider lookup on every request for nothing.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        docs_url=None,  # served by app/api/docs.py, with local assets and their own CSP
        redoc_url=None,
        # No redirect for a path with or without a trailing slash: behind the balancer
        # it would name the wrong port and scheme, and carry the query string (a live
        # stream's access_token) into a Location header. Such a path is a 404.
        redirect_slashes=False,
    )
    install_problem_handlers(app)
    install_docs(app)
    app.include_router(health.router)
    app.include_router(live.router)  # before /v1/events/{eventId}
    app.include_router(catalogue.router)
    app.include_router(links.router)
    app.include_router(sessions.router)
    app.include_router(admin.router_for(include_in_schema=settings.admin_in_openapi))
    if settings.demo_enabled:
        app.include_router(demo_site(settings))
    cors = cors_options(settings)
    # Outermost last: CORS, then the request observer (ids, security headers, access
    # line, metrics, the 500 for anything unexpected), the size limits, and the warm
    # reads answered before the router (app/api/warm_reads.py).
    app.add_middleware(WarmReads)
    app.add_middleware(  # a link request is < 1 KiB
        BodyLimit, max_bytes=MAX_BODY_BYTES, max_header_bytes=MAX_HEADER_BYTES
    )
    app.add_middleware(
        RequestObserver,
        metrics=metrics,
        trust_request_id=peer_is_trusted(settings.trusted_proxies),
        add_headers=with_security_headers,
        on_error=internal_error,
        access_log=(
            AccessLine(json_lines=settings.log_format == "json")
            if settings.log_level in ("debug", "info")
            else None
        ),
    )
    if cors:
        app.add_middleware(CORSMiddleware, **cors)
    _finish_document(app, demo_tokens=settings.demo_tokens)
    return app


def demo_site(settings: Settings) -> APIRouter:
    """The demo stream, player page and reference page (``/`` in demo mode, else ``/demo``)."""
    issuer = None
    if settings.demo_tokens and settings.auth_jwt_secret is not None:
        issuer = DemoTokenIssuer(
            settings.auth_jwt_secret,
            settings.auth_jwt_issuer,
            settings.auth_jwt_audience,
            wall=time.time,
        )
    site = DemoSite.load(
        settings.demo_vendor_dir,
        issuer,
        wall=time.time,
        kit_dir=settings.demo_kit_dir,
        frame_ancestors=settings.frame_ancestors,
    )
    return demo_router(site, page_path="/" if settings.igm_mode == "simulator" else "/demo")


def _finish_document(app: FastAPI, *, demo_tokens: bool) -> None:
    """Make ``#/components/schemas/Problem`` exist for the problem examples, document
    the problems every operation can answer (``BodyLimit``'s 413 and 431: it reads
    every request first; the 500 of anything unexpected), the live stream's message
    schemas and the viewer's security requirement."""
    original = app.openapi
    every = {
        str(status): entry
        for status, entry in problem_responses(
            "body_too_large", "headers_too_large", "internal_error"
        ).items()
    }

    def openapi() -> dict[str, object]:
        if app.openapi_schema is None:
            schema = original()
            components = schema.setdefault("components", {})
            components.setdefault("schemas", {})["Problem"] = Problem.model_json_schema()
            for operations in schema.get("paths", {}).values():
                for operation in operations.values():
                    operation["responses"].update(every)
            document_stream(schema)
            document_security(schema, demo_tokens=demo_tokens)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
