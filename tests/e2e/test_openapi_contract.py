"""Schemathesis over `/openapi.json`, on both databases: every documented operation, with
schema-valid and schema-invalid requests, answers no 500 and only what the schema says
(status codes, content types, bodies, `Allow` on 405), and accepts every schema-valid
request: the schema states the server's rules (patterns are the server's own; the two
formats a pattern cannot say, `email` and `past-timestamp`, get generators of the values
the server takes, registered below).

The operations are read from the application itself, so routes added later are covered
without touching this file. The run is bounded and derandomized: the same cases every run.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.api.app import create_app
from engine.config import Settings
from engine.rules.staff import Role
from engine.rules.supporters import normalise_email
from engine.rules.tabular import UNSEEN
from engine.store import apikeys, petitions
from engine.store.db import make_engine, make_sessionmaker
from tests.factories import petition_def
from tests.fakes.event_webhook import EventSigner

SIGNER = EventSigner()
SIGNING = "/api/petitions/{slug}/signatures"
# The consent purposes of the petition the signing operation runs against (petition_slug).
PURPOSES = tuple(petition_def().consents)


def for_the_petition(document: dict[str, Any]) -> dict[str, Any]:
    """The schema as a client of one petition sees it: the signing body with this
    petition's purposes as its only consent fields, where the published schema, one for
    every petition, takes any `consent_<purpose>` (and refuses, 422, those a petition lacks)."""
    for content in document["paths"][SIGNING]["post"]["requestBody"]["content"].values():
        for body in content["schema"].get("anyOf", [content["schema"]]):
            if "patternProperties" in body:
                (flag,) = body.pop("patternProperties").values()
                body["properties"] |= {f"consent_{purpose}": flag for purpose in PURPOSES}
            else:
                keyed = body["properties"]["consents"]
                answer = keyed.pop("additionalProperties")
                del keyed["propertyNames"]
                keyed |= {
                    "properties": dict.fromkeys(PURPOSES, answer),
                    "additionalProperties": False,
                }
    return document


# The schema's text patterns are ECMA-262's, which cannot name the astral characters the
# server refuses (private use planes, tags: two code units each there). Hypothesis reads the
# patterns as Python does and draws those characters now and then: bodies holding one are
# left out (their refusal is tested in tests/unit/rules), so that what it draws as valid is
# what the server takes.
def astral_unseen(value: object) -> bool:
    if isinstance(value, dict):
        return any(astral_unseen(k) or astral_unseen(v) for k, v in value.items())
    if isinstance(value, list):
        return any(astral_unseen(v) for v in value)
    return isinstance(value, str) and any(ord(c) > 0xFFFF for c in UNSEEN.findall(value))


@schemathesis.hook
def filter_body(context: schemathesis.HookContext, body: object) -> bool:
    return not astral_unseen(body)


def accepted(email: str) -> bool:
    return normalise_email(email) is not None


# The formats' values the server takes: addresses email-validator accepts, and dates from
# 1900 to now written as the server reads them. The addresses are drawn in the shape of
# valid ones and then checked by the server's own rule (Hypothesis's `emails()` draws many
# it refuses, special-use domains among them: filtering those took a minute to collect).
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,12}"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,8}[A-Za-z0-9])?"
ADDRESSES = st.from_regex(
    rf"{_ATOM}(?:\.{_ATOM}){{0,2}}@(?:{_LABEL}\.){{1,3}}[A-Za-z]{{2,8}}", fullmatch=True
).filter(accepted)
schemathesis.openapi.format("email", ADDRESSES)
schemathesis.openapi.format(
    "past-timestamp",
    st.builds(
        lambda at, french: at.strftime("%d/%m/%Y %H:%M") if french else at.isoformat(),
        st.datetimes(
            datetime(1900, 1, 2),  # noqa: DTZ001 (Hypothesis's bounds are naive)
            datetime(2025, 12, 31),  # noqa: DTZ001
            timezones=st.just(UTC),
        ),
        st.booleans(),
    ),
)
# The schema is the application's own, read from an app that never touches its database
# (the one each test runs against is made per backend below).
_APP = create_app(Settings(database_url="sqlite:///:memory:"))
for_the_petition(_APP.openapi())  # FastAPI serves the document it keeps, so changed here
schema = schemathesis.openapi.from_asgi("/openapi.json", _APP)


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
            login_rate_per_minute=0,  # Schemathesis tries invalid keys over and over
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
    case.call_and_validate(app=api, headers={"Authorization": f"Bearer {manager_key}"})
