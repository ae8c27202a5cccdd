"""Supporters' rights on SQLite and PostgreSQL: restriction, erasure, export, rectification,
and the audit log that records each of them.

Given the seed campaign and signers, when a right is exercised at an injected instant,
then the journey pass and the dispatcher act on it, counts stay exact, and the log says
who did it, to whom (by id), and when.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from engine.errors import Invalid, NotFound
from engine.rules.rights import rectification
from engine.rules.supporters import email_hash
from engine.send.transport import MemoryTransport
from engine.store import audit, clicks, data_export, donations, events, personal_data, restrictions
from engine.store.donations import DonationRow
from engine.store.models import (
    AuditEntry,
    Click,
    Consent,
    Enrolment,
    Event,
    Milestone,
    OutboxMessage,
    Petition,
    Signature,
    Supporter,
    Suppression,
)
from engine.store.passes import tick
from tests.store.dispatch_helpers import run
from tests.store.journey_helpers import enrolment_of, outbox_of, seed, sign, supporter_id

SIGNED = datetime(2026, 5, 13, 9, 30, tzinfo=UTC)  # a Wednesday, 11:30 in Paris
SECRET = "test-secret"


def signed(session: Session, people: dict[str, tuple[bool, bool]]) -> dict[str, object]:
    declared, petition_id = seed(session, SIGNED - timedelta(days=1))
    sign(session, petition_id, SIGNED, people)
    return declared.conditions  # type: ignore[return-value]


def reach_140000(session: Session, at: datetime) -> None:
    session.execute(update(Milestone).where(Milestone.threshold == 140_000).values(reached_at=at))


# --- restriction


def test_a_restricted_supporter_is_not_enrolled(session: Session) -> None:
    segments = signed(session, {"alice": (True, True), "bob": (True, True)})
    restrictions.restrict(session, supporter_id(session, "alice"), actor=audit.CLI, now=SIGNED)

    tick(session, now=SIGNED, segments=segments)  # type: ignore[arg-type]

    assert outbox_of(session, "alice") == []
    assert outbox_of(session, "bob") == [("thanked", "queued", None)]
    alice = supporter_id(session, "alice")
    assert session.scalar(select(func.count()).where(Enrolment.supporter_id == alice)) == 0


def test_restriction_drops_a_queued_email_and_freezes_the_journey_until_lifted(
    session: Session,
) -> None:
    segments = signed(session, {"alice": (True, True), "bob": (True, True)})
    tick(session, now=SIGNED, segments=segments)  # type: ignore[arg-type]
    alice = supporter_id(session, "alice")
    # Given alice's thank-you queued, when she restricts processing before it leaves
    assert restrictions.restrict(session, alice, actor=audit.CLI, now=SIGNED)
    assert not restrictions.restrict(session, alice, actor=audit.CLI, now=SIGNED)

    # Then the dispatcher's last look drops it, and sends bob's
    report = run(session, MemoryTransport(), SIGNED)
    assert report.outcomes == {"sent": 1, "suppressed": 1}
    assert outbox_of(session, "alice") == [("thanked", "suppressed", "restricted")]

    # And no journey step is taken for her: bob gets the update, she stays where she was
    reach_140000(session, SIGNED + timedelta(hours=1))
    later = SIGNED + timedelta(days=1)
    tick(session, now=later, segments=segments)  # type: ignore[arg-type]
    assert [s for s, _, _ in outbox_of(session, "bob")] == ["thanked", "update"]
    assert outbox_of(session, "alice") == [("thanked", "suppressed", "restricted")]
    assert enrolment_of(session, "alice") == ("active", "until-140000", None)

    # When the restriction is lifted, the journey goes on from there
    assert restrictions.restrict(session, alice, actor=audit.CLI, now=later, lift=True)
    tick(session, now=later + timedelta(minutes=1), segments=segments)  # type: ignore[arg-type]
    assert [s for s, _, _ in outbox_of(session, "alice")] == ["thanked", "update"]
    assert [(e.actor, e.action) for e in audit.entries(session, supporter_id=alice)] == [
        ("cli", "restrict"),
        ("cli", "lift-restriction"),
    ]


def test_a_restricted_supporters_enrolment_takes_no_exit_either(session: Session) -> None:
    segments = signed(session, {"alice": (True, True)})
    tick(session, now=SIGNED, segments=segments)  # type: ignore[arg-type]
    restrictions.restrict(session, supporter_id(session, "alice"), actor=audit.CLI, now=SIGNED)
    # A gift would end the journey (its goal): not while processing is restricted
    donations.record(
        session,
        [DonationRow("alice@example.org", 2000, "EUR", SIGNED, "one-off", "gift-restricted")],
        now=SIGNED,
    )
    tick(session, now=SIGNED + timedelta(hours=1), segments=segments)  # type: ignore[arg-type]
    assert enrolment_of(session, "alice") == ("active", "until-140000", None)


# --- erasure


def _history(session: Session) -> int:
    """alice: signed with consents, thanked (sent), clicked, bounced once, gave; returns the
    id of her thank-you."""
    segments = signed(session, {"alice": (True, True), "bob": (True, True)})
    tick(session, now=SIGNED, segments=segments)  # type: ignore[arg-type]
    run(session, MemoryTransport(), SIGNED)
    alice = supporter_id(session, "alice")
    message = session.scalar(select(OutboxMessage.id).where(OutboxMessage.supporter_id == alice))
    assert message is not None
    clicks.record(session, message_id=message, position=0, supporter_id=alice, now=SIGNED)
    events.append(
        session,
        kind="sendgrid.deferred",
        source_key="sendgrid:deferred-alice",
        occurred_at=SIGNED,
        supporter_id=alice,
        payload={"message_id": message, "reason": "452 4.2.2 <alice@example.org> mailbox full"},
    )
    donations.record(
        session,
        [DonationRow("alice@example.org", 3000, "EUR", SIGNED, "one-off", "gift-alice")],
        now=SIGNED,
    )
    return message


def test_the_export_holds_everything_stored_about_the_supporter(session: Session) -> None:
    message = _history(session)
    alice = personal_data.find(session, "  Alice@Example.org ")

    data = data_export.export(session, alice, actor=audit.CLI, now=SIGNED)

    assert data["supporter"]["email"] == "alice@example.org"
    assert data["supporter"]["first_name"] == "Alice"
    assert {(c["purpose"], c["granted"], c["wording_version"]) for c in data["consents"]} == {
        ("updates", True, "2024-05-v1"),
        ("fundraising", True, "2024-05-v1"),
    }
    assert all(c["wording"] and c["source"] for c in data["consents"])
    assert [s["petition"] for s in data["signatures"]] == ["stop-reconnaissance-faciale"]
    assert [(e["id"], e["journey"], e["step"], e["status"]) for e in data["emails"]] == [
        (message, "stop-reconnaissance-faciale", "thanked", "sent")
    ]
    assert data["emails"][0]["sent_at"] == SIGNED.isoformat()
    assert [(c["message_id"], c["link_position"]) for c in data["clicks"]] == [(message, 0)]
    assert data["clicks"][0]["url"].startswith("https://")
    assert [(g["amount_cents"], g["external_id"], g["subscription_id"]) for g in data["gifts"]] == [
        (3000, "gift-alice", None)
    ]
    assert [(j["journey"], j["state"]) for j in data["journeys"]] == [
        ("stop-reconnaissance-faciale", "active")
    ]
    assert {e["kind"] for e in data["events"]} == {"link.clicked", "sendgrid.deferred"}
    assert data["suppressions"] == []
    assert data["requests"] == [{"action": "export", "at": SIGNED.isoformat(), "by": "cli"}]


def test_erasure_removes_personal_data_and_keeps_counts(session: Session) -> None:
    message = _history(session)
    alice = supporter_id(session, "alice")
    petition = session.scalar(select(Petition.signature_count))
    later = SIGNED + timedelta(hours=2)

    done = personal_data.erase(
        session, personal_data.one(alice), now=later, actor=audit.api_key(7), secret=SECRET
    )

    assert done.supporters == 1
    assert done.message_ids == [message]
    person = session.get(Supporter, alice)
    assert person is not None
    session.refresh(person)
    assert (person.email, person.first_name, person.last_name, person.postal_code) == (
        None,
        None,
        None,
        None,
    )
    assert person.erased_at == later
    assert person.last_contact_at is None
    # Counts stay exact: the signature row, the email sent and the gift are kept, anonymous
    assert session.scalar(select(Petition.signature_count)) == petition
    assert session.scalar(select(func.count()).where(Signature.supporter_id == alice)) == 1
    assert session.scalar(select(OutboxMessage.status).where(OutboxMessage.id == message)) == "sent"
    assert session.scalar(select(func.count()).where(Click.message_id == message)) == 1
    assert session.scalar(select(func.count()).where(Click.supporter_id == alice)) == 0
    payloads = list(session.scalars(select(Event.payload).where(Event.supporter_id == alice)))
    assert len(payloads) == 2
    assert all(p == {} for p in payloads)  # the bounce's text named the address
    assert enrolment_of(session, "bob")[0] == "active"
    assert session.execute(
        select(Enrolment.state, Enrolment.exit_reason).where(Enrolment.supporter_id == alice)
    ).one() == ("exited", "erased")
    # The keyed hash stays: the address is never emailed or imported again
    kept = session.execute(
        select(Suppression.email_hash, Suppression.reason).where(Suppression.supporter_id == alice)
    ).all()
    assert kept == [(email_hash("alice@example.org", SECRET), "erased")]
    assert [(e.actor, e.action) for e in audit.entries(session, supporter_id=alice)] == [
        ("apikey:7", "erase")
    ]
    # Nothing stored anywhere still holds the address
    with pytest.raises(NotFound):
        personal_data.find(session, "alice@example.org")
    assert "alice@example.org" not in str(
        data_export.export(session, alice, actor=audit.CLI, now=later)
    )


def test_an_erased_supporter_is_never_sent_what_was_queued(session: Session) -> None:
    segments = signed(session, {"alice": (True, True)})
    tick(session, now=SIGNED, segments=segments)  # type: ignore[arg-type]
    alice = supporter_id(session, "alice")

    personal_data.erase(
        session, personal_data.one(alice), now=SIGNED, actor=audit.CLI, secret=SECRET
    )
    report = run(session, MemoryTransport(), SIGNED)

    assert report.batches == 0
    assert session.execute(
        select(OutboxMessage.status, OutboxMessage.reason).where(
            OutboxMessage.supporter_id == alice
        )
    ).all() == [("suppressed", "erased")]


# --- rectification


def test_rectification_normalises_like_intake_and_is_logged_by_field(session: Session) -> None:
    signed(session, {"alice": (True, True), "bob": (True, True)})
    alice = supporter_id(session, "alice")

    change = rectification(
        {"email": "  Alice.Martin@EXAMPLE.org", "last_name": "  Martin  ", "postal_code": "69001"}
    )
    personal_data.rectify(session, alice, change, actor=audit.CLI, now=SIGNED)

    person = session.get(Supporter, alice)
    assert person is not None
    session.refresh(person)
    assert (person.email, person.last_name, person.postal_code, person.departement) == (
        "alice.martin@example.org",
        "Martin",
        "69001",
        "69",
    )
    assert person.region == "Auvergne-Rhône-Alpes"
    assert audit.entries(session, supporter_id=alice)[0].detail == {
        "fields": ["departement", "email", "last_name", "postal_code", "region"]
    }
    # Another supporter's address is refused
    with pytest.raises(Invalid, match="another supporter"):
        personal_data.rectify(
            session, alice, rectification({"email": "bob@example.org"}), actor="cli", now=SIGNED
        )


def test_a_rectification_names_every_bad_field() -> None:
    with pytest.raises(Invalid) as raised:
        rectification({"email": "not-an-address", "postal_code": "ABCDE", "iban": "x"})
    assert {p.field for p in raised.value.problems} == {"email", "postal_code", "iban"}


# --- the audit log


def test_the_audit_log_refuses_updates_and_deletes(session: Session) -> None:
    audit.record(session, actor=audit.CLI, action="export", now=SIGNED, supporter_id=1)
    for statement in (
        update(AuditEntry).values(action="nothing"),
        delete(AuditEntry),
    ):
        with pytest.raises(DBAPIError, match="append-only"), session.begin_nested():
            session.execute(statement)
    assert [e.action for e in audit.entries(session, supporter_id=1)] == ["export"]


def test_the_consents_of_a_restricted_supporter_are_kept(session: Session) -> None:
    signed(session, {"alice": (True, False)})
    alice = supporter_id(session, "alice")
    before = session.scalar(select(func.count()).where(Consent.supporter_id == alice))
    restrictions.restrict(session, alice, actor=audit.CLI, now=SIGNED)
    person = session.get(Supporter, alice)
    assert person is not None
    session.refresh(person)
    assert person.restricted_at == SIGNED
    assert person.email == "alice@example.org"
    assert session.scalar(select(func.count()).where(Consent.supporter_id == alice)) == before
