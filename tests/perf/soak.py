"""Soak: two gateway replicas, one Redis, the simulator, steady mixed load for minutes.

    .venv/bin/python tests/perf/soak.py [--minutes 11] [--rate 80] [--out soak.json]

Two gateway processes (``WEB_CONCURRENCY=1`` each, production mode against the
simulator, ``REPLICA_COUNT=2``) share a real redis-server. Paced clients send a steady
mix: reads (open list, date lists, sports, one event, its streams), link mints (raw
and player, HLS and ULL, many users and viewer IPs) and requests the gateway refuses
(pending event 409, unknown event 404, geo-blocked 403, bad API key 401, bad body
422). Every 30 s it samples, per gateway process, the RSS (``/proc/<pid>/status``) and
the open file descriptors (``/proc/<pid>/fd``), and Redis's ``connected_clients``.

At the end it prints the samples, the answers by status, and the simulator's
violations, and checks the targets: RSS < 200 MB and flat (max/min within 10% from
minute 2 on), no growth in fds or Redis clients from minute 2 on, no 5xx, no
unexpected status, 0 violations. Exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import redis

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.support.gateway import GatewayProcess, gateway_env, run_gateway  # noqa: E402
from tests.support.redis_server import run_redis_server  # noqa: E402
from tests.support.simulator import SimulatorHandle, run_simulator  # noqa: E402

API_KEY = "soak-api-key-0123456789abcdef0123456789a"
COUNTRY_HEADER = "CF-IPCountry"
OPEN = "SOAK-OPEN-1"
PENDING = "SOAK-PEND-1"
US_ONLY = "SOAK-US-ONLY"
SAMPLE_EVERY_S = 30.0
FLAT_FROM_S = 120.0
RSS_LIMIT_MB = 200.0
RSS_FLAT_RATIO = 1.10
WORKERS = 16
FD_SLACK = 3  # client keep-alive connections open and close

# action -> the statuses it may get (anything else is "unexpected")
EXPECTED: dict[str, frozenset[int]] = {
    "read_open": frozenset({200}),
    "read_date": frozenset({200}),
    "read_sports": frozenset({200}),
    "read_event": frozenset({200}),
    "read_streams": frozenset({200}),
    "mint": frozenset({200, 429}),
    "refuse_pending": frozenset({409}),
    "refuse_unknown": frozenset({404}),
    "refuse_geo": frozenset({403}),
    "refuse_key": frozenset({401}),
    "refuse_body": frozenset({422}),
}
WEIGHTS: dict[str, int] = {
    "read_open": 20,
    "read_date": 20,
    "read_sports": 5,
    "read_event": 8,
    "read_streams": 7,
    "mint": 25,
    "refuse_pending": 3,
    "refuse_unknown": 3,
    "refuse_geo": 3,
    "refuse_key": 3,
    "refuse_body": 3,
}


@dataclass
class Sample:
    at_s: float
    rss_mb: dict[str, float]
    fds: dict[str, int]
    redis_clients: int


@dataclass
class Tally:
    statuses: Counter[str] = field(default_factory=Counter)
    unexpected: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def load_scenario(sim: SimulatorHandle) -> None:
    now = datetime.now(UTC)
    started, ends = _iso(now - timedelta(minutes=30)), _iso(now + timedelta(hours=6))
    events: list[dict[str, object]] = [
        {"eventId": OPEN, "eventStatusCode": "O", "sportCode": "FT", "title": "Soak v Load",
         "startTime": started, "estimatedEndTime": ends},
        {"eventId": PENDING, "eventStatusCode": "P", "sportCode": "FT", "title": "Later",
         "startTime": _iso(now + timedelta(hours=8))},
        {"eventId": US_ONLY, "eventStatusCode": "O", "sportCode": "BB", "title": "US only",
         "startTime": started, "estimatedEndTime": ends, "geoAllow": "US"},
    ]  # fmt: skip
    streams: dict[str, list[dict[str, object]]] = {
        OPEN: [
            {"uniqueStreamName": "HLS", "streamType": "HLS"},
            {"uniqueStreamName": "ULL", "streamType": "ULL"},
        ],
        US_ONLY: [{"uniqueStreamName": "HLS", "streamType": "HLS"}],
    }
    sim.load_scenario(events, streams)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def take_sample(at_s: float, gateways: list[GatewayProcess], store: redis.Redis) -> Sample:
    clients = int(store.info("clients")["connected_clients"])
    return Sample(
        at_s=round(at_s, 1),
        rss_mb={g.name: round(rss_mb(g.process.pid), 1) for g in gateways},
        fds={g.name: fd_count(g.process.pid) for g in gateways},
        redis_clients=clients,
    )


def request_for(action: str, rng: random.Random, day: str) -> tuple[str, str, dict[str, object]]:
    """(method, path, httpx keyword arguments) for one action."""
    viewer_ip = f"127.{rng.randrange(1, 255)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    viewer = {"X-Forwarded-For": viewer_ip, COUNTRY_HEADER: "GB"}
    auth = {"X-API-Key": API_KEY, "X-User-Id": f"user-{rng.randrange(5000)}"}
    link = {"streamName": rng.choice(["HLS", "ULL"]), "kind": rng.choice(["raw", "player"])}
    match action:
        case "read_open":
            return "GET", "/v1/events/open", {}
        case "read_date":
            return "GET", "/v1/events", {"params": {"date": day}}
        case "read_sports":
            return "GET", "/v1/sports", {}
        case "read_event":
            return "GET", f"/v1/events/{OPEN}", {}
        case "read_streams":
            return "GET", f"/v1/events/{OPEN}/streams", {}
        case "mint":
            return "POST", f"/v1/events/{OPEN}/links", {"json": link, "headers": auth | viewer}
        case "refuse_pending":
            return "POST", f"/v1/events/{PENDING}/links", {"json": link, "headers": auth | viewer}
        case "refuse_unknown":
            unknown = f"NOPE-{rng.randrange(10**6)}"
            return "POST", f"/v1/events/{unknown}/links", {"json": link, "headers": auth | viewer}
        case "refuse_geo":
            body = {"streamName": "HLS", "kind": "raw"}
            return "POST", f"/v1/events/{US_ONLY}/links", {"json": body, "headers": auth | viewer}
        case "refuse_key":
            wrong = {**auth, "X-API-Key": "x" * rng.randrange(1, 64)}
            return "POST", f"/v1/events/{OPEN}/links", {"json": link, "headers": wrong | viewer}
        case _:
            bad = {"streamName": "../../etc", "kind": "weird"}
            return "POST", f"/v1/events/{OPEN}/links", {"json": bad, "headers": auth | viewer}


def problem_code(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return "not-json"
    return str(body.get("code")) if isinstance(body, dict) else "not-an-object"


async def worker(
    http: httpx.AsyncClient,
    urls: list[str],
    period_s: float,
    stop_at: float,
    tally: Tally,
    seed: int,
) -> None:
    rng = random.Random(seed)
    actions, weights = list(WEIGHTS), list(WEIGHTS.values())
    day = datetime.now(UTC).date().isoformat()
    next_at = time.monotonic() + rng.uniform(0, period_s)
    while next_at < stop_at:
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        next_at += period_s
        action = rng.choices(actions, weights)[0]
        method, path, kwargs = request_for(action, rng, day)
        started = time.perf_counter()
        try:
            response = await http.request(method, rng.choice(urls) + path, **kwargs)  # type: ignore[arg-type]
        except httpx.HTTPError as exc:
            tally.errors[f"{action}:{type(exc).__name__}"] += 1
            continue
        tally.latencies_ms.append((time.perf_counter() - started) * 1000)
        tally.statuses[f"{action}:{response.status_code}"] += 1
        if response.status_code not in EXPECTED[action]:
            code = problem_code(response)
            tally.unexpected[f"{action}:{response.status_code}:{code}"] += 1
            print(f"unexpected {action} {response.status_code} {response.text[:300]}", flush=True)


async def drive(
    gateways: list[GatewayProcess], store: redis.Redis, seconds: float, rate: float
) -> tuple[list[Sample], Tally]:
    tally = Tally()
    samples: list[Sample] = []
    started = time.monotonic()
    stop_at = started + seconds
    limits = httpx.Limits(max_connections=WORKERS * 2, max_keepalive_connections=WORKERS * 2)
    async with httpx.AsyncClient(timeout=10.0, limits=limits) as http:
        urls = [g.url for g in gateways]
        tasks = [
            asyncio.create_task(worker(http, urls, WORKERS / rate, stop_at, tally, seed))
            for seed in range(WORKERS)
        ]
        next_sample = started
        while time.monotonic() < stop_at:
            if time.monotonic() >= next_sample:
                sample = take_sample(time.monotonic() - started, gateways, store)
                samples.append(sample)
                print(json.dumps(asdict(sample)), flush=True)
                next_sample += SAMPLE_EVERY_S
            await asyncio.sleep(0.2)
        await asyncio.gather(*tasks)
    samples.append(take_sample(time.monotonic() - started, gateways, store))
    print(json.dumps(asdict(samples[-1])), flush=True)
    return samples, tally


def wait_warm(gateways: list[GatewayProcess]) -> None:
    """Until every gateway serves the open list and knows every scenario event: the
    pending one starts in 8 hours, so after 16:00 UTC it is on tomorrow's list, which
    a cold fleet fetches one event/all slot after today's."""
    deadline = time.monotonic() + 90
    for gateway in gateways:
        for path in ("/v1/events/open", *(f"/v1/events/{e}" for e in (OPEN, PENDING, US_ONLY))):
            while httpx.get(f"{gateway.url}{path}", timeout=5).status_code != 200:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{gateway.name}: {path} never answered 200")
                time.sleep(0.2)


def grows(values: list[int], slack: int = FD_SLACK) -> bool:
    """Whether the later half of a series sits above the earlier half: a leak, not the
    load generator's keep-alive connections coming and going."""
    half = len(values) // 2
    if half == 0:
        return False
    return statistics.median(values[half:]) > statistics.median(values[:half]) + slack


def verdicts(samples: list[Sample], tally: Tally, violations: int) -> dict[str, bool]:
    late = [s for s in samples if s.at_s >= FLAT_FROM_S] or samples  # short trial runs
    names = list(samples[0].rss_mb)
    checks: dict[str, bool] = {
        "rss_below_200mb": all(v < RSS_LIMIT_MB for s in samples for v in s.rss_mb.values()),
        "zero_violations": violations == 0,
        "no_5xx": not any(key.rsplit(":", 1)[1].startswith("5") for key in tally.statuses),
        "no_unexpected_status": not tally.unexpected,
        "no_transport_errors": not tally.errors,
    }
    for name in names:
        rss = [s.rss_mb[name] for s in late]
        checks[f"{name}_rss_flat"] = max(rss) <= min(rss) * RSS_FLAT_RATIO
        checks[f"{name}_fds_flat"] = not grows([s.fds[name] for s in late])
    checks["redis_clients_flat"] = not grows([s.redis_clients for s in late])
    return checks


@contextmanager
def fleet(workdir: Path) -> Iterator[tuple[SimulatorHandle, list[GatewayProcess], redis.Redis]]:
    with ExitStack() as stack:
        redis_url = stack.enter_context(run_redis_server(workdir / "redis"))
        sim = stack.enter_context(run_simulator())
        load_scenario(sim)
        env = gateway_env(
            sim.api_url,
            redis_url,
            API_KEYS=API_KEY,
            WEB_CONCURRENCY="1",
            REPLICA_COUNT="2",
            TRUSTED_PROXIES="127.0.0.1/32",
            GEO_COUNTRY_HEADER=COUNTRY_HEADER,
            DEFAULT_REDIRECT_URL="https://operator.example/after",
        )
        gateways = [
            stack.enter_context(run_gateway(env, workdir / "logs", name=f"gateway-{n}"))
            for n in (1, 2)
        ]
        store = stack.enter_context(redis.Redis.from_url(redis_url))
        yield sim, gateways, store


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=11.0)
    parser.add_argument("--rate", type=float, default=80.0, help="requests per second in all")
    parser.add_argument("--out", type=Path, default=None, help="write the summary as JSON here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp, fleet(Path(tmp)) as running:
        sim, gateways, store = running
        wait_warm(gateways)
        samples, tally = asyncio.run(drive(gateways, store, args.minutes * 60, args.rate))
        stats = sim.stats()
        alive = {g.name: g.process.poll() is None for g in gateways}
    violations = sum(stats["violations"].values())
    latencies = sorted(tally.latencies_ms)
    checks = verdicts(samples, tally, violations) | {"alive": all(alive.values())}
    summary: dict[str, object] = {
        "command": " ".join(["tests/perf/soak.py", *sys.argv[1:]]),
        "minutes": args.minutes,
        "rate_per_s": args.rate,
        "requests": sum(tally.statuses.values()),
        "p50_ms": round(latencies[len(latencies) // 2], 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99)], 2),
        "statuses": dict(sorted(tally.statuses.items())),
        "unexpected": dict(tally.unexpected),
        "transport_errors": dict(tally.errors),
        "upstream_calls": stats["calls"],
        "violations": stats["violations"],
        "min_spacing_s": stats["minSpacingS"],
        "max_per_second": stats["maxPerSecond"],
        "alive_at_end": alive,
        "samples": [asdict(s) for s in samples],
        "checks": checks,
    }
    text = json.dumps(summary, indent=2)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")
    sys.exit(0 if all(checks.values()) else 1)


if __name__ == "__main__":
    main()
