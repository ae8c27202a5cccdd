"""Schemathesis over `/openapi.json`, on both databases: every documented operation, with
schema-valid and schema-invalid requests, answers no 500 and only what the schema says
(status codes, content types, bodies, `Allow` on 405).

The operations are read from the application itself, so routes added later are covered
without touching this file. The run is bounded and derandomized: the same cases every run.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.api.app import create_app
from engine.config import Settings
from engine.rules.staff import Role
from engine.store import apikeys, petitions
from engine.store.db import make_engine, make_sessionmaker
from tests.factories import petition_def
from tests.fakes.event_webhook import EventSigner

SIGNER = EventSigner()
# The schema is the application's own: loaded once from an app that never touches its
# database (the one each test runs against is made per backend below).
schema = schemathesis.openapi.from_asgi(
    "/openapi.json", create_app(Settings(database_url="sqlite:///:memory:"))
)


class SignedLikeSendGrid:
    """SendGrid's side of the event webhook: signs each body posted to it, as SendGrid
    signs what it sends, so generated batches reach the parser rather than a 401."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != "/webhooks/sendgrid":
            await self.app(scope, receive, send)
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        signed = SIGNER.headers(body, datetime.now(UTC))
        headers = [(k, v) for k, v in scope["headers"] if not k.lower().startswith(b"x-twilio")]
        headers += [(k.lower().encode(), v.encode()) for k, v in signed.items()]

        async def replay() -> Message:
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app({**scope, "headers": headers}, replay, send)


@pytest.fixture
def api(committed_url: str) -> ASGIApp:
    app = create_app(
        Settings(
            database_url=committed_url,
            sign_batch_wait_ms=0,
            sign_rate_per_minute=0,
            sendgrid_webhook_public_key=SIGNER.public_key,
        )
    )
    return SignedLikeSendGrid(app)


@pytest.fixture(scope="module")
def petition_slug(committed_url: str) -> str:
    """A petition of the test database (with the usual two consent purposes): the signing
    and reading operations run against it, not only up to the unknown petition's 404."""
    engine = make_engine(committed_url)
    with make_sessionmaker(engine).begin() as session:
        slug = petitions.upsert(session, petition_def(), now=datetime.now(UTC)).slug
    engine.dispose()
    return slug


@pytest.fixture
def manager_key(committed_url: str) -> str:
    engine = make_engine(committed_url)
    with make_sessionmaker(engine).begin() as session:
        _, key = apikeys.create(session, role=Role.manager, label="", now=datetime.now(UTC))
    engine.dispose()
    return key


# Operations whose acceptance depends on rules a JSON schema cannot state, so that a
# schema-valid body may still get its 422 naming the field; every other check runs on them
# (no 500, documented statuses and bodies, schema-invalid bodies refused):
# - signing: an address email-validator takes, a French postal code, the consent purposes
#   this petition declares (the schema is one for every petition);
# - a gift: an address email-validator takes, a date not in the future, an amount above
#   zero that has at most two decimals.
BUSINESS_RULES = {"POST /api/petitions/{slug}/signatures", "POST /api/donations"}


@schema.parametrize()
@settings(
    max_examples=15,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_as_documented(
    case: schemathesis.Case[Any], api: ASGIApp, manager_key: str, petition_slug: str
) -> None:
    if case.path.startswith("/api/petitions/") and case.path_parameters:
        case.path_parameters["slug"] = petition_slug
    excluded = (
        [schemathesis.checks.positive_data_acceptance]
        if f"{case.method.upper()} {case.path}" in BUSINESS_RULES
        else []
    )
    case.call_and_validate(
        app=api,
        headers={"Authorization": f"Bearer {manager_key}"},
        excluded_checks=excluded,
    )
