"""Clicks on SQLite and PostgreSQL: a scanner's burst is flagged automated as it happens,
and automated clicks are no engagement for the journeys' click conditions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.rules.conditions import holds
from engine.rules.segments import SegmentDef
from engine.store import clicks, petitions, segments
from engine.store.models import Click, OutboxMessage, Supporter
from tests.factories import petition_def
from tests.store.journey_helpers import sign, supporter_id
from tests.store.supporter_facts import facts_for

SENT = datetime(2026, 5, 20, 10, 0, tzinfo=UTC)


def email_to(session: Session, name: str) -> int:
    who = supporter_id(session, name)
    row = OutboxMessage(
        enrolment_id=who, step_id="update", supporter_id=who, journey_id="j",
        journey_version_id=1, template="update", variant=None, transactional=False,
        status="sent", due_at=SENT, created_at=SENT, sent_at=SENT,
    )  # fmt: skip
    session.add(row)
    session.flush()
    return row.id


def click(session: Session, message_id: int, position: int, at: datetime) -> None:
    who = session.scalar(select(OutboxMessage.supporter_id).where(OutboxMessage.id == message_id))
    clicks.record(session, message_id=message_id, position=position, supporter_id=who, now=at)


def flags(session: Session, message_id: int) -> list[tuple[int, bool]]:
    return [
        (p, a)
        for p, a in session.execute(
            select(Click.link_position, Click.automated)
            .where(Click.message_id == message_id)
            .order_by(Click.id)
        )
    ]


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

    assert flags(session, scanned) == [(0, True), (1, True), (2, True)]
    assert flags(session, read) == [(0, False), (0, False), (1, False)]
    assert flags(session, gateway) == [(0, True)]

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
