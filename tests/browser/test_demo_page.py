"""The demo page and player in a real chromium, against real gateway processes.

Today's tests play the three link kinds the page handles (minted with
``POST /v1/events/{eventId}/links`` and handed to the page), the demo player page on
its own and in a frame of the gateway's page, and the event list. The tests of the
Play button, the ``ull`` choice, a closing event and a refusal need
``POST /v1/events/{eventId}/play`` and ``GET /v1/events/live``: they run when the
gateway's OpenAPI document lists both, and skip (saying so) until then.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Route

from tests.browser.pages import (
    PLAY_TIMEOUT_S,
    VIDEO_PROGRESS,
    assert_video_plays,
    has_route,
    open_event,
    wait_for,
)
from tests.support.browser import BrowserPage, browser_page
from tests.support.gateway import REPO_ROOT, GatewayProcess, run_gateway
from tests.support.jwt_keys import sign_hs256
from tests.support.simulator import SimulatorHandle, run_simulator

VENDOR = REPO_ROOT / "node_modules"
needs_vendor = pytest.mark.skipif(
    not (VENDOR / "hls.js").is_dir() or not (VENDOR / "@theolive" / "player").is_dir(),
    reason="the player libraries are not installed (npm ci)",
)
PLAY_ROUTE = "/v1/events/{eventId}/play"
LIVE_ROUTE = "/v1/events/live"
JWT_SECRET = "browser-test-jwt-secret-long-enough-0123456789"
LIST_TIMEOUT_S = 5.0
TEARDOWN_TIMEOUT_S = 30.0
LOOP_S = 8.0  # the demo stream's loop: 4 segments of 2 s

MINT = """async ([eventId, body]) => {
  const answer = await fetch(`/v1/events/${eventId}/links`, {
    method: "POST",
    headers: {Authorization: `Bearer ${window.demoState.token}`,
              "Content-Type": "application/json"},
    body: JSON.stringify(body),
  });
  return {status: answer.status, body: await answer.json()};
}"""


def wait_warm(gateway: GatewayProcess) -> list[dict[str, Any]]:
    for _ in range(300):
        answer = httpx.get(f"{gateway.url}/v1/events/open", timeout=5)
        if answer.status_code == 200 and answer.json()["events"]:
            events: list[dict[str, Any]] = answer.json()["events"]
            return events
        httpx.get(f"{gateway.url}/healthz", timeout=5)
    raise AssertionError("the catalogue never warmed")


@pytest.fixture(scope="module")
def demo_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """``scripts/demo``'s gateway: demo mode, the simulator in-process."""
    env = {"IGM_MODE": "simulator", "LOG_FORMAT": "json", "DEMO_VENDOR_DIR": str(VENDOR)}
    with run_gateway(env, tmp_path_factory.mktemp("demo-logs"), name="demo") as gateway:
        wait_warm(gateway)
        yield gateway


@pytest.fixture
def browser() -> Iterator[BrowserPage]:
    with browser_page() as session:
        yield session


def channelopen_event(gateway: GatewayProcess) -> str:
    """The simulator's racing channel: open around the clock, no geo lists anywhere."""
    events = wait_warm(gateway)
    return str(next(e["eventId"] for e in events if e["sportCode"] == "HR"))


def open_page(browser: BrowserPage, url: str) -> None:
    browser.page.goto(url)
    wait_for(
        lambda: browser.page.evaluate("window.demoState && window.demoState.token !== null"),
        bool,
        PLAY_TIMEOUT_S,
        "demo token",
        browser.page,
    )


def mint(browser: BrowserPage, event_id: str, **body: str) -> dict[str, Any]:
    answer: dict[str, Any] = browser.page.evaluate(MINT, [event_id, body])
    assert answer["status"] == 200, answer
    minted: dict[str, Any] = answer["body"]
    return minted


# --- today: the stream, the player page, the three wirings ------------------------------


@needs_vendor
def test_player_page_plays_the_demo_stream(
    demo_gateway: GatewayProcess, browser: BrowserPage
) -> None:
    page = browser.page
    page.goto(f"{demo_gateway.url}/_demo/player/ANY-EVENT?tid=1&tk=x")
    assert page.evaluate("MediaSource.isTypeSupported('video/mp4; codecs=\"avc1.42C01E\"')")
    assert_video_plays(page, page)
    assert page.evaluate("window.demoPlayer") == {
        "eventId": "ANY-EVENT",
        "url": "/_demo/hls/ANY-EVENT/playlist.m3u8",
        "engine": "hls.js",
        "error": None,
    }
    assert browser.console_errors == []


def test_player_page_without_hls_js_falls_back(tmp_path: Path, browser: BrowserPage) -> None:
    """No npm ci: the page plays HLS natively where the browser can, else says why."""
    env = {"IGM_MODE": "simulator", "LOG_FORMAT": "json", "DEMO_VENDOR_DIR": str(tmp_path)}
    with run_gateway(env, tmp_path / "logs", name="no-vendor") as gateway:
        page = browser.page
        page.goto(f"{gateway.url}/_demo/player/E1")
        state = wait_for(
            lambda: page.evaluate("window.demoPlayer"), bool, PLAY_TIMEOUT_S, "player", page
        )
        native = page.evaluate(
            "document.createElement('video').canPlayType('application/vnd.apple.mpegurl')"
        )
        if native:
            # the browser's own HLS (chromium 156 has it) plays on across the loop
            # restarts of the demo stream (every 8 s; app/demo/mpegts.py)
            assert state["engine"] == "native"
            first = wait_for(
                lambda: page.evaluate(VIDEO_PROGRESS, "video"),
                lambda p: p is not None and p["frames"] > 0,
                PLAY_TIMEOUT_S,
                "native playback",
                page,
            )
            wait_for(
                lambda: page.evaluate(VIDEO_PROGRESS, "video"),
                lambda p: p is not None and p["time"] > first["time"] + LOOP_S + 1,
                PLAY_TIMEOUT_S,
                "native playback past a loop restart",
                page,
            )
            assert page.evaluate("window.demoPlayer.error") is None
        else:
            assert state["engine"] is None
            assert state["error"] == "no_hls_playback"
            assert "hls.js" in page.locator("#status").inner_text()
    assert not any(e.startswith("uncaught") for e in browser.console_errors)


def unexpected_errors(browser: BrowserPage, gateway: GatewayProcess) -> list[str]:
    """Console errors, but for the 404 of /v1/events/live while the gateway has none
    (the page then lists the events by polling)."""
    live_absent = not has_route(gateway.url, LIVE_ROUTE)
    return [
        error
        for error in browser.console_errors
        if not (live_absent and "/v1/events/live" in error and "404" in error)
    ]


def test_reference_page_lists_the_open_events(
    demo_gateway: GatewayProcess, browser: BrowserPage
) -> None:
    expected = {e["eventId"] for e in wait_warm(demo_gateway)}
    page = browser.page
    page.goto(f"{demo_gateway.url}/")
    items = page.locator("#events li")
    items.first.wait_for(timeout=LIST_TIMEOUT_S * 1000)
    listed = set(items.evaluate_all("(nodes) => nodes.map((n) => n.dataset.eventId)"))
    assert listed == expected
    assert set(page.locator("#events li button").all_inner_texts()) == {"Play"}
    feed = page.evaluate("window.demoState.feed")
    live = has_route(demo_gateway.url, LIVE_ROUTE)
    assert feed == ("live" if live else "polling")


@needs_vendor
def test_hls_link_plays_in_the_video(demo_gateway: GatewayProcess, browser: BrowserPage) -> None:
    answer = play_minted(browser, demo_gateway, "HLS", "raw")
    assert answer["kind"] == "hls"
    assert_video_plays(browser.page, browser.page, "#player-area video")
    state = browser.page.evaluate("window.demoState")
    assert state["playerError"] is None
    assert state["playing"]["kind"] == "hls"
    assert unexpected_errors(browser, demo_gateway) == []


def play_minted(
    browser: BrowserPage, gateway: GatewayProcess, stream_name: str, kind: str
) -> dict[str, Any]:
    """The page opened; a link minted for the all-day channel, handed to the page."""
    event_id = channelopen_event(gateway)
    open_page(browser, f"{gateway.url}/")
    answer = mint(browser, event_id, streamName=stream_name, kind=kind)
    browser.page.evaluate(
        "([id, answer]) => window.demoPage.playAnswer(id, answer)", [event_id, answer]
    )
    return answer


@needs_vendor
def test_player_link_plays_in_the_iframe(
    demo_gateway: GatewayProcess, browser: BrowserPage
) -> None:
    answer = play_minted(browser, demo_gateway, "HLS", "player")
    assert answer["kind"] == "player"
    frame_element = browser.page.locator("#player-area iframe")
    frame_element.wait_for(state="visible")
    handle = frame_element.element_handle()
    frame = handle.content_frame() if handle else None
    assert frame is not None
    wait_for(
        lambda: frame.evaluate("window.demoPlayer !== undefined"),
        bool,
        PLAY_TIMEOUT_S,
        "player page in the frame",
        browser.page,
    )
    assert_video_plays(browser.page, frame)
    assert frame.evaluate("window.demoPlayer.error") is None
    assert unexpected_errors(browser, demo_gateway) == []


@needs_vendor
def test_theolive_link_builds_the_theolive_player(
    demo_gateway: GatewayProcess, browser: BrowserPage
) -> None:
    answer = play_minted(browser, demo_gateway, "ULL", "raw")
    assert answer["kind"] == "theolive"
    theolive = wait_for(
        lambda: browser.page.evaluate("window.demoState.theolive"),
        lambda t: bool(t and t.get("created")),
        PLAY_TIMEOUT_S,
        "THEOlive player",
        browser.page,
    )
    # built with the minted channel and token (no internet here: no playback expected)
    assert theolive == {"channelId": answer["channelId"], "token": answer["token"], "created": True}
    assert browser.page.evaluate("typeof window.THEOLive.Player") == "function"
    # No internet here: the player cannot reach its licence service, and the page says
    # so in plain words (once, without the player's own prefix), or it is still trying.
    error = browser.page.evaluate("window.demoState.playerError")
    if error is not None:
        assert error["code"] == "theolive_licence", error
        status = browser.page.locator("#status").inner_text()
        assert "licence service" in status
        assert "theolive:" not in status.lower()


# --- with /play and /live: the Play button end to end -----------------------------------


OPEN, CLOSING, GEO = "DEMO-OPEN", "DEMO-CLOSING", "DEMO-GEO"


@pytest.fixture(scope="module")
def play_rig(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[SimulatorHandle, GatewayProcess]]:
    """The simulator as its own process (links to the gateway's demo stream) and a
    production gateway serving the page at /demo with the demo token issuer."""
    simulator_env = {
        "SIM_EVENTS_MIN_INTERVAL_S": "0",
        "SIM_HLS_URL": "/_demo/hls/{event_id}/playlist.m3u8",
        "SIM_PLAYER_URL": "/_demo/player/{event_id}",
    }
    plain = [
        {"uniqueStreamName": "HLS", "streamType": "HLS"},
        {"uniqueStreamName": "ULL", "streamType": "ULL"},
    ]
    with run_simulator(simulator_env) as simulator:
        simulator.load_scenario(
            [open_event(OPEN), open_event(CLOSING), open_event(GEO)],
            {
                OPEN: plain,
                CLOSING: plain,
                # a stream-level allow list: a loopback viewer (no country) is refused
                GEO: [{"uniqueStreamName": "HLS", "streamType": "HLS", "geoCountryAllow": "US"}],
            },
        )
        env = {
            **page_env(simulator),
            "DEMO_TOKEN_ISSUER": "true",
            "DEFAULT_REDIRECT_URL": "https://www.example.com/",
            "EVENTS_MIN_INTERVAL_S": "1",
            "DEMO_VENDOR_DIR": str(VENDOR),
            # one stream per viewer: a play elsewhere ends the page's session
            "MAX_STREAMS_PER_USER": "1",
            "SESSION_LIMIT_POLICY": "evict_oldest",
            "SESSION_TTL_S": "20",
        }
        logs = tmp_path_factory.mktemp("play-logs")
        with run_gateway(env, logs, name="play") as gateway:
            missing = [r for r in (PLAY_ROUTE, LIVE_ROUTE) if not has_route(gateway.url, r)]
            if missing:
                pytest.skip(f"the gateway does not serve {' and '.join(missing)} yet")
            wait_warm(gateway)
            yield simulator, gateway


def page_env(simulator: SimulatorHandle) -> dict[str, str]:
    """A production gateway on this simulator, serving the page at /demo (DEMO_PAGE)."""
    return {
        "IGM_MODE": "production",
        "IGM_CUSTOMER_UID": simulator.customer_uid,
        "IGM_SERVER_IP": simulator.server_ip,
        "IGM_API_URL": simulator.api_url,
        "IGM_PLAYER_API_URL": simulator.api_url,
        "LOG_FORMAT": "json",
        "AUTH_JWT_SECRET": JWT_SECRET,
        "DEMO_PAGE": "true",
    }


def click_play(browser: BrowserPage, gateway: GatewayProcess, event_id: str) -> None:
    browser.page.goto(f"{gateway.url}/demo")
    item = browser.page.locator(f'#events li[data-event-id="{event_id}"]')
    item.wait_for(timeout=LIST_TIMEOUT_S * 1000)
    assert browser.page.evaluate("window.demoState.feed") == "live"
    item.get_by_role("button", name="Play").click()


@needs_vendor
def test_play_hls_then_the_event_closes(
    play_rig: tuple[SimulatorHandle, GatewayProcess], browser: BrowserPage
) -> None:
    simulator, gateway = play_rig
    click_play(browser, gateway, CLOSING)
    playing = wait_for(
        lambda: browser.page.evaluate("window.demoState.playing"),
        bool,
        PLAY_TIMEOUT_S,
        "a /play answer",
        browser.page,
    )
    assert playing["kind"] == "hls"
    assert playing["answer"]["refreshAfter"]
    assert_video_plays(browser.page, browser.page, "#player-area video")
    assert browser.page.evaluate("window.demoState.playerError") is None
    simulator.set_status(CLOSING, "C")
    stopped = wait_for(
        lambda: browser.page.evaluate("window.demoState.stopped"),
        bool,
        TEARDOWN_TIMEOUT_S,
        "teardown after the event closed",
        browser.page,
    )
    assert stopped["eventId"] == CLOSING
    assert "closed" in browser.page.locator("#status").inner_text()
    assert browser.page.locator("#player-area video").count() == 0
    assert browser.page.evaluate("window.demoState.hls") is None


@needs_vendor
def test_a_play_on_another_device_stops_the_page(
    play_rig: tuple[SimulatorHandle, GatewayProcess], browser: BrowserPage
) -> None:
    """The page's link opened a viewing session; the same viewer playing elsewhere
    evicts it (MAX_STREAMS_PER_USER=1), and the live stream's ``session`` message
    stops the page's player, saying why."""
    _, gateway = play_rig
    click_play(browser, gateway, OPEN)
    session = wait_for(
        lambda: browser.page.evaluate("window.demoState.session"),
        bool,
        PLAY_TIMEOUT_S,
        "a viewing session",
        browser.page,
    )
    token = browser.page.evaluate("window.demoState.token")
    elsewhere = httpx.post(
        f"{gateway.url}/v1/events/{OPEN}/play",
        json={"device": "tv", "ull": True},  # another stream: not the same answer
        headers={"Authorization": f"Bearer {token}"},
    )
    assert elsewhere.status_code == 200, elsewhere.text
    assert elsewhere.json()["sessionId"] != session["id"]
    stopped = wait_for(
        lambda: browser.page.evaluate("window.demoState.stopped"),
        bool,
        TEARDOWN_TIMEOUT_S,
        "teardown after the session was taken over",
        browser.page,
    )
    assert "another device" in stopped["reason"]
    assert "evicted" in browser.page.locator("#status").inner_text()
    assert browser.page.locator("#player-area video").count() == 0
    assert browser.page.evaluate("window.demoState.session") is None


@needs_vendor
def test_play_with_ull_builds_theolive(
    play_rig: tuple[SimulatorHandle, GatewayProcess], browser: BrowserPage
) -> None:
    _, gateway = play_rig
    browser.page.goto(f"{gateway.url}/demo")
    browser.page.locator("#ull").check()
    item = browser.page.locator(f'#events li[data-event-id="{OPEN}"]')
    item.wait_for(timeout=LIST_TIMEOUT_S * 1000)
    item.get_by_role("button", name="Play").click()
    theolive = wait_for(
        lambda: browser.page.evaluate("window.demoState.theolive"),
        lambda t: bool(t and t.get("created")),
        PLAY_TIMEOUT_S,
        "THEOlive player",
        browser.page,
    )
    assert theolive["channelId"]
    assert theolive["token"]
    # offline, the THEOlive player then fails its licence check: the page says so plainly
    error = wait_for(
        lambda: browser.page.evaluate("window.demoState.playerError"),
        bool,
        PLAY_TIMEOUT_S,
        "the THEOlive player's licence failure",
        browser.page,
    )
    assert error["code"] == "theolive_licence", error
    status = browser.page.locator("#status").inner_text()
    assert "could not reach its licence service" in status
    assert "theolive:" not in status.lower()


def test_geo_blocked_shows_the_code_without_an_upstream_call(
    play_rig: tuple[SimulatorHandle, GatewayProcess], browser: BrowserPage
) -> None:
    simulator, gateway = play_rig
    before = len(simulator.calls("stream_link"))
    click_play(browser, gateway, GEO)
    problem = wait_for(
        lambda: browser.page.evaluate("window.demoState.lastProblem"),
        bool,
        PLAY_TIMEOUT_S,
        "the refusal",
        browser.page,
    )
    assert problem["code"] == "geo_blocked"
    assert "geo_blocked" in browser.page.locator("#status").inner_text()
    assert browser.page.evaluate("window.demoState.playing") is None
    assert [c for c in simulator.calls("stream_link")[before:] if "DEMO-GEO" in str(c)] == []


@needs_vendor
def test_a_refused_segment_renews_the_link(
    play_rig: tuple[SimulatorHandle, GatewayProcess], browser: BrowserPage
) -> None:
    """A 403 from the stream (an expired link, at a real CDN) makes the page ask /play
    for a fresh link, and playback goes on."""
    _, gateway = play_rig
    refused: list[str] = []

    def refuse_once(route: Route) -> None:
        if not refused:
            refused.append(route.request.url)
            route.fulfill(status=403, body="expired")
        else:
            route.continue_()

    browser.page.route("**/_demo/hls/**/*.ts", refuse_once)
    click_play(browser, gateway, OPEN)
    renewals = wait_for(
        lambda: browser.page.evaluate("window.demoState.renewals"),
        lambda count: count >= 1,
        PLAY_TIMEOUT_S,
        "a renewal after the 403",
        browser.page,
    )
    assert renewals >= 1
    assert refused
    assert_video_plays(browser.page, browser.page, "#player-area video")


def test_production_page_asks_for_a_jwt_to_paste(tmp_path: Path, browser: BrowserPage) -> None:
    """DEMO_PAGE without the token issuer: /demo asks for the viewer's JWT, then uses it."""
    with run_simulator({"SIM_EVENTS_MIN_INTERVAL_S": "0"}) as simulator:
        env = {**page_env(simulator), "DEMO_VENDOR_DIR": str(VENDOR)}
        with run_gateway(env, tmp_path / "logs", name="paste") as gateway:
            expected = {e["eventId"] for e in wait_warm(gateway)}
            assert httpx.get(f"{gateway.url}/_demo/token").status_code == 404
            page = browser.page
            page.goto(f"{gateway.url}/demo")
            page.locator("#auth").wait_for(state="visible")
            assert page.evaluate("window.demoState.token") is None
            token = sign_hs256({"sub": "pasted-viewer", "exp": int(time.time()) + 600}, JWT_SECRET)
            page.locator("#jwt").fill(token)
            page.get_by_role("button", name="Use token").click()
            page.locator("#events li").first.wait_for(timeout=LIST_TIMEOUT_S * 1000)
            listed = page.locator("#events li").evaluate_all(
                "(nodes) => nodes.map((n) => n.dataset.eventId)"
            )
            assert set(listed) == expected
            assert page.evaluate("[window.demoState.token, window.demoState.tokenSource]") == [
                token,
                "pasted",
            ]
            assert page.locator("#auth").is_hidden()
