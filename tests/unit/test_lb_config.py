"""What the shipped load balancer (deploy/nginx/nginx.conf) must hold to stay safe,
read from the file (the behaviour itself: tests/integration/test_lb_hardening.py)."""

from __future__ import annotations

import re
from pathlib import Path

from app.settings import Settings

NGINX_CONF = Path(__file__).resolve().parents[2] / "deploy" / "nginx" / "nginx.conf"


def conf() -> str:
    return NGINX_CONF.read_text()


def number(directive: str) -> int:
    found = re.findall(rf"^\s*{directive} (\d+);", conf(), flags=re.MULTILINE)
    assert len(found) == 1, directive
    return int(found[0])


def test_a_worker_can_hold_the_streams_a_replica_holds() -> None:
    streams = Settings.model_fields["sse_max_clients"].default
    # Each stream is two connections (the viewer's and the one to a replica).
    assert number("worker_connections") >= 2 * streams
    assert number("worker_rlimit_nofile") >= 2 * number("worker_connections")


def test_the_live_stream_is_limited_per_address() -> None:
    live = re.search(r"location = /v1/events/live \{(.*?)\}", conf(), re.S)
    assert live is not None
    assert re.search(r"limit_conn live_per_address \d+;", live.group(1))
    assert "limit_conn_zone $binary_remote_addr zone=live_per_address" in conf()
    assert "limit_conn_status 429;" in conf()


def test_no_log_format_holds_a_raw_query_string() -> None:
    formats = re.findall(r"log_format \w+ (.*?);", conf(), re.S)
    assert formats
    for text in formats:
        for raw in ("$request ", '$request"', "$request_uri", "$args", "$query_string", "$arg_"):
            assert raw not in text, raw
    # Request lines are in error lines: only critical ones are written.
    assert re.search(r"^\s{8}error_log stderr crit;", conf(), flags=re.MULTILINE)


def test_headers_are_set_once_for_every_location() -> None:
    """A location with a proxy_set_header of its own would drop every one set above it
    (nginx inherits them only when a level sets none): the country header would pass."""
    server = conf().split("server {", 1)[1]
    top, locations = re.split(r"^\s*location ", server, maxsplit=1, flags=re.MULTILINE)
    assert "proxy_set_header X-Viewer-Country $lb_viewer_country;" in top
    assert "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;" in top
    assert "proxy_set_header" not in locations


def test_admin_is_not_routed() -> None:
    block = re.search(r"location \^~ /admin \{(.*?)\}", conf(), re.S)
    assert block is not None
    assert "return 404;" in block.group(1)
    assert "proxy_pass" not in block.group(1)
