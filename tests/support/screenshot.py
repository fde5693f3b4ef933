"""``scripts/screenshot``: the reference page playing, as a PNG for the README.

Starts a demo-mode gateway (``scripts/demo``'s settings), opens ``/`` in chromium,
plays the racing channel's HLS stream (with the Play button when the gateway has
``/play``; else the page is handed a ``POST /links`` answer) and takes the picture
once the video has played a few seconds.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import httpx

from tests.browser.pages import assert_video_plays, has_route
from tests.support.browser import browser_page
from tests.support.gateway import REPO_ROOT, run_gateway

DEFAULT_OUTPUT = REPO_ROOT / "docs" / "img" / "demo-page.png"
MINT = """async (eventId) => {
  const answer = await fetch(`/v1/events/${eventId}/links`, {
    method: "POST",
    headers: {Authorization: `Bearer ${window.demoState.token}`,
              "Content-Type": "application/json"},
    body: JSON.stringify({streamName: "HLS", kind: "raw"}),
  });
  await window.demoPage.playAnswer(eventId, await answer.json());
}"""


def main(argv: list[str]) -> None:
    output = Path(argv[0]) if argv else DEFAULT_OUTPUT
    env = {
        "IGM_MODE": "simulator",
        "LOG_FORMAT": "json",
        "DEMO_VENDOR_DIR": str(REPO_ROOT / "node_modules"),
    }
    with tempfile.TemporaryDirectory() as logs, run_gateway(env, Path(logs)) as gateway:
        events: list[dict[str, str]] = []
        while not events:
            answer = httpx.get(f"{gateway.url}/v1/events/open", timeout=5)
            events = answer.json()["events"] if answer.status_code == 200 else []
        channel = next(e["eventId"] for e in events if e["sportCode"] == "HR")
        with browser_page() as browser:
            page = browser.page
            page.goto(f"{gateway.url}/")
            item = page.locator(f'#events li[data-event-id="{channel}"]')
            item.wait_for()
            page.wait_for_function("window.demoState.token !== null")
            if has_route(gateway.url, "/v1/events/{eventId}/play"):
                item.get_by_role("button", name="Play").click()
            else:
                page.evaluate(MINT, channel)
            assert_video_plays(page, page, "#player-area video")
            page.wait_for_timeout(1500)
            output.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(output))
    print(output)


if __name__ == "__main__":
    main(sys.argv[1:])
