"""The app as SendGrid's signed webhook and a supporter's links reach it: one secret, one
event signer, a sent email to aim events and tokens at, and a signed batch poster."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from fastapi.testclient import TestClient
from httpx2 import Response
from sqlalchemy import Engine

from engine.store import links
from engine.store.db import make_sessionmaker
from engine.store.models import Supporter
from tests.factories import sent_email, unique
from tests.fakes.event_webhook import EventSigner

SECRET = "e2e-webhook-secret"
SIGNER = EventSigner()


def post_events(
    client: TestClient, events: list[dict[str, object]], at: datetime | None = None
) -> Response:
    """POST the events as one batch, signed by SIGNER at `at` (default: now)."""
    body = json.dumps(events).encode()
    headers = {**SIGNER.headers(body, at or datetime.now(UTC)), "Content-Type": "application/json"}
    return client.post("/webhooks/sendgrid", content=body, headers=headers)


def sent_update(engine: Engine, prefix: str, urls: tuple[str, ...] = ()) -> tuple[int, str]:
    """(message id, address) of a sent email of template `update` version `v1` to a new
    supporter, the version's links stored as `urls`."""
    now = datetime.now(UTC)
    email = f"{unique(prefix)}@example.fr"
    with make_sessionmaker(engine).begin() as session:
        supporter = Supporter(email=email, locale="fr", created_at=now)
        session.add(supporter)
        session.flush()
        message_id = sent_email(session, supporter.id, "update", now, version="v1")
        if urls:
            links.remember(session, "update", "v1", list(urls))
        return message_id, email
