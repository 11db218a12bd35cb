"""Headless Debian Chromium through Playwright, for the browser tests, and the page steps several of them share.

    with chromium() as browser:          # skips the test when Playwright is not installed
        page = browser.new_page()
        answer = ask_on_page(page, "faq", "What is QLoRA?")

Tests that share one browser per module take the ``browser`` fixture of ``tests/conftest.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]


@contextmanager
def chromium() -> Iterator:
    """A launched Chromium, closed afterwards."""
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def ask_on_page(page, prefix: str, question: str) -> str:
    """Type ``question`` in the ``#<prefix>-question`` box, press ``#<prefix>-ask`` and return the answer once
    it has more than a few characters."""
    page.locator(f"#{prefix}-question textarea").fill(question)
    page.locator(f"#{prefix}-ask").click()
    page.wait_for_function(
        f"() => document.querySelector('#{prefix}-answer').innerText.trim().length > 20", timeout=60_000)
    return page.locator(f"#{prefix}-answer").inner_text()


def two_sessions(browser, url: str, ready: str, tab: str | None = None) -> tuple:
    """Two pages in separate browser contexts (no shared cookies or storage), each on ``url`` (on ``tab``, if
    given) and showing the ``ready`` selector."""
    pages = [browser.new_context().new_page() for _ in range(2)]
    for page in pages:
        page.goto(url)
        if tab:
            page.get_by_role("tab", name=tab).click()
        page.locator(ready).wait_for()
    return tuple(pages)


def upload_on_page(page, prefix: str, path, status: str) -> None:
    """Put ``path`` in the ``#<prefix>-upload`` box and wait until ``#<prefix>-status`` says ``status``."""
    page.locator(f"#{prefix}-upload input[type=file]").set_input_files(str(path))
    page.locator(f"#{prefix}-status", has_text=status).wait_for(timeout=60_000)
