"""Rotating MOBILISE_SECRET_KEY: the new key signs what is made from then on, and what was
signed under the old one (now in MOBILISE_SECRET_KEY_FALLBACKS) still opens its door:
links in emails already sent, one-click unsubscribes, staff sign-ins (SQLite and
PostgreSQL, committed). Erased addresses: tests/store/test_erased_addresses.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from engine.api.app import create_app
from engine.api.staff import COOKIE
from engine.config import Settings
from engine.render import tokens
from engine.rules.staff import Role
from engine.store.db import make_sessionmaker
from engine.store.models import Click, Supporter, Suppression
from tests.e2e import dashboard_helpers as given
from tests.e2e.webhooks import sent_update

OLD = "the-key-before-the-rotation-0123456789"
NEW = "the-key-after-the-rotation-9876543210"


def app_with(url: str, *, key: str, fallbacks: str = "", leaked: str = "") -> TestClient:
    settings = given.settings(url).model_copy(
        update={"secret_key": key, "secret_key_fallbacks": fallbacks, "secret_key_leaked": leaked}
    )
    return TestClient(create_app(settings, clock=given.Clock()), follow_redirects=False)


@pytest.fixture
def rotated(committed_url: str) -> Iterator[TestClient]:
    """The app after a rotation: the new key, the old one as a fallback."""
    with app_with(committed_url, key=NEW, fallbacks=f"{OLD}, ") as client:
        yield client


def test_the_settings_read_the_fallbacks_newest_first_and_never_the_key_itself() -> None:
    settings = Settings(secret_key=NEW, secret_key_fallbacks=f"{OLD}, older-key  {NEW},")
    keys = settings.keys
    assert (keys.current, keys.fallbacks) == (NEW, (OLD, "older-key"))
    # and settings copied with another key give that key, the first ones read or not
    copied = settings.model_copy(update={"secret_key": OLD, "secret_key_fallbacks": ""})
    assert (copied.keys.current, copied.keys.fallbacks) == (OLD, ())


def test_a_key_said_leaked_is_no_fallback_and_the_current_key_cannot_be_one() -> None:
    settings = Settings(
        secret_key=NEW, secret_key_fallbacks=f"{OLD}, older-key", secret_key_leaked=OLD
    )
    assert (settings.keys.fallbacks, settings.keys.leaked) == (("older-key",), (OLD,))
    with pytest.raises(ValueError, match="MOBILISE_SECRET_KEY_LEAKED"):
        Settings(secret_key=NEW, secret_key_leaked=f"{OLD},{NEW}")


def test_a_leaked_key_opens_no_door_even_to_emails_sent_before_it_leaked(
    committed_url: str, committed_engine: Engine
) -> None:
    # Given an email sent under a key that then leaked: whoever holds it can sign links
    # for any email, its rights pages (a supporter's data) included
    message_id, _ = sent_update(committed_engine, "leaked", ("https://example.org/a",))
    _, key = given.new_key(committed_engine, Role.manager)
    with app_with(committed_url, key=OLD) as before:
        given.sign_in(before, key)
        cookie = before.cookies[COOKIE]

    # When the key is replaced and said leaked, and its links are followed
    with app_with(committed_url, key=NEW, leaked=OLD) as after:
        data = after.get(f"/rights/{tokens.rights_token(OLD, message_id)}/data")
        click = after.get(f"/c/{tokens.click_token(OLD, message_id, 0)}")
        unsubscribe = after.post(
            f"/u/{tokens.unsubscribe_token(OLD, message_id)}",
            data={"List-Unsubscribe": "One-Click"},
        )
        after.cookies.set(COOKIE, cookie)
        dashboard = after.get("/dashboard")
        # while the new key's link still opens its page
        fresh = after.get(f"/rights/{tokens.rights_token(NEW, message_id)}/data")

    # Then none opens: no data, no click, no unsubscribe, no staff session
    assert (data.status_code, click.status_code, unsubscribe.status_code) == (404, 404, 404)
    assert dashboard.status_code == 303
    assert fresh.status_code == 200
    with make_sessionmaker(committed_engine)() as session:
        clicks = select(func.count()).select_from(Click).where(Click.message_id == message_id)
        assert session.scalar(clicks) == 0


def test_a_link_in_an_email_sent_before_the_rotation_still_leads_where_it_did(
    rotated: TestClient, committed_engine: Engine
) -> None:
    # Given an email sent under the old key
    message_id, _ = sent_update(committed_engine, "rotated", ("https://example.org/a",))

    # When its link is clicked after the rotation
    answer = rotated.get(f"/c/{tokens.click_token(OLD, message_id, 0)}")

    # Then the click is recorded and redirected; a key nobody configured opens nothing
    assert (answer.status_code, answer.headers["location"]) == (302, "https://example.org/a")
    assert rotated.get(f"/c/{tokens.click_token('another', message_id, 0)}").status_code == 404
    with make_sessionmaker(committed_engine)() as session:
        clicks = select(func.count()).select_from(Click).where(Click.message_id == message_id)
        assert session.scalar(clicks) == 1


def test_an_unsubscribe_link_sent_before_the_rotation_still_unsubscribes(
    rotated: TestClient, committed_engine: Engine
) -> None:
    # Given an email sent under the old key
    message_id, email = sent_update(committed_engine, "rotated")

    # When its one-click unsubscribe is posted after the rotation
    answer = rotated.post(
        f"/u/{tokens.unsubscribe_token(OLD, message_id)}", data={"List-Unsubscribe": "One-Click"}
    )

    # Then its supporter is unsubscribed
    assert answer.status_code == 200
    with make_sessionmaker(committed_engine)() as session:
        reasons = (
            select(Suppression.reason)
            .join(Supporter, Supporter.id == Suppression.supporter_id)
            .where(Supporter.email == email)
        )
        assert session.scalars(reasons).all() == ["unsubscribe"]


def test_a_staff_sign_in_made_before_the_rotation_holds(
    committed_url: str, committed_engine: Engine
) -> None:
    # Given a manager signed in under the old key
    _, key = given.new_key(committed_engine, Role.manager)
    with app_with(committed_url, key=OLD) as before:
        given.sign_in(before, key)
        cookie = before.cookies[COOKIE]

    # When the dashboard is opened with that cookie after the rotation, and without the
    # old key among the fallbacks
    with app_with(committed_url, key=NEW, fallbacks=OLD) as after:
        after.cookies.set(COOKIE, cookie)
        kept = after.get("/dashboard")
    with app_with(committed_url, key=NEW) as forgotten:
        forgotten.cookies.set(COOKIE, cookie)
        lost = forgotten.get("/dashboard")

    # Then the sign-in holds with the fallback, and is refused without it
    assert kept.status_code == 200
    assert lost.status_code == 303
