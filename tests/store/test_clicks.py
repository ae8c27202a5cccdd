"""Clicks on SQLite and PostgreSQL: a scanner's burst is flagged automated as it happens,
and automated clicks are no engagement for the journeys' click conditions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.rules.conditions import holds
from engine.rules.segments import SegmentDef
from engine.store import clicks, counts, petitions, segments
from engine.store.models import Event, OutboxMessage, Supporter
from tests.factories import petition_def, sent_email
from tests.store.engagement import click_flags
from tests.store.journey_helpers import sign, supporter_id
from tests.store.supporter_facts import facts_for

SENT = datetime(2026, 5, 20, 10, 0, tzinfo=UTC)


def email_to(session: Session, name: str) -> int:
    return sent_email(session, supporter_id(session, name), "update", SENT)


def click(session: Session, message_id: int, position: int, at: datetime) -> None:
    who = session.scalar(select(OutboxMessage.supporter_id).where(OutboxMessage.id == message_id))
    clicks.record(session, message_id=message_id, position=position, supporter_id=who, now=at)


def test_bursts_are_flagged_and_people_are_not(session: Session) -> None:
    petition_id = petitions.upsert(session, petition_def(), now=SENT).id
    sign(
        session, petition_id, SENT, {"sam": (True, True), "lou": (True, True), "gus": (True, True)}
    )
    # Sam's gateway opens three links within 6 seconds, an hour after the send
    scanned = email_to(session, "sam")
    for position, seconds in ((0, 0), (1, 3), (2, 6)):
        click(session, scanned, position, SENT + timedelta(hours=1, seconds=seconds))
    # Lou double-clicks one link, then clicks another a minute later
    read = email_to(session, "lou")
    click(session, read, 0, SENT + timedelta(hours=2))
    click(session, read, 0, SENT + timedelta(hours=2, seconds=1))
    click(session, read, 1, SENT + timedelta(hours=2, minutes=1))
    # Gus's gateway opens his one link 2 seconds after the send
    gateway = email_to(session, "gus")
    click(session, gateway, 0, SENT + timedelta(seconds=2))

    assert click_flags(session, scanned) == [(0, True), (1, True), (2, True)]
    assert click_flags(session, read) == [(0, False), (0, False), (1, False)]
    assert click_flags(session, gateway) == [(0, True)]

    # And for the click conditions, only Lou clicked: in SQL and in the pure rules alike
    now = SENT + timedelta(days=1)
    engaged = SegmentDef.model_validate({"segment": "e", "where": {"clicked_within": "7d"}}).where
    ctx = segments.Context(supporter_id=Supporter.id, now=now, segments={})
    people = [supporter_id(session, n) for n in ("sam", "lou", "gus")]
    in_sql = set(
        session.scalars(
            select(Supporter.id).where(Supporter.id.in_(people), segments.where(engaged, ctx))
        )
    )
    in_python = {
        p for p in people if holds(engaged, facts_for(session, p, now=now), now=now, segments={})
    }
    assert in_sql == in_python == {supporter_id(session, "lou")}


def test_a_batch_of_clicks_is_recorded_as_one_click_at_a_time(session: Session) -> None:
    # Given two people sent the same email at the same time
    petition_id = petitions.upsert(session, petition_def(), now=SENT).id
    sign(session, petition_id, SENT, {"ivy": (True, True), "jo": (True, True)})
    one_by_one, batched = email_to(session, "ivy"), email_to(session, "jo")
    # (a gateway's two links 2 s after the send, a reader's click an hour later, and the
    # same link again a minute after)
    timings = [(0, timedelta(seconds=2)), (1, timedelta(seconds=3)), (1, timedelta(hours=1)),
               (1, timedelta(hours=1, minutes=1))]  # fmt: skip

    # When Ivy's clicks come one by one, as the click route records them, and Jo's in one
    # batch, out of order (as a simulated hour hands them over)
    for position, after in timings:
        click(session, one_by_one, position, SENT + after)
    jo = supporter_id(session, "jo")
    clicks.record_many(
        session,
        [clicks.ClickIn(batched, p, jo, SENT + after) for p, after in reversed(timings)],
    )

    # Then both have the same clicks flagged, the same click events and the same figures
    assert click_flags(session, batched) == click_flags(session, one_by_one)
    assert click_flags(session, batched) == [(0, True), (1, True), (1, False), (1, False)]
    logged = {
        key: session.scalar(select(func.count()).select_from(Event).where(Event.source_key == key))
        for message in (one_by_one, batched)
        for key in (f"click:{message}:0", f"click:{message}:1")
    }
    assert set(logged.values()) == {1}
    rows = {r.step_id: r.figures for r in counts.read(session, "j")}
    assert rows["update"].clicks == 4
    assert rows["update"].clickers == 2


def test_a_batchs_first_clicks_are_logged_in_the_order_of_their_keys(session: Session) -> None:
    # Given an email with three links, clicked in one batch from the last link to the first
    # (two API processes writing the same links' first clicks in opposite orders could
    # each wait for the other's key: a deadlock, and a batch written again click by click)
    petition_id = petitions.upsert(session, petition_def(), now=SENT).id
    sign(session, petition_id, SENT, {"kim": (True, True)})
    message = email_to(session, "kim")
    kim = supporter_id(session, "kim")
    later = [SENT + timedelta(hours=1, seconds=s) for s in range(3)]

    # When the batch is recorded
    clicks.record_many(
        session, [clicks.ClickIn(message, 2 - i, kim, at) for i, at in enumerate(later)]
    )

    # Then its events were inserted in the order of their keys, whatever the clicks' order
    logged = session.scalars(
        select(Event.source_key)
        .where(Event.source_key.like(f"click:{message}:%"))
        .order_by(Event.id)
    ).all()
    assert logged == sorted(logged) == [f"click:{message}:{p}" for p in range(3)]
