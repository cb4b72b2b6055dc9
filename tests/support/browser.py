"""Debian's Chromium driven by Playwright (its own browser download fails here), registered for the
whole suite by tests/conftest.py: `browser_page` (a desktop page, 1280x900 unless a test resizes it:
`page.set_viewport_size(DESKTOP)`) and `phone_page` (390x844, touch, a phone's user agent), and helpers
that say what a user sees: `screenshot` (to test-artifacts/), `log_in`, `in_viewport`,
`horizontal_overflow`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
DESKTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}
PHONE_USER_AGENT = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/156.0.0.0 Mobile Safari/537.36"
)


def screenshot(page, name: str) -> Path:
    """Write the whole page to test-artifacts/NAME.png (for a person to look at) and return the path."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def log_in(page, base_url: str, username: str, password: str) -> None:
    """Log in through the login form, as a person would, and wait for the page it leads to."""
    page.goto(f"{base_url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    with page.expect_navigation():
        page.click("form [type=submit]")


def in_viewport(page, selector: str) -> bool:
    """Whether the first element matching `selector` is visible and wholly inside the viewport as the
    page stands (no scrolling done for it)."""
    box = page.locator(selector).first.bounding_box()
    size = page.viewport_size
    if box is None or size is None:
        return False
    return (
        box["x"] >= 0
        and box["y"] >= 0
        and box["x"] + box["width"] <= size["width"]
        and box["y"] + box["height"] <= size["height"]
    )


def horizontal_overflow(page) -> int:
    """How many CSS pixels the page is wider than the viewport (0 = no horizontal scroll)."""
    return int(
        page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    )


def _launch(playwright):
    return playwright.chromium.launch(
        executable_path=CHROMIUM,
        args=[
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    )


def _need_chromium() -> None:
    if not Path(CHROMIUM).exists():
        if IN_CI:
            pytest.fail(f"{CHROMIUM} is missing (CI=true: a missing browser is a failure, not a skip)")
        pytest.skip(f"{CHROMIUM} is missing")


@pytest.fixture
def phone_page(monkeypatch):
    """A page in a phone-sized, touch-enabled context (390x844)."""
    _need_chromium()
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = _launch(playwright)
        try:
            context = browser.new_context(
                viewport=PHONE, has_touch=True, is_mobile=True, user_agent=PHONE_USER_AGENT
            )
            page = context.new_page()
            page.set_default_timeout(20_000)
            yield page
        finally:
            from django.db import connections

            connections.close_all()
            browser.close()


@pytest.fixture
def browser_page(monkeypatch):
    if not Path(CHROMIUM).exists():
        if IN_CI:
            pytest.fail(f"{CHROMIUM} is missing (CI=true: a missing browser is a failure, not a skip)")
        pytest.skip(f"{CHROMIUM} is missing")
    # Playwright's sync API runs an event loop in this thread; the ORM calls the test makes between
    # page actions are still synchronous and safe. With that loop running, Django keeps this thread's
    # connections apart from the ones it sees without it (asgiref's thread-critical Local), so they
    # are closed here, inside Playwright's context: left open, the test database cannot be dropped.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(20_000)
            yield page
        finally:
            from django.db import connections

            connections.close_all()
            browser.close()
