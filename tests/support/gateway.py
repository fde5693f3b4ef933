"""Run gateway replicas as real uvicorn processes, started the documented way.

``run_gateway`` starts ``uvicorn --factory app.main:create_app --no-proxy-headers``
(what ``scripts/serve`` runs) on a free loopback port with the given environment,
waits for ``/healthz``, and stops it (SIGTERM, then SIGKILL) on exit. The process's
output goes to a log file the test can read (``GatewayProcess.log_text()``).
With ``workers`` > 1 it runs uvicorn's ``--workers`` supervisor, as ``scripts/serve``
does for ``WEB_CONCURRENCY``, with an emptied ``PROMETHEUS_MULTIPROC_DIR`` of its own
(``GatewayProcess.metrics_dir``).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.redis_server import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 30.0
# Production keys are at least 32 characters (app/settings/checks.py).
TEST_API_KEY = "test-api-key-0123456789abcdef0123456789"


@dataclass
class GatewayProcess:
    name: str
    url: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    metrics_dir: Path | None = None  # PROMETHEUS_MULTIPROC_DIR, with several workers

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL: the replica dies without any clean-up (no lease hand-back)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def terminate(self, timeout_s: float = 15.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return self.process.returncode


def gateway_env(simulator_api_url: str, redis_url: str | None, **overrides: str) -> dict[str, str]:
    """Production-mode settings pointing at a simulator (and a shared Redis)."""
    env = {
        "IGM_MODE": "production",
        "IGM_CUSTOMER_UID": "demo-customer-uid",
        "IGM_SERVER_IP": "127.0.0.1",
        "IGM_API_URL": simulator_api_url,
        "IGM_PLAYER_API_URL": simulator_api_url,
        "LOG_FORMAT": "json",
        "API_KEYS": TEST_API_KEY,
    }
    if redis_url is not None:
        env["REDIS_URL"] = redis_url
    env.update(overrides)
    return env


# What production mode requires of an operator (app/settings/checks.py) that a test does not
# set itself: the audit hash's key, and any https host as a redirect target.
PRODUCTION_DEFAULTS = {
    "AUDIT_USER_ID_KEY": "test-audit-user-id-key-0123456789abcdef",
    "REDIRECT_ALLOW_ANY": "true",
}

SERVE_KEEP_ALIVE_S = "75"  # scripts/serve's --timeout-keep-alive


def uvicorn_command(port: int, *, proxy_headers: bool = False, workers: int = 1) -> list[str]:
    """What ``scripts/serve`` runs; ``proxy_headers=True`` is uvicorn's unsafe default.

    ``--timeout-keep-alive`` as there: with uvicorn's 5 s, equal to httpx's idle expiry,
    a test client could send on a connection at the moment uvicorn closes it, and read
    a connection reset (seen once in a fleet test, as a ``ReadError``)."""
    command = [sys.executable, "-m", "uvicorn", "--factory", "app.main:create_app"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
    command += ["--timeout-keep-alive", SERVE_KEEP_ALIVE_S]
    if workers > 1:
        command += ["--workers", str(workers)]
    return command if proxy_headers else [*command, "--no-proxy-headers"]


@contextmanager
def run_gateway(
    env: Mapping[str, str],
    log_dir: Path,
    name: str = "gateway",
    port: int | None = None,
    command: Sequence[str] | None = None,
    workers: int = 1,
) -> Iterator[GatewayProcess]:
    """A gateway process on ``port`` (``command`` must listen there; default: uvicorn,
    with ``workers`` worker processes)."""
    port = port or free_port()
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    full_env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("IGM_", "REDIS_", "API_KEYS", "AUTH_", "TRUSTED_", "GEO"))
        and key
        not in (
            "FORWARDED_ALLOW_IPS",
            "HOST",
            "PORT",
            "PYTHON",
            "WEB_CONCURRENCY",
            "PROMETHEUS_MULTIPROC_DIR",
        )
    }
    full_env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + full_env.get("PATH", "")
    full_env.update(env)
    for setting, value in PRODUCTION_DEFAULTS.items():
        full_env.setdefault(setting, value)
    full_env.setdefault("REPLICA_ID", name)
    metrics_dir = None
    if workers > 1:
        metrics_dir = log_dir / f"{name}-metrics"
        shutil.rmtree(metrics_dir, ignore_errors=True)  # an earlier run's files would count
        metrics_dir.mkdir()
        full_env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    command = list(command or uvicorn_command(port, workers=workers))
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=full_env, stdout=log_file, stderr=subprocess.STDOUT
        )
    gateway = GatewayProcess(name, f"http://127.0.0.1:{port}", port, process, log_path, metrics_dir)
    try:
        _wait_healthy(gateway)
        yield gateway
    finally:
        gateway.terminate()


@contextmanager
def run_fleet(count: int, env: Mapping[str, str], log_dir: Path) -> Iterator[list[GatewayProcess]]:
    with ExitStack() as stack:
        yield [
            stack.enter_context(run_gateway(env, log_dir, name=f"replica-{index + 1}"))
            for index in range(count)
        ]


def _wait_healthy(gateway: GatewayProcess) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if gateway.process.poll() is not None:
            raise RuntimeError(f"{gateway.name} exited at start:\n{gateway.log_text()[-3000:]}")
        try:
            if httpx.get(f"{gateway.url}/healthz", timeout=0.5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{gateway.name} did not become healthy:\n{gateway.log_text()[-3000:]}")
