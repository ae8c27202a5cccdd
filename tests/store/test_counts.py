"""The summary rows stay exact as events arrive, on both databases.

Given emails of a journey, when they are sent, delivered, bounced, clicked (by people and
by scanners), unsubscribed from and given to (gifts refunded, cancelled, moved), through
the same store functions the dispatcher, the webhooks and the tracking routes call, with
retried and duplicated events in between, then `step_counts` holds what a full recount
from the tables finds: each change counted once, and taken back once when undone. Sends
come as the dispatcher records them (one request for a batch, or one each; retried later
and claimed again) and as the simulator marks them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.send.transport import MemoryTransport
from engine.store import (
    claims,
    clicks,
    counts,
    donations,
    funnels,
    recounts,
    step_figures,
    suppressions,
    virtual,
)
from engine.store.claims import Outcome
from engine.store.models import MessageCounts, StepCounts
from engine.store.passes import tick
from engine.store.step_figures import StepFigures
from engine.track.sendgrid_events import ProviderEvent
from tests.store import engagement
from tests.store.dispatch_helpers import run
from tests.store.engagement import SECRET, provider_event, webhook
from tests.store.journey_helpers import seed, sign

T0 = datetime(2026, 5, 13, 9, 30, tzinfo=UTC)
T = TypeVar("T")


def stored(session: Session) -> dict[step_figures.Key, StepFigures]:
    rows = session.execute(select(StepCounts)).scalars().all()
    found = {
        (r.journey_id, r.step_id, r.variant): StepFigures(
            *(getattr(r, name) for name in step_figures.FIGURES)
        )
        for r in rows
    }
    return {key: figures for key, figures in found.items() if figures}


def figures(session: Session, journey: str, step: str, variant: str = "") -> StepFigures:
    return stored(session).get((journey, step, variant), StepFigures())


def send(session: Session, ids: list[int], at: datetime) -> None:
    claims.record(session, [Outcome(i, "sent", sent_at=at) for i in ids], worker_id="w")


def test_an_email_counts_once_as_sent_however_often_its_outcome_is_written(
    session: Session,
) -> None:
    # Given two emails of step `thanks` claimed by a worker
    journey = "j-sent"
    ids = engagement.emails(session, T0, [(journey, "thanks", None)] * 2)
    # When the worker records them sent, and records the same outcomes again (a retry)
    send(session, ids, T0)
    send(session, ids, T0)
    # Then the step has sent two emails, no more
    assert figures(session, journey, "thanks").sent == 2
    assert stored(session) == recounts.recount(session)


def test_sending_counts_per_step_and_writes_no_row_per_email(session: Session) -> None:
    # Given five claimed emails over two (step, variant) rows
    journey = "j-lazy"
    ids = engagement.emails(
        session, T0, [(journey, "thanks", None)] * 3 + [(journey, "ask", "B")] * 2
    )
    # When one batch records them sent, each accepted in a request of its own (an SMTP or
    # file transport: one provider id each)
    outcomes = [Outcome(i, "sent", provider_id=f"p-{i}", sent_at=T0) for i in ids]
    assert claims.record(session, outcomes, worker_id="w") == 5
    # Then each step counts its emails, and no email has a row of its own yet
    assert (
        figures(session, journey, "thanks").sent,
        figures(session, journey, "ask", "B").sent,
    ) == (3, 2)
    assert per_email_rows(session) == set()
    # When the provider reports one delivered, then that email, and only it, has its row
    webhook(session, [provider_event(ids[0], "delivered", T0, "ev-lazy")], T0)
    assert per_email_rows(session) == {ids[0]}
    assert stored(session) == recounts.recount(session)


def per_email_rows(session: Session) -> set[int]:
    return set(session.scalars(select(MessageCounts.message_id)))


def test_a_retried_webhook_batch_moves_each_figure_once(session: Session) -> None:
    # Given a sent email
    journey = "j-webhook"
    (mid,) = engagement.emails(session, T0, [(journey, "update", None)])
    send(session, [mid], T0)
    delivered = provider_event(mid, "delivered", T0 + timedelta(minutes=1), "ev-1")
    # When SendGrid posts its delivery twice, then an open out of order before it
    webhook(session, [delivered, delivered], T0)
    webhook(session, [delivered], T0)
    webhook(session, [provider_event(mid, "processed", T0, "ev-0")], T0)
    # Then it is delivered once
    assert figures(session, journey, "update").delivered == 1
    # When it bounces later (an asynchronous bounce), then it is bounced, no longer delivered
    webhook(session, [provider_event(mid, "bounce", T0 + timedelta(hours=1), "ev-2")], T0)
    assert (
        figures(session, journey, "update").delivered,
        figures(session, journey, "update").bounced,
    ) == (0, 1)
    assert stored(session) == recounts.recount(session)


def test_clicks_from_people_count_and_from_scanners_do_not(session: Session) -> None:
    # Given a sent email of variant B
    journey = "j-clicks"
    (mid,) = engagement.emails(session, T0, [(journey, "ask", "B")])
    send(session, [mid], T0)
    # When a scanner clicks its two links, and its reader clicks one twice
    engagement.click(session, mid, T0, position=0, automated=True)
    engagement.click(session, mid, T0, position=1, automated=True)
    first = engagement.click(session, mid, T0 + timedelta(hours=2))
    engagement.click(session, mid, T0 + timedelta(hours=3))
    # Then the variant has one clicker and two clicks
    found = figures(session, journey, "ask", "B")
    assert (found.clickers, found.clicks) == (1, 2)
    # When one of those clicks is recognised as a scanner's after all, then one remains
    engagement.flag_automated(session, first)
    found = figures(session, journey, "ask", "B")
    assert (found.clickers, found.clicks) == (1, 1)
    assert stored(session) == recounts.recount(session)


def test_an_unsubscribe_counts_once_whichever_way_it_arrives(session: Session) -> None:
    # Given a sent email
    journey = "j-unsub"
    (mid,) = engagement.emails(session, T0, [(journey, "update", None)])
    send(session, [mid], T0)
    # When its reader unsubscribes through its link twice and SendGrid reports it too
    assert suppressions.unsubscribe_message(session, mid, now=T0, secret=SECRET)
    assert suppressions.unsubscribe_message(
        session, mid, now=T0 + timedelta(seconds=5), secret=SECRET
    )
    webhook(session, [provider_event(mid, "unsubscribe", T0, "ev-u")], T0)
    # Then the step lost one reader
    assert figures(session, journey, "update").unsubscribed == 1
    assert stored(session) == recounts.recount(session)


def test_gifts_refunds_and_cancelled_monthly_gifts(session: Session) -> None:
    # Given two sent emails of an ask
    journey = "j-gifts"
    a, b = engagement.emails(session, T0, [(journey, "ask", None)] * 2)
    send(session, [a, b], T0)
    # When the first leads to a 50 € gift (posted twice) and a 10 € monthly gift, the second
    # to 30 € that is then refunded, and an unattributed gift arrives
    engagement.gift(session, a, T0, cents=5000, external_id="g-1")
    engagement.gift(session, a, T0, cents=5000, external_id="g-1")
    monthly = engagement.gift(session, a, T0, cents=1000, frequency="monthly")
    refunded = engagement.gift(session, b, T0, cents=3000)
    engagement.refund(session, refunded, T0 + timedelta(days=1))
    engagement.gift(session, None, T0, cents=7000)
    # Then the ask has one donor, two gifts, 50 € one-off and 10 € a month
    found = figures(session, journey, "ask")
    assert (found.donors, found.gifts, found.one_off_cents, found.monthly_cents) == (
        1,
        2,
        5000,
        1000,
    )
    # When the monthly gift is cancelled, then it no longer counts in the monthly amount
    engagement.cancel(session, monthly, T0 + timedelta(days=30))
    assert figures(session, journey, "ask").monthly_cents == 0
    # When the 50 € gift turns out to come from the second email, then it moves there
    engagement.move_gift(session, "g-1", b)
    assert figures(session, journey, "ask").donors == 2
    assert stored(session) == recounts.recount(session)


def test_a_monthly_gift_counts_once_in_the_monthly_amount_however_many_payments_it_made(
    session: Session,
) -> None:
    # Given an ask whose reader then gives 10 € a month (three payments, no subscription id
    # said) and 5 € a month under a mandate (two payments), every payment carrying the
    # ask's reference; and an unattributed monthly gift of 7 € under a mandate, paid twice
    journey = "j-monthly"
    (ask,) = engagement.emails(session, T0, [(journey, "ask", None)])
    send(session, [ask], T0)
    month = timedelta(days=30)
    ten = [engagement.gift(session, ask, T0 + n * month, cents=1000, frequency="monthly")
           for n in range(3)]  # fmt: skip
    five = [
        engagement.gift(
            session, ask, T0 + n * month, cents=500, frequency="monthly", subscription_id="m-B"
        )
        for n in range(2)
    ]
    before = funnels.unattributed_gifts(session)
    for n in range(2):
        engagement.gift(
            session, None, T0 + n * month, cents=700, frequency="monthly", subscription_id="m-U"
        )
    after = funnels.unattributed_gifts(session)

    # Then the ask counts five gifts and 15 € a month, not 40 €; the unattributed gift 7 €
    found = figures(session, journey, "ask")
    assert (found.donors, found.gifts, found.monthly_cents) == (1, 5, 1500)
    assert (after[0] - before[0], after[2] - before[2]) == (2, 700)
    # When the 10 € gift's first payment is refunded, its next payment counts in its place
    engagement.refund(session, ten[0], T0 + timedelta(days=2))
    assert figures(session, journey, "ask").monthly_cents == 1500
    # When the 5 € mandate ends, only the 10 € gift is left
    for key in five:
        engagement.cancel(session, key, T0 + 2 * month)
    assert figures(session, journey, "ask").monthly_cents == 1000
    assert stored(session) == recounts.recount(session)


def test_the_dispatcher_and_the_virtual_sender_count_what_they_send(session: Session) -> None:
    # Given the seed campaign and three signers, the journey pass run
    declared, petition_id = seed(session, T0 - timedelta(days=1))
    sign(
        session, petition_id, T0, {"ana": (True, True), "ben": (True, False), "cam": (False, False)}
    )
    tick(session, now=T0, segments=declared.conditions)
    # When the dispatcher sends the thank-yous
    run(session, MemoryTransport(), T0)
    # Then the summary row of `thanked` says three sent, as the outbox does
    journey = "stop-reconnaissance-faciale"
    assert figures(session, journey, "thanked").sent == 3
    # And emails "sent" by the simulator's virtual sender count alike
    engagement.emails(session, T0, [(journey, "update", None)], status="queued")
    assert virtual.send_due(session, now=T0) == 1
    assert figures(session, journey, "update").sent == 1
    assert stored(session) == recounts.recount(session)


def test_the_virtual_deliveries_count_once_as_the_webhooks_do(session: Session) -> None:
    # Given three emails the virtual sender sent, one of them bounced and one clicked, and
    # an email not due yet
    journey = "j-virtual"
    sent = engagement.emails(session, T0, [(journey, "update", None)] * 3, status="queued")
    (later,) = engagement.emails(
        session, T0 + timedelta(hours=1), [(journey, "update", None)], status="queued"
    )
    virtual.mark_sent(session, now=T0)
    webhook(session, [provider_event(sent[2], "bounce", T0, "ev-v-bounce")], T0)
    engagement.click(session, sent[0], T0)
    # When the simulator marks them all delivered, twice
    assert virtual.mark_delivered(session, [*sent, later]) == 2
    assert virtual.mark_delivered(session, sent) == 0
    # Then the two that arrived count as delivered once, the bounce stays a bounce and the
    # email not sent counts nothing
    assert figures(session, journey, "update") == StepFigures(
        sent=3, delivered=2, bounced=1, clickers=1, clicks=1
    )
    # And a later spam report on a delivered email counts its opt-out and no second delivery
    webhook(session, [provider_event(sent[1], "spamreport", T0, "ev-v-spam")], T0)
    assert figures(session, journey, "update").delivered == 2
    assert figures(session, journey, "update").unsubscribed == 1
    assert stored(session) == recounts.recount(session)


def test_rebuild_fills_the_summary_from_the_tables(session: Session) -> None:
    # Given counted emails, and summary rows lost (a database migrated with sent emails)
    journey = "j-rebuild"
    ids = engagement.emails(session, T0, [(journey, "a", None), (journey, "b", "A")])
    send(session, ids, T0)
    engagement.click(session, ids[0], T0)
    engagement.gift(session, ids[1], T0, cents=1500)
    expected = recounts.recount(session)
    session.execute(StepCounts.__table__.delete())  # type: ignore[attr-defined]
    # When they are rebuilt
    recounts.rebuild(session)
    # Then they hold the recount, and refreshing afterwards adds nothing twice
    assert stored(session) == expected
    counts.refresh(session, ids)
    assert stored(session) == expected


# --- the property: any stream of events, retries and duplicates included

STEPS = [("j-prop", "thanks", None), ("j-prop", "ask", "A"), ("j-prop", "ask", "B")]
PROVIDER = ["processed", "deferred", "delivered", "open", "click", "bounce", "dropped",
            "spamreport", "unsubscribe", "group_unsubscribe"]  # fmt: skip

operations = st.one_of(
    st.tuples(st.just("send"), st.integers(0, 3)),
    st.tuples(st.just("send-apart"), st.lists(st.integers(0, 3), min_size=1, max_size=4)),
    st.tuples(st.just("retry-later"), st.integers(0, 3)),
    st.tuples(st.just("claim")),
    st.tuples(st.just("virtual-send")),
    st.tuples(st.just("ambiguous"), st.integers(0, 3)),
    st.tuples(st.just("settle"), st.integers(0, 3)),
    st.tuples(st.just("event"), st.integers(0, 3), st.sampled_from(PROVIDER), st.integers(0, 90)),
    st.tuples(st.just("repeat-event"), st.integers(0, 30)),
    st.tuples(st.just("click"), st.integers(0, 3), st.booleans()),
    st.tuples(st.just("flag-click"), st.integers(0, 30)),
    # As the click route records them: a batch, flagged by the scanner rule (two links of
    # an email within seconds, or just sent), earlier clicks flipped by later ones.
    st.tuples(
        st.just("tracked-clicks"),
        st.lists(
            st.tuples(st.integers(0, 3), st.integers(0, 1), st.integers(0, 40)),
            min_size=1,
            max_size=5,
        ),
    ),
    st.tuples(st.just("unsubscribe"), st.integers(0, 3)),
    # (-1: unattributed; a monthly payment of subscription 0 or 1, or of none: -1)
    st.tuples(
        st.just("gift"), st.integers(-1, 3), st.integers(1, 9), st.booleans(), st.integers(-1, 1)
    ),
    st.tuples(st.just("cancel-subscription"), st.integers(0, 1)),
    st.tuples(st.just("repeat-gift"), st.integers(0, 30)),
    st.tuples(st.just("refund"), st.integers(0, 30)),
    st.tuples(st.just("cancel"), st.integers(0, 30)),
    st.tuples(st.just("move-gift"), st.integers(0, 30), st.integers(-1, 3)),
)


@dataclass
class Memory:
    """What a stream has produced so far, for later operations to repeat or undo."""

    events: list[ProviderEvent] = field(default_factory=list)
    clicks: list[int] = field(default_factory=list)
    gifts: list[str] = field(default_factory=list)


def pick(items: list[T], index: int) -> T | None:
    return items[index % len(items)] if items else None


def apply(session: Session, ids: list[int], op: tuple[Any, ...], memory: Memory) -> None:
    at = T0 + timedelta(minutes=len(memory.events) + len(memory.gifts))
    kind, *args = op
    if kind == "send":
        send(session, [ids[args[0]]], at)
    elif kind == "send-apart":
        # One batch, each email its own provider id (SMTP, files): one UPDATE each.
        outcomes = [Outcome(ids[i], "sent", provider_id=f"p{i}", sent_at=at) for i in args[0]]
        claims.record(session, outcomes, worker_id="w")
    elif kind == "retry-later":
        claims.record(session, [Outcome(ids[args[0]], "queued", due_at=T0)], worker_id="w")
    elif kind == "claim":
        claims.claim(session, worker_id="w", now=at, limit=4)
    elif kind == "virtual-send":
        virtual.send_due(session, now=at)
    elif kind == "ambiguous":
        claims.record(session, [Outcome(ids[args[0]], "ambiguous", "timeout")], worker_id="w")
    elif kind == "settle":
        claims.settle_ambiguous(session, confirmed=[ids[args[0]]], resend=[], now=at)
    elif kind == "event":
        when = T0 + timedelta(minutes=args[2])
        event = provider_event(ids[args[0]], args[1], when, f"e{len(memory.events)}")
        memory.events.append(event)
        webhook(session, [event], at)
    elif kind == "repeat-event" and (again := pick(memory.events, args[0])) is not None:
        webhook(session, [again, again], at)
    elif kind == "click":
        memory.clicks.append(engagement.click(session, ids[args[0]], at, automated=args[1]))
    elif kind == "tracked-clicks":
        clicks.record_many(
            session,
            [
                clicks.ClickIn(
                    ids[i],
                    position,
                    engagement.supporter_of(session, ids[i]),
                    at + timedelta(seconds=seconds),
                )  # fmt: skip
                for i, position, seconds in args[0]
            ],
        )
    elif kind == "flag-click" and (click_id := pick(memory.clicks, args[0])) is not None:
        engagement.flag_automated(session, click_id)
    elif kind == "unsubscribe":
        suppressions.unsubscribe_message(session, ids[args[0]], now=at, secret=SECRET)
    elif kind == "gift":
        target = ids[args[0]] if args[0] >= 0 else None
        frequency = "monthly" if args[2] else "one-off"
        subscription = f"sub-{args[3]}" if args[2] and args[3] >= 0 else None
        memory.gifts.append(
            engagement.gift(
                session,
                target,
                at,
                cents=args[1] * 500,
                frequency=frequency,
                subscription_id=subscription,
            )
        )
    elif kind == "cancel-subscription":
        donations.cancel_monthly(session, subscription=f"sub-{args[0]}", at=at)
    elif (key := pick(memory.gifts, args[0])) is not None:
        if kind == "repeat-gift":
            engagement.gift(session, None, at, external_id=key)
        elif kind == "refund":
            engagement.refund(session, key, at)
        elif kind == "cancel":
            engagement.cancel(session, key, at)
        elif kind == "move-gift":
            engagement.move_gift(session, key, ids[args[1]] if args[1] >= 0 else None)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(stream=st.lists(operations, min_size=10, max_size=60))
# Always, besides the random streams: a monthly gift's payments, its subscription ended
# (a change to several gifts at once, each email's monthly amount counting it once).
@example(
    stream=[
        ("send", 0),
        ("gift", 0, 2, True, 0),
        ("gift", 0, 2, True, 0),
        ("gift", 0, 4, True, 1),
        ("cancel-subscription", 0),
        ("refund", 2),
    ]
)
def test_summary_rows_equal_a_full_recount_after_any_event_stream(
    session: Session, stream: list[tuple[Any, ...]]
) -> None:
    savepoint = session.begin_nested()
    try:
        # Given four claimed emails over three (step, variant) rows
        ids = engagement.emails(session, T0, [*STEPS, STEPS[1]])
        memory = Memory()
        # When any stream of events arrives, retries and duplicates included
        for op in stream:
            apply(session, ids, op, memory)
        # Then the summary rows are what a recount from the tables finds
        assert stored(session) == recounts.recount(session)
    finally:
        savepoint.rollback()
