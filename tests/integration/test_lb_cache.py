"""The load balancer's micro-cache for catalogue reads, through the real nginx of
``deploy/nginx/nginx.conf`` in front of two real gateways (``run_topology``).

What a client sees: a second read within the answer's ``max-age`` (5 s) is a HIT with
the same body, ``ETag``, ``Age`` and ``Date`` (the gateway's, so ``now - Date`` is the
time the answer has spent in the cache) and never reaches a gateway; ``If-None-Match``
gets a 304 whether the entry was cached or not; the query string is part of the key;
link requests, and reads carrying credentials, are never cached.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.support.polling import wait_until
from tests.support.topology import Topology, run_topology

pytestmark = pytest.mark.slow

INTERVAL_S = "2"
API_KEY = "lb-cache-api-key-0123456789abcdef012345"
OPEN = "LBC-OPEN-1"
LINKS_ROUTE = "/v1/events/{eventId}/links"


def requests_counted(topology: Topology, route: str) -> float:
    """``gateway_http_requests_total`` for ``route``, summed over both gateways."""
    pattern = rf'^gateway_http_requests_total\{{[^}}]*route="{re.escape(route)}"[^}}]*\}} (\S+)$'
    total = 0.0
    for url in topology.gateway_urls:
        text = httpx.get(f"{url}/metrics", timeout=5).text
        total += sum(float(v) for v in re.findall(pattern, text, flags=re.MULTILINE))
    return total


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    with run_topology(
        tmp_path_factory.mktemp("lb-cache"),
        gateway_settings={
            "EVENTS_MIN_INTERVAL_S": INTERVAL_S,
            "API_KEYS": API_KEY,
            "GEO_UNKNOWN_ALLOWED": "true",
            "DEFAULT_REDIRECT_URL": "https://operator.example/after",
        },
        simulator_settings={"SIM_EVENTS_MIN_INTERVAL_S": INTERVAL_S},
    ) as running:
        start = datetime.now(UTC) - timedelta(minutes=20)
        running.simulator.load_scenario(
            [
                {
                    "eventId": OPEN,
                    "eventStatusCode": "O",
                    "title": "Cache v Balancer",
                    "sportCode": "FT",
                    "startTime": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "estimatedEndTime": (start + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                }
            ],
            {OPEN: [{"uniqueStreamName": "HLS", "streamType": "HLS"}]},
        )
        wait_until(  # each replica holds the scenario's open list
            lambda: all(
                OPEN in httpx.get(f"{url}/v1/events/open", timeout=5).text
                for url in running.gateway_urls
            ),
            "the open list on every replica",
            timeout_s=30,
            every_s=0.2,
        )
        yield running
        assert running.exited() == [], "a process of the topology died during the tests"


@pytest.fixture
def lb(topology: Topology) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=topology.url, timeout=10.0) as client:
        yield client


def fresh_key(path: str) -> str:
    """``path`` with a query of its own: a key no other test has cached (the gateway
    ignores parameters it does not know)."""
    separator = "&" if "?" in path else "?"
    return f"{path}{separator}probe={uuid.uuid4().hex}"


@pytest.mark.parametrize(
    "path",
    ["/v1/sports", "/v1/events/open", f"/v1/events/{OPEN}", f"/v1/events/{OPEN}/streams"],
)
def test_a_second_read_within_max_age_is_a_hit(
    topology: Topology, lb: httpx.Client, path: str
) -> None:
    route = path.replace(OPEN, "{eventId}")
    url = fresh_key(path)
    before = requests_counted(topology, route)
    first = lb.get(url)
    second = lb.get(url)
    assert first.status_code == second.status_code == 200, first.text
    assert first.headers["x-cache-status"] == "MISS"
    assert second.headers["x-cache-status"] == "HIT"
    assert second.content == first.content
    for header in ("etag", "age", "date", "cache-control", "content-type"):
        assert second.headers[header] == first.headers[header], header
    assert second.headers["x-request-id"] != first.headers["x-request-id"]  # this request's
    assert requests_counted(topology, route) == before + 1  # the HIT never left nginx


def test_a_hit_keeps_the_gateways_date_so_its_age_shows(lb: httpx.Client) -> None:
    """nginx replays the stored ``Age``; with the gateway's ``Date`` beside it, the
    answer's age is ``Age + (now - Date)``, not a frozen ``Age``."""
    url = fresh_key("/v1/events/open")
    first = lb.get(url)
    time.sleep(1.2)  # the stimulus: the stored answer grows older than a second
    later = lb.get(url)
    assert later.headers["x-cache-status"] == "HIT"
    assert later.headers["date"] == first.headers["date"]
    sent = datetime.strptime(later.headers["date"], "%a, %d %b %Y %H:%M:%S GMT")
    assert (datetime.now(UTC).replace(tzinfo=None) - sent).total_seconds() >= 1


def test_if_none_match_is_answered_304_cached_or_not(lb: httpx.Client) -> None:
    url = fresh_key("/v1/events/open")
    etag = lb.get(url).headers["etag"]
    cached = lb.get(url, headers={"If-None-Match": etag})
    assert cached.status_code == 304
    assert cached.headers["x-cache-status"] == "HIT"
    assert cached.headers["etag"] == etag
    assert cached.content == b""

    missed = lb.get(fresh_key("/v1/events/open"), headers={"If-None-Match": etag})
    assert missed.status_code == 304, "a cold entry is fetched in full, then compared"
    assert missed.headers["x-cache-status"] == "MISS"

    other = lb.get(url, headers={"If-None-Match": 'W/"something-else"'})
    assert other.status_code == 200
    assert other.headers["x-cache-status"] == "HIT"


def test_the_query_string_is_part_of_the_key(lb: httpx.Client) -> None:
    today = datetime.now(UTC).date()
    answers = {}
    for day in (today, today + timedelta(days=1)):
        url = fresh_key(f"/v1/events?date={day.isoformat()}")
        first, second = lb.get(url), lb.get(url)
        assert first.status_code == 200, first.text
        assert second.headers["x-cache-status"] == "HIT"
        assert second.json()["date"] == day.isoformat()
        answers[day] = second.content
    assert len(set(answers.values())) == 2


def test_link_requests_are_never_cached(topology: Topology, lb: httpx.Client) -> None:
    before = requests_counted(topology, LINKS_ROUTE)
    for user in ("lb-viewer-1", "lb-viewer-2", "lb-viewer-1"):
        response = lb.post(
            f"/v1/events/{OPEN}/links",
            json={"streamName": "HLS", "kind": "player"},
            headers={"X-API-Key": API_KEY, "X-User-Id": user},
        )
        assert response.status_code == 200, response.text
        assert "x-cache-status" not in response.headers
        assert response.headers["cache-control"] == "no-store"
    assert requests_counted(topology, LINKS_ROUTE) == before + 3


@pytest.mark.parametrize(
    "headers",
    [{"X-API-Key": API_KEY}, {"Authorization": "Bearer not-checked-on-reads"}],
    ids=["api-key", "authorization"],
)
def test_reads_with_credentials_bypass_the_cache(
    topology: Topology, lb: httpx.Client, headers: dict[str, str]
) -> None:
    url = fresh_key("/v1/sports")
    before = requests_counted(topology, "/v1/sports")
    for _ in range(2):
        response = lb.get(url, headers=headers)
        assert response.status_code == 200
        assert response.headers["x-cache-status"] == "BYPASS"
    assert requests_counted(topology, "/v1/sports") == before + 2
    assert lb.get(url).headers["x-cache-status"] == "MISS"  # nothing was stored


def test_an_expired_answer_is_served_stale_when_no_replica_answers(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Both replicas gone (a fleet of its own, killed): the expired entry is served
    ``STALE``, the same bytes, rather than a 502.

    nginx keeps an answer fresh until ``valid_sec = ngx_time() + max-age``, in whole
    seconds of its cached clock when it stored the answer, and calls it stale only once
    ``valid_sec < ngx_time()``: a ``max-age=5`` entry is a HIT for between 5 and 6 s
    after it was stored (the upstream's ``Age`` does not count). So the test does not
    sleep a guessed time: the replicas are killed while the entry is fresh (a HIT never
    reaches them, and nothing refreshes an entry before it expires), then the entry is
    read until it stops being a HIT.
    """
    with (
        run_topology(
            tmp_path_factory.mktemp("lb-stale"),
            gateway_settings={"EVENTS_MIN_INTERVAL_S": INTERVAL_S},
            simulator_settings={"SIM_EVENTS_MIN_INTERVAL_S": INTERVAL_S},
        ) as running,
        httpx.Client(base_url=running.url, timeout=10.0) as client,
    ):
        deadline = time.monotonic() + 30
        while True:
            sent = time.monotonic()  # nginx stores the answer after this
            if (first := client.get("/v1/sports")).status_code == 200:
                break
            assert time.monotonic() < deadline, first.text
            time.sleep(0.2)
        assert first.headers["x-cache-status"] == "MISS"
        assert client.get("/v1/sports").headers["x-cache-status"] == "HIT"
        for process in running.processes:
            if process.name.startswith("gateway"):
                process.popen.kill()
                process.popen.wait(timeout=10)
        for url in running.gateway_urls:  # neither replica answers any more
            with pytest.raises(httpx.TransportError):
                httpx.get(f"{url}/healthz", timeout=2)

        stale = wait_until(  # max-age=5, stale-if-error=600
            lambda: client.get("/v1/sports"),
            "the entry expired",
            until=lambda answer: answer.headers.get("x-cache-status") != "HIT",
            timeout_s=30,
            every_s=0.1,
        )
        assert time.monotonic() - sent >= 5, "served stale before max-age=5 ran out"
        assert stale.status_code == 200, stale.text
        assert stale.headers["x-cache-status"] == "STALE"
        assert stale.content == first.content
        assert stale.headers["etag"] == first.headers["etag"]
