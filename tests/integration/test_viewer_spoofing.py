"""The viewer's IP cannot be chosen by the viewer when the service runs the documented way.

The gateway decides for itself whose ``X-Forwarded-For`` to believe (``TRUSTED_PROXIES``),
which only works if the ASGI server has not already rewritten the peer address from
that header. uvicorn does exactly that by default for peers in ``FORWARDED_ALLOW_IPS``
(127.0.0.1 unless set): hence ``--no-proxy-headers`` in ``scripts/serve``. These tests
start real processes: the documented command, and plain uvicorn without the flag, to
show what the flag prevents.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.support.gateway import (
    REPO_ROOT,
    GatewayProcess,
    gateway_env,
    run_gateway,
    uvicorn_command,
)
from tests.support.polling import wait_until
from tests.support.redis_server import free_port, fresh_database
from tests.support.simulator import SimulatorHandle, run_simulator

pytestmark = pytest.mark.redis

API_KEY = "test-api-key-0123456789abcdef0123456789"
SPOOFED = "203.0.113.9"
SERVE_SCRIPT = REPO_ROOT / "scripts" / "serve"
START_TIMEOUT_S = 30.0
OPEN = "SPOOF-OPEN"


def open_listed(gateway: GatewayProcess) -> bool:
    response = httpx.get(f"{gateway.url}/v1/events/open", timeout=2)
    return response.status_code == 200 and OPEN in response.text


@contextmanager
def serving(
    command: list[str], env: Mapping[str, str], log_dir: Path, name: str, port: int
) -> Iterator[GatewayProcess]:
    """A gateway started by ``command``, once it lists the scenario's open event."""
    with run_gateway(env, log_dir, name=name, port=port, command=command) as gateway:
        try:
            wait_until(lambda: open_listed(gateway), "the open list", timeout_s=START_TIMEOUT_S)
        except AssertionError:
            pytest.fail(f"{name} never served the open list:\n{gateway.log_text()[-3000:]}")
        yield gateway


@pytest.fixture(scope="module")
def simulator() -> Iterator[SimulatorHandle]:
    with run_simulator(env={"SIM_EVENTS_MIN_INTERVAL_S": "0"}) as sim:
        sim.load_scenario(
            [{"eventId": OPEN, "eventStatusCode": "O", "title": "Spoof v Check", "sportCode": "FT"}]
        )
        yield sim


@pytest.fixture
def env(simulator: SimulatorHandle, redis_server_url: str) -> dict[str, str]:
    """No TRUSTED_PROXIES: every peer is the viewer itself."""
    url = fresh_database(redis_server_url, 4)
    return gateway_env(simulator.api_url, url, API_KEYS=API_KEY, REPLICA_ID="spoof")


def mint_spoofed(gateway: GatewayProcess, sim: SimulatorHandle) -> str:
    """Mint a player link claiming to be SPOOFED; the userIp the upstream received."""
    user = f"spoofer-{uuid.uuid4().hex[:10]}"
    response = httpx.post(
        f"{gateway.url}/v1/events/{OPEN}/links",
        json={"streamName": "HLS", "kind": "player", "redirectUrl": "https://operator.example/"},
        headers={"X-API-Key": API_KEY, "X-User-Id": user, "X-Forwarded-For": SPOOFED},
        timeout=10.0,
    )
    assert response.status_code == 200, response.text
    [call] = [c for c in sim.calls("stream_link") if c["params"]["userId"] == user]
    assert call["params"]["xForwardedFor"] == "127.0.0.1"  # IGM_SERVER_IP either way
    return call["params"]["userIp"]


def test_the_documented_start_ignores_a_forwarded_for_from_the_viewer(
    simulator: SimulatorHandle, env: dict[str, str], tmp_path: Path
) -> None:
    assert "--no-proxy-headers" in SERVE_SCRIPT.read_text()
    port = free_port()
    settings = {"HOST": "127.0.0.1", "PORT": str(port), "PYTHON": sys.executable}
    with serving([str(SERVE_SCRIPT)], env | settings, tmp_path, "documented", port) as gateway:
        assert mint_spoofed(gateway, simulator) == "127.0.0.1"


def test_plain_uvicorn_would_have_trusted_the_viewers_forwarded_for(
    simulator: SimulatorHandle, env: dict[str, str], tmp_path: Path
) -> None:
    """Why the flag matters: uvicorn's default (proxy headers on, FORWARDED_ALLOW_IPS
    127.0.0.1) rewrites the peer from the header before the app sees it, so the
    gateway's own rule finds an "untrusted peer" that is the spoofed address."""
    port = free_port()
    command = uvicorn_command(port, proxy_headers=True)
    with serving(command, env, tmp_path, "plain-uvicorn", port) as gateway:
        assert mint_spoofed(gateway, simulator) == SPOOFED
