"""Every Prometheus metric the gateway exports, defined in one place.

Each app instance owns its ``CollectorRegistry`` (no global registry, so tests and
several apps in one process never clash). With several uvicorn workers, set
``PROMETHEUS_MULTIPROC_DIR``: values then go to per-process files and ``/metrics``
aggregates them with ``MultiProcessCollector``.

Label values are always from small fixed sets (route templates, method names,
outcomes, reasons): never event ids, users or IPs.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as prometheus_multiprocess

from app.upstream.client import UpstreamCall

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.http_requests = Counter(
            "gateway_http_requests_total",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=r,
        )
        self.http_latency = Histogram(
            "gateway_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template and method.",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.upstream_calls = Counter(
            "gateway_upstream_calls_total",
            "Calls to ONEPlatform by method, outcome and operationCode.",
            ["method", "outcome", "operation_code"],
            registry=r,
        )
        self.upstream_latency = Histogram(
            "gateway_upstream_call_duration_seconds",
            "Latency of calls to ONEPlatform by method.",
            ["method"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.budget_decisions = Counter(
            "gateway_budget_decisions_total",
            "Fleet budget decisions per upstream method: allowed, waited, refused.",
            ["method", "decision"],
            registry=r,
        )
        self.budget_tokens_left = Gauge(
            "gateway_budget_tokens_left",
            "Tokens left in the fleet link bucket after the last decision.",
            ["method"],
            multiprocess_mode="livemin",
            registry=r,
        )
        self.catalogue_reads = Counter(
            "gateway_catalogue_reads_total",
            "Catalogue reads by list kind and result: hit, stale, miss.",
            ["list", "result"],
            registry=r,
        )
        self.catalogue_age = Gauge(
            "gateway_catalogue_age_seconds",
            "Age of the cached copy of each list (events_other: the oldest other date).",
            ["list"],
            multiprocess_mode="livemax",
            registry=r,
        )
        self.catalogue_refreshes = Counter(
            "gateway_catalogue_refreshes_total",
            "Refreshes of cached lists from the upstream, by list kind and outcome.",
            ["list", "outcome"],
            registry=r,
        )
        self.links_minted = Counter(
            "gateway_links_minted_total",
            "Links handed out by kind (hls, theolive, player) and source (upstream, dedupe).",
            ["kind", "source"],
            registry=r,
        )
        self.refusals = Counter(
            "gateway_refusals_total",
            "Requests refused before the upstream, by reason.",
            ["reason"],
            registry=r,
        )
        self.redis_errors = Counter(
            "gateway_redis_errors_total",
            "Shared-store commands that failed, by operation.",
            ["operation"],
            registry=r,
        )
        self.refresh_leader = Gauge(
            "gateway_refresh_leader",
            "1 while this process holds the catalogue refresh lease.",
            multiprocess_mode="livemax",
            registry=r,
        )
        self.degraded = Gauge(
            "gateway_degraded",
            "1 while this process cannot reach the shared store and serves from memory.",
            multiprocess_mode="livemax",
            registry=r,
        )

        self._request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._read_children: dict[tuple[str, str], Any] = {}

    def request_done(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count and time one request (label children cached: this runs per request)."""
        key = (route, method, status)
        children = self._request_children.get(key)
        if children is None:
            children = (
                self.http_requests.labels(route, method, str(status)),
                self.http_latency.labels(route, method),
            )
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def catalogue_read(self, kind: str, result: str) -> None:
        child = self._read_children.get((kind, result))
        if child is None:
            child = self._read_children[(kind, result)] = self.catalogue_reads.labels(kind, result)
        child.inc()

    def observe_upstream(self, call: UpstreamCall) -> None:
        code = str(call.operation_code) if call.operation_code is not None else ""
        self.upstream_calls.labels(call.method, call.outcome, code).inc()
        self.upstream_latency.labels(call.method).observe(call.seconds)

    def process_stopped(self) -> None:
        """With several workers, drop this process's live gauges (leader, degraded)."""
        if multiprocess_dir() is not None:
            prometheus_multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]

    def exposition(self) -> tuple[bytes, str]:
        """The text format for ``GET /metrics`` (aggregated across workers if multiprocess)."""
        if multiprocess_dir() is not None:
            registry = CollectorRegistry()
            prometheus_multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
