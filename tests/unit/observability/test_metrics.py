"""The per-request metrics land in the registry as direct observations would, at once."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from app.observability.metrics import LATENCY_BUCKETS, Metrics
from app.upstream.client import UpstreamCall

# Values on, between, below and above the bucket bounds.
SAMPLES = [0.0, 0.0001, 0.0005, 0.0007, 0.005, 0.0050001, 0.3, 10.0, 12.5, 3600.0]


def samples(text: str, prefix: str) -> list[str]:
    return sorted(
        line for line in text.splitlines() if line.startswith(prefix) and "_created" not in line
    )


def test_requests_match_direct_observations() -> None:
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


def test_a_request_is_in_the_registry_without_a_scrape() -> None:
    """With several workers a scrape reads the shared files, not this process's memory:
    every value must be in the registry as soon as it is recorded."""
    metrics = Metrics()
    value = metrics.registry.get_sample_value
    labels = {"route": "/v1/sports", "method": "GET"}
    metrics.request_done("/v1/sports", "GET", 200, 0.003)
    assert value("gateway_http_requests_total", labels | {"status": "200"}) == 1
    assert value("gateway_http_request_duration_seconds_count", labels) == 1
    assert value("gateway_http_request_duration_seconds_sum", labels) == pytest.approx(0.003)
    assert value("gateway_http_request_duration_seconds_bucket", labels | {"le": "0.0025"}) == 0
    assert value("gateway_http_request_duration_seconds_bucket", labels | {"le": "0.005"}) == 1


def test_catalogue_reads_are_counted() -> None:
    metrics = Metrics()
    for result in ("hit", "hit", "stale", "miss"):
        metrics.catalogue_read("open", result)
    value = metrics.registry.get_sample_value
    for result, count in (("hit", 2), ("stale", 1), ("miss", 1)):
        assert value("gateway_catalogue_reads_total", {"list": "open", "result": result}) == count
    text = metrics.exposition()[0].decode()
    assert 'gateway_catalogue_reads_total{list="open",result="hit"} 2.0' in text


def test_links_and_upstream_calls_are_counted() -> None:
    metrics = Metrics()
    metrics.link_minted("hls", "upstream")
    metrics.link_minted("hls", "dedupe")
    metrics.link_minted("hls", "dedupe")
    metrics.observe_upstream(UpstreamCall("stream_link", "ok", None, 0.04))
    metrics.observe_upstream(UpstreamCall("stream_link", "operation_error", 304, 0.2))
    value = metrics.registry.get_sample_value
    assert value("gateway_links_minted_total", {"kind": "hls", "source": "upstream"}) == 1
    assert value("gateway_links_minted_total", {"kind": "hls", "source": "dedupe"}) == 2
    ok = {"method": "stream_link", "outcome": "ok", "operation_code": ""}
    failed = {"method": "stream_link", "outcome": "operation_error", "operation_code": "304"}
    assert value("gateway_upstream_calls_total", ok) == 1
    assert value("gateway_upstream_calls_total", failed) == 1
    latency = {"method": "stream_link"}
    assert value("gateway_upstream_call_duration_seconds_count", latency) == 2
    assert value("gateway_upstream_call_duration_seconds_sum", latency) == pytest.approx(0.24)


def test_every_metric_declares_its_labels() -> None:
    metrics = Metrics()
    declared = {family.name for metric in metrics.label_names for family in metric.describe()}
    assert declared == {family.name for family in metrics.registry.collect()}
