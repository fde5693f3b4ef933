"""Every Prometheus metric the gateway exports, defined in one place.

Each app instance owns its ``CollectorRegistry`` (no global registry, so tests and
several apps in one process never clash). With several uvicorn workers, set
``PROMETHEUS_MULTIPROC_DIR``: values then go to per-process files and ``/metrics``
aggregates them with ``MultiProcessCollector``.

Label values are always from small fixed sets (route templates, method names,
outcomes, reasons): never event ids, users or IPs.

The metrics counted on every request (requests and their latency, catalogue reads,
upstream calls and their latency, links handed out) are tallied in plain dicts and
folded into the Prometheus metrics before every exposition and within
``FOLD_EVERY_S`` of a request: a label lookup and a locked increment per value per
request was a fifth of a warm read's time in the gateway's own code. With several
workers, another worker's last second may be missing from a scrape.
"""

from __future__ import annotations

import asyncio
import os
from bisect import bisect_left
from dataclasses import dataclass, field
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
FOLD_EVERY_S = 1.0
_UPPER_BOUNDS = (*[float(b) for b in LATENCY_BUCKETS], float("inf"))


@dataclass(slots=True)
class LatencyTally:
    """Observations not yet in the histogram: count, sum and a count per bucket."""

    count: int = 0
    total: float = 0.0
    buckets: list[int] = field(default_factory=lambda: [0] * len(_UPPER_BOUNDS))

    def add(self, seconds: float) -> None:
        self.count += 1
        self.total += seconds
        self.buckets[bisect_left(_UPPER_BOUNDS, seconds)] += 1  # le: first bound >= value


def add_observations(child: Any, tally: LatencyTally) -> None:
    """Add a tally to a ``Histogram`` child, as ``tally.count`` calls of ``observe``
    would. prometheus-client has no bulk observe, so this adds to the child's
    per-bucket values and sum directly (the same ``inc`` that ``observe`` makes;
    tests/unit/test_metrics.py checks the result against ``observe``)."""
    if list(child._upper_bounds) != list(_UPPER_BOUNDS):
        raise ValueError("the histogram's buckets are not LATENCY_BUCKETS")
    child._sum.inc(tally.total)
    for value, count in zip(child._buckets, tally.buckets, strict=True):
        if count:
            value.inc(count)


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
            # The bucket is the fleet's: the worker that decided last saw it last.
            multiprocess_mode="livemostrecent",
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

        # (metric, label values) -> what to add at the next fold
        self._counts: dict[tuple[Counter, tuple[object, ...]], int] = {}
        self._times: dict[tuple[Histogram, tuple[object, ...]], LatencyTally] = {}
        self._fold_pending = False

    # --- the per-request metrics (tallied; see the module's docstring) -------------

    def request_done(self, route: str, method: str, status: int, seconds: float) -> None:
        self._count(self.http_requests, (route, method, status))
        self._time(self.http_latency, (route, method), seconds)

    def catalogue_read(self, kind: str, result: str) -> None:
        self._count(self.catalogue_reads, (kind, result))

    def link_minted(self, kind: str, source: str) -> None:
        self._count(self.links_minted, (kind, source))

    def observe_upstream(self, call: UpstreamCall) -> None:
        code = str(call.operation_code) if call.operation_code is not None else ""
        self._count(self.upstream_calls, (call.method, call.outcome, code))
        self._time(self.upstream_latency, (call.method,), call.seconds)

    def fold(self) -> None:
        """Move the tallies into the Prometheus metrics."""
        self._fold_pending = False
        counts, self._counts = self._counts, {}
        times, self._times = self._times, {}
        for (counter, labels), count in counts.items():
            counter.labels(*labels).inc(count)
        for (histogram, labels), tally in times.items():
            add_observations(histogram.labels(*labels), tally)

    def _count(self, counter: Counter, labels: tuple[object, ...]) -> None:
        key = (counter, labels)
        self._counts[key] = self._counts.get(key, 0) + 1
        if not self._fold_pending:
            self._fold_soon()

    def _time(self, histogram: Histogram, labels: tuple[object, ...], seconds: float) -> None:
        tally = self._times.get((histogram, labels))
        if tally is None:
            tally = self._times[(histogram, labels)] = LatencyTally()
        tally.add(seconds)
        if not self._fold_pending:
            self._fold_soon()

    def _fold_soon(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop (a script, a test): fold at once
            self.fold()
            return
        self._fold_pending = True
        loop.call_later(FOLD_EVERY_S, self.fold)

    def process_stopped(self) -> None:
        """Fold the last tallies; with several workers, drop this process's live gauges
        (leader, degraded)."""
        self.fold()
        if multiprocess_dir() is not None:
            prometheus_multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]

    def exposition(self) -> tuple[bytes, str]:
        """The text format for ``GET /metrics`` (aggregated across workers if multiprocess)."""
        self.fold()
        if multiprocess_dir() is not None:
            registry = CollectorRegistry()
            prometheus_multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
