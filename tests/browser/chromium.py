"""Debian's Chromium driven by Playwright, signed in as a demo login: shared by the browser
tests and `make screenshots` (scripts/screenshots.py). Never a downloaded browser."""

from __future__ import annotations

import os
from typing import Any

CHROMIUM = os.environ.get("ZENTRA_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--disable-sync"]
# An operator's screen.
VIEWPORT = {"width": 1400, "height": 900}


def launch(playwright: Any) -> Any:
    if not os.path.exists(CHROMIUM):
        raise RuntimeError(f"Chromium not found at {CHROMIUM} (apt-get install chromium, or set ZENTRA_CHROMIUM)")
    return playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)


def signed_in(browser: Any, base_url: str, username: str, password: str, *, viewport: dict | None = None) -> Any:
    """A page of a fresh browser context, signed in to the admin and on its dashboard."""
    context = browser.new_context(viewport=viewport or VIEWPORT)
    page = context.new_page()
    page.goto(f"{base_url}/admin/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("input[type=submit]")
    page.wait_for_url(f"{base_url}/admin/")
    return page
