"""Donation links and clicks over HTTP, on both databases: the redirect goes only to the
configured donation page, with the signed amount, frequency and attribution reference;
a click stores no IP address nor user agent; scanner bursts are flagged automated."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from engine.api.app import create_app
from engine.config import Settings
from engine.render import tokens
from engine.render.links import DONATION_LINK
from engine.store import links
from engine.store.db import make_sessionmaker
from engine.store.models import Click, Event, Supporter
from tests.factories import sent_email, unique
from tests.store.engagement import click_flags

SECRET = "test-secret"
PAGE = "https://dons.example.org/soutenir?campagne=rf"
SENT = datetime(2026, 5, 23, 8, 0, tzinfo=UTC)


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
def clock() -> Clock:
    return Clock(SENT + timedelta(hours=2))


def client_for(committed_url: str, clock: Clock, **settings: object) -> TestClient:
    config = Settings(database_url=committed_url, secret_key=SECRET, **settings)  # type: ignore[arg-type]
    return TestClient(create_app(config, clock=clock), follow_redirects=False)


@pytest.fixture
def client(committed_url: str, clock: Clock) -> Iterator[TestClient]:
    with client_for(committed_url, clock, donation_url=PAGE) as client:
        yield client


@pytest.fixture
def ask(committed_engine: Engine) -> int:
    """A sent ask whose version has a plain link (0) and two donation links (1, 2)."""
    version = unique("v")
    with make_sessionmaker(committed_engine).begin() as session:
        supporter = Supporter(email=f"{unique('d')}@example.fr", locale="fr", created_at=SENT)
        session.add(supporter)
        session.flush()
        message_id = sent_email(session, supporter.id, "ask-first", SENT, version=version)
        urls = ["https://www.example.org/", DONATION_LINK, DONATION_LINK]
        links.remember(session, "ask-first", version, urls)
        return message_id


def clicks_of(engine: Engine, message_id: int) -> list[tuple[int, bool]]:
    with Session(engine) as session:
        return click_flags(session, message_id)


def test_a_donation_link_leads_to_the_page_with_amount_frequency_and_reference(
    client: TestClient, ask: int, committed_engine: Engine
) -> None:
    # Given the 30 € button of an ask
    token = tokens.donation_token(SECRET, ask, 1, 3000, "one-off")
    # When a supporter clicks it
    answer = client.get(f"/c/{token}")
    # Then they land on the configured donation page, its own parameters kept, ours added
    assert answer.status_code == 302
    target = urlsplit(answer.headers["location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == PAGE.split("?")[0]
    query = parse_qs(target.query)
    assert query["campagne"] == ["rf"]
    assert query["amount"] == ["30.00"]
    assert query["frequency"] == ["one-off"]
    # And the reference names this email, for the platform to hand back with the gift
    assert tokens.read_reference(SECRET, query["reference"][0]) == ask
    # And the click is recorded like any other
    assert clicks_of(committed_engine, ask) == [(1, False)]


def test_a_token_opens_only_its_kind_of_link(client: TestClient, ask: int) -> None:
    # A donation token on the plain link, a plain token on a donation link: both 404
    assert (
        client.get(f"/c/{tokens.donation_token(SECRET, ask, 0, 3000, 'one-off')}").status_code
        == 404
    )
    assert client.get(f"/c/{tokens.click_token(SECRET, ask, 1)}").status_code == 404
    # A donation token for a link the version does not have, or forged: 404
    assert (
        client.get(f"/c/{tokens.donation_token(SECRET, ask, 9, 3000, 'one-off')}").status_code
        == 404
    )
    assert (
        client.get(f"/c/{tokens.donation_token('other', ask, 1, 3000, 'one-off')}").status_code
        == 404
    )
    # The plain link still redirects to its stored URL
    plain = client.get(f"/c/{tokens.click_token(SECRET, ask, 0)}")
    assert plain.headers["location"] == "https://www.example.org/"


def test_the_donation_page_is_the_organisations_unless_the_environment_says_otherwise(
    committed_url: str, clock: Clock, ask: int
) -> None:
    token = tokens.donation_token(SECRET, ask, 1, 3000, "one-off")
    with client_for(committed_url, clock) as declared:
        from_file = declared.get(f"/c/{token}")

    # organisation.yaml's donation_url, as no MOBILISE_DONATION_URL is set
    assert from_file.headers["location"].startswith(
        "https://dons.example.org/stop-reconnaissance-faciale?amount=30.00&"
    )


def test_without_a_donation_page_configured_the_click_says_so(
    committed_url: str, clock: Clock, ask: int, committed_engine: Engine, tmp_path: Path
) -> None:
    # (a project without organisation.yaml, whose example has a donation page)
    with client_for(committed_url, clock, project_dir=tmp_path) as client:
        answer = client.get(f"/c/{tokens.donation_token(SECRET, ask, 1, 3000, 'one-off')}")
    assert answer.status_code == 503
    assert "location" not in answer.headers
    assert clicks_of(committed_engine, ask) == []


def test_a_click_stores_no_ip_address_nor_user_agent(
    client: TestClient, ask: int, committed_engine: Engine
) -> None:
    # Given a click from a browser behind a proxy
    agent = "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0 unique-agent-7f3a"
    address = "203.0.113.77"
    client.get(
        f"/c/{tokens.click_token(SECRET, ask, 0)}",
        headers={"User-Agent": agent, "X-Forwarded-For": address, "X-Real-IP": address},
    )
    # Then neither the click row nor the event holds the agent or the address
    with Session(committed_engine) as session:
        (click,) = session.scalars(select(Click).where(Click.message_id == ask)).all()
        stored = json.dumps(
            {c.name: str(getattr(click, c.name)) for c in Click.__table__.columns}
        ) + json.dumps(
            session.scalars(select(Event.payload).where(Event.source_key == f"click:{ask}:0")).all()
        )
    assert agent not in stored
    assert "Firefox" not in stored
    assert address not in stored
    assert {c.name for c in Click.__table__.columns} == {
        "id", "message_id", "link_position", "supporter_id", "clicked_at", "automated"
    }  # fmt: skip


def test_a_scanner_opening_every_link_at_once_is_flagged_automated(
    client: TestClient, clock: Clock, ask: int, committed_engine: Engine
) -> None:
    # Given a person's click, an hour after the send
    client.get(f"/c/{tokens.click_token(SECRET, ask, 0)}")
    # When a second link of the same email is clicked an hour later, and a third 3 s after
    clock.at += timedelta(hours=1)
    client.get(f"/c/{tokens.donation_token(SECRET, ask, 1, 3000, 'one-off')}")
    clock.at += timedelta(seconds=3)
    answer = client.get(f"/c/{tokens.donation_token(SECRET, ask, 2, 5000, 'one-off')}")
    # Then both redirect as usual, and the two clicks within seconds are flagged, not the first
    assert answer.status_code == 302
    assert clicks_of(committed_engine, ask) == [(0, False), (1, True), (2, True)]


def test_a_click_seconds_after_the_send_is_flagged_automated(
    client: TestClient, clock: Clock, ask: int, committed_engine: Engine
) -> None:
    # Given a gateway that opens the email's link 4 s after it was sent
    clock.at = SENT + timedelta(seconds=4)
    client.get(f"/c/{tokens.click_token(SECRET, ask, 0)}")
    # When the person clicks the same link 10 minutes later
    clock.at = SENT + timedelta(minutes=10)
    client.get(f"/c/{tokens.click_token(SECRET, ask, 0)}")
    # Then only the gateway's click is flagged
    assert clicks_of(committed_engine, ask) == [(0, True), (0, False)]
