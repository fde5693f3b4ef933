"""The deployment, run for real: the compose topology from local processes
(``tests/support/topology.py``, as ``scripts/topology`` runs it), and ``scripts/serve``
with two workers."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.polling import wait_until
from tests.support.redis_server import free_port, run_redis_server
from tests.support.topology import SERVE, Topology, child_env, run_topology

pytestmark = pytest.mark.slow

EVENTS_INTERVAL_S = 2.0
ROUTED_REQUESTS = 10


def poll(
    fetch: Callable[[], httpx.Response], ok: Callable[[httpx.Response], bool], timeout_s: float
) -> httpx.Response:
    """Call ``fetch`` until ``ok`` holds for its answer; the last answer either way."""
    try:
        return wait_until(fetch, "an answer", until=ok, timeout_s=timeout_s, every_s=0.2)
    except AssertionError:
        return fetch()


def requests_counted(metrics_text: str, route: str) -> float:
    """Sum of ``gateway_http_requests_total`` for ``route`` (all methods and statuses)."""
    pattern = rf'^gateway_http_requests_total\{{[^}}]*route="{re.escape(route)}"[^}}]*\}} (\S+)$'
    return sum(float(value) for value in re.findall(pattern, metrics_text, flags=re.MULTILINE))


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    interval = str(EVENTS_INTERVAL_S)
    with run_topology(
        tmp_path_factory.mktemp("topology"),
        gateway_settings={"EVENTS_MIN_INTERVAL_S": interval},
        simulator_settings={"SIM_EVENTS_MIN_INTERVAL_S": interval},
    ) as running:
        yield running
        assert running.exited() == [], "a process of the topology died during the tests"


@pytest.fixture(scope="module")
def lb(topology: Topology) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=topology.url, timeout=10.0) as client:
        yield client


def test_through_the_load_balancer(topology: Topology, lb: httpx.Client) -> None:
    health = lb.get("/healthz")
    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    assert health.headers["server"] == "nginx"

    ready = poll(lambda: lb.get("/readyz"), lambda r: r.status_code == 200, timeout_s=20)
    assert ready.status_code == 200, ready.text
    assert ready.json() == {
        "status": "ok",
        "checks": {"store": "ok", "catalogue": "warm", "tasks": "ok"},
    }

    events = poll(lambda: lb.get("/v1/events/open"), lambda r: r.status_code == 200, 20)
    assert events.status_code == 200, events.text
    body = events.json()
    assert body["events"], "the simulator always has events in progress"
    assert {event["eventStatusCode"] for event in body["events"]} == {"O"}
    assert events.headers["etag"]

    # The balancer keeps the replicas' metrics private.
    assert lb.get("/metrics").status_code == 404


def test_both_replicas_serve_traffic_from_the_balancer(
    topology: Topology, lb: httpx.Client
) -> None:
    def healthz_counts() -> list[float]:
        return [
            requests_counted(httpx.get(f"{url}/metrics", timeout=5).text, "/healthz")
            for url in topology.gateway_urls
        ]

    before = healthz_counts()
    for _ in range(ROUTED_REQUESTS):
        assert lb.get("/healthz").status_code == 200
    after = healthz_counts()
    grown = [b - a for a, b in zip(before, after, strict=True)]
    assert sum(grown) == ROUTED_REQUESTS
    assert all(count >= 1 for count in grown), f"round robin skipped a replica: {grown}"


def test_one_refresh_leader_and_no_upstream_violation(topology: Topology, lb: httpx.Client) -> None:
    poll(lambda: lb.get("/v1/events/open"), lambda r: r.status_code == 200, 20)
    leaders = []
    for url in topology.gateway_urls:
        text = httpx.get(f"{url}/metrics", timeout=5).text
        match = re.search(r"^gateway_refresh_leader (\S+)$", text, flags=re.MULTILINE)
        assert match is not None
        leaders.append(float(match.group(1)))
    assert sorted(leaders) == [0.0, 1.0]

    stats = topology.simulator.stats()
    assert stats["calls"].get("event_open", 0) >= 1
    assert all(count == 0 for count in stats["violations"].values()), stats["violations"]
    spacing = stats["minSpacingS"].get("event_open")
    assert spacing is None or spacing >= EVENTS_INTERVAL_S


# --- scripts/serve with two workers ---------------------------------------------------


def multiprocess_pids(directory: Path) -> set[int]:
    return {
        int(m.group(1)) for p in directory.glob("*.db") if (m := re.search(r"_(\d+)\.db$", p.name))
    }


def test_serve_with_two_workers_aggregates_metrics(tmp_path: Path) -> None:
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_999999.db").write_bytes(b"left by an earlier run")
    port = free_port()
    with run_redis_server(tmp_path / "redis") as redis_url:
        env = child_env(
            {
                "HOST": "127.0.0.1",
                "PORT": str(port),
                "WEB_CONCURRENCY": "2",
                "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
                "PYTHON": sys.executable,
                "IGM_MODE": "simulator",
                "REDIS_URL": redis_url,
                "LOG_FORMAT": "json",
            }
        )
        log_path = tmp_path / "serve.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [str(SERVE)], cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        try:
            url = f"http://127.0.0.1:{port}"

            def both_workers_up() -> bool:
                assert proc.poll() is None, log_path.read_text()
                return len(multiprocess_pids(metrics_dir) - {999999}) >= 2 and _answers(url)

            wait_until(both_workers_up, "two workers answering", timeout_s=30, every_s=0.1)
            assert 999999 not in multiprocess_pids(metrics_dir), "stale files were kept"
            workers = multiprocess_pids(metrics_dir)
            assert len(workers) == 2
            assert proc.pid not in workers  # the supervisor serves nothing itself

            for _ in range(20):
                with httpx.Client(timeout=5) as fresh:  # new connection: any worker
                    assert fresh.get(f"{url}/healthz").status_code == 200
            # Whichever worker answers, it reports the whole process group: each
            # worker writes its values straight to the shared files.
            for _ in range(4):
                with httpx.Client(timeout=5) as fresh:
                    text = fresh.get(f"{url}/metrics").text
                assert requests_counted(text, "/healthz") >= 20
                assert "gateway_refresh_leader 1.0" in text
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=25)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        assert proc.returncode == 0, log_path.read_text()


def test_serve_starts_one_worker_without_redis(tmp_path: Path) -> None:
    port = free_port()
    env = child_env(
        {
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "WEB_CONCURRENCY": "3",
            "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
            "PYTHON": sys.executable,
            "IGM_MODE": "simulator",
        }
    )
    with (tmp_path / "serve.log").open("wb") as log:
        proc = subprocess.Popen(
            [str(SERVE)], cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:

        def answering() -> bool:
            assert proc.poll() is None
            return _answers(f"http://127.0.0.1:{port}")

        wait_until(answering, "the gateway answering", timeout_s=30, every_s=0.1)
        assert multiprocess_pids(tmp_path / "metrics") == {proc.pid}  # one process, no workers
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=25)
    assert "WEB_CONCURRENCY=3 needs REDIS_URL" in (tmp_path / "serve.log").read_text()


def test_serve_rejects_a_bad_worker_count(tmp_path: Path) -> None:
    env = child_env({"WEB_CONCURRENCY": "two", "PYTHON": sys.executable})
    result = subprocess.run(
        [str(SERVE)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=10
    )
    assert result.returncode == 2
    assert "WEB_CONCURRENCY must be a positive whole number" in result.stderr


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=0.5).status_code == 200
    except httpx.TransportError:
        return False
