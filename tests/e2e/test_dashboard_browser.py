"""The dashboard in real headless Chromium: sign in, open a preview, read the email."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from engine.api.app import create_app
from engine.rules.staff import Role
from tests.backends import unavailable
from tests.e2e import dashboard_helpers as given
from tests.e2e.dashboard_helpers import Clock
from tests.e2e.live_server import serving

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

pytest.importorskip("playwright", reason="playwright is a dev dependency: `make test` installs it")
from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.is_file():
        unavailable(f"Chromium not found at {CHROMIUM} (Debian: apt-get install chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=QUIET_FLAGS
        )
        yield launched
        launched.close()


@pytest.fixture
def base_url(committed_url: str) -> Iterator[str]:
    app = create_app(given.settings(committed_url), clock=Clock())
    with serving(app) as base:
        yield base


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(locale="fr-FR")
    opened = context.new_page()
    yield opened
    context.close()


def test_a_manager_signs_in_and_reads_a_supporters_update_email(
    page: Page, base_url: str, committed_engine: Engine, tmp_path: Path
) -> None:
    # Given a manager's key and a supporter whose name looks like markup
    key = given.new_key(committed_engine, Role.manager, "Léa")[1]
    email = given.new_supporter(committed_engine, "<b>Inès</b>")
    blocked: list[str] = []
    page.on("console", lambda m: blocked.append(m.text) if "Content Security" in m.text else None)

    # When she opens the dashboard, she is asked to sign in, and signs in with her key
    page.goto(f"{base_url}/dashboard")
    expect(page).to_have_title("Sign in · Mobilise")
    page.get_by_label("Your API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    expect(page.get_by_text("Léa · manager")).to_be_visible()

    # And opens the update template's preview
    page.get_by_role("link", name="update", exact=True).click()
    expect(page.get_by_role("heading", name="Preview: update")).to_be_visible()
    headers = page.locator("#headers")
    expect(headers).to_contain_text("Nous sommes 140\u00a0213 : merci Camille !")
    expect(headers).to_contain_text("List-Unsubscribe=One-Click")
    frame = page.frame_locator("#html")
    expect(frame.get_by_text("Bonjour Camille,")).to_be_visible()

    # And renders it for the supporter
    page.get_by_label("Render for a supporter").fill(email)
    page.get_by_role("button", name="Preview").click()

    # Then the email shows her name as written, in the HTML frame and in the text
    expect(frame.get_by_text("Bonjour <b>Inès</b>,")).to_be_visible()
    expect(page.locator("#text")).to_contain_text("Bonjour <b>Inès</b>,")
    assert frame.locator("b").count() == 0
    # And the frame can run nothing: no script, same-origin access or form submission
    assert page.locator("#html").get_attribute("sandbox") == ""
    assert blocked == []
    page.screenshot(path=str(os.environ.get("MOBILISE_TEST_SCREENSHOT", tmp_path / "p.png")))
