"""The dashboard in real headless Chromium: sign in, open a preview, read the email."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from engine.api.app import create_app
from engine.rules.staff import Role
from tests.e2e import dashboard_helpers as given
from tests.e2e.browser import problems
from tests.e2e.dashboard_helpers import Clock
from tests.e2e.live_server import loopback_listener, serving

pytest.importorskip("playwright", reason="playwright is a dev dependency: `make test` installs it")
from playwright.sync_api import Browser, Page, expect


@pytest.fixture
def base_url(committed_url: str) -> Iterator[str]:
    # Served at the address it names, so that the emails' images load from its /static/
    listener, base = loopback_listener()
    settings = given.settings(committed_url).model_copy(update={"base_url": base})
    with serving(create_app(settings, clock=Clock()), listener=listener):
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
    reported = problems(page)

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
    # And nothing was refused (CSP) or failed on the way
    assert reported == []
    page.screenshot(path=str(os.environ.get("MOBILISE_TEST_SCREENSHOT", tmp_path / "p.png")))


def test_a_fundraiser_reads_a_journeys_charts_with_the_apis_numbers(
    page: Page, base_url: str, committed_engine: Engine, tmp_path: Path
) -> None:
    # Given a journey with sends, gifts, an A/B ask and a milestone reached, and a fundraiser
    journey_id = given.journey_with_figures(committed_engine)
    key = given.new_key(committed_engine, Role.fundraiser, "Fanny")[1]
    reported = problems(page)

    # When she signs in and opens the journey from the overview
    page.goto(f"{base_url}/dashboard")
    page.get_by_label("Your API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name=journey_id).click()
    expect(page.get_by_role("heading", name="Journey: Merci, palier, appel")).to_be_visible()
    expect(page.locator("body")).to_have_attribute("data-charts", "drawn")

    # Then the charts show the numbers the API gives for the journey
    answer = page.request.get(
        f"{base_url}/api/journeys/{journey_id}/stats", headers={"Authorization": f"Bearer {key}"}
    )
    api = answer.json()
    totals = api["totals"]
    funnel = page.evaluate("Chart.getChart('funnel').data.datasets[0].data")
    assert funnel == [
        api["petition"]["signatures"],
        totals["sent"],
        totals["delivered"],
        totals["clickers"],
        totals["donors"],
    ]
    curve = page.evaluate("Chart.getChart('signatures').data.datasets.map(d => d.data)")
    assert curve[0] == [d["total"] for d in api["signatures_by_day"]]
    assert 1000 in curve[1]  # the milestone marked on the day it was reached
    # The axes write numbers as the English page does, in a French browser too
    ticks = page.evaluate("Chart.getChart('signatures').scales.y.ticks.map(t => t.label)")
    assert "1,000" in ticks
    revenue = page.evaluate("Chart.getChart('revenue').data")
    sending = [s for s in api["steps"] if s["figures"] is not None]
    assert revenue["labels"] == [s["id"] for s in sending]
    assert revenue["datasets"][0]["data"] == [
        (s["figures"]["per_1000_emails_cents"]["one_off"] or 0) / 100 for s in sending
    ]
    # And the diagram carries each step's live counts
    for step in sending:
        box = page.locator(f'#diagram [data-step="{step["id"]}"]')
        expect(box.locator('[data-figure="sent"]')).to_have_text(f"{step['figures']['sent']:,}")
    # And the steps table gives a step's clickers and its clicks apart
    header = page.locator("#steps thead th").all_text_contents()
    thanks = page.locator("#steps tbody tr").first.locator("td").all_text_contents()
    assert [thanks[header.index(name)] for name in ("Step", "Clickers", "Clicks")] == [
        "thanks",
        "2",
        "3",
    ]
    # And the A/B table gives the verdict in words
    expect(page.locator("#ab")).to_contain_text(
        "-B raises the gift rate by 0.4 points (1.2% against 0.8% for A), not significant yet"
    )
    # And nothing was refused (CSP) or failed on the way
    assert reported == []
    page.screenshot(
        path=str(os.environ.get("MOBILISE_TEST_STATS_SCREENSHOT", tmp_path / "j.png")),
        full_page=True,
    )
