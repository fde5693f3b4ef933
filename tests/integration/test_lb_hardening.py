"""The shipped load balancer (``deploy/nginx/nginx.conf``, a real nginx) in front of two
gateway replicas (``scripts/serve``), a real Redis and the simulator, as
``scripts/topology`` runs them, against hostile clients:

- a country header the client sends never reaches the gateways' decision;
- ``/admin`` is not served on the public side;
- one address holds at most ``limit_conn`` live streams at the balancer (429 problem);
- no log line of nginx or a gateway holds a token, whatever path carries it, and a
  path with a trailing slash is not redirected (no Location with the query string).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack

import httpx
import pytest

from tests.support.jwt_keys import HS_SECRET, sign_hs256
from tests.support.polling import wait_until
from tests.support.simulator import HLS_STREAM, scenario_event
from tests.support.topology import Topology, run_topology

pytestmark = [pytest.mark.slow, pytest.mark.redis]

API_KEY = "compose-demo-api-key-not-for-production-01"  # tests/support/topology.py
ADMIN_KEY = "lb-admin-key-0123456789abcdef0123"
GB_ONLY = "LB-GB-ONLY"
COUNTRY_HEADER = "X-Viewer-Country"
LIVE_PER_ADDRESS = 50  # limit_conn live_per_address in the shipped nginx.conf


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    with run_topology(
        tmp_path_factory.mktemp("lb-hardening"),
        gateway_settings={
            "EVENTS_MIN_INTERVAL_S": "1",
            "AUTH_JWT_SECRET": HS_SECRET,
            "ADMIN_API_KEYS": ADMIN_KEY,
            "GEO_COUNTRY_HEADER": COUNTRY_HEADER,
            # The balancer's own limit is under test: the gateways' are off.
            "SSE_MAX_PER_USER": "0",
            "SSE_MAX_PER_IP": "0",
            "SSE_HEARTBEAT_S": "1",
        },
        simulator_settings={"SIM_EVENTS_MIN_INTERVAL_S": "1"},
    ) as running:
        running.simulator.load_scenario(
            [scenario_event(GB_ONLY, geo_allow="GB")], {GB_ONLY: [HLS_STREAM]}
        )
        wait_for(
            lambda: all(
                httpx.get(f"{url}/v1/events/{GB_ONLY}", timeout=5).status_code == 200
                for url in running.gateway_urls
            ),
            "the fleet to list the GB-only event",
            timeout_s=30,
        )
        yield running


def wait_for(check: Callable[[], bool], what: str, timeout_s: float = 15.0) -> None:
    wait_until(check, what, timeout_s=timeout_s, every_s=0.1)


def logs(topology: Topology) -> dict[str, str]:
    return {path.name: path.read_text() for path in (topology.workdir / "logs").glob("*.log")}


def link_request(url: str, user: str, **headers: str) -> httpx.Response:
    return httpx.post(
        f"{url}/v1/events/{GB_ONLY}/links",
        headers={"X-API-Key": API_KEY, "X-User-Id": user, **headers},
        json={"streamName": "HLS", "kind": "raw"},
        timeout=10,
    )


def test_a_client_country_header_does_not_reach_the_decision(topology: Topology) -> None:
    spoofed = {COUNTRY_HEADER: "GB", "CF-IPCountry": "GB", "X-Country-Code": "GB"}
    through_lb = link_request(topology.url, "spoofer-lb", **spoofed)
    # The balancer removed the header: the country is unknown, the GB-only event refused.
    assert through_lb.status_code == 403, through_lb.text
    assert through_lb.json()["code"] == "geo_blocked"
    # The same header from a trusted peer (a replica called from its balancer's address)
    # is believed: what the balancer removed would have decided.
    direct = link_request(topology.gateway_urls[0], "spoofer-direct", **spoofed)
    assert direct.status_code == 200, direct.text

    def audited() -> list[dict[str, str]]:
        lines = []
        for name, text in logs(topology).items():
            if name.startswith("gateway"):
                for line in text.splitlines():
                    if line.startswith("{") and '"event":"audit"' in line:
                        lines.append(json.loads(line))
        return lines

    wait_for(lambda: len(audited()) >= 2, "both audit records")
    refused = [line for line in audited() if line.get("code") == "geo_blocked"]
    assert refused
    assert all("country" not in line for line in refused)


def test_the_admin_api_is_not_served_by_the_balancer(topology: Topology) -> None:
    admin = {"X-Admin-Key": ADMIN_KEY}
    for path in ("/admin/state", "/admin", "/admin/", "/ADMIN/state"):
        answer = httpx.get(f"{topology.url}{path}", headers=admin, timeout=5)
        assert answer.status_code == 404, path
        assert "leaseHolder" not in answer.text
    assert (
        httpx.post(
            f"{topology.url}/admin/refresh", headers=admin, json={"list": "open"}
        ).status_code
        == 404
    )
    # On a replica's own port (the internal network) it answers.
    direct = httpx.get(f"{topology.gateway_urls[0]}/admin/state", headers=admin, timeout=5)
    assert direct.status_code == 200
    assert "leaseHolder" in direct.json()


def open_live(stack: ExitStack, url: str, token: str) -> httpx.Response:
    client = stack.enter_context(httpx.Client(timeout=httpx.Timeout(10.0)))
    response = stack.enter_context(
        client.stream("GET", f"{url}/v1/events/live", params={"access_token": token})
    )
    if response.status_code == 200:
        chunks = response.iter_bytes()
        next(chunks)  # the snapshot: the stream is up
        stack.callback(lambda: chunks)  # held: a dropped iterator closes the connection
    else:
        response.read()
    return response


def test_one_address_holds_at_most_its_live_streams_at_the_balancer(topology: Topology) -> None:
    token = sign_hs256({"sub": "stream-hoarder", "exp": int(time.time()) + 300})
    with ExitStack() as held:
        for _ in range(LIVE_PER_ADDRESS):
            assert open_live(held, topology.url, token).status_code == 200
        refused = open_live(held, topology.url, token)
        assert refused.status_code == 429
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.headers["retry-after"] == "10"
        assert refused.json()["code"] == "ip_live_limited"
    # The streams closed: the address may open one again.
    with ExitStack() as again:
        wait_for(
            lambda: open_live(again, topology.url, token).status_code == 200,
            "a live stream after the others closed",
        )
    assert token.split(".")[2] not in "".join(logs(topology).values())


def test_no_log_line_holds_a_token_whatever_the_path(topology: Topology) -> None:
    token = sign_hs256({"sub": "careless-viewer", "exp": int(time.time()) + 300})
    signature = token.split(".")[2]
    lb = topology.url
    # The trailing slash: a 404 from the gateway, not a redirect carrying the query.
    slashed = httpx.get(f"{lb}/v1/events/live/", params={"access_token": token}, timeout=5)
    assert slashed.status_code == 404
    assert "location" not in slashed.headers
    for path in (
        f"/v1/events/live/?access_token={token}",
        f"/v1/events/open?access_token={token}",
        f"/v1/events/open?ACCESS_TOKEN={token}",
        f"/v1/events/open?access%5Ftoken={token}",
        f"/v1/events/open?date=2026-01-01&token={token}",
        f"/v1/events/live%3Faccess_token%3D{token}",
        f"/v1/events/live/x?access_token={token}",
        f"/v1/sessions?jwt={token}",
        f"/admin/state?access_token={token}",
        f"/nowhere/{token}",
    ):
        answer = httpx.get(f"{lb}{path}", timeout=5)
        assert answer.status_code < 500, (path, answer.status_code)
        assert "location" not in answer.headers, path
    with ExitStack() as stream:  # and the live stream itself, as a browser opens it
        assert open_live(stream, lb, token).status_code == 200
    marker = "2026-12-07"
    httpx.get(f"{lb}/v1/events", params={"date": marker}, timeout=5)

    def nginx_wrote_them() -> bool:
        text = logs(topology).get("nginx.log", "")
        return f"date={marker}" in text and text.count("?[redacted]") >= 7

    wait_for(nginx_wrote_them, "nginx's access lines")
    for name, text in logs(topology).items():
        assert signature not in text, name
        assert token not in text, name
        assert "access_token" not in text.lower(), name
