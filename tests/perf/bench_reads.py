"""Warm-read benchmark: ``GET /v1/events/open`` on one gateway worker against a raw
ASGI app returning the same bytes, in the same run, under the same load generator.
A second baseline replays the gateway's exact headers too (uvicorn checks every
header it sends, so eleven headers cost a bare app a good part of its speed).

    .venv/bin/python tests/perf/bench_reads.py [--seconds 10] [--connections 32] [--rounds 3]

Needs ``wrk`` (apt-get install -y wrk). Every server runs as one uvicorn worker with
the same flags, pinned to one core, and wrk to the other (``taskset``), so the load
generator does not take CPU from the server it measures; rounds alternate the servers
so drift in the machine hits all of them. Prints requests/s, p50/p99 and the server's
CPU time per request for each, and the gateway/baseline ratios (median of rounds).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.support.redis_server import free_port  # noqa: E402

PATH = "/v1/events/open"
UVICORN_FLAGS = ["--no-proxy-headers", "--no-access-log", "--log-level", "warning"]


SERVER_CPU = "0"
LOAD_CPU = "1"


@dataclass(frozen=True)
class Server:
    url: str
    pid: int


@dataclass(frozen=True)
class Round:
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_us: float  # server CPU time per request


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pinned(cpu: str) -> list[str]:
    return ["taskset", "-c", cpu] if shutil.which("taskset") and (os.cpu_count() or 1) > 1 else []


@contextmanager
def serve(app: list[str], env: dict[str, str]) -> Iterator[Server]:
    port = free_port()
    command = [
        *pinned(SERVER_CPU),
        *[sys.executable, "-m", "uvicorn", *app, "--host", "127.0.0.1", "--port", str(port)],
    ]
    # stdout (one access line per request) goes to /dev/null: the lines are still
    # formatted and written, but 20k lines/s to this machine's disk would add the
    # kernel's writeback to the measurement; containers ship stdout through a pipe.
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            [*command, *UVICORN_FLAGS],
            cwd=REPO,
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    if httpx.get(url + PATH, timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.2)
            else:
                log.seek(0)
                raise RuntimeError(f"server did not answer 200 on {PATH}: {log.read()[-2000:]!r}")
            yield Server(url, proc.pid)
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def wrk(server: Server, seconds: int, connections: int) -> Round:
    cpu_before = cpu_seconds(server.pid)
    out = subprocess.run(
        [
            *pinned(LOAD_CPU),
            *["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", server.url + PATH],
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    cpu = cpu_seconds(server.pid) - cpu_before
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    count = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]

    def pct(label: str) -> float:
        match = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
        assert match is not None, out
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    return Round(rps, pct("50"), pct("99"), cpu / count * 1e6)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install -y wrk")

    gateway_env = {"IGM_MODE": "simulator", "LOG_FORMAT": "json", "LOG_LEVEL": "info"}
    with serve(["--factory", "app.main:create_app"], gateway_env) as gateway:
        sample = httpx.get(gateway.url + PATH)
        body = sample.content
        skip = {"date", "server"}  # uvicorn adds its own
        pairs = [[k, v] for k, v in sample.headers.multi_items() if k not in skip]
        scratch = Path(tempfile.mkdtemp())
        (scratch / "body").write_bytes(body)
        (scratch / "headers.json").write_text(json.dumps(pairs))
        raw_env = {"RAW_BODY_FILE": str(scratch / "body"), "PYTHONPATH": str(REPO)}
        same_env = {**raw_env, "RAW_HEADERS_FILE": str(scratch / "headers.json")}
        with (
            serve(["tests.perf.raw_app:app"], raw_env) as raw,
            serve(["tests.perf.raw_app:app"], same_env) as same,
        ):
            servers = {"gateway": gateway, "raw": raw, "raw+hdrs": same}
            for server in servers.values():
                wrk(server, 2, args.connections)  # warm-up
            results: dict[str, list[Round]] = {k: [] for k in servers}
            for _ in range(args.rounds):
                for name, server in servers.items():
                    results[name].append(wrk(server, args.seconds, args.connections))
        shutil.rmtree(scratch)

    print(f"GET {PATH}, body {len(body)} bytes, 1 worker each, wrk -t1 -c{args.connections}")
    for name, rows in results.items():
        rps = statistics.median(r.rps for r in rows)
        p50 = statistics.median(r.p50_ms for r in rows)
        p99 = statistics.median(r.p99_ms for r in rows)
        cpu = statistics.median(r.cpu_us for r in rows)
        print(
            f"{name:9s} {rps:9.0f} req/s   p50 {p50:6.2f} ms   p99 {p99:6.2f} ms"
            f"   CPU {cpu:5.1f} us/request"
        )
    for baseline in ("raw", "raw+hdrs"):
        ratios = [g.rps / b.rps for g, b in zip(results["gateway"], results[baseline], strict=True)]
        print(
            f"ratio gateway/{baseline}: {statistics.median(ratios):.2f}"
            f" (rounds: {', '.join(f'{x:.2f}' for x in ratios)})"
        )


if __name__ == "__main__":
    main()
