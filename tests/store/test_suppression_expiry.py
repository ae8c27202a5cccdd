"""Blocks suppress for a while; opt-outs for good. SQLite and PostgreSQL, injected time.

Given SendGrid events applied as the webhook applies them (a `blocked` bounce, a hard
bounce), when the journey pass and the dispatcher run at chosen instants, then a block at T
suppresses the supporter's emails at T+1d (reason `blocked`) but not at T+8d, and never
exits them from their journey; a hard bounce suppresses and exits for good.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from functools import partial

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.rules.conditions import Condition
from engine.send.transport import MemoryTransport
from engine.store import milestones, recipients, suppressions
from engine.store.models import Suppression
from engine.store.passes import tick
from engine.store.timeline import timeline
from engine.track import sendgrid_events
from engine.track.provider_events import apply_sendgrid
from tests.store.dispatch_helpers import queue_step, row_of, run
from tests.store.journey_helpers import (
    enrolment_of,
    outbox_of,
    seed,
    sent_by,
    sign,
    supporter_id,
)

SIGNED = datetime(2026, 5, 13, 9, 30, tzinfo=UTC)  # a Wednesday, 11:30 in Paris
T = datetime(2026, 5, 20, 10, 0, tzinfo=UTC)  # a Wednesday, noon in Paris
DAY = timedelta(days=1)
WEEK = timedelta(days=7)


def provider_events(session: Session, at: datetime, **bounces: str) -> None:
    """name -> SendGrid bounce type, applied as `POST /webhooks/sendgrid` applies them."""
    events = [
        sendgrid_events.parse_event(
            {
                "event": "bounce",
                "type": kind,
                "email": f"{name}@example.org",
                "timestamp": int(at.timestamp()),
                "sg_event_id": f"{name}-{kind}-{at.isoformat()}",
            }
        )
        for name, kind in bounces.items()
    ]
    apply_sendgrid(
        session,
        events,
        now=at + timedelta(minutes=5),  # the webhook arrives a little later
        block_for=WEEK,
        secret="test-secret",
    )


def signed(session: Session, *names: str) -> tuple[Mapping[str, Condition], int]:
    """(segments, petition id) once the names signed and were thanked."""
    declared, petition_id = seed(session, SIGNED - DAY)
    sign(session, petition_id, SIGNED, {name: (True, True) for name in names})
    tick(session, now=SIGNED, segments=declared.conditions)
    sent_by(session, SIGNED)
    return declared.conditions, petition_id


def test_a_block_suppresses_for_a_week_from_the_event_and_a_hard_bounce_for_good(
    session: Session,
) -> None:
    # Given a blocked bounce and a hard bounce at T, recorded from the webhook
    signed(session, "alice", "bob")
    provider_events(session, T, alice="blocked", bob="bounce")

    # Then the block ends 7 days after the event, the hard bounce never
    stored = {
        reason: ends
        for reason, ends in session.execute(select(Suppression.reason, Suppression.expires_at))
    }
    assert stored == {"blocked": T + WEEK, "bounce": None}
    in_force = partial(
        suppressions.reasons_in_force, session, Suppression.supporter_id.is_not(None)
    )
    alice, bob = supporter_id(session, "alice"), supporter_id(session, "bob")
    assert in_force(now=T + DAY) == {alice: "blocked", bob: "unsubscribed"}
    assert in_force(now=T + 8 * DAY) == {bob: "unsubscribed"}
    assert in_force(now=T + 400 * DAY) == {bob: "unsubscribed"}


def test_the_dispatcher_suppresses_during_a_block_and_sends_after_it(session: Session) -> None:
    # Given Alice blocked at T and Bob hard-bounced at T, with emails due a day and 8 days later
    signed(session, "alice", "bob")
    run(session, MemoryTransport(), SIGNED)  # the thank-yous
    provider_events(session, T, alice="blocked", bob="bounce")
    during = queue_step(session, "alice", "update", due_at=T + DAY)
    after = queue_step(session, "alice", "ask-additional", due_at=T + 8 * DAY)
    bobs = queue_step(session, "bob", "update", due_at=T + 8 * DAY)
    transport = MemoryTransport()

    # When the dispatcher runs at T+1d, then at T+8d
    run(session, transport, T + DAY)
    run(session, transport, T + 8 * DAY)

    # Then Alice's email during the block is suppressed as blocked, the later one is sent
    assert (row_of(session, during).status, row_of(session, during).reason) == (
        "suppressed",
        "blocked",
    )
    assert row_of(session, after).status == "sent"
    # And Bob's hard bounce still holds a week later
    assert (row_of(session, bobs).status, row_of(session, bobs).reason) == (
        "suppressed",
        "unsubscribed",
    )
    assert [m.message_id for m in transport.sent] == [str(after)]


def test_a_block_never_exits_the_journey_and_a_hard_bounce_does(session: Session) -> None:
    # Given three signers waiting for 140,000: Alice blocked a day before the milestone,
    # Carol blocked 8 days before it, Bob hard-bounced 8 days before it
    named, petition_id = signed(session, "alice", "bob", "carol")
    milestone = T + 8 * DAY
    provider_events(session, T, carol="blocked", bob="bounce")
    provider_events(session, milestone - DAY, alice="blocked")
    # When passes run during the blocks, then the petition reaches 140,000
    tick(session, now=T + DAY, segments=named)
    assert enrolment_of(session, "alice")[0] == "active"
    assert enrolment_of(session, "carol") == ("active", "until-140000", None)
    assert enrolment_of(session, "bob") == ("exited", "until-140000", "unsubscribed")
    milestones.check(session, petition_id=petition_id, count=140000, now=milestone)
    tick(session, now=milestone, segments=named)

    # Then Alice's update is suppressed as blocked and she goes on to the pause
    assert outbox_of(session, "alice")[-1] == ("update", "suppressed", "blocked")
    assert enrolment_of(session, "alice") == ("active", "pause", None)
    # And Carol's block has ended: her update is queued
    assert outbox_of(session, "carol")[-1] == ("update", "queued", None)
    assert enrolment_of(session, "carol") == ("active", "pause", None)
    assert [step for step, _, _ in outbox_of(session, "bob")] == ["thanked"]
    # And explain shows when Alice's block ends
    until = f"{milestone - DAY + WEEK:%Y-%m-%d %H:%M}"
    lines = [e.what for e in timeline(session, supporter_id(session, "alice"))]
    assert f"suppressed: blocked until {until} UTC" in lines
    assert lines[-1] == "suppression ends: blocked"


def test_a_new_block_lengthens_the_one_in_force(session: Session) -> None:
    # Given Alice blocked at T, then blocked again 6 days later
    signed(session, "alice")
    provider_events(session, T, alice="blocked")
    provider_events(session, T + 6 * DAY, alice="blocked")
    # Then one suppression, ending a week after the second block
    rows = session.execute(select(Suppression.reason, Suppression.expires_at)).all()
    assert [(reason, ends) for reason, ends in rows] == [("blocked", T + 6 * DAY + WEEK)]
    # And an older block arriving late never shortens it
    provider_events(session, T + DAY, alice="blocked")
    assert session.scalars(select(Suppression.expires_at)).all() == [T + 6 * DAY + WEEK]


def test_the_dispatchers_facts_come_from_statements_built_once_and_read_at_each_now(
    session: Session,
) -> None:
    # Given Alice blocked at T and Bob hard-bounced at T
    signed(session, "alice", "bob")
    provider_events(session, T, alice="blocked", bob="bounce")
    alice, bob = supporter_id(session, "alice"), supporter_id(session, "bob")
    load = partial(
        recipients.load,
        session,
        purposes=["updates"],
        version_ids=[],
        recent_since=T - WEEK,
    )
    load([alice, bob], now=T + DAY)  # the statements exist for this database from here on
    built = recipients.statements_built()

    # When the dispatcher's facts are read for two batches at two instants
    during = load([alice, bob], now=T + DAY)
    after = load([bob, alice], now=T + 8 * DAY)

    # Then no statement was built again (a batch's ids and instant are parameters), and
    # each read saw its own instant: the block in force during it, gone after it
    assert recipients.statements_built() == built
    assert during.suppressed == {alice: "blocked", bob: "unsubscribed"}
    assert after.suppressed == {bob: "unsubscribed"}
    assert set(after.people) == {alice, bob}
