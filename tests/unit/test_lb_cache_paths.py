"""Which paths the load balancer's micro-cache location takes (deploy/nginx/nginx.conf).

nginx matches regex locations with PCRE; Python's ``re`` reads this one the same way
(anchors, alternation, a negative lookahead). Catalogue reads are cached; the live
stream, links, play, sessions and admin never reach the cached location, and the
``$lb_personal_path`` map marks them uncacheable besides.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

NGINX_CONF = Path(__file__).resolve().parents[2] / "deploy" / "nginx" / "nginx.conf"


def cached_location() -> re.Pattern[str]:
    found = re.findall(r"^\s*location ~ (\S+) \{", NGINX_CONF.read_text(), flags=re.MULTILINE)
    assert len(found) == 1, found
    return re.compile(found[0])


def personal_paths() -> list[re.Pattern[str]]:
    block = re.search(r"map \$uri \$lb_personal_path \{(.*?)\}", NGINX_CONF.read_text(), re.S)
    assert block is not None
    return [re.compile(m) for m in re.findall(r"^\s*~(\S+)\s+1;", block.group(1), re.MULTILINE)]


CACHED = [
    "/v1/sports",
    "/v1/events",
    "/v1/events/open",
    "/v1/events/FT-123",
    "/v1/events/FT-123/streams",
]
PERSONAL = [
    "/v1/events/live",
    "/v1/events/FT-123/links",
    "/v1/events/FT-123/play",
    "/v1/sessions",
    "/v1/sessions/abc",
    "/admin",
    "/admin/cache",
]
NEVER = [
    *PERSONAL,
    "/metrics",
    "/healthz",
    "/readyz",
    "/docs",
    "/openapi.json",
    "/v1/events/FT-123/streams/extra",
]


@pytest.mark.parametrize("path", CACHED)
def test_catalogue_reads_take_the_cached_location(path: str) -> None:
    assert cached_location().fullmatch(path)
    assert not any(p.search(path) for p in personal_paths())


@pytest.mark.parametrize("path", NEVER)
def test_other_paths_do_not(path: str) -> None:
    assert not cached_location().search(path)


@pytest.mark.parametrize("path", PERSONAL)
def test_personal_paths_are_marked_uncacheable(path: str) -> None:
    assert any(p.search(path) for p in personal_paths())
