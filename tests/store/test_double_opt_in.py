"""Double opt-in on both databases, with injected time: a web signature of a petition that
asks for it waits for its address to be confirmed; only then does it count (unless the
petition counts unconfirmed ones), grant its consents and enter journeys. The `confirm`
email goes through the outbox and the dispatcher; the retention pass deletes what is left
unconfirmed past its expiry."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.render import tokens
from engine.rules import optin
from engine.rules.rights import Retention
from engine.rules.signature_rows import SignatureRow
from engine.send.transport import MemoryTransport
from engine.store import confirmations, data_export, passes, personal_data, petitions, retention
from engine.store.models import (
    Consent,
    Enrolment,
    OutboxMessage,
    PendingSignature,
    Petition,
    Signature,
    Supporter,
)
from tests.factories import petition_def
from tests.store import dispatch_helpers
from tests.store.journey_helpers import PETITION, declare, repository, seed_campaign, sign

THANKS = {
    "id": "merci",
    "trigger": {"signed": PETITION},
    "steps": [{"id": "thanked", "send": {"template": "thanked", "transactional": True}}],
}
DAYS = 7
RETENTION = Retention(contact=timedelta(days=1095), donor=timedelta(days=2190))


def _petition(session: Session, now: datetime, *, count_unconfirmed: bool = False) -> int:
    campaign, _ = declare(THANKS)
    petition = campaign.petition.model_copy(
        update={"double_opt_in": True, "count_unconfirmed": count_unconfirmed}
    )
    return seed_campaign(session, campaign.model_copy(update={"petition": petition}), now)


def _row(name: str, now: datetime, *, updates: bool = True) -> SignatureRow:
    return SignatureRow(
        1, f"{name}@example.org", name.title(), None, None, None, None, None, now,
        {"updates": updates},
    )  # fmt: skip


def _sign(session: Session, petition_id: int, name: str, now: datetime) -> int:
    """The web path's store half (engine/intake/signature_queue.py); the pending signature's id."""
    confirmations.sign(
        session,
        petition=petitions.facts(session, petition_id),
        rows=[_row(name, now)],
        now=now,
        expires_at=optin.expires_at(now, DAYS),
    )
    found = session.scalar(
        select(PendingSignature.id)
        .join(Supporter, Supporter.id == PendingSignature.supporter_id)
        .where(Supporter.email == f"{name}@example.org")
    )
    assert found is not None
    return found


def _count(session: Session, petition_id: int) -> int:
    return session.execute(
        select(Petition.signature_count).where(Petition.id == petition_id)
    ).scalar_one()


def _granted(session: Session, name: str) -> list[tuple[str, bool, datetime]]:
    rows = session.execute(
        select(Consent.purpose, Consent.granted, Consent.recorded_at)
        .join(Supporter, Supporter.id == Consent.supporter_id)
        .where(Supporter.email == f"{name}@example.org")
    ).all()
    return [(p, g, at) for p, g, at in rows]


def _enrolled(session: Session, name: str) -> int:
    return session.execute(
        select(func.count())
        .select_from(Enrolment)
        .join(Supporter, Supporter.id == Enrolment.supporter_id)
        .where(Supporter.email == f"{name}@example.org")
    ).scalar_one()


def _tick(session: Session, now: datetime) -> None:
    passes.tick(session, now=now, segments=repository().conditions)


def test_a_signature_counts_grants_and_enrols_only_once_confirmed(
    session: Session, now: datetime
) -> None:
    # Given a petition with double opt-in, and someone who signs and ticks `updates`
    petition_id = _petition(session, now)
    pending = _sign(session, petition_id, "ines", now)
    # When the journey pass runs, past the cursor's margin
    _tick(session, now + timedelta(minutes=10))
    # Then nothing counts, nothing is granted, nobody is enrolled: a confirmation waits
    assert _count(session, petition_id) == 0
    assert _granted(session, "ines") == []
    assert _enrolled(session, "ines") == 0
    confirmation = session.execute(
        select(OutboxMessage.template, OutboxMessage.status, OutboxMessage.transactional).where(
            OutboxMessage.enrolment_id == optin.outbox_key(pending)[0]
        )
    ).one()
    assert tuple(confirmation) == ("confirm", "queued", True)

    # When they confirm an hour later, and the pass runs
    confirmed_at = now + timedelta(hours=1)
    assert confirmations.confirm(session, pending, now=confirmed_at) == "confirmed"
    _tick(session, confirmed_at)
    # Then the signature counts, dated at the confirmation, with its consent; they enrol
    assert _count(session, petition_id) == 1
    assert _granted(session, "ines") == [("updates", True, confirmed_at)]
    assert _enrolled(session, "ines") == 1
    # And a second click changes nothing
    assert confirmations.confirm(session, pending, now=confirmed_at) == "already"
    assert _count(session, petition_id) == 1


def test_the_confirm_email_carries_a_signed_link_that_expires(
    session: Session, now: datetime
) -> None:
    # Given a pending signature
    petition_id = _petition(session, now)
    pending = _sign(session, petition_id, "ines", now)
    # When the dispatcher runs
    transport = MemoryTransport()
    dispatch_helpers.run(session, transport, now)
    # Then the `confirm` email leaves, with its link, outside any journey
    [message] = transport.sent
    assert message.to.email == "ines@example.org"
    assert message.headers["X-Mobilise-Step"] == optin.STEP
    base = f"{dispatch_helpers.ENVELOPE.base_url}/confirm/"
    token = message.html.split(base, 1)[1].split('"', 1)[0]
    secret = dispatch_helpers.ENVELOPE.secret
    # And the link names the pending signature until it expires, DAYS later
    assert tokens.read_confirm_token(secret, token, now + timedelta(days=DAYS - 1)) == pending
    assert tokens.read_confirm_token(secret, token, now + timedelta(days=DAYS)) is None
    assert tokens.read_rights_token(secret, token) is None
    # And the confirmation page refuses it once expired
    assert confirmations.read(session, pending, now=now + timedelta(days=DAYS)) is None
    assert confirmations.confirm(session, pending, now=now + timedelta(days=DAYS)) is None


def test_signing_again_before_confirming_asks_once(session: Session, now: datetime) -> None:
    # Given a pending signature
    petition_id = _petition(session, now)
    pending = _sign(session, petition_id, "ines", now)
    # When the same address signs again a minute later
    assert _sign(session, petition_id, "ines", now + timedelta(minutes=1)) == pending
    # Then one confirmation email is queued
    queued = session.scalar(select(func.count()).where(OutboxMessage.enrolment_id < 0))
    assert queued == 1


def test_counting_unconfirmed_signatures_still_enrols_only_the_confirmed(
    session: Session, now: datetime
) -> None:
    # Given a petition that counts unconfirmed signatures, two signers
    petition_id = _petition(session, now, count_unconfirmed=True)
    pending = _sign(session, petition_id, "ines", now)
    _sign(session, petition_id, "noe", now)
    # Then both count at once, without consents
    assert _count(session, petition_id) == 2
    assert _granted(session, "ines") == []
    # When the pass runs long after (the enrolment cursor passes both signatures)
    later = now + timedelta(days=1)
    _tick(session, later)
    assert _enrolled(session, "ines") == 0
    # When one of them confirms, and the pass runs
    assert confirmations.confirm(session, pending, now=later) == "confirmed"
    _tick(session, later)
    # Then they are enrolled and granted, the count unchanged; the other waits still
    assert _enrolled(session, "ines") == 1
    assert _granted(session, "ines") == [("updates", True, later)]
    assert _enrolled(session, "noe") == 0
    assert _count(session, petition_id) == 2


def test_retention_deletes_what_stays_unconfirmed_past_its_expiry(
    session: Session, now: datetime
) -> None:
    # Given a pending signature of a new address, one of an address that signed before,
    # and one that was confirmed
    petition_id = _petition(session, now)
    other = _petition_named(session, now)
    sign(session, other, now, {"known": (True, False)})
    _sign(session, petition_id, "ines", now)
    _sign(session, petition_id, "known", now)
    confirmed = _sign(session, petition_id, "sure", now)
    confirmations.confirm(session, confirmed, now=now + timedelta(hours=1))
    # When the retention pass runs the day before the expiry, then at it
    before = retention.run(session, RETENTION, now + timedelta(days=DAYS) - timedelta(seconds=1))
    assert (before.unconfirmed, before.anonymised) == (0, 0)
    done = retention.run(session, RETENTION, now + timedelta(days=DAYS))
    # Then the unconfirmed signatures are gone, and so is the address they alone brought
    assert (done.unconfirmed, done.anonymised) == (2, 1)
    assert session.scalar(select(func.count()).select_from(PendingSignature)) == 0
    emails = set(session.scalars(select(Supporter.email)))
    assert {"known@example.org", "sure@example.org"} <= emails
    assert "ines@example.org" not in emails
    # And no confirmation email that was never sent leaves now
    transport = MemoryTransport()
    dispatch_helpers.run(session, transport, now + timedelta(days=DAYS))
    assert transport.sent == []
    assert _count(session, petition_id) == 1


def test_an_unconfirmed_signature_counted_stays_counted_once_purged(
    session: Session, now: datetime
) -> None:
    # Given a petition that counts unconfirmed signatures, and one never confirmed
    petition_id = _petition(session, now, count_unconfirmed=True)
    _sign(session, petition_id, "ines", now)
    # When its expiry passes
    done = retention.run(session, RETENTION, now + timedelta(days=DAYS))
    # Then the count stays exact, and the signature is an anonymous supporter's
    assert (done.unconfirmed, done.anonymised) == (1, 1)
    assert _count(session, petition_id) == 1
    signer = session.execute(
        select(Supporter.email, Supporter.erased_at)
        .join(Signature, Signature.supporter_id == Supporter.id)
        .where(Signature.petition_id == petition_id)
    ).one()
    assert signer[0] is None
    assert signer[1] is not None


def test_erasure_forgets_a_pending_signature_and_its_email(session: Session, now: datetime) -> None:
    # Given a pending signature whose confirmation email was sent
    petition_id = _petition(session, now)
    _sign(session, petition_id, "ines", now)
    dispatch_helpers.run(session, MemoryTransport(), now)
    supporter = personal_data.find(session, "ines@example.org")
    exported = data_export.export(session, supporter, actor="cli", now=now)
    assert [p["petition"] for p in exported["pending_signatures"]] == [PETITION]
    assert [e["step"] for e in exported["emails"]] == [optin.STEP]
    # When they ask for erasure
    done = personal_data.erase(
        session, personal_data.one(supporter), now=now, actor="cli", secret="s"
    )
    # Then the pending signature is gone, and the email's copy is named for deletion
    assert session.scalar(select(func.count()).select_from(PendingSignature)) == 0
    assert len(done.message_ids) == 1


def _petition_named(session: Session, now: datetime) -> int:
    """Another petition, without double opt-in."""
    return petitions.upsert(session, petition_def(), now=now).id
