"""Load-balancer benchmark: a catalogue read answered from nginx's micro-cache against
nginx serving a static file of the same bytes, through the same nginx, in the same run.

    .venv/bin/python tests/perf/bench_lb.py [--seconds 5] [--connections 32] [--rounds 3]

Starts the topology of ``scripts/topology`` (redis-server, the simulator, two gateways
through ``scripts/serve``, nginx with ``deploy/nginx/nginx.conf``), with one extra
location in nginx's server block: ``/bench/open.json``, the bytes of a
``GET /v1/events/open`` answer, served with ``alias``. Then ``wrk`` alternates between

- **cached**: ``GET /v1/events/open`` through the micro-cache (a HIT, but for one
  background refresh per key every 5 s, as in production);
- **static**: ``GET /bench/open.json``;
- **uncached**: ``GET /v1/events/open`` with ``X-API-Key`` (the cache is bypassed:
  every request reaches a gateway), one round, for scale.

Prints requests/s, p50/p99 and nginx's CPU time per request (its worker processes,
``/proc``) for each, how many of the cached rounds' requests reached the gateways
(their own ``/metrics``), and the cached/static ratios of rate and of CPU per request
(medians of rounds).
Needs ``wrk`` (apt-get install -y wrk) and nginx.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.support.topology import Topology, run_topology  # noqa: E402

PATH = "/v1/events/open"
STATIC = "/bench/open.json"


@dataclass(frozen=True)
class Round:
    rps: float
    requests: int
    p50_ms: float
    p99_ms: float
    non_2xx: int
    nginx_cpu_us: float  # CPU time of nginx's workers per request


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of processes so far (``/proc/<pid>/stat``)."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def nginx_workers(topology: Topology) -> list[int]:
    """nginx's worker processes (not its cache manager and loader)."""
    [master] = [p.popen.pid for p in topology.processes if p.name == "nginx"]
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return [
        int(pid)
        for pid in children
        if b"worker process" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]


def wrk(
    url: str,
    seconds: int,
    connections: int,
    workers: list[int],
    headers: tuple[str, ...] = (),
) -> Round:
    cpu_before = cpu_seconds(workers)
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for header in headers:
        command += ["-H", header]
    out = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    cpu = cpu_seconds(workers) - cpu_before

    def number(pattern: str) -> str:
        match = re.search(pattern, out, re.MULTILINE)
        if match is None:
            raise RuntimeError(f"unexpected wrk output:\n{out}")
        return match.group(1)

    def pct(label: str) -> float:
        match = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
        if match is None:
            raise RuntimeError(f"unexpected wrk output:\n{out}")
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    requests = int(number(r"(\d+) requests in"))
    return Round(
        rps=float(number(r"Requests/sec:\s+([\d.]+)")),
        requests=requests,
        p50_ms=pct("50"),
        p99_ms=pct("99"),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        nginx_cpu_us=cpu / requests * 1e6,
    )


def gateway_reads(topology: Topology) -> float:
    """``GET /v1/events/open`` requests the gateways have answered, both together."""
    time.sleep(1.3)  # each folds its tallies within a second
    pattern = r'^gateway_http_requests_total\{[^}]*route="/v1/events/open"[^}]*\} (\S+)$'
    return sum(
        float(value)
        for url in topology.gateway_urls
        for value in re.findall(pattern, httpx.get(f"{url}/metrics").text, re.MULTILINE)
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install -y wrk")

    with tempfile.TemporaryDirectory(prefix="bench-lb-") as tmp:
        work = Path(tmp)
        body_file = work / "open.json"
        snippet = (
            f"        location = {STATIC} {{\n"
            f"            alias {body_file};\n"
            "            default_type application/json;\n"
            "        }\n"
        )
        settings = {"LOG_LEVEL": "warning"}
        with run_topology(
            work / "fleet", gateway_settings=settings, nginx_server_snippet=snippet
        ) as topology:
            deadline = time.monotonic() + 30
            while (answer := httpx.get(topology.url + PATH)).status_code != 200:
                if time.monotonic() > deadline:
                    sys.exit(f"no open list: {answer.status_code} {answer.text}")
                time.sleep(0.2)
            body_file.write_bytes(answer.content)
            static = httpx.get(topology.url + STATIC)
            assert static.content == answer.content, "the static file is not the same bytes"
            cached_url, static_url = topology.url + PATH, topology.url + STATIC
            workers = nginx_workers(topology)
            for url in (cached_url, static_url):
                wrk(url, 2, args.connections, workers)  # warm-up
            results: dict[str, list[Round]] = {"cached": [], "static": []}
            reached = 0.0
            for _ in range(args.rounds):
                before = gateway_reads(topology)
                results["cached"].append(wrk(cached_url, args.seconds, args.connections, workers))
                reached += gateway_reads(topology) - before
                results["static"].append(wrk(static_url, args.seconds, args.connections, workers))
            results["uncached"] = [
                wrk(cached_url, args.seconds, args.connections, workers, ("X-API-Key: bench",))
            ]
            header_bytes = {
                "cached": len(httpx.get(cached_url).headers.raw),
                "static": len(static.headers.raw),
            }

    print(
        f"GET {PATH} through nginx, body {len(answer.content)} bytes, "
        f"wrk -t1 -c{args.connections} -d{args.seconds}s, {args.rounds} rounds"
    )
    for name, rows in results.items():
        print(
            f"{name:9s} {statistics.median(r.rps for r in rows):9.0f} req/s"
            f"   p50 {statistics.median(r.p50_ms for r in rows):6.2f} ms"
            f"   p99 {statistics.median(r.p99_ms for r in rows):6.2f} ms"
            f"   nginx CPU {statistics.median(r.nginx_cpu_us for r in rows):5.1f} us/request"
            f"   non-2xx {sum(r.non_2xx for r in rows)}"
        )
    print(f"header lines: cached {header_bytes['cached']}, static {header_bytes['static']}")
    sent = sum(r.requests for r in results["cached"])
    print(f"cached rounds: {sent} requests, {reached:.0f} reached the gateways")
    pairs = list(zip(results["cached"], results["static"], strict=True))
    ratios = [c.rps / s.rps for c, s in pairs]
    print(
        f"ratio cached/static: {statistics.median(ratios):.2f}"
        f" (rounds: {', '.join(f'{x:.2f}' for x in ratios)})"
    )
    cpu_ratios = [s.nginx_cpu_us / c.nginx_cpu_us for c, s in pairs]
    print(
        f"nginx CPU per request, static/cached: {statistics.median(cpu_ratios):.2f}"
        f" (rounds: {', '.join(f'{x:.2f}' for x in cpu_ratios)})"
    )


if __name__ == "__main__":
    main()
