"""The seed journey end to end on SQLite and PostgreSQL, with injected time.

Given the seed campaign synced and people signing, when passes run at chosen instants,
then each person gets exactly the emails DESIGN.md describes, and replays change nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.store import donations, milestones
from engine.store.donations import DonationRow
from engine.store.models import OutboxMessage, Suppression
from engine.store.passes import tick
from tests.store.journey_helpers import (
    enrolment_of,
    outbox_of,
    seed,
    sent_by,
    sign,
    supporter_id,
)

SIGNED = datetime(2026, 5, 13, 9, 30, tzinfo=UTC)  # a Wednesday, 11:30 in Paris
MILESTONE = datetime(2026, 5, 20, 10, 0, tzinfo=UTC)


def outbox_size(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(OutboxMessage)) or 0


def test_the_seed_journey_from_signature_to_donation_ask(session: Session) -> None:
    declared, petition_id = seed(session, SIGNED - timedelta(days=1))
    named = declared.conditions
    sign(
        session,
        petition_id,
        SIGNED,
        {
            "alice": (True, True),
            "bob": (True, True),
            "carol": (False, False),
            "dave": (True, True),
            "erin": (True, True),
        },
    )
    donations.record(
        session,
        [
            DonationRow(
                "bob@example.org", 3000, "EUR", SIGNED - timedelta(days=90), "one-off", "gift-bob-1"
            )
        ],
        now=SIGNED,
    )

    # When the first pass runs, everyone is thanked (transactional) and waits for 140,000.
    first = tick(session, now=SIGNED, segments=named)
    assert first.enrolled == {"stop-reconnaissance-faciale": 5}
    assert first.queued == {("stop-reconnaissance-faciale", "thanked"): 5}
    assert enrolment_of(session, "alice") == ("active", "until-140000", None)
    # A replay at the same instant changes nothing.
    size = outbox_size(session)
    again = tick(session, now=SIGNED, segments=named)
    assert again.changed == 0
    assert outbox_size(session) == size
    # The dispatcher sends the thank-yous.
    sent_by(session, SIGNED)

    # Erin unsubscribes; the petition reaches 140,000; then the update goes out.
    session.add(
        Suppression(
            supporter_id=supporter_id(session, "erin"),
            email_hash="x" * 64,
            reason="unsubscribe",
            created_at=SIGNED + timedelta(hours=1),
        )
    )
    session.flush()
    milestones.check(session, petition_id=petition_id, count=140000, now=MILESTONE)
    tick(session, now=MILESTONE, segments=named)
    assert outbox_of(session, "alice") == [("thanked", "sent", None), ("update", "queued", None)]
    assert outbox_of(session, "carol")[-1] == ("update", "suppressed", "no-consent:updates")
    assert enrolment_of(session, "erin") == ("exited", "until-140000", "unsubscribed")
    sent_by(session, MILESTONE)

    # Dave gives during the pause: he leaves as converted and is never asked.
    donations.record(
        session,
        [
            DonationRow(
                "dave@example.org",
                1500,
                "EUR",
                MILESTONE + timedelta(days=1),
                "one-off",
                "gift-dave-1",
            )
        ],
        now=MILESTONE + timedelta(days=1),
    )
    tick(session, now=MILESTONE + timedelta(days=1, hours=1), segments=named)
    assert enrolment_of(session, "dave") == ("exited", "pause", "converted")

    # Three days after the update: donors get the additional-gift ask, others the first one.
    ask = MILESTONE + timedelta(days=3)
    tick(session, now=ask, segments=named)
    assert outbox_of(session, "alice")[-1] == ("ask-first", "queued", None)
    assert outbox_of(session, "bob")[-1] == ("ask-additional", "queued", None)
    assert outbox_of(session, "carol")[-1] == ("ask-first", "suppressed", "no-consent:fundraising")
    assert [s for s, _, _ in outbox_of(session, "dave")] == ["thanked", "update"]
    assert enrolment_of(session, "alice") == ("exited", "ask-first", "completed")
    assert tick(session, now=ask, segments=named).changed == 0


def test_imported_signers_without_enrol_and_paper_rows_receive_nothing(session: Session) -> None:
    declared, petition_id = seed(session, SIGNED)
    sign(session, petition_id, SIGNED, {"frank": (True, True)}, enrol=False)

    summary = tick(session, now=SIGNED, segments=declared.conditions)

    assert summary.enrolled == {}
    assert outbox_size(session) == 0


def test_signers_of_long_ago_enrolled_today_are_not_thanked_but_go_on(session: Session) -> None:
    declared, petition_id = seed(session, SIGNED - timedelta(days=800))
    # A file signed two years ago, imported with --enrol, and one recent signer.
    sign(session, petition_id, SIGNED - timedelta(days=730), {"old": (True, True)})
    sign(session, petition_id, SIGNED - timedelta(days=29), {"recent": (True, True)})

    tick(session, now=SIGNED, segments=declared.conditions)

    assert outbox_of(session, "old") == [("thanked", "suppressed", "signed-too-long-ago")]
    assert outbox_of(session, "recent") == [("thanked", "queued", None)]
    assert enrolment_of(session, "old") == ("active", "until-140000", None)
