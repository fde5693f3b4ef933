"""Benchmark of link minting: the gateway's own overhead and one worker's throughput.

Run from the repository root (takes about a minute)::

    .venv/bin/python tests/perf/bench_links.py [--seconds 8] [--json results.json]

What runs: a real redis-server, the simulator as a subprocess (its link limit raised so
it answers at once), and ONE gateway worker started the documented way
(``tests/support/gateway.py``: uvicorn, ``--no-proxy-headers``, JSON logs at info). The
load generator is a lean keep-alive HTTP/1.1 client on uvloop (httpx would spend more
CPU than the gateway: everything shares the machine's cores).

Phases:

1. **Overhead at the default budget's load**: 150 requests/s, evenly paced, each from
   a new user, with the default link settings (150/s, burst 10). The same generator
   first drives the simulator directly with what the gateway sends for one link
   (stream/link, and liveStream for raw), at the same pace: overhead = gateway latency
   - simulator latency, per percentile. Cross-check: the gateway's own histograms
   (request time - upstream call time, means).
2. **Throughput**: the bucket raised (``LINK_RATE_PER_S=100000``, per-user limit high,
   dedupe off), closed loop with ``--concurrency`` connections for ``--seconds``:
   links/s one worker sustains, raw and player.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import quote, urlencode, urlsplit

import orjson

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.support.gateway import GatewayProcess, gateway_env, run_gateway  # noqa: E402
from tests.support.redis_server import run_redis_server  # noqa: E402
from tests.support.simulator import SimulatorHandle, run_simulator  # noqa: E402

API_KEY = "bench-api-key"
EVENT_ID = "BENCH-OPEN-1"
CUSTOMER_UID = "demo-customer-uid"
SERVER_IP = "127.0.0.1"
REDIRECT = "https://operator.example/after"
Kind = Literal["raw", "player"]


# --- a lean HTTP/1.1 keep-alive client -----------------------------------------------


class Connection:
    """One keep-alive connection; requests are pre-encoded bytes, answers are
    (status, body). Needs Content-Length answers (uvicorn sends them)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def exchange(self, request: bytes) -> tuple[int, bytes]:
        self._writer.write(request)
        head = await self._reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        match = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
        length = int(match.group(1)) if match else 0
        body = await self._reader.readexactly(length) if length else b""
        return status, body

    def close(self) -> None:
        self._writer.close()


def encode_request(
    method: str, host: str, path: str, headers: dict[str, str], body: bytes = b""
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


# A "job" is one logical operation (one link): it may make several exchanges.
Job = Callable[[Connection, int], Awaitable[bool]]


@dataclass
class Run:
    seconds: float
    latencies_ms: list[float] = field(default_factory=list)
    failures: int = 0
    late_starts: int = 0  # open loop: slots that started > 5 ms late (generator starved)

    @property
    def rate(self) -> float:
        return len(self.latencies_ms) / self.seconds if self.seconds else 0.0


async def paced(host: str, port: int, rate: float, seconds: float, job: Job) -> Run:
    """Open loop: job ``i`` starts at ``i / rate``; latency from its actual start."""
    idle: list[Connection] = []
    run = Run(seconds)
    tasks: list[asyncio.Task[None]] = []
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.05

    async def one(index: int) -> None:
        conn = idle.pop() if idle else await Connection.open(host, port)
        began = time.perf_counter()
        try:
            ok = await job(conn, index)
        except (OSError, asyncio.IncompleteReadError):
            run.failures += 1
            conn.close()
            return
        run.latencies_ms.append((time.perf_counter() - began) * 1000)
        run.failures += 0 if ok else 1
        idle.append(conn)

    total = int(rate * seconds)
    for index in range(total):
        due = start + index / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -0.005:
            run.late_starts += 1
        tasks.append(asyncio.create_task(one(index)))
    await asyncio.gather(*tasks)
    for conn in idle:
        conn.close()
    return run


async def closed_loop(host: str, port: int, concurrency: int, seconds: float, job: Job) -> Run:
    """``concurrency`` connections, each sending its next job as soon as one finishes."""
    run = Run(seconds)
    counter = iter(range(10**9))
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        conn = await Connection.open(host, port)
        try:
            while time.perf_counter() < deadline:
                began = time.perf_counter()
                ok = await job(conn, next(counter))
                run.latencies_ms.append((time.perf_counter() - began) * 1000)
                run.failures += 0 if ok else 1
        finally:
            conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    run.seconds = time.perf_counter() - started
    return run


# --- jobs ---------------------------------------------------------------------------


def gateway_job(gateway_url: str, kind: Kind, prefix: str) -> Job:
    parts = urlsplit(gateway_url)
    host = parts.netloc
    body = orjson.dumps({"streamName": "HLS", "kind": kind})
    path = f"/v1/events/{EVENT_ID}/links"

    async def job(conn: Connection, index: int) -> bool:
        headers = {
            "Content-Type": "application/json",
            "X-API-Key": API_KEY,
            "X-User-Id": f"{prefix}-{index}",
        }
        status, answer = await conn.exchange(encode_request("POST", host, path, headers, body))
        return status == 200 and answer.startswith(b'{"kind"')

    return job


def simulator_job(sim_url: str, kind: Kind, prefix: str) -> Job:
    """What the gateway sends upstream for one link, sent directly."""
    parts = urlsplit(sim_url)
    host = parts.netloc
    headers = {"X-Forwarded-For": SERVER_IP, "Content-Type": "application/json"}

    async def job(conn: Connection, index: int) -> bool:
        query = urlencode(
            {
                "customerUid": CUSTOMER_UID,
                "userId": f"{prefix}-{index}",
                "userIp": "127.0.0.1",
                "eventId": EVENT_ID,
                "streamName": "HLS-RAW" if kind == "raw" else "HLS",
                "redirectUrl": REDIRECT,
            }
        )
        status, answer = await conn.exchange(
            encode_request("POST", host, f"/api/stream/link?{query}", headers)
        )
        if status != 200:
            return False
        if kind == "player":
            return True
        data = orjson.loads(answer)
        ref = data.get("streamLink") or data.get("StreamLink")
        path = f"/api/liveStream?encodedTransactionRef={quote(str(ref), safe='')}"
        status, answer = await conn.exchange(encode_request("POST", host, path, headers))
        return status == 200 and b'"OperationCode":200' in answer.replace(b" ", b"")

    return job


# --- processes ----------------------------------------------------------------------


@dataclass
class Stack:
    sim: SimulatorHandle
    redis_url: str
    log_dir: Path

    @contextmanager
    def gateway(self, name: str, **overrides: str) -> Iterator[GatewayProcess]:
        env = gateway_env(
            self.sim.api_url,
            self.redis_url,
            API_KEYS=API_KEY,
            DEFAULT_REDIRECT_URL=REDIRECT,
            LOG_LEVEL="info",
            **overrides,
        )
        with run_gateway(env, self.log_dir, name=name) as gateway:
            import httpx

            deadline = time.monotonic() + 30
            while httpx.get(f"{gateway.url}/v1/events/open").status_code != 200:
                if time.monotonic() > deadline:
                    raise RuntimeError("the gateway never fetched the open list")
                time.sleep(0.05)
            yield gateway


@contextmanager
def stack(work: Path) -> Iterator[Stack]:
    with ExitStack() as exits:
        redis_url = exits.enter_context(run_redis_server(work / "redis"))
        sim = exits.enter_context(run_simulator(env={"SIM_EVENTS_MIN_INTERVAL_S": "0"}))
        sim.configure(link_rate_per_s=10**9)  # answer at once: only the gateway limits
        sim.load_scenario(
            [{"eventId": EVENT_ID, "eventStatusCode": "O", "title": "Bench", "sportCode": "FT"}],
            {EVENT_ID: [{"uniqueStreamName": "HLS", "streamType": "HLS"}]},
        )
        yield Stack(sim, redis_url, work / "logs")


def flush(redis_url: str) -> None:
    import redis

    with redis.Redis.from_url(redis_url) as store:
        store.flushdb()


# --- metrics --------------------------------------------------------------------------

_SAMPLE = re.compile(r"^(\w+)\{([^}]*)\} ([0-9.e+-]+)$")


def scrape(gateway_url: str) -> dict[tuple[str, str], float]:
    import httpx

    text = httpx.get(f"{gateway_url}/metrics").text
    samples: dict[tuple[str, str], float] = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match:
            samples[(match.group(1), match.group(2))] = float(match.group(3))
    return samples


def metric_sum(samples: dict[tuple[str, str], float], name: str, *labels: str) -> float:
    return sum(
        value
        for (metric, label_text), value in samples.items()
        if metric == name and all(label in label_text for label in labels)
    )


@dataclass
class ServerSide:
    """Means per link from the gateway's own histograms (deltas over a phase)."""

    request_ms: float
    upstream_ms: float
    budget_waits: float

    @property
    def overhead_ms(self) -> float:
        return self.request_ms - self.upstream_ms


def server_side(
    before: dict[tuple[str, str], float], after: dict[tuple[str, str], float]
) -> ServerSide:
    route = 'route="/v1/events/{eventId}/links"'

    def delta(name: str, *labels: str) -> float:
        return metric_sum(after, name, *labels) - metric_sum(before, name, *labels)

    requests = delta("gateway_http_request_duration_seconds_count", route)
    request_s = delta("gateway_http_request_duration_seconds_sum", route)
    upstream_s = sum(
        delta("gateway_upstream_call_duration_seconds_sum", f'method="{m}"')
        for m in ("stream_link", "live_stream")
    )
    waits = delta("gateway_budget_decisions_total", 'method="stream_link"', 'decision="waited"')
    per = max(requests, 1.0)
    return ServerSide(request_s / per * 1000, upstream_s / per * 1000, waits)


# --- report ---------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


@dataclass
class LatencyRow:
    name: str
    requests: int
    rate: float
    p50_ms: float
    p99_ms: float
    mean_ms: float
    failures: int


def row(name: str, run: Run) -> LatencyRow:
    values = run.latencies_ms
    return LatencyRow(
        name,
        len(values),
        round(run.rate, 1),
        round(percentile(values, 50), 3),
        round(percentile(values, 99), 3),
        round(statistics.fmean(values), 3) if values else float("nan"),
        run.failures,
    )


@dataclass
class Results:
    machine: str
    overhead: dict[str, dict[str, float]] = field(default_factory=dict)
    latency: list[LatencyRow] = field(default_factory=list)
    throughput: list[LatencyRow] = field(default_factory=list)
    simulator: dict[str, object] = field(default_factory=dict)


def print_results(results: Results) -> None:
    print(f"\nmachine: {results.machine}")
    print("\nlatency at the default budget's load (client-side, ms)")
    print(f"{'phase':<34}{'n':>7}{'req/s':>8}{'p50':>9}{'p99':>9}{'mean':>9}{'fail':>6}")
    for r in results.latency:
        print(
            f"{r.name:<34}{r.requests:>7}{r.rate:>8}{r.p50_ms:>9}{r.p99_ms:>9}"
            f"{r.mean_ms:>9}{r.failures:>6}"
        )
    print("\noverhead = gateway - simulator (ms)")
    for kind, figures in results.overhead.items():
        print(f"  {kind:<8}" + "  ".join(f"{k}={v}" for k, v in figures.items()))
    print("\nthroughput, one worker, bucket raised (closed loop)")
    print(f"{'phase':<34}{'n':>7}{'links/s':>8}{'p50':>9}{'p99':>9}{'mean':>9}{'fail':>6}")
    for r in results.throughput:
        print(
            f"{r.name:<34}{r.requests:>7}{r.rate:>8}{r.p50_ms:>9}{r.p99_ms:>9}"
            f"{r.mean_ms:>9}{r.failures:>6}"
        )
    print(f"\nsimulator: {results.simulator}")


# --- main -----------------------------------------------------------------------------


async def measure_overhead(
    s: Stack, results: Results, rate: float, seconds: float, kinds: list[Kind]
) -> None:
    sim = urlsplit(s.sim.url)
    sim_host, sim_port = sim.hostname or "127.0.0.1", sim.port or 80
    for kind in kinds:
        direct = await paced(
            sim_host, sim_port, rate, seconds, simulator_job(s.sim.url, kind, f"direct-{kind}")
        )
        results.latency.append(row(f"simulator direct, {kind}", direct))
    flush(s.redis_url)
    with s.gateway("bench-default") as gateway:
        gw = urlsplit(gateway.url)
        host, port = gw.hostname or "127.0.0.1", gw.port or 80
        # Warm the worker (connections, stream list, code paths) outside the figures.
        await paced(host, port, 50, 1.0, gateway_job(gateway.url, "raw", "warm"))
        await asyncio.sleep(0.5)
        for kind in kinds:
            before = scrape(gateway.url)
            via = await paced(
                host, port, rate, seconds, gateway_job(gateway.url, kind, f"gw-{kind}")
            )
            after = scrape(gateway.url)
            results.latency.append(row(f"through the gateway, {kind}", via))
            direct_row = next(r for r in results.latency if r.name == f"simulator direct, {kind}")
            via_row = results.latency[-1]
            server = server_side(before, after)
            results.overhead[kind] = {
                "p50_ms": round(via_row.p50_ms - direct_row.p50_ms, 3),
                "p99_ms": round(via_row.p99_ms - direct_row.p99_ms, 3),
                "mean_ms": round(via_row.mean_ms - direct_row.mean_ms, 3),
                "server_mean_request_ms": round(server.request_ms, 3),
                "server_mean_upstream_ms": round(server.upstream_ms, 3),
                "server_mean_overhead_ms": round(server.overhead_ms, 3),
                "budget_waits": server.budget_waits,
                "late_starts": via.late_starts,
            }
            await asyncio.sleep(1.0)  # the bucket refills between kinds


async def measure_throughput(
    s: Stack, results: Results, concurrency: int, seconds: float, kinds: list[Kind]
) -> None:
    flush(s.redis_url)
    raised = {
        "LINK_RATE_PER_S": "100000",
        "LINK_BURST": "1000",
        "LINK_USER_RATE_PER_MIN": "1000000",
        "LINK_USER_BURST": "1000",
        "LINK_DEDUPE_WINDOW_S": "0",
    }
    with s.gateway("bench-raised", **raised) as gateway:
        gw = urlsplit(gateway.url)
        host, port = gw.hostname or "127.0.0.1", gw.port or 80
        await closed_loop(host, port, concurrency, 1.0, gateway_job(gateway.url, "raw", "warm"))
        for kind in kinds:
            run = await closed_loop(
                host, port, concurrency, seconds, gateway_job(gateway.url, kind, f"max-{kind}")
            )
            results.throughput.append(row(f"gateway, {kind}, c={concurrency}", run))
    sim = urlsplit(s.sim.url)
    for kind in kinds:
        run = await closed_loop(
            sim.hostname or "127.0.0.1",
            sim.port or 80,
            concurrency,
            seconds / 2,
            simulator_job(s.sim.url, kind, f"simmax-{kind}"),
        )
        results.throughput.append(row(f"simulator alone, {kind}, c={concurrency}", run))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="per measured phase")
    parser.add_argument("--rate", type=float, default=150.0, help="offered load, phase 1")
    parser.add_argument("--concurrency", type=int, default=32, help="connections, phase 2")
    parser.add_argument("--kinds", default="raw,player", help="raw, player or both")
    parser.add_argument("--skip-overhead", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    kinds: list[Kind] = [k for k in ("raw", "player") if k in args.kinds.split(",")]

    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    machine = f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, "
    machine += f"Python {platform.python_version()}"
    results = Results(machine)
    with tempfile.TemporaryDirectory(prefix="bench-links-") as tmp, stack(Path(tmp)) as s:
        if not args.skip_overhead:
            asyncio.run(measure_overhead(s, results, args.rate, args.seconds, kinds))
        if not args.skip_throughput:
            asyncio.run(measure_throughput(s, results, args.concurrency, args.seconds, kinds))
        stats = s.sim.stats()
        results.simulator = {
            "violations": stats["violations"],
            "maxPerSecond": stats["maxPerSecond"],
        }
    print_results(results)
    if args.json is not None:
        args.json.write_text(json.dumps(asdict(results), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
