"""The per-request tallies fold into Prometheus exactly as direct observations would."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from app.observability.metrics import FOLD_EVERY_S, LATENCY_BUCKETS, Metrics

# Values on, between, below and above the bucket bounds.
SAMPLES = [0.0, 0.0001, 0.0005, 0.0007, 0.005, 0.0050001, 0.3, 10.0, 12.5, 3600.0]


def samples(text: str, prefix: str) -> list[str]:
    return sorted(
        line for line in text.splitlines() if line.startswith(prefix) and "_created" not in line
    )


def test_folded_requests_match_direct_observations() -> None:
    metrics = Metrics()
    for seconds in SAMPLES:
        metrics.request_done("/v1/events/open", "GET", 200, seconds)
    metrics.request_done("/v1/events/open", "GET", 304, 0.001)
    metrics.request_done("/v1/sports", "HEAD", 200, 0.002)

    direct = CollectorRegistry()
    requests = Counter(
        "gateway_http_requests_total", "", ["route", "method", "status"], registry=direct
    )
    latency = Histogram(
        "gateway_http_request_duration_seconds",
        "",
        ["route", "method"],
        buckets=LATENCY_BUCKETS,
        registry=direct,
    )
    for seconds in SAMPLES:
        requests.labels("/v1/events/open", "GET", "200").inc()
        latency.labels("/v1/events/open", "GET").observe(seconds)
    requests.labels("/v1/events/open", "GET", "304").inc()
    latency.labels("/v1/events/open", "GET").observe(0.001)
    requests.labels("/v1/sports", "HEAD", "200").inc()
    latency.labels("/v1/sports", "HEAD").observe(0.002)

    ours, theirs = metrics.exposition()[0].decode(), generate_latest(direct).decode()
    for prefix in ("gateway_http_requests_total", "gateway_http_request_duration_seconds"):
        assert samples(ours, prefix) == samples(theirs, prefix), prefix
        assert samples(ours, prefix)


def test_catalogue_reads_are_counted() -> None:
    metrics = Metrics()
    for result in ("hit", "hit", "stale", "miss"):
        metrics.catalogue_read("open", result)
    text = metrics.exposition()[0].decode()
    assert 'gateway_catalogue_reads_total{list="open",result="hit"} 2.0' in text
    assert 'gateway_catalogue_reads_total{list="open",result="stale"} 1.0' in text
    assert 'gateway_catalogue_reads_total{list="open",result="miss"} 1.0' in text


def test_a_tally_folds_again_after_the_first_fold() -> None:
    metrics = Metrics()
    metrics.catalogue_read("open", "hit")
    metrics.exposition()
    metrics.catalogue_read("open", "hit")
    text = metrics.exposition()[0].decode()
    assert 'gateway_catalogue_reads_total{list="open",result="hit"} 2.0' in text


@pytest.mark.timeout(10)
async def test_tallies_reach_the_registry_without_a_scrape() -> None:
    """With several workers a scrape reads the shared files, not this process's tally:
    the tally must get there on its own within FOLD_EVERY_S."""
    metrics = Metrics()
    metrics.request_done("/v1/sports", "GET", 200, 0.001)
    child = metrics.http_requests.labels("/v1/sports", "GET", "200")
    assert child._value.get() == 0  # tallied, not folded yet
    await asyncio.sleep(FOLD_EVERY_S + 0.2)
    assert child._value.get() == 1


def test_process_stopped_folds_what_is_left() -> None:
    metrics = Metrics()

    async def serve_one() -> None:
        metrics.request_done("/v1/sports", "GET", 200, 0.001)

    asyncio.run(serve_one())  # the loop ends before its fold timer fires
    metrics.process_stopped()
    assert metrics.http_requests.labels("/v1/sports", "GET", "200")._value.get() == 1
