"""The dispatch pass through real transports: `.eml` files, SMTP and the local SendGrid.

Given the seed campaign and signers, when the dispatcher sends through the file transport
or the SDK to the schema-validating SendGrid stand-in (with faults injected), then every
email leaves once with its headers, transient refusals are retried, one bad address fails
alone, and refused credentials stop the pass without losing anything.
"""

from __future__ import annotations

import email
from datetime import UTC, datetime, timedelta
from email.message import Message
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from engine.send.dispatcher import SendingRefused
from engine.send.files import FileTransport
from engine.send.sendgrid_api import SendGridTransport
from engine.store.models import OutboxMessage
from engine.store.passes import tick
from tests.fakes.sendgrid_server import API_KEY, Delay, FakeSendGrid, Reply
from tests.fakes.smtp_server import running_smtp_server, self_signed_certificate
from tests.store.dispatch_helpers import run
from tests.store.journey_helpers import seed, sign, supporter_id

SIGNED = datetime(2026, 5, 13, 9, 30, tzinfo=UTC)  # the `now` fixture: the fake's clock


def signers(session: Session, *names: str) -> None:
    declared, petition_id = seed(session, SIGNED - timedelta(days=1))
    sign(session, petition_id, SIGNED, {name: (True, True) for name in names})
    tick(session, now=SIGNED, segments=declared.conditions)


def states(session: Session) -> dict[str, str]:
    session.expire_all()
    rows = session.execute(
        select(OutboxMessage.supporter_id, OutboxMessage.status).order_by(OutboxMessage.id)
    ).all()
    return {str(supporter): status for supporter, status in rows}


def sendgrid(server: FakeSendGrid, now: datetime) -> SendGridTransport:
    return SendGridTransport(API_KEY, host=server.url, clock=lambda: now, timeout=10)


def test_the_seed_journey_from_signature_to_an_eml_file(session: Session, tmp_path: Path) -> None:
    # given a signer, when the journey pass and the dispatch pass run
    signers(session, "alice")
    transport = FileTransport(tmp_path / "outbox", clock=lambda: SIGNED)
    run(session, transport, SIGNED)
    # then one .eml names the message and carries both parts and every Mobilise header
    row = session.scalars(select(OutboxMessage)).one()
    files = list((tmp_path / "outbox").glob("*.eml"))
    assert [f.name for f in files] == [f"{row.id}.eml"]
    parsed: Message = email.message_from_bytes(files[0].read_bytes())
    assert parsed["To"].endswith("<alice@example.org>")
    assert parsed["X-Mobilise-Journey"] == "stop-reconnaissance-faciale"
    assert parsed["X-Mobilise-Step"] == "thanked"
    assert parsed["X-Mobilise-Message"] == str(row.id)
    assert {part.get_content_type() for part in parsed.walk()} >= {"text/plain", "text/html"}
    assert (row.status, row.provider_id) == ("sent", f"{row.id}.eml")


def test_every_message_reaches_sendgrid_once(
    session: Session, sendgrid_server: FakeSendGrid
) -> None:
    signers(session, "alice", "bob", "carol")

    run(session, sendgrid(sendgrid_server, SIGNED), SIGNED)
    run(session, sendgrid(sendgrid_server, SIGNED), SIGNED + timedelta(minutes=1))

    ids = sorted(sendgrid_server.accepted_message_ids())
    assert ids == sorted(str(i) for i in session.scalars(select(OutboxMessage.id)))
    assert set(states(session).values()) == {"sent"}
    personalisation = sendgrid_server.accepted[0].body["personalizations"][0]
    assert set(personalisation["headers"]) >= {
        "X-Mobilise-Journey",
        "X-Mobilise-Step",
        "X-Mobilise-Message",
    }


def test_a_429_is_retried_after_the_reset_then_sent(
    session: Session, sendgrid_server: FakeSendGrid
) -> None:
    signers(session, "alice", "bob")
    reset = SIGNED + timedelta(minutes=5)
    sendgrid_server.faults.append(
        Reply(429, headers={"X-RateLimit-Reset": str(int(reset.timestamp()))})
    )

    run(session, sendgrid(sendgrid_server, SIGNED), SIGNED)

    assert set(states(session).values()) == {"queued"}
    due = set(session.scalars(select(OutboxMessage.due_at)))
    assert min(due) >= SIGNED
    assert reset in due  # the refused request's messages wait for the reset
    run(session, sendgrid(sendgrid_server, reset), reset)
    assert set(states(session).values()) == {"sent"}
    assert len(sendgrid_server.accepted_message_ids()) == 2


def test_a_5xx_is_retried_with_backoff(session: Session, sendgrid_server: FakeSendGrid) -> None:
    signers(session, "alice")
    sendgrid_server.faults.append(Reply(503))

    run(session, sendgrid(sendgrid_server, SIGNED), SIGNED)
    row = session.scalars(select(OutboxMessage)).one()
    assert (row.status, row.attempts) == ("queued", 1)
    later = row.due_at
    run(session, sendgrid(sendgrid_server, later), later)

    assert set(states(session).values()) == {"sent"}
    assert sendgrid_server.accepted_message_ids() == [str(row.id)]


def test_a_bad_address_fails_alone(session: Session, sendgrid_server: FakeSendGrid) -> None:
    signers(session, "alice", "bob", "carol")
    sendgrid_server.bad_addresses.add("bob@example.org")

    run(session, sendgrid(sendgrid_server, SIGNED), SIGNED)

    found = states(session)
    bob = str(supporter_id(session, "bob"))
    assert found.pop(bob) == "failed"
    assert set(found.values()) == {"sent"}
    assert len(sendgrid_server.accepted_message_ids()) == 2


def test_a_401_stops_the_pass_and_loses_nothing(
    session: Session, sendgrid_server: FakeSendGrid
) -> None:
    signers(session, "alice", "bob")
    sendgrid_server.faults.append(Reply(401))

    with pytest.raises(SendingRefused):
        run(session, sendgrid(sendgrid_server, SIGNED), SIGNED)

    assert set(states(session).values()) == {"queued"}
    assert sendgrid_server.accepted_message_ids() == []
    run(session, sendgrid(sendgrid_server, SIGNED), SIGNED + timedelta(minutes=1))
    assert set(states(session).values()) == {"sent"}


def test_a_timeout_after_sending_waits_for_events_and_never_doubles(
    session: Session, sendgrid_server: FakeSendGrid
) -> None:
    # given a request SendGrid takes but answers too late for the client
    signers(session, "alice", "bob")
    sendgrid_server.faults.append(Delay(1.5, processed=True))
    impatient = SendGridTransport(
        API_KEY, host=sendgrid_server.url, clock=lambda: SIGNED, timeout=0.3
    )

    run(session, impatient, SIGNED)

    assert "ambiguous" in states(session).values()
    assert "sending" not in states(session).values()
    # when the event webhook reports what SendGrid processed, and the wait is over
    session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_([int(i) for i in sendgrid_server.accepted_message_ids()]))
        .values(delivery="processed", delivery_at=SIGNED)
    )
    run(session, sendgrid(sendgrid_server, SIGNED), SIGNED + timedelta(minutes=31))
    # then every message is sent, and none reached SendGrid twice
    assert set(states(session).values()) == {"sent"}
    received = sendgrid_server.accepted_message_ids()
    assert sorted(received) == sorted(set(received))
    assert len(received) == 2


def test_the_seed_thank_you_over_smtp_with_starttls(session: Session, tmp_path: Path) -> None:
    # given an SMTP relay offering STARTTLS, and two signers, one refused by the relay
    certificate = self_signed_certificate(tmp_path)
    signers(session, "alice", "refuse-bob")
    with running_smtp_server(certificate) as server:
        transport = server.transport(certificate, SIGNED)
        # when the dispatcher sends through it
        run(session, transport, SIGNED)
        received = server.handler.received
    # then Alice's email arrived over TLS with its headers, and Bob's failed alone
    assert [r.rcpt_tos for r in received] == [["alice@example.org"]]
    assert received[0].tls
    assert received[0].message["X-Mobilise-Step"] == "thanked"
    found = states(session)
    assert found.pop(str(supporter_id(session, "refuse-bob"))) == "failed"
    assert set(found.values()) == {"sent"}
