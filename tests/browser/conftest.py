"""Headless Chromium for the browser tests: Debian's /usr/bin/chromium driven
by Playwright (never Playwright's own browser download)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("TEALEAVES_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
]
INSTALL_HINT = (
    "The browser tests need Chromium and Playwright's Python package: "
    "`apt-get install chromium` (or set TEALEAVES_CHROMIUM to a Chromium binary) and "
    "`pip install playwright` (do not run `playwright install`; the tests use the system "
    "Chromium). Deselect them with -m 'not slow'."
)


@pytest.fixture(scope="session")
def browser():
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        pytest.fail(f"Chromium not found at {CHROMIUM}. {INSTALL_HINT}", pytrace=False)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(f"playwright is not installed. {INSTALL_HINT}", pytrace=False)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class PageLog:
    """Requests that left the page, and errors it logged."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.errors: list[str] = []


@pytest.fixture
def open_page(browser, tmp_path):
    """open_page(html) -> (page, log): the page opened from a file, offline."""
    contexts = []

    def open_(html: str, name: str = "page.html"):
        path = tmp_path / name
        path.write_text(html, encoding="utf-8")
        context = browser.new_context(viewport={"width": 1200, "height": 900}, offline=True)
        contexts.append(context)
        page = context.new_page()
        log = PageLog()
        page.on(
            "request",
            lambda r: (
                None
                if r.url.startswith(("file:", "data:", "blob:"))
                else log.requests.append(r.url)
            ),
        )
        page.on("console", lambda m: log.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: log.errors.append(str(e)))
        page.goto(path.as_uri())
        return page, log

    yield open_
    for context in contexts:
        context.close()


def wait_until(page, condition, what: str, timeout_ms: int = 5_000):
    """Poll `condition()` (Python, reading the page) until it is truthy and
    return its value; fail naming `what` after `timeout_ms`. For conditions
    Playwright cannot wait on by itself (a canvas repaint, a screenshot)."""
    waited = 0
    while True:
        value = condition()
        if value:
            return value
        if waited >= timeout_ms:
            pytest.fail(f"waited {timeout_ms} ms for {what}", pytrace=False)
        page.wait_for_timeout(25)
        waited += 25
