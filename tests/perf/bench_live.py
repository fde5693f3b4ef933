"""Live-subscriber benchmark: how many ``GET /v1/events/live`` streams one gateway
worker holds, what each costs in resident memory, and how fast a status change
reaches all of them.

    .venv/bin/python tests/perf/bench_live.py [--subscribers 10000]

One gateway worker (uvicorn, embedded store) against the simulator as a real HTTP
server, with event lists every second. A separate load-generator process (this file
with ``--generate``, asyncio protocols on raw sockets, uvloop) opens the streams and
reads each one's snapshot; the gateway's resident memory is read from /proc before and
after. Then the simulator opens a pending event; the gateway logs when it published the
change (``live_changes_published``, when the new open list was installed) and the
generator stamps when each stream received it. Both run on this machine, so their
clocks agree; the figure includes the generator's own delay in reading 10,000 sockets.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.support.gateway import gateway_env, run_gateway  # noqa: E402
from tests.support.simulator import run_simulator  # noqa: E402

API_KEY = "bench-api-key-0123456789abcdef0123456789"
TARGET = "BENCH-LIVE-TARGET"
OPEN_EVENTS = 20


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def scenario() -> list[dict[str, object]]:
    now = datetime.now(UTC)
    start = max(now - timedelta(minutes=5), now.replace(hour=0, minute=0, second=1))
    base = {
        "sportCode": "FT",
        "startTime": _iso(start),
        "estimatedEndTime": _iso(now + timedelta(hours=2)),
        "geoAllow": "GB,IE",
        "geoBlock": "",
    }
    events: list[dict[str, object]] = [
        {**base, "eventId": f"BENCH-LIVE-{n}", "eventStatusCode": "O", "title": f"Match {n}"}
        for n in range(OPEN_EVENTS)
    ]
    events.append({**base, "eventId": TARGET, "eventStatusCode": "P", "title": "Target"})
    return events


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def raise_nofile() -> int:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


# --- the load generator (a separate process) ----------------------------------------


class Stream(asyncio.Protocol):
    def __init__(self, request: bytes, marker: bytes, done: dict[str, Any]) -> None:
        self.request = request
        self.marker = marker
        self.done = done
        self.buffer = b""
        self.snapshot = False
        self.changed_at: float | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        if self.changed_at is not None:
            return
        self.buffer += data
        if not self.snapshot and b"event: snapshot" in self.buffer:
            self.snapshot = True
            self.done["snapshots"] += 1
            self.buffer = self.buffer[self.buffer.index(b"event: snapshot") :][-256:]
        if self.snapshot and self.marker in self.buffer:
            self.changed_at = time.time()
            self.done["changes"] += 1
            if self.done["changes"] >= self.done["expected"]:
                self.done["all"].set()
        self.buffer = self.buffer[-256:]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True


async def generate(port: int, count: int, timeout_s: float) -> None:
    import uvloop

    uvloop.install()
    loop = asyncio.get_running_loop()
    request = (
        "GET /v1/events/live HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
        f"X-API-Key: {API_KEY}\r\nX-User-Id: bench\r\n\r\n"
    ).encode()
    marker = f'"eventId":"{TARGET}","change":"opened"'.encode()
    done: dict[str, Any] = {"snapshots": 0, "changes": 0, "expected": count}
    done["all"] = asyncio.Event()
    streams: list[Stream] = []
    errors = 0
    gate = asyncio.Semaphore(200)

    async def open_one() -> None:
        nonlocal errors
        async with gate:
            stream = Stream(request, marker, done)
            try:
                await loop.create_connection(lambda: stream, "127.0.0.1", port)
            except OSError:
                errors += 1
                return
            streams.append(stream)

    started = time.monotonic()
    await asyncio.gather(*(open_one() for _ in range(count)))
    while done["snapshots"] < len(streams) and time.monotonic() - started < timeout_s:  # noqa: ASYNC110
        await asyncio.sleep(0.1)  # a progress poll with a deadline
    done["expected"] = done["snapshots"]
    print(
        json.dumps(
            {
                "connected": len(streams),
                "snapshots": done["snapshots"],
                "errors": errors,
                "seconds": round(time.monotonic() - started, 2),
            }
        ),
        flush=True,
    )
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(done["all"].wait(), timeout_s)
    arrivals = [s.changed_at for s in streams if s.changed_at is not None]
    print(
        json.dumps({"arrivals": arrivals, "closed": sum(s.closed for s in streams)}),
        flush=True,
    )


# --- the benchmark --------------------------------------------------------------------


def published_at(log_text: str, after: float) -> float | None:
    for line in log_text.splitlines():
        if '"live_changes_published"' not in line:
            continue
        record = json.loads(line)
        at = datetime.fromisoformat(record["timestamp"]).timestamp()
        if at >= after:
            return float(at)
    return None


def run(count: int) -> dict[str, Any]:
    limit = raise_nofile()
    env_sim = {"SIM_EVENTS_MIN_INTERVAL_S": "1"}
    with run_simulator(env=env_sim) as simulator, tempfile.TemporaryDirectory() as logs:
        simulator.load_scenario(scenario())
        env = gateway_env(
            simulator.api_url,
            None,
            EVENTS_MIN_INTERVAL_S="1",
            CATALOGUE_DAYS_BACK="0",
            CATALOGUE_DAYS_AHEAD="1",
            API_KEYS=API_KEY,
            SSE_MAX_CLIENTS=str(count + 100),
            SSE_MAX_PER_USER="0",  # one generator, one address: the per-client limits off
            SSE_MAX_PER_IP="0",
            REPLICA_COUNT="1",
        )
        with run_gateway(env, Path(logs), name="live-bench") as gateway:
            deadline = time.monotonic() + 30
            while httpx.get(f"{gateway.url}/v1/events/open").status_code != 200:
                assert time.monotonic() < deadline, "the gateway never warmed"
                time.sleep(0.1)
            time.sleep(3)
            pid = gateway.process.pid
            rss_before = rss_kb(pid)
            generator = subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    "--generate",
                    "--port",
                    str(gateway.port),
                    "--subscribers",
                    str(count),
                ],
                stdout=subprocess.PIPE,
                text=True,
            )
            assert generator.stdout is not None
            connected = json.loads(generator.stdout.readline())
            time.sleep(3)
            rss_after = rss_kb(pid)
            flipped = time.time()
            simulator.set_status(TARGET, "O")
            arrivals = json.loads(generator.stdout.readline())
            generator.wait(timeout=60)
            time.sleep(0.5)
            published = published_at(gateway.log_text(), flipped)
    stamps: list[float] = arrivals["arrivals"]
    latencies = sorted(at - published for at in stamps) if published else []
    reached = len(latencies)

    def pct(q: float) -> float | None:
        if not latencies:
            return None
        return round(latencies[min(reached - 1, int(q * reached))], 3)

    subscribers = connected["snapshots"]
    return {
        "nofile_limit": limit,
        "subscribers_requested": count,
        "subscribers_connected": subscribers,
        "connect_errors": connected["errors"],
        "connect_seconds": connected["seconds"],
        "rss_before_mb": round(rss_before / 1024, 1),
        "rss_after_mb": round(rss_after / 1024, 1),
        "rss_per_subscriber_kb": round((rss_after - rss_before) / max(1, subscribers), 1),
        "change_reached": reached,
        "change_seconds_p50": pct(0.50),
        "change_seconds_p99": pct(0.99),
        "change_seconds_max": round(latencies[-1], 3) if latencies else None,
        "within_1s": round(sum(lat <= 1.0 for lat in latencies) / max(1, subscribers), 4),
        "mean_seconds": round(statistics.fmean(latencies), 3) if latencies else None,
        "streams_closed_early": arrivals["closed"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--generate", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args()
    if args.generate:
        raise_nofile()
        asyncio.run(generate(args.port, args.subscribers, args.timeout))
        return
    print(json.dumps(run(args.subscribers), indent=2))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
