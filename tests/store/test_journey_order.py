"""Journeys keep their order, on SQLite and PostgreSQL, with injected time.

Given the seed journey, when a step's email waits to be sent (held as overdue, or planned
for after the quiet hours) or is not known to be sent (a request that timed out), then
the next step waits for it; and a wait counts from the moment that email was sent, so the
donation ask never comes less than three days after the update the supporter actually
received."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from engine.rules.conditions import Condition
from engine.send.transport import Ambiguous, MemoryTransport
from engine.store import claims, milestones
from engine.store.models import OutboxMessage
from engine.store.passes import tick
from engine.store.timeline import timeline
from tests.store.dispatch_helpers import run as dispatch
from tests.store.journey_helpers import (
    PETITION,
    declare,
    enrolment_of,
    outbox_of,
    seed,
    seed_campaign,
    sent_by,
    sign,
    supporter_id,
)

SIGNED = datetime(2026, 5, 13, 9, 30, tzinfo=UTC)  # a Wednesday, 11:30 in Paris
MILESTONE = datetime(2026, 5, 20, 10, 0, tzinfo=UTC)  # Wednesday, 12:00 in Paris


def given_alice_got_the_update_queued(session: Session, at: datetime) -> dict[str, Condition]:
    declared, petition_id = seed(session, SIGNED - timedelta(days=1))
    sign(session, petition_id, SIGNED, {"alice": (True, True)})
    tick(session, now=SIGNED, segments=declared.conditions)
    sent_by(session, SIGNED)
    milestones.check(session, petition_id=petition_id, count=140000, now=at)
    tick(session, now=at, segments=declared.conditions)
    assert outbox_of(session, "alice")[-1][:2] == ("update", "queued")
    return declared.conditions


def update_sent_at(session: Session) -> datetime | None:
    return session.scalar(select(OutboxMessage.sent_at).where(OutboxMessage.step_id == "update"))


def test_the_thank_you_still_to_send_holds_the_journey(session: Session) -> None:
    declared, petition_id = seed(session, SIGNED - timedelta(days=1))
    sign(session, petition_id, SIGNED, {"alice": (True, True)})
    milestones.check(session, petition_id=petition_id, count=140000, now=SIGNED)

    first = tick(session, now=SIGNED, segments=declared.conditions)

    # The milestone is reached, but the update waits until the thank-you is sent.
    assert first.queued == {("stop-reconnaissance-faciale", "thanked"): 1}
    assert enrolment_of(session, "alice") == ("active", "until-140000", None)
    # `explain` says why.
    entries = timeline(session, supporter_id(session, "alice"))
    assert "waits until the 'thanked' email is sent" in [e.detail for e in entries]
    sent_by(session, SIGNED)
    later = tick(session, now=SIGNED + timedelta(minutes=1), segments=declared.conditions)
    assert later.queued == {("stop-reconnaissance-faciale", "update"): 1}


def test_a_thank_you_not_known_to_be_sent_holds_the_journey(session: Session) -> None:
    # Given alice's thank-you, whose SendGrid request timed out: `ambiguous`
    declared, petition_id = seed(session, SIGNED - timedelta(days=1))
    sign(session, petition_id, SIGNED, {"alice": (True, True)})
    milestones.check(session, petition_id=petition_id, count=140000, now=SIGNED)
    tick(session, now=SIGNED, segments=declared.conditions)
    thanks = session.scalars(
        select(OutboxMessage.id).where(OutboxMessage.step_id == "thanked")
    ).one()
    transport = MemoryTransport(outcomes={str(thanks): Ambiguous(str(thanks), "timeout")})
    dispatch(session, transport, SIGNED)
    assert outbox_of(session, "alice") == [("thanked", "ambiguous", "timeout")]

    # When the next pass runs, the milestone reached: the update waits
    later = SIGNED + timedelta(minutes=1)
    assert tick(session, now=later, segments=declared.conditions).queued == {}
    entries = timeline(session, supporter_id(session, "alice"))
    assert "waits until the 'thanked' email is sent" in [e.detail for e in entries]

    # Then once SendGrid's events confirm the thank-you, the update is queued
    claims.settle_ambiguous(session, confirmed=[thanks], resend=[], now=later)
    after = tick(session, now=later + timedelta(minutes=1), segments=declared.conditions)
    assert after.queued == {("stop-reconnaissance-faciale", "update"): 1}


def test_a_held_update_holds_the_ask_until_three_days_after_it_is_sent(session: Session) -> None:
    named = given_alice_got_the_update_queued(session, MILESTONE)
    # The dispatch was down: a day later the update is held as overdue, unsent.
    held = claims.hold_overdue(
        session, now=MILESTONE + timedelta(days=1, hours=1), overdue_after=timedelta(days=1)
    )
    assert held == 1

    # Three and four days after it was queued, the ask still waits for the update.
    for days in (3, 4):
        summary = tick(session, now=MILESTONE + timedelta(days=days), segments=named)
        assert summary.queued == {}
        assert enrolment_of(session, "alice") == ("active", "pause", None)

    # A manager approves it on day 4 and it goes out then.
    approved = MILESTONE + timedelta(days=4, hours=1)
    claims.approve(session, now=approved)
    sent_by(session, approved)
    assert update_sent_at(session) == approved

    # The ask comes three days after the update was sent, not before.
    early = tick(session, now=approved + timedelta(days=3, minutes=-1), segments=named)
    assert early.queued == {}
    on_time = tick(session, now=approved + timedelta(days=3), segments=named)
    assert on_time.queued == {("stop-reconnaissance-faciale", "ask-first"): 1}


def test_the_pause_counts_from_the_morning_the_update_goes_out(session: Session) -> None:
    # The milestone is reached on Wednesday at 23:00 in Paris: quiet hours until 08:00,
    # and the send window opens at 09:00 on Thursday.
    late_evening = datetime(2026, 5, 20, 21, 0, tzinfo=UTC)
    named = given_alice_got_the_update_queued(session, late_evening)
    morning = datetime(2026, 5, 21, 7, 0, tzinfo=UTC)  # 09:00 in Paris
    planned = select(OutboxMessage.due_at).where(OutboxMessage.step_id == "update")
    assert session.scalar(planned) == morning
    sent_by(session, morning)
    assert update_sent_at(session) == morning

    # Three days after the evening it was queued, the ask still waits.
    assert tick(session, now=late_evening + timedelta(days=3), segments=named).queued == {}
    summary = tick(session, now=morning + timedelta(days=3), segments=named)
    assert summary.queued == {("stop-reconnaissance-faciale", "ask-first"): 1}


def test_an_email_dropped_at_dispatch_releases_the_journey(session: Session) -> None:
    named = given_alice_got_the_update_queued(session, MILESTONE)
    # The dispatcher's last look drops it (say, the consent was withdrawn meanwhile).
    session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.step_id == "update")
        .values(status="suppressed", reason="no-consent:updates")
    )

    summary = tick(session, now=MILESTONE + timedelta(days=3), segments=named)

    assert summary.queued == {("stop-reconnaissance-faciale", "ask-first"): 1}


def test_after_a_dropped_email_the_journey_goes_on_when_it_was_planned(
    session: Session,
) -> None:
    # Given a journey that sends on Mondays only: an update Alice gave no consent to, a
    # wait for a milestone already reached, then an ask she consented to.
    campaign, _ = declare(
        {
            "id": "mondays",
            "trigger": {"signed": PETITION},
            "send_window": {"days": ["mon"], "start": "07:00", "end": "16:00"},
            "steps": [
                {"id": "update", "send": {"template": "update", "consent": "updates"}},
                {"id": "until", "wait_until": {"milestone": 1000, "timeout": "30d"}},
                {"id": "ask", "send": {"template": "ask-first", "consent": "fundraising"}},
            ],
        }
    )
    petition_id = seed_campaign(session, campaign, SIGNED - timedelta(days=1))
    milestones.check(session, petition_id=petition_id, count=1000, now=SIGNED)
    sign(session, petition_id, SIGNED, {"alice": (False, True)})
    monday = datetime(2026, 5, 18, 5, 0, tzinfo=UTC)  # 07:00 in Paris

    # When passes run on Wednesday (she signs) and Thursday.
    for now in (SIGNED, SIGNED + timedelta(days=1)):
        tick(session, now=now, segments={})

    # Then the update, planned for Monday, is dropped, and the journey waits for Monday
    # before it goes on: the wait-until is not passed, the ask not queued.
    assert outbox_of(session, "alice") == [("update", "suppressed", "no-consent:updates")]
    assert enrolment_of(session, "alice") == ("active", "until", None)
    tick(session, now=monday, segments={})
    assert outbox_of(session, "alice")[-1] == ("ask", "queued", None)
