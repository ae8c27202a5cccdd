"""Headless Chromium for the browser tests (Playwright, with the system's Chromium)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from tests.backends import unavailable

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = Path(os.environ.get("MOBILISE_TEST_CHROMIUM", "/usr/bin/chromium"))
# Without these, Chromium keeps calling Google's services, which this machine refuses.
QUIET_FLAGS = [
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
    "--disable-gpu",
]


@contextmanager
def chromium() -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.is_file():
        unavailable(f"Chromium not found at {CHROMIUM} (Debian: apt-get install chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=QUIET_FLAGS
        )
        yield launched
        launched.close()


def problems(page: Page) -> list[str]:
    """What `page` reports going wrong from now on, filled as it happens: console errors
    and warnings (Chromium reports a Content-Security-Policy refusal as a console error, a
    resource that failed to load too) and uncaught exceptions."""
    found: list[str] = []
    page.on("console", lambda m: found.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda error: found.append(str(error)))
    return found
