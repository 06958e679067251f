"""The admin in a real browser: Playwright for Python driving Debian's Chromium (never a
downloaded browser), against the live test server holding the seeded demo."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from django.core.management import call_command

from .chromium import CHROMIUM, launch, signed_in

# Playwright's sync API runs an event loop in this thread; the ORM calls the tests make next to
# it are ordinary synchronous ones.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

PASSWORD = "zentra-demo"


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.fail(f"Chromium not found at {CHROMIUM} (apt-get install chromium, or set ZENTRA_CHROMIUM)")
    with sync_playwright() as playwright:
        browser = launch(playwright)
        yield browser
        browser.close()


@pytest.fixture
def demo(transactional_db, live_server, tmp_path, settings):
    settings.ZENTRA_DEMO_PASSWORD = PASSWORD
    call_command("seed_demo", "--base-url", live_server.url, "--key-file", str(tmp_path / "demo-api-key"),
                 stdout=open(os.devnull, "w"))
    return live_server.url


@pytest.fixture
def login(browser, demo):
    """A fresh browser session signed in as `username`, at 1400 px like an operator's screen."""
    contexts = []

    def sign_in(username: str):
        page = signed_in(browser, demo, username, PASSWORD)
        contexts.append(page.context)
        return page

    yield sign_in
    for context in contexts:
        context.close()
