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
from collections.abc import Callable
from typing import Literal

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as prometheus_multiprocess
from prometheus_client.metrics import MetricWrapperBase

from app.upstream.client import UpstreamCall

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
# Waiting in the line for a link: from nothing to a few minutes at kick-off.
WAIT_BUCKETS = (0.1, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self._request_children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self._read_children: dict[tuple[str, str], Counter] = {}
        self._before_exposition: list[Callable[[], None]] = []
        # metric -> its label names (what dashboards and alert rules may match on)
        self.label_names: dict[MetricWrapperBase, tuple[str, ...]] = {}
        self.http_requests = self._counter(
            "gateway_http_requests_total",
            "HTTP requests answered, by route template, method and status.",
            ("route", "method", "status"),
        )
        self.http_latency = self._histogram(
            "gateway_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template and method.",
            ("route", "method"),
        )
        self.upstream_calls = self._counter(
            "gateway_upstream_calls_total",
            "Calls to ONEPlatform by method, outcome and operationCode.",
            ("method", "outcome", "operation_code"),
        )
        self.upstream_latency = self._histogram(
            "gateway_upstream_call_duration_seconds",
            "Latency of calls to ONEPlatform by method.",
            ("method",),
        )
        self.budget_decisions = self._counter(
            "gateway_budget_decisions_total",
            "Fleet budget decisions per upstream method: allowed, waited (held for its turn), "
            "queued (a place in the line), deferred (a renewal told to come back), late.",
            ("method", "decision"),
        )
        self.budget_tokens_left = self._gauge(
            "gateway_budget_tokens_left",
            "Tokens left in the fleet link bucket after the last decision.",
            ("method",),
            # The bucket is the fleet's: the worker that decided last saw it last.
            "livemostrecent",
        )
        self.line_length = self._gauge(
            "gateway_link_line_length",
            "Viewers holding a place in the fleet's line for links (waiting to come back).",
            (),
            # The line is the fleet's: the worker that decided last saw it last.
            "livemostrecent",
        )
        self.line_held = self._gauge(
            "gateway_link_line_held",
            "Link requests this process holds until their turn in the line.",
            (),
            "livesum",
        )
        self.line_wait = self._histogram(
            "gateway_link_wait_seconds",
            "Time to link: from a viewer's place in the line (or its request) to its turn.",
            (),
            buckets=WAIT_BUCKETS,
        )
        self.line_given_up = self._counter(
            "gateway_link_places_given_up_total",
            "Places in the line not claimed within the grace period after their turn.",
            (),
        )
        self.line_answers = self._counter(
            "gateway_link_line_answers_total",
            "Link requests past the budget, by answer: held (waited for its turn), "
            "queued (429 with a place), deferred (a renewal told to come back later).",
            ("answer",),
        )
        self.catalogue_reads = self._counter(
            "gateway_catalogue_reads_total",
            "Catalogue reads by list kind and result: hit, stale, miss.",
            ("list", "result"),
        )
        self.catalogue_age = self._gauge(
            "gateway_catalogue_age_seconds",
            "Age of the cached copy of each list (events_other: the oldest other date).",
            ("list",),
            "livemax",
        )
        self.catalogue_refreshes = self._counter(
            "gateway_catalogue_refreshes_total",
            "Refreshes of cached lists from the upstream, by list kind and outcome.",
            ("list", "outcome"),
        )
        self.links_minted = self._counter(
            "gateway_links_minted_total",
            "Links handed out by kind (hls, theolive, player) and source (upstream, dedupe).",
            ("kind", "source"),
        )
        self.refusals = self._counter(
            "gateway_refusals_total",
            "Requests refused before the upstream, by reason.",
            ("reason",),
        )
        self.redis_errors = self._counter(
            "gateway_redis_errors_total",
            "Shared-store commands that failed, by operation.",
            ("operation",),
        )
        self.sessions_ended = self._counter(
            "gateway_sessions_ended_total",
            "Viewing sessions ended, by why (stopped by the player, evicted by a newer one).",
            ("reason",),
        )
        self.refresh_leader = self._gauge(
            "gateway_refresh_leader",
            "1 while this process holds the catalogue refresh lease.",
            (),
            "livemax",
        )
        self.degraded = self._gauge(
            "gateway_degraded",
            "1 while this process cannot reach the shared store and serves from memory.",
            (),
            "livemax",
        )
        self.task_restarts = self._counter(
            "gateway_task_restarts_total",
            "Background tasks (refresher, catalogue sync, live feed, session notices) that "
            "crashed and were restarted, by task.",
            ("task",),
        )
        self.live_subscribers = self._gauge(
            "gateway_live_subscribers",
            "Live event streams (GET /v1/events/live) this process holds.",
            (),
            "livesum",
        )
        self.live_dropped = self._counter(
            "gateway_live_dropped_total",
            "Live streams ended because the client fell behind (behind) or stopped reading "
            "(send_timeout).",
            ("reason",),
        )

        self.watch_callback_failures = self._counter(
            "gateway_watch_callback_failures_total",
            "Watch callback calls that failed (timeout, error, status, too_large, "
            "bad_answer) or were not made (circuit_open).",
            ("reason",),
        )
        self.jwks_fetch_failures = self._counter(
            "gateway_jwks_fetch_failures_total",
            "JWKS fetches that failed (error, status, too_large, bad_answer, no_keys).",
            ("reason",),
        )
        self.jwks_age = self._gauge(
            "gateway_jwks_age_seconds",
            "Seconds since the JWKS keys in use were fetched (set at each fetch attempt).",
            (),
            "livemax",
        )
        self.admin_actions = self._counter(
            "gateway_admin_actions_total",
            "Admin API requests by action and outcome (done, refused, locked_out).",
            ("action", "outcome"),
        )

    def _counter(self, name: str, documentation: str, labels: tuple[str, ...]) -> Counter:
        metric = Counter(name, documentation, labels, registry=self.registry)
        self.label_names[metric] = labels
        return metric

    def _histogram(
        self,
        name: str,
        documentation: str,
        labels: tuple[str, ...],
        buckets: tuple[float, ...] = LATENCY_BUCKETS,
    ) -> Histogram:
        metric = Histogram(name, documentation, labels, buckets=buckets, registry=self.registry)
        self.label_names[metric] = labels
        return metric

    def _gauge(
        self,
        name: str,
        documentation: str,
        labels: tuple[str, ...],
        mode: Literal["livemin", "livemax", "livesum", "livemostrecent"],
    ) -> Gauge:
        metric = Gauge(name, documentation, labels, multiprocess_mode=mode, registry=self.registry)
        self.label_names[metric] = labels
        return metric

    # --- the per-request metrics -----------------------------------------------------

    # The labelled children of the per-request metrics, looked up once per label set
    # (``labels()`` costs more than the observation itself on a warm read). Bounded:
    # routes are templates, methods and statuses few.

    def request_done(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        children = self._request_children.get(key)
        if children is None:
            children = (
                self.http_requests.labels(route, method, status),
                self.http_latency.labels(route, method),
            )
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def catalogue_read(self, kind: str, result: str) -> None:
        child = self._read_children.get((kind, result))
        if child is None:
            child = self._read_children[kind, result] = self.catalogue_reads.labels(kind, result)
        child.inc()

    def link_minted(self, kind: str, source: str) -> None:
        self.links_minted.labels(kind, source).inc()

    def observe_upstream(self, call: UpstreamCall) -> None:
        code = str(call.operation_code) if call.operation_code is not None else ""
        self.upstream_calls.labels(call.method, call.outcome, code).inc()
        self.upstream_latency.labels(call.method).observe(call.seconds)

    def process_stopped(self) -> None:
        """With several workers, drop this process's live gauges (leader, degraded)."""
        if multiprocess_dir() is not None:
            prometheus_multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]

    def before_exposition(self, settle: Callable[[], None]) -> None:
        """Run ``settle`` before each exposition: counts held back (the request log's,
        to the end of the event loop's turn) are in every scrape."""
        self._before_exposition.append(settle)

    def exposition(self) -> tuple[bytes, str]:
        """The text format for ``GET /metrics`` (aggregated across workers if multiprocess)."""
        for settle in self._before_exposition:
            settle()
        if multiprocess_dir() is not None:
            registry = CollectorRegistry()
            prometheus_multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
