"""Clicks, one-click unsubscribe and the SendGrid webhook, over HTTP on both databases."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from functools import partial

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, func, select
from sqlalchemy.orm import Session

from engine.api.app import create_app
from engine.config import Settings
from engine.render import tokens
from engine.rules.supporters import email_hash
from engine.store import suppressions
from engine.store.db import make_sessionmaker
from engine.store.models import Click, Event, OutboxMessage, Supporter, Suppression
from tests.e2e.webhooks import SECRET, SIGNER, post_events, sent_update
from tests.factories import unique


@pytest.fixture
def message(committed_engine: Engine) -> tuple[int, str]:
    """A sent message of template `update` version `v1`, with two stored links."""
    return sent_update(
        committed_engine, "reader", ("https://example.org/a", "https://example.org/b")
    )


def test_a_click_is_recorded_and_redirected_to_the_stored_url(
    webhook_client: TestClient, message: tuple[int, str], committed_engine: Engine
) -> None:
    message_id, _ = message

    answer = webhook_client.get(f"/c/{tokens.click_token(SECRET, message_id, 1)}")

    assert answer.status_code == 302
    assert answer.headers["location"] == "https://example.org/b"
    assert "set-cookie" not in answer.headers
    with make_sessionmaker(committed_engine)() as session:
        assert (
            session.scalar(
                select(func.count()).select_from(Click).where(Click.message_id == message_id)
            )
            == 1
        )


@pytest.mark.parametrize("token", ["forged-token", "AAAAAAAAAAAAAAAAAAAA"])
def test_a_forged_click_token_is_a_404(webhook_client: TestClient, token: str) -> None:
    assert webhook_client.get(f"/c/{token}").status_code == 404


def test_a_link_position_the_version_does_not_have_is_a_404(
    webhook_client: TestClient, message: tuple[int, str]
) -> None:
    message_id, _ = message
    assert webhook_client.get(f"/c/{tokens.click_token(SECRET, message_id, 7)}").status_code == 404


def test_a_redirect_carries_the_security_headers_and_one_access_line_without_its_token(
    webhook_client: TestClient, message: tuple[int, str], caplog: pytest.LogCaptureFixture
) -> None:
    message_id, _ = message
    token = tokens.click_token(SECRET, message_id, 0)

    with caplog.at_level(logging.INFO, logger="engine.api.access"):
        answer = webhook_client.get(f"/c/{token}")

    assert answer.status_code == 302
    assert answer.headers["referrer-policy"] == "no-referrer"  # the token stays here
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
    (line,) = [r for r in caplog.records if r.name == "engine.api.access"]
    assert line.getMessage().startswith("method=GET path=/c/{token} status=302 duration_ms=")
    assert token not in line.getMessage()


class _Broken:
    """A click writer with a bug."""

    async def follow(self, _click: object) -> str:
        raise RuntimeError("a bug")


def test_a_click_that_fails_is_a_500_with_the_headers_and_its_access_line(
    committed_url: str, message: tuple[int, str], caplog: pytest.LogCaptureFixture
) -> None:
    # Given a click route whose writer fails (a bug); the route is served before the
    # middleware (engine/api/fastpath.py), which it must stand in for
    app = create_app(Settings(database_url=committed_url, secret_key=SECRET))
    message_id, _ = message
    with TestClient(app, raise_server_exceptions=False, follow_redirects=False) as client:
        app.state.clicks = _Broken()

        # When a valid link is clicked
        with caplog.at_level(logging.INFO, logger="engine.api.access"):
            answer = client.get(f"/c/{tokens.click_token(SECRET, message_id, 0)}")

    # Then it is the application's 500, with the security headers, and one access line
    # at ERROR that says why
    assert answer.status_code == 500
    assert answer.json() == {"error": "internal error"}
    assert answer.headers["referrer-policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
    (line,) = [r for r in caplog.records if r.name == "engine.api.access"]
    assert (line.levelno, vars(line)["path"], vars(line)["status"]) == (
        logging.ERROR,
        "/c/{token}",
        500,
    )
    assert vars(line)["reason"] == "unhandled RuntimeError"


def test_a_click_declaring_a_body_over_the_cap_meets_the_guards(
    webhook_client: TestClient, message: tuple[int, str]
) -> None:
    # Given a valid click token
    message_id, _ = message
    token = tokens.click_token(SECRET, message_id, 0)

    # When a GET declares a body over the cap, then the guards refuse it as on any route;
    # without one it is redirected
    oversized = {"Content-Length": str(10**9)}
    assert webhook_client.get(f"/c/{token}", headers=oversized).status_code == 413
    assert webhook_client.get(f"/c/{token}").status_code == 302


def test_unknown_and_forged_tokens_are_404s_that_write_nothing(
    webhook_client: TestClient, message: tuple[int, str]
) -> None:
    # Given a message clicked once (its version's links read)
    message_id, _ = message
    assert webhook_client.get(f"/c/{tokens.click_token(SECRET, message_id, 0)}").status_code == 302
    statements: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        statements.append(statement)

    engine = webhook_client.app.state.engine  # type: ignore[attr-defined]
    event.listen(engine, "before_cursor_execute", seen)
    try:
        # When a forged token, a link the message does not have and a message that does
        # not exist are clicked
        forged = webhook_client.get("/c/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
        no_link = webhook_client.get(f"/c/{tokens.click_token(SECRET, message_id, 7)}")
        no_message = webhook_client.get(f"/c/{tokens.click_token(SECRET, 10**12, 0)}")
    finally:
        event.remove(engine, "before_cursor_execute", seen)

    # Then all are 404s; the forged token costs no database work, each of the others one
    # read of its message (the statement that also reads the scanner rule's window), and
    # nothing was written
    assert [a.status_code for a in (forged, no_link, no_message)] == [404, 404, 404]
    # (SQLite's transactions begin IMMEDIATE, engine/store/db.py)
    # (and PostgreSQL's lock on the emails before the read: engine.store.clicks.messages)
    read = [s for s in statements if s != "BEGIN IMMEDIATE" and "pg_advisory_xact_lock" not in s]
    assert [s.split()[0] for s in read] == ["SELECT", "SELECT"]


def test_the_unsubscribe_page_asks_and_unsubscribes_nobody(
    webhook_client: TestClient, message: tuple[int, str], committed_engine: Engine
) -> None:
    message_id, email = message

    page = webhook_client.get(f"/u/{tokens.unsubscribe_token(SECRET, message_id)}")

    assert page.status_code == 200
    assert '<form method="post"' in page.text
    with make_sessionmaker(committed_engine)() as session:
        assert (
            session.scalar(
                select(func.count())
                .select_from(Suppression)
                .where(Suppression.email_hash == email_hash(email, SECRET))
            )
            == 0
        )


@pytest.mark.parametrize("multipart", [False, True])
def test_one_click_unsubscribe_is_immediate_and_idempotent(
    webhook_client: TestClient, message: tuple[int, str], committed_engine: Engine, multipart: bool
) -> None:
    message_id, email = message
    url = f"/u/{tokens.unsubscribe_token(SECRET, message_id)}"
    body = {"List-Unsubscribe": "One-Click"}

    answers = [
        webhook_client.post(url, files={k: (None, v) for k, v in body.items()})
        if multipart
        else webhook_client.post(url, data=body)
        for _ in range(2)
    ]

    assert [a.status_code for a in answers] == [200, 200]
    assert all("location" not in a.headers and "set-cookie" not in a.headers for a in answers)
    with make_sessionmaker(committed_engine)() as session:
        reasons = session.scalars(
            select(Suppression.reason).where(Suppression.email_hash == email_hash(email, SECRET))
        ).all()
        assert reasons == ["unsubscribe"]


def test_an_unsubscribe_is_dated_by_the_apps_clock(
    committed_url: str, message: tuple[int, str], committed_engine: Engine
) -> None:
    # Given an app whose clock reads a set instant
    message_id, email = message
    at = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
    settings = Settings(database_url=committed_url, secret_key=SECRET)
    with TestClient(create_app(settings, clock=lambda: at)) as client:
        # When the reader unsubscribes in one click
        answer = client.post(
            f"/u/{tokens.unsubscribe_token(SECRET, message_id)}",
            data={"List-Unsubscribe": "One-Click"},
        )
    # Then the suppression and its event are dated by that clock
    assert answer.status_code == 200
    with make_sessionmaker(committed_engine)() as session:
        suppressed = session.scalar(
            select(Suppression.created_at).where(
                Suppression.email_hash == email_hash(email, SECRET)
            )
        )
        occurred = session.scalar(
            select(Event.occurred_at).where(
                Event.kind == "supporter.unsubscribed",
                Event.supporter_id == _owner(session, message_id),
            )
        )
    assert [_utc(suppressed), _utc(occurred)] == [at, at]


def _owner(session: Session, message_id: int) -> int | None:
    return session.scalar(select(OutboxMessage.supporter_id).where(OutboxMessage.id == message_id))


def _utc(moment: datetime | None) -> datetime | None:
    """SQLite gives naive datetimes back (stored in UTC)."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def test_a_forged_unsubscribe_token_is_a_404(webhook_client: TestClient) -> None:
    assert (
        webhook_client.post("/u/not-a-token", data={"List-Unsubscribe": "One-Click"}).status_code
        == 404
    )


def _event(
    kind: str, message_id: int, email: str, at: datetime, **extra: object
) -> dict[str, object]:
    return {
        "email": email,
        "timestamp": int(at.timestamp()),
        "event": kind,
        "sg_event_id": unique("ev"),
        "sg_message_id": "abc.filter.0",
        "mobilise_message_id": str(message_id),
        **extra,
    }


def test_webhook_events_move_state_forward_only_and_suppress_bounces(
    webhook_client: TestClient, message: tuple[int, str], committed_engine: Engine
) -> None:
    message_id, email = message
    t0 = datetime.now(UTC) - timedelta(minutes=5)
    delivered = _event("delivered", message_id, email, t0 + timedelta(seconds=10))
    late_processed = _event("processed", message_id, email, t0)
    bounce = _event(
        "bounce",
        message_id,
        email,
        t0 + timedelta(seconds=20),
        type="bounce",
        reason="550 no such user",
    )

    first = post_events(webhook_client, [delivered, late_processed])
    again = post_events(webhook_client, [delivered, late_processed])  # SendGrid retries
    then = post_events(webhook_client, [bounce])

    assert first.json() == {"stored": 2, "duplicates": 0, "skipped": 0}
    assert again.json()["duplicates"] == 2
    assert then.status_code == 200
    with make_sessionmaker(committed_engine)() as session:
        row = session.get(OutboxMessage, message_id)
        assert row is not None
        assert row.delivery == "bounce"
        assert session.scalars(
            select(Suppression.reason).where(Suppression.email_hash == email_hash(email, SECRET))
        ).all() == ["bounce"]
        stored = session.scalars(
            select(Event.payload).where(
                Event.kind.like("sendgrid.%"), Event.supporter_id == row.supporter_id
            )
        ).all()
        assert len(stored) == 3
        assert all(email not in json.dumps(p) for p in stored)  # no address kept in events


def test_webhook_events_for_unknown_messages_are_accepted(webhook_client: TestClient) -> None:
    answer = post_events(
        webhook_client, [_event("delivered", 999_999_999, "x@example.fr", datetime.now(UTC))]
    )
    assert answer.status_code == 200


def test_unsigned_or_stale_webhooks_are_refused(
    webhook_client: TestClient, message: tuple[int, str]
) -> None:
    message_id, email = message
    body = json.dumps([_event("delivered", message_id, email, datetime.now(UTC))]).encode()

    unsigned = webhook_client.post("/webhooks/sendgrid", content=body)
    stale = post_events(
        webhook_client,
        [_event("delivered", message_id, email, datetime.now(UTC))],
        at=datetime.now(UTC) - timedelta(hours=1),
    )
    tampered = webhook_client.post(
        "/webhooks/sendgrid", content=body + b" ", headers=SIGNER.headers(body, datetime.now(UTC))
    )

    assert [unsigned.status_code, stale.status_code, tampered.status_code] == [401, 401, 401]


def test_a_webhook_batch_is_answered_5xx_when_the_database_is_down() -> None:
    settings = Settings(
        database_url="postgresql://postgres@127.0.0.1:1/none",
        sendgrid_webhook_public_key=SIGNER.public_key,
    )
    app = create_app(settings)
    with TestClient(app, raise_server_exceptions=False) as client:
        answer = post_events(client, [_event("delivered", 1, "x@example.fr", datetime.now(UTC))])
    assert answer.status_code >= 500


def test_a_blocked_bounce_through_the_webhook_suppresses_for_a_week_from_the_event(
    webhook_client: TestClient, message: tuple[int, str], committed_engine: Engine
) -> None:
    # Given a block at T for the message's address, then a hard bounce an hour later
    message_id, email = message
    t = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    blocked = _event("bounce", message_id, email, t, type="blocked", reason="550 blocked")
    hard = _event("bounce", message_id, email, t + timedelta(hours=1), type="bounce")
    sessions = make_sessionmaker(committed_engine)
    mine = Suppression.email_hash == email_hash(email, SECRET)

    # When SendGrid posts the block to the route
    assert post_events(webhook_client, [blocked]).status_code == 200

    # Then the address is blocked from T to T+7d
    with sessions() as session:
        supporter = session.scalar(select(Supporter.id).where(Supporter.email == email))
        assert supporter is not None
        in_force = partial(suppressions.reasons_in_force, session, mine)
        assert in_force(now=t + timedelta(days=1)) == {supporter: "blocked"}
        assert in_force(now=t + timedelta(days=8)) == {}

    # And when the hard bounce follows, it holds for good
    assert post_events(webhook_client, [hard]).status_code == 200
    with sessions() as session:
        rows = session.execute(select(Suppression.reason, Suppression.expires_at).where(mine))
        assert sorted((reason, ends) for reason, ends in rows) == [
            ("blocked", t + timedelta(days=7)),
            ("bounce", None),
        ]
        in_force = partial(suppressions.reasons_in_force, session, mine)
        assert in_force(now=t + timedelta(days=8)) == {supporter: "unsubscribed"}
