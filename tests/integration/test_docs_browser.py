"""``/docs`` and ``/redoc`` in a real browser, from a real gateway process, with every
request outside the gateway aborted (as in a closed network): each page lists every
operation of ``/openapi.json``, with no console error, no page error and no CSP
violation, and its screenshot is not blank; Swagger UI's *Authorize* takes a demo
token and its *Try it out* mints a link with it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image, ImageStat
from playwright.sync_api import Browser, Locator, Page, expect

from tests.support.browser import launch_chromium, open_page
from tests.support.gateway import GatewayProcess, run_gateway
from tests.support.polling import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]

HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}
RENDER_TIMEOUT_MS = 30_000  # generous: two cores, several test runs at once


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    env = {"IGM_MODE": "simulator", "LOG_FORMAT": "json"}
    with run_gateway(env, Path(tmp_path_factory.mktemp("docs"))) as process:
        yield process


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launch_chromium() as running:
        yield running


@pytest.fixture(scope="module")
def operations(gateway: GatewayProcess) -> dict[str, tuple[str, str]]:
    """operationId -> (METHOD, path), from the document the gateway serves."""
    document = httpx.get(f"{gateway.url}/openapi.json", timeout=10).json()
    found = {
        operation["operationId"]: (method.upper(), path)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    }
    assert len(found) >= 8  # the catalogue's five, links, /healthz, /readyz
    return found


def assert_not_blank(page: Page, path: Path) -> None:
    """A screenshot for a human to look at; a blank page has no variance at all."""
    page.screenshot(path=str(path), full_page=False)
    with Image.open(path) as image:
        variance = ImageStat.Stat(image.convert("L")).var[0]
    assert variance > 100, f"{path} looks blank (variance {variance:.1f})"


def test_swagger_ui_lists_every_operation(
    gateway: GatewayProcess,
    browser: Browser,
    operations: dict[str, tuple[str, str]],
    tmp_path: Path,
) -> None:
    with open_page(browser, gateway.url) as (page, report):
        page.goto(f"{gateway.url}/docs")
        blocks = page.locator(".opblock")
        expect(blocks).to_have_count(len(operations), timeout=RENDER_TIMEOUT_MS)
        listed = {
            (method.upper(), path)
            for method, path in page.eval_on_selector_all(
                ".opblock",
                """blocks => blocks.map(b => [
                    b.querySelector('.opblock-summary-method').textContent,
                    b.querySelector('.opblock-summary-path').dataset.path,
                ])""",
            )
        }
        expect(page.locator(".info .title")).to_contain_text("ONEPlatform Gateway")
        assert_not_blank(page, tmp_path / "docs.png")
    assert listed == set(operations.values())
    assert report.problems() == []


def test_redoc_lists_every_operation(
    gateway: GatewayProcess,
    browser: Browser,
    operations: dict[str, tuple[str, str]],
    tmp_path: Path,
) -> None:
    with open_page(browser, gateway.url) as (page, report):
        page.goto(f"{gateway.url}/redoc")
        expect(page.locator("h1")).to_contain_text("ONEPlatform Gateway", timeout=RENDER_TIMEOUT_MS)
        # One section per operation in the content, one entry per operation in the menu.
        sections = page.locator("[data-section-id^='operation/']")
        expect(sections).to_have_count(len(operations), timeout=RENDER_TIMEOUT_MS)
        expect(page.locator("li[data-item-id*='/operation/']")).to_have_count(len(operations))
        ids = page.eval_on_selector_all(
            "[data-section-id^='operation/']",
            "sections => sections.map(s => s.dataset.sectionId.slice('operation/'.length))",
        )
        assert_not_blank(page, tmp_path / "redoc.png")
    assert set(ids) == set(operations)
    assert report.problems() == []


def test_a_blocked_asset_is_reported(gateway: GatewayProcess, browser: Browser) -> None:
    """The harness sees what it is there to see: an inline script that the page's
    policy does not allow (added after load, so its hash is not in the policy)."""
    with open_page(browser, gateway.url) as (page, report):
        page.goto(f"{gateway.url}/docs")
        page.evaluate(
            """() => { const s = document.createElement('script');
                       s.textContent = 'window.__ran = true'; document.body.append(s); }"""
        )
        page.evaluate("() => fetch('https://cdn.example.com/x.js').catch(() => null)")
        assert page.evaluate("window.__ran === undefined")
    assert any("script-src" in text for text in report.csp_violations), report.problems()
    assert any("cdn.example.com" in text for text in report.problems()), report.problems()


def open_operation(page: Page, dom_id: str) -> Locator:
    """Expand an operation in Swagger UI and press *Try it out*."""
    block = page.locator(f"#{dom_id}")
    block.locator(".opblock-summary").click()
    block.get_by_role("button", name="Try it out").click()
    return block


def answer_of(block: Locator) -> tuple[str, dict[str, Any]]:
    """The status and JSON body Swagger UI shows for the request it just sent."""
    live = block.locator(".live-responses-table .response").first
    expect(live).to_be_visible(timeout=RENDER_TIMEOUT_MS)
    status = live.locator(".response-col_status").inner_text().strip()
    body: dict[str, Any] = json.loads(live.locator(".microlight").first.inner_text())
    return status, body


def racing_channel(gateway: GatewayProcess) -> str:
    """The simulator's all-day channel (sport HR, no geo lists), once the list is here."""

    def channels() -> list[str]:
        answer = httpx.get(f"{gateway.url}/v1/events/open", timeout=10)
        if answer.status_code != 200:
            return []
        return [str(e["eventId"]) for e in answer.json()["events"] if e["sportCode"] == "HR"]

    return wait_until(channels, "the open list with the racing channel", timeout_s=30)[0]


def test_authorize_in_swagger_ui_then_play_mints_a_link(
    gateway: GatewayProcess, browser: Browser, tmp_path: Path
) -> None:
    """Demo mode, as the docs say: a token from GET /_demo/token, pasted into
    *Authorize* (viewerJwt), then *Try it out* on POST /play answers a link."""
    event_id = racing_channel(gateway)
    with open_page(browser, gateway.url) as (page, report):
        page.goto(f"{gateway.url}/docs")
        expect(page.locator(".info")).to_contain_text("/_demo/token", timeout=RENDER_TIMEOUT_MS)
        token_block = open_operation(page, "operations-demo-token__demo_token_get")
        token_block.get_by_role("button", name="Execute").click()
        status, token = answer_of(token_block)
        assert status == "200"
        assert token["tokenType"] == "Bearer"

        page.locator(".auth-wrapper .authorize").click()
        dialog = page.locator(".dialog-ux .modal-ux")
        scheme = dialog.locator(".auth-container").filter(has_text="viewerJwt")
        scheme.locator("input").fill(token["accessToken"])
        scheme.locator("button.authorize").click()
        expect(scheme.locator("button", has_text="Logout")).to_be_visible()
        dialog.locator("button.btn-done").first.click()

        play = open_operation(page, "operations-links-play_v1_events__eventId__play_post")
        play.locator("input[placeholder='eventId']").fill(event_id)
        play.locator("textarea.body-param__text").fill('{"device": "web"}')
        play.get_by_role("button", name="Execute").click()
        status, link = answer_of(play)
        expect(play.locator(".curl-command")).to_contain_text("Authorization: Bearer")
        page.screenshot(path=str(tmp_path / "authorize.png"))
    assert status == "200", link
    assert link["kind"] == "hls"
    assert link["eventId"] == event_id
    assert report.problems() == []
