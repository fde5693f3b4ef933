"""The load balancer passes the live stream through: unbuffered, HTTP/1.1 to the
replicas, a read timeout above the heartbeat, and no query string (a JWT) in its log."""

from __future__ import annotations

import re
from pathlib import Path

from app.settings import Settings

NGINX = Path(__file__).resolve().parents[3] / "deploy" / "nginx" / "nginx.conf"


def live_location() -> str:
    match = re.search(r"location = /v1/events/live \{(.*?)\n        \}", NGINX.read_text(), re.S)
    assert match is not None, "nginx.conf has no location for /v1/events/live"
    return match.group(1)


def server_level() -> str:
    """The server block above its first location: what every location inherits."""
    server = NGINX.read_text().split("server {", 1)[1]
    return re.split(r"^\s*location ", server, maxsplit=1, flags=re.MULTILINE)[0]


def test_the_stream_is_not_buffered_and_outlives_the_heartbeat() -> None:
    block = live_location()
    assert "proxy_buffering off;" in block
    assert "proxy_http_version 1.1;" in server_level()
    assert 'proxy_set_header Connection "";' in server_level()
    assert "proxy_set_header" not in block  # else the server's would not be inherited
    timeout = re.search(r"proxy_read_timeout (\d+)s;", block)
    assert timeout is not None
    heartbeat = Settings.model_fields["sse_heartbeat_s"].default
    assert int(timeout.group(1)) >= 3 * heartbeat


def test_the_live_access_line_has_no_query_string() -> None:
    block = live_location()
    name = re.search(r"access_log \S+ (\w+);", block) or re.search(
        r"^\s*access_log \S+ (\w+);", NGINX.read_text(), re.MULTILINE
    )
    assert name is not None
    log_format = re.search(rf"log_format {name.group(1)} (.*?);", NGINX.read_text(), re.S)
    assert log_format is not None
    assert "$request " not in log_format.group(1)
    assert '$request"' not in log_format.group(1)
    assert "$args" not in log_format.group(1)
    assert "$request_uri" not in log_format.group(1)
