"""Double opt-in over HTTP on both databases: a signature of a petition that asks for it is
received, the `confirm` email leaves with its link, the link's page changes nothing (mail
scanners fetch links), and its button confirms: only then does the signature count."""

from __future__ import annotations

import email
import re
from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from engine.api.app import create_app
from engine.config import Settings
from engine.store import petitions
from engine.store.db import make_sessionmaker
from tests.e2e.dashboard_helpers import Clock
from tests.factories import petition_def, unique

BASE = "https://m.example.org"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def outbox_dir(tmp_path: Path) -> Path:
    return tmp_path / "outbox"


@pytest.fixture
def client(committed_url: str, outbox_dir: Path, clock: Clock) -> Iterator[TestClient]:
    settings = Settings(
        database_url=committed_url,
        secret_key="optin-secret",
        base_url=BASE,
        transport="file",
        outbox_dir=outbox_dir,
        sign_batch_wait_ms=0,
    )
    with TestClient(create_app(settings, clock=clock), follow_redirects=False) as client:
        yield client


@pytest.fixture
def slug(committed_engine: Engine, clock: Clock) -> str:
    declared = petition_def().model_copy(update={"double_opt_in": True})
    with make_sessionmaker(committed_engine).begin() as session:
        return petitions.upsert(session, declared, now=clock.now).slug


def _count(client: TestClient, slug: str) -> int:
    count: int = client.get(f"/api/petitions/{slug}").json()["count"]
    return count


def _link(client: TestClient, outbox_dir: Path, clock: Clock, address: str) -> str:
    """Dispatch, then read the confirmation link from the `.eml` sent to `address`."""
    client.app.state.passes.dispatch(clock.now)  # type: ignore[attr-defined]
    for path in outbox_dir.glob("*.eml"):
        message = email.message_from_bytes(path.read_bytes(), policy=default)
        assert isinstance(message, EmailMessage)
        if address in str(message["To"]):
            html = message.get_body(("html",))
            assert html is not None
            found = re.search(rf'{re.escape(BASE)}(/confirm/[A-Za-z0-9_-]+)"', html.get_content())
            assert found is not None
            return found.group(1)
    raise AssertionError(f"no email to {address}")


def test_a_signature_counts_once_its_address_is_confirmed(
    client: TestClient, slug: str, outbox_dir: Path, clock: Clock
) -> None:
    # Given a petition with double opt-in, someone signs
    address = f"{unique('ines')}@example.org"
    signed = client.post(
        f"/api/petitions/{slug}/signatures", json={"email": address, "consent_updates": True}
    )
    assert signed.status_code == 202
    assert _count(client, slug) == 0
    # When the confirmation email leaves, and a mail scanner fetches its link twice
    link = _link(client, outbox_dir, clock, address)
    for _ in range(2):
        page = client.get(link)
        assert page.status_code == 200
        assert f'<form method="post" action="{link}">' in page.text
    # Then nothing is confirmed by reading the page
    assert _count(client, slug) == 0
    # When the reader presses the button (twice)
    clock.now += timedelta(hours=2)
    for _ in range(2):
        done = client.post(link)
        assert done.status_code == 200
        assert "confirmée" in done.text
        assert done.headers["Cache-Control"] == "no-store"
    # Then the signature counts, once
    assert _count(client, slug) == 1


def test_a_forged_or_expired_link_confirms_nothing(
    client: TestClient, slug: str, outbox_dir: Path, clock: Clock
) -> None:
    # Given a signature waiting for its confirmation
    address = f"{unique('noe')}@example.org"
    client.post(f"/api/petitions/{slug}/signatures", json={"email": address})
    link = _link(client, outbox_dir, clock, address)
    # When someone changes a character of the token, or posts after the expiry (7 days)
    forged = link[:-1] + ("A" if link[-1] != "A" else "B")
    assert client.post(forged).status_code == 404
    assert client.get(forged).status_code == 404
    clock.now += timedelta(days=7)
    assert client.get(link).status_code == 404
    assert client.post(link).status_code == 404
    # Then nothing counts
    assert _count(client, slug) == 0


def test_a_link_sent_before_a_rotation_of_the_secret_key_still_confirms(
    client: TestClient,
    slug: str,
    outbox_dir: Path,
    clock: Clock,
    committed_url: str,
) -> None:
    # Given a confirmation link sent under the old key
    address = f"{unique('rotated')}@example.org"
    client.post(f"/api/petitions/{slug}/signatures", json={"email": address})
    link = _link(client, outbox_dir, clock, address)

    # When the key is rotated (the old one a fallback) and the reader presses the button
    rotated = Settings(
        database_url=committed_url,
        secret_key="optin-secret-after-the-rotation",
        secret_key_fallbacks="optin-secret",
        base_url=BASE,
        transport="file",
        outbox_dir=outbox_dir,
    )
    with TestClient(create_app(rotated, clock=clock), follow_redirects=False) as after:
        done = after.post(link)

    # Then the signature counts
    assert done.status_code == 200
    assert _count(client, slug) == 1
