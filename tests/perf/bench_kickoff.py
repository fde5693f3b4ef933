"""Kick-off benchmark: a crowd far above the link budget, through the production shape.

    .venv/bin/python tests/perf/bench_kickoff.py [--viewers 5000] [--over 10] [--json out.json]

Starts the topology of ``scripts/topology`` (redis-server, the simulator, two gateways
through ``scripts/serve``, nginx with ``deploy/nginx/nginx.conf``), the default link
budget (``LINK_RATE_PER_S=150``, ``LINK_BURST=10``) and the simulator enforcing the
guide's 150 link calls a second. ``--viewers`` viewers, each its own user, arrive
evenly over ``--over`` seconds at the load balancer and ask for a player link until
they get one: nine in ten honour ``Retry-After``, one in ten asks every 0.5 s.

Prints: the last link against N / 150 s (the physical floor), each viewer's lateness
against a first-come-first-served line at the rate the bucket sustains (140/s),
requests per viewer, waits, the gateways' CPU time and peak memory, the requests
they held at once (``gateway_link_line_held``) and the line's peak length, and what
the simulator counted (calls, violations, busiest second).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.support.crowd import CrowdFigures, Viewer, run_crowd  # noqa: E402
from tests.support.topology import Topology, run_topology  # noqa: E402

API_KEY = "compose-demo-api-key-not-for-production-01"
EVENT_ID = "KICKOFF-BENCH"
RATE_PER_S, BURST = 150, 10


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def gauge(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def listed(url: str) -> bool:
    """The event is served (an unknown id waits for the next open list first)."""
    try:
        return httpx.get(url, timeout=30).status_code == 200
    except httpx.HTTPError:
        return False


class Sampler(threading.Thread):
    """Every 0.25 s: the gateways' RSS, the requests they hold, the line's length."""

    def __init__(self, topology: Topology, pids: list[int]) -> None:
        super().__init__(daemon=True)
        self.topology, self.pids = topology, pids
        self.stop = threading.Event()
        self.peak_rss_mb = 0.0
        self.peak_held = 0.0
        self.peak_line = 0.0

    def run(self) -> None:
        with httpx.Client(timeout=2.0) as client:
            while not self.stop.wait(0.25):
                self.peak_rss_mb = max(self.peak_rss_mb, sum(rss_mb(p) for p in self.pids))
                held = line = 0.0
                for url in self.topology.gateway_urls:
                    try:
                        text = client.get(f"{url}/metrics").text
                    except httpx.HTTPError:
                        continue
                    held += gauge(text, "gateway_link_line_held")
                    line = max(line, gauge(text, "gateway_link_line_length"))
                self.peak_held = max(self.peak_held, held)
                self.peak_line = max(self.peak_line, line)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--viewers", type=int, default=5000)
    parser.add_argument("--over", type=float, default=10.0, help="arrival window, seconds")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-kickoff-") as tmp:
        settings = {"LINK_RATE_PER_S": str(RATE_PER_S), "LINK_BURST": str(BURST)}
        with run_topology(Path(tmp), gateway_settings=settings) as topology:
            print("topology up", flush=True)
            sim = topology.simulator
            sim.configure(link_rate_per_s=RATE_PER_S)
            sim.load_scenario(
                [{"eventId": EVENT_ID, "eventStatusCode": "O", "title": "Bench v Kick-off"}],
                {EVENT_ID: [{"uniqueStreamName": "HLS", "streamType": "HLS"}]},
            )
            for url in topology.gateway_urls:  # both replicas know the event
                deadline = time.monotonic() + 60
                while not listed(f"{url}/v1/events/{EVENT_ID}"):
                    if time.monotonic() > deadline:
                        raise SystemExit(f"{url} never listed {EVENT_ID}")
                    time.sleep(0.2)
            sim.reset()
            sim.load_scenario(
                [{"eventId": EVENT_ID, "eventStatusCode": "O", "title": "Bench v Kick-off"}],
                {EVENT_ID: [{"uniqueStreamName": "HLS", "streamType": "HLS"}]},
            )
            sim.configure(link_rate_per_s=RATE_PER_S)
            gateways = [p.popen.pid for p in topology.processes if p.name.startswith("gateway")]
            viewers = [
                Viewer(i, f"kickoff-{i}", topology.url, impatient=i % 10 == 9)
                for i in range(args.viewers)
            ]
            print(f"{len(viewers)} viewers over {args.over} s", flush=True)
            sampler = Sampler(topology, gateways)
            cpu_before = sum(cpu_seconds(p) for p in gateways)
            sampler.start()
            started = time.monotonic()
            asyncio.run(
                run_crowd(
                    viewers,
                    over_s=args.over,
                    path=f"/v1/events/{EVENT_ID}/links",
                    body={"streamName": "HLS", "kind": "player"},
                    api_key=API_KEY,
                )
            )
            elapsed = time.monotonic() - started
            sampler.stop.set()
            sampler.join()
            cpu = sum(cpu_seconds(p) for p in gateways) - cpu_before
            stats = sim.stats()

    figures = CrowdFigures.of(viewers, RATE_PER_S - BURST)
    result = {
        "viewers": args.viewers,
        "arrivalWindowS": args.over,
        "floorS": args.viewers / RATE_PER_S,
        **asdict(figures),
        "lastLinkOverFloor": figures.last_link_s / (args.viewers / RATE_PER_S),
        "gatewayCpuS": round(cpu, 2),
        "gatewayCpuMsPerRequest": round(1000 * cpu / max(1, sum(v.requests for v in viewers)), 3),
        "gatewayPeakRssMb": round(sampler.peak_rss_mb, 1),
        "peakRequestsHeld": sampler.peak_held,
        "peakLineLength": sampler.peak_line,
        "elapsedS": round(elapsed, 1),
        "upstreamCalls": stats["calls"]["stream_link"],
        "upstreamViolations": stats["violations"]["stream_link"],
        "upstreamMaxPerSecond": stats["maxPerSecond"]["stream_link"],
        "refusals": dict(Counter(p for v in viewers for p in v.problems)),
    }
    for key, value in result.items():
        print(f"{key:>24}: {round(value, 3) if isinstance(value, float) else value}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0 if figures.served == args.viewers and stats["violations"]["stream_link"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
