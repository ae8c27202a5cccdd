from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.config import Settings
from tests.e2e.browser import chromium
from tests.e2e.webhooks import SECRET, SIGNER
from tests.fakes.sendgrid_server import FakeSendGrid

if TYPE_CHECKING:
    from playwright.sync_api import Browser


@pytest.fixture
def sendgrid_server(now: datetime) -> Iterator[FakeSendGrid]:
    """The local SendGrid stand-in, validating against SendGrid's OpenAPI schema."""
    with FakeSendGrid(clock=lambda: now).running() as server:
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Chromium, one per test module."""
    with chromium() as launched:
        yield launched


@pytest.fixture
def webhook_settings() -> dict[str, Any]:
    """Settings a module adds to `webhook_client`'s (override the fixture to add some)."""
    return {}


@pytest.fixture
def webhook_client(committed_url: str, webhook_settings: dict[str, Any]) -> Iterator[TestClient]:
    """The app on the committed database, with `webhooks.SECRET` and `webhooks.SIGNER`'s
    public key: signed event batches, click and unsubscribe tokens are its own."""
    settings = Settings(
        database_url=committed_url,
        secret_key=SECRET,
        sendgrid_webhook_public_key=SIGNER.public_key,
        **webhook_settings,
    )
    with TestClient(create_app(settings), follow_redirects=False) as client:
        yield client
