"""The public petition page in real headless Chromium, on a phone: read, sign with the
keyboard's help, land on the thank-you page, and watch the count move. And the emails'
images, shown by the dashboard's preview."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from engine.api.app import create_app
from engine.config import Settings
from engine.declarations import read
from engine.rules.staff import Role
from engine.store import petitions
from engine.store.db import make_sessionmaker
from tests.e2e import dashboard_helpers as given
from tests.e2e.browser import problems
from tests.e2e.dashboard_helpers import Clock
from tests.e2e.live_server import loopback_listener, serving
from tests.factories import unique
from tests.store.journey_helpers import ROOT, SLUG

pytest.importorskip("playwright", reason="playwright is a dev dependency: `make test` installs it")
from playwright.sync_api import Browser, Page, ViewportSize, expect

PHONE = ViewportSize(width=390, height=844)
NBSP = "\u00a0"
# The address supporters are given (MOBILISE_BASE_URL), behind which the test server runs.
PUBLIC = "https://petition.example.net"


@pytest.fixture
def base_url(committed_url: str, committed_engine: Engine) -> Iterator[str]:
    clock = Clock()
    with make_sessionmaker(committed_engine).begin() as session:
        petitions.upsert(session, read(ROOT).campaigns[0].petition, now=clock.now)
    settings = Settings(
        database_url=committed_url,
        project_dir=ROOT,
        base_url=PUBLIC,
        transport="memory",
        sign_batch_wait_ms=0,
    )
    with serving(create_app(settings, clock=clock)) as base:
        yield base


@pytest.fixture
def phone(browser: Browser) -> Iterator[tuple[Page, list[str]]]:
    context = browser.new_context(
        locale="fr-FR", viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True
    )
    page = context.new_page()
    yield page, problems(page)
    context.close()


def shown_count(page: Page) -> int:
    return int(page.locator("#count").get_attribute("data-count") or "-1")


def test_a_supporter_signs_on_a_phone_and_sees_the_count_move(
    phone: tuple[Page, list[str]], base_url: str, tmp_path: Path
) -> None:
    page, seen = phone
    page.clock.install()

    # Given the petition page, opened on a phone
    page.goto(f"{base_url}/p/{SLUG}")
    expect(page).to_have_title("Interdire la reconnaissance faciale en France · Vigie Libertés")
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Interdire la reconnaissance faciale en France"
    )
    before = shown_count(page)
    # it fits the screen: nothing scrolls sideways
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    updates = page.get_by_label("Je souhaite recevoir des nouvelles", exact=False)
    fundraising = page.get_by_label("J'accepte d'être sollicité", exact=False)
    expect(updates).not_to_be_checked()
    expect(fundraising).not_to_be_checked()

    # When she fills the form, ticks one box from the keyboard, and signs
    page.get_by_label("Adresse électronique").fill(f"{unique('phone')}@example.fr")
    page.get_by_label("Prénom").fill("Inès")
    page.get_by_label("Code postal").fill("35000")
    page.get_by_label("Code postal").press("Tab")
    expect(updates).to_be_focused()
    page.keyboard.press("Space")
    expect(updates).to_be_checked()
    expect(fundraising).not_to_be_checked()
    page.get_by_role("button", name="Je signe").click()

    # Then the thank-you page names the petition, offers a link to share and the donation page
    expect(page.get_by_role("heading", level=1)).to_have_text("Merci pour votre signature\u00a0!")
    expect(page.get_by_text("Interdire la reconnaissance faciale en France")).to_be_visible()
    expect(page.get_by_label("Lien de la pétition")).to_have_value(f"{PUBLIC}/p/{SLUG}")
    expect(page.get_by_role("link", name="Soutenir la campagne par un don")).to_be_visible()
    page.screenshot(path=str(os.environ.get("MOBILISE_TEST_SCREENSHOT_THANKS", tmp_path / "t.png")))

    # And back on the petition, the count has moved by her signature
    page.get_by_role("link", name="Revenir à la pétition").click()
    expect(page.locator("#count")).to_have_attribute("data-count", str(before + 1))

    # And while the page stays open, it follows the others who sign
    httpx.post(
        f"{base_url}/api/petitions/{SLUG}/signatures",
        json={"email": f"{unique('other')}@example.fr"},
    ).raise_for_status()
    page.clock.run_for(30_000)
    expect(page.locator("#count")).to_have_attribute("data-count", str(before + 2))
    expect(page.locator("#count")).to_have_text(f"{before + 2:,}".replace(",", NBSP))
    page.screenshot(
        path=str(os.environ.get("MOBILISE_TEST_SCREENSHOT", tmp_path / "p.png")), full_page=True
    )

    # And nothing went wrong in the page: no script error, nothing the CSP blocked
    assert seen == []


def test_the_dashboard_preview_shows_the_emails_images(
    browser: Browser, committed_url: str, committed_engine: Engine
) -> None:
    # Given Mobilise served at the address its emails name (plain http, as in development)
    listener, base = loopback_listener()
    settings = given.settings(committed_url).model_copy(update={"base_url": base})
    key = given.new_key(committed_engine, Role.manager, "Léa")[1]
    with serving(create_app(settings, clock=given.Clock()), listener=listener):
        page = browser.new_page()
        blocked: list[str] = []
        page.on(
            "console", lambda m: blocked.append(m.text) if "Content Security" in m.text else None
        )

        # When a manager previews the update
        page.goto(f"{base}/dashboard/login?next=/dashboard/templates/update")
        page.get_by_label("Your API key").fill(key)
        page.get_by_role("button", name="Sign in").click()
        # (the first preview compiles the template: slow on a busy machine)
        expect(page.get_by_role("heading", name="Preview: update")).to_be_visible(timeout=30_000)
        logo = page.frame_locator("#html").get_by_role("img", name="Vigie Libertés")
        photo = page.frame_locator("#html").get_by_role("img", name="Des militantes", exact=False)

        # Then the logo and the photo load, from Mobilise's /static/
        for image, width in ((logo, 320), (photo, 600)):
            expect(image).to_have_attribute("src", re.compile(f"^{base}/static/images/"))
            expect(image).to_have_js_property("naturalWidth", width)
        assert blocked == []
        page.close()
