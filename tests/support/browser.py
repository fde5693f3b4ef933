"""Debian's chromium driven by Playwright, for the browser tests (``-m browser``).

``browser_page()`` starts ``/usr/bin/chromium`` headless (never a browser Playwright
downloads: ``playwright install`` is not used) and yields a ``BrowserPage``: the
Playwright ``Page`` and the console errors and uncaught page errors seen so far.
``chromium_missing()`` says why the browser tests cannot run here, or None.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from playwright.sync_api import ConsoleMessage, Error, Page, sync_playwright

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # muted autoplay needs no click in a test
    "--autoplay-policy=no-user-gesture-required",
)


@dataclass
class BrowserPage:
    page: Page
    console_errors: list[str] = field(default_factory=list)


def chromium_missing() -> str | None:
    if shutil.which(CHROMIUM) is None:
        return f"no chromium at {CHROMIUM} (apt-get install chromium)"
    return None


@contextmanager
def browser_page(timeout_ms: float = 15_000) -> Iterator[BrowserPage]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=list(CHROMIUM_ARGS)
        )
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            page = context.new_page()
            page.set_default_timeout(timeout_ms)
            session = BrowserPage(page)

            def on_console(message: ConsoleMessage) -> None:
                if message.type == "error":
                    where = message.location.get("url", "")
                    session.console_errors.append(f"{message.text} [{where}]")

            def on_page_error(error: Error) -> None:
                session.console_errors.append(f"uncaught: {error.message}")

            page.on("console", on_console)
            page.on("pageerror", on_page_error)
            yield session
            context.close()
        finally:
            browser.close()
