"""Benchmark of link minting: the gateway's own overhead and one worker's throughput.

Run from the repository root (about two minutes)::

    .venv/bin/python tests/perf/bench_links.py [--seconds 8] [--rate 150] [--json out.json]

What runs: a real redis-server, the simulator as a subprocess (its link limit raised so
it answers at once, except in phase 3), and ONE gateway worker started the documented
way (``tests/support/gateway.py``: uvicorn, ``--no-proxy-headers``, JSON access log at
info). The load generator is a lean keep-alive HTTP/1.1 client on uvloop: httpx would
spend more CPU than the gateway, and everything shares the machine's cores.

Phases:

1. **overhead** at the default budget's load: ``--rate`` requests/s (135: just under
   what the default bucket sustains, ``LINK_RATE_PER_S - LINK_BURST`` = 140/s; at or
   above the bucket's rate requests queue for their slot, which is budget shaping,
   not overhead), evenly paced, each from a new user, default link settings. The
   same generator drives the simulator directly with what the gateway sends for one
   link (stream/link, plus liveStream for raw), at the same pace, in slices that
   alternate with the slices through the gateway: overhead = gateway latency -
   simulator latency, per percentile. Cross-check from the gateway's own histograms:
   mean request time - mean upstream call time.
2. **throughput**: the bucket raised (``LINK_RATE_PER_S=100000``, per-user limit high,
   dedupe off), ``--concurrency`` connections in a closed loop: links/s one worker
   sustains, and the gateway's CPU time per link (links/s per core = 1000 / that), the
   figure that does not depend on what else the machine runs.
3. **budget**: player links offered at 200/s for 4 s through a gateway with the
   default budget, the simulator enforcing the guide's 150/s: its peak calls in any
   one-second window, and how many it refused.
4. **refusals** (a kick-off crowd): ``--concurrency`` connections in a closed loop
   asking for links the gateway must refuse: an event still pending (409), one that is
   over (410), one licensed elsewhere (403), and a spent link budget (429,
   ``LINK_RATE_PER_S=2``): refusals/s one worker answers, and its CPU per refusal."""

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
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import quote, urlencode, urlsplit

import httpx
import orjson
import redis
from prometheus_client.parser import text_string_to_metric_families

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.support.gateway import GatewayProcess, gateway_env, run_gateway  # noqa: E402
from tests.support.redis_server import run_redis_server  # noqa: E402
from tests.support.simulator import SimulatorHandle, run_simulator  # noqa: E402

API_KEY = "bench-api-key-0123456789abcdef0123456789"
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

    @property
    def closed_by_server(self) -> bool:
        """uvicorn closes a connection idle for 5 s: never send on one it closed."""
        return self._reader.at_eof() or self._writer.is_closing()

    def close(self) -> None:
        self._writer.close()


def reuse(idle: list[Connection]) -> Connection | None:
    while idle:
        conn = idle.pop()
        if not conn.closed_by_server:
            return conn
        conn.close()
    return None


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
        conn = reuse(idle) or await Connection.open(host, port)
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
    gateway_cpus: set[int] = field(default_factory=set)

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
            if self.gateway_cpus:  # the gateway on its own core(s), the rest elsewhere
                os.sched_setaffinity(gateway.process.pid, self.gateway_cpus)
            deadline = time.monotonic() + 30
            while httpx.get(f"{gateway.url}/v1/events/open").status_code != 200:
                if time.monotonic() > deadline:
                    raise RuntimeError("the gateway never fetched the open list")
                time.sleep(0.05)
            yield gateway


def scenario() -> tuple[list[dict[str, object]], dict[str, list[dict[str, object]]]]:
    event: dict[str, object] = {
        "eventId": EVENT_ID,
        "eventStatusCode": "O",
        "title": "Bench",
        "sportCode": "FT",
    }
    return [event], {EVENT_ID: [{"uniqueStreamName": "HLS", "streamType": "HLS"}]}


@contextmanager
def stack(work: Path, gateway_cpus: set[int] | None = None) -> Iterator[Stack]:
    with ExitStack() as exits:
        redis_url = exits.enter_context(run_redis_server(work / "redis"))
        sim = exits.enter_context(run_simulator(env={"SIM_EVENTS_MIN_INTERVAL_S": "0"}))
        sim.configure(link_rate_per_s=10**9)  # answer at once: only the gateway limits
        sim.load_scenario(*scenario())
        yield Stack(sim, redis_url, work / "logs", gateway_cpus or set())


def flush(redis_url: str) -> None:
    with redis.Redis.from_url(redis_url) as store:
        store.flushdb()


# --- metrics --------------------------------------------------------------------------

Samples = list[tuple[str, dict[str, str], float]]


def scrape(gateway_url: str) -> Samples:
    text = httpx.get(f"{gateway_url}/metrics", timeout=10).text
    return [
        (sample.name, dict(sample.labels), float(sample.value))
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    ]


def metric_sum(samples: Samples, name: str, **labels: str) -> float:
    return sum(
        value
        for metric, have, value in samples
        if metric == name and all(have.get(k) == v for k, v in labels.items())
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


def server_side(before: Samples, after: Samples) -> ServerSide:
    route = "/v1/events/{eventId}/links"

    def delta(name: str, **labels: str) -> float:
        return metric_sum(after, name, **labels) - metric_sum(before, name, **labels)

    requests = delta("gateway_http_request_duration_seconds_count", route=route)
    request_s = delta("gateway_http_request_duration_seconds_sum", route=route)
    upstream_s = sum(
        delta("gateway_upstream_call_duration_seconds_sum", method=m)
        for m in ("stream_link", "live_stream")
    )
    waits = delta("gateway_budget_decisions_total", method="stream_link", decision="waited")
    per = max(requests, 1.0)
    return ServerSide(request_s / per * 1000, upstream_s / per * 1000, waits)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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
    gateway_cpu_ms: float | None = None  # gateway CPU time per link (throughput phase)


def row(name: str, run: Run, cpu_s: float | None = None) -> LatencyRow:
    values = run.latencies_ms
    per_link = None
    if cpu_s is not None and values:
        per_link = round(cpu_s / len(values) * 1000, 3)
    return LatencyRow(
        name,
        len(values),
        round(run.rate, 1),
        round(percentile(values, 50), 3),
        round(percentile(values, 99), 3),
        round(statistics.fmean(values), 3) if values else float("nan"),
        run.failures,
        per_link,
    )


@dataclass
class Results:
    machine: str
    overhead: dict[str, dict[str, float]] = field(default_factory=dict)
    latency: list[LatencyRow] = field(default_factory=list)
    throughput: list[LatencyRow] = field(default_factory=list)
    budget: dict[str, object] = field(default_factory=dict)
    refusals: list[LatencyRow] = field(default_factory=list)


def print_results(results: Results) -> None:
    header = f"{'phase':<36}{'n':>7}{'{}':>8}{'p50':>9}{'p99':>9}{'mean':>9}{'fail':>6}"
    print(f"\nmachine: {results.machine}")
    if results.latency:
        print("\n1. latency at the default budget's load (client-side, ms)")
        print(header.format("req/s"))
        for r in results.latency:
            print(
                f"{r.name:<36}{r.requests:>7}{r.rate:>8}{r.p50_ms:>9}{r.p99_ms:>9}"
                f"{r.mean_ms:>9}{r.failures:>6}"
            )
        print("   overhead = through the gateway - simulator direct (ms)")
        for kind, figures in results.overhead.items():
            print(f"   {kind:<7}" + "  ".join(f"{k}={v}" for k, v in figures.items()))
    if results.throughput:
        print("\n2. throughput, one worker, bucket raised (closed loop)")
        print(header.format("links/s") + f"{'cpu ms/link':>13}{'links/s/core':>14}")
        for r in results.throughput:
            per_core = "" if not r.gateway_cpu_ms else f"{1000 / r.gateway_cpu_ms:.0f}"
            print(
                f"{r.name:<36}{r.requests:>7}{r.rate:>8}{r.p50_ms:>9}{r.p99_ms:>9}"
                f"{r.mean_ms:>9}{r.failures:>6}{r.gateway_cpu_ms or '':>13}{per_core:>14}"
            )
    if results.budget:
        print("\n3. default budget against the simulator's real 150/s limit")
        for key, value in results.budget.items():
            print(f"   {key}: {value}")
    if results.refusals:
        print("\n4. refusals, one worker (closed loop; 'fail' = answers of another status)")
        print(header.format("ref/s") + f"{'cpu ms/ref':>13}{'ref/s/core':>14}")
        for r in results.refusals:
            per_core = "" if not r.gateway_cpu_ms else f"{1000 / r.gateway_cpu_ms:.0f}"
            print(
                f"{r.name:<36}{r.requests:>7}{r.rate:>8}{r.p50_ms:>9}{r.p99_ms:>9}"
                f"{r.mean_ms:>9}{r.failures:>6}{r.gateway_cpu_ms or '':>13}{per_core:>14}"
            )


# --- phases ---------------------------------------------------------------------------


def address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 80


OVERHEAD_SLICES = 4


def merge(into: Run, part: Run) -> None:
    into.latencies_ms += part.latencies_ms
    into.failures += part.failures
    into.late_starts += part.late_starts


async def measure_overhead(
    s: Stack, results: Results, rate: float, seconds: float, kinds: list[Kind]
) -> None:
    """Phase 1: the same paced load on the simulator directly and through a gateway with
    the default link settings, in alternating slices (``OVERHEAD_SLICES`` of each per
    kind), so that drift in the machine's speed hits both sides alike."""
    sim_host, sim_port = address(s.sim.url)
    flush(s.redis_url)
    with s.gateway("bench-default") as gateway:
        host, port = address(gateway.url)
        # Warm the worker (connections, stream list, code paths) outside the figures.
        await paced(host, port, 50, 1.0, gateway_job(gateway.url, "raw", "warm"))
        await asyncio.sleep(0.5)
        part_s = seconds / OVERHEAD_SLICES
        for kind in kinds:
            direct_run, via_run, cpu = Run(seconds), Run(seconds), 0.0
            before = scrape(gateway.url)
            for part in range(OVERHEAD_SLICES):
                direct_job = simulator_job(s.sim.url, kind, f"direct-{kind}-{part}")
                merge(direct_run, await paced(sim_host, sim_port, rate, part_s, direct_job))
                cpu_before = cpu_seconds(gateway.process.pid)
                via_job = gateway_job(gateway.url, kind, f"gw-{kind}-{part}")
                merge(via_run, await paced(host, port, rate, part_s, via_job))
                cpu += cpu_seconds(gateway.process.pid) - cpu_before
            server = server_side(before, scrape(gateway.url))
            direct = row(f"simulator direct, {kind}", direct_run)
            via = row(f"through the gateway, {kind}", via_run)
            results.latency += [direct, via]
            results.overhead[kind] = {
                "p50_ms": round(via.p50_ms - direct.p50_ms, 3),
                "p99_ms": round(via.p99_ms - direct.p99_ms, 3),
                "mean_ms": round(via.mean_ms - direct.mean_ms, 3),
                "server_request_ms": round(server.request_ms, 3),
                "server_upstream_ms": round(server.upstream_ms, 3),
                "server_overhead_ms": round(server.overhead_ms, 3),
                "budget_waits": server.budget_waits,
                "late_starts": via_run.late_starts,
                "gateway_cpu_ms_per_link": round(cpu / max(len(via_run.latencies_ms), 1) * 1000, 3),
            }
            await asyncio.sleep(1.0)  # the bucket refills between kinds


async def measure_throughput(
    s: Stack, results: Results, concurrency: int, seconds: float, kinds: list[Kind]
) -> None:
    """Phase 2: closed loop on a gateway whose bucket never refuses, then the simulator
    alone at the same concurrency (the ceiling the machine allows the upstream)."""
    flush(s.redis_url)
    raised = {
        "LINK_RATE_PER_S": "100000",
        "LINK_BURST": "1000",
        "LINK_USER_RATE_PER_MIN": "1000000",
        "LINK_USER_BURST": "1000",
        "LINK_DEDUPE_WINDOW_S": "0",
    }
    with s.gateway("bench-raised", **raised) as gateway:
        host, port = address(gateway.url)
        pid = gateway.process.pid
        await closed_loop(host, port, concurrency, 1.0, gateway_job(gateway.url, "raw", "warm"))
        for kind in kinds:
            cpu_before = cpu_seconds(pid)
            run = await closed_loop(
                host, port, concurrency, seconds, gateway_job(gateway.url, kind, f"max-{kind}")
            )
            cpu = cpu_seconds(pid) - cpu_before
            results.throughput.append(row(f"gateway, {kind}, c={concurrency}", run, cpu))
    sim_host, sim_port = address(s.sim.url)
    for kind in kinds:
        run = await closed_loop(
            sim_host,
            sim_port,
            concurrency,
            seconds / 2,
            simulator_job(s.sim.url, kind, f"simmax-{kind}"),
        )
        results.throughput.append(row(f"simulator alone, {kind}, c={concurrency}", run))


async def measure_budget(s: Stack, results: Results, offered: float, seconds: float) -> None:
    """Phase 3: player links offered above the budget through a default gateway, the
    simulator enforcing the guide's 150/s: does the upstream ever refuse?"""
    flush(s.redis_url)
    s.sim.reset()
    s.sim.load_scenario(*scenario())
    s.sim.configure(link_rate_per_s=150)
    statuses: Counter[int] = Counter()
    with s.gateway("bench-budget") as gateway:
        host, port = address(gateway.url)
        path = f"/v1/events/{EVENT_ID}/links"
        body = orjson.dumps({"streamName": "HLS", "kind": "player"})

        async def job(conn: Connection, index: int) -> bool:
            headers = {
                "Content-Type": "application/json",
                "X-API-Key": API_KEY,
                "X-User-Id": f"budget-{index}",
            }
            status, _ = await conn.exchange(encode_request("POST", host, path, headers, body))
            statuses[status] += 1
            return status in (200, 429)

        await paced(host, port, offered, seconds, job)
    stats = s.sim.stats()
    results.budget = {
        "offered": f"{offered:.0f}/s for {seconds:.0f} s",
        "gateway answers": dict(sorted(statuses.items())),
        "stream_link calls": stats["calls"]["stream_link"],
        "stream_link maxPerSecond": stats["maxPerSecond"]["stream_link"],
        "stream_link violations (upstream 429)": stats["violations"]["stream_link"],
    }
    s.sim.configure(link_rate_per_s=10**9)


REFUSED_EVENTS = {"BENCH-PENDING": "P", "BENCH-CLOSED": "C", "BENCH-ELSEWHERE": "O"}


async def measure_refusals(s: Stack, results: Results, concurrency: int, seconds: float) -> None:
    """Phase 4: a crowd asking for links it cannot have, through one gateway."""
    flush(s.redis_url)
    s.sim.reset()
    events, streams = scenario()
    for event_id, status in REFUSED_EVENTS.items():
        events.append(
            {
                "eventId": event_id,
                "eventStatusCode": status,
                "title": event_id,
                "sportCode": "FT",
                "geoAllow": "US" if event_id == "BENCH-ELSEWHERE" else "",
            }
        )
        streams[event_id] = streams[EVENT_ID]
    s.sim.load_scenario(events, streams)
    cases = [
        ("pending (409)", "BENCH-PENDING", 409),
        ("closed (410)", "BENCH-CLOSED", 410),
        ("licensed elsewhere (403)", "BENCH-ELSEWHERE", 403),
        ("link budget spent (429)", EVENT_ID, 429),
    ]
    spent = {"LINK_RATE_PER_S": "2", "LINK_BURST": "1", "LINK_QUEUE_HOLD_S": "0"}
    with s.gateway("bench-refusals", **spent) as gateway:
        host, port = address(gateway.url)
        pid = gateway.process.pid
        body = orjson.dumps({"streamName": "HLS", "kind": "raw"})
        async with httpx.AsyncClient(base_url=gateway.url) as http:
            for _, event_id, _ in cases:  # each event's streams fetched once, before timing
                await http.get(f"/v1/events/{event_id}/streams")
        for name, event_id, expected in cases:
            path = f"/v1/events/{event_id}/links"

            async def job(
                conn: Connection, index: int, path: str = path, want: int = expected
            ) -> bool:
                headers = {
                    "Content-Type": "application/json",
                    "X-API-Key": API_KEY,
                    "X-User-Id": f"crowd-{index}",
                }
                status, _ = await conn.exchange(encode_request("POST", host, path, headers, body))
                return status == want

            cpu_before = cpu_seconds(pid)
            run = await closed_loop(host, port, concurrency, seconds, job)
            cpu = cpu_seconds(pid) - cpu_before
            results.refusals.append(row(name, run, cpu))
    s.sim.reset()
    s.sim.load_scenario(*scenario())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="per measured phase")
    parser.add_argument("--rate", type=float, default=135.0, help="offered load, phase 1")
    parser.add_argument("--concurrency", type=int, default=32, help="connections, phase 2")
    parser.add_argument("--kinds", default="raw,player", help="raw, player or both")
    parser.add_argument(
        "--phases", default="overhead,throughput,budget,refusals", help="which phases to run"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--pin",
        action="store_true",
        help="the gateway alone on CPU 0; load generator, simulator and Redis on the others",
    )
    args = parser.parse_args(argv)
    kinds: list[Kind] = [k for k in ("raw", "player") if k in args.kinds.split(",")]
    phases = set(args.phases.split(","))

    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    machine = f"{os.cpu_count()} CPUs ({platform.machine()}), Python {platform.python_version()}"
    machine += f", load average before {os.getloadavg()[0]:.2f}"
    results = Results(machine)
    gateway_cpus: set[int] = set()
    if args.pin and len(os.sched_getaffinity(0)) > 1:
        gateway_cpus = {min(os.sched_getaffinity(0))}
        os.sched_setaffinity(0, os.sched_getaffinity(0) - gateway_cpus)  # children inherit
        machine += f", gateway pinned to CPU {min(gateway_cpus)}, the rest to the others"
    with (
        tempfile.TemporaryDirectory(prefix="bench-links-") as tmp,
        stack(Path(tmp), gateway_cpus) as s,
    ):
        if "overhead" in phases:
            asyncio.run(measure_overhead(s, results, args.rate, args.seconds, kinds))
        if "throughput" in phases:
            asyncio.run(measure_throughput(s, results, args.concurrency, args.seconds, kinds))
        if "budget" in phases:
            asyncio.run(measure_budget(s, results, 200.0, 4.0))
        if "refusals" in phases:
            asyncio.run(measure_refusals(s, results, args.concurrency, args.seconds))
    print_results(results)
    if args.json is not None:
        args.json.write_text(json.dumps(asdict(results), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
