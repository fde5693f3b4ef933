"""Measurements behind docs/capacity.md, on real processes over loopback.

    .venv/bin/python tests/perf/capacity.py [--phases redis,workers,upstream,shard]
        [--idle 20] [--load 10] [--window 60] [--interval 2] [--fleets 1,2,6]

- ``redis``: two gateway replicas (production mode against the simulator, the default
  10 s event interval) on one real redis-server; ``INFO commandstats`` deltas over an
  idle window, a read-load window (``wrk`` on both replicas in turn) and a link-load
  window (40 links/s over both replicas, distinct users, half raw, half player):
  commands per second per command, and per link. RSS of each replica after each.
- ``workers``: one replica with ``WEB_CONCURRENCY=2``: RSS of uvicorn's supervisor and
  of each worker, and the replica's idle Redis commands.
- ``upstream``: 1, then 2, then 6 replicas (each fleet with a fresh redis-server and a
  fresh simulator), ``EVENTS_MIN_INTERVAL_S`` scaled down to ``--interval`` (2 s: five
  times the default pace) with a light reader on every replica (sports, the open list,
  an event's streams, today's and tomorrow's lists); the simulator's calls per method
  over ``--window`` seconds after the fleet is warm. They should not grow with the
  fleet. RSS of each replica at the end.
- ``shard``: what one redis-server takes: ``redis-benchmark`` replaying the link
  admission script (``EVALSHA`` with a fresh user and dedupe key per call, an
  unlimited fleet bucket, so every call runs the whole script) and the dedupe write
  (``SET ... PX``), 32 connections.

Prints a JSON document (and a few lines on stderr as it goes). Needs redis-server,
redis-benchmark and wrk.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import redis

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.support.gateway import GatewayProcess, gateway_env, run_gateway  # noqa: E402
from tests.support.redis_server import run_redis_server  # noqa: E402
from tests.support.simulator import SimulatorHandle, run_simulator  # noqa: E402

API_KEY = "capacity-api-key-0123456789abcdef012345"
OPEN = "CAP-OPEN-1"
ADMISSION_LUA = REPO / "app" / "ratelimit" / "admission.lua"


def say(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def scenario(sim: SimulatorHandle) -> None:
    start = datetime.now(UTC) - timedelta(minutes=20)
    event = {
        "eventId": OPEN,
        "eventStatusCode": "O",
        "title": "Capacity v Measurement",
        "sportCode": "FT",
        "startTime": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "estimatedEndTime": (start + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    sim.load_scenario([event], {OPEN: [{"uniqueStreamName": "HLS", "streamType": "HLS"}]})
    sim.configure(link_rate_per_s=150)


def command_calls(client: redis.Redis) -> dict[str, int]:
    stats = client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}


def delta(before: Mapping[str, int], after: Mapping[str, int]) -> dict[str, int]:
    names = set(before) | set(after)
    changed = {n: after.get(n, 0) - before.get(n, 0) for n in names}
    # INFO itself is this script's, not the gateways'.
    return {n: c for n, c in sorted(changed.items()) if c and n != "info"}


def rss_mb(pid: int) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmRSS:\s+(\d+) kB", text, re.MULTILINE)
    return round(int(match.group(1)) / 1024, 1) if match else float("nan")


def wait_warm(gateways: Sequence[GatewayProcess], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    for gateway in gateways:
        while OPEN not in httpx.get(f"{gateway.url}/v1/events/open", timeout=5).text:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{gateway.name} never got the open list")
            time.sleep(0.2)


@contextmanager
def fleet(
    count: int, workdir: Path, sim: SimulatorHandle, redis_url: str, **settings: str
) -> Iterator[list[GatewayProcess]]:
    env = gateway_env(
        sim.api_url,
        redis_url,
        API_KEYS=API_KEY,
        REPLICA_COUNT=str(count),
        GEO_UNKNOWN_ALLOWED="true",
        DEFAULT_REDIRECT_URL="https://operator.example/after",
        LOG_LEVEL="warning",
        **settings,
    )
    with ExitStack() as stack:
        yield [
            stack.enter_context(run_gateway(env, workdir / "logs", name=f"replica-{i + 1}"))
            for i in range(count)
        ]


async def offer_links(urls: Sequence[str], per_s: float, seconds: float) -> dict[int, int]:
    """Links at ``per_s`` for ``seconds``, round robin over ``urls``; statuses counted."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    count = int(per_s * seconds)
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(timeout=15, limits=limits) as client:

        async def one(i: int) -> int:
            await asyncio.sleep(max(0.0, start + i / per_s - loop.time()))
            response = await client.post(
                f"{urls[i % len(urls)]}/v1/events/{OPEN}/links",
                json={"streamName": "HLS", "kind": "raw" if i % 2 else "player"},
                headers={"X-API-Key": API_KEY, "X-User-Id": f"cap-{start}-{i}"},
            )
            return response.status_code

        statuses = await asyncio.gather(*(one(i) for i in range(count)))
    return {status: statuses.count(status) for status in sorted(set(statuses))}


def wrk(url: str, seconds: int) -> float:
    out = subprocess.run(
        ["wrk", "-t1", "-c16", f"-d{seconds}s", url], capture_output=True, text=True, check=True
    ).stdout
    match = re.search(r"(\d+) requests in", out)
    return float(match.group(1)) if match else 0.0


def redis_phase(work: Path, idle_s: int, load_s: int) -> dict[str, object]:
    result: dict[str, object] = {"replicas": 2, "events_min_interval_s": 10}
    with ExitStack() as stack:
        redis_url = stack.enter_context(run_redis_server(work / "redis-phase"))
        sim = stack.enter_context(run_simulator())
        scenario(sim)
        replicas = stack.enter_context(fleet(2, work / "redis-phase", sim, redis_url))
        wait_warm(replicas)
        for replica in replicas:  # each holds the event's streams, as a running fleet does
            httpx.get(f"{replica.url}/v1/events/{OPEN}/streams", timeout=10)
        asyncio.run(offer_links([r.url for r in replicas], 10, 1))
        client = stack.enter_context(redis.Redis.from_url(redis_url))
        time.sleep(3)

        def window(name: str, seconds: float, action: object) -> None:
            before, started = command_calls(client), time.monotonic()
            extra = action() if callable(action) else None
            remaining = seconds - (time.monotonic() - started)
            if remaining > 0:
                time.sleep(remaining)
            elapsed = time.monotonic() - started
            calls = delta(before, command_calls(client))
            total = sum(calls.values())
            result[name] = {
                "seconds": round(elapsed, 1),
                "commands": calls,
                "commands_per_s": round(total / elapsed, 2),
                "per_replica_per_s": round(total / elapsed / len(replicas), 2),
                "load": extra,
                "rss_mb": [rss_mb(r.process.pid) for r in replicas],
            }
            say(f"redis {name}: {total / elapsed:.1f} commands/s ({calls})")

        window("idle", idle_s, None)

        def reads() -> dict[str, float]:
            half = max(1, load_s // 2)
            return {r.name: wrk(f"{r.url}/v1/events/open", half) for r in replicas}

        window("reads", load_s, reads)

        def links() -> dict[int, int]:
            return asyncio.run(offer_links([r.url for r in replicas], 40, load_s))

        window("links", load_s + 1, links)
        loads = result["links"]
        assert isinstance(loads, dict)
        minted = loads["load"].get(200, 0)
        idle = result["idle"]
        assert isinstance(idle, dict)
        extra_commands = sum(loads["commands"].values()) - idle["commands_per_s"] * loads["seconds"]
        loads["commands_per_link"] = round(extra_commands / minted, 2) if minted else None
    return result


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


def workers_phase(work: Path, idle_s: int) -> dict[str, object]:
    """One replica with ``WEB_CONCURRENCY=2``: RSS of the supervisor and of each worker,
    and the replica's idle Redis commands (each worker is a client of its own)."""
    with ExitStack() as stack:
        redis_url = stack.enter_context(run_redis_server(work / "workers-phase"))
        sim = stack.enter_context(run_simulator())
        scenario(sim)
        env = gateway_env(
            sim.api_url, redis_url, API_KEYS=API_KEY, REPLICA_COUNT="2", LOG_LEVEL="warning"
        )
        replica = stack.enter_context(run_gateway(env, work / "workers-phase", workers=2))
        deadline = time.monotonic() + 60
        while not all(
            OPEN in httpx.get(f"{replica.url}/v1/events/open", timeout=5).text for _ in range(6)
        ):
            if time.monotonic() > deadline:
                raise RuntimeError("the workers never got the open list")
            time.sleep(0.2)
        time.sleep(3)
        client = stack.enter_context(redis.Redis.from_url(redis_url))
        before, started = command_calls(client), time.monotonic()
        time.sleep(idle_s)
        elapsed = time.monotonic() - started
        calls = delta(before, command_calls(client))
        supervisor = replica.process.pid
        result: dict[str, object] = {
            "seconds": round(elapsed, 1),
            "commands": calls,
            "commands_per_s": round(sum(calls.values()) / elapsed, 2),
            "rss_mb_supervisor": rss_mb(supervisor),
            "rss_mb_workers": [rss_mb(pid) for pid in children(supervisor)],
        }
        say(f"workers: {result}")
    return result


def upstream_phase(
    work: Path, fleets: Sequence[int], window_s: int, interval_s: float
) -> dict[str, object]:
    result: dict[str, object] = {"events_min_interval_s": interval_s, "window_s": window_s}
    for count in fleets:
        with ExitStack() as stack:
            base = work / f"upstream-{count}"
            redis_url = stack.enter_context(run_redis_server(base / "redis"))
            sim = stack.enter_context(
                run_simulator(env={"SIM_EVENTS_MIN_INTERVAL_S": str(interval_s)})
            )
            scenario(sim)
            replicas = stack.enter_context(
                fleet(count, base, sim, redis_url, EVENTS_MIN_INTERVAL_S=str(interval_s))
            )
            wait_warm(replicas)
            time.sleep(2 * interval_s)  # start-up fetches done
            before = sim.stats()["calls"]
            started = time.monotonic()
            today = datetime.now(UTC).date()
            reads = 0
            with httpx.Client(timeout=10) as reader:
                while time.monotonic() - started < window_s:
                    for replica in replicas:
                        for path in (
                            "/v1/sports",
                            "/v1/events/open",
                            f"/v1/events/{OPEN}/streams",
                            f"/v1/events?date={today.isoformat()}",
                            f"/v1/events?date={(today + timedelta(days=1)).isoformat()}",
                        ):
                            reader.get(replica.url + path)
                            reads += 1
                    time.sleep(0.5)
            elapsed = time.monotonic() - started
            stats = sim.stats()
            calls = {m: n - before.get(m, 0) for m, n in stats["calls"].items()}
            per_minute = {m: round(n * 60 / elapsed, 1) for m, n in calls.items() if n}
            result[str(count)] = {
                "seconds": round(elapsed, 1),
                "reads": reads,
                "calls": {m: n for m, n in calls.items() if n},
                "calls_per_minute": per_minute,
                "violations": stats["violations"],
                "min_spacing_s": stats["minSpacingS"],
                "rss_mb": [rss_mb(r.process.pid) for r in replicas],
            }
            say(f"upstream, {count} replicas: {per_minute} per minute, rss {result[str(count)]}")
    return result


def shard_phase(work: Path) -> dict[str, object]:
    binary = shutil.which("redis-benchmark")
    if binary is None:
        return {"skipped": "redis-benchmark not installed"}
    with run_redis_server(work / "shard") as redis_url:
        port = redis_url.rsplit(":", 1)[1].split("/")[0]
        with redis.Redis.from_url(redis_url) as client:
            sha = client.script_load(ADMISSION_LUA.read_text())
        common = [binary, "-p", port, "-c", "32", "-n", "100000", "-r", "1000000000", "-q"]
        keys = [
            "{igm:link}:dedupe:__rand_int__",
            "{igm:link}:user:__rand_int__",
            "{igm:link}:bucket:stream_link",
            "{igm:link}:bucket:live_stream",
        ]
        # fleet rate (never the limit here), fleet burst, user rate, user burst, wait
        argv = ["1000000000", "10", "0.5", "5", "0"]
        admission = [*common, "EVALSHA", sha, str(len(keys)), *keys, *argv]
        dedupe = [*common, "SET", "{igm:link}:dedupe:__rand_int__", "x" * 200, "PX", "10000"]
        out: dict[str, object] = {}
        # The replayed call must run the whole script, not fail at once.
        with redis.Redis.from_url(redis_url) as client:
            once = [key.replace("__rand_int__", "1") for key in keys]
            reply = client.evalsha(sha, len(keys), *once, *argv)
        out["admission_reply"] = [
            part.decode() if isinstance(part, bytes) else part for part in reply
        ]
        for name, command in (("admission_evalsha", admission), ("dedupe_set", dedupe)):
            text = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            match = re.findall(r"([\d.]+) requests per second", text)
            out[name] = float(match[-1]) if match else text
            say(f"shard {name}: {out[name]}")
        ping = subprocess.run(
            [binary, "-p", port, "-c", "32", "-n", "100000", "-q", "-t", "ping_mbulk"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        match = re.findall(r"([\d.]+) requests per second", ping)
        out["ping"] = float(match[-1]) if match else ping
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--phases", default="redis,workers,upstream,shard")
    parser.add_argument("--idle", type=int, default=20)
    parser.add_argument("--load", type=int, default=10)
    parser.add_argument("--window", type=int, default=60)
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--fleets", default="1,2,6")
    args = parser.parse_args()
    phases = set(args.phases.split(","))
    report: dict[str, object] = {"started": datetime.now(UTC).isoformat(timespec="seconds")}
    with open("/proc/loadavg") as loadavg:
        report["loadavg_before"] = loadavg.read().split()[:3]
    with tempfile.TemporaryDirectory(prefix="capacity-") as tmp:
        work = Path(tmp)
        if "redis" in phases:
            report["redis"] = redis_phase(work, args.idle, args.load)
        if "workers" in phases:
            report["workers"] = workers_phase(work, args.idle)
        if "upstream" in phases:
            fleets = [int(n) for n in args.fleets.split(",")]
            report["upstream"] = upstream_phase(work, fleets, args.window, args.interval)
        if "shard" in phases:
            report["shard"] = shard_phase(work)
    with open("/proc/loadavg") as loadavg:
        report["loadavg_after"] = loadavg.read().split()[:3]
    print(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
