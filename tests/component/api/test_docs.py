"""``/docs`` and ``/redoc`` from the app in process: local assets only, each page with
its own policy allowing exactly its inline blocks, the API keeping ``default-src 'none'``.
(The pages in a real browser: tests/integration/test_docs_browser.py.)"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest

from app.api.content_policy import API_POLICY, source_hash
from app.main import create_app
from app.settings import Settings
from tests.support.asgi import app_client


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(create_app(Settings(igm_mode="simulator"))) as test_client:
        yield test_client


def policy(response: httpx.Response) -> dict[str, list[str]]:
    values = response.headers.get_list("content-security-policy")
    assert len(values) == 1, values
    return {
        name: sources
        for name, *sources in (part.split() for part in values[0].split(";") if part.strip())
    }


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
async def test_page_loads_only_local_files(client: httpx.AsyncClient, path: str) -> None:
    page = await client.get(path)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["x-content-type-options"] == "nosniff"
    urls = re.findall(r'(?:src|href|spec-url)="([^"]*)"', page.text)
    assert urls
    for url in urls:
        assert url.startswith("/"), url  # nothing from a CDN or Google Fonts
        assert (await client.get(url, follow_redirects=True)).status_code == 200, url
    assert "url: '/openapi.json'" in page.text or 'spec-url="/openapi.json"' in page.text


async def test_swagger_ui_policy_allows_its_start_script_by_hash(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/docs")
    (start_script,) = re.findall(r"<script>(.*?)</script>", page.text, re.DOTALL)
    assert policy(page) == {
        "default-src": ["'none'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "base-uri": ["'none'"],
        "form-action": ["'none'"],
        "frame-ancestors": ["'none'"],
        "script-src": ["'self'", source_hash(start_script)],
        "style-src": ["'self'"],
    }
    assert '"validatorUrl": null' in start_script  # no badge from validator.swagger.io


async def test_redoc_policy(client: httpx.AsyncClient) -> None:
    directives = policy(await client.get("/redoc"))
    assert directives["script-src"] == ["'self'"]
    assert directives["style-src"] == ["'self'", "'unsafe-inline'"]
    assert directives["worker-src"] == ["blob:"]
    assert directives["connect-src"] == ["'self'"]
    assert directives["frame-ancestors"] == ["'none'"]


async def test_assets_and_api_keep_the_api_policy(client: httpx.AsyncClient) -> None:
    asset = await client.get("/docs/assets/swagger/swagger-ui-bundle.js")
    assert asset.status_code == 200
    assert "javascript" in asset.headers["content-type"]
    for response in (asset, await client.get("/openapi.json"), await client.get("/healthz")):
        assert response.headers.get_list("content-security-policy") == [API_POLICY.header_value()]


async def test_redoc_logo_is_where_redoc_asks_for_it(client: httpx.AsyncClient) -> None:
    logo = await client.get("/redoc/logo-mini.svg", follow_redirects=True)
    assert logo.status_code == 200
    assert logo.headers["content-type"].startswith("image/svg")


async def test_docs_pages_are_not_in_the_api_document(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert not [path for path in paths if path.startswith(("/docs", "/redoc"))]
