"""The live stream through the deployment's load balancer: nginx (``deploy/nginx``) in
front of two replicas started by ``scripts/serve``, as ``scripts/topology`` runs them.
A browser-style subscriber (JWT in ``access_token``) gets its snapshot and heartbeats
through nginx as they are sent, and no log line of nginx or a gateway holds the token.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support.jwt_keys import HS_SECRET, sign_hs256
from tests.support.polling import wait_until
from tests.support.topology import Topology, run_topology

pytestmark = [pytest.mark.slow, pytest.mark.redis]

HEARTBEAT_S = 1.0


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    with run_topology(
        tmp_path_factory.mktemp("live-topology"),
        gateway_settings={
            "EVENTS_MIN_INTERVAL_S": "1",
            "AUTH_JWT_SECRET": HS_SECRET,
            "SSE_HEARTBEAT_S": str(HEARTBEAT_S),
        },
        simulator_settings={"SIM_EVENTS_MIN_INTERVAL_S": "1"},
    ) as running:
        yield running


def test_the_stream_passes_through_nginx_and_the_token_is_never_logged(
    topology: Topology,
) -> None:
    wait_until(
        lambda: httpx.get(f"{topology.url}/v1/events/open", timeout=5).status_code == 200,
        "the fleet fetched the open list",
        timeout_s=30,
    )
    token = sign_hs256({"sub": "browser-viewer", "exp": int(time.time()) + 300})
    received = b""
    stamps: list[float] = []
    with httpx.stream(
        "GET",
        f"{topology.url}/v1/events/live",
        params={"access_token": token},
        timeout=httpx.Timeout(10.0),
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["server"] == "nginx"
        for chunk in response.iter_bytes():
            received += chunk
            if b": heartbeat" in chunk:
                stamps.append(time.monotonic())
            if len(stamps) >= 3:
                break
    assert received.startswith(b"id: ")
    assert b"event: snapshot\r\n" in received
    # Each heartbeat (a few bytes) arrived as it was sent: nothing held them back.
    gaps = [later - earlier for earlier, later in itertools.pairwise(stamps)]
    assert all(gap < 5 * HEARTBEAT_S for gap in gaps), gaps

    # nginx writes its access line when the stream ends, after the gateway wrote its own
    logs = wait_until(
        lambda: {p.name: p.read_text() for p in (topology.workdir / "logs").glob("*.log")},
        "nginx's access line of the stream",
        until=lambda found: any(
            "GET /v1/events/live?[redacted] HTTP/1.1" in t for t in found.values()
        ),
        timeout_s=20,
    )
    for name, text in logs.items():
        assert token not in text, name
        assert token.split(".")[2] not in text, name
        assert "access_token" not in text, name
