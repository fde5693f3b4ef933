"""A front end on another origin, built only from the README's recipe and the player
kit, in a real chromium: the page is the README's ``<!-- recipe: ... -->`` block with the
gateway's address put in, served on another port; the gateway (a production process
on the simulator, with the demo token route) allows that origin in
``CORS_ALLOW_ORIGINS`` and ``FRAME_ANCESTORS``.

It plays HLS (hls.js) and the iGame player (an iframe of the gateway's player page),
renews a link that expires (``LINK_TTL_S``), and tears down when the event closes in
the simulator. What the page reports comes from the recipe's own ``console.log``.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import ConsoleMessage, Page

from tests.browser.pages import PLAY_TIMEOUT_S, assert_video_plays, open_event, wait_for
from tests.support.browser import launch_chromium
from tests.support.gateway import REPO_ROOT, GatewayProcess, run_gateway
from tests.support.simulator import SimulatorHandle, run_simulator

VENDOR = REPO_ROOT / "node_modules"
pytestmark = pytest.mark.skipif(
    not (VENDOR / "hls.js").is_dir(), reason="the player libraries are not installed (npm ci)"
)
RECIPE_MARK = "<!-- recipe: a page on another origin -->"
README_GATEWAY = "http://127.0.0.1:8000"
JWT_SECRET = "cross-origin-test-jwt-secret-long-enough-0123456789"
LINK_TTL_S = 10  # refreshAfter at 80 %: a renewal 8 s into playback
OPEN, CLOSING = "XO-OPEN", "XO-CLOSING"


def recipe() -> str:
    """The README's page, as written there."""
    readme = (REPO_ROOT / "README.md").read_text()
    after = readme[readme.index(RECIPE_MARK) + len(RECIPE_MARK) :]
    found = re.match(r"\s*```html\n(.*?)\n```", after, re.S)
    assert found, "the recipe's html block follows its mark"
    return found.group(1)


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def static_site(root: Path) -> Iterator[str]:
    """``root`` served on a free loopback port: another origin than the gateway's."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    root = tmp_path_factory.mktemp("site")
    (root / "favicon.ico").write_bytes(b"")  # the browser asks; not the recipe's concern
    with static_site(root) as origin:
        yield root, origin


@pytest.fixture(scope="module")
def simulator() -> Iterator[SimulatorHandle]:
    env = {
        "SIM_EVENTS_MIN_INTERVAL_S": "0",
        "SIM_HLS_URL": "/_demo/hls/{event_id}/playlist.m3u8",
        "SIM_PLAYER_URL": "/_demo/player/{event_id}",
    }
    plain = [{"uniqueStreamName": "HLS", "streamType": "HLS"}]
    with run_simulator(env) as running:
        running.load_scenario(
            [open_event(OPEN), open_event(CLOSING)], {OPEN: plain, CLOSING: plain}
        )
        yield running


@contextmanager
def gateway_for(
    simulator: SimulatorHandle, origin: str, logs: Path, **extra: str
) -> Iterator[GatewayProcess]:
    """A production gateway that lets ``origin`` call it and frame its player page."""
    env = {
        "IGM_MODE": "production",
        "IGM_CUSTOMER_UID": simulator.customer_uid,
        "IGM_SERVER_IP": simulator.server_ip,
        "IGM_API_URL": simulator.api_url,
        "IGM_PLAYER_API_URL": simulator.api_url,
        "LOG_FORMAT": "json",
        "AUTH_JWT_SECRET": JWT_SECRET,
        "AUDIT_USER_ID_KEY": "cross-origin-audit-key-long-enough-0123456789",
        "DEMO_PAGE": "true",
        "DEMO_TOKEN_ISSUER": "true",
        "DEMO_VENDOR_DIR": str(VENDOR),
        "REDIRECT_ALLOWED_HOSTS": "www.example.com",
        "DEFAULT_REDIRECT_URL": "https://www.example.com/",
        "EVENTS_MIN_INTERVAL_S": "1",
        "CORS_ALLOW_ORIGINS": origin,
        "FRAME_ANCESTORS": origin,
        **extra,
    }
    with run_gateway(env, logs, name="cross-origin") as gateway:
        yield gateway


class RecipePage:
    """The recipe's page in chromium; ``states`` are what it logged (``player <state>``)."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.states: list[dict[str, Any]] = []
        self.errors: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(str(error)))

    def _console(self, message: ConsoleMessage) -> None:
        text = message.text
        if text.startswith("player "):
            self.states.append(json.loads(text.split(" ", 2)[2]))
        elif message.type == "error":
            self.errors.append(text)

    def wait_state(self, state: str, timeout_s: float = PLAY_TIMEOUT_S) -> dict[str, Any]:
        found = wait_for(
            lambda: [s for s in self.states if s["state"] == state],
            bool,
            timeout_s,
            f"the page reporting {state!r} (got {[s['state'] for s in self.states]})",
            self.page,
        )
        return found[-1]


@contextmanager
def recipe_page(
    root: Path, origin: str, gateway: GatewayProcess, event_id: str
) -> Iterator[RecipePage]:
    (root / "index.html").write_text(recipe().replace(README_GATEWAY, gateway.url))
    with launch_chromium() as browser:
        context = browser.new_context(viewport={"width": 900, "height": 700})
        page = context.new_page()
        watched = RecipePage(page)
        page.goto(f"{origin}/?eventId={event_id}")
        try:
            yield watched
        finally:
            context.close()


def link_calls(simulator: SimulatorHandle, event_id: str) -> int:
    return len([c for c in simulator.calls("stream_link") if event_id in str(c)])


def test_the_recipe_plays_hls_renews_and_tears_down_when_the_event_closes(
    site: tuple[Path, str], simulator: SimulatorHandle, tmp_path: Path
) -> None:
    root, origin = site
    assert origin.rsplit(":", 1)[1] != README_GATEWAY.rsplit(":", 1)[1]
    with (
        gateway_for(simulator, origin, tmp_path, LINK_TTL_S=str(LINK_TTL_S)) as gateway,
        recipe_page(root, origin, gateway, CLOSING) as page,
    ):
        playing = page.wait_state("playing")
        assert playing["kind"] == "hls"
        assert playing["engine"] == "hls.js"
        assert playing["answer"]["url"].startswith(f"{gateway.url}/_demo/hls/")  # absolute
        assert_video_plays(page.page, page.page, "#player video")
        minted = link_calls(simulator, CLOSING)
        # the link expires: the kit asks again after refreshAfter, and playback goes on
        wait_for(
            lambda: link_calls(simulator, CLOSING),
            lambda calls: calls > minted,
            LINK_TTL_S * 3,
            "a renewal upstream",
            page.page,
        )
        assert_video_plays(page.page, page.page, "#player video")
        page.page.screenshot(path=str(tmp_path / "cross-origin-hls.png"))

        simulator.set_status(CLOSING, "C")
        ended = page.wait_state("ended", timeout_s=30)
        assert ended["reason"] == "closed"
        assert page.page.locator("#player video").count() == 0
        assert page.errors == []


def test_the_recipe_plays_the_iframe_player(
    site: tuple[Path, str], simulator: SimulatorHandle, tmp_path: Path
) -> None:
    root, origin = site
    with (
        gateway_for(simulator, origin, tmp_path, PLAY_LADDER_WEB="HLS:player") as gateway,
        recipe_page(root, origin, gateway, OPEN) as page,
    ):
        playing = page.wait_state("playing")
        assert playing["kind"] == "player"
        assert playing["engine"] == "iframe"
        assert playing["answer"]["url"].startswith(f"{gateway.url}/_demo/player/{OPEN}")
        frame_element = page.page.locator("#player iframe")
        handle = frame_element.element_handle()
        frame = handle.content_frame() if handle else None
        assert frame is not None
        wait_for(
            lambda: frame.evaluate("window.demoPlayer !== undefined"),
            bool,
            PLAY_TIMEOUT_S,
            "the gateway's player page in the frame",
            page.page,
        )
        assert_video_plays(page.page, frame)  # framed from another origin: FRAME_ANCESTORS
        page.page.screenshot(path=str(tmp_path / "cross-origin-player.png"))
        assert page.errors == []
