"""A real browser for page tests: Debian's ``/usr/bin/chromium``, headless, driven by
Playwright's sync API (no browser download: ``executable_path``).

``launch_chromium()`` starts the browser; ``open_page(browser, origin)`` gives a page
whose ``PageReport`` collects console errors, uncaught page errors, Content-Security-
Policy violations (the page's ``securitypolicyviolation`` events, seen by a script
Playwright adds before any of the page's own) and every request to another origin,
which is aborted: a page that needs the internet fails here as it would in a closed
network.

``browser_page()`` is the lighter form the demo page tests use: one page in a fresh
browser, with the console errors and uncaught page errors seen so far
(``BrowserPage``); ``chromium_missing()`` says why browser tests cannot run, or None.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Page,
    Response,
    Route,
    sync_playwright,
)

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # the tests run as root in CI
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",  # muted autoplay needs no click in a test
]
# Runs before the page's own scripts; Playwright's init scripts are not subject to the
# page's CSP.
_WATCH_CSP = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(
    `${e.violatedDirective} blocked ${e.blockedURI || "inline"} (${e.sourceFile}:${e.lineNumber})`
  );
});
"""


def chromium_binary() -> str | None:
    return CHROMIUM if os.access(CHROMIUM, os.X_OK) else shutil.which("chromium")


def chromium_missing() -> str | None:
    if chromium_binary() is None:
        return f"no chromium at {CHROMIUM} (apt-get install -y chromium)"
    return None


@dataclass
class PageReport:
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    csp_violations: list[str] = field(default_factory=list)
    outside_requests: list[str] = field(default_factory=list)
    failed_responses: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        return [
            *(f"console: {text}" for text in self.console_errors),
            *(f"page error: {text}" for text in self.page_errors),
            *(f"CSP: {text}" for text in self.csp_violations),
            *(f"outside request: {url}" for url in self.outside_requests),
            *(f"answer: {text}" for text in self.failed_responses),
        ]


@contextmanager
def launch_chromium() -> Iterator[Browser]:
    binary = chromium_binary()
    if binary is None:
        raise RuntimeError("chromium is not installed (apt-get install -y chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=binary, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def open_page(browser: Browser, origin: str) -> Iterator[tuple[Page, PageReport]]:
    """A fresh context and page; requests outside ``origin`` are aborted and reported.
    The report's CSP violations are complete once the block exits."""
    report = PageReport()
    allowed = urlsplit(origin)
    context = browser.new_context(viewport={"width": 1280, "height": 900})

    def only_origin(route: Route) -> None:
        url = urlsplit(route.request.url)
        if url.scheme in ("data", "blob") or (url.scheme, url.netloc) == (
            allowed.scheme,
            allowed.netloc,
        ):
            route.continue_()
        else:
            report.outside_requests.append(route.request.url)
            route.abort()

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            report.console_errors.append(message.text)

    def on_page_error(error: Any) -> None:
        report.page_errors.append(str(error))

    def on_response(response: Response) -> None:
        if response.status >= 400:
            report.failed_responses.append(f"{response.status} {response.url}")

    context.route("**/*", only_origin)
    context.add_init_script(_WATCH_CSP)
    page = context.new_page()
    page.on("console", on_console)
    page.on("pageerror", on_page_error)
    page.on("response", on_response)
    try:
        yield page, report
        if not page.is_closed():
            report.csp_violations += page.evaluate("window.__cspViolations || []")
    finally:
        context.close()


@dataclass
class BrowserPage:
    page: Page
    console_errors: list[str] = field(default_factory=list)


@contextmanager
def browser_page(timeout_ms: float = 15_000) -> Iterator[BrowserPage]:
    """One page in a fresh headless chromium; console and page errors collected."""
    with launch_chromium() as browser:
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        page = context.new_page()
        page.set_default_timeout(timeout_ms)
        session = BrowserPage(page)

        def on_console(message: ConsoleMessage) -> None:
            if message.type == "error":
                where = message.location.get("url", "")
                session.console_errors.append(f"{message.text} [{where}]")

        page.on("console", on_console)
        page.on("pageerror", lambda error: session.console_errors.append(f"uncaught: {error}"))
        try:
            yield session
        finally:
            context.close()
