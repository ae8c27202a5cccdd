"""The dispatch pass on SQLite and PostgreSQL: the last look, retries, alerts, holds.

Given the seed campaign and signers, when the pass runs at an injected instant with an
in-memory transport, then each queued row ends sent, suppressed, deferred, retried,
failed or held, for the reason the issue gives, and nothing is dropped.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from engine.send.dispatcher import Policy, SendingRefused
from engine.send.retries import RetryPolicy
from engine.send.transport import AuthFailed, MemoryTransport, Permanent, Transient
from engine.store import claims
from engine.store.models import Consent, Link, Milestone, OutboxMessage, Supporter, Suppression
from engine.store.passes import tick
from tests.store.dispatch_helpers import ENVELOPE, queue_step, row_of, run
from tests.store.journey_helpers import seed, sign, supporter_id

SIGNED = datetime(2026, 5, 13, 9, 30, tzinfo=UTC)  # a Wednesday, 11:30 in Paris


def signed(session: Session, people: dict[str, tuple[bool, bool]]) -> None:
    declared, petition_id = seed(session, SIGNED - timedelta(days=1))
    sign(session, petition_id, SIGNED, people)
    tick(session, now=SIGNED, segments=declared.conditions)
    # The update emails below speak of the 140,000 milestone: reached.
    session.execute(
        update(Milestone).where(Milestone.threshold == 140_000).values(reached_at=SIGNED)
    )


def statuses(session: Session) -> dict[str, int]:
    rows = session.execute(
        select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
    ).all()
    return {status: count for status, count in rows}


def test_thank_yous_leave_with_the_mobilise_headers(session: Session) -> None:
    signed(session, {"alice": (True, True), "bob": (False, False)})
    transport = MemoryTransport()

    report = run(session, transport, SIGNED)

    assert report.outcomes == {"sent": 2}
    assert statuses(session) == {"sent": 2}
    by_id = transport.by_id()
    for row in session.scalars(select(OutboxMessage)):
        message = by_id[str(row.id)]
        assert message.all_headers["X-Mobilise-Journey"] == "stop-reconnaissance-faciale"
        assert message.all_headers["X-Mobilise-Step"] == "thanked"
        assert message.all_headers["X-Mobilise-Message"] == str(row.id)
        assert message.sender == ENVELOPE.sender
        assert row.provider_id == f"memory-{row.id}"
        assert row.template_version == message.template_version
        assert row.sent_at == SIGNED
        assert row.attempts == 1
    assert any("Alice" in m.subject for m in transport.sent)
    # The version's links are stored before the email leaves: clicks resolve to them.
    assert (session.scalar(select(func.count()).select_from(Link)) or 0) > 0


def test_a_second_pass_sends_nothing_again(session: Session) -> None:
    signed(session, {"alice": (True, True)})
    transport = MemoryTransport()
    run(session, transport, SIGNED)

    again = run(session, transport, SIGNED + timedelta(minutes=1))

    assert again.batches == 0
    assert len(transport.sent) == 1


def test_consent_withdrawn_between_queue_and_send_suppresses(session: Session) -> None:
    signed(session, {"alice": (True, True), "bob": (True, True)})
    run(session, MemoryTransport(), SIGNED)
    later = SIGNED + timedelta(days=7)
    alice = queue_step(session, "alice", "update", due_at=later)
    bob = queue_step(session, "bob", "update", due_at=later)
    session.add(
        Consent(
            supporter_id=supporter_id(session, "alice"),
            purpose="updates",
            granted=False,
            wording_version="2024-05-v1",
            source="unsubscribe",
            recorded_at=later - timedelta(hours=1),
        )
    )
    transport = MemoryTransport()

    run(session, transport, later)

    assert (row_of(session, alice).status, row_of(session, alice).reason) == (
        "suppressed",
        "no-consent:updates",
    )
    assert row_of(session, bob).status == "sent"
    assert [m.message_id for m in transport.sent] == [str(bob)]


def test_suppressed_erased_and_restricted_supporters_are_not_emailed(session: Session) -> None:
    signed(session, {"alice": (True, True), "bob": (True, True), "carol": (True, True)})
    session.add(
        Suppression(
            supporter_id=supporter_id(session, "alice"),
            email_hash="0" * 64,
            reason="bounce",
            created_at=SIGNED,
        )
    )
    bob = session.get(Supporter, supporter_id(session, "bob"))
    carol = session.get(Supporter, supporter_id(session, "carol"))
    assert bob is not None
    assert carol is not None
    bob.restricted_at = SIGNED
    carol.erased_at, carol.email = SIGNED, None
    session.flush()
    transport = MemoryTransport()

    run(session, transport, SIGNED)

    reasons = sorted(
        (status, reason)
        for status, reason in session.execute(select(OutboxMessage.status, OutboxMessage.reason))
    )
    assert reasons == [
        ("suppressed", "erased"),
        ("suppressed", "restricted"),
        ("suppressed", "unsubscribed"),
    ]
    assert transport.sent == []


def test_quiet_hours_defer_a_campaign_email_and_it_leaves_in_the_morning(
    session: Session,
) -> None:
    signed(session, {"alice": (True, True)})
    run(session, MemoryTransport(), SIGNED)
    evening = datetime(2026, 5, 20, 20, 30, tzinfo=UTC)  # 22:30 in Paris
    update = queue_step(session, "alice", "update", due_at=evening - timedelta(minutes=5))
    transport = MemoryTransport()

    run(session, transport, evening)

    row = row_of(session, update)
    morning = datetime(2026, 5, 21, 7, 0, tzinfo=UTC)  # 09:00 in Paris, the window opens
    assert (row.status, row.reason, row.due_at, row.attempts) == (
        "queued",
        "quiet-hours",
        morning,
        0,
    )
    run(session, transport, morning)
    assert row_of(session, update).status == "sent"


def test_the_frequency_cap_defers_the_second_campaign_email(session: Session) -> None:
    signed(session, {"alice": (True, True)})
    at = datetime(2026, 5, 20, 10, 0, tzinfo=UTC)
    first = queue_step(session, "alice", "update", due_at=at)
    run(session, MemoryTransport(), at)
    second = queue_step(session, "alice", "ask-first", due_at=at + timedelta(hours=1))

    run(session, MemoryTransport(), at + timedelta(hours=1))

    row = row_of(session, second)
    assert row_of(session, first).status == "sent"
    assert (row.status, row.reason, row.due_at) == (
        "queued",
        "frequency-cap",
        at + timedelta(hours=48),
    )


def test_a_transient_failure_is_retried_with_backoff_then_sent(session: Session) -> None:
    signed(session, {"alice": (True, True)})
    message = str(session.scalar(select(OutboxMessage.id)))
    transport = MemoryTransport(outcomes={message: Transient(message, "SendGrid answered 503")})

    run(session, transport, SIGNED)

    row = row_of(session, int(message))
    assert (row.status, row.attempts) == ("queued", 1)
    # Backoff of one minute at the first attempt: between 30 and 60 s with the jitter.
    assert SIGNED + timedelta(seconds=30) <= row.due_at <= SIGNED + timedelta(minutes=1)
    assert run(session, transport, SIGNED + timedelta(seconds=10)).batches == 0

    transport.outcomes.clear()
    run(session, transport, row.due_at)
    assert (row_of(session, int(message)).status, row_of(session, int(message)).attempts) == (
        "sent",
        2,
    )


def test_retries_stop_at_the_limit_with_the_reason(session: Session) -> None:
    signed(session, {"alice": (True, True)})
    message = str(session.scalar(select(OutboxMessage.id)))
    transport = MemoryTransport(outcomes={message: Transient(message, "SendGrid answered 500")})
    policy = Policy(envelope=ENVELOPE, retry=RetryPolicy(max_attempts=2))

    run(session, transport, SIGNED, policy=policy)
    run(session, transport, SIGNED + timedelta(hours=1), policy=policy)

    row = row_of(session, int(message))
    assert (row.status, row.reason, row.attempts) == (
        "failed",
        "gave up: SendGrid answered 500",
        2,
    )


def test_a_permanent_refusal_fails_that_message_only(session: Session) -> None:
    signed(session, {"alice": (True, True), "bob": (True, True)})
    alice = session.scalar(
        select(OutboxMessage.id).where(OutboxMessage.supporter_id == supporter_id(session, "alice"))
    )
    message = str(alice)
    transport = MemoryTransport(outcomes={message: Permanent(message, "Invalid email address")})

    run(session, transport, SIGNED)

    assert statuses(session) == {"failed": 1, "sent": 1}
    assert row_of(session, int(message)).reason == "Invalid email address"


def test_refused_credentials_stop_the_pass_and_lose_nothing(session: Session) -> None:
    signed(session, {"alice": (True, True), "bob": (True, True)})
    ids = [str(i) for i in session.scalars(select(OutboxMessage.id))]
    reason = "SendGrid refused the API key (401): stop sending and alert"
    transport = MemoryTransport(outcomes={i: AuthFailed(i, reason) for i in ids})

    with pytest.raises(SendingRefused):
        run(session, transport, SIGNED)

    assert statuses(session) == {"queued": 2}
    assert {row_of(session, int(i)).attempts for i in ids} == {0}
    transport.outcomes.clear()
    run(session, transport, SIGNED + timedelta(minutes=5))
    assert statuses(session) == {"sent": 2}


def test_a_far_overdue_step_is_held_until_a_manager_approves_it(session: Session) -> None:
    signed(session, {"alice": (True, True)})
    run(session, MemoryTransport(), SIGNED)
    due = datetime(2026, 5, 20, 10, 0, tzinfo=UTC)
    update = queue_step(session, "alice", "update", due_at=due)
    back = due + timedelta(days=3)  # the server was down for three days
    transport = MemoryTransport()

    run(session, transport, back)

    assert (row_of(session, update).status, row_of(session, update).reason) == ("held", "overdue")
    assert transport.sent == []
    assert claims.approve(session, now=back, journey_id="stop-reconnaissance-faciale") == 1
    run(session, transport, back + timedelta(minutes=1))
    assert row_of(session, update).status == "sent"


def test_a_dead_workers_claim_is_recovered_after_its_lease(session: Session) -> None:
    signed(session, {"alice": (True, True)})
    with session.begin_nested():
        claimed = claims.claim(session, worker_id="dead", now=SIGNED, limit=10)
    assert len(claimed) == 1
    transport = MemoryTransport()

    assert run(session, transport, SIGNED + timedelta(minutes=1)).batches == 0
    report = run(session, transport, SIGNED + timedelta(minutes=11))

    assert report.recovered == 1
    assert row_of(session, claimed[0].id).status == "sent"
    assert len(transport.sent) == 1


def test_a_dead_sendgrid_workers_claim_waits_for_events(session: Session) -> None:
    signed(session, {"alice": (True, True), "bob": (True, True)})
    with session.begin_nested():
        claimed = claims.claim(session, worker_id="dead", now=SIGNED, limit=10)
    transport = MemoryTransport(name="sendgrid")
    lease_over = SIGNED + timedelta(minutes=11)

    run(session, transport, lease_over)
    assert statuses(session) == {"ambiguous": 2}
    # The event webhook saw one of them: SendGrid had it.
    seen = session.get(OutboxMessage, claimed[0].id)
    assert seen is not None
    seen.delivery, seen.delivery_at = "processed", SIGNED + timedelta(seconds=1)
    session.flush()

    run(session, transport, lease_over + timedelta(minutes=31))

    # The seen one is sent; the unseen one is sent again, once, in the same pass.
    assert row_of(session, claimed[0].id).status == "sent"
    assert row_of(session, claimed[1].id).status == "sent"
    assert [m.message_id for m in transport.sent] == [str(claimed[1].id)]


def test_the_hourly_throttle_defers_the_rest_to_the_next_hour(session: Session) -> None:
    signed(session, {"alice": (True, True), "bob": (True, True), "carol": (True, True)})
    policy = Policy(envelope=ENVELOPE, hourly_limit=2)
    transport = MemoryTransport()

    run(session, transport, SIGNED, policy=policy)
    run(session, transport, SIGNED + timedelta(minutes=30), policy=policy)

    assert statuses(session) == {"queued": 1, "sent": 2}
    run(session, transport, SIGNED + timedelta(hours=1, minutes=1), policy=policy)
    assert statuses(session) == {"sent": 3}
    assert len(transport.sent) == 3
