"""The docker-compose topology from real processes on loopback.

redis-server, the ONEPlatform simulator, two gateway replicas started by
``scripts/serve`` (production mode against the simulator, one shared Redis) and nginx
in front with ``deploy/nginx/nginx.conf``, rendered for loopback ports::

    viewer -> nginx (LB) -> gateway-1 | gateway-2 -> simulator
                                 \\______ redis ______/

``run_topology`` is used by ``tests/integration/test_topology.py``; ``main`` is
``scripts/topology`` (runs until Ctrl-C or SIGTERM).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO

import httpx

from tests.support.redis_server import free_port, run_redis_server
from tests.support.simulator import SimulatorHandle, run_simulator

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVE = REPO_ROOT / "scripts" / "serve"
NGINX_TEMPLATE = REPO_ROOT / "deploy" / "nginx" / "nginx.conf"
LOOPBACK = "127.0.0.1"
GATEWAYS = ("gateway-1", "gateway-2")
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 25.0  # uvicorn's --timeout-graceful-shutdown is 20 s

_PLACEHOLDER = re.compile(r"\$\{(LB_[A-Z0-9_]+)\}")
# Passed through to the children; everything else they get is set explicitly, so a
# developer's IGM_*, REDIS_URL, ... never leaks into the topology.
# As in docker-compose.yml: links to the demo stream and player page the gateways serve.
DEMO_LINKS = {
    "SIM_HLS_URL": "/_demo/hls/{event_id}/playlist.m3u8",
    "SIM_PLAYER_URL": "/_demo/player/{event_id}",
}
_INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")


class TopologyError(RuntimeError):
    """A process of the topology did not start (the message holds its log's tail)."""


def render_nginx_conf(template: str, values: Mapping[str, str]) -> str:
    """Fill in every ``${LB_*}`` placeholder; a placeholder without a value is an error."""
    missing = sorted({name for name in _PLACEHOLDER.findall(template) if name not in values})
    if missing:
        raise KeyError(f"no value for {', '.join(missing)} in the nginx template")
    return _PLACEHOLDER.sub(lambda match: values[match.group(1)], template)


def nginx_binary() -> str | None:
    found = shutil.which("nginx")
    if found is not None:
        return found
    return "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None


@dataclass(frozen=True, slots=True)
class Process:
    """A child process and the file its stdout and stderr go to."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    def tail(self, limit: int = 3000) -> str:
        try:
            text = self.log_path.read_bytes()[-limit:]
        except OSError:
            return ""
        return text.decode(errors="replace")


@dataclass(frozen=True, slots=True)
class Topology:
    url: str  # the load balancer
    gateway_urls: tuple[str, ...]
    simulator: SimulatorHandle
    redis_url: str
    processes: tuple[Process, ...]  # the gateways and nginx
    workdir: Path

    def exited(self) -> list[Process]:
        return [process for process in self.processes if process.popen.poll() is not None]


def child_env(overrides: Mapping[str, str]) -> dict[str, str]:
    base = {name: os.environ[name] for name in _INHERITED if name in os.environ}
    return base | dict(overrides)


def gateway_env(
    *,
    name: str,
    port: int,
    simulator: SimulatorHandle,
    redis_url: str,
    extra: Mapping[str, str],
) -> dict[str, str]:
    """What docker-compose.yml gives a gateway, with loopback addresses."""
    env = {
        "HOST": LOOPBACK,
        "PORT": str(port),
        "WEB_CONCURRENCY": "1",
        "PYTHON": sys.executable,
        "IGM_MODE": "production",
        "IGM_API_URL": simulator.api_url,
        "IGM_PLAYER_API_URL": simulator.api_url,
        "IGM_CUSTOMER_UID": simulator.customer_uid,
        "IGM_SERVER_IP": simulator.server_ip,
        "REDIS_URL": redis_url,
        "REPLICA_ID": name,
        "REPLICA_COUNT": str(len(GATEWAYS)),
        "TRUSTED_PROXIES": f"{LOOPBACK}/32",
        "LOG_FORMAT": "json",
        "API_KEYS": "compose-demo-api-key-not-for-production-01",
        "AUTH_JWT_SECRET": "demo-jwt-secret-for-the-compose-fleet-only-0123456789",
        "AUDIT_USER_ID_KEY": "compose-demo-audit-key-not-for-production-01",
        "DEFAULT_REDIRECT_URL": "https://www.example.com/",
        "REDIRECT_ALLOWED_HOSTS": "www.example.com",
        "DEMO_PAGE": "true",
        "DEMO_TOKEN_ISSUER": "true",
    }
    return child_env(env | dict(extra))


@contextmanager
def _process(
    name: str, command: Sequence[str], *, env: Mapping[str, str], cwd: Path, logs: Path
) -> Iterator[Process]:
    """Start ``command``; on exit SIGTERM it, wait, and SIGKILL it if it lingers."""
    log_path = logs / f"{name}.log"
    with log_path.open("wb") as log:
        popen = subprocess.Popen(
            list(command),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches scripts/topology, which stops it in order
        )
    try:
        yield Process(name, popen, log_path)
    finally:
        if popen.poll() is None:
            popen.terminate()
        try:
            popen.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait()


def _wait_until_answering(process: Process, url: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            if httpx.get(url, timeout=0.5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if process.popen.poll() is not None or time.monotonic() > deadline:
            raise TopologyError(f"{process.name} did not answer {url}:\n{process.tail()}")
        time.sleep(0.1)


def _start_nginx(
    stack: ExitStack,
    workdir: Path,
    logs: Path,
    port: int,
    upstreams: Sequence[str],
    server_snippet: str = "",
) -> Process:
    binary = nginx_binary()
    if binary is None:
        raise TopologyError("nginx is not installed (apt-get install -y nginx-light)")
    run_dir = workdir / "nginx"
    run_dir.mkdir(parents=True, exist_ok=True)
    values = {"LB_LISTEN": f"{LOOPBACK}:{port}", "LB_RUN_DIR": str(run_dir)}
    values |= {f"LB_GATEWAY_{i}": upstream for i, upstream in enumerate(upstreams, start=1)}
    conf = run_dir / "nginx.conf"
    text = render_nginx_conf(NGINX_TEMPLATE.read_text(), values)
    if server_snippet:  # e.g. a benchmark's static location, beside the shipped ones
        listen = f"listen {values['LB_LISTEN']};"
        if text.count(listen) != 1:
            raise TopologyError("the nginx template should have one server block")
        text = text.replace(listen, f"{listen}\n{server_snippet}")
    conf.write_text(text)
    # Run as root (a CI container), nginx's workers would be "nobody", who cannot enter
    # a private temp directory: the micro-cache lives there.
    directives = "daemon off;" + (" user root;" if os.geteuid() == 0 else "")
    command = [binary, "-p", str(run_dir), "-c", str(conf), "-e", "stderr", "-g", directives]
    return stack.enter_context(
        _process("nginx", command, env=child_env({}), cwd=run_dir, logs=logs)
    )


@contextmanager
def run_topology(
    workdir: Path,
    *,
    port: int | None = None,
    gateway_settings: Mapping[str, str] | None = None,
    simulator_settings: Mapping[str, str] | None = None,
    nginx_server_snippet: str = "",
) -> Iterator[Topology]:
    """Start everything (each gateway answering ``/healthz``), yield, stop in reverse.

    ``gateway_settings`` are extra environment variables for both gateways (e.g.
    ``EVENTS_MIN_INTERVAL_S``), ``simulator_settings`` extra ``SIM_*`` variables,
    ``nginx_server_snippet`` extra directives in nginx's server block.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    logs = workdir / "logs"
    logs.mkdir(exist_ok=True)
    with ExitStack() as stack:
        redis_url = stack.enter_context(run_redis_server(workdir / "redis"))
        simulator = stack.enter_context(
            run_simulator(
                {"SIM_SERVER_IPS": LOOPBACK, **DEMO_LINKS} | dict(simulator_settings or {})
            )
        )
        gateways: list[Process] = []
        gateway_urls: list[str] = []
        for name in GATEWAYS:
            gateway_port = free_port()
            env = gateway_env(
                name=name,
                port=gateway_port,
                simulator=simulator,
                redis_url=redis_url,
                extra=gateway_settings or {},
            )
            # cwd: a private directory, so no developer's .env is read.
            gateways.append(
                stack.enter_context(_process(name, [str(SERVE)], env=env, cwd=workdir, logs=logs))
            )
            gateway_urls.append(f"http://{LOOPBACK}:{gateway_port}")
        for process, url in zip(gateways, gateway_urls, strict=True):
            _wait_until_answering(process, f"{url}/healthz")
        lb_port = port or free_port()
        upstreams = [url.removeprefix("http://") for url in gateway_urls]
        nginx = _start_nginx(stack, workdir, logs, lb_port, upstreams, nginx_server_snippet)
        url = f"http://{LOOPBACK}:{lb_port}"
        _wait_until_answering(nginx, f"{url}/healthz")
        yield Topology(
            url=url,
            gateway_urls=tuple(gateway_urls),
            simulator=simulator,
            redis_url=redis_url,
            processes=(*gateways, nginx),
            workdir=workdir,
        )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="scripts/topology",
        description="Run redis, the simulator, two gateways and nginx on loopback.",
    )
    parser.add_argument("--port", type=int, default=8080, help="the load balancer's port")
    parser.add_argument(
        "--events-interval",
        type=float,
        default=None,
        help="seconds between event calls, for the simulator and the gateways (10)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    gateway_settings = {"LOG_FORMAT": "console"}
    simulator_settings: dict[str, str] = {}
    if args.events_interval is not None:
        gateway_settings["EVENTS_MIN_INTERVAL_S"] = str(args.events_interval)
        simulator_settings["SIM_EVENTS_MIN_INTERVAL_S"] = str(args.events_interval)
    # A plain list, not a threading.Event: Event.set() from a signal handler can
    # deadlock with the main thread's own Event.wait().
    stop_signals: list[int] = []

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop_signals.append(signum)

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    with tempfile.TemporaryDirectory(prefix="oneplatform-topology-") as tmp:
        try:
            with run_topology(
                Path(tmp),
                port=args.port,
                gateway_settings=gateway_settings,
                simulator_settings=simulator_settings,
            ) as topology:
                _announce(topology, sys.stdout)
                while not stop_signals:
                    exited = topology.exited()
                    if exited:
                        for process in exited:
                            print(f"{process.name} exited:\n{process.tail()}", file=sys.stderr)
                        return 1
                    time.sleep(0.2)
                print("stopping", file=sys.stdout, flush=True)
        except TopologyError as exc:
            print(f"scripts/topology: {exc}", file=sys.stderr)
            return 1
    return 0


def _announce(topology: Topology, out: IO[str]) -> None:
    print(f"ONEPlatform Gateway topology on {topology.url}", file=out)
    for name, url in zip(GATEWAYS, topology.gateway_urls, strict=True):
        print(f"  {name}: {url}  (metrics: {url}/metrics)", file=out)
    print(f"  simulator: {topology.simulator.url}  (stats: /_sim/stats)", file=out)
    print(f"  redis: {topology.redis_url}", file=out)
    print(f"  logs: {topology.workdir / 'logs'}", file=out)
    print(f"  try: curl {topology.url}/v1/events/open   (Ctrl-C stops everything)", file=out)
    out.flush()


if __name__ == "__main__":
    raise SystemExit(main())
