"""A real browser for the dashboard's tests: Playwright driving Debian's /usr/bin/chromium.

The fixtures are registered once, in tests/web/conftest.py: import them nowhere else.

No browser is ever downloaded (`playwright install` is never run): `.ci/run` installs the
`chromium` package. `opened(page, url)` opens a page and checks what every page must satisfy:
it answered 200, asked for nothing outside the Keel server it came from, logged no console error,
and axe-core (shipped inside `axe-playwright-python`) finds no serious or critical violation.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, ConsoleMessage, Page, Request, sync_playwright

CHROMIUM = Path(os.environ.get("KEEL_TEST_CHROMIUM", "/usr/bin/chromium"))
# Flags from the machine notes: without the background-networking ones, Chromium tries to reach
# Google's hosts at every start, which a closed network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SERIOUS = ("serious", "critical")


@pytest.fixture(scope="session")
def chromium() -> Iterator[Browser]:
    """One headless Chromium for the whole test process."""
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"The browser tests need {CHROMIUM}: apt-get install chromium")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Watched:
    """A page with what it did recorded: console errors and every URL it requested."""

    page: Page
    console_errors: list[str] = field(default_factory=list)
    requested: list[str] = field(default_factory=list)


def watch(page: Page) -> Watched:
    watched = Watched(page)

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            watched.console_errors.append(message.text)

    def on_request(request: Request) -> None:
        watched.requested.append(request.url)

    page.on("console", on_console)
    page.on("pageerror", lambda error: watched.console_errors.append(str(error)))
    page.on("request", on_request)
    return watched


@pytest.fixture
def browser_page(chromium: Browser) -> Iterator[Watched]:
    """A fresh browser context (no cookies) and page, watched."""
    context = chromium.new_context(viewport={"width": 1400, "height": 900})
    try:
        yield watch(context.new_page())
    finally:
        context.close()


def axe_serious(page: Page) -> list[str]:
    """The serious and critical axe-core violations on the page, one line each."""
    results = Axe().run(page)
    found = []
    for violation in results.response.get("violations", []):
        if violation.get("impact") in SERIOUS:
            targets = [node.get("target") for node in violation.get("nodes", [])][:3]
            found.append(f"{violation['id']} ({violation['impact']}): {targets}")
    return found


def opened(watched: Watched, url: str, *, check_axe: bool = True) -> Page:
    """Open ``url`` and assert the rules every dashboard page follows; return the page."""
    page = watched.page
    watched.console_errors.clear()
    watched.requested.clear()
    response = page.goto(url)
    assert response is not None and response.status == 200, f"{url}: {response and response.status}"
    page.wait_for_load_state("load")
    origin = urlsplit(url).netloc
    outside = [
        u
        for u in watched.requested
        if urlsplit(u).scheme in ("http", "https", "ws", "wss") and urlsplit(u).netloc != origin
    ]
    assert not outside, f"{url} asked for URLs outside Keel: {outside}"
    assert not watched.console_errors, f"{url} logged console errors: {watched.console_errors}"
    if check_axe:
        serious = axe_serious(page)
        assert not serious, f"{url}: axe-core found serious or critical violations: {serious}"
    return page


def sign_in(watched: Watched, base_url: str, token: str) -> None:
    """Sign in through the login form, as a person does."""
    page = watched.page
    page.goto(f"{base_url}/login")
    page.fill("input[name=token]", token)
    page.click("button[type=submit]")
    page.wait_for_load_state("load")
