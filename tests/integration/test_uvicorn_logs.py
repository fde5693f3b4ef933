"""With ``LOG_FORMAT=json`` every line a real gateway process writes, uvicorn's own
included (start-up, a bad request, shutdown), is a JSON object, and there is exactly
one access line per request, the app's, whichever way uvicorn was started."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import httpx
import orjson
import pytest

from tests.support.gateway import REPO_ROOT, run_gateway
from tests.support.redis_server import free_port, fresh_database

pytestmark = pytest.mark.slow

ENV = {
    "IGM_MODE": "simulator",
    "LOG_FORMAT": "json",
    "LOG_LEVEL": "info",
    "TRUSTED_PROXIES": "127.0.0.1/32",  # so the test's X-Request-ID names each line
}
UVICORN = [sys.executable, "-m", "uvicorn", "--factory", "app.main:create_app"]
REQUESTS = [
    ("GET", "/healthz"),
    ("GET", "/v1/sports"),  # the warm read path once warm, else the routed stack
    ("GET", "/v1/events/open"),
    ("GET", "/no/such/path"),
    ("GET", "/docs"),
    ("POST", "/v1/events/E-1/links"),  # no credentials: 401
    ("DELETE", "/v1/sports"),
]


def commands(port: int) -> dict[str, list[str]]:
    where = ["--host", "127.0.0.1", "--port", str(port)]
    return {
        "uvicorn": [*UVICORN, *where],
        "uvicorn-no-access-log": [*UVICORN, *where, "--no-access-log"],
        "scripts-serve": ["sh", str(REPO_ROOT / "scripts" / "serve")],
        "scripts-serve-2-workers": ["sh", str(REPO_ROOT / "scripts" / "serve")],
    }


def bad_request(port: int) -> None:
    """Bytes that are not HTTP: uvicorn logs a warning of its own."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        conn.recv(1024)


@pytest.mark.parametrize(
    "how",
    [
        "uvicorn",
        "uvicorn-no-access-log",
        "scripts-serve",
        pytest.param("scripts-serve-2-workers", marks=pytest.mark.redis),
    ],
)
def test_every_line_is_json_with_one_access_line_per_request(
    how: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    port = free_port()
    env = {**ENV, "HOST": "127.0.0.1", "PORT": str(port)}
    if how == "scripts-serve-2-workers":  # a supervisor and two workers sharing Redis
        redis_url = fresh_database(request.getfixturevalue("redis_server_url"), 9)
        env |= {"WEB_CONCURRENCY": "2", "REPLICA_COUNT": "2", "REDIS_URL": redis_url}
        env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path / "metrics")
    with run_gateway(env, tmp_path, name=how, port=port, command=commands(port)[how]) as gateway:
        with httpx.Client(base_url=gateway.url, timeout=10) as client:
            for index, (method, path) in enumerate(REQUESTS):
                client.request(method, path, headers={"X-Request-ID": f"test-{index}"})
        bad_request(port)
        gateway.terminate()  # SIGTERM: a graceful shutdown, logged
    text = gateway.log_text()

    lines = []
    for raw in text.splitlines():
        try:
            line = orjson.loads(raw)
        except orjson.JSONDecodeError:
            pytest.fail(f"not a JSON line: {raw!r}\n{text}")
        assert isinstance(line, dict)
        assert {"event", "level", "timestamp"} <= line.keys(), raw
        lines.append(line)

    access = [line for line in lines if line["event"] == "request"]
    for index, (method, _) in enumerate(REQUESTS):
        mine = [line for line in access if line.get("request_id") == f"test-{index}"]
        assert len(mine) == 1, (index, mine)
        assert mine[0]["method"] == method
    assert not [line for line in lines if line.get("logger") == "uvicorn.access"]
    assert not [line for line in lines if "HTTP/1.1" in str(line["event"])]  # uvicorn's shape

    from_uvicorn = [line["event"] for line in lines if line.get("logger") == "uvicorn.error"]
    assert any(str(event).startswith("Started server process") for event in from_uvicorn)
    assert "Invalid HTTP request received." in from_uvicorn
    assert "Application shutdown complete." in from_uvicorn
    finished = [e for e in from_uvicorn if str(e).startswith("Finished server process")]
    assert len(finished) == (2 if how.endswith("2-workers") else 1)
    if how.endswith("2-workers"):
        assert any(str(event).startswith("Started parent process") for event in from_uvicorn)
        assert any(str(event).startswith("Stopping parent process") for event in from_uvicorn)
